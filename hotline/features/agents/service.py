"""Agents at work: hot-desk login and logoff, pauses, live state from the queues, missed-call auto-pause.

Responsibility: keep every agent's `AgentStatus` in memory (the router asks "who is on this phone?"
per call, so lookups must not touch the database), move it only through `domain.agent_state`, and
persist each transition (agent_status + agent_events) off the event loop.

Sources of transitions:
- people: `login`, `logoff`, `pause`, `unpause` (feature codes through the AGI handlers, the CLI, later the
  API and supervisors); `actor` says who;
- Asterisk (`on_ami`): AgentCalled -> ring, AgentConnect -> connect, AgentComplete -> complete (then
  wrap-up for the queue's wrap-up time), AgentRingNoAnswer -> ring_no_answer (counts a missed call; N in
  a row pause the agent with reason "missed calls", N from the agent's group);
- the clock (`timer_loop`): wrap-up ends, pauses that reached their reason's maximum duration end.

Invariants:
- commands for one agent run one at a time (a lock per agent); a login moves the agent and the phone in
  one database transaction, so "one agent per phone, one phone per agent" always holds;
- login, logoff and pause change queue memberships in the database first (realtime members, re-read by
  app_queue), then tell every node at once (AMI QueuePause) so callers already waiting see the pause;
- `on_ami` never blocks: it changes memory and queues the write; `flush_loop` writes in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hotline import errors
from hotline.db.repositories.agents import AgentStateRepository, Transition
from hotline.domain import agent_state as st
from hotline.domain.agent_state import AgentStatus, IllegalTransition
from hotline.domain.calls import CallRecord
from hotline.domain.config import Agent, ConfigSnapshot
from hotline.errors import ConflictError, HotlineError, NotFoundError, ValidationError
from hotline.passwords import verify_secret
from hotline.protocols.ami import Message

log = logging.getLogger(__name__)

MISSED_CALLS_REASON = "missed calls"

Pauser = Callable[[str, bool, str], Awaitable[None]]  # (interface, paused, reason) on every node
Publisher = Callable[[str, dict[str, object]], object]


class AuthenticationError(errors.AuthenticationError):
    """Wrong agent number or PIN (deliberately not saying which)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AgentService:
    def __init__(
        self,
        repo: AgentStateRepository,
        snapshot: Callable[[], ConfigSnapshot],
        *,
        pauser: Pauser | None = None,
        publish: Publisher | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._repo = repo
        self._snapshot = snapshot
        self._pauser = pauser
        self._publish = publish
        self._clock = clock
        self._status: dict[int, AgentStatus] = {}
        self._by_phone: dict[str, int] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._usage: dict[tuple[int, date], tuple[int, int]] = {}
        self._writes: deque[Transition] = deque()
        self._usage_writes: deque[tuple[int, date, int, int]] = deque()
        self._placed: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False
        self._wanted_version = 0
        #: the configuration version whose agent states this instance has adopted (see on_snapshot)
        self.applied_version = 0
        self.write_errors = 0

    # ------------------------------------------------------------------ start and lookups
    async def start(self) -> None:
        for s in await asyncio.to_thread(self._repo.load_all):
            self._status[s.agent_id] = s
            if s.phone and s.state != st.LOGGED_OUT:
                self._by_phone[s.phone] = s.agent_id

    def on_snapshot(self, snap: ConfigSnapshot) -> None:
        """Configuration changed (maybe a login, logoff or pause by another Hotline instance or the CLI,
        which bump the version): re-read the statuses off the loop and adopt the newer ones."""
        self._wanted_version = max(self._wanted_version, snap.version)
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.get_running_loop().create_task(self.reload(), name="agents-reload")
            self._reload_task.add_done_callback(_log_failure)
        else:
            self._reload_again = True

    async def reload(self) -> None:
        while True:
            self._reload_again = False
            version = self._wanted_version
            rows = await asyncio.to_thread(self._repo.load_all)
            for row in rows:
                cur = self._status.get(row.agent_id)
                if cur is not None and (row == cur or row.state_since < cur.state_since):
                    continue  # ours is as new or newer (our own write may still be on its way)
                if self._lock(row.agent_id).locked():
                    continue  # a command of ours is changing this agent right now
                self._set(row, old_phone=cur.phone if cur else None)
                was_paused = cur is not None and cur.state == st.PAUSED
                if (row.state == st.PAUSED) != was_paused and row.phone and self._pauser is not None:
                    # paused or unpaused elsewhere: callers already waiting on the nodes must see it too
                    try:
                        await self._pauser(f"PJSIP/{row.phone}", row.state == st.PAUSED, row.pause_reason)
                    except HotlineError as exc:
                        log.warning("agent %d: QueuePause after reload failed (%s)", row.agent_id, exc)
            self.applied_version = max(self.applied_version, version)
            if not self._reload_again:
                return

    def summary(self) -> dict[str, object]:
        counts: dict[str, int] = {}
        for s in self._status.values():
            counts[s.state] = counts.get(s.state, 0) + 1
        return {"version": self.applied_version, "states": counts, "write_errors": self.write_errors}

    def status(self, agent_id: int) -> AgentStatus:
        return self._status.get(agent_id) or AgentStatus.logged_out(agent_id, self._clock())

    def statuses(self) -> list[AgentStatus]:
        return list(self._status.values())

    def agent_on_phone(self, phone: str) -> Agent | None:
        agent_id = self._by_phone.get(phone)
        return None if agent_id is None else self._snapshot().agent_by_id.get(agent_id)

    def phone_of_agent(self, number: str) -> str | None:
        agent = self._snapshot().agent_by_number.get(number)
        if agent is None:
            return None
        s = self._status.get(agent.id)
        return s.phone if s is not None and s.state != st.LOGGED_OUT else None

    def usage_today(self, agent_id: int) -> tuple[int, int]:
        return self._usage.get((agent_id, self._clock().date()), (0, 0))

    async def load_usage(self, agent_id: int) -> tuple[int, int]:
        """Today's usage from the database (after a restart), cached."""
        day = self._clock().date()
        if (agent_id, day) not in self._usage:
            self._usage[(agent_id, day)] = await asyncio.to_thread(self._repo.usage, agent_id, day)
        return self._usage[(agent_id, day)]

    def placed_call(self, call_id: str, agent_id: int) -> None:
        """An outside call an agent placed: one call now, its talk time when it ends (`call_ended`)."""
        self.count_usage(agent_id, calls=1)
        self._placed[call_id] = agent_id
        while len(self._placed) > 100_000:  # calls that never ended (lost events): forget the oldest
            self._placed.pop(next(iter(self._placed)))

    def call_ended(self, record: CallRecord) -> None:
        agent_id = self._placed.pop(record.call_id, None)
        if agent_id is not None and record.talk_s:
            self.count_usage(agent_id, seconds=round(record.talk_s))

    def count_usage(self, agent_id: int, *, calls: int = 0, seconds: int = 0) -> None:
        day = self._clock().date()
        c, s = self._usage.get((agent_id, day), (0, 0))
        self._usage[(agent_id, day)] = (c + calls, s + seconds)
        self._usage_writes.append((agent_id, day, calls, seconds))
        self._wake.set()

    # ------------------------------------------------------------------ commands
    def _agent(self, number: str) -> Agent:
        agent = self._snapshot().agent_by_number.get(number)
        if agent is None or not agent.enabled:
            raise NotFoundError(f"agent {number!r} does not exist or is disabled")
        return agent

    def _lock(self, agent_id: int) -> asyncio.Lock:
        return self._locks.setdefault(agent_id, asyncio.Lock())

    async def login(
        self, number: str, pin: str | None, phone: str, *, actor: str, check_pin: bool = True
    ) -> AgentStatus:
        """Log agent `number` in on `phone`; whoever was on that phone, and this agent's earlier phone, are
        logged off (journaled).  With `check_pin`, a wrong number or PIN raises AuthenticationError."""
        snap = self._snapshot()
        agent = snap.agent_by_number.get(number)
        if check_pin:
            ok = (
                agent is not None
                and agent.enabled
                and agent.pin_hash is not None
                and pin is not None
                and await asyncio.to_thread(verify_secret, agent.pin_hash, pin)
            )
            if not ok:
                log.warning("agent login refused on phone %s (agent %r)", phone, number)
                raise AuthenticationError("wrong agent number or PIN")
        agent = self._agent(number)
        p = snap.phone_by_name.get(phone)
        if p is None or not p.enabled:
            raise NotFoundError(f"phone {phone!r} does not exist or is disabled")
        async with self._lock(agent.id):
            now = self._clock()
            transitions: list[Transition] = []
            drop: list[int] = []
            other_id = self._by_phone.get(phone)
            if other_id is not None and other_id != agent.id:
                other = self.status(other_id)
                new_other = replace(other.moved("logoff", now), phone=None, logged_in_at=None)
                transitions.append(Transition(other, new_other, "logoff", now, f"agent {number} logged in", actor))
                drop.append(other_id)
            old = self.status(agent.id)
            moved_from = old.phone if old.state != st.LOGGED_OUT and old.phone != phone else None
            new = replace(
                old.moved("login", now),
                phone=phone,
                logged_in_at=now if old.state == st.LOGGED_OUT else old.logged_in_at,
                missed_in_row=0 if old.state == st.LOGGED_OUT else old.missed_in_row,
            )
            reason = f"moved from phone {moved_from}" if moved_from else ""
            transitions.append(Transition(old, new, "login", now, reason, actor))
            skills = [(s.queue_id, s.penalty) for s in snap.skills_by_agent.get(agent.id, ())]
            paused = new.state == st.PAUSED
            await self._write_in_order(
                self._repo.apply_membership,
                transitions,
                members=[(agent.id, skills, phone, paused, new.pause_reason)],
                drop_agents=drop,
            )
            for tr in transitions:
                self._set(tr.new)
            if moved_from:
                self._by_phone.pop(moved_from, None)
            self._emit("agent.login", new, actor=actor)
            return new

    async def logoff(self, number: str, *, actor: str, reason: str = "") -> AgentStatus:
        agent = self._agent(number)
        async with self._lock(agent.id):
            now = self._clock()
            old = self.status(agent.id)
            if old.state == st.LOGGED_OUT:
                raise ConflictError(f"agent {number} is not logged in")
            new = replace(old.moved("logoff", now), phone=None, logged_in_at=None, wrapup_until=None)
            transition = Transition(old, new, "logoff", now, reason, actor)
            await self._write_in_order(self._repo.apply_membership, [transition], drop_agents=[agent.id])
            self._set(new, old_phone=old.phone)
            self._emit("agent.logoff", new, actor=actor, reason=reason)
            return new

    async def logoff_phone(self, phone: str, *, actor: str, reason: str = "") -> AgentStatus | None:
        """Log off whoever is on `phone` (security action, logoff code); None when nobody is."""
        agent = self.agent_on_phone(phone)
        return None if agent is None else await self.logoff(agent.number, actor=actor, reason=reason)

    async def pause(self, number: str, reason: str, *, actor: str) -> AgentStatus:
        agent = self._agent(number)
        snap = self._snapshot()
        if reason != MISSED_CALLS_REASON and reason and reason not in snap.pause_reason_by_name:
            known = ", ".join(r.name for r in snap.pause_reasons if r.enabled) or "none configured"
            raise ValidationError("reason", f"unknown pause reason {reason!r} (known: {known})")
        return await self._set_paused(agent, True, reason, actor)

    async def unpause(self, number: str, *, actor: str, event: str = "unpause") -> AgentStatus:
        return await self._set_paused(self._agent(number), False, "", actor, event)

    async def _set_paused(
        self, agent: Agent, paused: bool, reason: str, actor: str, event: str | None = None
    ) -> AgentStatus:
        event = event or ("pause" if paused else "unpause")
        async with self._lock(agent.id):
            now = self._clock()
            old = self.status(agent.id)
            if old.state == st.LOGGED_OUT:
                raise ConflictError(f"agent {agent.number} is not logged in")
            try:
                new = old.moved(event, now, pause_reason=reason) if paused else old.moved(event, now)
            except IllegalTransition as exc:
                raise ConflictError(f"agent {agent.number}: {exc}") from exc
            await self._write_in_order(
                self._repo.set_paused, [Transition(old, new, event, now, reason, actor)], agent.id, paused, reason
            )
            self._set(new)
            if self._pauser is not None and old.phone:
                try:
                    await self._pauser(f"PJSIP/{old.phone}", paused, reason)
                except HotlineError as exc:  # the database holds it; nodes re-read it on the next call
                    log.warning("agent %s: QueuePause not sent to every node (%s)", agent.number, exc)
            self._emit(f"agent.{event}", new, actor=actor, reason=reason)
            return new

    # ------------------------------------------------------------------ Asterisk queue events
    def on_ami(self, node: str, msg: Message) -> None:
        name = msg.name
        if name not in ("AgentCalled", "AgentConnect", "AgentComplete", "AgentRingNoAnswer"):
            return
        agent = self._snapshot().agent_by_number.get(msg.get("MemberName") or "")
        if agent is None:
            return  # a static member, not a logged-in agent
        call_id = msg.chan_variables.get("HOTLINE_CALL_ID") or None
        queue = msg.get("Queue") or ""
        now = self._clock()
        old = self.status(agent.id)
        if old.state == st.LOGGED_OUT:
            return
        try:
            if name == "AgentCalled":
                new = replace(old.moved("ring", now), call_id=call_id)
                self._record(old, new, "ring", now, queue)
                self._emit("agent.ringing", new, queue=queue, caller=msg.get("CallerIDNum") or "", node=node)
            elif name == "AgentConnect":
                new = replace(old.moved("connect", now), call_id=call_id, missed_in_row=0)
                self._record(old, new, "connect", now, queue)
            elif name == "AgentComplete":
                wrap = self._wrapup_s(queue, agent.id)
                new = replace(old.moved("complete", now), wrapup_until=now + timedelta(seconds=wrap))
                self._record(old, new, "complete", now, f"{queue} {msg.get('Reason') or ''}".strip())
                if new.state == st.WRAP_UP and wrap <= 0:
                    self._end_wrapup(new, now)
            else:  # AgentRingNoAnswer
                new = replace(
                    old.moved("ring_no_answer", now),
                    missed_in_row=old.missed_in_row + 1,
                    missed_total=old.missed_total + 1,
                    call_id=None,
                )
                self._record(old, new, "ring_no_answer", now, queue)
                self._maybe_autopause(agent, new)
        except IllegalTransition as exc:
            log.info("agent %s: %s ignored (%s)", agent.number, name, exc)

    def _wrapup_s(self, queue: str, agent_id: int) -> int:
        snap = self._snapshot()
        member = next((m for m in snap.members_by_queue.get(queue, ()) if m.agent_id == agent_id), None)
        if member is not None and member.wrapuptime is not None:
            return member.wrapuptime
        q = snap.queue_by_name.get(queue)
        return q.wrapuptime if q is not None else 0

    def _end_wrapup(self, status: AgentStatus, now: datetime) -> None:
        new = replace(status.moved("wrapup_end", now), wrapup_until=None, call_id=None)
        self._record(status, new, "wrapup_end", now, "")

    def _maybe_autopause(self, agent: Agent, status: AgentStatus) -> None:
        group = self._snapshot().group_by_id.get(agent.group_id) if agent.group_id is not None else None
        limit = group.max_missed_in_row if group is not None else 0
        if limit and status.missed_in_row >= limit and status.state != st.PAUSED:
            log.info("agent %s missed %d calls in a row: paused", agent.number, status.missed_in_row)
            task = asyncio.get_running_loop().create_task(
                self._set_paused(agent, True, MISSED_CALLS_REASON, "auto"), name=f"autopause-{agent.number}"
            )
            task.add_done_callback(_log_failure)

    # ------------------------------------------------------------------ timers and persistence
    async def timer_loop(self, interval: float = 0.5) -> None:
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            snap = self._snapshot()
            for s in list(self._status.values()):
                if s.state == st.WRAP_UP and s.wrapup_until is not None and s.wrapup_until <= now:
                    self._end_wrapup(s, now)
                elif s.state == st.PAUSED and s.pause_reason:
                    r = snap.pause_reason_by_name.get(s.pause_reason)
                    limit = timedelta(seconds=r.max_duration_s) if r is not None and r.max_duration_s else None
                    if limit is not None and now - s.state_since >= limit:
                        agent = snap.agent_by_id.get(s.agent_id)
                        if agent is not None and not self._lock(agent.id).locked():
                            with contextlib.suppress(HotlineError):
                                await self.unpause(agent.number, actor="timer", event="pause_expired")

    def _record(self, old: AgentStatus, new: AgentStatus, event: str, now: datetime, reason: str) -> None:
        self._set(new)
        self._writes.append(Transition(old, new, event, now, reason, "asterisk" if event != "wrapup_end" else "timer"))
        self._wake.set()
        if event != "ring":  # the ring publishes agent.ringing itself, with the caller and the queue
            self._emit(f"agent.{event}", new, reason=reason)

    async def flush_loop(self, batch_delay: float = 0.1) -> None:
        """Write queued transitions; waits `batch_delay` after the first so that a burst of queue events
        (a ringall queue rings many agents at once) becomes one transaction (bench/CALLS.md)."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(batch_delay)
            self._wake.clear()
            await self.flush()

    async def _write_in_order(self, write: Callable[..., None], *args: object, **kwargs: object) -> None:
        """A command's write, after every transition queued before it: the database must end with the
        latest state (a queued 'ring_no_answer' written after the pause it caused would undo the pause)."""
        async with self._flush_lock:
            await self._flush_pending()
            await asyncio.to_thread(write, *args, **kwargs)

    async def flush(self) -> None:
        async with self._flush_lock:
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        batch = list(self._writes)
        usage = list(self._usage_writes)
        try:
            if batch:
                await asyncio.to_thread(self._repo.record, batch)
                for _ in batch:
                    self._writes.popleft()
            for agent_id, day, calls, seconds in usage:
                await asyncio.to_thread(self._repo.add_usage, agent_id, day, calls=calls, seconds=seconds)
                self._usage_writes.popleft()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # kept in memory and retried on the next wake-up
            self.write_errors += 1
            log.warning("agent state not persisted yet (%s); retrying", exc)
            await asyncio.sleep(1.0)
            self._wake.set()

    def _set(self, new: AgentStatus, old_phone: str | None = None) -> None:
        prev = self._status.get(new.agent_id)
        self._status[new.agent_id] = new
        for phone in {old_phone, prev.phone if prev else None} - {None, new.phone}:
            if phone is not None and self._by_phone.get(phone) == new.agent_id:
                del self._by_phone[phone]
        if new.phone and new.state != st.LOGGED_OUT:
            self._by_phone[new.phone] = new.agent_id

    def _emit(self, event: str, status: AgentStatus, **extra: object) -> None:
        if self._publish is None:
            return
        agent = self._snapshot().agent_by_id.get(status.agent_id)
        data: dict[str, object] = {
            "agent": agent.number if agent else str(status.agent_id),
            "name": agent.name if agent else "",
            "state": status.state,
            "phone": status.phone or "",
            "pause_reason": status.pause_reason,
            "since": status.state_since.isoformat(),
            "call_id": status.call_id or "",
            **extra,
        }
        try:
            self._publish(event, data)
        except Exception as exc:  # a subscriber's failure never changes an agent's state
            log.warning("publishing %s failed: %s", event, exc)


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("%s failed: %s", task.get_name(), task.exception())
