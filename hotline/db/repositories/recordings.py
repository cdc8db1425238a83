"""The `recordings` table: one row per MixMonitor file, from "being recorded" to "stored" (or "deleted").

States (`STATES`) and who moves a row between them:

    recording --(call ended, or file finalized)--> pending --(converted and stored)--> stored
    pending --(attempts used up)--> failed --(retry)--> pending
    pending --(empty file: nothing was recorded)--> deleted
    stored --(retention period over: removed from storage)--> deleted

`next_attempt_at` is when a worker may next look at a `recording` or `pending` row.  A worker *claims* a
due row by moving its `next_attempt_at` forward to the end of a lease in the same statement that checks
it is still due (`claim_due`): two workers (two Hotline instances) never process one row at once, and a
worker that dies leaves a row that becomes due again when its lease ends.  Every later transition of a
claimed row is conditional on its state, so a row retried or deleted meanwhile is never overwritten.

Invariants: `source` is unique (a file is registered once); `attempts` counts failed conversion/storage
attempts since the last (re)try; `stored_at`, `storage_key`, `size` and `duration_s` are set together; a
database outage raises `DatabaseUnavailableError` (retry later), bad input `ValidationError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from hotline.db import tables as t
from hotline.db.engine import read_transaction, write_transaction
from hotline.db.repositories import _choice, _from_db, _int, _mapper, _text, _to_db
from hotline.errors import ConflictError, DatabaseUnavailableError, NotFoundError

STATES = ("recording", "pending", "stored", "failed", "deleted")
_ERROR_MAX = 2000  # characters of last_error kept (ffmpeg can be verbose)
_R = t.recordings


@dataclass(frozen=True, slots=True)
class Recording:
    id: int
    call_id: str
    node: str
    source: str  # the WAV file as the node saw it
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    storage_key: str | None
    size: int | None  # bytes of the stored MP3
    duration_s: float | None
    created_at: datetime
    stored_at: datetime | None
    deleted_at: datetime | None


_TIMES = ("next_attempt_at", "created_at", "stored_at", "deleted_at")
_recording = _mapper(
    Recording,
    convert={
        **{name: _from_db for name in _TIMES},
        "duration_s": lambda v: None if v is None else float(v),
        "size": lambda v: None if v is None else int(v),
    },
)


def _error_text(error: str) -> str:
    """One line, bounded: ffmpeg's multi-line stderr must fit the column and the status page."""
    text = " ".join(str(error).split())
    return text if len(text) <= _ERROR_MAX else text[: _ERROR_MAX - 1] + "…"


@contextmanager
def _database(what: str) -> Iterator[None]:
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise DatabaseUnavailableError(f"{what} failed: {exc.orig or exc}") from exc


class RecordingRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ------------------------------------------------------------------ registration
    def register(
        self,
        call_id: str,
        node: str,
        source: str,
        *,
        ended: bool,
        now: datetime,
        next_attempt_at: datetime,
    ) -> tuple[Recording, bool]:
        """Make sure the file `source` has a row; returns (row, changed).

        A new row is `pending` when `ended` (the call is over), else `recording`.  An existing
        `recording` row becomes `pending` when `ended`; any other existing row is left as it is (the
        same file reported twice, e.g. by a MixMonitorStop and then the Hangup)."""
        _text("call_id", call_id, 40, required=True)
        _text("node", node, 64, required=True)
        _text("source", source, 255, required=True)
        for attempt in range(2):
            try:
                with _database("registering a recording"), write_transaction(self._engine) as conn:
                    return self._register(conn, call_id, node, source, ended, now, next_attempt_at)
            except sa_exc.IntegrityError as exc:
                # another instance inserted the same source between our SELECT and INSERT: look again
                if attempt:
                    raise ConflictError(f"recording {source!r} could not be registered: {exc.orig}") from exc
        raise AssertionError("not reached")  # pragma: no cover

    def _register(
        self,
        conn: Connection,
        call_id: str,
        node: str,
        source: str,
        ended: bool,
        now: datetime,
        next_attempt_at: datetime,
    ) -> tuple[Recording, bool]:
        row = conn.execute(sa.select(_R).where(_R.c.source == source)).first()
        if row is None:
            conn.execute(
                sa.insert(_R).values(
                    call_id=call_id,
                    node=node,
                    source=source,
                    state="pending" if ended else "recording",
                    next_attempt_at=_to_db(next_attempt_at),
                    created_at=_to_db(now),
                )
            )
            return _recording(conn.execute(sa.select(_R).where(_R.c.source == source)).one()), True
        if ended and row.state == "recording":
            conn.execute(
                sa.update(_R)
                .where(_R.c.id == row.id, _R.c.state == "recording")
                .values(state="pending", next_attempt_at=_to_db(next_attempt_at))
            )
            return _recording(conn.execute(sa.select(_R).where(_R.c.id == row.id)).one()), True
        return _recording(row), False

    # ------------------------------------------------------------------ reads
    def get(self, recording_id: int) -> Recording | None:
        _int("id", recording_id, minimum=1)
        with _database("reading a recording"), read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(_R).where(_R.c.id == recording_id)).first()
        return None if row is None else _recording(row)

    def by_source(self, source: str) -> Recording | None:
        with _database("reading a recording"), read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(_R).where(_R.c.source == source)).first()
        return None if row is None else _recording(row)

    def for_call(self, call_id: str) -> list[Recording]:
        _text("call_id", call_id, 40, required=True)
        with _database("reading recordings"), read_transaction(self._engine) as conn:
            rows = conn.execute(sa.select(_R).where(_R.c.call_id == call_id).order_by(_R.c.id)).all()
        return [_recording(r) for r in rows]

    def recent(self, *, state: str | None = None, limit: int = 100) -> list[Recording]:
        """The newest recordings (optionally in one state), newest first."""
        _int("limit", limit, minimum=1, maximum=10_000)
        query = sa.select(_R).order_by(_R.c.id.desc()).limit(limit)
        if state is not None:
            query = query.where(_R.c.state == _choice("state", state, STATES))
        with _database("reading recordings"), read_transaction(self._engine) as conn:
            return [_recording(r) for r in conn.execute(query).all()]

    def known_sources(self, sources: Iterable[str]) -> set[str]:
        """Which of these files already have a row."""
        wanted = list(dict.fromkeys(sources))
        found: set[str] = set()
        with _database("reading recordings"), read_transaction(self._engine) as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                found.update(conn.execute(sa.select(_R.c.source).where(_R.c.source.in_(chunk))).scalars())
        return found

    def counts(self) -> dict[str, int]:
        """Rows per state (every state present, 0 when none)."""
        with _database("counting recordings"), read_transaction(self._engine) as conn:
            rows = conn.execute(sa.select(_R.c.state, sa.func.count()).group_by(_R.c.state)).all()
        counts = dict.fromkeys(STATES, 0)
        counts.update({str(state): int(n) for state, n in rows})
        return counts

    def expired(self, created_before: datetime, limit: int = 500) -> list[Recording]:
        """Stored recordings created before `created_before`, oldest first."""
        _int("limit", limit, minimum=1, maximum=10_000)
        with _database("reading recordings"), read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(_R)
                .where(_R.c.state == "stored", _R.c.created_at < _to_db(created_before))
                .order_by(_R.c.created_at, _R.c.id)
                .limit(limit)
            ).all()
        return [_recording(r) for r in rows]

    # ------------------------------------------------------------------ the worker's transitions
    def claim_due(self, state: str, *, now: datetime, lease_until: datetime, limit: int) -> list[Recording]:
        """Claim up to `limit` rows in `state` (recording or pending) due at `now`, oldest due first:
        their `next_attempt_at` moves to `lease_until`.  Returns the claimed rows (as updated)."""
        _choice("state", state, ("recording", "pending"))
        _int("limit", limit, minimum=1, maximum=10_000)
        now_db, lease_db = _to_db(now), _to_db(lease_until)
        with _database("claiming recordings"), write_transaction(self._engine) as conn:
            due = (
                conn.execute(
                    sa.select(_R.c.id)
                    .where(_R.c.state == state, _R.c.next_attempt_at <= now_db)
                    .order_by(_R.c.next_attempt_at, _R.c.id)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            claimed = []
            for rid in due:
                result = conn.execute(
                    sa.update(_R)
                    .where(_R.c.id == rid, _R.c.state == state, _R.c.next_attempt_at <= now_db)
                    .values(next_attempt_at=lease_db)
                )
                if result.rowcount == 1:  # else another instance claimed it first
                    claimed.append(rid)
            if not claimed:
                return []
            rows = {r.id: r for r in conn.execute(sa.select(_R).where(_R.c.id.in_(claimed))).all()}
        return [_recording(rows[rid]) for rid in claimed]  # in due order

    def postpone(
        self, recording_id: int, *, state: str, next_attempt_at: datetime, new_state: str | None = None
    ) -> bool:
        """Look at the row again at `next_attempt_at` without counting an attempt (file still being
        written); `new_state` moves a `recording` row to `pending`.  False if the row is no longer in
        `state`."""
        values: dict[str, Any] = {"next_attempt_at": _to_db(next_attempt_at)}
        if new_state is not None:
            values["state"] = _choice("new_state", new_state, ("recording", "pending"))
        return self._transition(recording_id, (state,), values)

    def record_failure(self, recording_id: int, *, attempts: int, error: str, next_attempt_at: datetime | None) -> bool:
        """A pending row's attempt failed: store `attempts` and the error; retry at `next_attempt_at`, or
        give up (`failed`) when it is None.  False if the row is no longer pending."""
        _int("attempts", attempts, minimum=1)
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": _error_text(error),
            "next_attempt_at": _to_db(next_attempt_at),
            "state": "pending" if next_attempt_at is not None else "failed",
        }
        return self._transition(recording_id, ("pending",), values)

    def mark_stored(
        self,
        recording_id: int,
        *,
        storage_key: str,
        size: int,
        duration_s: float,
        now: datetime,
        note: str | None = None,
    ) -> bool:
        """The MP3 is in storage.  `note` (e.g. "salvaged...") goes to last_error, else it is cleared.
        False if the row is no longer pending."""
        _text("storage_key", storage_key, 255, required=True)
        _int("size", size, maximum=2**63 - 1)
        values: dict[str, Any] = {
            "state": "stored",
            "storage_key": storage_key,
            "size": size,
            "duration_s": float(duration_s),
            "stored_at": _to_db(now),
            "next_attempt_at": None,
            "last_error": None if note is None else _error_text(note),
        }
        return self._transition(recording_id, ("pending",), values)

    def mark_deleted(
        self, recording_id: int, *, from_states: tuple[str, ...], now: datetime, note: str | None = None
    ) -> bool:
        """Nothing of the recording is kept any more (retention, or an empty file).  False if the row is
        not in one of `from_states`."""
        for state in from_states:
            _choice("from_states", state, STATES)
        values: dict[str, Any] = {"state": "deleted", "deleted_at": _to_db(now), "next_attempt_at": None}
        if note is not None:
            values["last_error"] = _error_text(note)
        return self._transition(recording_id, from_states, values)

    def _transition(self, recording_id: int, from_states: tuple[str, ...], values: dict[str, Any]) -> bool:
        _int("id", recording_id, minimum=1)
        with _database("updating a recording"), write_transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(_R).where(_R.c.id == recording_id, _R.c.state.in_(from_states)).values(**values)
            )
        return bool(result.rowcount == 1)

    # ------------------------------------------------------------------ operator actions
    def retry(self, recording_id: int, *, now: datetime) -> Recording:
        """Give a failed (or pending) recording a fresh set of attempts, starting now."""
        _int("id", recording_id, minimum=1)
        with _database("retrying a recording"), write_transaction(self._engine) as conn:
            row = conn.execute(sa.select(_R).where(_R.c.id == recording_id)).first()
            if row is None:
                raise NotFoundError(f"recording {recording_id} does not exist")
            if row.state not in ("failed", "pending"):
                raise ConflictError(f"recording {recording_id} is {row.state}; only failed or pending ones retry")
            conn.execute(
                sa.update(_R)
                .where(_R.c.id == recording_id, _R.c.state.in_(("failed", "pending")))
                .values(state="pending", attempts=0, next_attempt_at=_to_db(now))
            )
            return _recording(conn.execute(sa.select(_R).where(_R.c.id == recording_id)).one())

    def retry_failed(self, *, now: datetime) -> int:
        """Retry every failed recording; returns how many."""
        with _database("retrying recordings"), write_transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(_R)
                .where(_R.c.state == "failed")
                .values(state="pending", attempts=0, next_attempt_at=_to_db(now))
            )
        return int(result.rowcount)
