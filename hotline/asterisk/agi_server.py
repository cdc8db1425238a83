"""FastAGI server (asyncio Protocol): one connection per call, dispatched by script name to a handler.

Thin adapter: bytes go through the sans-I/O `AGIConnection` codec; a handler gets an `AGISession` with
`command()`, `set_variable()`, `get_variable()`.  Invariants:
- Every command waits at most `command_timeout` (plus one sweeper tick), every session at most
  `session_timeout`; one sweeper task enforces both, so the hot path arms no timer per command.
- Asterisk's unsolicited `HANGUP` line (asterisk-reference.md §2.4) only marks the session hung up; the
  real reply still follows and is returned.  Commands after hang-up are still sent (SET VARIABLE works
  on a dead channel) and return Asterisk's 511 reply as an `AGIReply`.
- When the handler returns, fails or times out, the socket is closed: Asterisk then leaves AGI() and the
  dialplan decides (no HOTLINE_ACTION set means the fallback).  Malformed data closes the connection.
- At most `max_sessions` sessions run at once; past that a connection is closed at once (the dialplan's
  fallback takes the call) rather than queued behind a backlog.

Hot path (bench/FASTAGI_AMI.md): per session one task (the handler itself, no wrapper coroutine; a done
callback does the bookkeeping), per command one future and no coroutine (`command()` writes the line
and returns the future), and the usual reply segment is matched whole by `AGIConnection.receive_reply`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import cast

from hotline.errors import AGIProtocolError
from hotline.protocols.agi import NEED_DATA, AGIConnection, AGIEnvironment, AGIReply, HangupNotice

log = logging.getLogger(__name__)

Handler = Callable[["AGISession"], Awaitable[None]]


class AGIHangup(Exception):
    """The connection closed while a command was pending (the caller hung up and Asterisk left AGI)."""


class AGISession:
    """One call's AGI conversation, given to the handler.  One command at a time."""

    # No reference back to the protocol: nothing per session forms a reference cycle, so a finished
    # session is freed at once by reference counting, not later by the cyclic garbage collector.
    __slots__ = (
        "_conn", "_expired", "_loop", "_sent_at", "_started", "_task", "_transport", "_waiter", "env", "hungup",
    )  # fmt: skip

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, conn: AGIConnection, env: AGIEnvironment
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._conn = conn
        self.env = env
        self.hungup = False
        self._waiter: asyncio.Future[AGIReply] | None = None
        self._task: asyncio.Future[None] | None = None  # the handler's task
        self._sent_at = 0.0
        self._started = loop.time()
        self._expired = False

    def command(self, command: str, *args: str) -> Awaitable[AGIReply]:
        """Send one command now and return an awaitable of Asterisk's final reply.

        `await session.command(...)` reads as a coroutine call, but the line is written when
        `command()` is called and what is awaited is a plain future: no coroutine per command.
        Raises `AGIHangup` (connection closed) or `AGIProtocolError` (bad command) at once; the
        awaitable fails with `AGIHangup` if the connection closes, `TimeoutError` after
        `command_timeout`."""
        transport = self._transport
        if transport.is_closing():
            raise AGIHangup("connection closed")
        data = self._conn.send_command(command, *args)
        loop = self._loop
        waiter: asyncio.Future[AGIReply] = loop.create_future()
        self._waiter = waiter
        # No timer per command: the server's sweeper fails waiters older than command_timeout.
        self._sent_at = loop.time()
        transport.write(data)
        return waiter

    def set_variable(self, name: str, value: str) -> Awaitable[AGIReply]:
        return self.command("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command("GET VARIABLE", name)
        return reply.data if reply.ok and reply.result == "1" else None

    def verbose(self, message: str, level: int = 1) -> Awaitable[AGIReply]:
        return self.command("VERBOSE", message, str(level))

    # called by the protocol and the sweeper
    def _reply(self, reply: AGIReply) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(reply)

    def _lost(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(AGIHangup("connection closed while waiting for a reply"))

    def _expire_if_older(self, deadline: float) -> None:
        w = self._waiter
        if w is not None and not w.done() and self._sent_at < deadline:
            w.set_exception(TimeoutError("no reply from Asterisk in time"))


class _AGIProtocol(asyncio.Protocol):
    """One FastAGI connection: feeds the codec, starts the handler's task, closes when it ends."""

    __slots__ = ("conn", "connected_at", "counted", "loop", "server", "session", "transport")

    def __init__(self, server: AGIServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.conn = AGIConnection()
        self.session: AGISession | None = None
        self.counted = False  # holds one of max_sessions slots
        self.connected_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a cast, not isinstance: uvloop's transports are not asyncio.Transport subclasses
        self.transport = cast(asyncio.Transport, transport)
        srv = self.server
        if not srv.address_allowed(transport.get_extra_info("peername")):
            srv.not_allowed += 1
            log.warning("AGI: connection from %s refused: not a node's address (setting agi_allowed_addresses)",
                        transport.get_extra_info("peername"))  # fmt: skip
            transport.close()
            return
        if srv.active >= srv.max_sessions:
            srv.refused += 1
            log.warning("AGI: %d sessions running, refusing a new one", srv.active)
            transport.close()
            return
        srv.active += 1
        self.counted = True
        self.connected_at = self.loop.time()
        srv.waiting_env.add(self)  # until the environment arrives; the sweeper closes it if it never does

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is not None:
            reply = self.conn.receive_reply(data)  # the usual segment: one "200 result=1" line
            if reply is not None:
                w = session._waiter
                if w is not None and not w.done():
                    w.set_result(reply)
                return
        conn = self.conn
        try:
            conn.receive_data(data)
            while True:
                ev = conn.next_event()
                if ev is NEED_DATA:
                    return
                if isinstance(ev, AGIReply):
                    if self.session is not None:
                        self.session._reply(ev)
                elif isinstance(ev, HangupNotice):
                    if self.session is not None:
                        self.session.hungup = True
                elif isinstance(ev, AGIEnvironment):
                    self._start(ev)
                if not conn.buffered:
                    return  # nothing more to read (the usual case): skip the NEED_DATA round
        except AGIProtocolError as exc:
            self.server.protocol_errors += 1
            log.warning("AGI: closing connection from %s: %s", self._peer(), exc)
            self._close()

    def _peer(self) -> object:
        return self.transport.get_extra_info("peername") if self.transport else None

    def _start(self, env: AGIEnvironment) -> None:
        srv = self.server
        srv.waiting_env.discard(self)
        # env.script, inlined: the script path of agi://host/<script>?<query>
        handler = srv.routes.get(env.variables.get("network_script", "").partition("?")[0])
        if handler is None:
            log.warning("AGI: unknown script %r requested by %s", env.script, env.channel)
            self._close()
            return
        assert self.transport is not None  # set by connection_made, before any data
        session = self.session = AGISession(self.transport, self.loop, self.conn, env)
        srv.sessions.add(session)
        try:
            handling = handler(session)
            # No wrapper coroutine around the handler (it would add a frame to every resume): the
            # task's done callback does the bookkeeping.
            task = session._task = (
                self.loop.create_task(handling)
                if isinstance(handling, types.CoroutineType)
                else asyncio.ensure_future(handling)
            )
        except Exception:
            srv.handler_errors += 1
            log.exception("AGI: handler failed for %s", env.channel)
            self._end(session)
            return
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[None]) -> None:
        session = self.session
        assert session is not None
        self._end(session)
        if task.cancelled():
            if session._expired:
                log.warning("AGI: handler for %s ran over session_timeout", session.env.channel)
            return
        exc = task.exception()
        if exc is None or isinstance(exc, AGIHangup):
            return
        if isinstance(exc, TimeoutError):
            log.warning("AGI: handler for %s timed out", session.env.channel)
            return
        self.server.handler_errors += 1
        log.error("AGI: handler failed for %s", session.env.channel, exc_info=exc)

    def _end(self, session: AGISession) -> None:
        self.server.sessions.discard(session)
        self.server.sessions_done += 1
        self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        srv = self.server
        if self.counted:
            srv.active -= 1
            self.counted = False
        session = self.session
        if session is None:
            srv.waiting_env.discard(self)
        else:
            session._lost()


class AGIServer:
    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        command_timeout: float = 10.0,
        session_timeout: float = 3600.0,
        max_sessions: int = 2000,
        allowed: Iterable[str] = ("127.0.0.0/8", "::1/128"),
    ) -> None:
        """`allowed`: the networks the Asterisk nodes connect from; a connection from anywhere else is
        closed before a byte is read (FastAGI has no authentication of its own)."""
        self.routes = dict(routes)
        self.allowed = tuple(ipaddress.ip_network(n, strict=False) for n in allowed)
        self._allowed_cache: dict[str, bool] = {}
        self.not_allowed = 0
        self.command_timeout = command_timeout
        self.session_timeout = session_timeout
        self.max_sessions = max_sessions
        self.active = 0
        self.refused = 0
        self.protocol_errors = 0
        self.handler_errors = 0
        self.sessions_done = 0
        self.sessions: set[AGISession] = set()
        self.waiting_env: set[_AGIProtocol] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def address_allowed(self, peer: object) -> bool:
        host = peer[0] if isinstance(peer, tuple) and peer else None
        if not isinstance(host, str):
            return False
        known = self._allowed_cache.get(host)
        if known is None:
            try:
                addr = ipaddress.ip_address(host)
            except ValueError:
                return False
            known = any(addr in n for n in self.allowed)
            if len(self._allowed_cache) < 10_000:
                self._allowed_cache[host] = known
        return known

    async def _sweep(self) -> None:
        """Once per tick, fail commands waiting longer than command_timeout and cancel sessions
        running longer than session_timeout: one timer for the server instead of one per command."""
        loop = asyncio.get_running_loop()
        tick = min(0.25, self.command_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for proto in list(self.waiting_env):  # connected but silent: a scan, a half-open socket
                if now - proto.connected_at > self.command_timeout:
                    log.warning("AGI: no environment from %s in %.0f s; closing", proto._peer(), self.command_timeout)
                    proto._close()
                    self.waiting_env.discard(proto)
            for session in list(self.sessions):
                session._expire_if_older(now - self.command_timeout)
                if now - session._started > self.session_timeout and not session._expired:
                    session._expired = True
                    task = session._task
                    if task is not None:
                        task.cancel()

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            functools.partial(_AGIProtocol, self, loop), host, port, reuse_address=True, backlog=1024
        )
        self._sweeper = loop.create_task(self._sweep(), name="agi-sweeper")
        log.info("FastAGI listening on %s:%d", host, port)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._server is not None:
            self._server.close()
            tasks = [s._task for s in self.sessions if s._task is not None]
            for task in tasks:  # running handlers must not write to the journal after its last flush
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
