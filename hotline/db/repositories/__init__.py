"""Synchronous repositories over Hotline's tables: configuration, PJSIP contacts, the call journal.

This package's root holds the core repositories and the shared validators (`_text`, `_int`, ...);
each feature with its own tables has its repository in a submodule (agents.py, recordings.py,
webhooks.py, ...), which imports the validators from here.

Responsibility: validate what callers write, run each method as one short transaction, turn rows into
the frozen domain values of `hotline.domain`, and translate database errors into Hotline's
(`IntegrityError` -> `ConflictError`, `raise ... from`).  The service layer calls these methods through
`asyncio.to_thread`; nothing here touches the event loop.

Invariants:
- every configuration write increments `config_version` in its own transaction, and does so first:
  the row lock it takes serialises configuration writers on PostgreSQL and MariaDB (SQLite write
  transactions are serialised by BEGIN IMMEDIATE), so look-then-write sequences below are race-free;
- a `ConfigSnapshot` is read in one snapshot transaction together with the version it belongs to;
- invalid values raise `ValidationError(field, ...)` before anything is written (most before the
  transaction opens; route destinations inside it, against the rows they name); missing objects
  raise `NotFoundError`, duplicates and objects still in use `ConflictError`;
- datetimes are aware UTC here and naive UTC in the database (`_to_db` / `_from_db`);
- journal text that comes from the network (caller names, channel names...) is clipped to its column
  length rather than failing a whole batch: a 300-character caller name must not lose other calls.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.compiler import Compiled

from hotline.db import tables as t
from hotline.db.engine import read_transaction, snapshot_transaction, write_transaction
from hotline.domain.calls import CallRecord, JournalEvent
from hotline.domain.config import (
    DEST_TYPES,
    QUEUE_STRATEGIES,
    Agent,
    AgentGroup,
    AgentQueue,
    CallTypeRule,
    ConfigSnapshot,
    DidRoute,
    Holiday,
    IvrMenu,
    IvrOption,
    Node,
    PauseReason,
    Phone,
    Queue,
    QueueMember,
    ServiceNumber,
    TimeCondition,
)
from hotline.errors import (
    ConfigError,
    ConflictError,
    DatabaseUnavailableError,
    NotFoundError,
    ValidationError,
)
from hotline.passwords import hash_secret, sip_digests, validate_sip_password

_INT_MAX = 2**31 - 1


class _NothingMatched(Exception):
    """Internal: roll a write transaction back because it changed nothing."""


# ---------------------------------------------------------------------------------------- helpers


def _to_db(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} given where an aware UTC one is required")
    return value.astimezone(UTC).replace(tzinfo=None)


def _from_db(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _token(field: str, value: object, pattern: str, what: str) -> str:
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
        raise ValidationError(field, f"must be {what} (got {value!r})")
    return value


def _text(field: str, value: object, max_len: int, *, required: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string (got {type(value).__name__})")
    if len(value) > max_len:
        raise ValidationError(field, f"must be at most {max_len} characters long")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError(field, "must not contain control characters")
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    return value


def _int(field: str, value: object, *, minimum: int = 0, maximum: int = _INT_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer (got {value!r})")
    if not minimum <= value <= maximum:
        raise ValidationError(field, f"must be between {minimum} and {maximum} (got {value})")
    return value


def _optional_int(field: str, value: object, *, minimum: int = 0, maximum: int = _INT_MAX) -> int | None:
    return None if value is None else _int(field, value, minimum=minimum, maximum=maximum)


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, f"must be true or false (got {value!r})")
    return value


def _choice(field: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValidationError(field, f"must be one of {', '.join(choices)} (got {value!r})")
    assert isinstance(value, str)
    return value


# Names Asterisk uses as identifiers (endpoint ids, contexts, queue names): no spaces, commas, quotes.
_ID = r"[A-Za-z0-9._-]"
_EMPTY_RULE_WORDS = ("paused", "penalty", "inuse", "ringing", "unavailable", "invalid", "unknown", "wrapup")


def _empty_rule(field: str, value: object) -> str:
    """app_queue's joinempty/leavewhenempty: yes/no/strict/loose or a comma list of conditions."""
    if value in ("yes", "no", "strict", "loose"):
        assert isinstance(value, str)
        return value
    words = value.split(",") if isinstance(value, str) and value else []
    if not words or any(w not in _EMPTY_RULE_WORDS for w in words):
        raise ValidationError(
            field, f"must be yes, no, strict, loose or a comma list of {', '.join(_EMPTY_RULE_WORDS)}"
        )
    assert isinstance(value, str)
    return _text(field, value, 128)


