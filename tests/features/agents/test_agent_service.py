"""AgentService on a real database (SQLite, PostgreSQL, MariaDB): logins, pauses, queue events, restarts.

The nodes' side (QueuePause over AMI) is a recording collaborator here; the end-to-end tests prove it on a
real Asterisk node."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.db import tables as t
from hotline.db.engine import create_engine_for
from hotline.db.repositories import ConfigRepository
from hotline.db.repositories.agents import AgentStateRepository
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.domain import agent_state as st
from hotline.domain.config import ConfigSnapshot
from hotline.errors import ConflictError, NotFoundError, ValidationError
from hotline.features.agents.service import MISSED_CALLS_REASON, AgentService, AuthenticationError
from hotline.protocols.ami import Message


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    """Poll a real condition (a background task is doing the work) until a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = ConfigRepository(engine)
        self.cc = CallCenterRepository(engine)
        self.repo = AgentStateRepository(engine)
        self.snap: ConfigSnapshot = self.config.load_snapshot()
        self.pauses: list[tuple[str, bool, str]] = []
        self.events: list[tuple[str, dict[str, object]]] = []
        self.clock = Clock()

    def refresh(self) -> None:
        self.snap = self.config.load_snapshot()

    async def pauser(self, interface: str, paused: bool, reason: str) -> None:
        self.pauses.append((interface, paused, reason))

    def service(self) -> AgentService:
        return AgentService(
            self.repo,
            lambda: self.snap,
            pauser=self.pauser,
            publish=lambda name, data: self.events.append((name, data)),
            clock=self.clock,
        )

    def members(self) -> list[tuple[str, str, str, int, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.queues.c.name, t.queue_members.c.interface, t.queue_members.c.membername,
                          t.queue_members.c.paused, t.queue_members.c.reason_paused)
                .join(t.queues, t.queues.c.id == t.queue_members.c.queue_id)
                .order_by(t.queues.c.name, t.queue_members.c.interface)
            )  # fmt: skip
            return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    engine = create_engine_for(db_url)
    w = World(engine)
    for phone in ("2101", "2102"):
        w.config.add_phone(phone, "secret-password", realm="hotline")
    w.config.add_agent_group("juniors")
    w.cc.update_agent_group("juniors", max_missed_in_row=2)
    w.config.add_agent("1001", "Alice", group="juniors", pin="4321")
    w.config.add_agent("1002", "Boris", pin="8765")
    w.config.add_queue("support", wrapuptime=5)
    w.config.add_queue("sales")
    w.cc.set_agent_queue("1001", "support", 0)
    w.cc.set_agent_queue("1001", "sales", 2)
    w.cc.set_agent_queue("1002", "support", 1)
    w.cc.add_pause_reason("lunch", paid=False, max_duration_s=1800)
    w.refresh()
    yield w
    engine.dispose()


async def test_login_with_pin_creates_the_memberships_on_that_phone(world: World) -> None:
    svc = world.service()
    await svc.start()
    with pytest.raises(AuthenticationError):
        await svc.login("1001", "0000", "2101", actor="test")
    with pytest.raises(AuthenticationError):
        await svc.login("9999", "4321", "2101", actor="test")  # same error: no hint which was wrong
    assert world.members() == []
    status = await svc.login("1001", "4321", "2101", actor="test")
    assert status.state == st.AVAILABLE and status.phone == "2101"
    assert world.members() == [("sales", "PJSIP/2101", "1001", 0, ""), ("support", "PJSIP/2101", "1001", 0, "")]
    world.refresh()
    assert svc.agent_on_phone("2101").number == "1001"  # type: ignore[union-attr]
    assert svc.phone_of_agent("1001") == "2101"
    assert [e[0] for e in world.events] == ["agent.login"]


async def test_one_agent_per_phone_and_one_phone_per_agent(world: World) -> None:
    svc = world.service()
    await svc.start()
    await svc.login("1001", None, "2101", actor="supervisor", check_pin=False)
    await svc.login("1002", "8765", "2101", actor="test")  # takes the phone: Alice is logged off
    assert svc.status(world.snap.agent_by_number["1001"].id).state == st.LOGGED_OUT
    assert world.members() == [("support", "PJSIP/2101", "1002", 0, "")]
    await svc.login("1002", "8765", "2102", actor="test")  # moves to another phone
    assert svc.agent_on_phone("2101") is None and svc.phone_of_agent("1002") == "2102"
    assert world.members() == [("support", "PJSIP/2102", "1002", 0, "")]
    events = world.repo.events_for(world.snap.agent_by_number["1001"].id)
    assert [(e.event, e.to_state, e.reason) for e in events][-1] == ("logoff", st.LOGGED_OUT, "agent 1002 logged in")


