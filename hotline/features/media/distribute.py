"""Copy converted media into every node's media folder, and remove what was deleted.

A node's media folder (host side) is owned by Hotline:

    <media>/prompts/<name>.wav            Playback(<node-side media>/prompts/<name>)
    <media>/moh/<class>/<name>.wav        musiconhold realtime row: directory=<node-side media>/moh/<class>
    <media>/.hotline-media.json           manifest: relative path -> [sha256, size, mtime_ns]

Invariants:
- a file appears under its final name only complete: it is copied to a dot-named temporary file in the
  same folder and renamed over the target (atomic on POSIX).  res_musiconhold skips dot files when it
  scans a class folder (ast22 res/res_musiconhold.c on_moh_file), so a half-copied file is never played;
- idempotent by sha256: a file whose manifest entry has the wanted sha256 and whose size and mtime still
  match is left alone; without a usable entry the file on disk is hashed, and copied only if it differs;
- `copy_wanted` never deletes; `prune` removes everything under prompts/ and moh/ that is not wanted
  (files, stray folders, temporary files older than the grace period).  The service runs the first on
  every node, publishes the new state, then runs the second: a new call never gets a path that is not
  there yet, nor one that is already gone;
- every function here blocks (file I/O): run it through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotline.db.repositories.media import MediaFile

PROMPTS = "prompts"
MOH = "moh"
MANIFEST = ".hotline-media.json"
_TMP_SUFFIX = ".tmp"


def relative_path(f: MediaFile) -> str:
    """Where the file lives inside a media folder (same layout on the host and on the node)."""
    if f.kind == "prompt":
        return f"{PROMPTS}/{f.name}.wav"
    return f"{MOH}/{f.moh_class}/{f.name}.wav"


@dataclass
class NodeSyncResult:
    """What one sync did to one node's media folder."""

    copied: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ manifest


def _read_manifest(root: Path) -> dict[str, tuple[str, int, int]]:
    try:
        raw: Any = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        files = raw["files"]
        return {
            str(rel): (str(v[0]), int(v[1]), int(v[2]))
            for rel, v in files.items()
            if isinstance(v, list) and len(v) == 3
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # missing or damaged: every file is checked by its content instead


def _write_manifest(root: Path, entries: Mapping[str, tuple[str, int, int]]) -> None:
    text = json.dumps({"version": 1, "files": {k: list(v) for k, v in sorted(entries.items())}}, indent=0)
    tmp = root / f"{MANIFEST}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, root / MANIFEST)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ copying


def copy_wanted(root: Path, wanted: Mapping[str, str], blob_for: Callable[[str], Path]) -> NodeSyncResult:
    """Make every `wanted` file (relative path -> sha256) present under `root`; never deletes anything.

    `blob_for(sha256)` is the stored converted file.  A file that cannot be copied (its blob is missing,
    the disk is full...) is reported in `errors` and the others are still copied."""
    result = NodeSyncResult()
    root.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(root)
    changed = False
    for rel, sha in sorted(wanted.items()):
        target = root / rel
        try:
            st = target.stat()
        except FileNotFoundError:
            st = None
        except OSError as exc:
            result.errors.append(f"{rel}: {exc.strerror or exc}")
            continue
        entry = manifest.get(rel)
        if st is not None and entry == (sha, st.st_size, st.st_mtime_ns):
            continue
        try:
            if st is None or _hash_file(target) != sha:
                source = blob_for(sha)
                if not source.is_file():
                    # another Hotline instance converted it and this one's store does not have it
                    result.errors.append(f"{rel}: sha256 {sha} is not in this media store")
                    continue
                _copy_atomically(source, target)
                result.copied += 1
            st = target.stat()
        except OSError as exc:
            result.errors.append(f"{rel}: {exc.strerror or exc}")
            continue
        manifest[rel] = (sha, st.st_size, st.st_mtime_ns)
        changed = True
    if changed:
        _write_manifest(root, manifest)
    return result


def _copy_atomically(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o644)  # Asterisk may run as another user than Hotline
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# ------------------------------------------------------------------------------------------ pruning


def prune(root: Path, wanted: Mapping[str, str], *, temp_grace_s: float, now: float | None = None) -> NodeSyncResult:
    """Remove from `root`'s prompts/ and moh/ everything not in `wanted` (temporary files younger than
    `temp_grace_s` are kept: another Hotline instance may be copying them)."""
    result = NodeSyncResult()
    if not root.is_dir():
        return result
    now = time.time() if now is None else now
    wanted_classes = {rel.split("/")[1] for rel in wanted if rel.startswith(MOH + "/")}
    _prune_folder(root / PROMPTS, PROMPTS, wanted, temp_grace_s, now, result)
    moh = root / MOH
    if moh.is_dir():
        for entry in _entries(moh, result):
            rel = f"{MOH}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                _prune_folder(Path(entry.path), rel, wanted, temp_grace_s, now, result)
                if entry.name not in wanted_classes:
                    with contextlib.suppress(OSError):  # not empty: a young temporary file is still there
                        os.rmdir(entry.path)
            else:
                _remove(Path(entry.path), rel, result)
    manifest = _read_manifest(root)
    kept = {rel: v for rel, v in manifest.items() if rel in wanted}
    if kept != manifest:
        try:
            _write_manifest(root, kept)
        except OSError as exc:
            result.errors.append(f"{MANIFEST}: {exc.strerror or exc}")
    return result


def _entries(folder: Path, result: NodeSyncResult) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        result.errors.append(f"{folder.name}: {exc.strerror or exc}")
        return []


def _prune_folder(
    folder: Path, prefix: str, wanted: Mapping[str, str], grace: float, now: float, result: NodeSyncResult
) -> None:
    for entry in _entries(folder, result):
        rel = f"{prefix}/{entry.name}"
        if rel in wanted:
            continue
        if entry.name.startswith(".") and entry.name.endswith(_TMP_SUFFIX):
            with contextlib.suppress(OSError):
                if now - entry.stat(follow_symlinks=False).st_mtime < grace:
                    continue
        _remove(Path(entry.path), rel, result)


def _remove(path: Path, rel: str, result: NodeSyncResult) -> None:
    # A stray folder goes too: Playback() of <dir>/<name> first tries <dir>/<language>/<name>
    # (ast22 main/file.c fileexists_test), so a leftover prompts/en/ folder could shadow a prompt.
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        result.removed += 1
    except FileNotFoundError:
        pass
    except OSError as exc:
        result.errors.append(f"{rel}: {exc.strerror or exc}")


# ------------------------------------------------------------------------------------------ the store


def collect_garbage(folder: Path, keep: set[str], *, grace_s: float, now: float | None = None) -> int:
    """Delete files in `folder` whose name is not in `keep` and that are older than `grace_s`; return how many.

    The grace period covers an upload in flight: its blob is written before its row is committed."""
    now = time.time() if now is None else now
    removed = 0
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name in keep:
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime < grace_s:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
    return removed