_QUEUE_OPTIONS: dict[str, Callable[[str, object], object]] = {
    "strategy": lambda f, v: _choice(f, v, QUEUE_STRATEGIES),
    "timeout": _int,
    "retry": _int,
    "wrapuptime": _int,
    "maxlen": _int,
    "servicelevel": _int,
    "musicclass": lambda f, v: _token(f, v, _ID + "{1,128}", "a music class name"),
    "joinempty": _empty_rule,
    "leavewhenempty": _empty_rule,
    "ringinuse": _flag,
    "weight": _int,
    "max_wait": lambda f, v: _optional_int(f, v, minimum=1),
    "announce_frequency": _int,
    "announce_holdtime": lambda f, v: _choice(f, v, ("yes", "no", "once")),
    "announce_position": lambda f, v: _choice(f, v, ("yes", "no", "more", "limit")),
    "announce_position_limit": _int,
    "periodic_announce": lambda f, v: _sound(f, v),
    "periodic_announce_frequency": _int,
    "priority": lambda f, v: _int(f, v, maximum=1000),
    "overflow_type": lambda f, v: _choice(f, v, ("", *DEST_TYPES)),
    "overflow_value": lambda f, v: _text(f, v, 255),
    "recording": lambda f, v: _choice(f, v, ("always", "never")),
    # wallboard alarms (0 = off): waiting callers and longest wait in seconds
    "alarm_waiting_amber": lambda f, v: _int(f, v, maximum=10_000),
    "alarm_waiting_red": lambda f, v: _int(f, v, maximum=10_000),
    "alarm_wait_amber_s": lambda f, v: _int(f, v, maximum=86_400),
    "alarm_wait_red_s": lambda f, v: _int(f, v, maximum=86_400),
}


def _sound(field: str, value: object) -> str:
    """A sound Asterisk plays: a core sound name or an uploaded prompt name (letters, digits, / . _ -)."""
    if value == "":
        return ""
    return _token(field, value, r"[A-Za-z0-9_][A-Za-z0-9/._-]{0,127}", "a sound or prompt name")


def _queue_options(options: Mapping[str, object]) -> dict[str, object]:
    checked: dict[str, object] = {}
    for key, value in options.items():
        check = _QUEUE_OPTIONS.get(key)
        if check is None:
            raise ValidationError(key, f"is not a queue option (known: {', '.join(_QUEUE_OPTIONS)})")
        checked[key] = check(key, value)
    return checked


def _phone_name(value: object) -> str:
    return _token("name", value, _ID + "{1,64}", "1 to 64 letters, digits, '.', '_' or '-'")


def _realm(value: object) -> str:
    return _token("realm", value, _ID + "{1,64}", "1 to 64 letters, digits, '.', '_' or '-'")


def _execute_insert(conn: Connection, stmt: sa.Executable, conflict: str) -> None:
    try:
        conn.execute(stmt)
    except IntegrityError as exc:
        raise ConflictError(conflict) from exc


def _bump_version(conn: Connection) -> None:
    result = conn.execute(
        sa.update(t.config_version)
        .where(t.config_version.c.id == t.CONFIG_VERSION_ID)
        .values(version=t.config_version.c.version + 1)
    )
    if result.rowcount == 0:  # the migration seeds the row; tolerate a database made without it
        conn.execute(sa.insert(t.config_version).values(id=t.CONFIG_VERSION_ID, version=1))


def _id_of(conn: Connection, column: sa.Column[Any], value: str, what: str) -> int:
    table = column.table
    found = conn.execute(sa.select(table.c.id).where(column == value)).scalar()
    if found is None:
        raise NotFoundError(f"{what} {value!r} does not exist")
    return int(found)