async def test_pause_persists_in_the_memberships_and_tells_the_nodes(world: World) -> None:
    svc = world.service()
    await svc.start()
    with pytest.raises(ConflictError, match="not logged in"):
        await svc.pause("1001", "lunch", actor="test")
    await svc.login("1001", "4321", "2101", actor="test")
    with pytest.raises(ValidationError, match="unknown pause reason 'nap'"):
        await svc.pause("1001", "nap", actor="test")
    paused = await svc.pause("1001", "lunch", actor="supervisor")
    assert paused.state == st.PAUSED and paused.pause_reason == "lunch"
    assert {m[3:] for m in world.members()} == {(1, "lunch")}
    assert world.pauses == [("PJSIP/2101", True, "lunch")]
    await svc.unpause("1001", actor="test")
    assert {m[3:] for m in world.members()} == {(0, "")}
    assert world.pauses[-1] == ("PJSIP/2101", False, "")
    # a re-login keeps the pause in the new memberships
    await svc.pause("1001", "lunch", actor="test")
    await svc.login("1001", "4321", "2102", actor="test")
    assert {m[1:] for m in world.members()} == {("PJSIP/2102", "1001", 1, "lunch")}


def _queue_event(name: str, agent: str, queue: str = "support", **extra: str) -> Message:
    headers = [("Event", name), ("Queue", queue), ("MemberName", agent), ("Interface", "PJSIP/2101"),
               ("ChanVariable", "HOTLINE_CALL_ID=call-1"), *extra.items()]  # fmt: skip
    return Message(headers)


async def test_queue_events_drive_ringing_on_call_wrap_up(world: World) -> None:
    svc = world.service()
    await svc.start()
    await svc.login("1001", "4321", "2101", actor="test")
    aid = world.snap.agent_by_number["1001"].id
    svc.on_ami("n1", _queue_event("AgentCalled", "1001"))
    assert svc.status(aid).state == st.RINGING and svc.status(aid).call_id == "call-1"
    assert world.events[-1][0] == "agent.ringing"
    svc.on_ami("n1", _queue_event("AgentConnect", "1001"))
    assert svc.status(aid).state == st.ON_CALL
    svc.on_ami("n1", _queue_event("AgentComplete", "1001", Reason="caller"))
    assert svc.status(aid).state == st.WRAP_UP
    assert svc.status(aid).wrapup_until == world.clock.now + timedelta(seconds=5)  # the queue's wrap-up
    svc.on_ami("n1", _queue_event("AgentCalled", "unknown-static-member"))  # not an agent: ignored
    await svc.flush()
    names = [(e.event, e.to_state) for e in world.repo.events_for(aid)]
    assert names == [("login", "available"), ("ring", "ringing"), ("connect", "on_call"), ("complete", "wrap_up")]


async def test_one_flush_stores_every_agents_latest_state(world: World) -> None:
    """A busy moment's transitions of several agents are written in one flush (one UPDATE for all agents);
    each agent's row ends with its own latest state, as another instance reads it."""
    svc = world.service()
    await svc.start()
    await svc.login("1001", "4321", "2101", actor="test")
    await svc.login("1002", "8765", "2102", actor="test")
    alice, boris = (world.snap.agent_by_number[n].id for n in ("1001", "1002"))
    svc.on_ami("n1", _queue_event("AgentCalled", "1001"))
    svc.on_ami("n1", _queue_event("AgentCalled", "1002"))
    svc.on_ami("n1", _queue_event("AgentConnect", "1002"))
    svc.on_ami("n1", _queue_event("AgentConnect", "1001"))
    svc.on_ami("n1", _queue_event("AgentComplete", "1001", Reason="caller"))
    await svc.flush()
    stored = {s.agent_id: s for s in world.repo.load_all()}
    assert (stored[alice].state, stored[alice].phone, stored[alice].call_id) == (st.WRAP_UP, "2101", "call-1")
    assert (stored[boris].state, stored[boris].phone, stored[boris].call_id) == (st.ON_CALL, "2102", "call-1")
    other = world.service()  # another instance sees the same
    await other.start()
    assert (other.status(alice).state, other.status(boris).state) == (st.WRAP_UP, st.ON_CALL)


