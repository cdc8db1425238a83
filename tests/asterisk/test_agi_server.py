"""The FastAGI server and the routing handlers, driven over real TCP by a client that replays what
Asterisk 22 sent in tests/fixtures/agi/ (recorded by scripts/record-fixtures)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.asterisk.agi_server import AGIServer
from hotline.db.engine import create_engine_for
from hotline.db.repositories import CallRepository, ConfigRepository
from hotline.db.repositories.agents import AgentStateRepository
from hotline.domain.config import ConfigSnapshot
from hotline.features.agents.service import AgentService
from hotline.features.journal.service import JournalService
from hotline.features.routing.agi_handlers import RoutingHandlers
from hotline.features.routing.router import Decision, RouteContext

FIX = Path(__file__).parents[1] / "fixtures" / "agi"
ENV = FIX.joinpath("inbound_from_asterisk.bin").read_bytes().split(b"\n\n", 1)[0] + b"\n\n"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class FakeAsterisk:
    """Plays Asterisk's side of one FastAGI session: env block, then one reply per command line."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.commands: list[str] = []

    async def session(self, env: bytes = ENV, *, hangup_before_reply: int | None = None, answer: bool = True) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(env)
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), 5)
                if not line:
                    return True  # Hotline closed the session: AGI() returns to the dialplan
                cmd = line.decode().rstrip("\n")
                self.commands.append(cmd)
                if not answer:
                    continue
                if hangup_before_reply == len(self.commands):
                    writer.write(b"HANGUP\n")
                writer.write(b"200 result=0\n" if cmd.startswith("GET VARIABLE") else b"200 result=1\n")
        finally:
            writer.close()


@pytest.fixture()
async def stack(sqlite_url: str):  # type: ignore[no-untyped-def]
    engine = create_engine_for(sqlite_url)
    config = ConfigRepository(engine)
    config.add_queue("support")
    config.add_route("5100", "queue", "support")
    snap = config.load_snapshot()
    journal = JournalService(CallRepository(engine))
    agents = AgentService(AgentStateRepository(engine), lambda: snap)
    handlers = RoutingHandlers(
        lambda node: RouteContext(snap, datetime.now(UTC)), journal, agents, decision_timeout=0.3
    )
    server = AGIServer({"inbound": handlers.inbound}, command_timeout=0.5, max_sessions=3)
    await server.start("127.0.0.1", 0)
    yield server, handlers, journal, CallRepository(engine)
    await server.stop()
    engine.dispose()


async def test_replayed_session_gets_the_recorded_commands(stack) -> None:  # type: ignore[no-untyped-def]
    server, handlers, journal, calls = stack
    fake = FakeAsterisk(server.port)
    assert await fake.session()
    recorded = FIX.joinpath("inbound_from_hotline.bin").read_text().splitlines()
    assert [UUID.sub("<id>", c) for c in fake.commands] == [UUID.sub("<id>", c) for c in recorded]
    await journal.flush()
    call_id = UUID.search(fake.commands[0]).group(0)  # type: ignore[union-attr]
    names = [e.event for e in calls.events_for(call_id)]
    assert names == ["CallIdAssigned", "Routed"]
    rec = calls.get_call(call_id)
    assert rec is not None and rec.did == "5100" and rec.caller_num == "74951234567"


async def test_slow_decision_leaves_the_call_to_the_fallback_and_is_journaled(stack) -> None:  # type: ignore[no-untyped-def]
    server, handlers, journal, calls = stack

    async def slow(session, snap: ConfigSnapshot) -> Decision:  # type: ignore[no-untyped-def]
        await asyncio.sleep(5)  # the behaviour under test: a decision slower than decision_timeout
        raise AssertionError("not reached")

    handlers._decide_inbound = slow  # type: ignore[method-assign]
    fake = FakeAsterisk(server.port)
    assert await asyncio.wait_for(fake.session(), 3)
    assert not any("HOTLINE_ACTION" in c for c in fake.commands)
    assert fake.commands[-1] == 'SET VARIABLE "HOTLINE_FALLBACK_REASON" "hotline-timeout"'
    await journal.flush()
    call_id = UUID.search(fake.commands[0]).group(0)  # type: ignore[union-attr]
    events = calls.events_for(call_id)
    assert [e.event for e in events][-1] == "RouteFailed" and events[-1].data["error"].startswith("timeout")


