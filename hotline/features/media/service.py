"""Uploaded prompts and music on hold: convert, store, record, distribute to every node, serve to Asterisk.

Flow of an upload: validate the name and size -> convert with ffmpeg off the loop (convert.py) -> rename
the result into the store, content-addressed (`<store>/blobs/<sha256>.wav`) -> record the row (which
bumps config_version) -> sync every node's media folder (distribute.py).  Nothing is reloaded on
Asterisk: a prompt is played by absolute path, and music-on-hold classes come from the realtime family
`musiconhold` (`musiconhold_rows`), which res_musiconhold queries on every hold when the class is not in
musiconhold.conf and `cachertclasses` is off (its default), rescanning the class folder each time
(ast22 res/res_musiconhold.c local_ast_moh_start).

Invariants:
- the state answered to Asterisk (`musiconhold_rows`, `prompt_path_for_node`) is published only after
  the files it names were copied to the nodes, and files are removed only after the state that no
  longer names them was published;
- a music-on-hold class is served only while it has at least one file: an unknown class makes Asterisk
  fall back to the channel's class and then `default`, whereas a class with an empty folder means silence;
- syncs are serialised (one lock); conversions are bounded (a semaphore); all blocking work runs in
  `asyncio.to_thread`;
- other Hotline instances' changes arrive through config_version: call `notify_changed()` from a
  ConfigService listener and run `sync_loop()`; it also re-syncs every `sync_interval_s`, so a node
  added later, or a folder someone emptied, gets every file.
The bytes are in this instance's store only: several instances need `store_dir` on shared storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hotline.db.repositories.media import MediaFile, MediaRepository, MediaState, MohClass
from hotline.errors import ConfigError, ConflictError, NotFoundError
from hotline.features.media import distribute
from hotline.features.media.convert import ConvertedAudio, check_name, check_size, convert_upload, discard

log = logging.getLogger(__name__)

NodeDirs = Callable[[], Mapping[str, tuple[Path, str]]]
Listener = Callable[[MediaState], None]

# res_musiconhold copies `directory` into a 256-byte buffer (struct mohclass.dir) and silently cuts it.
MOH_DIRECTORY_MAX = 255


# ------------------------------------------------------------------------------- pure path functions


def _node_root(node_side_root: str) -> str:
    root = node_side_root.rstrip("/")
    if not node_side_root.startswith("/") or not root or any(not ch.isprintable() for ch in root):
        raise ConfigError(f"node media folder {node_side_root!r} must be an absolute path")
    return root


def prompt_path(node_side_root: str, name: str) -> str:
    """The Playback() argument for a prompt: absolute, without extension (ast22 main/file.c build_filename)."""
    return f"{_node_root(node_side_root)}/{distribute.PROMPTS}/{name}"


def moh_directory(node_side_root: str, moh_class: str) -> str:
    directory = f"{_node_root(node_side_root)}/{distribute.MOH}/{moh_class}"
    if len(directory.encode()) > MOH_DIRECTORY_MAX:
        raise ConfigError(f"music folder {directory!r} is longer than Asterisk's {MOH_DIRECTORY_MAX} bytes")
    return directory


def musiconhold_rows(state: MediaState, node_side_root: str) -> list[dict[str, str]]:
    """Realtime rows of the `musiconhold` family: one per class that has files, ordered by name.

    Columns as res_musiconhold's moh_parse_options reads them: `mode=files` (scan `directory`),
    `directory` absolute (a relative one is taken under astdatadir), `sort=random|alpha` (without `sort`
    the order is the directory's, i.e. undefined)."""
    with_files = {f.moh_class for f in state.files if f.kind == "moh"}
    return [
        {
            "name": c.name,
            "mode": "files",
            "directory": moh_directory(node_side_root, c.name),
            "sort": "random" if c.random else "alpha",
        }
        for c in sorted(state.classes, key=lambda c: c.name)
        if c.name in with_files
    ]


def _original_name(value: str) -> str:
    """The client's file name as shown to users: last path component, printable, at most 255 characters."""
    base = re.split(r"[/\\]", value)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:255]


# ----------------------------------------------------------------------------------------- the service


@dataclass(frozen=True)
class SyncReport:
    nodes: Mapping[str, distribute.NodeSyncResult] = field(default_factory=dict)
    blobs_removed: int = 0

    @property
    def ok(self) -> bool:
        return not any(r.errors for r in self.nodes.values())


