"""AGIServer session life cycle over real TCP, on stock asyncio and on uvloop (the loop Hotline ships
with): what a handler sees from `command()`, and how every way a handler ends is counted and closes the
call's connection."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import uvloop

from hotline.asterisk.agi_server import AGIHangup, AGIServer, AGISession
from hotline.errors import AGIProtocolError
from hotline.protocols.agi import AGIReply

ENV = b"agi_network: yes\nagi_network_script: inbound?node=node1\nagi_channel: PJSIP/trunk-00000001\n\n"
Handler = Callable[[AGISession], Awaitable[None]]


class Asterisk:
    """Asterisk's side of one session: sends the environment, records command lines, answers them
    from `replies` (default `200 result=1`), and reports whether Hotline closed the connection."""

    def __init__(self, port: int, replies: dict[str, bytes] | None = None) -> None:
        self.port = port
        self.replies = replies or {}
        self.commands: list[str] = []

    async def session(self, env: bytes = ENV) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(env)
        try:
            while line := await asyncio.wait_for(reader.readline(), 5):
                cmd = line.decode().rstrip("\n")
                self.commands.append(cmd)
                writer.write(self.replies.get(cmd, b"200 result=1\n"))
            return True  # Hotline closed the connection: AGI() returns to the dialplan
        finally:
            writer.close()


async def serve(handler: Handler, *sessions: Asterisk | bytes) -> AGIServer:
    """Run one session per item against a fresh server; return it stopped, counters final."""
    server = AGIServer({"inbound": handler}, command_timeout=2.0)
    await server.start("127.0.0.1", 0)
    try:
        for item in sessions:
            fake = item if isinstance(item, Asterisk) else Asterisk(server.port)
            fake.port = server.port
            env = item if isinstance(item, bytes) else ENV
            assert await asyncio.wait_for(fake.session(env), 5)
        async with asyncio.timeout(5):
            while server.active:  # connection_lost runs a loop pass after the peer saw the close
                await asyncio.sleep(0)
    finally:
        await server.stop()
    return server


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, AGIServer]], AGIServer]:
    """Run a coroutine on a fresh loop of each kind (plain tests, so pytest-asyncio's loop is not used)."""

    def runner(coro: Coroutine[Any, Any, AGIServer]) -> AGIServer:
        return uvloop.run(coro) if request.param == "uvloop" else asyncio.run(coro)

    return runner


def test_a_session_gets_its_commands_and_the_replies(run: Callable[..., AGIServer]) -> None:
    seen: list[object] = []

    async def handler(session: AGISession) -> None:
        seen.append(session.env.script)
        seen.append(await session.get_variable("HOTLINE_CALL_ID"))
        seen.append(await session.get_variable("CALLERID(num)"))
        seen.append(await session.set_variable("HOTLINE_ACTION", 'queue "support"'))
        seen.append(await session.command("EXEC", "Playback", "beep"))

    fake = Asterisk(0, {'GET VARIABLE "CALLERID(num)"': b"200 result=1 (0612345678)\n"})
    server = run(serve(handler, fake))
    assert fake.commands == [
        'GET VARIABLE "HOTLINE_CALL_ID"',
        'GET VARIABLE "CALLERID(num)"',
        'SET VARIABLE "HOTLINE_ACTION" "queue \\"support\\""',
        'EXEC "Playback" "beep"',
    ]
    assert seen == [
        "inbound",
        None,  # "200 result=1" without data: the variable is empty
        "0612345678",
        AGIReply(200, "1", None, None, "200 result=1"),
        AGIReply(200, "1", None, None, "200 result=1"),
    ]
    assert (server.sessions_done, server.handler_errors, server.active, server.sessions) == (1, 0, 0, set())


def test_command_is_written_when_called(run: Callable[..., AGIServer]) -> None:
    """`command()` sends at once and returns the reply's awaitable: Asterisk sees the line before the
    handler awaits anything."""
    replies: list[AGIReply] = []

    class Signals(Asterisk):
        received: asyncio.Event

        async def session(self, env: bytes = ENV) -> bool:
            self.received = asyncio.Event()
            self.replies = {}
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(env)
            try:
                while line := await asyncio.wait_for(reader.readline(), 5):
                    self.commands.append(line.decode().rstrip("\n"))
                    self.received.set()
                    writer.write(b"200 result=1\n")
                return True
            finally:
                writer.close()

    fake = Signals(0)

    async def handler(session: AGISession) -> None:
        pending = session.set_variable("A", "1")
        await asyncio.wait_for(fake.received.wait(), 5)  # would time out if sending waited for the await
        replies.append(await pending)

    run(serve(handler, fake))
    assert fake.commands == ['SET VARIABLE "A" "1"'] and replies == [AGIReply(200, "1", None, None, "200 result=1")]


def test_handler_that_returns_a_plain_awaitable(run: Callable[..., AGIServer]) -> None:
    def handler(session: AGISession) -> Awaitable[Any]:
        return session.set_variable("HOTLINE_ACTION", "hangup")  # a future, not a coroutine

    fake = Asterisk(0)
    server = run(serve(handler, fake))
    assert fake.commands == ['SET VARIABLE "HOTLINE_ACTION" "hangup"']
    assert (server.sessions_done, server.handler_errors, server.active) == (1, 0, 0)


def test_every_way_a_handler_fails_is_counted_and_closes_the_call(
    run: Callable[..., AGIServer], caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def handler(session: AGISession) -> Awaitable[None]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("raised before returning an awaitable")

        async def body() -> None:
            if calls == 2:
                raise KeyError("raised inside the coroutine")
            await session.set_variable("A", "line\nHANGUP")  # bad input: refused before anything is sent

        return body()

    caplog.set_level(logging.ERROR, "hotline.asterisk.agi_server")
    fake = Asterisk(0)
    server = run(serve(handler, fake, fake, fake))
    assert fake.commands == []
    assert (server.sessions_done, server.handler_errors, server.active, server.sessions) == (3, 3, 0, set())
    errors = [r.exc_info[0] for r in caplog.records if r.exc_info]
    assert errors == [RuntimeError, KeyError, AGIProtocolError]


def test_hangup_while_a_reply_is_awaited(run: Callable[..., AGIServer]) -> None:
    """Asterisk leaves AGI (the caller hung up): the pending command fails with AGIHangup, later
    commands refuse at once, and neither counts as a handler error."""
    outcome: list[str] = []

    async def handler(session: AGISession) -> None:
        try:
            await session.set_variable("A", "1")
        except AGIHangup:
            outcome.append("pending command: AGIHangup")
        try:
            session.set_variable("B", "2")
        except AGIHangup:
            outcome.append("next command: AGIHangup")
        await session.set_variable("C", "3")  # uncaught AGIHangup: the normal end of a hung-up call

    class Leaves(Asterisk):
        async def session(self, env: bytes = ENV) -> bool:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(env)
            self.commands.append((await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\n"))
            writer.write(b"HANGUP\n")
            writer.close()  # AGI() returns: the connection closes before the reply
            return True

    fake = Leaves(0)
    server = run(serve(handler, fake))
    assert fake.commands == ['SET VARIABLE "A" "1"']
    assert outcome == ["pending command: AGIHangup", "next command: AGIHangup"]
    assert (server.sessions_done, server.handler_errors, server.active) == (1, 0, 0)


def test_sessions_one_after_another_reuse_nothing(run: Callable[..., AGIServer]) -> None:
    async def handler(session: AGISession) -> None:
        for i in range(3):
            await session.set_variable(f"V{i}", session.env.channel)

    fake = Asterisk(0)
    server = run(serve(handler, *([fake] * 20)))
    assert len(fake.commands) == 60 and set(fake.commands[:3]) == {
        f'SET VARIABLE "V{i}" "PJSIP/trunk-00000001"' for i in range(3)
    }
    assert (server.sessions_done, server.handler_errors, server.protocol_errors, server.active) == (20, 0, 0, 0)


def test_finished_sessions_are_freed_without_the_cycle_collector() -> None:
    """Nothing per session forms a reference cycle (on uvloop, as shipped): a finished session's objects
    go at once, not at the next pass of the cyclic garbage collector."""

    async def handler(session: AGISession) -> None:
        await session.get_variable("HOTLINE_CALL_ID")
        await session.set_variable("HOTLINE_ACTION", "queue")

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        server = uvloop.run(serve(handler, *([Asterisk(0)] * 10)))
        gc.collect()
        leftovers = {type(o).__name__ for o in gc.garbage} & {
            "AGISession",
            "_AGIProtocol",
            "AGIConnection",
            "AGIEnvironment",
        }
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert server.sessions_done == 10 and leftovers == set()


async def test_a_connection_from_outside_the_allowed_networks_is_closed_unread() -> None:
    async def handler(session: Any) -> None:  # pragma: no cover - must never run
        raise AssertionError("a refused connection reached a handler")

    server = AGIServer({"inbound": handler}, allowed=["10.9.8.0/24"])
    await server.start("127.0.0.1", 0)
    try:
        port = server.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network: yes\nagi_network_script: inbound\n\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server, nothing answered
        writer.close()
        assert server.not_allowed == 1 and server.active == 0
    finally:
        await server.stop()
    assert AGIServer({}, allowed=["127.0.0.0/8"]).address_allowed(("127.0.0.5", 1234))
    assert not AGIServer({}, allowed=["127.0.0.0/8"]).address_allowed(("192.0.2.1", 1234))
