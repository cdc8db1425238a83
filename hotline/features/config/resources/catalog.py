"""`ResourceCatalog`: list, get, create, update, delete and bulk-change any configuration resource.

The one code path the REST API, the XML-RPC API and the web admin manage configuration through.  The
methods are synchronous (callers run them with `asyncio.to_thread`) and each is one transaction.

Invariants:
- input is checked before any transaction opens: unknown, read-only and key fields, types, lengths,
  choices (`Field.check`, the repositories' own rules); references and destinations are checked inside
  the transaction against the rows they name, and a missing one is `ValidationError(field, ...)`;
- a write is all or nothing (a `WriteScope`): a create that needs two statements, and a bulk action over
  many keys, commit together or not at all; every write bumps config_version first;
- rows are JSON-able dicts: references by the referenced key, datetimes as ISO strings with an offset,
  dates as YYYY-MM-DD, never a secret, a hash or a digest;
- errors: `ValidationError` (names the field), `NotFoundError`, `ConflictError` (duplicate, or still in
  use, saying by what), `DatabaseUnavailableError`; never a driver exception.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from hotline.db.engine import read_transaction, snapshot_transaction
from hotline.db.repositories import _choice, _int, _text
from hotline.db.repositories.crm import _like
from hotline.errors import ConflictError, DatabaseUnavailableError, ValidationError
from hotline.features.config.resources.callcenter import (
    CALL_TYPE_RULES,
    HOLIDAYS,
    IVR_MENUS,
    IVR_OPTIONS,
    PAUSE_REASONS,
    SERVICE_NUMBERS,
    TIME_CONDITIONS,
)
from hotline.features.config.resources.core import AGENT_GROUPS, AGENT_QUEUES, AGENTS, DID_ROUTES, NODES, PHONES, QUEUES
from hotline.features.config.resources.features import CUSTOMERS, MOH_CLASSES, WEBHOOKS
from hotline.features.config.resources.scope import WriteScope
from hotline.features.config.resources.spec import Field, Key, Resource, to_date

#: Every configuration resource, in the order the admin shows them.
RESOURCES: tuple[Resource, ...] = (
    PHONES,
    AGENT_GROUPS,
    AGENTS,
    AGENT_QUEUES,
    QUEUES,
    DID_ROUTES,
    NODES,
    PAUSE_REASONS,
    SERVICE_NUMBERS,
    IVR_MENUS,
    IVR_OPTIONS,
    TIME_CONDITIONS,
    HOLIDAYS,
    CALL_TYPE_RULES,
    MOH_CLASSES,
    CUSTOMERS,
    WEBHOOKS,
)

BULK_ACTIONS = ("delete", "enable", "disable", "update")
MAX_LIMIT = 1000
MAX_BULK_KEYS = 1000


@contextmanager
def _translated() -> Iterator[None]:
    """Driver errors that escaped the checks, as Hotline's errors."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise DatabaseUnavailableError(f"configuration database: {exc.orig or exc}") from exc
    except sa_exc.IntegrityError as exc:
        raise ConflictError(f"refused by the database: {exc.orig or exc}") from exc
    except sa_exc.DBAPIError as exc:
        raise ValidationError("data", f"refused by the database: {exc.orig or exc}") from exc