def _upsert(conn: Connection, table: sa.Table, key: str, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT/ON DUPLICATE KEY UPDATE every column but `key`: atomic on all three."""

    def build(dialect: str) -> sa.Executable:
        others = [c.name for c in table.c if c.name != key]
        if dialect == "postgresql":
            pg = postgresql.insert(table)
            return pg.on_conflict_do_update(index_elements=[key], set_={c: pg.excluded[c] for c in others})
        if dialect == "sqlite":
            lite = sqlite.insert(table)
            return lite.on_conflict_do_update(index_elements=[key], set_={c: lite.excluded[c] for c in others})
        my = mysql.insert(table)
        return my.on_duplicate_key_update({c: my.inserted[c] for c in others})

    _execute_compiled_once(conn, ("upsert", table.name, key), build, rows)


# SQLAlchemy 2.0 compiles the dialects' own INSERT constructs (ON CONFLICT, ON DUPLICATE KEY) again on every
# execution: their classes say `inherit_cache = False`, so they get no cache key.  The journal's flushes
# run two of them per batch; profiled at 20 calls/s (bench_calls, py-spy), compiling was ~10 % of Hotline's
# CPU.  These statements depend only on the dialect and the parameter keys: compile each once and run the
# compiled form (Connection.execute accepts a Compiled; types, bind processors and executemany as usual).
_COMPILED_ATTR = "_hotline_compiled"  # kept on the engine's dialect: it goes with the engine (a Compiled refers to it)


def _execute_compiled_once(
    conn: Connection,
    name: tuple[str, ...],
    build: Callable[[str], sa.Executable],
    rows: list[dict[str, Any]],
) -> None:
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name not in ("postgresql", "sqlite", "mysql", "mariadb"):  # pragma: no cover
        raise ConfigError(f"database {dialect.name!r} is not supported")
    keys = sorted(rows[0])
    many = len(rows) > 1
    ck = (name, tuple(keys), many)
    per_dialect: dict[tuple[Any, ...], Compiled] | None = getattr(dialect, _COMPILED_ATTR, None)
    if per_dialect is None:  # one engine's dialect: its server version and paramstyle
        per_dialect = {}
        setattr(dialect, _COMPILED_ATTR, per_dialect)
    compiled = per_dialect.get(ck)
    if compiled is None:
        stmt = build(dialect.name)
        compiled = stmt.compile(dialect=dialect, column_keys=keys, for_executemany=many)  # type: ignore[attr-defined]
        per_dialect[ck] = compiled
    conn.execute(cast(Any, compiled), rows)


# ------------------------------------------------------------------------------------ row mappers


_D = TypeVar("_D")


def _mapper(
    cls: type[_D], *, flags: tuple[str, ...] = (), convert: Mapping[str, Callable[[Any], Any]] | None = None
) -> Callable[[Row[Any]], _D]:
    """A row -> dataclass mapper by field name; `flags` become bool (None stays None), `convert` fixes types
    the drivers return differently (SQLite and MariaDB give 0/1 for booleans, naive datetimes)."""
    names = tuple(f.name for f in dataclass_fields(cls))  # type: ignore[arg-type]
    fixes: dict[str, Callable[[Any], Any]] = {n: (lambda v: None if v is None else bool(v)) for n in flags}
    fixes.update(convert or {})

    def build(row: Row[Any]) -> _D:
        m = row._mapping
        values = {n: m[n] for n in names}
        for n, fix in fixes.items():
            values[n] = fix(values[n])
        return cls(**values)

    return build


_phone = _mapper(Phone, flags=("enabled",))
_agent_group = _mapper(AgentGroup)
_agent = _mapper(Agent, flags=("enabled",))
_queue = _mapper(Queue, flags=("ringinuse",))
_member = _mapper(QueueMember, flags=("ringinuse",))
_route = _mapper(DidRoute, flags=("enabled",))
_agent_queue = _mapper(AgentQueue)
_pause_reason = _mapper(PauseReason, flags=("paid", "enabled"))
_service_number = _mapper(ServiceNumber)
_ivr_menu = _mapper(IvrMenu)
_ivr_option = _mapper(IvrOption)
_time_condition = _mapper(TimeCondition)
_holiday = _mapper(Holiday)
_call_type_rule = _mapper(CallTypeRule)
_node = _mapper(Node, convert={"last_seen_at": lambda v: _from_db(v), "load": float})


_MEMBERS_SELECT = (
    sa.select(t.queue_members, t.queues.c.name.label("queue_name"))
    .join(t.queues, t.queues.c.id == t.queue_members.c.queue_id)
    .order_by(t.queue_members.c.queue_id, t.queue_members.c.id)
)


# ------------------------------------------------------------------------------ ConfigRepository


class ConfigRepository:
    """Configuration: phones, agents and groups, queues and members, DID routes, nodes."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- reads
    def version(self) -> int:
        with read_transaction(self._engine) as conn:
            return _read_version(conn)

    def load_snapshot(self) -> ConfigSnapshot:
        with snapshot_transaction(self._engine) as conn:
            version = _read_version(conn)
            return ConfigSnapshot.build(
                version,
                phones=map(_phone, conn.execute(sa.select(t.phones).order_by(t.phones.c.id))),
                agent_groups=map(_agent_group, conn.execute(sa.select(t.agent_groups).order_by(t.agent_groups.c.id))),
                agents=map(_agent, conn.execute(sa.select(t.agents).order_by(t.agents.c.id))),
                queues=map(_queue, conn.execute(sa.select(t.queues).order_by(t.queues.c.id))),
                queue_members=map(_member, conn.execute(_MEMBERS_SELECT)),
                did_routes=map(_route, conn.execute(sa.select(t.did_routes).order_by(t.did_routes.c.id))),
                nodes=map(_node, conn.execute(sa.select(t.nodes).order_by(t.nodes.c.id))),
                agent_queues=map(_agent_queue, conn.execute(sa.select(t.agent_queues).order_by(t.agent_queues.c.id))),
                pause_reasons=map(_pause_reason, conn.execute(sa.select(t.pause_reasons))),
                service_numbers=map(_service_number, conn.execute(sa.select(t.service_numbers))),
                ivr_menus=map(_ivr_menu, conn.execute(sa.select(t.ivr_menus))),
                ivr_options=map(_ivr_option, conn.execute(sa.select(t.ivr_options))),
                time_conditions=map(_time_condition, conn.execute(sa.select(t.time_conditions))),
                holidays=map(_holiday, conn.execute(sa.select(t.holidays))),
                call_type_rules=map(_call_type_rule, conn.execute(sa.select(t.call_type_rules))),
            )

    # ---- phones
    def add_phone(
        self,
        name: str,
        password: str,
        *,
        realm: str,
        context: str = "hotline-phones",
        callerid: str = "",
        codecs: str = "ulaw,alaw",
        max_contacts: int = 1,
    ) -> Phone:
        """Create a PJSIP phone; only the digests of `password` are stored."""
        _phone_name(name)
        validate_sip_password(password)
        _realm(realm)
        _token("context", context, _ID + "{1,64}", "1 to 64 letters, digits, '.', '_' or '-'")
        _text("callerid", callerid, 128)
        _token("codecs", codecs, r"[a-z0-9_]+(,[a-z0-9_]+)*", "a comma list of codec names like 'ulaw,alaw'")
        if len(codecs) > 128:
            raise ValidationError("codecs", "must be at most 128 characters long")
        _int("max_contacts", max_contacts, minimum=1, maximum=100)
        md5, sha256 = sip_digests(name, realm, password)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _execute_insert(
                conn,
                sa.insert(t.phones).values(
                    name=name,
                    digest_md5=md5,
                    digest_sha256=sha256,
                    realm=realm,
                    context=context,
                    callerid=callerid,
                    codecs=codecs,
                    max_contacts=max_contacts,
                ),
                f"phone {name!r} already exists",
            )
            return _phone(conn.execute(sa.select(t.phones).where(t.phones.c.name == name)).one())

    def set_phone_password(self, name: str, password: str, *, realm: str) -> None:
        """Replace the phone's digests (and realm) with those of `password`."""
        _phone_name(name)
        validate_sip_password(password)
        _realm(realm)
        md5, sha256 = sip_digests(name, realm, password)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            result = conn.execute(
                sa.update(t.phones)
                .where(t.phones.c.name == name)
                .values(digest_md5=md5, digest_sha256=sha256, realm=realm)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"phone {name!r} does not exist")

    def delete_phone(self, name: str) -> None:
        """Delete a phone; agents using it lose it.  ConflictError while a DID route points at it."""
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _refuse_if_routed(conn, "phone", name)
            result = conn.execute(sa.delete(t.phones).where(t.phones.c.name == name))
            if result.rowcount == 0:
                raise NotFoundError(f"phone {name!r} does not exist")

    # ---- agents
    def add_agent_group(self, name: str, description: str = "") -> AgentGroup:
        _text("name", name, 64, required=True)
        _text("description", description, 255)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _execute_insert(
                conn,
                sa.insert(t.agent_groups).values(name=name, description=description),
                f"agent group {name!r} already exists",
            )
            return _agent_group(conn.execute(sa.select(t.agent_groups).where(t.agent_groups.c.name == name)).one())

    def add_agent(
        self,
        number: str,
        name: str,
        *,
        group: str | None = None,
        pin: str | None = None,
        phone: str | None = None,
    ) -> Agent:
        """Create an agent; `group` and `phone` are names, `pin` (4..12 digits) is stored as argon2id."""
        _token("number", number, r"[0-9]{1,32}", "1 to 32 digits")
        _text("name", name, 128, required=True)
        if pin is not None:
            _token("pin", pin, r"[0-9]{4,12}", "4 to 12 digits")
        if group is not None:
            _text("group", group, 64, required=True)
        if phone is not None:
            _phone_name(phone)
        # Hash before the transaction: argon2id takes tens of milliseconds, locks should not wait on it.
        pin_hash = None if pin is None else hash_secret(pin)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            group_id = None if group is None else _id_of(conn, t.agent_groups.c.name, group, "agent group")
            phone_id = None if phone is None else _id_of(conn, t.phones.c.name, phone, "phone")
            _execute_insert(
                conn,
                sa.insert(t.agents).values(
                    number=number, name=name, group_id=group_id, pin_hash=pin_hash, phone_id=phone_id
                ),
                f"agent {number!r} already exists",
            )
            return _agent(conn.execute(sa.select(t.agents).where(t.agents.c.number == number)).one())

    # ---- queues
    def add_queue(self, name: str, **options: object) -> Queue:
        """Create a queue; options not given take the database defaults (see tables.queues)."""
        _token("name", name, _ID + "{1,128}", "1 to 128 letters, digits, '.', '_' or '-'")
        values = _queue_options(options)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _execute_insert(conn, sa.insert(t.queues).values(name=name, **values), f"queue {name!r} already exists")
            queue = _queue(conn.execute(sa.select(t.queues).where(t.queues.c.name == name)).one())
            _check_overflow(conn, queue)
            return queue

    def update_queue(self, name: str, **options: object) -> Queue:
        """Change some options of a queue; returns the queue as stored."""
        if not options:
            raise ValidationError("options", "nothing to update")
        values = _queue_options(options)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            result = conn.execute(sa.update(t.queues).where(t.queues.c.name == name).values(**values))
            if result.rowcount == 0:
                raise NotFoundError(f"queue {name!r} does not exist")
            queue = _queue(conn.execute(sa.select(t.queues).where(t.queues.c.name == name)).one())
            _check_overflow(conn, queue)
            return queue

    def add_queue_member(
        self,
        queue: str,
        interface: str,
        *,
        membername: str = "",
        penalty: int = 0,
        agent: str | None = None,
    ) -> QueueMember:
        """Add `interface` (e.g. 'PJSIP/1001', 'Local/1001@agents/n') to `queue`.

        With `agent` (a number): an empty `membername` becomes the agent's name, and when the agent has
        a phone, `state_interface` is that phone (PJSIP/<name>) so Asterisk sees the real device state
        behind a Local channel.
        """
        _token(
            "interface",
            interface,
            r"[A-Za-z0-9_]+/[^\s,|;]{1,120}",
            "a channel interface like PJSIP/1001 (no spaces, ',', '|' or ';')",
        )
        _text("membername", membername, 128)
        _int("penalty", penalty)
        uniqueid = f"qm-{uuid.uuid4().hex[:16]}"
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            queue_id = _id_of(conn, t.queues.c.name, queue, "queue")
            agent_id: int | None = None
            state_interface = ""
            if agent is not None:
                found = conn.execute(
                    sa.select(t.agents.c.id, t.agents.c.name, t.phones.c.name.label("phone"))
                    .outerjoin(t.phones, t.phones.c.id == t.agents.c.phone_id)
                    .where(t.agents.c.number == agent)
                ).first()
                if found is None:
                    raise NotFoundError(f"agent {agent!r} does not exist")
                agent_id = found.id
                membername = membername or found.name
                state_interface = f"PJSIP/{found.phone}" if found.phone else ""
            _execute_insert(
                conn,
                sa.insert(t.queue_members).values(
                    queue_id=queue_id,
                    interface=interface,
                    membername=membername,
                    state_interface=state_interface,
                    penalty=penalty,
                    uniqueid=uniqueid,
                    agent_id=agent_id,
                ),
                f"{interface} is already a member of queue {queue!r}",
            )
            return _member(conn.execute(_MEMBERS_SELECT.where(t.queue_members.c.uniqueid == uniqueid)).one())

    def remove_queue_member(self, queue: str, interface: str) -> None:
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            queue_id = _id_of(conn, t.queues.c.name, queue, "queue")
            result = conn.execute(
                sa.delete(t.queue_members).where(
                    t.queue_members.c.queue_id == queue_id, t.queue_members.c.interface == interface
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"{interface} is not a member of queue {queue!r}")

    def set_member_paused(self, uniqueid: str, paused: bool, reason: str) -> int:
        """Pause or unpause one member by its uniqueid; returns the rows updated (0 or 1).

        This is what Asterisk's realtime update of queue_members comes down to: the version bump and
        one UPDATE.  The bump comes first, as in every configuration write, so that all writers lock
        config_version before any other row (the reverse order against remove_queue_member would be
        a deadlock); when no row matched, the transaction is rolled back and the version stays.
        """
        _flag("paused", paused)
        _text("reason", reason, 80)
        try:
            with write_transaction(self._engine) as conn:
                _bump_version(conn)
                # MariaDB reports matched, not changed, rows: SQLAlchemy connects with CLIENT_FOUND_ROWS.
                updated = conn.execute(
                    sa.update(t.queue_members)
                    .where(t.queue_members.c.uniqueid == uniqueid)
                    .values(paused=int(paused), reason_paused=reason)
                ).rowcount
                if not updated:
                    raise _NothingMatched
        except _NothingMatched:
            return 0
        return updated

    # ---- DID routes
    def add_route(
        self,
        did: str,
        dest_type: str,
        dest_value: str = "",
        *,
        hangup_cause: int | None = None,
        description: str = "",
        message: str = "",
    ) -> DidRoute:
        _token("did", did, r"\+?[0-9A-Za-z*#]{1,63}", "a number: digits (or letters, '*', '#'), optional '+'")
        _text("description", description, 255)
        _sound("message", message)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _check_route(conn, dest_type, dest_value, hangup_cause)
            _execute_insert(
                conn,
                sa.insert(t.did_routes).values(
                    did=did,
                    dest_type=dest_type,
                    dest_value=dest_value,
                    hangup_cause=hangup_cause,
                    description=description,
                    message=message,
                ),
                f"a route for DID {did!r} already exists",
            )
            return _route(conn.execute(sa.select(t.did_routes).where(t.did_routes.c.did == did)).one())

    def update_route(self, did: str, **fields: object) -> DidRoute:
        """Change some of dest_type, dest_value, hangup_cause, description, enabled; validated together."""
        allowed = ("dest_type", "dest_value", "hangup_cause", "description", "enabled", "message")
        for key in fields:
            if key not in allowed:
                raise ValidationError(key, f"is not a route field (known: {', '.join(allowed)})")
        if not fields:
            raise ValidationError("fields", "nothing to update")
        if "description" in fields:
            _text("description", fields["description"], 255)
        if "enabled" in fields:
            _flag("enabled", fields["enabled"])
        if "message" in fields:
            _sound("message", fields["message"])
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            row = conn.execute(sa.select(t.did_routes).where(t.did_routes.c.did == did)).first()
            if row is None:
                raise NotFoundError(f"no route for DID {did!r}")
            merged = {**row._mapping, **fields}
            _check_route(conn, merged["dest_type"], merged["dest_value"], merged["hangup_cause"])
            conn.execute(sa.update(t.did_routes).where(t.did_routes.c.id == row.id).values(**fields))
            return _route(conn.execute(sa.select(t.did_routes).where(t.did_routes.c.id == row.id)).one())

    def delete_route(self, did: str) -> None:
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            result = conn.execute(sa.delete(t.did_routes).where(t.did_routes.c.did == did))
            if result.rowcount == 0:
                raise NotFoundError(f"no route for DID {did!r}")

    # ---- nodes
    def upsert_node(self, name: str, address: str, sip_port: int, ami_port: int) -> Node:
        """Create the node or change its address and ports; keeps its recorded status."""
        _token("name", name, _ID + "{1,64}", "1 to 64 letters, digits, '.', '_' or '-'")
        _token("address", address, r"[A-Za-z0-9.:_-]{1,64}", "an IP address or host name")
        _int("sip_port", sip_port, minimum=1, maximum=65535)
        _int("ami_port", ami_port, minimum=1, maximum=65535)
        values = {"address": address, "sip_port": sip_port, "ami_port": ami_port}
        with write_transaction(self._engine) as conn:
            _bump_version(conn)  # serialises writers, so update-then-insert cannot race here
            result = conn.execute(sa.update(t.nodes).where(t.nodes.c.name == name).values(**values))
            if result.rowcount == 0:
                _execute_insert(conn, sa.insert(t.nodes).values(name=name, **values), f"node {name!r} already exists")
            return _node(conn.execute(sa.select(t.nodes).where(t.nodes.c.name == name)).one())

    def update_node_status(
        self, name: str, *, state: str, active_calls: int, load: float, version: str, seen_at: datetime
    ) -> None:
        _token("state", state, r"[a-z_]{1,16}", "1 to 16 lowercase letters or '_'")
        _int("active_calls", active_calls)
        if isinstance(load, bool) or not isinstance(load, int | float) or not math.isfinite(load) or load < 0:
            raise ValidationError("load", f"must be a finite non-negative number (got {load!r})")
        _text("version", version, 64)
        if not isinstance(seen_at, datetime) or seen_at.utcoffset() is None:
            raise ValidationError("seen_at", "must be a timezone-aware datetime")
        # Node state is live status, not configuration: it does not bump config_version (a heartbeat
        # must not make every Hotline instance reload its whole snapshot).
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(t.nodes)
                .where(t.nodes.c.name == name)
                .values(
                    state=state,
                    active_calls=active_calls,
                    load=float(load),
                    version=version,
                    last_seen_at=_to_db(seen_at),
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"node {name!r} does not exist")


def _read_version(conn: Connection) -> int:
    value = conn.execute(
        sa.select(t.config_version.c.version).where(t.config_version.c.id == t.CONFIG_VERSION_ID)
    ).scalar()
    return int(value or 0)


def _refuse_if_routed(conn: Connection, dest_type: str, dest_value: str) -> None:
    used = (
        conn.execute(
            sa.select(t.did_routes.c.did).where(
                t.did_routes.c.dest_type == dest_type, t.did_routes.c.dest_value == dest_value
            )
        )
        .scalars()
        .all()
    )
    if used:
        raise ConflictError(f"{dest_type} {dest_value!r} is the destination of DID route(s) {', '.join(used)}")


def _check_overflow(conn: Connection, queue: Queue) -> None:
    """A queue's overflow names an existing destination (checked on the row as it will be stored)."""
    if queue.overflow_type:
        check_destination(conn, "overflow", queue.overflow_type, queue.overflow_value)
        if queue.overflow_type == "queue" and queue.overflow_value == queue.name:
            raise ValidationError("overflow_value", "a queue cannot overflow into itself")
    elif queue.overflow_value:
        raise ValidationError("overflow_value", "needs an overflow_type")


def _check_route(conn: Connection, dest_type: object, dest_value: object, hangup_cause: object) -> None:
    check_destination(conn, "dest", dest_type, dest_value)
    if dest_type == "hangup":
        _optional_int("hangup_cause", hangup_cause, minimum=1, maximum=127)
    elif hangup_cause is not None:
        raise ValidationError("hangup_cause", "is only for hangup routes")


# SIP URI targets of a 302 redirect: sip:/sips: URIs of printable characters, no spaces, '<', '>' or quotes
# (they go into a Contact header).
_SIP_URI = r"sips?:[A-Za-z0-9._~+!$&'()*,;=:@%/?-]{1,240}"
_DEST_COLUMNS: dict[str, sa.Column[Any]] = {
    "queue": t.queues.c.name,
    "agent": t.agents.c.number,
    "phone": t.phones.c.name,
    "ivr": t.ivr_menus.c.name,
    "time": t.time_conditions.c.name,
}


def check_destination(conn: Connection, prefix: str, dest_type: object, dest_value: object) -> None:
    """Validate a (type, value) destination against the rows it names; fields `<prefix>_type/_value`."""
    tf, vf = f"{prefix}_type", f"{prefix}_value"
    _choice(tf, dest_type, DEST_TYPES)
    _text(vf, dest_value, 255)
    assert isinstance(dest_value, str)
    if dest_type == "hangup":
        if dest_value:
            raise ValidationError(vf, "must be empty for a hangup destination")
        return
    if dest_type == "external":
        _token(vf, dest_value, r"\+?[0-9*#]{1,32}", "a phone number")
        return
    if dest_type == "redirect":
        _token(vf, dest_value, _SIP_URI, "a SIP URI such as sip:+4930123@carrier.example")
        return
    column = _DEST_COLUMNS[str(dest_type)]
    if conn.execute(sa.select(column).where(column == dest_value)).first() is None:
        raise ValidationError(vf, f"there is no {dest_type} {dest_value!r}")


# ----------------------------------------------------------------------------- ContactRepository


class ContactRepository:
    """PJSIP contacts Asterisk keeps through Hotline's realtime backend (sorcery `contact` objects)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def upsert(self, id: str, endpoint: str, expiration_time: int, fields: Mapping[str, str]) -> None:
        """Store the contact (every field Asterisk sent, as JSON), replacing any with the same id."""
        self.apply([(id, endpoint, expiration_time, fields)], [])

    def delete(self, id: str) -> int:
        with write_transaction(self._engine) as conn:
            return conn.execute(sa.delete(t.ps_contacts).where(t.ps_contacts.c.id == id)).rowcount

    def apply(self, upserts: Sequence[tuple[str, str, int, Mapping[str, str]]], deletes: Sequence[str]) -> None:
        """Many contact changes in one transaction (the realtime write-behind batches them).
        An id must not be in both lists; the caller keeps only the last change per id."""
        rows = []
        for id, endpoint, expiration_time, fields in upserts:
            _text("id", id, 255, required=True)
            _text("endpoint", endpoint, 64)
            _int("expiration_time", expiration_time, maximum=2**63 - 1)
            rows.append(
                {
                    "id": id,
                    "endpoint": endpoint,
                    "expiration_time": expiration_time,
                    "fields": json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":")),
                    "updated_at": t.utcnow_naive(),
                }
            )
        try:
            with write_transaction(self._engine) as conn:
                if rows:
                    _upsert(conn, t.ps_contacts, "id", rows)
                if deletes:
                    conn.execute(sa.delete(t.ps_contacts).where(t.ps_contacts.c.id.in_(list(deletes))))
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise DatabaseUnavailableError(f"contact write failed: {exc.orig or exc}") from exc
        except (sa_exc.IntegrityError, sa_exc.DataError) as exc:
            raise ValidationError("contact", f"refused by the database: {exc.orig or exc}") from exc

    def load_all(self) -> list[tuple[str, str, int, dict[str, str]]]:
        """Every contact as (id, endpoint, expiration_time, fields), ordered by id."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(
                    t.ps_contacts.c.id,
                    t.ps_contacts.c.endpoint,
                    t.ps_contacts.c.expiration_time,
                    t.ps_contacts.c.fields,
                ).order_by(t.ps_contacts.c.id)
            ).all()
        return [(r.id, r.endpoint, int(r.expiration_time), json.loads(r.fields)) for r in rows]

    def delete_expired(self, now_epoch: int) -> int:
        """Delete contacts whose expiration_time (epoch seconds) is at or before `now_epoch`."""
        with write_transaction(self._engine) as conn:
            return conn.execute(sa.delete(t.ps_contacts).where(t.ps_contacts.c.expiration_time <= now_epoch)).rowcount


