"""The call lifecycle reducer on typed events: status and who hung up first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotline.domain.call_state import CallTracker
from hotline.domain.calls import CallRecord
from hotline.domain.events import (
    AgentCompleted,
    AgentConnected,
    CallEvent,
    ChannelActivity,
    ChannelHungUp,
    DialAnswered,
    FallbackTaken,
    HangupRequested,
    QueueAbandoned,
    QueueJoined,
    Routed,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CALLER, AGENT = "node1-1.1", "node1-1.2"


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def run(events: list[CallEvent]) -> tuple[CallRecord, list[bool]]:
    rec = CallRecord(
        call_id="c1",
        node="node1",
        caller_num="100",
        caller_name=None,
        did="5000",
        destination=None,
        status="active",
        started_at=at(0.5),
    )
    t = CallTracker(rec, CALLER)
    ends = [t.apply(e) for e in events]
    return t.record, ends


def ch(uid: str, s: float, name: str = "Newchannel") -> ChannelActivity:
    return ChannelActivity(at(s), uid, True, name=name)


def queue_answered(s_answer: float = 5) -> list[CallEvent]:
    return [
        ch(CALLER, 0),
        Routed(at(0.6), CALLER, False, summary="DID 5000 -> queue support"),
        QueueJoined(at(1), CALLER, True, queue="support"),
        ch(AGENT, 2),
        AgentConnected(
            at(s_answer), CALLER, True, queue="support", member="alice", agent_channel="PJSIP/2001-1", hold_time_s=4.0
        ),
    ]


def test_agent_hangs_up_first() -> None:
    rec, ends = run(
        [
            *queue_answered(),
            AgentCompleted(at(9), CALLER, True, reason="agent"),
            HangupRequested(at(9), AGENT, True),
            ChannelHungUp(at(9.1), AGENT, True, cause=16, cause_text="x"),
            ChannelHungUp(at(9.2), CALLER, True, cause=16, cause_text="Normal Clearing"),
        ]
    )
    assert ends[-1] is True and ends.count(True) == 1
    assert rec.status == "completed" and rec.hangup_by == "agent" and rec.hangup_cause == 16
    assert rec.started_at == at(0)  # the caller's channel existed before the call id
    assert rec.talk_s == pytest.approx(4.2) and rec.duration_s == pytest.approx(9.2) and rec.queue_wait_s == 4.0


def test_caller_hangs_up_first_without_agent_complete() -> None:
    rec, _ = run(
        [
            *queue_answered(),
            HangupRequested(at(7), CALLER, True),
            ChannelHungUp(at(7.1), CALLER, True, cause=16, cause_text=None),
            ChannelHungUp(at(7.2), AGENT, True, cause=16, cause_text=None),
        ]
    )
    assert rec.hangup_by == "caller" and rec.status == "completed" and rec.ended_at == at(7.1)


def test_caller_gives_up_in_the_queue() -> None:
    rec, _ = run(
        [
            ch(CALLER, 0),
            QueueJoined(at(1), CALLER, True, queue="support"),
            HangupRequested(at(20), CALLER, True),
            QueueAbandoned(at(20), CALLER, True, hold_time_s=19.0),
            ChannelHungUp(at(20.1), CALLER, True, cause=16, cause_text=None),
        ]
    )
    assert rec.status == "abandoned" and rec.hangup_by == "caller" and rec.queue_wait_s == 19.0
    assert rec.answered_at is None and rec.talk_s is None


def test_rejected_by_the_system() -> None:
    rec, _ = run([ch(CALLER, 0), ChannelHungUp(at(0.2), CALLER, True, cause=21, cause_text="Call Rejected")])
    assert rec.status == "failed" and rec.hangup_by == "system" and rec.hangup_cause == 21


def test_fallback_and_direct_dial() -> None:
    rec, _ = run(
        [
            ch(CALLER, 0),
            FallbackTaken(at(3), CALLER, True, reason="watchdog"),
            ch("fb-2", 3.1),
            DialAnswered(at(4), CALLER, True, dest_channel="PJSIP/carrier-2"),
            HangupRequested(at(6), CALLER, True),
            ChannelHungUp(at(6), CALLER, True, cause=16, cause_text=None),
            ChannelHungUp(at(6.1), "fb-2", True, cause=16, cause_text=None),
        ]
    )
    assert rec.status == "fallback" and rec.route_error == "watchdog" and rec.hangup_by == "caller"
    assert rec.answered_at == at(4)


def test_transfer_counts_as_agent_and_events_after_the_end_are_ignored() -> None:
    rec, ends = run(
        [
            *queue_answered(),
            AgentCompleted(at(8), CALLER, True, reason="transfer"),
            ChannelHungUp(at(8), AGENT, True, cause=16, cause_text=None),
            ChannelHungUp(at(8.1), CALLER, True, cause=16, cause_text=None),
            HangupRequested(at(9), CALLER, True),
        ]
    )
    assert rec.hangup_by == "agent" and ends == [False] * 7 + [True, False]
