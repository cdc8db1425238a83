"""What a configuration resource is: its fields (`Field`) and how it is read and written (`Resource`).

The specs are data: the REST API, the XML-RPC API and the web admin generate their schemas and forms from
`Resource.describe()`, and `ResourceCatalog` runs every read and write from them.

Invariants:
- a writable field has a `check(field, value) -> value` that is the repository's own rule wherever one
  exists (hotline/db/repositories): the catalogue never has a second, different rule for a field;
- a `write_only` field (a phone password, an agent PIN, a webhook secret) is never read back: rows carry
  `has_password` / `has_pin` instead, and hashes and digests are not columns of any resource;
- keys are immutable: a resource's key fields are given on create and never changed by an update.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from hotline.db.repositories import _from_db, _int, _text
from hotline.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from hotline.features.config.resources.scope import WriteScope

FieldType = Literal["str", "int", "bool", "float", "date", "datetime", "object"]
Check = Callable[[str, object], object]
#: A parsed key: the values of the resource's key fields, in order.
Key = tuple[Any, ...]

#: Where a destination value points, by destination type (hotline.domain.config.DEST_TYPES).
DESTINATION_RESOURCES: Mapping[str, str] = {
    "queue": "queues",
    "agent": "agents",
    "phone": "phones",
    "ivr": "ivr_menus",
    "time": "time_conditions",
}

#: `Field.default` of a field without a database default (a required field).
NO_DEFAULT: Any = object()


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a resource as clients see it."""

    name: str
    type: FieldType
    description: str
    check: Check | None = None  # None: read-only
    required: bool = False  # must be given on create
    nullable: bool = False  # null is a value (an optional int, a cleared reference, no PIN)
    write_only: bool = False  # a secret: accepted, never returned
    immutable: bool = False  # a key field: given on create only
    default: Any = NO_DEFAULT  # what the database stores when the field is not given on create
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    multiple: bool = False  # a comma-separated list of `choices`
    pattern: str | None = None  # the rule's regular expression, for forms (the check is authoritative)
    references: str | None = None  # the resource whose key this field holds
    references_by: str | None = None  # a destination value: the resource depends on this type field
    sortable: bool = True
    filterable: bool = True

    @property
    def read_only(self) -> bool:
        return self.check is None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "required": self.required,
            "nullable": self.nullable,
            "read_only": self.read_only,
            "write_only": self.write_only,
            "immutable": self.immutable,
        }
        if self.default is not NO_DEFAULT:
            out["default"] = self.default
        for name in ("max_length", "minimum", "maximum", "pattern", "references"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.choices:
            out["choices"] = list(self.choices)
            out["multiple"] = self.multiple
        if self.references_by is not None:
            out["references_by"] = {"field": self.references_by, "resources": dict(DESTINATION_RESOURCES)}
        return out

    def to_json(self, value: Any) -> Any:
        """A database value as JSON (bool 0/1 from SQLite and MariaDB, naive UTC datetimes...)."""
        if value is None:
            return None
        if self.type == "bool":
            return bool(value)
        if self.type == "int":
            return int(value)
        if self.type == "float":
            return float(value)
        if self.type == "date":
            return value.isoformat() if isinstance(value, date) else str(value)
        if self.type == "datetime":
            aware = _from_db(value)
            assert aware is not None
            return aware.isoformat()
        if self.type == "object":
            return json.loads(value) if isinstance(value, str) else value
        return value


# ------------------------------------------------------------------------------------- behaviour

#: create(scope, data) -> (key, values shown once, e.g. a generated secret)
CreateFn = Callable[["WriteScope", dict[str, Any]], tuple[Key, dict[str, Any]]]
#: update(scope, key, row before, changes)
UpdateFn = Callable[["WriteScope", Key, dict[str, Any], dict[str, Any]], None]
#: delete(scope, key, row before)
DeleteFn = Callable[["WriteScope", Key, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Resource:
    """A configuration table as a resource: fields, key, how rows are selected, and its write operations.

    `columns` maps every readable field to its SQL expression over `source` (references are joined and
    shown by the referenced key); `computed` adds fields derived in Python from the others (the key of a
    composite resource).
    """

    name: str
    title: str  # singular, lower case: "phone", "DID route"
    description: str
    table: sa.Table
    key_fields: tuple[str, ...]
    fields: tuple[Field, ...]
    create: CreateFn
    update: UpdateFn
    delete: DeleteFn
    #: the FROM clause rows are selected from (default: the table) and the SQL expression of each shown
    #: field (default: the table's column of that name)
    joined: InitVar[sa.FromClause | None] = None
    column_exprs: InitVar[Mapping[str, sa.ColumnElement[Any]] | None] = None
    search: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()  # default order (the key when empty)
    computed: Mapping[str, Callable[[dict[str, Any]], Any]] = field(default_factory=dict)
    #: check of a whole key string (a composite key's format), before it is split
    key_help: str = ""
    source: sa.FromClause = field(init=False, repr=False, compare=False)
    columns: Mapping[str, sa.ColumnElement[Any]] = field(init=False, repr=False, compare=False)
    _by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(
        self, joined: sa.FromClause | None, column_exprs: Mapping[str, sa.ColumnElement[Any]] | None
    ) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})
        object.__setattr__(self, "source", self.table if joined is None else joined)
        if column_exprs is None:
            shown = [f.name for f in self.fields if not f.write_only and f.name not in self.computed]
            column_exprs = {n: self.table.c[n] for n in shown}
        object.__setattr__(self, "columns", column_exprs)
        missing = [f.name for f in self.fields if not f.write_only and f.name not in self.columns]
        missing = [n for n in missing if n not in self.computed]
        if missing:  # pragma: no cover - a spec error, caught by the tests importing the catalogue
            raise AssertionError(f"{self.name}: no column for {missing}")

    @property
    def key(self) -> str:
        """The field clients use as the key: the key field itself, or `key` for a composite key."""
        return self.key_fields[0] if len(self.key_fields) == 1 else "key"

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise ValidationError(name, f"is not a field of {self.name} (known: {', '.join(self._by_name)})") from None

    def has(self, name: str) -> bool:
        return name in self._by_name

    def parse_key(self, key: object) -> Key:
        """A client's key (str, int, date) -> the key field values; ValidationError if malformed."""
        if len(self.key_fields) > 1:
            if not isinstance(key, str) or key.count(":") < 1:
                raise ValidationError("key", f"must be {self.key_help} (got {key!r})")
            parts = tuple(key.split(":", len(self.key_fields) - 1))
            return tuple(_key_value(self.field(n), p) for n, p in zip(self.key_fields, parts, strict=True))
        return (_key_value(self.field(self.key_fields[0]), key),)

    def format_key(self, key: Key) -> str:
        return ":".join(v.isoformat() if isinstance(v, date) else str(v) for v in key)

    def not_found(self, key: Key) -> NotFoundError:
        return NotFoundError(f"{self.title} {self.format_key(key)!r} does not exist")

    def where_key(self, key: Key) -> sa.ColumnElement[bool]:
        return sa.and_(*(self.columns[n] == v for n, v in zip(self.key_fields, key, strict=True)))

    def select(self) -> sa.Select[Any]:
        return sa.select(*(expr.label(name) for name, expr in self.columns.items())).select_from(self.source)

    def row(self, mapping: Mapping[Any, Any]) -> dict[str, Any]:
        """A selected row as the JSON-able dict clients get."""
        out = {name: self._by_name[name].to_json(mapping[name]) for name in self.columns}
        for name, derive in self.computed.items():
            out[name] = derive(out)
        return {f.name: out[f.name] for f in self.fields if not f.write_only}

    def describe(self) -> dict[str, Any]:
        writable = [f for f in self.fields if not f.read_only and not f.immutable and not f.write_only]
        actions = ["delete", "update"]
        if any(f.name == "enabled" for f in writable):
            actions[1:1] = ["enable", "disable"]
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "key": self.key,
            "key_fields": list(self.key_fields),
            "key_format": self.key_help or self.key_fields[0],
            "search": list(self.search),
            "bulk_actions": actions,
            "fields": [f.describe() for f in self.fields],
        }


def _key_value(f: Field, value: object) -> Any:
    if f.type == "int":
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
            value = int(value)
        return _int(f.name, value, minimum=1)
    if f.type == "date":
        return to_date(f.name, value)
    return _text(f.name, value, f.max_length or 255, required=True)


def to_date(name: str, value: object) -> date:
    """A date or an ISO date string YYYY-MM-DD -> date."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(name, f"must be a date YYYY-MM-DD (got {value!r})")