# -------------------------------------------------------------------------------- CallRepository

_CALL_FIELDS = tuple(f.name for f in dataclass_fields(CallRecord))
_CALL_TIMES = frozenset({"started_at", "answered_at", "queue_entered_at", "ended_at"})


def _string_lengths(table: sa.Table) -> dict[str, int]:
    return {
        c.name: c.type.length
        for c in table.c
        if isinstance(c.type, sa.String) and c.type.length is not None and not c.primary_key
    }


_CALL_CLIP = _string_lengths(t.calls)
_EVENT_CLIP = {k: v for k, v in _string_lengths(t.call_events).items() if k != "call_id"}


def _clip(value: Any, length: int | None) -> Any:
    if length is not None and isinstance(value, str) and len(value) > length:
        return value[:length]
    return value


def _call_id(value: object) -> str:
    return _text("call_id", value, 40, required=True)


def _call_row(record: CallRecord) -> dict[str, Any]:
    _call_id(record.call_id)
    row: dict[str, Any] = {}
    for name in _CALL_FIELDS:
        value = getattr(record, name)
        row[name] = _to_db(value) if name in _CALL_TIMES else _clip(value, _CALL_CLIP.get(name))
    return row


def _call_record(row: Row[Any]) -> CallRecord:
    m = row._mapping
    values: dict[str, Any] = {name: _from_db(m[name]) if name in _CALL_TIMES else m[name] for name in _CALL_FIELDS}
    return CallRecord(**values)


