"""The event stream over WebSocket: ``/ws/events`` (docs/events.md is the user's version).

Responsibility: admit a connection (credentials, Origin, connection cap) before accepting it, speak the
small JSON protocol (subscribe with glob patterns, resume from a position, ping), and forward the bus's
events each client subscribed to and may see.

Invariants:
- Nothing is accepted before the caller is known: no or wrong credentials, a cross-site Origin on a
  cookie login, or a full server are refused in the handshake (an HTTP status with a JSON body; close
  code 4401/4403/1013 on a server without the denial-response extension).
- An event reaches a client only if it matches one of the client's patterns AND the principal may see it
  (`may_see`, decided per event from its name and ``data.agent``); a pattern naming a family the
  principal can see nothing of is refused at subscribe time with an error naming the field.
- Gapless resume: a subscription registers with the bus before it reads the ring, and the sender skips
  any event at or below the last position it sent, so replay + live has no gap and no duplicate.
- The bus is never slowed: its callback only filters and appends to a client's outbox.  A client with
  more than `ws_queue_size` events waiting, or whose socket accepts nothing for `SEND_TIMEOUT_S`, is
  closed with 1013 and a reason (the others are not affected).
- Bad input never crashes or hangs a connection: malformed JSON, unknown types or fields, oversized
  messages get an ``error`` message; a flood of messages gets close code 1008.
- `metrics` (module level, so the metrics endpoint needs no handle on the app) counts connections,
  refusals, events sent and dropped clients for every stream in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from hotline.domain.permissions import Principal
from hotline.errors import AuthenticationError, HotlineError, RateLimitedError, ValidationError
from hotline.features.events import Event, EventBus, Subscription
from hotline.web.auth import Caller
from hotline.web.context import WebServices

log = logging.getLogger(__name__)

PATH: Final = "/ws/events"
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_PATTERNS: Final = 32
PATTERN_MAX: Final = 64
PATTERN: Final = re.compile(r"[a-z0-9_.*]+")
STREAM_ID_MAX: Final = 64
KEEPALIVE_S: Final = 25.0  # an idle client gets {"type":"keepalive"} this often (proxies close idle sockets)
REAUTH_S: Final = 60.0  # credentials are checked again this often: a revoked key or session stops the stream
SEND_TIMEOUT_S: Final = 30.0
CLOSE_TIMEOUT_S: Final = 10.0
AUTH_TIMEOUT_S: Final = 10.0
RATE_PER_S: Final = 10.0  # client messages per second, sustained ...
RATE_BURST: Final = 40  # ... with this burst
CONTROL_BACKLOG: Final = 256  # replies waiting to be sent; more means the client does not read

CLOSE_POLICY: Final = 1008
CLOSE_INTERNAL: Final = 1011
CLOSE_TRY_AGAIN: Final = 1013
CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403

#: event family -> the scopes that show all of its events (events:read shows every family)
FAMILY_SCOPES: Final[Mapping[str, tuple[str, ...]]] = {
    "queue": ("stats:read",),
    "agent": ("agents:read",),
    "call": ("calls:read",),
}
#: families whose events an agent (scope self) sees when ``data.agent`` is its own number
SELF_FAMILIES: Final = frozenset({"agent", "call"})


@dataclass
class StreamMetrics:
    """Counters for every event stream in this process (read by the metrics endpoint)."""

    connections: int = 0  # open now
    connections_total: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # reason -> handshakes refused
    events_sent: int = 0
    clients_dropped: int = 0  # closed with 1013: too slow
    messages_received: int = 0
    errors_sent: int = 0
    resets_sent: int = 0

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def as_dict(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "connections_total": self.connections_total,
            "refused": dict(self.refused),
            "events_sent": self.events_sent,
            "clients_dropped": self.clients_dropped,
            "messages_received": self.messages_received,
            "errors_sent": self.errors_sent,
            "resets_sent": self.resets_sent,
        }


metrics = StreamMetrics()


# ---------------------------------------------------------------------------------------- pure rules
def may_see(principal: Principal, event: Event) -> bool:
    """Whether `principal` may receive `event`: by its family's scope, or its own agent's events (self)."""
    scopes = principal.scopes
    if "events:read" in scopes:
        return True
    family = event.name.partition(".")[0]
    needed = FAMILY_SCOPES.get(family)
    if needed is None:
        return False
    if any(scope in scopes for scope in needed):
        return True
    if family in SELF_FAMILIES and "self" in scopes and principal.agent_number:
        agent = event.data.get("agent")
        return isinstance(agent, str) and agent == principal.agent_number
    return False


def family_refusal(principal: Principal, pattern: str) -> str | None:
    """Why `pattern` can never deliver anything to `principal` (None when it may)."""
    family = pattern.partition(".")[0]
    if "*" in family or "events:read" in principal.scopes:
        return None
    needed = FAMILY_SCOPES.get(family, ())
    if any(scope in principal.scopes for scope in needed):
        return None
    if family in SELF_FAMILIES and "self" in principal.scopes and principal.agent_number:
        return None
    wanted = " or ".join((*needed, "events:read"))
    return f"{pattern!r} needs the permission {wanted}"


def compile_patterns(value: object, field_name: str = "events") -> tuple[tuple[str, ...], re.Pattern[str]]:
    """A list of glob patterns (``*`` matches any characters, dots included) -> (patterns, one regex)."""
    if not isinstance(value, list):
        raise ValidationError(field_name, 'must be a list of event patterns such as ["queue.*", "agent.*"]')
    if not value:
        raise ValidationError(field_name, 'give at least one event pattern ("*" for every event you may see)')
    if len(value) > MAX_PATTERNS:
        raise ValidationError(field_name, f"at most {MAX_PATTERNS} patterns (got {len(value)})")
    out: list[str] = []
    for i, item in enumerate(value):
        where = f"{field_name}[{i}]"
        if not isinstance(item, str):
            raise ValidationError(where, f"must be a string (got {type(item).__name__})")
        if not item or len(item) > PATTERN_MAX or PATTERN.fullmatch(item) is None:
            raise ValidationError(
                where,
                f"{item[:PATTERN_MAX]!r} is not an event pattern: 1 to {PATTERN_MAX} lowercase letters, digits, "
                "'_', '.' and '*'",
            )
        if item not in out:
            out.append(item)
    regex = "|".join(re.escape(p).replace(r"\*", ".*") for p in out)
    return tuple(out), re.compile(regex)


def origin_key(url: str) -> str | None:
    """``scheme://host[:port]`` in a canonical form (lowercase, default port dropped); None if not http(s)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def origin_allowed(origin: str, host: str, public_url: str) -> bool:
    """A browser's Origin must be this server as the request reached it (Host) or its public address."""
    key = origin_key(origin)
    if key is None:
        return False
    allowed = {origin_key(public_url)}
    if host and not any(c in host for c in "/?#@\\ "):
        allowed.update(origin_key(f"{scheme}://{host}") for scheme in ("http", "https"))
    return key in allowed


