"""The journal: every event of a call, under its Hotline call id, written in batches; plus call records.

Sources: AMI events of every node (`on_ami`), and Hotline's own decisions (`record`).  An AMI event
belongs to a call when it carries `ChanVariable: HOTLINE_CALL_ID=...` (manager.conf channelvars), or when
its Uniqueid or Linkedid is already known to belong to one.  Events that arrive before the call id is
known (the caller's Newchannel comes before the AGI assigns the id) wait in a small bounded buffer per
channel and are released, in arrival order, when `bind()` links the channel to its call.

Invariants:
- `on_ami` and `record` never block and never touch the database: they append to a bounded buffer.
  The AMI reader must never stall (asterisk-reference.md trap 10).
- `flush_loop` writes pending events in batches of at most `batch_size`, one transaction per batch;
  when the database fails, the batch is kept and retried (with back-off), never lost or half-written.
- Sequence numbers are per call and follow arrival order.
- A call record is upserted when the call starts and when it ends (`CallTracker` decides the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from hotline.db.repositories import CallRepository
from hotline.domain.call_state import CallTracker
from hotline.domain.calls import CallRecord, JournalEvent
from hotline.domain.events import from_journal
from hotline.errors import ValidationError
from hotline.protocols.ami import Message

log = logging.getLogger(__name__)

# Events that never belong to a call journal (node and registration housekeeping).
_SKIP = frozenset(
    {
        "FullyBooted",
        "SuccessfulAuth",
        "ChallengeSent",
        "PeerStatus",
        "ContactStatus",
        "DeviceStateChange",
        "QueueMemberStatus",
        "Registry",
        "Reload",
        "ModuleLoadReport",
        "Newexten",
        "VarSet",
        "RTCPSent",
        "RTCPReceived",
        "AGIExecStart",
        "AGIExecEnd",
    }
)
_CALL_ID_PREFIX = "HOTLINE_CALL_ID="
_PENDING_TTL = 30.0
_PENDING_PER_CHANNEL = 64
_PENDING_CHANNELS = 10_000
_MAX_UID_MAPPINGS = 200_000  # channels remembered after their call ended (late events still find it)


class JournalService:
    def __init__(
        self,
        repo: CallRepository,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        max_pending: int = 100_000,
        call_idle_timeout: float = 3600.0,
        on_call_end: Callable[[CallRecord], None] | None = None,
    ) -> None:
        self._repo = repo
        self._on_call_end = on_call_end
        self._batch = batch_size
        self._interval = flush_interval
        self._max_pending = max_pending
        self._idle = call_idle_timeout
        self._events: deque[JournalEvent] = deque()
        self._records: dict[str, CallRecord] = {}  # records to upsert at next flush
        self._trackers: dict[str, CallTracker] = {}
        self._last_activity: dict[str, float] = {}
        self._seq: dict[str, int] = {}
        self._uid_call: dict[str, str] = {}  # uniqueid/linkedid -> call id
        self._unbound: OrderedDict[str, tuple[float, list[tuple[str, Message]]]] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._flush_lock = asyncio.Lock()  # the loop's flush and stop()'s final flush must not interleave
        self._adopt: set[str] = set()  # call ids first seen here mid-call (e.g. after a restart)
        self.dropped = 0
        self.rejected = 0
        self.written = 0
        self.ami_lag_s = 0.0

    # ------------------------------------------------------------------ inputs
    def start_call(
        self,
        call_id: str,
        *,
        node: str,
        uniqueid: str | None,
        caller_num: str | None,
        caller_name: str | None,
        did: str | None,
        channel: str | None = None,
        new: bool = True,
        previous: CallRecord | None = None,
    ) -> None:
        """A call got its id (from the AGI router). Links the caller's channel and releases its events.

        A call that comes back through the router with its id (a transfer, another node) keeps its record:
        only the new channel is linked."""
        tracker = self._trackers.get(call_id)
        if tracker is not None:
            if uniqueid:
                tracker.live.add(uniqueid)
                tracker.seen.add(uniqueid)
                self._bind_uid(uniqueid, call_id)
            return
        if previous is not None and previous.status == "active":
            record = previous  # the stored record of a call this instance did not see start (restart)
        else:
            record = CallRecord(
                call_id=call_id,
                node=node,
                caller_num=caller_num,
                caller_name=caller_name,
                did=did,
                destination=None,
                status="active",
                started_at=datetime.now(UTC),
            )
        tracker = CallTracker(record, uniqueid)
        if new:
            self._seq.setdefault(call_id, 0)  # a new id has no events in the database: no renumbering
        self._trackers[call_id] = tracker
        self._records[call_id] = record
        self._touch(call_id)
        if uniqueid:
            self._bind_uid(uniqueid, call_id)
            if channel:
                tracker.live.add(uniqueid)
                tracker.seen.add(uniqueid)

    def record(
        self,
        call_id: str,
        event: str,
        data: Mapping[str, str],
        *,
        node: str = "",
        source: str = "hotline",
        uniqueid: str | None = None,
        channel: str | None = None,
    ) -> None:
        self._append(call_id, datetime.now(UTC), source, node, event, uniqueid, channel, dict(data))

    def on_ami(self, node: str, msg: Message) -> None:
        name = msg.name
        if name in _SKIP:
            return
        # manager.conf lists one channelvar, HOTLINE_CALL_ID, so it is the first ChanVariable header
        cv = msg.get("ChanVariable")
        call_id: str | None = None
        if cv is not None:
            if cv.startswith(_CALL_ID_PREFIX):
                call_id = cv[len(_CALL_ID_PREFIX) :] or None
            else:
                call_id = msg.chan_variables.get("HOTLINE_CALL_ID") or None
        uid = msg.get("Uniqueid")
        if call_id:
            if uid and uid not in self._uid_call:
                self._bind_uid(uid, call_id)
        else:
            uid_call = self._uid_call
            call_id = uid_call.get(uid) if uid else None
            if call_id is None:
                linked = msg.get("Linkedid")
                call_id = (uid_call.get(linked) if linked else None) or uid_call.get(msg.get("DestUniqueid") or "")
            if call_id and uid:
                uid_call[uid] = call_id
        if call_id is None:
            if uid:
                self._hold(uid, node, msg)
            return
        self._append_ami(call_id, node, msg)

    # ------------------------------------------------------------------ internals
    def _bind_uid(self, uid: str, call_id: str) -> None:
        self._uid_call[uid] = call_id
        held = self._unbound.pop(uid, None)
        if held:
            for node, msg in held[1]:
                self._append_ami(call_id, node, msg)

    def _hold(self, uid: str, node: str, msg: Message) -> None:
        now = time.monotonic()
        entry = self._unbound.get(uid)
        if entry is None:
            while self._unbound and (
                len(self._unbound) >= _PENDING_CHANNELS or next(iter(self._unbound.values()))[0] < now - _PENDING_TTL
            ):
                self._unbound.popitem(last=False)  # channels that never became a Hotline call
            entry = (now, [])
            self._unbound[uid] = entry
        if len(entry[1]) < _PENDING_PER_CHANNEL:
            entry[1].append((node, msg))

    def _append_ami(self, call_id: str, node: str, msg: Message) -> None:
        data = dict(msg.headers)  # one split of the message; a repeated key keeps its last value
        data.pop("Event", None)
        data.pop("Privilege", None)
        ts_raw = data.pop("Timestamp", None)
        now = time.time()
        try:
            epoch = float(ts_raw) if ts_raw else now
            ts = datetime.fromtimestamp(epoch, UTC)
        except (ValueError, OverflowError, OSError):
            epoch, ts = now, datetime.now(UTC)
        self.ami_lag_s = max(0.0, now - epoch)
        self._append(call_id, ts, "ami", node, msg.name or "", data.get("Uniqueid"), data.get("Channel"), data)

    def _append(
        self,
        call_id: str,
        ts: datetime,
        source: str,
        node: str,
        event: str,
        uniqueid: str | None,
        channel: str | None,
        data: dict[str, str],
    ) -> None:
        if len(self._events) >= self._max_pending:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("journal: %d events pending, dropping (database too slow or down)", len(self._events))
            return
        tracker = self._trackers.get(call_id)
        if call_id not in self._seq:
            self._adopt.add(call_id)  # its earlier events may be in the database: renumber at flush
        seq = self._seq.get(call_id, 0) + 1
        self._seq[call_id] = seq
        ev = JournalEvent(call_id, seq, ts, source, node, event, uniqueid, channel, data)
        self._events.append(ev)
        if tracker is not None:
            self._last_activity[call_id] = time.monotonic()
            if tracker.apply(from_journal(ev)):
                self._records[call_id] = tracker.record
                self._forget(call_id)
                self._ended(tracker.record)
            else:
                self._records[call_id] = tracker.record
        if len(self._events) >= self._batch:
            self._wakeup.set()

    def _ended(self, record: CallRecord) -> None:
        """Tell the listener (quotas, webhooks) a call ended; its failure never touches the journal."""
        if self._on_call_end is None:
            return
        try:
            self._on_call_end(record)
        except Exception:
            log.exception("call-end listener failed for %s", record.call_id)

    def _touch(self, call_id: str) -> None:
        self._last_activity[call_id] = time.monotonic()

    def _forget(self, call_id: str) -> None:
        self._trackers.pop(call_id, None)
        self._last_activity.pop(call_id, None)
        # The uid -> call id mappings stay: late events (the agent's Hangup) still find their call.
        # They are bounded by _trim_uids.
        self._trim_uids()

    def _trim_uids(self) -> None:
        # dicts keep insertion order: the oldest mappings go first
        excess = len(self._uid_call) - _MAX_UID_MAPPINGS * 9 // 10
        if len(self._uid_call) > _MAX_UID_MAPPINGS and excess > 0:
            for uid in list(itertools.islice(self._uid_call, excess)):
                del self._uid_call[uid]
        if len(self._seq) > _MAX_UID_MAPPINGS:  # trim in bulk, down to 90 %, so this scan is rare
            ended = [c for c in self._seq if c not in self._trackers]
            for call_id in ended[: len(self._seq) - _MAX_UID_MAPPINGS * 9 // 10]:
                del self._seq[call_id]

    def tracks(self, call_id: str) -> bool:
        return call_id in self._trackers

    async def stored_call(self, call_id: str) -> CallRecord | None:
        """The call's record as last written (for a call id this instance meets mid-call)."""
        return await asyncio.to_thread(self._repo.get_call, call_id)

    def active_calls(self) -> list[CallRecord]:
        return [t.record for t in self._trackers.values()]

    def pending(self) -> int:
        return len(self._events) + len(self._records)

    # ------------------------------------------------------------------ writing
    async def flush(self) -> int:
        """Write what is pending now (events first, then call records). Returns events written."""
        async with self._flush_lock:
            return await self._flush()

    async def _flush(self) -> int:
        written = 0
        for call_id in list(self._adopt):
            offset = await asyncio.to_thread(self._repo.max_seq, call_id)
            self._adopt.discard(call_id)
            if offset:
                self._events = deque(
                    JournalEvent(
                        e.call_id,
                        e.seq + offset,
                        e.ts,
                        e.source,
                        e.node,
                        e.event,
                        e.uniqueid,
                        e.channel,
                        e.data,
                    )
                    if e.call_id == call_id
                    else e
                    for e in self._events
                )
                self._seq[call_id] = self._seq.get(call_id, 0) + offset
        while self._events or self._records:
            batch = [self._events[i] for i in range(min(self._batch, len(self._events)))]
            records = list(self._records.values()) if len(batch) < self._batch else []
            try:
                await asyncio.to_thread(self._repo.write_journal, batch, records)
            except ValidationError as exc:
                # A poison row must not block the journal forever: write one by one, drop what fails.
                log.error("journal: %s; isolating the bad rows", exc)
                await asyncio.to_thread(self._write_one_by_one, batch, records)
            for _ in batch:
                self._events.popleft()
            for rec in records:
                if self._records.get(rec.call_id) is rec:
                    del self._records[rec.call_id]
            written += len(batch)
        self.written += written
        return written

    def _write_one_by_one(self, batch: list[JournalEvent], records: list[CallRecord]) -> None:
        for ev in batch:
            try:
                self._repo.write_journal([ev], [])
            except ValidationError as exc:
                self.rejected += 1
                log.error("journal: event %s #%d (%s) refused: %s", ev.call_id, ev.seq, ev.event, exc)
        for rec in records:
            try:
                self._repo.write_journal([], [rec])
            except ValidationError as exc:
                self.rejected += 1
                log.error("journal: call record %s refused: %s", rec.call_id, exc)

    async def flush_loop(self) -> None:
        delay = self._interval
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives
            # just as the event is set, and stop() would then wait for this task forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.flush()
                delay = self._interval
                self._sweep_idle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = min(max(delay * 2, 0.5), 10.0)
                log.warning(
                    "journal: write failed (%s); %d events kept, retry in %.1f s",
                    exc,
                    len(self._events),
                    delay,
                )
        # not reached

    def _sweep_idle(self) -> None:
        now = time.monotonic()
        for call_id, last in list(self._last_activity.items()):
            if now - last > self._idle:
                tracker = self._trackers.get(call_id)
                if tracker is not None:
                    tracker.close_idle(datetime.now(UTC))
                    self._records[call_id] = tracker.record
                    self._ended(tracker.record)
                self._forget(call_id)