def _event_row(event: JournalEvent) -> dict[str, Any]:
    _call_id(event.call_id)
    _int("seq", event.seq)
    return {
        "call_id": event.call_id,
        "seq": event.seq,
        "ts": _to_db(event.ts),
        "source": event.source,
        "node": _clip(event.node, _EVENT_CLIP["node"]),
        "event": _clip(event.event, _EVENT_CLIP["event"]),
        "uniqueid": _clip(event.uniqueid, _EVENT_CLIP["uniqueid"]),
        "channel": _clip(event.channel, _EVENT_CLIP["channel"]),
        "data": json.dumps(dict(event.data), ensure_ascii=False, separators=(",", ":")),
    }


def _journal_event(row: Row[Any]) -> JournalEvent:
    m = row._mapping
    ts = _from_db(m["ts"])
    assert ts is not None
    return JournalEvent(
        call_id=m["call_id"],
        seq=m["seq"],
        ts=ts,
        source=m["source"],
        node=m["node"],
        event=m["event"],
        uniqueid=m["uniqueid"],
        channel=m["channel"],
        data=json.loads(m["data"]),
    )


def _insert_events(conn: Connection, events: Sequence[JournalEvent]) -> None:
    """Append events; an event whose (call_id, seq) is already stored is skipped, not an error.

    The journal retries a batch when a commit's outcome is unknown (connection lost after COMMIT);
    skipping keys already stored makes that retry harmless.  Only that unique key is ignored:
    MariaDB gets ON DUPLICATE KEY UPDATE id=id rather than INSERT IGNORE, which would also turn
    other errors into warnings.
    """
    if not events:
        return

    def build(dialect: str) -> sa.Executable:
        if dialect == "postgresql":
            return postgresql.insert(t.call_events).on_conflict_do_nothing(index_elements=["call_id", "seq"])
        if dialect == "sqlite":
            return sqlite.insert(t.call_events).on_conflict_do_nothing(index_elements=["call_id", "seq"])
        return mysql.insert(t.call_events).on_duplicate_key_update(id=t.call_events.c.id)

    _execute_compiled_once(conn, ("journal-events",), build, [_event_row(e) for e in events])


