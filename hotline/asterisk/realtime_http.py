"""The realtime listener's own HTTP/1.1 server: res_config_curl's requests, and nothing else, at the
lowest cost per request.

Every lookup an Asterisk node makes is a small HTTP POST on a keep-alive connection (res_curl keeps one
per Asterisk thread), and a channel or a SIP transaction waits for each answer. Under uvicorn + ASGI a
request costs Hotline ~0.3-0.4 ms of CPU in the server and the ASGI messages alone, and uvicorn writes
the headers and the body in two `send()`s, so curl wakes up twice per answer (bench/REALTIME.md). This
protocol parses with httptools (llhttp, the parser uvicorn itself uses), answers synchronously from the
backend's memory and writes each answer in one `write()`.

What a hostile or broken client gets: a peer outside `realtime_allowed_addresses` is answered 403 and
disconnected before any parsing; a request head over `max_head` bytes gets 431, a body over the
backend's limit 413, malformed HTTP 400 naming the parser's complaint, a protocol upgrade 400; each of
those closes the connection. A connection idle (or stuck in a request) for longer than `idle_timeout`
is closed. Nothing is buffered beyond those limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, cast

import httptools

from hotline.asterisk.realtime_backend import FORBIDDEN, RealtimeASGI

log = logging.getLogger(__name__)

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def encode_response(status: int, text: str, *, close: bool) -> bytes:
    """One whole HTTP/1.1 answer (status line, headers, body) as one buffer."""
    body = text.encode("utf-8", "replace")
    head = b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        _REASONS.get(status, b"Error"),
        len(body),
        b"connection: close\r\n" if close else b"",
    )
    return head + body


class RealtimeHTTPProtocol(asyncio.Protocol):
    """One node connection. Requests are answered in order as soon as each is complete (pipelining
    included); the backend answers from memory, so nothing here awaits."""

    def __init__(
        self,
        gate: RealtimeASGI,
        connections: set[RealtimeHTTPProtocol],
        *,
        max_head: int = 16384,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gate = gate
        self._connections = connections
        self._max_head = max_head
        self._max_body = gate.max_body
        self._clock = clock
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._host: str | None = None
        self._raw_in_head = 0
        self._discarding = False  # answered with an error: what comes in is dropped until the close
        self.last_activity = clock()
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._token = b""
        self._node = b""
        self._body = bytearray()
        self._head_bytes = 0  # url and header lines as the parser hands them over
        self._in_head = True
        self._too_large = False

    # ---------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses
        transport = self._transport
        peer = transport.get_extra_info("peername")
        self._host = peer[0] if isinstance(peer, tuple) and peer else None
        if not self._gate.address_allowed(self._host):
            log.warning("realtime: refused connection from %s (not a node address)", self._host)
            self._fail(403, FORBIDDEN)
            return
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing() or self._discarding:
            return
        self.last_activity = self._clock()
        if self._in_head:
            # bytes the parser may hold before a callback fires (a header line that never ends); a head and a
            # whole body can come in one segment, hence the sum
            self._raw_in_head += len(data)
            if self._raw_in_head > self._max_head + self._max_body:
                self._fail(431, f"request head over {self._max_head} bytes\n")
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not served here\n")
        except httptools.HttpParserCallbackError as exc:
            if not self._discarding:  # not one of ours (_Refused)
                log.error("realtime: listener failed on a request: %r", exc.__context__ or exc)
                self._fail(500, "internal error\n")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}\n")

    # ---------------------------------------------------------------- httptools callbacks
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._check_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._check_head(len(name) + len(value) + 4)
        lname = name.lower()
        if lname == b"x-hotline-token":
            self._token = value
        elif lname == b"x-hotline-node":
            self._node = value

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._raw_in_head = 0

    def on_body(self, body: bytes) -> None:
        if len(self._body) + len(body) > self._max_body:
            self._too_large = True
            return
        self._body += body

    def on_message_complete(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing() or self._discarding:
            return
        if self._parser.should_upgrade():
            self._fail(400, "protocol upgrades are not served here\n")
            return
        if self._too_large:
            log.warning("realtime: body over %d bytes refused", self._max_body)
            self._fail(413, f"request body over {self._max_body} bytes\n")
            return
        try:
            parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            self._fail(400, "malformed request target\n")
            return
        path = (parsed.path or b"").decode("latin-1")
        query = (parsed.query or b"").decode("latin-1")
        method = self._parser.get_method().decode("latin-1")
        if self._gate.token_ok(self._token):
            status, text = self._gate.answer(method, path, query, self._node, bytes(self._body))
        else:
            log.warning("realtime: refused request from %s (token)", self._host)
            status, text = 403, FORBIDDEN
        keep = self._parser.should_keep_alive()
        transport.write(encode_response(status, text, close=not keep))
        if not keep:
            transport.close()
        self._in_head = True

    # ---------------------------------------------------------------- helpers
    def _check_head(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self._max_head:
            # raising aborts the parse; data_received sees HttpParserCallbackError with the answer already sent
            self._fail(431, f"request head over {self._max_head} bytes\n")
            raise _Refused

    def _fail(self, status: int, text: str) -> None:
        """Answer and end the connection. What the peer is still sending is read and dropped for up to
        `_LINGER` seconds after our FIN (a close with unread data would reset the connection, and the
        peer could lose the answer before reading it)."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._discarding:
            return
        transport.write(encode_response(status, text, close=True))
        self._discarding = True
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(_LINGER, transport.close)
        else:
            transport.close()

    def eof_received(self) -> bool | None:
        return None  # the peer is done: close our side too

    def close_if_idle(self, now: float, idle_timeout: float) -> None:
        if now - self.last_activity > idle_timeout:
            self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


_LINGER = 1.0


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request already answered."""


class RealtimeListener:
    """The listening socket and its connections on one event loop; `close()` stops both."""

    def __init__(self, gate: RealtimeASGI, *, idle_timeout: float = 75.0, max_head: int = 16384) -> None:
        self._gate = gate
        self._idle_timeout = idle_timeout
        self._max_head = max_head
        self._connections: set[RealtimeHTTPProtocol] = set()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def _protocol(self) -> RealtimeHTTPProtocol:
        return RealtimeHTTPProtocol(self._gate, self._connections, max_head=self._max_head)

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host, port, reuse_address=True, backlog=1024)
        self._sweeper = loop.create_task(self._sweep(), name="realtime-idle-sweeper")

    @property
    def port(self) -> int:
        server: Any = self._server  # asyncio.Server (the abstract type does not declare `sockets`)
        return int(server.sockets[0].getsockname()[1])

    async def _sweep(self) -> None:
        period = max(0.05, min(5.0, self._idle_timeout / 3))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for conn in list(self._connections):
                conn.close_if_idle(now, self._idle_timeout)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