class MediaService:
    def __init__(
        self,
        repo: MediaRepository,
        store_dir: Path,
        node_dirs: NodeDirs,
        *,
        ffmpeg: str = "ffmpeg",
        max_upload_bytes: int = 50 * 1024 * 1024,
        max_duration_s: float = 3600.0,
        convert_timeout_s: float = 120.0,
        max_concurrent_conversions: int = 2,
        sync_interval_s: float = 60.0,
        garbage_grace_s: float = 3600.0,
    ) -> None:
        self._repo = repo
        self._store = Path(store_dir)
        self._node_dirs = node_dirs
        self._ffmpeg = ffmpeg
        self.max_upload_bytes = max_upload_bytes
        self._max_duration = max_duration_s
        self._convert_timeout = convert_timeout_s
        self._convert_slots = asyncio.Semaphore(max_concurrent_conversions)
        self._sync_interval = sync_interval_s
        self._grace = garbage_grace_s
        self._sync_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._state: MediaState | None = None
        self._prompts: frozenset[str] = frozenset()  # indexes of the published state, for the hot paths
        self._classes: frozenset[str] = frozenset()
        self._rows: dict[str, list[dict[str, str]]] = {}  # node-side root -> realtime rows, per state
        self._listeners: list[Listener] = []
        self.last_report: SyncReport | None = None

    @property
    def blob_dir(self) -> Path:
        return self._store / "blobs"

    @property
    def _work_dir(self) -> Path:
        return self._store / ".work"

    def blob_path(self, sha256: str) -> Path:
        return self.blob_dir / f"{sha256}.wav"

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> SyncReport:
        """Load the state and bring every node up to date (call before serving Asterisk)."""
        return await self.sync_nodes()

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(state)` on the loop each time a new state is published (and now, if there is one)."""
        self._listeners.append(listener)
        if self._state is not None:
            listener(self._state)

    def notify_changed(self) -> None:
        """Configuration changed somewhere (a ConfigService listener): re-sync soon.  Never blocks."""
        self._changed.set()

    async def sync_loop(self) -> None:
        """Re-sync on `notify_changed()` and every `sync_interval_s`; a failed sync is logged and retried."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._sync_interval)
            self._changed.clear()
            try:
                await self.sync_nodes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database or disk trouble: keep serving the last state
                log.warning("media sync failed (%s); retrying in %g s", exc, self._sync_interval)

    # ------------------------------------------------------------------ reads (memory, for hot paths)
    @property
    def state(self) -> MediaState | None:
        return self._state

    def node_root(self, node: str) -> str:
        """The node's media folder as Asterisk sees it."""
        dirs = self._node_dirs()
        if node not in dirs:
            raise NotFoundError(f"node {node!r} has no media folder")
        return _node_root(dirs[node][1])

    def prompt_path_for_node(self, node: str, name: str) -> str:
        """What Playback() must be given on `node` to play prompt `name` (NotFoundError if there is none)."""
        if name not in self._prompts:
            raise NotFoundError(f"prompt {name!r} does not exist")
        return prompt_path(self.node_root(node), name)

    def moh_directory_for_node(self, node: str, moh_class: str) -> str:
        if moh_class not in self._classes:
            raise NotFoundError(f"music class {moh_class!r} does not exist")
        return moh_directory(self.node_root(node), moh_class)

    def musiconhold_rows(self, node_side_root: str) -> list[dict[str, str]]:
        """The realtime `musiconhold` rows for a node whose media folder Asterisk sees at `node_side_root`."""
        rows = self._rows.get(node_side_root)
        if rows is None:
            rows = [] if self._state is None else musiconhold_rows(self._state, node_side_root)
            self._rows[node_side_root] = rows
        return [dict(r) for r in rows]

    def musiconhold_rows_for_node(self, node: str) -> list[dict[str, str]]:
        return self.musiconhold_rows(self.node_root(node))

    # ------------------------------------------------------------------ reads (database)
    async def list_prompts(self) -> list[MediaFile]:
        return await asyncio.to_thread(self._repo.list_files, "prompt")

    async def list_moh_classes(self) -> list[MohClass]:
        return await asyncio.to_thread(self._repo.list_moh_classes)

    async def list_moh_files(self, moh_class: str | None = None) -> list[MediaFile]:
        return await asyncio.to_thread(self._repo.list_files, "moh", moh_class)

    # ------------------------------------------------------------------ writes
    async def add_prompt(self, name: str, data: bytes, original_name: str = "", *, replace: bool = False) -> MediaFile:
        """Convert and store an uploaded prompt (WAV or MP3) and copy it to every node."""
        check_name("name", name)
        check_size(data, self.max_upload_bytes)
        if not replace and await asyncio.to_thread(self._repo.get_file, "prompt", name) is not None:
            raise ConflictError(f"prompt {name!r} already exists")
        return await self._add("prompt", "", name, data, original_name, replace)

    async def add_moh_file(
        self, moh_class: str, name: str, data: bytes, original_name: str = "", *, replace: bool = False
    ) -> MediaFile:
        """Convert and store an uploaded music file in an existing class and copy it to every node."""
        check_name("name", name)
        check_size(data, self.max_upload_bytes)
        if await asyncio.to_thread(self._repo.get_moh_class, moh_class) is None:
            raise NotFoundError(f"music class {moh_class!r} does not exist")
        if not replace and await asyncio.to_thread(self._repo.get_file, "moh", name, moh_class) is not None:
            raise ConflictError(f"music file {name!r} of class {moh_class!r} already exists")
        return await self._add("moh", moh_class, name, data, original_name, replace)

    async def add_moh_class(self, name: str, random: bool = False) -> MohClass:
        cls = await asyncio.to_thread(self._repo.add_moh_class, name, random=random)
        await self._after_write()
        return cls

    async def set_moh_class_random(self, name: str, random: bool) -> MohClass:
        cls = await asyncio.to_thread(self._repo.set_moh_class_random, name, random)
        await self._after_write()
        return cls

    async def delete_prompt(self, name: str) -> None:
        await asyncio.to_thread(self._repo.delete_file, "prompt", name)
        await self._after_write()

    async def delete_moh_file(self, moh_class: str, name: str) -> None:
        await asyncio.to_thread(self._repo.delete_file, "moh", name, moh_class)
        await self._after_write()

    async def delete_moh_class(self, name: str) -> int:
        """Delete a class and its files (ConflictError while a queue uses it); return how many files it had."""
        count = await asyncio.to_thread(self._repo.delete_moh_class, name)
        await self._after_write()
        return count

    async def _add(
        self, kind: str, moh_class: str, name: str, data: bytes, original_name: str, replace: bool
    ) -> MediaFile:
        async with self._convert_slots:
            converted = await asyncio.to_thread(
                convert_upload,
                data,
                work_dir=self._work_dir,
                ffmpeg=self._ffmpeg,
                max_bytes=self.max_upload_bytes,
                max_duration_s=self._max_duration,
                timeout_s=self._convert_timeout,
            )
        try:
            await asyncio.to_thread(self._keep_blob, converted)
        finally:
            discard(converted.path)  # gone already when it was renamed into the store
        record = await asyncio.to_thread(
            self._repo.add_file,
            kind,
            name,
            moh_class=moh_class,
            original_name=_original_name(original_name),
            sha256=converted.sha256,
            duration_s=converted.duration_s,
            size=converted.size,
            replace=replace,
        )
        # a refused row leaves an unreferenced blob: the garbage collection of a later sync removes it
        log.info("media: %s %s%s stored (%.1f s, sha256 %s)", kind, f"{moh_class}/" if moh_class else "",
                 name, converted.duration_s, converted.sha256[:12])  # fmt: skip
        await self._after_write()
        return record

    def _keep_blob(self, converted: ConvertedAudio) -> None:
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        target = self.blob_path(converted.sha256)
        if target.exists():
            os.utime(target)  # same content uploaded again: restart its grace period, keep one copy
        else:
            os.replace(converted.path, target)

    async def _after_write(self) -> None:
        # The write is committed; a failed sync must not turn it into an error for the caller.  The sync
        # loop retries (the bump of config_version also reaches it through notify_changed).
        try:
            await self.sync_nodes()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("media sync after a write failed (%s); the sync loop will retry", exc)
            self._changed.set()

    # ------------------------------------------------------------------ distribution
    async def sync_nodes(self) -> SyncReport:
        """Copy every file to every node folder, publish the state, then remove what is no longer wanted."""
        async with self._sync_lock:
            state = await asyncio.to_thread(self._repo.load_state)
            nodes = {name: Path(host) for name, (host, _node_side) in self._node_dirs().items()}
            wanted = {distribute.relative_path(f): f.sha256 for f in state.files}
            results = await asyncio.to_thread(self._copy_all, nodes, wanted)
            self._publish(state)
            await asyncio.to_thread(self._prune_all, nodes, wanted, results)
            keep = {self.blob_path(f.sha256).name for f in state.files}
            blobs_removed = await asyncio.to_thread(self._collect, keep)
            report = SyncReport(results, blobs_removed)
            for node, r in results.items():
                if r.errors:
                    log.warning("media sync of node %s: %d error(s): %s", node, len(r.errors), "; ".join(r.errors[:5]))
                elif r.copied or r.removed:
                    log.info("media sync of node %s: %d copied, %d removed", node, r.copied, r.removed)
            self.last_report = report
            return report

    def _copy_all(self, nodes: Mapping[str, Path], wanted: Mapping[str, str]) -> dict[str, distribute.NodeSyncResult]:
        results: dict[str, distribute.NodeSyncResult] = {}
        for node, root in sorted(nodes.items()):
            try:
                results[node] = distribute.copy_wanted(root, wanted, self.blob_path)
            except OSError as exc:  # the folder itself cannot be created or read: the other nodes still sync
                results[node] = distribute.NodeSyncResult(errors=[f"{root}: {exc.strerror or exc}"])
        return results

    def _prune_all(
        self, nodes: Mapping[str, Path], wanted: Mapping[str, str], results: dict[str, distribute.NodeSyncResult]
    ) -> None:
        for node, root in sorted(nodes.items()):
            pruned = distribute.prune(root, wanted, temp_grace_s=self._grace)
            results[node].removed += pruned.removed
            results[node].errors.extend(pruned.errors)

    def _collect(self, keep: set[str]) -> int:
        removed = distribute.collect_garbage(self.blob_dir, keep, grace_s=self._grace)
        distribute.collect_garbage(self._work_dir, set(), grace_s=self._grace)  # leftovers of a crash
        return removed

    def _publish(self, state: MediaState) -> None:
        self._state = state
        self._prompts = frozenset(f.name for f in state.files if f.kind == "prompt")
        self._classes = frozenset(c.name for c in state.classes)
        self._rows = {}
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:
                log.exception("media listener %r failed", listener)
