"""Agents at work: who is logged in where, their state, the transitions journal and daily quotas.

Responsibility: persist `AgentStatus` (table agent_status), journal every transition (agent_events), and
materialise an agent's queue memberships as realtime `queue_members` rows while the agent is logged in
(hot-desking: the rows name the phone the agent logged in on).

Invariants:
- login, logoff and pause change queue_members, so they bump config_version in the same transaction:
  every Hotline instance and the realtime backend see the memberships change together with the status;
- an agent is logged in on at most one phone and a phone carries at most one agent (agent_status.phone is
  unique); `login` moves both in one transaction, journaling the automatic logoff of whoever was there;
- membership rows of an agent have uniqueid `agent-<agent id>-q<queue id>` and membername = the agent's
  number, which is how queue events (MemberName) are tied back to the agent;
- quota usage is one row per agent and UTC day, incremented atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hotline.db import tables as t
from hotline.db.engine import read_transaction, write_transaction
from hotline.db.repositories import _bump_version, _from_db, _mapper, _to_db
from hotline.domain.agent_state import AgentStatus
from hotline.errors import NotFoundError

_status = _mapper(
    AgentStatus,
    convert={n: _from_db for n in ("state_since", "logged_in_at", "wrapup_until")},
)


@dataclass(frozen=True, slots=True)
class AgentEvent:
    agent_id: int
    ts: datetime
    event: str
    from_state: str
    to_state: str
    reason: str
    phone: str
    call_id: str | None
    actor: str


_event = _mapper(AgentEvent, convert={"ts": _from_db})


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change to persist: the status before and after, and why."""

    old: AgentStatus
    new: AgentStatus
    event: str
    ts: datetime
    reason: str = ""
    actor: str = ""


def _status_values(st: AgentStatus) -> dict[str, object]:
    return {
        "phone": st.phone,
        "state": st.state,
        "pause_reason": st.pause_reason,
        "state_since": _to_db(st.state_since),
        "logged_in_at": _to_db(st.logged_in_at),
        "wrapup_until": _to_db(st.wrapup_until),
        "missed_in_row": st.missed_in_row,
        "missed_total": st.missed_total,
        "call_id": st.call_id,
    }


# One UPDATE for all agents of a batch (executemany; the SET columns come from the parameters' keys):
# a busy flush touches a dozen agents, and a statement per agent was ~5 % of Hotline's CPU under load.
_UPDATE_STATUS = sa.update(t.agent_status).where(t.agent_status.c.agent_id == sa.bindparam("b_agent_id"))


def _save_all(conn: Connection, statuses: Sequence[AgentStatus]) -> None:
    """Store each agent's state: an UPDATE of the existing rows, in the given order (a phone moving from
    one agent to another is freed first when it comes first), then an INSERT of the agents without one."""
    ids = [st.agent_id for st in statuses]
    have = set(conn.execute(sa.select(t.agent_status.c.agent_id).where(t.agent_status.c.agent_id.in_(ids))).scalars())
    updates = [{"b_agent_id": st.agent_id, **_status_values(st)} for st in statuses if st.agent_id in have]
    if updates:
        conn.execute(_UPDATE_STATUS, updates)
    inserts = [{"agent_id": st.agent_id, **_status_values(st)} for st in statuses if st.agent_id not in have]
    if inserts:
        conn.execute(sa.insert(t.agent_status), inserts)


def _journal(conn: Connection, transitions: Sequence[Transition]) -> None:
    """Each agent's latest state, and every transition as an event row (one multi-row insert): a busy
    minute's batch is a few statements, not two per transition."""
    if not transitions:
        return
    latest = {tr.new.agent_id: tr.new for tr in transitions}
    _save_all(conn, list(latest.values()))
    conn.execute(
        sa.insert(t.agent_events),
        [
            {
                "agent_id": tr.new.agent_id,
                "ts": _to_db(tr.ts),
                "event": tr.event,
                "from_state": tr.old.state,
                "to_state": tr.new.state,
                "reason": tr.reason[:128],
                "phone": (tr.new.phone or tr.old.phone or "")[:64],
                "call_id": tr.new.call_id or tr.old.call_id,
                "actor": tr.actor[:64],
            }
            for tr in transitions
        ],
    )


class AgentStateRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def load_all(self) -> list[AgentStatus]:
        with read_transaction(self._engine) as conn:
            return [_status(r) for r in conn.execute(sa.select(t.agent_status))]

    def events_for(self, agent_id: int, limit: int = 200) -> list[AgentEvent]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(t.agent_events)
                .where(t.agent_events.c.agent_id == agent_id)
                .order_by(t.agent_events.c.id.desc())
                .limit(limit)
            )
            return [_event(r) for r in rows][::-1]

    def record(self, transitions: Sequence[Transition]) -> None:
        """Persist state changes that do not touch queue memberships (ringing, on call, wrap-up...)."""
        with write_transaction(self._engine) as conn:
            _journal(conn, transitions)

    def apply_membership(
        self,
        transitions: Sequence[Transition],
        *,
        members: Sequence[tuple[int, Sequence[tuple[int, int]], str, bool, str]] = (),
        drop_agents: Sequence[int] = (),
    ) -> None:
        """State changes that also change queue memberships, in one configuration transaction.

        `drop_agents`: agents whose membership rows are removed (logoff, or moved to another phone);
        `members`: (agent id, [(queue id, penalty)], phone, paused, reason) rows to (re)create.
        """
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            ids = set(drop_agents) | {m[0] for m in members}
            if ids:
                conn.execute(sa.delete(t.queue_members).where(t.queue_members.c.agent_id.in_(ids)))
            for agent_id, skills, phone, paused, reason in members:
                number = conn.execute(sa.select(t.agents.c.number).where(t.agents.c.id == agent_id)).scalar()
                if number is None:
                    raise NotFoundError(f"agent id {agent_id} does not exist")
                interface = f"PJSIP/{phone}"
                taken = set(
                    conn.execute(
                        sa.select(t.queue_members.c.queue_id).where(t.queue_members.c.interface == interface)
                    ).scalars()
                )
                rows = [
                    {
                        "queue_id": queue_id,
                        "interface": interface,
                        "membername": number,
                        "penalty": penalty,
                        "paused": 1 if paused else 0,
                        "reason_paused": reason[:80] if paused else "",
                        "uniqueid": f"agent-{agent_id}-q{queue_id}",
                        "agent_id": agent_id,
                    }
                    for queue_id, penalty in skills
                    if queue_id not in taken  # a static member already rings this phone for that queue
                ]
                if rows:
                    conn.execute(sa.insert(t.queue_members), rows)
            _journal(conn, transitions)

    def set_paused(self, transitions: Sequence[Transition], agent_id: int, paused: bool, reason: str) -> None:
        """Pause or unpause every membership of the agent (what app_queue re-reads) with the transition."""
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            conn.execute(
                sa.update(t.queue_members)
                .where(t.queue_members.c.agent_id == agent_id)
                .values(paused=1 if paused else 0, reason_paused=reason[:80] if paused else "")
            )
            _journal(conn, transitions)

    # ---- daily quotas
    def usage(self, agent_id: int, day: date) -> tuple[int, int]:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(t.quota_usage.c.calls, t.quota_usage.c.seconds).where(
                    t.quota_usage.c.agent_id == agent_id, t.quota_usage.c.day == day
                )
            ).first()
            return (int(row.calls), int(row.seconds)) if row else (0, 0)

    def add_usage(self, agent_id: int, day: date, *, calls: int = 0, seconds: int = 0) -> None:
        with write_transaction(self._engine) as conn:
            done = conn.execute(
                sa.update(t.quota_usage)
                .where(t.quota_usage.c.agent_id == agent_id, t.quota_usage.c.day == day)
                .values(calls=t.quota_usage.c.calls + calls, seconds=t.quota_usage.c.seconds + seconds)
            )
            if done.rowcount == 0:
                conn.execute(sa.insert(t.quota_usage).values(agent_id=agent_id, day=day, calls=calls, seconds=seconds))
