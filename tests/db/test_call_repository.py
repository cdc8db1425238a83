"""CallRepository: events and call records round trip exactly on all three databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hotline.db.repositories import CallRepository
from hotline.domain.calls import CallRecord, JournalEvent
from hotline.errors import ValidationError

T0 = datetime(2025, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)


def event(call_id: str, seq: int, **kw: object) -> JournalEvent:
    values: dict[str, object] = {
        "call_id": call_id,
        "seq": seq,
        "ts": T0 + timedelta(microseconds=seq),
        "source": "ami",
        "node": "node1",
        "event": "Newchannel",
        "uniqueid": f"1764064800.{seq}",
        "channel": f"PJSIP/carrier-{seq:08x}",
        "data": {"Seq": str(seq)},
        **kw,
    }
    return JournalEvent(**values)  # type: ignore[arg-type]


def record(call_id: str = "c-1", **kw: object) -> CallRecord:
    values: dict[str, object] = {
        "call_id": call_id,
        "node": "node1",
        "caller_num": "+74951234567",
        "caller_name": "Оператор Иванов",
        "did": "5000",
        "destination": "queue:support",
        "status": "active",
        "started_at": T0,
        **kw,
    }
    return CallRecord(**values)  # type: ignore[arg-type]


def test_events_round_trip_in_seq_order(calls: CallRepository) -> None:
    odd = event(
        "c-1",
        2,
        source="agi",
        event="Route",
        uniqueid=None,
        channel=None,
        data={"dest": "queue:support", "Имя": "Оператор 🎧", "quote": '"\\\n', "empty": ""},
        ts=datetime(2025, 11, 25, 13, 0, 0, 999999, tzinfo=timezone(timedelta(hours=3))),
    )
    batch = [event("c-1", 3), odd, event("c-1", 1), event("c-2", 1)]
    calls.insert_events(batch)
    got = calls.events_for("c-1")
    assert [e.seq for e in got] == [1, 2, 3]
    assert got == [batch[2], odd, batch[0]]
    assert got[1].ts == datetime(2025, 11, 25, 10, 0, 0, 999999, tzinfo=UTC)  # microseconds, even on MariaDB
    assert got[1].ts.tzinfo is UTC
    assert dict(got[1].data) == dict(odd.data)
    assert calls.events_for("c-2") == [batch[3]]
    assert calls.events_for("nope") == []
    assert (calls.max_seq("c-1"), calls.max_seq("c-2"), calls.max_seq("nope")) == (3, 1, 0)


def test_retried_batch_is_harmless(calls: CallRepository) -> None:
    batch = [event("c-1", 1), event("c-1", 2)]
    calls.insert_events(batch)
    calls.insert_events([*batch, event("c-1", 3)])
    assert [e.seq for e in calls.events_for("c-1")] == [1, 2, 3]
    calls.insert_events([])


def test_oversized_network_text_is_clipped(calls: CallRepository) -> None:
    calls.insert_events([event("c-1", 1, channel="PJSIP/" + "x" * 400, event="E" * 100)])
    stored = calls.events_for("c-1")[0]
    assert stored.channel is not None and len(stored.channel) == 255
    assert len(stored.event) == 64
    calls.upsert_call(record(caller_name="Я" * 300))
    got = calls.get_call("c-1")
    assert got is not None and got.caller_name == "Я" * 255


def test_call_id_is_validated(calls: CallRepository) -> None:
    with pytest.raises(ValidationError) as info:
        calls.insert_events([event("c" * 41, 1)])
    assert info.value.field == "call_id"
    with pytest.raises(ValidationError):
        calls.upsert_call(record("c" * 41))


def test_upsert_call_insert_then_update(calls: CallRepository) -> None:
    started = record()
    calls.upsert_call(started)
    assert calls.get_call("c-1") == started
    finished = replace(
        started,
        status="completed",
        answered_at=T0 + timedelta(seconds=3, microseconds=1),
        queue_name="support",
        queue_entered_at=T0 + timedelta(seconds=1),
        queue_wait_s=2.000001,
        agent_number="1001",
        agent_channel="PJSIP/2001-00000002",
        ended_at=T0 + timedelta(seconds=63, microseconds=999999),
        duration_s=63.876543,
        talk_s=60.5,
        hangup_by="agent",
        hangup_cause=16,
        hangup_cause_text="Normal Clearing",
        route_error=None,
    )
    calls.upsert_call(finished)
    assert calls.get_call("c-1") == finished
    # and back: fields set to None are cleared by the update
    calls.upsert_call(replace(started, status="failed", route_error="no agent: " + "é" * 2000))
    got = calls.get_call("c-1")
    assert got is not None
    assert (got.status, got.answered_at, got.ended_at) == ("failed", None, None)
    assert got.route_error == "no agent: " + "é" * 2000
    assert calls.get_call("nope") is None


def test_upsert_calls_batch_last_wins(calls: CallRepository) -> None:
    calls.upsert_call(record("c-1"))
    calls.upsert_calls(
        [
            record("c-1", status="completed"),
            record("c-2"),
            record("c-2", status="abandoned", hangup_by="caller"),
            record("c-3", started_at=T0 + timedelta(seconds=1)),
        ]
    )
    assert [(c.call_id, c.status) for c in calls.recent_calls()] == [
        ("c-3", "active"),
        ("c-2", "abandoned"),
        ("c-1", "completed"),
    ]
    calls.upsert_calls([])


def test_recent_calls_newest_first_with_limit(calls: CallRepository) -> None:
    calls.upsert_calls(record(f"c-{i}", started_at=T0 + timedelta(minutes=i)) for i in range(5))
    assert [c.call_id for c in calls.recent_calls(limit=3)] == ["c-4", "c-3", "c-2"]
    assert all(c.started_at.tzinfo is UTC for c in calls.recent_calls())
    with pytest.raises(ValidationError) as info:
        calls.recent_calls(limit=0)
    assert info.value.field == "limit"


def test_write_journal_is_all_or_nothing(calls: CallRepository) -> None:
    calls.write_journal([event("c-1", 1)], [record("c-1")])
    assert calls.max_seq("c-1") == 1 and calls.get_call("c-1") is not None
    with pytest.raises(ValidationError):
        calls.write_journal([event("c-2", 1)], [record("c" * 41)])
    assert calls.events_for("c-2") == []
    calls.write_journal([], [])
