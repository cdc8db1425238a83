"""hotline.domain.config and .calls invariants (kept beside the repository tests that build them)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hotline.domain.calls import CallRecord, JournalEvent
from hotline.domain.config import ConfigSnapshot, DidRoute, Queue, QueueMember

from .. import factories


def _queue(id: int, name: str) -> Queue:
    return factories.queue(id, name)


def _member(id: int, queue: Queue, interface: str) -> QueueMember:
    return factories.member(id, queue, interface)


def test_snapshot_indexes_are_derived_and_read_only() -> None:
    q1, q2 = _queue(1, "q1"), _queue(2, "q2")
    m1, m2 = _member(1, q1, "PJSIP/1"), _member(2, q1, "PJSIP/2")
    route = DidRoute(1, "5000", "queue", "q1", None, "", "", True)
    snap = ConfigSnapshot.build(7, queues=[q1, q2], queue_members=iter([m1, m2]), did_routes=[route])
    assert snap.queues == (q1, q2) and snap.queue_members == (m1, m2)
    assert dict(snap.members_by_queue) == {"q1": (m1, m2), "q2": ()}
    assert snap.queue_by_name["q2"] is q2
    assert snap.route_by_did["5000"] is route
    assert dict(snap.phone_by_name) == {} and dict(snap.agent_by_number) == {}
    with pytest.raises(TypeError):
        snap.queue_by_name["q3"] = q1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.version = 8  # type: ignore[misc]
    assert ConfigSnapshot(7, queues=(q1, q2)).queue_by_name == snap.queue_by_name


def test_journal_event_normalises_time_and_freezes_data() -> None:
    data = {"a": "1"}
    ev = JournalEvent(
        "c",
        1,
        datetime(2025, 1, 1, 3, tzinfo=timezone(timedelta(hours=3))),
        "ami",
        "n",
        "E",
        None,
        None,
        data,
    )
    data["a"] = "changed"
    assert ev.ts == datetime(2025, 1, 1, 0, tzinfo=UTC) and ev.ts.tzinfo is UTC
    assert dict(ev.data) == {"a": "1"}
    with pytest.raises(ValueError, match="timezone-aware"):
        JournalEvent("c", 1, datetime(2025, 1, 1), "ami", "n", "E", None, None, {})
    with pytest.raises(ValueError, match="source"):
        JournalEvent("c", 1, datetime.now(UTC), "sip", "n", "E", None, None, {})


def test_call_record_checks_status_hangup_by_and_times() -> None:
    rec = CallRecord("c", "n", "1", "", "5000", "", "active", datetime.now(UTC))
    assert rec.ended_at is None and rec.hangup_by is None
    with pytest.raises(ValueError, match="status"):
        CallRecord("c", "n", "1", "", "5000", "", "ringing", datetime.now(UTC))
    with pytest.raises(ValueError, match="hangup_by"):
        CallRecord("c", "n", "1", "", "5000", "", "completed", datetime.now(UTC), hangup_by="carrier")
    with pytest.raises(ValueError, match="ended_at"):
        CallRecord("c", "n", "1", "", "5000", "", "completed", datetime.now(UTC), ended_at=datetime(2025, 1, 1))
