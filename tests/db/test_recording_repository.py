"""RecordingRepository on SQLite, PostgreSQL and MariaDB: registration, claiming with a lease, the
conditional transitions, operator retries, retention queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from hotline.db.repositories.recordings import STATES, RecordingRepository
from hotline.errors import ConflictError, NotFoundError, ValidationError

T0 = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
SRC = "/hl/main/node1/spool/monitor/"


@pytest.fixture
def recordings(engine: Engine) -> Iterator[RecordingRepository]:
    yield RecordingRepository(engine)


def _src(name: str) -> str:
    return SRC + name + ".wav"


def test_register_then_end(recordings: RecordingRepository) -> None:
    rec, changed = recordings.register("c1", "node1", _src("a"), ended=False, now=T0, next_attempt_at=T0)
    assert changed and rec.state == "recording" and rec.attempts == 0
    assert rec.created_at == T0 and rec.next_attempt_at == T0  # aware UTC, microseconds kept
    again, changed = recordings.register("c1", "node1", _src("a"), ended=False, now=T0, next_attempt_at=T0)
    assert not changed and again == rec
    later = T0 + timedelta(seconds=5)
    ended, changed = recordings.register("c1", "node1", _src("a"), ended=True, now=later, next_attempt_at=later)
    assert changed and ended.state == "pending" and ended.next_attempt_at == later and ended.created_at == T0
    twice, changed = recordings.register("c1", "node1", _src("a"), ended=True, now=later, next_attempt_at=later)
    assert not changed and twice == ended


def test_register_ended_directly_is_pending(recordings: RecordingRepository) -> None:
    rec, _ = recordings.register("c1", "node1", _src("b"), ended=True, now=T0, next_attempt_at=T0)
    assert rec.state == "pending"
    assert recordings.by_source(_src("b")) == rec
    assert recordings.get(rec.id) == rec
    assert recordings.get(rec.id + 1000) is None


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("c" * 41, "node1", "/x.wav"), "call_id"),
        (("", "node1", "/x.wav"), "call_id"),
        (("c1", "", "/x.wav"), "node"),
        (("c1", "node1", "/" + "x" * 255), "source"),
        (("c1", "node1", "/x\n.wav"), "source"),
    ],
)
def test_register_validation(recordings: RecordingRepository, args: tuple[str, str, str], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        recordings.register(*args, ended=False, now=T0, next_attempt_at=T0)
    assert info.value.field == field
    assert recordings.counts() == dict.fromkeys(STATES, 0)  # nothing half-written


def test_claim_due_takes_a_lease(recordings: RecordingRepository) -> None:
    for i, due in enumerate((T0, T0 - timedelta(seconds=1), T0 + timedelta(seconds=60))):
        recordings.register(f"c{i}", "node1", _src(f"p{i}"), ended=True, now=T0, next_attempt_at=due)
    recordings.register("c9", "node1", _src("r"), ended=False, now=T0, next_attempt_at=T0)
    lease = T0 + timedelta(minutes=30)
    first = recordings.claim_due("pending", now=T0, lease_until=lease, limit=1)
    assert [r.source for r in first] == [_src("p1")]  # the oldest due first
    assert first[0].next_attempt_at == lease
    second = recordings.claim_due("pending", now=T0, lease_until=lease, limit=10)
    assert [r.source for r in second] == [_src("p0")]  # p2 is not due, p1 is leased
    assert recordings.claim_due("pending", now=T0, lease_until=lease, limit=10) == []
    # a dead worker's lease runs out: the row is due again (in due order, then by id)
    assert [r.source for r in recordings.claim_due("pending", now=lease, lease_until=lease, limit=10)] == [
        _src("p2"),
        _src("p0"),
        _src("p1"),
    ]
    assert [r.source for r in recordings.claim_due("recording", now=T0, lease_until=lease, limit=10)] == [_src("r")]
    with pytest.raises(ValidationError):
        recordings.claim_due("stored", now=T0, lease_until=lease, limit=10)


def test_failures_then_failed_then_retry(recordings: RecordingRepository) -> None:
    rec, _ = recordings.register("c1", "node1", _src("f"), ended=True, now=T0, next_attempt_at=T0)
    retry_at = T0 + timedelta(seconds=30)
    error = "ffmpeg failed on x.wav (exit 1):\n  line one\n\tline two"
    assert recordings.record_failure(rec.id, attempts=1, error=error, next_attempt_at=retry_at)
    rec1 = recordings.get(rec.id)
    assert rec1 is not None
    assert (rec1.state, rec1.attempts, rec1.next_attempt_at) == ("pending", 1, retry_at)
    assert rec1.last_error == "ffmpeg failed on x.wav (exit 1): line one line two"
    assert recordings.record_failure(rec.id, attempts=2, error="x" * 5000, next_attempt_at=None)
    rec2 = recordings.get(rec.id)
    assert rec2 is not None and rec2.state == "failed" and rec2.next_attempt_at is None
    assert rec2.last_error is not None and len(rec2.last_error) == 2000
    # a failed row is not changed by a late worker
    assert not recordings.record_failure(rec.id, attempts=3, error="late", next_attempt_at=None)
    assert not recordings.mark_stored(rec.id, storage_key="k.mp3", size=1, duration_s=1, now=T0)
    retried = recordings.retry(rec.id, now=T0)
    assert (retried.state, retried.attempts, retried.next_attempt_at) == ("pending", 0, T0)
    assert retried.last_error == rec2.last_error  # kept visible until the next outcome


def test_retry_errors_and_retry_failed(recordings: RecordingRepository) -> None:
    with pytest.raises(NotFoundError):
        recordings.retry(4242, now=T0)
    a, _ = recordings.register("c1", "node1", _src("a"), ended=True, now=T0, next_attempt_at=T0)
    b, _ = recordings.register("c1", "node1", _src("b"), ended=True, now=T0, next_attempt_at=T0)
    c, _ = recordings.register("c1", "node1", _src("c"), ended=False, now=T0, next_attempt_at=T0)
    for rec in (a, b):
        recordings.record_failure(rec.id, attempts=1, error="boom", next_attempt_at=None)
    with pytest.raises(ConflictError, match="recording"):
        recordings.retry(c.id, now=T0)
    assert recordings.retry_failed(now=T0) == 2
    assert recordings.counts()["pending"] == 2 and recordings.counts()["failed"] == 0


def test_stored_then_deleted_and_expired(recordings: RecordingRepository) -> None:
    old, _ = recordings.register(
        "c1", "node1", _src("old"), ended=True, now=T0 - timedelta(days=40), next_attempt_at=T0
    )
    new, _ = recordings.register("c2", "node1", _src("new"), ended=True, now=T0 - timedelta(days=1), next_attempt_at=T0)
    big = 5 * 2**31  # more than a 32-bit integer
    for rec in (old, new):
        assert recordings.mark_stored(rec.id, storage_key=f"2030/{rec.call_id}.mp3", size=big, duration_s=12.5, now=T0)
    stored = recordings.get(old.id)
    assert stored is not None
    assert (stored.state, stored.size, stored.duration_s, stored.stored_at) == ("stored", big, 12.5, T0)
    assert stored.storage_key == "2030/c1.mp3" and stored.next_attempt_at is None and stored.last_error is None
    assert [r.id for r in recordings.expired(T0 - timedelta(days=30))] == [old.id]
    assert recordings.mark_deleted(old.id, from_states=("stored",), now=T0)
    assert not recordings.mark_deleted(old.id, from_states=("stored",), now=T0)
    assert recordings.expired(T0 - timedelta(days=30)) == []
    deleted = recordings.get(old.id)
    assert deleted is not None and deleted.state == "deleted" and deleted.deleted_at == T0
    assert deleted.storage_key == "2030/c1.mp3"  # where it was, for the record


def test_postpone_and_promote(recordings: RecordingRepository) -> None:
    rec, _ = recordings.register("c1", "node1", _src("x"), ended=False, now=T0, next_attempt_at=T0)
    later = T0 + timedelta(seconds=2)
    assert recordings.postpone(rec.id, state="recording", next_attempt_at=later)
    assert not recordings.postpone(rec.id, state="pending", next_attempt_at=later)
    assert recordings.postpone(rec.id, state="recording", new_state="pending", next_attempt_at=T0)
    moved = recordings.get(rec.id)
    assert moved is not None and (moved.state, moved.next_attempt_at, moved.attempts) == ("pending", T0, 0)


def test_queries(recordings: RecordingRepository) -> None:
    ids = []
    for i in range(3):
        rec, _ = recordings.register(
            "call-a" if i < 2 else "call-b", "node1", _src(f"q{i}"), ended=i == 2, now=T0, next_attempt_at=T0
        )
        ids.append(rec.id)
    assert [r.id for r in recordings.for_call("call-a")] == ids[:2]
    assert [r.id for r in recordings.recent()] == ids[::-1]
    assert [r.id for r in recordings.recent(state="pending")] == [ids[2]]
    with pytest.raises(ValidationError):
        recordings.recent(state="lost")
    assert recordings.counts() == {"recording": 2, "pending": 1, "stored": 0, "failed": 0, "deleted": 0}
    many = [_src(f"q{i}") for i in range(1200)]  # more than one IN (...) chunk
    assert recordings.known_sources(many) == {_src("q0"), _src("q1"), _src("q2")}
    assert recordings.known_sources([]) == set()