class ResourceCatalog:
    """Configuration resources over one engine; `sip_realm` is the realm phone digests are made with."""

    def __init__(self, engine: Engine, *, sip_realm: str = "hotline") -> None:
        self._engine = engine
        self._realm = sip_realm
        self._by_name = {r.name: r for r in RESOURCES}

    # ---- specs
    def resources(self) -> builtins.list[dict[str, Any]]:
        """Every resource and its fields as JSON (for OpenAPI schemas, XML-RPC introspection, forms)."""
        return [r.describe() for r in RESOURCES]

    def resource(self, name: str) -> Resource:
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise ValidationError(
                "resource", f"unknown resource {name!r} (known: {', '.join(self._by_name)})"
            ) from None

    # ---- reads
    def list(
        self,
        resource: str,
        *,
        search: str | None = None,
        filters: Mapping[str, Any] | None = None,
        limit: int = 100,
        offset: int = 0,
        sort: str | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], int]:
        """One page of rows and the total number of rows matching `search` and `filters`.

        `search`: part of any of the resource's search fields, ignoring case; `filters`: field -> value,
        all equal (null: no value); `sort`: a field name, '-name' for descending (default: the key)."""
        res = self.resource(resource)
        _int("limit", limit, minimum=1, maximum=MAX_LIMIT)
        _int("offset", offset)
        where = [*_search(res, search), *_filters(res, filters)]
        rows_stmt = res.select().where(*where).order_by(*_order(res, sort)).limit(limit).offset(offset)
        count_stmt = sa.select(sa.func.count()).select_from(res.source).where(*where)
        with _translated(), snapshot_transaction(self._engine) as conn:
            total = int(conn.execute(count_stmt).scalar_one())
            rows = [res.row(r._mapping) for r in conn.execute(rows_stmt)]
        return rows, total

    def get(self, resource: str, key: object) -> dict[str, Any]:
        res = self.resource(resource)
        parsed = res.parse_key(key)
        with _translated(), read_transaction(self._engine) as conn:
            return _fetch(conn, res, parsed)

    # ---- writes
    def create(self, resource: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Create a row; returns it as stored, plus any secret generated for it (shown this once)."""
        res = self.resource(resource)
        values = _checked(res, data, creating=True)
        with _translated(), self._scope() as scope:
            key, shown = res.create(scope, values)
            after = _fetch(scope.conn, res, key)
        return {**after, **shown}

    def update(self, resource: str, key: object, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Change some fields; returns the row before and after."""
        res = self.resource(resource)
        parsed = res.parse_key(key)
        changes = _checked(res, data, creating=False)
        with _translated(), self._scope() as scope:
            before = _fetch(scope.conn, res, parsed)
            res.update(scope, parsed, before, changes)
            after = _fetch(scope.conn, res, parsed)
        return before, after

    def delete(self, resource: str, key: object) -> dict[str, Any]:
        """Delete a row; returns it as it was.  ConflictError while something still uses it."""
        res = self.resource(resource)
        parsed = res.parse_key(key)
        with _translated(), self._scope() as scope:
            before = _fetch(scope.conn, res, parsed)
            res.delete(scope, parsed, before)
        return before

    def bulk(
        self, resource: str, action: str, keys: Sequence[object], data: Mapping[str, Any] | None = None
    ) -> builtins.list[dict[str, Any]]:
        """delete / enable / disable / update (one field, `data`) every key, all or nothing.

        Returns one {"key", "before", "after"} per key, in order (`after` is None for delete).  One bad
        key (missing, in use, refused) raises its error and changes nothing."""
        res = self.resource(resource)
        _choice("action", action, BULK_ACTIONS)
        parsed = _bulk_keys(res, keys)
        changes = _bulk_changes(res, action, data)
        results: builtins.list[dict[str, Any]] = []
        with _translated(), self._scope() as scope:
            for key in parsed:
                try:
                    before = _fetch(scope.conn, res, key)
                    if action == "delete":
                        res.delete(scope, key, before)
                        after = None
                    else:
                        res.update(scope, key, before, changes)
                        after = _fetch(scope.conn, res, key)
                except ValidationError as exc:
                    raise ValidationError(exc.field, f"{exc.message} ({res.title} {res.format_key(key)!r})") from exc
                results.append({"key": before[res.key], "before": before, "after": after})
        return results

    def _scope(self) -> WriteScope:
        return WriteScope(self._engine, realm=self._realm)


# ------------------------------------------------------------------------------------------ helpers
def _fetch(conn: Connection, res: Resource, key: Key) -> dict[str, Any]:
    row = conn.execute(res.select().where(res.where_key(key))).first()
    if row is None:
        raise res.not_found(key)
    return res.row(row._mapping)


def _checked(res: Resource, data: object, *, creating: bool) -> dict[str, Any]:
    """The given fields, each through its check; unknown, read-only and (on update) key fields refused."""
    if not isinstance(data, Mapping):
        raise ValidationError("data", f"must be an object of fields (got {type(data).__name__})")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if not isinstance(name, str):
            raise ValidationError("data", f"field names must be strings (got {name!r})")
        f = _writable(res, name)
        if f.immutable and not creating:
            raise ValidationError(name, f"is part of the key of {res.name}; it cannot be changed")
        assert f.check is not None
        values[name] = f.check(name, value)
    if creating:
        for f in res.fields:
            if f.required and f.name not in values:
                raise ValidationError(f.name, "is required")
    elif not values:
        raise ValidationError("data", "nothing to update")
    return values


def _writable(res: Resource, name: str) -> Field:
    if not res.has(name):
        known = ", ".join(f.name for f in res.fields if not f.read_only)
        raise ValidationError(name, f"is not a field of {res.name} (fields: {known})")
    f = res.field(name)
    if f.read_only:
        raise ValidationError(name, "is read-only")
    return f


def _readable(res: Resource, name: object, what: str) -> Field:
    if not isinstance(name, str) or not res.has(name) or res.field(name).write_only:
        known = ", ".join(f.name for f in res.fields if not f.write_only and getattr(f, what))
        raise ValidationError(str(name), f"is not a field of {res.name} one can use here (fields: {known})")
    f = res.field(name)
    unusable = ("object", "datetime") if what == "filterable" else ("object",)
    if not getattr(f, what) or name not in res.columns or f.type in unusable:
        raise ValidationError(name, f"cannot be used to {what.removesuffix('able')} {res.name}")
    return f


def _search(res: Resource, search: object) -> list[sa.ColumnElement[bool]]:
    if search is None or search == "":
        return []
    text = _text("search", search, 255)
    pattern = _like(text.lower())
    return [sa.or_(*(sa.func.lower(res.columns[n]).like(pattern, escape="\\") for n in res.search))]


def _filters(res: Resource, filters: object) -> list[sa.ColumnElement[bool]]:
    if filters is None:
        return []
    if not isinstance(filters, Mapping):
        raise ValidationError("filters", "must be an object of field: value")
    out: list[sa.ColumnElement[bool]] = []
    for name, value in filters.items():
        f = _readable(res, name, "filterable")
        expr = res.columns[name]
        out.append(expr.is_(None) if value is None else expr == _filter_value(f, value))
    return out


def _filter_value(f: Field, value: object) -> object:
    if f.type == "bool":
        if not isinstance(value, bool):
            raise ValidationError(f.name, f"must be true or false (got {value!r})")
    elif f.type in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f.name, f"must be a number (got {value!r})")
    elif f.type == "date":
        return to_date(f.name, value)
    else:
        return _text(f.name, value, f.max_length or 1024)
    return value


