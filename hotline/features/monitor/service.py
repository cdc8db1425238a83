"""The live picture supervisors and wallboards look at: queues, waiting callers, agents, today's figures.

`MonitorService` keeps, in memory, per queue: the callers waiting now (from AMI QueueCallerJoin /
QueueCallerLeave / QueueCallerAbandon), the agents serving it by state (from the agents' state machine),
and today's offered / answered / abandoned / answered-within-service-level counts (loaded from the
journal at start and at midnight, then counted live from AgentConnect and QueueCallerAbandon).

Every change of what a tile shows publishes ``queue.stats`` on the event bus with the queue's whole tile
(with `source_ts`, the node's Timestamp of the AMI event behind the change, so a screen can measure
event-to-screen latency), so a wallboard updates from the event itself (no polling, no second request);
a tile also carries its alarm level
(ok / amber / red) from the queue's thresholds (waiting callers, longest wait).  A timer republishes a
tile while callers wait so "longest wait" and the alarm keep moving, and its level is re-evaluated.

Invariants: handlers only update dictionaries and publish (never await); a malformed AMI event is
ignored field by field (a missing Position or HoldTime never drops the event); memory is bounded by the
calls waiting now (a caller whose Leave was lost is dropped after `stale_after` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hotline.db.repositories.history import HistoryRepository, QueueDay
from hotline.domain import agent_state as st
from hotline.domain.agent_state import AgentStatus
from hotline.domain.config import ConfigSnapshot
from hotline.features.events import Event, EventBus
from hotline.protocols.ami import Message

log = logging.getLogger(__name__)

QUEUE_STATS_EVENT = "queue.stats"
CALLER_EVENTS = ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "AgentConnect")
#: tile fields that change with time or with the event behind them, not with the queue's state
_VOLATILE = frozenset({"longest_wait_s", "source_ts"})


@dataclass(slots=True)
class Waiting:
    call_id: str
    caller: str
    caller_name: str
    node: str
    joined_at: float  # wall clock seconds
    position: int


@dataclass(slots=True)
class Today:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_sl: int = 0
    wait_total_s: float = 0.0

    @classmethod
    def from_day(cls, d: QueueDay) -> Today:
        return cls(d.offered, d.answered, d.abandoned, d.answered_in_sl, d.wait_total_s)


@dataclass(slots=True)
class Thresholds:
    waiting_amber: int = 3
    waiting_red: int = 6
    wait_amber_s: int = 60
    wait_red_s: int = 180


@dataclass(slots=True)
class QueueLive:
    waiting: dict[str, Waiting] = field(default_factory=dict)  # by the caller channel's Uniqueid
    today: Today = field(default_factory=Today)
    # the node's Timestamp of the oldest AMI event folded into the next publication (then of the last one
    # published): event-to-screen latency is measured from the oldest change a screen had to wait for
    source_ts: float | None = None
    pending_ts: float | None = None


def alarm_level(waiting: int, longest_s: float, th: Thresholds) -> str:
    """'red', 'amber' or 'ok' (a threshold of 0 is off)."""

    def over(value: float, limit: int) -> bool:
        return limit > 0 and value >= limit

    if over(waiting, th.waiting_red) or over(longest_s, th.wait_red_s):
        return "red"
    if over(waiting, th.waiting_amber) or over(longest_s, th.wait_amber_s):
        return "amber"
    return "ok"


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or "")
    except ValueError:
        return default


class MonitorService:
    def __init__(
        self,
        snapshot: Callable[[], ConfigSnapshot],
        statuses: Callable[[], list[AgentStatus]],
        history: HistoryRepository,
        bus: EventBus,
        *,
        thresholds: Callable[[], dict[str, Thresholds]],
        clock: Callable[[], float] = time.time,
        stale_after: float = 4 * 3600,
        min_interval: float = 0.15,
    ) -> None:
        self._snapshot = snapshot
        self._statuses = statuses
        self._history = history
        self._bus = bus
        self._thresholds_of = thresholds
        self._thresholds: dict[str, Thresholds] = {}
        self._clock = clock
        self._stale_after = stale_after
        self._queues: dict[str, QueueLive] = {}
        self._day = ""
        self._levels: dict[str, str] = {}
        self._min_interval = min_interval
        self._dirty: set[str] = set()
        self._forced: set[str] = set()  # dirty tiles sent even when nothing shown changed (the tick)
        self._shown: dict[str, dict[str, Any]] = {}  # per queue: the last tile sent, without _VOLATILE
        self.unchanged = 0  # publications skipped because nothing shown changed
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = float("-inf")  # loop time of the last publication
        self.published = 0

    # ------------------------------------------------------------------ lifecycle
    def _today_start(self) -> datetime:
        now = datetime.fromtimestamp(self._clock(), UTC)
        return now.replace(hour=0, minute=0, second=0, microsecond=0)

    async def start(self) -> None:
        await self.reload_day()
        self._bus.subscribe(self.on_event)

    async def reload_day(self) -> None:
        start = self._today_start()
        days = await asyncio.to_thread(self._history.queue_day, start)
        self._thresholds = await asyncio.to_thread(self._thresholds_of)
        self._day = start.date().isoformat()
        for live in self._queues.values():
            live.today = Today()
        for name, d in days.items():
            self._live(name).today = Today.from_day(d)

    async def tick_loop(self, interval: float = 1.0) -> None:
        """Republish the tiles of queues with waiting callers (longest wait moves), roll the day over."""
        while True:
            await asyncio.sleep(interval)
            try:
                if self._today_start().date().isoformat() != self._day:
                    await self.reload_day()
                now = self._clock()
                for name, live in list(self._queues.items()):
                    for uid, w in list(live.waiting.items()):
                        if now - w.joined_at > self._stale_after:
                            del live.waiting[uid]
                    if live.waiting:
                        self._publish(name, force=True)
            except Exception:  # the tile timer must survive a bad moment (database down at midnight)
                log.exception("monitor tick failed")

    def on_snapshot(self, _snap: ConfigSnapshot) -> None:
        """Configuration changed (thresholds, queues): re-read the thresholds soon."""
        asyncio.get_running_loop().create_task(self._refresh_thresholds(), name="monitor-thresholds")

    async def _refresh_thresholds(self) -> None:
        try:
            self._thresholds = await asyncio.to_thread(self._thresholds_of)
        except Exception as exc:
            log.warning("monitor: thresholds not refreshed: %s", exc)

    # ------------------------------------------------------------------ inputs
    def _live(self, queue: str) -> QueueLive:
        live = self._queues.get(queue)
        if live is None:
            live = self._queues[queue] = QueueLive()
        return live

    def on_ami(self, node: str, msg: Message) -> None:
        name = msg.name
        if name not in CALLER_EVENTS:
            return
        queue = msg.get("Queue") or ""
        if not queue:
            return
        live = self._live(queue)
        uid = msg.get("Uniqueid") or ""
        try:  # timestampevents=yes: seconds since the epoch on the node, for event-to-screen latency
            ts: float | None = float(msg.get("Timestamp") or "")
        except ValueError:
            ts = None
        if ts is not None and live.pending_ts is None:
            live.pending_ts = ts
        if name == "QueueCallerJoin":
            live.waiting[uid] = Waiting(
                call_id=msg.chan_variables.get("HOTLINE_CALL_ID") or "",
                caller=msg.get("CallerIDNum") or "",
                caller_name=msg.get("CallerIDName") or "",
                node=node,
                joined_at=self._clock(),
                position=_int(msg.get("Position")),
            )
            live.today.offered += 1
        elif name == "QueueCallerLeave":
            if live.waiting.pop(uid, None) is None:
                return
        elif name == "QueueCallerAbandon":
            live.waiting.pop(uid, None)
            live.today.abandoned += 1
        else:  # AgentConnect: answered; HoldTime is in seconds
            hold = _int(msg.get("HoldTime"))
            live.waiting.pop(uid, None)
            live.today.answered += 1
            live.today.wait_total_s += hold
            q = self._snapshot().queue_by_name.get(queue)
            if q is not None and hold <= q.servicelevel:
                live.today.answered_in_sl += 1
        self._publish(queue)

    def on_event(self, event: Event) -> None:
        """An agent's state changed: the tiles of the queues that agent serves change too."""
        if not event.name.startswith("agent."):
            return
        number = event.data.get("agent")
        snap = self._snapshot()
        agent = snap.agent_by_number.get(number) if isinstance(number, str) else None
        if agent is None:
            return
        for skill in snap.skills_by_agent.get(agent.id, ()):
            q = snap.queue_by_id.get(skill.queue_id)
            if q is not None:
                self._publish(q.name)

    # ------------------------------------------------------------------ outputs
    def _agents_by_queue(self) -> dict[str, dict[str, int]]:
        snap = self._snapshot()
        out: dict[str, dict[str, int]] = {q.name: _zero_agents() for q in snap.queues}
        for status in self._statuses():
            if status.state == st.LOGGED_OUT:
                continue
            for skill in snap.skills_by_agent.get(status.agent_id, ()):
                q = snap.queue_by_id.get(skill.queue_id)
                if q is not None:
                    counts = out.setdefault(q.name, _zero_agents())
                    counts[status.state] = counts.get(status.state, 0) + 1
                    counts["logged_in"] += 1
        return out

    def tile(self, queue: str, agents: dict[str, int] | None = None) -> dict[str, Any]:
        live = self._queues.get(queue) or QueueLive()
        now = self._clock()
        longest = max((now - w.joined_at for w in live.waiting.values()), default=0.0)
        counts = agents if agents is not None else self._agents_by_queue().get(queue, _zero_agents())
        th = self._thresholds.get(queue, Thresholds())
        today = live.today
        return {
            "queue": queue,
            "waiting": len(live.waiting),
            "longest_wait_s": round(longest, 1),
            "agents": {
                "available": counts.get(st.AVAILABLE, 0),
                "ringing": counts.get(st.RINGING, 0),
                "on_call": counts.get(st.ON_CALL, 0),
                "wrap_up": counts.get(st.WRAP_UP, 0),
                "paused": counts.get(st.PAUSED, 0),
                "logged_in": counts.get("logged_in", 0),
            },
            "today": {
                "offered": today.offered,
                "answered": today.answered,
                "abandoned": today.abandoned,
                "service_level": None if today.answered == 0 else round(today.answered_in_sl / today.answered, 4),
                "abandon_rate": None
                if today.answered + today.abandoned == 0
                else round(today.abandoned / (today.answered + today.abandoned), 4),
                "avg_wait_s": None if today.answered == 0 else round(today.wait_total_s / today.answered, 1),
            },
            "thresholds": {
                "waiting_amber": th.waiting_amber,
                "waiting_red": th.waiting_red,
                "wait_amber_s": th.wait_amber_s,
                "wait_red_s": th.wait_red_s,
            },
            "alarm": alarm_level(len(live.waiting), longest, th),
            "source_ts": live.source_ts,
        }

    def tiles(self) -> list[dict[str, Any]]:
        agents = self._agents_by_queue()
        names = sorted(set(agents) | set(self._queues))
        return [self.tile(n, agents.get(n, _zero_agents())) for n in names]

    def waiting_callers(self, queue: str | None = None) -> list[dict[str, Any]]:
        now = self._clock()
        out = []
        for name, live in sorted(self._queues.items()):
            if queue is not None and name != queue:
                continue
            for uid, w in live.waiting.items():
                out.append(
                    {
                        "queue": name,
                        "uniqueid": uid,
                        "call_id": w.call_id,
                        "caller": w.caller,
                        "caller_name": w.caller_name,
                        "node": w.node,
                        "position": w.position,
                        "wait_s": round(now - w.joined_at, 1),
                    }
                )
        return sorted(out, key=lambda c: (c["queue"], -float(c["wait_s"])))

    def _publish(self, queue: str, *, force: bool = False) -> None:
        """Mark the tile changed.  Publications are throttled, not delayed: after a quiet moment a change goes
        out at the end of the current loop pass (with whatever else that AMI read brought); while changes keep
        coming, the dirty tiles go out together at most once every `min_interval` seconds, one event per
        queue.  A burst (a ringall queue ringing 40 phones) costs one tile computation, not 40, and every
        screen redraws at most 1 / min_interval times a second: a wallboard's cost is its frames (about 5 ms of
        headless-Chromium CPU each on the 2-core test machine, bench/WEB.md), and nobody reads a tile faster."""
        self._dirty.add(queue)
        if force:
            self._forced.add(queue)
        if self._min_interval <= 0:
            self._flush()
        elif self._flush_handle is None:
            loop = asyncio.get_running_loop()
            delay = self._last_flush + self._min_interval - loop.time()
            self._flush_handle = loop.call_soon(self._flush) if delay <= 0 else loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        with contextlib.suppress(RuntimeError):  # no running loop: called directly (min_interval 0, tests)
            self._last_flush = asyncio.get_running_loop().time()
        dirty, self._dirty = self._dirty, set()
        forced, self._forced = self._forced, set()
        agents = self._agents_by_queue()
        for queue in sorted(dirty):
            live = self._queues.get(queue)
            if live is not None and live.pending_ts is not None:
                live.source_ts, live.pending_ts = live.pending_ts, None
            tile = self.tile(queue, agents.get(queue, _zero_agents()))
            self._levels[queue] = str(tile["alarm"])
            # A change that changes nothing a tile shows (an agent event that moves no count) is not sent:
            # every publication is a frame on every screen.  The once-a-second tick is always sent: it is
            # how a client that does not count the wait itself sees "longest wait" move.
            shown = {k: v for k, v in tile.items() if k not in _VOLATILE}
            if queue not in forced and self._shown.get(queue) == shown:
                self.unchanged += 1
                continue
            self._shown[queue] = shown
            try:
                self._bus.publish(QUEUE_STATS_EVENT, tile)
                self.published += 1
            except Exception as exc:  # never let the bus break AMI handling
                log.warning("publishing queue.stats failed: %s", exc)


def _zero_agents() -> dict[str, int]:
    return {"logged_in": 0}