@dataclass(frozen=True, slots=True)
class Subscribe:
    patterns: tuple[str, ...]
    regex: re.Pattern[str]
    since: int | None
    stream: str | None


@dataclass(frozen=True, slots=True)
class Ping:
    pass


_SUBSCRIBE_FIELDS: Final = frozenset({"type", "events", "since", "stream"})


def parse_client_message(text: str) -> Subscribe | Ping:
    """One text frame from a client -> a request; ValidationError names the field that is wrong."""
    if len(text) > MAX_MESSAGE_BYTES or len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ValidationError("message", f"is larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("message", f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise ValidationError("message", f"is not usable JSON ({type(exc).__name__})") from None
    if not isinstance(msg, dict):
        raise ValidationError("message", f"must be a JSON object (got {type(msg).__name__})")
    kind = msg.get("type")
    if kind == "ping":
        unknown = sorted(set(msg) - {"type"})
        if unknown:
            raise ValidationError(unknown[0], "unknown field in a ping")
        return Ping()
    if kind != "subscribe":
        if kind is None:
            raise ValidationError("type", "missing; one of subscribe, ping")
        raise ValidationError("type", f"unknown message type {str(kind)[:40]!r}; known: subscribe, ping")
    unknown = sorted(set(msg) - _SUBSCRIBE_FIELDS)
    if unknown:
        raise ValidationError(unknown[0][:40], "unknown field; a subscribe has events, since and stream")
    if "events" not in msg:
        raise ValidationError("events", 'missing: the event patterns to receive, e.g. ["queue.*"]')
    patterns, regex = compile_patterns(msg["events"])
    since = msg.get("since")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
        raise ValidationError("since", f"must be null or a non-negative integer position (got {since!r})")
    stream = msg.get("stream")
    if stream is not None and (not isinstance(stream, str) or not 0 < len(stream) <= STREAM_ID_MAX):
        raise ValidationError("stream", f"must be null or the stream id of a hello message (got {stream!r})")
    return Subscribe(patterns, regex, since, stream)


def encode(message: Mapping[str, object]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def event_frame(event: Event) -> str:
    body = event.as_dict()
    return encode({"type": "event", "position": event.position, **body})


# ---------------------------------------------------------------------------------------- the endpoint
@dataclass(slots=True)
class _Replay:
    """Events after `since` read from the ring at subscribe time, sent lazily (encoded when sent)."""

    generation: int
    since: int | None
    events: list[Event]


class _Closing(Exception):
    """The connection must end with this close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class EventStream:
    """The ASGI endpoint of /ws/events; one per application, sharing one bus subscription among clients."""

    def __init__(
        self,
        services: WebServices,
        *,
        keepalive: float = KEEPALIVE_S,
        reauth: float = REAUTH_S,
        send_timeout: float = SEND_TIMEOUT_S,
    ) -> None:
        self.services = services
        self.bus: EventBus = services.bus
        self.max_clients = int(services.settings.ws_max_subscribers)
        self.queue_size = int(services.settings.ws_queue_size)
        self.public_url = services.settings.effective_public_url
        self.keepalive = keepalive
        self.reauth = reauth
        self.send_timeout = send_timeout
        self._slots = 0  # connections admitted or being admitted
        self._listeners: set[_Client] = set()  # clients with a subscription
        self._bus_sub: Subscription | None = None
        self._frames: dict[int, str] = {}  # position -> encoded frame, small FIFO cache shared by clients

    # ------------------------------------------------------------------ bus fan-out
    def frame(self, event: Event) -> str:
        text = self._frames.get(event.position)
        if text is None:
            text = event_frame(event)
            if len(self._frames) >= 1024:
                del self._frames[next(iter(self._frames))]
            self._frames[event.position] = text
        return text

    def _on_event(self, event: Event) -> None:
        """Bus callback: filter and append, never wait."""
        frame: str | None = None
        for client in tuple(self._listeners):
            if client.wants(event):
                if frame is None:
                    frame = self.frame(event)
                client.offer(event.position, frame)

    def listen(self, client: _Client) -> None:
        self._listeners.add(client)
        if self._bus_sub is None:
            self._bus_sub = self.bus.subscribe(self._on_event)

    def forget(self, client: _Client) -> None:
        self._listeners.discard(client)
        if not self._listeners and self._bus_sub is not None:
            self._bus_sub.close()
            self._bus_sub = None
            self._frames.clear()

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send)
        if self._slots >= self.max_clients:
            await _refuse(ws, 503, CLOSE_TRY_AGAIN, "full", f"the server serves {self.max_clients} streams at once")
            return
        self._slots += 1
        try:
            caller = await self._admit(ws)
            if caller is None:
                return
            client = _Client(self, ws, caller)
            metrics.connections += 1
            metrics.connections_total += 1
            try:
                await client.run()
            finally:
                metrics.connections -= 1
                self.forget(client)
        finally:
            self._slots -= 1

    async def _admit(self, ws: WebSocket) -> Caller | None:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_S):
                caller = await self.services.auth.caller(ws)
        except RateLimitedError as exc:
            await _refuse(ws, 429, CLOSE_UNAUTHENTICATED, "throttled", f"{exc}; retry in {exc.retry_after:.0f} s")
            return None
        except AuthenticationError as exc:
            await _refuse(ws, 403, CLOSE_UNAUTHENTICATED, "unauthenticated", str(exc))
            return None
        except (HotlineError, TimeoutError) as exc:
            log.warning("event stream: checking credentials failed: %s", exc)
            await _refuse(ws, 503, CLOSE_TRY_AGAIN, "unavailable", "credentials cannot be checked now; retry later")
            return None
        if caller is None:
            await _refuse(
                ws,
                403,
                CLOSE_UNAUTHENTICATED,
                "unauthenticated",
                "no valid credentials: log in (session cookie) or send an API key (Authorization: Bearer hlk_...)",
            )
            return None
        if caller.session is not None:
            # The cookie rides along with any page's WebSocket: only our own pages may use it (CSWSH).
            origin = ws.headers.get("origin", "")
            if not origin_allowed(origin, ws.headers.get("host", ""), self.public_url):
                await _refuse(
                    ws,
                    403,
                    CLOSE_FORBIDDEN,
                    "origin",
                    f"Origin {origin[:100]!r} is not this server; a session login streams only to Hotline's pages",
                )
                return None
        return caller


async def _refuse(ws: WebSocket, status: int, close_code: int, reason: str, message: str) -> None:
    """Refuse the handshake: an HTTP status with a JSON body where the server can, else a close code."""
    metrics.refuse(reason)
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        body = {"type": "error", "code": reason, "message": message}
        await ws.send_denial_response(JSONResponse(body, status_code=status))
    else:
        await ws.close(code=close_code, reason=message[:120])


class _Client:
    """One accepted connection: a reader (client messages), a sender (outbox -> socket), a re-auth timer."""

    def __init__(self, stream: EventStream, ws: WebSocket, caller: Caller) -> None:
        self.stream = stream
        self.ws = ws
        self.caller = caller
        self.principal = caller.principal
        self.regex: re.Pattern[str] | None = None
        self._outbox: deque[str | tuple[int, str] | _Replay] = deque()
        self._pending_events = 0
        self._pending_control = 0
        self._wake = asyncio.Event()
        self._last = 0  # position of the last event sent
        self._generation = 0  # bumped by each subscribe: a replay of an older subscription stops
        self._closing: _Closing | None = None
        self._closed = asyncio.Event()
        self._tokens = float(RATE_BURST)
        self._tokens_at = 0.0

    # ------------------------------------------------------------------ called by the bus (never waits)
    def wants(self, event: Event) -> bool:
        regex = self.regex
        return (
            regex is not None
            and self._closing is None
            and regex.fullmatch(event.name) is not None
            and may_see(self.principal, event)
        )

    def offer(self, position: int, frame: str) -> None:
        if self._pending_events >= self.stream.queue_size:
            metrics.clients_dropped += 1
            self.close(CLOSE_TRY_AGAIN, f"too slow: more than {self.stream.queue_size} events waiting")
            return
        self._outbox.append((position, frame))
        self._pending_events += 1
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = _Closing(code, reason)
            self.stream.forget(self)
            self._closed.set()

    def reply(self, message: Mapping[str, object]) -> None:
        if self._pending_control >= CONTROL_BACKLOG:
            self.close(CLOSE_POLICY, "too many requests without reading the replies")
            return
        self._outbox.append(encode(message))
        self._pending_control += 1
        self._wake.set()

    # ------------------------------------------------------------------ lifetime
    async def run(self) -> None:
        ws = self.ws
        await ws.accept()
        bus = self.stream.bus
        self.reply(
            {
                "type": "hello",
                "stream": bus.stream_id,
                "position": bus.position,
                "user": self.principal.name,
                "keepalive": self.stream.keepalive,
            }
        )
        tasks = [
            asyncio.create_task(self._read_loop(), name="ws-events-read"),
            asyncio.create_task(self._send_loop(), name="ws-events-send"),
            asyncio.create_task(self._reauth_loop(), name="ws-events-reauth"),
            asyncio.create_task(self._closed.wait(), name="ws-events-closing"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            exc = None if task.cancelled() else task.exception()
            if exc is not None:
                log.error("event stream: %s failed", task.get_name(), exc_info=exc)
                self.close(CLOSE_INTERNAL, "internal error")
        if self._closing is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await ws.close(code=self._closing.code, reason=self._closing.reason[:120])

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._tokens_at = loop.time()
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            metrics.messages_received += 1
            now = loop.time()
            self._tokens = min(float(RATE_BURST), self._tokens + (now - self._tokens_at) * RATE_PER_S)
            self._tokens_at = now
            if self._tokens < 1:
                self.close(CLOSE_POLICY, f"more than {RATE_PER_S:.0f} messages a second")
                return
            self._tokens -= 1
            text = message.get("text")
            if text is None:
                self._error("message", "send JSON text frames, not binary ones")
                continue
            try:
                request = parse_client_message(text)
            except ValidationError as exc:
                self._error(exc.field, exc.message)
                continue
            if isinstance(request, Ping):
                self.reply({"type": "pong", "position": self.stream.bus.position})
            else:
                self._subscribe(request)

    def _error(self, field_name: str, message: str, code: str = "invalid") -> None:
        metrics.errors_sent += 1
        self.reply({"type": "error", "code": code, "field": field_name, "message": message})

    def _subscribe(self, request: Subscribe) -> None:
        for i, pattern in enumerate(request.patterns):
            why = family_refusal(self.principal, pattern)
            if why is not None:
                self._error(f"events[{i}]", why, code="forbidden")
                return
        bus = self.stream.bus
        # Listen first, read the ring second: nothing published in between can be missed (and the
        # sender's position check drops what both would deliver).
        self.regex = request.regex
        self.stream.listen(self)
        position = bus.position
        self._generation += 1
        # events queued for the previous subscription are dropped: the replay below covers them if wanted
        kept = [item for item in self._outbox if not isinstance(item, tuple | _Replay)]
        self._outbox = deque(kept)
        self._pending_events = 0
        reset: str | None = None
        events: list[Event] = []
        if request.stream is not None and request.stream != bus.stream_id:
            reset = "stream"  # another stream: Hotline restarted, positions mean nothing here
        elif request.since is not None:
            found = bus.since(request.since)
            if found is None:
                reset = "unknown-position" if request.since > position else "expired"
            else:
                events = [e for e in found if request.regex.fullmatch(e.name) and may_see(self.principal, e)]
        if reset is not None:
            metrics.resets_sent += 1
            self.reply(
                {
                    "type": "reset",
                    "reason": reset,
                    "stream": bus.stream_id,
                    "position": position,
                    "message": _RESET_MESSAGES[reset],
                }
            )
        self.reply(
            {
                "type": "subscribed",
                "events": list(request.patterns),
                "stream": bus.stream_id,
                "position": position,
                "replayed": len(events),
            }
        )
        since = request.since if reset is None else None
        self._outbox.append(_Replay(self._generation, since, events))
        self._wake.set()

    async def _send_loop(self) -> None:
        """Outbox -> socket, in order; returns when the client is gone or was closed for being slow."""
        while True:
            outbox = self._outbox
            if not outbox:
                self._wake.clear()
                try:
                    async with asyncio.timeout(self.stream.keepalive):
                        await self._wake.wait()
                except TimeoutError:
                    if not await self._send(encode({"type": "keepalive", "position": self.stream.bus.position})):
                        return
                continue
            item = outbox.popleft()
            if isinstance(item, str):
                self._pending_control -= 1
                if not await self._send(item):
                    return
            elif isinstance(item, tuple):
                self._pending_events -= 1
                position, frame = item
                if position > self._last:
                    if not await self._send(frame):
                        return
                    self._last = position
                    metrics.events_sent += 1
            else:
                if item.since is not None:
                    self._last = item.since
                for event in item.events:
                    if item.generation != self._generation:
                        break
                    if event.position > self._last:
                        if not await self._send(self.stream.frame(event)):
                            return
                        self._last = event.position
                        metrics.events_sent += 1

    async def _send(self, text: str) -> bool:
        """Send one frame; False when the connection is over (gone, or closed here for being too slow)."""
        try:
            async with asyncio.timeout(self.stream.send_timeout):
                await self.ws.send_text(text)
        except TimeoutError:
            metrics.clients_dropped += 1
            self.close(CLOSE_TRY_AGAIN, f"too slow: nothing could be sent for {self.stream.send_timeout:.0f} s")
            return False
        except (WebSocketDisconnect, OSError, RuntimeError):
            return False  # the client went away (starlette raises RuntimeError for a send after the close)
        return True

    async def _reauth_loop(self) -> None:
        """A long stream must not outlive its credentials (logout, key revoked, user demoted)."""
        while True:
            await asyncio.sleep(self.stream.reauth)
            try:
                async with asyncio.timeout(AUTH_TIMEOUT_S):
                    caller = await self.stream.services.auth.caller(self.ws)
            except AuthenticationError:
                caller = None
            except (HotlineError, TimeoutError) as exc:
                log.warning("event stream: re-checking credentials failed (kept open): %s", exc)
                continue
            if caller is None:
                self.close(CLOSE_UNAUTHENTICATED, "credentials are no longer valid")
                return
            self.principal = caller.principal


_RESET_MESSAGES: Final[Mapping[str, str]] = {
    "stream": "Hotline restarted since that position: reload the state from the REST API",
    "expired": "events after that position are no longer kept: reload the state from the REST API",
    "unknown-position": "that position was never given out by this stream: reload the state from the REST API",
}


def ws_routes(services: WebServices) -> list[BaseRoute]:
    return [WebSocketRoute(PATH, EventStream(services), name="events")]


__all__ = [
    "PATH",
    "EventStream",
    "StreamMetrics",
    "may_see",
    "metrics",
    "origin_allowed",
    "parse_client_message",
    "ws_routes",
]
