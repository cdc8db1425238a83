"""AMI client for one Asterisk node: connect, log in, keep alive, reconnect, match replies, fan out events.

Nothing else lives here (style.md principle 6).  Invariants:
- The socket is read continuously by one task (`_read_loop`); Asterisk drops readers slower than the
  user's `writetimeout` (asterisk-reference.md trap 10).  Event callbacks must therefore be quick and
  non-blocking (the journal only appends to a bounded buffer).
- Every action carries a unique ActionID; its future is resolved by the matching Response (and, for list
  actions, completed by the `EventList: Complete` event).  Every wait has a timeout.
- On any connection loss, pending actions fail with `NodeUnavailableError` and the client reconnects with
  exponential back-off (capped, with jitter) until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from hotline.errors import ActionTimeoutError, AMIProtocolError, AsteriskError, NodeUnavailableError
from hotline.protocols.ami import AMIParser, Message, encode_action

log = logging.getLogger(__name__)

EventHandler = Callable[[str, Message], None]
StateHandler = Callable[[str, bool], None]


@dataclass
class _Pending:
    future: asyncio.Future[list[Message]]
    is_list: bool
    items: list[Message] = field(default_factory=list)


class AMIClient:
    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_event: EventHandler,
        on_state: StateHandler | None = None,
        keepalive: float = 10.0,
        action_timeout: float = 10.0,
        reconnect_max: float = 30.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self._on_event = on_event
        self._on_state = on_state
        self._keepalive = keepalive
        self._action_timeout = action_timeout
        self._reconnect_max = reconnect_max
        self._connect_timeout = connect_timeout
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._prefix = f"hl-{random.getrandbits(32):08x}-"
        self._ready = asyncio.Event()
        # set by the node's FullyBooted event: sent right after the login when the node has finished loading
        # its modules, else when it does.  Before that, modules' actions and CLI commands may not exist yet.
        self._booted = asyncio.Event()
        self.connected = False
        self.version: str | None = None
        self.last_event_at: float | None = None
        self.events_received = 0
        self.connects = 0

    # ------------------------------------------------------------------ public
    async def wait_connected(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            raise NodeUnavailableError(f"AMI of {self.name} not connected after {timeout:.1f} s") from None

    async def wait_booted(self, timeout: float | None) -> bool:
        """Wait until the connected node has said FullyBooted; False if it has not within `timeout` s (None:
        no limit).  A later connection's FullyBooted also ends the wait."""
        try:
            async with asyncio.timeout(timeout):
                await self._booted.wait()
        except TimeoutError:
            return False
        return True

    async def action(
        self,
        action: str,
        fields: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        *,
        timeout: float | None = None,
    ) -> Message:
        """Send one action and return its Response; raise AsteriskError on `Response: Error`."""
        items = await self._send(action, fields, is_list=False, timeout=timeout)
        reply = items[0]
        if reply.get("Response", "").lower() == "error":
            raise AsteriskError(f"{self.name}: {action} failed: {reply.get('Message', 'error')}")
        return reply

    async def command(self, command: str, *, timeout: float | None = None) -> tuple[bool, list[str]]:
        """Run a CLI command (action Command): whether it succeeded, and its output lines.  A command that
        fails (CLI_FAILURE) answers `Response: Error` with its output; that is returned, not raised."""
        reply = (await self._send("Command", {"Command": command}, is_list=False, timeout=timeout))[0]
        return reply.get("Response", "").lower() == "success", reply.getall("Output")

    async def action_list(
        self,
        action: str,
        fields: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        *,
        timeout: float | None = None,
    ) -> list[Message]:
        """Send a list action; return the item events (the Response and the Complete event excluded)."""
        items = await self._send(action, fields, is_list=True, timeout=timeout)
        head = items[0]
        if head.get("Response", "").lower() == "error":
            raise AsteriskError(f"{self.name}: {action} failed: {head.get('Message', 'error')}")
        return [m for m in items[1:] if (m.get("EventList") or "").lower() != "complete"]

    async def run(self) -> None:
        """Connect and serve forever; reconnect with back-off. Cancel to stop."""
        delay = 0.5
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, AMIProtocolError, AsteriskError, EOFError) as exc:
                log.warning("AMI %s (%s:%d): %s", self.name, self.host, self.port, exc or type(exc).__name__)
            finally:
                self._disconnected()
            if time.monotonic() - started > 30:
                delay = 0.5  # it ran fine for a while: start the back-off again from the bottom
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self._reconnect_max)

    # ------------------------------------------------------------------ internals
    async def _session(self) -> None:
        # asyncio.timeout rather than wait_for: on Python 3.11 wait_for can lose a cancellation that
        # arrives as the connection completes, and the client would then never stop
        async with asyncio.timeout(self._connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        parser = AMIParser()
        reader_task = asyncio.create_task(self._read_loop(reader, parser), name=f"ami-read-{self.name}")
        try:
            login = await self._send(
                "Login",
                [("Username", self._username), ("Secret", self._secret), ("Events", "on")],
                is_list=False,
                timeout=self._action_timeout,
                require_ready=False,
            )
            if login[0].get("Response", "").lower() != "success":
                raise AsteriskError(f"login refused: {login[0].get('Message', '')}")
            self.version = parser.banner
            self.connected = True
            self.connects += 1
            self._ready.set()
            log.info("AMI %s connected (%s)", self.name, parser.banner)
            if self._on_state:
                self._on_state(self.name, True)
            while not reader_task.done():
                done, _ = await asyncio.wait({reader_task}, timeout=self._keepalive)
                if done:
                    break
                await self._send("Ping", (), is_list=False, timeout=self._action_timeout, require_ready=False)
            reader_task.result()  # re-raise the reader's error
            raise EOFError("connection closed by Asterisk")
        finally:
            reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader_task
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await writer.wait_closed()

    async def _read_loop(self, reader: asyncio.StreamReader, parser: AMIParser) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                raise EOFError("connection closed by Asterisk")
            for msg in parser.feed(data):
                self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        aid = msg.action_id
        pending = self._pending.get(aid) if aid else None
        if pending is not None and (msg.is_response or pending.is_list):
            pending.items.append(msg)
            done = not pending.is_list
            if pending.is_list and (
                (msg.is_response and msg.get("Response", "").lower() == "error")
                or (msg.get("EventList") or "").lower() == "complete"
            ):
                done = True
            if done:
                self._pending.pop(aid, None)  # type: ignore[arg-type]
                if not pending.future.done():
                    pending.future.set_result(pending.items)
            return
        if msg.is_event:
            if msg.name == "FullyBooted":
                self._booted.set()
            self.events_received += 1
            self.last_event_at = time.time()
            try:
                self._on_event(self.name, msg)
            except Exception:
                log.exception("AMI %s: event handler failed on %s", self.name, msg.name)

    async def _send(
        self,
        action: str,
        fields: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        is_list: bool,
        timeout: float | None,
        require_ready: bool = True,
    ) -> list[Message]:
        writer = self._writer
        if writer is None or (require_ready and not self.connected):
            raise NodeUnavailableError(f"AMI of {self.name} is not connected")
        aid = f"{self._prefix}{next(self._ids)}"
        data = encode_action(action, fields, action_id=aid)
        fut: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self._pending[aid] = _Pending(fut, is_list)
        try:
            writer.write(data)
            async with asyncio.timeout(timeout or self._action_timeout):
                return await fut
        except TimeoutError:
            raise ActionTimeoutError(
                f"{self.name}: no answer to {action} in {timeout or self._action_timeout} s"
            ) from None
        finally:
            self._pending.pop(aid, None)

    def _disconnected(self) -> None:
        was = self.connected
        self.connected = False
        self._ready.clear()
        self._booted.clear()
        self._writer = None
        for p in self._pending.values():
            if not p.future.done():
                p.future.set_exception(NodeUnavailableError(f"AMI of {self.name} disconnected"))
        self._pending.clear()
        if was and self._on_state:
            self._on_state(self.name, False)
