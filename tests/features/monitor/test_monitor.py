"""The live queue tiles: waiting callers from AMI, agents by state, today's figures, alarm levels."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from hotline.db.repositories.history import QueueDay
from hotline.domain import agent_state as st
from hotline.domain.agent_state import AgentStatus
from hotline.domain.config import AgentQueue, ConfigSnapshot
from hotline.features.events import Event, EventBus
from hotline.features.monitor import MonitorService, Thresholds, alarm_level
from hotline.protocols.ami import Message
from tests import factories as f


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class History:
    def __init__(self, days: dict[str, QueueDay]) -> None:
        self.days = days

    def queue_day(self, start: datetime) -> dict[str, QueueDay]:
        return self.days


def _msg(name: str, **headers: str) -> Message:
    return Message([("Event", name), *headers.items()])


@pytest.fixture
def snap() -> ConfigSnapshot:
    q = f.queue(1, "sales", servicelevel=20)
    agents = [f.agent(1, "7001"), f.agent(2, "7002"), f.agent(3, "7003")]
    skills = [AgentQueue(i, a.id, 1, 0) for i, a in enumerate(agents, 1)]
    return ConfigSnapshot.build(1, queues=[q], agents=agents, agent_queues=skills)


def _status(agent_id: int, state: str) -> AgentStatus:
    now = datetime.now(UTC)
    return AgentStatus(agent_id, f"p{agent_id}", state, "", now, now, None, 0, 0, None)


async def _service(snap: ConfigSnapshot, statuses: list[AgentStatus], days: dict[str, QueueDay] | None = None
                   ) -> tuple[MonitorService, list[Event], Clock]:  # fmt: skip
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(lambda e: seen.append(e) if e.name == "queue.stats" else None)
    clock = Clock()
    history: Any = History(days or {})
    thresholds = {"sales": Thresholds(2, 3, 30, 60)}
    svc = MonitorService(lambda: snap, lambda: statuses, history, bus,
                         thresholds=lambda: thresholds, clock=clock, min_interval=0)  # fmt: skip
    await svc.start()
    return svc, seen, clock


async def test_waiting_callers_and_alarm_follow_ami(snap: ConfigSnapshot) -> None:
    svc, seen, clock = await _service(snap, [_status(1, st.AVAILABLE), _status(2, st.ON_CALL), _status(3, st.PAUSED)])
    for i in range(3):
        join = _msg("QueueCallerJoin", Queue="sales", Uniqueid=f"u{i}", CallerIDNum=f"+7{i}", Position=str(i + 1),
                    ChanVariable=f"HOTLINE_CALL_ID=c{i}")  # fmt: skip
        svc.on_ami("node1", join)
        clock.now += 1
    tile = seen[-1].data
    assert tile["waiting"] == 3 and tile["alarm"] == "red" and tile["longest_wait_s"] == 2.0
    agents = {"available": 1, "ringing": 0, "on_call": 1, "wrap_up": 0, "paused": 1, "logged_in": 3}
    assert dict(tile["agents"]) == agents
    svc.on_ami("node1", _msg("AgentConnect", Queue="sales", Uniqueid="u0", HoldTime="15"))
    svc.on_ami("node1", _msg("QueueCallerAbandon", Queue="sales", Uniqueid="u1"))
    tile = seen[-1].data
    assert tile["waiting"] == 1 and tile["alarm"] == "ok"
    today = tile["today"]
    assert (today["offered"], today["answered"], today["abandoned"]) == (3, 1, 1)
    assert today["service_level"] == 1.0 and today["abandon_rate"] == 0.5
    clock.now += 40
    assert svc.tile("sales")["alarm"] == "amber"  # one caller, waiting 41 s: past 30 s, below 60 s


async def test_today_starts_from_the_journal_and_counts_sl_by_hold_time(snap: ConfigSnapshot) -> None:
    day = QueueDay("sales", offered=10, answered=8, abandoned=2, answered_in_sl=6, wait_total_s=80.0)
    svc, seen, _ = await _service(snap, [], {"sales": day})
    svc.on_ami("n", _msg("QueueCallerJoin", Queue="sales", Uniqueid="x"))
    svc.on_ami("n", _msg("AgentConnect", Queue="sales", Uniqueid="x", HoldTime="25"))  # beyond the 20 s threshold
    today = seen[-1].data["today"]
    assert (today["offered"], today["answered"], today["service_level"]) == (11, 9, round(6 / 9, 4))


async def test_malformed_events_are_ignored_field_by_field(snap: ConfigSnapshot) -> None:
    svc, seen, _ = await _service(snap, [])
    svc.on_ami("n", _msg("QueueCallerJoin", Uniqueid="x"))  # no queue: nothing to show
    svc.on_ami("n", _msg("QueueCallerJoin", Queue="sales", Uniqueid="y", Position="first"))
    svc.on_ami("n", _msg("QueueCallerLeave", Queue="sales", Uniqueid="unknown"))
    assert [e.data["waiting"] for e in seen] == [1]
    svc.on_ami("n", _msg("AgentConnect", Queue="sales", Uniqueid="y", HoldTime="soon"))
    assert seen[-1].data["waiting"] == 0 and seen[-1].data["today"]["answered"] == 1


async def test_agent_state_change_republishes_its_queues(snap: ConfigSnapshot) -> None:
    statuses = [_status(1, st.AVAILABLE)]
    svc, seen, _ = await _service(snap, statuses)
    svc._bus.publish("agent.state", {"agent": "7001", "state": "available"})
    assert seen and seen[-1].data["queue"] == "sales" and seen[-1].data["agents"]["available"] == 1


def test_alarm_levels_and_zero_means_off() -> None:
    th = Thresholds(waiting_amber=2, waiting_red=0, wait_amber_s=0, wait_red_s=100)
    assert alarm_level(1, 10, th) == "ok"
    assert alarm_level(50, 10, th) == "amber"
    assert alarm_level(0, 100, th) == "red"


async def test_a_burst_is_one_event_per_queue_carrying_the_oldest_change(snap: ConfigSnapshot) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(lambda e: seen.append(e) if e.name == "queue.stats" else None)
    history: Any = History({})
    svc = MonitorService(lambda: snap, lambda: [], history, bus, thresholds=dict, min_interval=0.05)
    await svc.start()
    flushed = asyncio.Event()
    bus.subscribe(lambda e: flushed.set())
    for i in range(5):
        svc.on_ami("n", _msg("QueueCallerJoin", Queue="sales", Uniqueid=f"u{i}", Timestamp=f"1800000000.{i}00000"))
    assert seen == []  # nothing yet: the burst is folded
    await asyncio.wait_for(flushed.wait(), 2)
    assert len(seen) == 1 and seen[0].data["waiting"] == 5
    assert seen[0].data["source_ts"] == 1800000000.0  # latency counts from the oldest change in the burst


async def test_publications_are_throttled_not_delayed(snap: ConfigSnapshot) -> None:
    """After a quiet moment a change goes out at once (same loop pass); while changes keep coming, at most
    one publication per min_interval: a screen redraws at a bounded rate, however busy the queue."""
    bus = EventBus()
    published: list[tuple[float, int]] = []
    loop = asyncio.get_running_loop()
    got = asyncio.Queue[None]()

    def on(e: Event) -> None:
        if e.name == "queue.stats":
            published.append((loop.time(), int(e.data["waiting"])))
            got.put_nowait(None)

    bus.subscribe(on)
    history: Any = History({})
    svc = MonitorService(lambda: snap, lambda: [], history, bus, thresholds=dict, min_interval=0.3)
    await svc.start()
    t0 = loop.time()
    svc.on_ami("n", _msg("QueueCallerJoin", Queue="sales", Uniqueid="u1"))
    await asyncio.wait_for(got.get(), 2)
    assert published[0][0] - t0 < 0.1  # quiet before: not held back by the interval
    svc.on_ami("n", _msg("QueueCallerJoin", Queue="sales", Uniqueid="u2"))
    svc.on_ami("n", _msg("QueueCallerJoin", Queue="sales", Uniqueid="u3"))
    await asyncio.wait_for(got.get(), 2)
    assert len(published) == 2 and published[1][1] == 3  # both changes folded into one publication
    assert published[1][0] - published[0][0] >= 0.3 - 0.01  # not before the interval had passed


def _agent_event(name: str, agent: str) -> Event:
    return Event("e1", 1, name, datetime.now(UTC), {"agent": agent})


async def test_a_change_that_changes_nothing_shown_is_not_sent(snap: ConfigSnapshot) -> None:
    """Every queue.stats is a frame on every wallboard: an agent event that moves no count sends nothing, a
    state change that does is sent, and the once-a-second tick is sent even when only the wait moved."""
    statuses = [_status(1, st.AVAILABLE), _status(2, st.AVAILABLE), _status(3, st.PAUSED)]
    svc, seen, clock = await _service(snap, statuses)
    svc.on_ami("node1", _msg("QueueCallerJoin", Queue="sales", Uniqueid="u1"))
    assert len(seen) == 1
    svc.on_event(_agent_event("agent.tagged", "7001"))  # no count moves
    clock.now += 0.5
    svc.on_event(_agent_event("agent.note", "7002"))  # the wait moved, nothing else
    assert len(seen) == 1 and svc.unchanged == 2
    statuses[0] = _status(1, st.RINGING)
    svc.on_event(_agent_event("agent.ringing", "7001"))
    assert len(seen) == 2 and seen[-1].data["agents"]["ringing"] == 1
    svc._publish("sales", force=True)  # what the tick does while callers wait
    assert len(seen) == 3 and seen[-1].data["longest_wait_s"] == 0.5
