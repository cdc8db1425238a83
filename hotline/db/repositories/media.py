"""Uploaded media: prompts and music-on-hold files (`media_files`) and music-on-hold classes (`moh_classes`).

The rows describe converted files (8 kHz mono WAV, see hotline/features/media/convert.py) by name and
sha256; the bytes live in the media service's store, content-addressed by that sha256.

Invariants (besides those of the package, hotline/db/repositories/__init__.py):
- every write bumps `config_version` first, in its transaction: other Hotline instances see the change
  and re-sync their nodes, and the bump's row lock serialises the look-then-write checks below;
- a prompt has `moh_class = ''`; a music-on-hold file names an existing class (exactly as stored);
- class names are unique ignoring case, and `default` is refused: res_musiconhold compares class names
  with strcasecmp and looks in musiconhold.conf (which defines `default`) before asking realtime
  (ast22 res/res_musiconhold.c moh_class_cmp, local_ast_moh_start);
- a class a queue uses as its `musicclass` cannot be deleted; deleting a class deletes its files' rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from hotline.db import tables as t
from hotline.db.engine import read_transaction, snapshot_transaction, write_transaction
from hotline.db.repositories import (
    _bump_version,
    _choice,
    _execute_insert,
    _flag,
    _from_db,
    _int,
    _mapper,
    _text,
    _token,
)
from hotline.errors import ConflictError, NotFoundError, ValidationError

MEDIA_KINDS = ("prompt", "moh")
# Same rule as hotline.features.media.convert.NAME_PATTERN (kept here so the repository needs no feature code).
_NAME = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}"
_NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
RESERVED_CLASSES = ("default",)  # defined in every node's musiconhold.conf (config_render)


@dataclass(frozen=True)
class MohClass:
    id: int
    name: str
    random: bool
    created_at: datetime


@dataclass(frozen=True)
class MediaFile:
    id: int
    name: str
    kind: str  # 'prompt' | 'moh'
    moh_class: str  # '' for prompts
    original_name: str
    sha256: str
    duration_s: float
    size: int
    created_at: datetime


@dataclass(frozen=True)
class MediaState:
    """Every class and file, read in one snapshot: what the nodes must hold."""

    classes: tuple[MohClass, ...]
    files: tuple[MediaFile, ...]


_moh_class = _mapper(MohClass, flags=("random",), convert={"created_at": _from_db})
_media_file = _mapper(MediaFile, convert={"created_at": _from_db, "duration_s": float, "size": int})

_FILE_ORDER = (t.media_files.c.kind, t.media_files.c.moh_class, t.media_files.c.name)


def _name(field: str, value: object) -> str:
    return _token(field, value, _NAME, _NAME_RULE)


def _class_name(value: object) -> str:
    name = _name("name", value)
    if name.lower() in RESERVED_CLASSES:
        raise ValidationError("name", f"{name!r} is the built-in class of musiconhold.conf; choose another name")
    return name


def _where_file(kind: str, name: str, moh_class: str) -> sa.ColumnElement[bool]:
    f = t.media_files.c
    return sa.and_(f.kind == kind, f.moh_class == moh_class, f.name == name)


def _check_owner(kind: object, moh_class: object) -> tuple[str, str]:
    _choice("kind", kind, MEDIA_KINDS)
    assert isinstance(kind, str)
    if kind == "prompt":
        if moh_class != "":
            raise ValidationError("moh_class", "must be empty for a prompt")
        return kind, ""
    return kind, _name("moh_class", moh_class)


def _require_class(conn: Connection, name: str) -> None:
    if conn.execute(sa.select(t.moh_classes.c.id).where(t.moh_classes.c.name == name)).first() is None:
        raise NotFoundError(f"music class {name!r} does not exist")


def _get_file(conn: Connection, kind: str, name: str, moh_class: str) -> Row[Any] | None:
    return conn.execute(sa.select(t.media_files).where(_where_file(kind, name, moh_class))).first()


class MediaRepository:
    """Prompts, music-on-hold classes and their files."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- reads
    def load_state(self) -> MediaState:
        with snapshot_transaction(self._engine) as conn:
            classes = conn.execute(sa.select(t.moh_classes).order_by(t.moh_classes.c.name)).all()
            files = conn.execute(sa.select(t.media_files).order_by(*_FILE_ORDER)).all()
        return MediaState(tuple(map(_moh_class, classes)), tuple(map(_media_file, files)))

    def list_moh_classes(self) -> list[MohClass]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(sa.select(t.moh_classes).order_by(t.moh_classes.c.name)).all()
        return [_moh_class(r) for r in rows]

    def get_moh_class(self, name: str) -> MohClass | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(t.moh_classes).where(t.moh_classes.c.name == name)).first()
        return None if row is None else _moh_class(row)

    def list_files(self, kind: str | None = None, moh_class: str | None = None) -> list[MediaFile]:
        """Files ordered by kind, class and name; `kind`/`moh_class` filter when given."""
        stmt = sa.select(t.media_files).order_by(*_FILE_ORDER)
        if kind is not None:
            _choice("kind", kind, MEDIA_KINDS)
            stmt = stmt.where(t.media_files.c.kind == kind)
        if moh_class is not None:
            stmt = stmt.where(t.media_files.c.moh_class == moh_class)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(stmt).all()
        return [_media_file(r) for r in rows]

    def get_file(self, kind: str, name: str, moh_class: str = "") -> MediaFile | None:
        with read_transaction(self._engine) as conn:
            row = _get_file(conn, kind, name, moh_class)
        return None if row is None else _media_file(row)

    # ---- music-on-hold classes
    def add_moh_class(self, name: str, *, random: bool = False) -> MohClass:
        _class_name(name)
        _flag("random", random)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            same = conn.execute(
                sa.select(t.moh_classes.c.name).where(sa.func.lower(t.moh_classes.c.name) == name.lower())
            ).scalar()
            if same is not None:
                # Asterisk compares class names ignoring case: 'Sales' and 'sales' would be one class there
                raise ConflictError(f"music class {same!r} already exists")
            _execute_insert(
                conn,
                sa.insert(t.moh_classes).values(name=name, random=random, created_at=t.utcnow_naive()),
                f"music class {name!r} already exists",
            )
            return _moh_class(conn.execute(sa.select(t.moh_classes).where(t.moh_classes.c.name == name)).one())

    def set_moh_class_random(self, name: str, random: bool) -> MohClass:
        _flag("random", random)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            result = conn.execute(sa.update(t.moh_classes).where(t.moh_classes.c.name == name).values(random=random))
            if result.rowcount == 0:
                raise NotFoundError(f"music class {name!r} does not exist")
            return _moh_class(conn.execute(sa.select(t.moh_classes).where(t.moh_classes.c.name == name)).one())

    def delete_moh_class(self, name: str) -> int:
        """Delete the class and its files' rows; return how many files it had.
        ConflictError while a queue uses it (compared ignoring case, as Asterisk does)."""
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _require_class(conn, name)
            users = (
                conn.execute(
                    sa.select(t.queues.c.name)
                    .where(sa.func.lower(t.queues.c.musicclass) == name.lower())
                    .order_by(t.queues.c.name)
                )
                .scalars()
                .all()
            )
            if users:
                raise ConflictError(f"music class {name!r} is used by queue(s) {', '.join(users)}")
            files = conn.execute(
                sa.delete(t.media_files).where(t.media_files.c.kind == "moh", t.media_files.c.moh_class == name)
            ).rowcount
            conn.execute(sa.delete(t.moh_classes).where(t.moh_classes.c.name == name))
            return int(files)

    # ---- files
    def add_file(
        self,
        kind: str,
        name: str,
        *,
        moh_class: str = "",
        original_name: str = "",
        sha256: str,
        duration_s: float,
        size: int,
        replace: bool = False,
    ) -> MediaFile:
        """Record a converted file.  An existing file of that kind, class and name is a ConflictError
        unless `replace`, which then takes the new content; a music-on-hold class must exist."""
        kind, moh_class = _check_owner(kind, moh_class)
        _name("name", name)
        _text("original_name", original_name, 255)
        _token("sha256", sha256, r"[0-9a-f]{64}", "64 lowercase hex digits")
        if isinstance(duration_s, bool) or not isinstance(duration_s, int | float) or not math.isfinite(duration_s):
            raise ValidationError("duration_s", f"must be a finite number (got {duration_s!r})")
        if duration_s <= 0:
            raise ValidationError("duration_s", f"must be more than 0 (got {duration_s})")
        _int("size", size, minimum=1)
        _flag("replace", replace)
        values = {
            "original_name": original_name,
            "sha256": sha256,
            "duration_s": float(duration_s),
            "size": size,
            "created_at": t.utcnow_naive(),
        }
        what = f"prompt {name!r}" if kind == "prompt" else f"music file {name!r} of class {moh_class!r}"
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            if kind == "moh":
                _require_class(conn, moh_class)
            existing = _get_file(conn, kind, name, moh_class)
            if existing is not None:
                if not replace:
                    raise ConflictError(f"{what} already exists")
                conn.execute(sa.update(t.media_files).where(t.media_files.c.id == existing.id).values(**values))
            else:
                _execute_insert(
                    conn,
                    sa.insert(t.media_files).values(kind=kind, name=name, moh_class=moh_class, **values),
                    f"{what} already exists",
                )
            row = _get_file(conn, kind, name, moh_class)
            assert row is not None
            return _media_file(row)

    def delete_file(self, kind: str, name: str, moh_class: str = "") -> None:
        kind, moh_class = _check_owner(kind, moh_class)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            result = conn.execute(sa.delete(t.media_files).where(_where_file(kind, name, moh_class)))
            if result.rowcount == 0:
                what = f"prompt {name!r}" if kind == "prompt" else f"music file {name!r} of class {moh_class!r}"
                raise NotFoundError(f"{what} does not exist")