def _order(res: Resource, sort: object) -> list[sa.ColumnElement[Any]]:
    if sort is None or sort == "":
        names = [(n, False) for n in (res.sort or res.key_fields)]
    else:
        if not isinstance(sort, str):
            raise ValidationError("sort", f"must be a field name, '-' in front for descending (got {sort!r})")
        descending = sort.startswith("-")
        names = [(sort.removeprefix("-"), descending)]
    order: list[sa.ColumnElement[Any]] = []
    for name, descending in names:
        _readable(res, name, "sortable")
        expr = res.columns[name]
        order.append(expr.desc() if descending else expr.asc())
    order.append(res.table.c.id.asc())  # a stable order: pages neither repeat nor skip rows
    return order


def _bulk_keys(res: Resource, keys: object) -> list[Key]:
    if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
        raise ValidationError("keys", "must be a list of keys")
    if not keys:
        raise ValidationError("keys", "must not be empty")
    if len(keys) > MAX_BULK_KEYS:
        raise ValidationError("keys", f"at most {MAX_BULK_KEYS} at once")
    parsed: list[Key] = []
    for raw in keys:
        key = res.parse_key(raw)
        if key in parsed:
            raise ValidationError("keys", f"{res.format_key(key)!r} is given twice")
        parsed.append(key)
    return parsed


def _bulk_changes(res: Resource, action: str, data: object) -> dict[str, Any]:
    if action in ("delete", "enable", "disable"):
        if data is not None:
            raise ValidationError("data", f"is only for the update action (not {action})")
        if action == "delete":
            return {}
        if not res.has("enabled") or res.field("enabled").read_only:
            raise ValidationError("action", f"{res.name} cannot be enabled or disabled")
        return {"enabled": action == "enable"}
    if not isinstance(data, Mapping) or len(data) != 1:
        raise ValidationError("data", 'must be one field and its new value, e.g. {"enabled": false}')
    name = next(iter(data))
    if isinstance(name, str) and res.has(name) and res.field(name).write_only:
        raise ValidationError(name, "is a secret; set it one row at a time")
    return _checked(res, data, creating=False)