async def test_failing_decision_is_journaled_with_its_error(stack) -> None:  # type: ignore[no-untyped-def]
    server, handlers, journal, calls = stack

    async def broken(session, snap: ConfigSnapshot) -> Decision:  # type: ignore[no-untyped-def]
        raise KeyError("queue index corrupt")

    handlers._decide_inbound = broken  # type: ignore[method-assign]
    fake = FakeAsterisk(server.port)
    assert await fake.session()
    assert fake.commands[-1] == 'SET VARIABLE "HOTLINE_FALLBACK_REASON" "hotline-KeyError"'
    assert handlers.failed == 1


async def test_hangup_line_before_a_reply_does_not_derail_the_session(stack) -> None:  # type: ignore[no-untyped-def]
    server, handlers, journal, calls = stack
    fake = FakeAsterisk(server.port)
    assert await fake.session(hangup_before_reply=2)
    assert fake.commands[-1] == 'SET VARIABLE "HOTLINE_ACTION" "queue"'


async def test_garbage_env_closes_the_connection(stack) -> None:  # type: ignore[no-untyped-def]
    server, handlers, journal, calls = stack
    fake = FakeAsterisk(server.port)
    assert await fake.session(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert fake.commands == [] and server.protocol_errors == 1


async def test_unknown_script_gets_no_commands(stack) -> None:  # type: ignore[no-untyped-def]
    server, handlers, journal, calls = stack
    fake = FakeAsterisk(server.port)
    assert await fake.session(ENV.replace(b"inbound?node", b"nosuchscript?node"))
    assert fake.commands == []


async def test_silent_asterisk_times_out_and_the_session_closes(stack) -> None:  # type: ignore[no-untyped-def]
    server, handlers, journal, calls = stack
    fake = FakeAsterisk(server.port)
    assert await asyncio.wait_for(fake.session(answer=False), 3)
    assert len(fake.commands) == 1 and fake.commands[0].startswith('SET VARIABLE "__HOTLINE_CALL_ID"')


async def test_sessions_over_the_limit_are_refused_at_once(stack) -> None:  # type: ignore[no-untyped-def]
    server, handlers, journal, calls = stack
    held = []
    for _ in range(3):  # max_sessions=3: three sessions that never send their env
        held.append(await asyncio.open_connection("127.0.0.1", server.port))
    while server.active < 3:
        await asyncio.sleep(0.01)  # wait for the accept callbacks to run (polling a counter)
    fake = FakeAsterisk(server.port)
    assert await fake.session()
    assert fake.commands == [] and server.refused == 1
    for _, w in held:
        w.close()


async def test_a_handler_over_the_session_timeout_is_stopped_and_the_call_released() -> None:
    never = asyncio.Event()

    async def stuck(session) -> None:  # type: ignore[no-untyped-def]
        await session.get_variable("X")
        await never.wait()  # e.g. a collaborator that never answers

    server = AGIServer({"inbound": stuck}, command_timeout=1.0, session_timeout=0.3)
    await server.start("127.0.0.1", 0)
    try:
        fake = FakeAsterisk(server.port)
        assert await asyncio.wait_for(fake.session(), 3)  # Hotline closed the connection by itself
        assert fake.commands == ['GET VARIABLE "X"']
    finally:
        await server.stop()


async def test_a_connection_that_never_sends_its_environment_is_closed() -> None:
    async def unused(session) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("no session may start")

    server = AGIServer({"inbound": unused}, command_timeout=0.3)
    await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # a port scan, a dead peer
        assert await asyncio.wait_for(reader.read(), 3) == b""  # closed by the sweeper, slot freed
        writer.close()
    finally:
        await server.stop()
