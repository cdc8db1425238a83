"""Call recordings: from the WAV MixMonitor writes on a node to an MP3 in storage, never losing one.

How a recording travels (docs/recordings.md has the operator's view):
1. The node's dialplan runs `MixMonitor(${HOTLINE_CALL_ID}-${UNIQUEID}.wav,b)`; Asterisk writes
   `<astspooldir>/monitor/<call id>-<uniqueid>.wav` and raises `MixMonitorStart` (channel fields only,
   no file name: apps/app_mixmonitor.c, Asterisk 22).  `on_ami` derives the file from the contract and
   the row is registered as `recording`.
2. The recording ends with the channel.  Asterisk raises `MixMonitorStop` only for StopMixMonitor, not
   at hang-up, so the channel's `Hangup` is what says "done"; the MixMonitor thread closes the file a
   moment later.  A Hangup of a channel whose MixMonitorStart was missed (Hotline restarted mid-call)
   still registers the file when it exists.  Rows go `pending`.
3. Workers (at most `workers` at once) claim due rows, convert the WAV (ffmpeg), put the MP3 in storage,
   mark the row `stored`, and only then delete the WAV.  A failure is retried with exponential back-off
   (`retry_base_s` * 2^(n-1), at most `retry_max_s`) until `max_attempts`, then the row is `failed` with
   its `last_error`; `retry(id)` starts it over.  A WAV whose header is not finalized yet (Asterisk
   fills the sizes in at close) is looked at again shortly without counting an attempt; one unchanged
   for `incomplete_grace_s` (the node died mid-call) is converted as it is, with a note.
4. The maintenance loop promotes `recording` rows whose file got finalized without a Hangup reaching
   us, registers orphan WAV files found in the nodes' monitor folders (events lost while Hotline was
   down), and deletes stored recordings older than `retention_days` from storage (row -> `deleted`).

Invariants:
- `on_ami` never blocks and never touches the database or the disk: it appends to a bounded queue.
- The WAV is deleted only after the MP3 is stored *and* the row says so; a WAV that changed since it
  was converted is left in place.
- Every state change is conditional on the row's state (repository), and rows are claimed with a lease,
  so several Hotline instances can run this service on one database.
- Blocking work (files, database, storage) runs in threads; ffmpeg is an asyncio subprocess with a
  deadline; no loop swallows CancelledError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from hotline.db.repositories.recordings import Recording, RecordingRepository
from hotline.errors import ConflictError, HotlineError, NotFoundError, ValidationError
from hotline.features.recordings.convert import Mp3Converter, WavFile, read_wav
from hotline.features.recordings.errors import RecordingError, WavFormatError
from hotline.features.recordings.storage import RecordingStorage, StoredAudio, recording_key
from hotline.protocols.ami import Message

log = logging.getLogger(__name__)

_CALL_ID_PREFIX = "HOTLINE_CALL_ID="
_EVENTS = frozenset({"MixMonitorStart", "MixMonitorStop", "Hangup"})
_SAFE_CALL_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")
_SAFE_UNIQUEID = re.compile(r"[A-Za-z0-9._-]{1,150}")
# What the dialplan names a recording (`${HOTLINE_CALL_ID}-${UNIQUEID}.wav`) when the call id is a UUID.
_FILE_NAME = re.compile(
    r"(?P<call_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"-(?P<uniqueid>[A-Za-z0-9._-]{1,150})\.wav"
)
_STARTED_MAX = 100_000  # channels with a running MixMonitor remembered (bounded)
_BATCH = 500
_SCAN_MAX_FILES = 20_000


def _utcnow() -> datetime:
    return datetime.now(UTC)


def recording_file_name(call_id: str, uniqueid: str) -> str:
    """The name the dialplan gives a recording: `MixMonitor(${HOTLINE_CALL_ID}-${UNIQUEID}.wav,b)`."""
    return f"{call_id}-{uniqueid}.wav"


class NodePaths:
    """Where each node's files are, seen by the node and by this host.

    `roots` maps a node name to (its folder as Asterisk sees it, the same folder on this host); for a
    lab node that is (`LabNode.ast_dir`, `LabNode.host_dir`), the folder holding `spool/`.  Gives the
    service its two callables: `monitor_dir(node)` and `resolve(node, path_as_node_sees_it)`."""

    def __init__(self, roots: Mapping[str, tuple[str, Path]], *, monitor_subdir: str = "spool/monitor") -> None:
        self._roots = {
            name: (PurePosixPath(node_root), Path(host_root)) for name, (node_root, host_root) in roots.items()
        }
        self._monitor_subdir = monitor_subdir.strip("/")

    def nodes(self) -> list[str]:
        return list(self._roots)

    def _root(self, node: str) -> tuple[PurePosixPath, Path]:
        try:
            return self._roots[node]
        except KeyError:
            raise RecordingError(f"node {node!r} has no known folder on this host") from None

    def monitor_dir(self, node: str) -> str:
        node_root, _ = self._root(node)
        return str(node_root / self._monitor_subdir)

    def resolve(self, node: str, path: str) -> Path:
        node_root, host_root = self._root(node)
        p = PurePosixPath(path)
        if not p.is_absolute() or ".." in p.parts:
            raise RecordingError(f"recording path {path!r} of node {node} is not a plain absolute path")
        try:
            rel = p.relative_to(node_root)
        except ValueError:
            raise RecordingError(f"recording path {path!r} is outside node {node}'s folder {node_root}") from None
        return host_root.joinpath(*rel.parts)


@dataclass(frozen=True, slots=True)
class _Intent:
    """A fact from AMI, applied to the database by the intake loop."""

    ended: bool  # False: MixMonitorStart; True: MixMonitorStop or Hangup
    node: str
    call_id: str
    uniqueid: str
    known: bool  # a MixMonitorStart was seen for this channel


class RecordingService:
    def __init__(
        self,
        repo: RecordingRepository,
        storage: RecordingStorage,
        converter: Mp3Converter,
        *,
        resolve: Callable[[str, str], Path],
        monitor_dir: Callable[[str], str],
        nodes: Callable[[], Iterable[str]] = list,
        workers: int = 2,
        max_attempts: int = 8,
        retry_base_s: float = 30.0,
        retry_max_s: float = 3600.0,
        retention_days: int = 0,
        settle_s: float = 1.0,
        incomplete_retry_s: float = 2.0,
        incomplete_grace_s: float = 120.0,
        abandon_after_s: float = 12 * 3600.0,
        poll_interval_s: float = 5.0,
        gather_s: float = 0.2,
        check_interval_s: float = 30.0,
        scan_interval_s: float = 600.0,
        retention_interval_s: float = 3600.0,
        lease_s: float = 1800.0,
        max_queued: int = 100_000,
        work_dir: Path | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if workers < 1 or max_attempts < 1 or retention_days < 0 or max_queued < 1 or gather_s < 0:
            raise ValueError("workers, max_attempts and max_queued must be >= 1, retention_days and gather_s >= 0")
        self._repo = repo
        self._storage = storage
        self._converter = converter
        self._resolve = resolve
        self._monitor_dir = monitor_dir
        self._nodes = nodes
        self._workers = workers
        self._max_attempts = max_attempts
        self._retry_base = retry_base_s
        self._retry_max = retry_max_s
        self._retention_days = retention_days
        self._settle = timedelta(seconds=settle_s)
        self._incomplete_retry = timedelta(seconds=incomplete_retry_s)
        self._grace = incomplete_grace_s
        self._abandon = abandon_after_s
        self._poll = poll_interval_s
        self._gather = gather_s
        self._check_interval = timedelta(seconds=check_interval_s)
        self._scan_interval = scan_interval_s
        self._retention_interval = retention_interval_s
        self._lease = timedelta(seconds=lease_s)
        self._max_queued = max_queued
        self._work_dir = work_dir
        self._clock = clock
        self._intents: deque[_Intent] = deque()
        self._started: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._intake_wakeup = asyncio.Event()
        self._work_wakeup = asyncio.Event()
        self._in_flight: dict[int, Recording] = {}
        self.dropped = 0  # AMI facts refused because the queue was full (the scan still finds the files)
        self.rejected = 0  # AMI facts with a call id or uniqueid unfit for a file name
        self.stored = 0
        self.failures = 0
        self.sources_left = 0  # WAVs left in place because they changed after conversion
        self.last_error: str | None = None
        self.errors: dict[str, str] = {}  # the last error of each activity (intake, claim, attempt...)

    # ------------------------------------------------------------------ input: AMI
    def on_ami(self, node: str, msg: Message) -> None:
        """Note MixMonitorStart / MixMonitorStop / Hangup of channels that belong to a Hotline call.
        Never blocks: the facts are applied by `intake_loop`."""
        name = msg.name
        if name not in _EVENTS:
            return
        uniqueid = msg.get("Uniqueid")
        call_id = _call_id_of(msg)
        if not call_id or not uniqueid:
            return
        if _SAFE_CALL_ID.fullmatch(call_id) is None or _SAFE_UNIQUEID.fullmatch(uniqueid) is None:
            self.rejected += 1
            return
        channel = (node, uniqueid)
        if name == "MixMonitorStart":
            self._started[channel] = None
            self._started.move_to_end(channel)
            while len(self._started) > _STARTED_MAX:
                self._started.popitem(last=False)
            intent = _Intent(False, node, call_id, uniqueid, True)
        else:
            known = channel in self._started
            if name == "Hangup":
                self._started.pop(channel, None)
            elif not known:
                return  # a MixMonitorStop for a recording we never saw start: the Hangup will tell
            intent = _Intent(True, node, call_id, uniqueid, known)
        self._queue(intent)

    def _queue(self, intent: _Intent) -> None:
        if len(self._intents) >= self._max_queued:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("recordings: %d AMI facts queued, dropping (database down?)", len(self._intents))
            return
        self._intents.append(intent)
        self._intake_wakeup.set()

    def queued(self) -> int:
        return len(self._intents)

    async def intake_loop(self) -> None:
        """Apply queued AMI facts to the database, in order; keeps them and retries while it is down."""
        delay = 0.5
        while True:
            if not self._intents:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._intake_wakeup.wait()
                self._intake_wakeup.clear()
                continue
            if self._gather and len(self._intents) < _BATCH:
                # Every Hangup of a call's channel is a fact (mostly "not recorded": a stat in a worker
                # thread).  Gathering a moment's facts into one batch saves a thread hop per channel.
                await asyncio.sleep(self._gather)
            batch = [self._intents[i] for i in range(min(_BATCH, len(self._intents)))]
            try:
                woke = await asyncio.to_thread(self._apply, batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._note_error("intake", f"registering recordings failed: {exc}")
                log.warning("recordings: %s; %d facts kept, retry in %.1f s", exc, len(self._intents), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.5
            for _ in batch:
                self._intents.popleft()
            if woke:
                self._work_wakeup.set()

    def _apply(self, batch: list[_Intent]) -> bool:
        """Register the files of a batch of facts (blocking).  Idempotent: a batch applied twice (after a
        database error mid-batch) leaves the same rows."""
        now = self._clock()
        woke = False
        for it in batch:
            try:
                source = self._source_of(it.node, it.call_id, it.uniqueid)
                if it.ended and not it.known and not self._resolve(it.node, source).is_file():
                    continue  # a channel that was not recorded: the common case of a Hangup
            except (HotlineError, KeyError, ValueError, OSError) as exc:
                log.error("recordings: cannot locate the recording of %s on %s: %s", it.uniqueid, it.node, exc)
                continue
            due = now + (self._settle if it.ended else self._check_interval)
            try:
                rec, changed = self._repo.register(
                    it.call_id, it.node, source, ended=it.ended, now=now, next_attempt_at=due
                )
            except (ValidationError, ConflictError) as exc:
                log.error("recordings: %s not registered: %s", source, exc)
                continue
            if not it.ended and not changed and rec.state != "recording":
                log.warning("recordings: MixMonitor reuses %s, already %s (id %d)", source, rec.state, rec.id)
            woke = woke or (changed and rec.state == "pending")
        return woke

    def _source_of(self, node: str, call_id: str, uniqueid: str) -> str:
        return f"{self._monitor_dir(node).rstrip('/')}/{recording_file_name(call_id, uniqueid)}"

    # ------------------------------------------------------------------ workers
    async def work_loop(self) -> None:
        """Claim due pending recordings and process them, at most `workers` at once."""
        tasks: set[asyncio.Task[None]] = set()
        delay = self._poll

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            self._work_wakeup.set()

        try:
            while True:
                free = self._workers - len(tasks)
                if free > 0:
                    try:
                        now = self._clock()
                        claimed = await asyncio.to_thread(
                            self._repo.claim_due, "pending", now=now, lease_until=now + self._lease, limit=free
                        )
                        delay = self._poll
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        self._note_error("claim", f"claiming recordings failed: {exc}")
                        log.warning("recordings: claiming failed (%s), retry in %.1f s", exc, delay)
                        claimed = []
                        delay = min(max(delay * 2, 0.5), 30.0)
                    for rec in claimed:
                        task = asyncio.get_running_loop().create_task(self._process(rec), name=f"recording-{rec.id}")
                        tasks.add(task)
                        task.add_done_callback(done)
                    if claimed and len(claimed) == free:
                        continue  # more may be due: claim again as soon as a slot frees up
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._work_wakeup.wait()
                self._work_wakeup.clear()
        finally:
            for task in tasks:
                task.cancel()
            ids = list(self._in_flight)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if ids:  # give the leases back so another instance (or the next start) need not wait them out
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.to_thread(self._release, ids), 5)

    def _release(self, ids: list[int]) -> None:
        now = self._clock()
        for rid in ids:
            self._repo.postpone(rid, state="pending", next_attempt_at=now)

    async def _process(self, rec: Recording) -> None:
        self._in_flight[rec.id] = rec
        try:
            await self._attempt(rec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(rec, exc)
        finally:
            self._in_flight.pop(rec.id, None)

    async def _attempt(self, rec: Recording) -> None:
        host = self._resolve(rec.node, rec.source)
        try:
            wav = await asyncio.to_thread(read_wav, host)
        except FileNotFoundError:
            raise RecordingError(f"source file {host} not found") from None
        note: str | None = None
        age = time.time() - wav.mtime
        if wav.info is None or not wav.info.finalized:
            if age < self._grace:  # Asterisk closes the file just after the hang-up: look again soon
                await asyncio.to_thread(
                    self._repo.postpone, rec.id, state="pending", next_attempt_at=self._clock() + self._incomplete_retry
                )
                return
            if wav.info is None:
                raise WavFormatError(f"{host}: WAV header incomplete and unchanged for {age:.0f} s")
            note = (
                f"salvaged: the WAV header was never finalized (file unchanged for {age:.0f} s, "
                "node stopped mid-call?); stored the audio that was written"
            )
        if wav.info.empty:
            if await asyncio.to_thread(
                self._repo.mark_deleted,
                rec.id,
                from_states=("pending",),
                now=self._clock(),
                note="empty recording: no audio was written (the call was never bridged)",
            ):
                await asyncio.to_thread(self._remove_source, host, wav)
            return
        key = recording_key(rec.call_id, rec.source, rec.created_at)
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hotline-rec-", dir=self._work_dir))
        try:
            mp3 = await self._converter.convert(host, tmp / "recording.mp3")
            await self._storage.put(key, mp3.path)
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
        stored = await asyncio.to_thread(
            self._repo.mark_stored,
            rec.id,
            storage_key=key,
            size=mp3.size,
            duration_s=mp3.duration_s,
            now=self._clock(),
            note=note,
        )
        if stored:
            self.stored += 1
            await asyncio.to_thread(self._remove_source, host, wav)
        else:
            log.warning("recordings: %d changed state while being stored; its WAV is kept", rec.id)

    def _remove_source(self, host: Path, seen: WavFile) -> None:
        try:
            st = os.stat(host)
        except FileNotFoundError:
            return
        if (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime_ns):
            self.sources_left += 1
            log.warning("recordings: %s changed after it was converted; left in place", host)
            return
        try:
            host.unlink()
        except OSError as exc:
            self.sources_left += 1
            log.warning("recordings: stored, but cannot delete %s: %s", host, exc)

    async def _fail(self, rec: Recording, exc: Exception) -> None:
        self.failures += 1
        error = str(exc) if isinstance(exc, HotlineError) else f"{type(exc).__name__}: {exc}"
        attempts = rec.attempts + 1
        retry_at: datetime | None = None
        if attempts < self._max_attempts:
            delay = min(self._retry_max, self._retry_base * 2 ** (attempts - 1))
            retry_at = self._clock() + timedelta(seconds=delay)
        self._note_error("attempt", f"recording {rec.id}: {error}")
        log.warning(
            "recordings: %d (%s) attempt %d failed: %s%s",
            rec.id,
            rec.source,
            attempts,
            error,
            "" if retry_at else "; giving up (retry it by hand)",
        )
        try:
            await asyncio.to_thread(
                self._repo.record_failure, rec.id, attempts=attempts, error=error, next_attempt_at=retry_at
            )
        except Exception as db_exc:  # the lease runs out and the row is tried again: nothing is lost
            log.warning("recordings: cannot record the failure of %d: %s", rec.id, db_exc)

    # ------------------------------------------------------------------ maintenance
    async def maintenance_loop(self) -> None:
        """Check running recordings, scan the nodes' monitor folders, apply the retention period."""
        next_scan = next_retention = time.monotonic()
        while True:
            now = time.monotonic()
            steps: list[tuple[str, Callable[[], Any]]] = [("check", self.check_recordings)]
            if now >= next_scan:
                next_scan = now + self._scan_interval
                steps.append(("scan", self.scan))
            if self._retention_days and now >= next_retention:
                next_retention = now + self._retention_interval
                steps.append(("retention", self.apply_retention))
            for what, step in steps:
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._note_error(what, f"recordings {what}: {exc}")
                    log.warning("recordings: %s failed: %s", what, exc)
            await asyncio.sleep(self._check_interval.total_seconds())

    async def check_recordings(self) -> int:
        """Move `recording` rows whose file is finished (or abandoned) to `pending`; returns how many."""
        moved = 0
        while True:
            now = self._clock()
            rows = await asyncio.to_thread(
                self._repo.claim_due, "recording", now=now, lease_until=now + self._check_interval, limit=200
            )
            for rec in rows:
                if await self._finished(rec, now) and await asyncio.to_thread(
                    self._repo.postpone, rec.id, state="recording", new_state="pending", next_attempt_at=now
                ):
                    moved += 1
            if len(rows) < 200:
                break
        if moved:
            self._work_wakeup.set()
        return moved

    async def _finished(self, rec: Recording, now: datetime) -> bool:
        try:
            host = self._resolve(rec.node, rec.source)
            wav = await asyncio.to_thread(read_wav, host)
        except FileNotFoundError:
            return (now - rec.created_at).total_seconds() > self._abandon  # never created: fail visibly
        except (RecordingError, OSError):
            return True  # not a WAV or not readable: the worker records why, visibly
        if wav.info is not None and wav.info.finalized:
            return True
        return time.time() - wav.mtime > self._abandon  # the node died mid-recording long ago

    async def scan(self) -> int:
        """Register WAV files in the nodes' monitor folders that have no row (their AMI events were
        missed); returns how many.  They start as `recording` and are checked at once."""
        found = 0
        for node in list(self._nodes()):
            try:
                folder = self._monitor_dir(node)
                names = await asyncio.to_thread(_list_recordings, self._resolve(node, folder))
            except (HotlineError, KeyError, ValueError, OSError) as exc:
                log.warning("recordings: cannot scan node %s: %s", node, exc)
                continue
            sources = {f"{folder.rstrip('/')}/{name}": name for name in names}
            known = await asyncio.to_thread(self._repo.known_sources, sources)
            now = self._clock()
            for source, name in sources.items():
                if source in known:
                    continue
                match = _FILE_NAME.fullmatch(name)
                assert match is not None
                try:
                    _, changed = await asyncio.to_thread(
                        self._repo.register,
                        match["call_id"],
                        node,
                        source,
                        ended=False,
                        now=now,
                        next_attempt_at=now,
                    )
                except (ValidationError, ConflictError) as exc:
                    log.error("recordings: %s not registered: %s", source, exc)
                    continue
                if changed:
                    found += 1
                    log.info("recordings: found unregistered %s on %s", name, node)
        if found:
            await self.check_recordings()
        return found

    async def apply_retention(self) -> int:
        """Delete stored recordings older than `retention_days` from storage; returns how many."""
        if not self._retention_days:
            return 0
        cutoff = self._clock() - timedelta(days=self._retention_days)
        deleted = 0
        while True:
            rows = await asyncio.to_thread(self._repo.expired, cutoff, 200)
            progress = False
            for rec in rows:
                assert rec.storage_key is not None
                try:
                    await self._storage.delete(rec.storage_key)
                except HotlineError as exc:
                    self._note_error("retention", f"retention: recording {rec.id}: {exc}")
                    log.warning("recordings: retention cannot delete %s: %s", rec.storage_key, exc)
                    continue
                if await asyncio.to_thread(self._repo.mark_deleted, rec.id, from_states=("stored",), now=self._clock()):
                    deleted += 1
                    progress = True
            if len(rows) < 200 or not progress:
                return deleted

    # ------------------------------------------------------------------ queries and operator actions
    async def get(self, call_id: str) -> list[Recording]:
        """The recordings of a call, oldest first."""
        return await asyncio.to_thread(self._repo.for_call, call_id)

    async def recording(self, recording_id: int) -> Recording:
        rec = await asyncio.to_thread(self._repo.get, recording_id)
        if rec is None:
            raise NotFoundError(f"recording {recording_id} does not exist")
        return rec

    async def recent(self, *, state: str | None = None, limit: int = 100) -> list[Recording]:
        return await asyncio.to_thread(lambda: self._repo.recent(state=state, limit=limit))

    async def retry(self, recording_id: int) -> Recording:
        """Start a failed recording over (fresh attempts, due now)."""
        rec = await asyncio.to_thread(lambda: self._repo.retry(recording_id, now=self._clock()))
        self._work_wakeup.set()
        return rec

    async def retry_failed(self) -> int:
        n = await asyncio.to_thread(lambda: self._repo.retry_failed(now=self._clock()))
        self._work_wakeup.set()
        return n

    async def open(self, recording_id: int) -> StoredAudio:
        """The stored MP3, to read in chunks (`async for chunk in audio`).  NotFoundError for an unknown
        id, ConflictError for a recording that is not stored (yet, or any more)."""
        rec = await self.recording(recording_id)
        if rec.state != "stored" or rec.storage_key is None:
            raise ConflictError(f"recording {recording_id} is {rec.state}, not stored")
        return await self._storage.open(rec.storage_key)

    async def status(self) -> dict[str, Any]:
        """For /health: rows per state, the queue, the workers, the last error."""
        try:
            states: dict[str, int] | None = await asyncio.to_thread(self._repo.counts)
            database = "ok"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            states, database = None, f"error: {exc}"
        return {
            "storage": self._storage.name,
            "database": database,
            "states": states,
            "queued_events": len(self._intents),
            "dropped_events": self.dropped,
            "rejected_events": self.rejected,
            "in_flight": len(self._in_flight),
            "workers": self._workers,
            "stored": self.stored,
            "failed_attempts": self.failures,
            "sources_left": self.sources_left,
            "last_error": self.last_error,
            "errors": dict(self.errors),
        }

    def _note_error(self, area: str, error: str) -> None:
        self.last_error = self.errors[area] = f"{self._clock().isoformat(timespec='seconds')} {error}"


def _call_id_of(msg: Message) -> str | None:
    # manager.conf lists one channelvar, HOTLINE_CALL_ID, so it is the first ChanVariable header
    cv = msg.get("ChanVariable")
    if cv is None:
        return None
    if cv.startswith(_CALL_ID_PREFIX):
        return cv[len(_CALL_ID_PREFIX) :] or None
    return msg.chan_variables.get("HOTLINE_CALL_ID") or None


def _list_recordings(folder: Path) -> list[str]:
    """Names in `folder` that look like recordings (blocking), at most _SCAN_MAX_FILES of them."""
    names: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if _FILE_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    names.append(entry.name)
                    if len(names) >= _SCAN_MAX_FILES:
                        break
    except FileNotFoundError:
        return []  # no recording made on that node yet
    return sorted(names)
