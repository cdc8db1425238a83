"""One write transaction shared by the catalogue and the repository methods it calls.

The repositories (hotline/db/repositories) run each method in its own `write_transaction(engine)`.  A
catalogue write may need several of them (create an agent, then set its recording policy) and a bulk
action many, all or nothing.  `WriteScope` stands in for the engine: the repositories built on it get the
scope's one connection, already inside its transaction, and their own `begin()` joins that transaction.
So a repository method keeps its validation and its checks (phone digests, queue overflow, destinations,
hours parsing...) and the catalogue decides when everything commits.

Invariants:
- the transaction opens lazily, on the first statement: a repository validates (and hashes) before it
  asks for a connection, so that work stays outside the transaction, as it does when called directly;
- the first statement of the transaction is the `config_version` bump (the repositories' rule): its row
  lock serialises configuration writers, so the look-then-write checks here are race-free;
- any exception rolls the whole scope back; nothing commits until the scope ends without one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from types import TracebackType
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from hotline.db import tables as t
from hotline.db.engine import write_transaction
from hotline.db.repositories import ConfigRepository, _bump_version
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.db.repositories.crm import CustomerRepository
from hotline.db.repositories.media import MediaRepository
from hotline.db.repositories.webhooks import WebhookRepository
from hotline.errors import ConflictError, ValidationError


class _Joined:
    """The scope's connection as a repository sees it: `begin()` joins the open transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def execution_options(self, **_options: Any) -> _Joined:
        return self  # the scope's transaction is already a write transaction

    def begin(self) -> AbstractContextManager[None]:
        return nullcontext()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class WriteScope:
    """`with WriteScope(engine, realm=...) as scope:` one all-or-nothing configuration write."""

    def __init__(self, engine: Engine, *, realm: str) -> None:
        self._engine = engine
        self.realm = realm  # SIP realm of phone digests (settings.sip_realm)
        self._stack = ExitStack()
        self._conn: Connection | None = None
        as_engine = cast(Engine, self)  # what the repositories call on it: connect()
        self.config = ConfigRepository(as_engine)
        self.callcenter = CallCenterRepository(as_engine)
        self.media = MediaRepository(as_engine)
        self.customers = CustomerRepository(as_engine)
        self.webhooks = WebhookRepository(as_engine)

    @property
    def conn(self) -> Connection:
        """The transaction's connection, opened (and config_version bumped) on first use."""
        if self._conn is None:
            self._conn = self._stack.enter_context(write_transaction(self._engine))
            _bump_version(self._conn)
        return self._conn

    @contextmanager
    def connect(self) -> Iterator[_Joined]:
        """Engine.connect() for the repositories (their write_/read_/snapshot_transaction call it)."""
        yield _Joined(self.conn)

    def __enter__(self) -> WriteScope:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        # write_transaction commits when the stack closes cleanly and rolls back when given the exception
        return bool(self._stack.__exit__(exc_type, exc, tb))

    # ---- helpers for the resources' write operations
    def execute(self, stmt: sa.Executable, conflict: str = "") -> int:
        """Run a write; a unique-key violation becomes ConflictError(conflict). Returns the row count."""
        try:
            return int(self.conn.execute(stmt).rowcount)
        except IntegrityError as exc:
            raise ConflictError(conflict or f"refused by the database: {exc.orig}") from exc

    def id_of(self, field: str, column: sa.Column[Any], value: object, what: str) -> int:
        """The id of the row whose `column` is `value`; ValidationError(field) when there is none."""
        found = self.conn.execute(sa.select(column.table.c.id).where(column == value)).scalar()
        if found is None:
            raise ValidationError(field, f"there is no {what} {value!r}")
        return int(found)

    def exists(self, where: sa.ColumnElement[bool], table: sa.Table) -> bool:
        return self.conn.execute(sa.select(table.c.id).where(where).limit(1)).first() is not None


# ------------------------------------------------------------------------ who uses a destination

_LIMIT = 10


def _names(rows: list[str]) -> str:
    shown = ", ".join(rows[:_LIMIT])
    return shown + (f" and {len(rows) - _LIMIT} more" if len(rows) > _LIMIT else "")


def destination_users(conn: Connection, dest_type: str, value: str, *, skip_menu: str | None = None) -> list[str]:
    """Everything that sends calls to (dest_type, value): DID routes, IVR options and failures, time
    conditions, queue overflows, service numbers.  `skip_menu`: options of this menu do not count (they
    go with it)."""
    used: list[str] = []

    def add(label: str, stmt: sa.Select[Any]) -> None:
        found = [str(x) for x in conn.execute(stmt).scalars()]
        if found:
            used.append(f"{label} {_names(found)}")

    r, o, m, c, q, s = t.did_routes, t.ivr_options, t.ivr_menus, t.time_conditions, t.queues, t.service_numbers
    add("DID route(s)", sa.select(r.c.did).where(r.c.dest_type == dest_type, r.c.dest_value == value).order_by(r.c.did))
    options = (
        sa.select(m.c.name + ":" + o.c.digit)
        .select_from(o.join(m, m.c.id == o.c.menu_id))
        .where(o.c.dest_type == dest_type, o.c.dest_value == value)
    )
    if skip_menu is not None:
        options = options.where(m.c.name != skip_menu)
    add("IVR option(s)", options.order_by(m.c.name, o.c.digit))
    fail = sa.select(m.c.name).where(m.c.fail_type == dest_type, m.c.fail_value == value)
    if skip_menu is not None:
        fail = fail.where(m.c.name != skip_menu)
    add("IVR menu failure(s)", fail.order_by(m.c.name))
    add(
        "time condition(s)",
        sa.select(c.c.name)
        .where(
            sa.or_(
                sa.and_(c.c.open_type == dest_type, c.c.open_value == value),
                sa.and_(c.c.closed_type == dest_type, c.c.closed_value == value),
            )
        )
        .order_by(c.c.name),
    )
    add(
        "queue overflow(s)",
        sa.select(q.c.name).where(q.c.overflow_type == dest_type, q.c.overflow_value == value).order_by(q.c.name),
    )
    add(
        "service number(s)",
        sa.select(s.c.number).where(s.c.dest_type == dest_type, s.c.dest_value == value).order_by(s.c.number),
    )
    return used


def refuse_if_destination(scope: WriteScope, what: str, dest_type: str, value: str, **kw: Any) -> None:
    used = destination_users(scope.conn, dest_type, value, **kw)
    if used:
        raise ConflictError(f"{what} {value!r} is still a destination of {'; '.join(used)}")


def refuse_if_used(scope: WriteScope, what: str, value: object, label: str, stmt: sa.Select[Any]) -> None:
    found = [str(x) for x in scope.conn.execute(stmt).scalars()]
    if found:
        raise ConflictError(f"{what} {value!r} is still used by {label} {_names(found)}")