def _upsert_calls(conn: Connection, records: Iterable[CallRecord]) -> None:
    # A later record wins over an earlier one with the same call_id; one statement may not touch a row
    # twice (PostgreSQL's ON CONFLICT refuses it), so only the latest of each call is sent.
    latest = {r.call_id: r for r in records}
    if latest:
        _upsert(conn, t.calls, "call_id", [_call_row(r) for r in latest.values()])


class CallRepository:
    """The call journal: raw events (append-only) and one summary record per call (upserted)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def insert_events(self, events: Sequence[JournalEvent]) -> None:
        """Append a batch of events in one transaction.

        One executemany for the whole batch (the drivers send it as multi-row INSERTs or a pipeline);
        events already stored under the same (call_id, seq) are skipped, so a retried batch is harmless.
        """
        if not events:
            return
        with write_transaction(self._engine) as conn:
            _insert_events(conn, events)

    def upsert_call(self, record: CallRecord) -> None:
        """Insert the record, or replace the stored one with the same call_id."""
        self.upsert_calls((record,))

    def upsert_calls(self, records: Iterable[CallRecord]) -> None:
        """Insert or replace call records by call_id, all in one transaction; within the batch a later
        record wins over an earlier one with the same call_id."""
        records = list(records)
        if not records:
            return
        with write_transaction(self._engine) as conn:
            _upsert_calls(conn, records)

    def write_journal(self, events: Sequence[JournalEvent], records: Iterable[CallRecord]) -> None:
        """One journal flush, all or nothing: append `events`, then upsert `records`."""
        records = list(records)
        if not events and not records:
            return
        try:
            with write_transaction(self._engine) as conn:
                _insert_events(conn, events)
                _upsert_calls(conn, records)
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            # the server is down or the file cannot be opened: the caller keeps the batch and retries
            raise DatabaseUnavailableError(f"journal write failed: {exc.orig or exc}") from exc
        except (sa_exc.IntegrityError, sa_exc.DataError, sa_exc.StatementError) as exc:
            # something in this batch can never be written as it is
            raise ValidationError("journal", f"batch refused by the database: {exc.orig or exc}") from exc

    def get_call(self, call_id: str) -> CallRecord | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(t.calls).where(t.calls.c.call_id == call_id)).first()
        return None if row is None else _call_record(row)

    def events_for(self, call_id: str) -> list[JournalEvent]:
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(t.call_events).where(t.call_events.c.call_id == call_id).order_by(t.call_events.c.seq)
            ).all()
        return [_journal_event(r) for r in rows]

    def recent_calls(self, limit: int = 50) -> list[CallRecord]:
        """The newest calls by start time, newest first."""
        _int("limit", limit, minimum=1, maximum=10_000)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(t.calls).order_by(t.calls.c.started_at.desc(), t.calls.c.call_id.desc()).limit(limit)
            ).all()
        return [_call_record(r) for r in rows]

    def max_seq(self, call_id: str) -> int:
        """The highest journaled seq of the call, 0 when it has none."""
        with read_transaction(self._engine) as conn:
            value = conn.execute(
                sa.select(sa.func.max(t.call_events.c.seq)).where(t.call_events.c.call_id == call_id)
            ).scalar()
        return int(value or 0)
