"""Call history queries for the interfaces: search, today's figures per queue and agent, call tags.

Reads only, except the call tags (what an agent or a system attaches to a call: a discount id, a
customer id).  Today's figures are computed in SQL (one grouped query), so a wallboard refresh does
not pull a day of calls into memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from hotline.db import tables as t
from hotline.db.engine import read_transaction, write_transaction
from hotline.db.repositories import _call_record, _from_db, _int, _text, _to_db
from hotline.domain.calls import CALL_STATUSES, CallRecord
from hotline.errors import ValidationError

TAG_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True, slots=True)
class QueueDay:
    """One queue's calls since the start of the day: offered = answered + abandoned + others."""

    queue: str
    offered: int
    answered: int
    abandoned: int
    answered_in_sl: int
    wait_total_s: float

    @property
    def service_level(self) -> float | None:
        """Share of answered calls answered within the queue's service-level threshold (None: no calls)."""
        return None if self.answered == 0 else self.answered_in_sl / self.answered

    @property
    def abandon_rate(self) -> float | None:
        finished = self.answered + self.abandoned
        return None if finished == 0 else self.abandoned / finished


@dataclass(frozen=True, slots=True)
class AgentDay:
    agent: str
    answered: int
    talk_s: float
    agent_hung_up: int


class HistoryRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def search_calls(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        caller: str | None = None,
        agent: str | None = None,
        queue: str | None = None,
        status: str | None = None,
        did: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[CallRecord], int]:
        _int("limit", limit, minimum=1, maximum=1000)
        _int("offset", offset, minimum=0)
        c = t.calls.c
        conds: list[sa.ColumnElement[bool]] = []
        if since is not None:
            conds.append(c.started_at >= _to_db(since))
        if until is not None:
            conds.append(c.started_at < _to_db(until))
        if caller:
            conds.append(c.caller_num.like(f"%{_text('caller', caller, 64)}%"))
        if agent:
            conds.append(c.agent_number == _text("agent", agent, 32))
        if queue:
            conds.append(c.queue_name == _text("queue", queue, 128))
        if did:
            conds.append(c.did == _text("did", did, 64))
        if status:
            if status not in CALL_STATUSES:
                raise ValidationError("status", f"must be one of {', '.join(CALL_STATUSES)} (got {status!r})")
            conds.append(c.status == status)
        query = sa.select(t.calls).where(*conds).order_by(c.started_at.desc(), c.call_id.desc())
        count = sa.select(sa.func.count()).select_from(t.calls).where(*conds)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
            total = int(conn.execute(count).scalar_one())
        return [_call_record(r) for r in rows], total

    def queue_day(self, day_start: datetime) -> dict[str, QueueDay]:
        c = t.calls.c
        sl = sa.func.coalesce(t.queues.c.servicelevel, 0)
        in_sl = sa.case(
            (sa.and_(c.status == "completed", c.answered_at.is_not(None), c.queue_wait_s <= sl), 1), else_=0
        )
        answered = sa.case((sa.and_(c.status == "completed", c.answered_at.is_not(None)), 1), else_=0)
        abandoned = sa.case((c.status == "abandoned", 1), else_=0)
        query = (
            sa.select(
                c.queue_name,
                sa.func.count(),
                sa.func.sum(answered),
                sa.func.sum(abandoned),
                sa.func.sum(in_sl),
                sa.func.sum(sa.func.coalesce(c.queue_wait_s, 0.0)),
            )
            .select_from(t.calls.outerjoin(t.queues, t.queues.c.name == c.queue_name))
            .where(c.started_at >= _to_db(day_start), c.queue_name.is_not(None), c.status != "active")
            .group_by(c.queue_name)
        )
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return {
            r[0]: QueueDay(r[0], int(r[1]), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), float(r[5] or 0.0))
            for r in rows
        }

    def agent_day(self, day_start: datetime, agent: str | None = None) -> dict[str, AgentDay]:
        c = t.calls.c
        conds = [c.started_at >= _to_db(day_start), c.agent_number.is_not(None), c.answered_at.is_not(None)]
        if agent:
            conds.append(c.agent_number == agent)
        query = (
            sa.select(
                c.agent_number,
                sa.func.count(),
                sa.func.sum(sa.func.coalesce(c.talk_s, 0.0)),
                sa.func.sum(sa.case((c.hangup_by == "agent", 1), else_=0)),
            )
            .where(*conds)
            .group_by(c.agent_number)
        )
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return {r[0]: AgentDay(r[0], int(r[1]), float(r[2] or 0.0), int(r[3] or 0)) for r in rows}

    def thresholds(self) -> dict[str, tuple[int, int, int, int]]:
        """Each queue's wallboard alarm thresholds: (waiting amber, waiting red, wait amber s, wait red s)."""
        q = t.queues.c
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(q.name, q.alarm_waiting_amber, q.alarm_waiting_red, q.alarm_wait_amber_s, q.alarm_wait_red_s)
            ).all()
        return {r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

    # ------------------------------------------------------------------ tags
    def set_tag(self, call_id: str, name: str, value: str, *, by: str) -> None:
        """Attach `name`=`value` to a call (replacing an earlier value of the same name)."""
        _text("call_id", call_id, 40, required=True)
        if not isinstance(name, str) or TAG_NAME.fullmatch(name) is None:
            raise ValidationError("name", "must be 1 to 32 of a-z 0-9 _ starting with a letter (e.g. discount_id)")
        _text("value", value, 255, required=True)
        with write_transaction(self._engine) as conn:
            exists = conn.execute(sa.select(t.calls.c.call_id).where(t.calls.c.call_id == call_id)).first()
            if exists is None:
                raise ValidationError("call_id", f"no call {call_id!r} in the journal")
            updated = conn.execute(
                sa.update(t.call_tags)
                .where(t.call_tags.c.call_id == call_id, t.call_tags.c.name == name)
                .values(value=value, created_by=by[:128])
            ).rowcount
            if not updated:
                try:
                    conn.execute(
                        sa.insert(t.call_tags).values(call_id=call_id, name=name, value=value, created_by=by[:128])
                    )
                except IntegrityError:  # a concurrent writer inserted it first: overwrite theirs
                    conn.execute(
                        sa.update(t.call_tags)
                        .where(t.call_tags.c.call_id == call_id, t.call_tags.c.name == name)
                        .values(value=value, created_by=by[:128])
                    )

    def tags(self, call_id: str) -> list[dict[str, object]]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(t.call_tags).where(t.call_tags.c.call_id == call_id).order_by(t.call_tags.c.name)
            ).all()
        return [
            {
                "name": r._mapping["name"],
                "value": r._mapping["value"],
                "by": r._mapping["created_by"],
                "at": _iso(_from_db(r._mapping["created_at"])),
            }
            for r in rows
        ]

    def find_by_tag(self, name: str, value: str, limit: int = 100) -> list[str]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(t.call_tags.c.call_id)
                .where(t.call_tags.c.name == name, t.call_tags.c.value == value)
                .limit(limit)
            ).all()
        return [r[0] for r in rows]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