async def test_missed_calls_in_a_row_pause_the_agent(world: World) -> None:
    svc = world.service()
    await svc.start()
    await svc.login("1001", "4321", "2101", actor="test")
    aid = world.snap.agent_by_number["1001"].id
    svc.on_ami("n1", _queue_event("AgentCalled", "1001"))
    svc.on_ami("n1", _queue_event("AgentRingNoAnswer", "1001", RingTime="15000"))
    assert svc.status(aid).state == st.AVAILABLE and svc.status(aid).missed_in_row == 1
    svc.on_ami("n1", _queue_event("AgentCalled", "1001"))
    svc.on_ami("n1", _queue_event("AgentRingNoAnswer", "1001", RingTime="15000"))
    # the group's limit (2) is reached: a pause is on its way (a task: the AMI reader never waits)
    await eventually(lambda: svc.status(aid).state == st.PAUSED, "the automatic pause")
    status = svc.status(aid)
    assert status.state == st.PAUSED and status.pause_reason == MISSED_CALLS_REASON
    assert status.missed_total == 2
    assert world.pauses == [("PJSIP/2101", True, MISSED_CALLS_REASON)]


async def test_state_survives_a_restart_and_other_instances_see_changes(world: World) -> None:
    first = world.service()
    await first.start()
    await first.login("1001", "4321", "2101", actor="test")
    await first.pause("1001", "lunch", actor="test")
    second = world.service()  # another Hotline instance, or this one after a restart
    await second.start()
    aid = world.snap.agent_by_number["1001"].id
    assert second.status(aid).state == st.PAUSED and second.agent_on_phone("2101") is not None
    await first.logoff("1001", actor="test")
    world.pauses.clear()
    await second.reload()  # what a configuration change notification triggers
    assert second.status(aid).state == st.LOGGED_OUT and second.agent_on_phone("2101") is None


async def test_wrap_up_and_pause_limits_end_on_the_clock(world: World) -> None:
    svc = world.service()
    await svc.start()
    await svc.login("1001", "4321", "2101", actor="test")
    await svc.login("1002", "8765", "2102", actor="test")
    a1, a2 = world.snap.agent_by_number["1001"].id, world.snap.agent_by_number["1002"].id
    svc.on_ami("n1", _queue_event("AgentConnect", "1001"))
    svc.on_ami("n1", _queue_event("AgentComplete", "1001"))
    await svc.pause("1002", "lunch", actor="test")
    task = asyncio.get_running_loop().create_task(svc.timer_loop(interval=0.01))
    try:
        world.clock.now += timedelta(seconds=6)
        await eventually(lambda: svc.status(a1).state == st.AVAILABLE, "the end of wrap-up")
        assert svc.status(a1).state == st.AVAILABLE and svc.status(a2).state == st.PAUSED
        world.clock.now += timedelta(seconds=1800)
        await eventually(lambda: svc.status(a2).state == st.AVAILABLE, "the end of the pause")
        assert svc.status(a2).state == st.AVAILABLE
        assert world.repo.events_for(a2)[-1].event == "pause_expired"
    finally:
        task.cancel()


async def test_quota_usage_is_counted_and_persisted(world: World) -> None:
    svc = world.service()
    await svc.start()
    aid = world.snap.agent_by_number["1001"].id
    svc.count_usage(aid, calls=1)
    svc.count_usage(aid, seconds=42)
    await svc.flush()
    assert svc.usage_today(aid) == (1, 42)
    again = world.service()
    assert await again.load_usage(aid) == (1, 42)


async def test_unknown_agents_and_phones(world: World) -> None:
    svc = world.service()
    await svc.start()
    with pytest.raises(NotFoundError):
        await svc.login("1001", None, "nope", actor="test", check_pin=False)
    with pytest.raises(NotFoundError):
        await svc.logoff("4040", actor="test")
