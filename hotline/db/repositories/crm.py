"""Customers (the records a screen pop shows) and the earlier calls of a number.

Responsibility: validate and store `customers` rows; read them back by phone number; read the newest
`calls` rows of a caller number.  Synchronous, one short transaction per method: services call these
through `asyncio.to_thread`.

Invariants:
- phone numbers are stored normalised (`normalize_number`: digits with an optional leading '+', at most
  32 digits), so a lookup by the caller number Asterisk gives matches however the number was typed in;
  "+74951234567" and "74951234567" are the same number to `find_by_phone` and `recent_calls_from`
  (numbers written in a national format, e.g. "8495...", are not rewritten: that needs a dialling plan);
- `data` is a JSON object of strings (at most 100 keys, at most 16,000 characters as JSON, so it fits
  MariaDB's TEXT in utf8mb4); invalid input raises `ValidationError` before anything is written;
- database outages surface as `DatabaseUnavailableError`, never as driver exceptions.

`Customer`, `EarlierCall` and `normalize_number` are domain values; they live here until a
`hotline.domain.crm` module takes them.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, Row

from hotline.db import tables as t
from hotline.db.engine import read_transaction, write_transaction
from hotline.db.repositories import _from_db, _int, _text
from hotline.errors import DatabaseUnavailableError, NotFoundError, ValidationError

MAX_DIGITS = 32
_SEPARATORS = re.compile(r"[\s\-./()]")
_NUMBER = re.compile(rf"\+?[0-9]{{1,{MAX_DIGITS}}}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_DATA_KEYS = 100
_DATA_KEY_LEN = 64
_DATA_VALUE_LEN = 1024
_DATA_JSON_LEN = 16_000  # MariaDB TEXT is 65,535 bytes; utf8mb4 takes up to 4 per character


def normalize_number(value: object) -> str | None:
    """ "+7 (495) 123-45-67" -> "+74951234567"; None when `value` is not a phone number
    (empty, "anonymous", letters, more than 32 digits)."""
    if not isinstance(value, str):
        return None
    compact = _SEPARATORS.sub("", value)
    return compact if _NUMBER.fullmatch(compact) else None


def number_variants(number: str) -> list[str]:
    """The stored spellings one normalised number may have: with and without the leading '+'."""
    bare = number.removeprefix("+")
    return [bare, "+" + bare]


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    name: str
    phone: str
    email: str
    external_id: str
    data: Mapping[str, str] = field(hash=False)
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EarlierCall:
    """One earlier call of a number, as the screen pop lists it."""

    call_id: str
    started_at: datetime
    status: str
    agent_number: str | None
    queue_name: str | None
    talk_s: float | None


def _phone(value: object) -> str:
    number = normalize_number(value)
    if number is None:
        raise ValidationError(
            "phone", f"must be a phone number: digits, an optional leading '+', at most {MAX_DIGITS} (got {value!r})"
        )
    return number


def _email(value: object) -> str:
    _text("email", value, 255)
    assert isinstance(value, str)
    if value and _EMAIL.fullmatch(value) is None:
        raise ValidationError("email", f"must be an e-mail address or empty (got {value!r})")
    return value


def _data(value: object) -> str:
    if not isinstance(value, Mapping):
        raise ValidationError("data", f"must be an object of strings (got {type(value).__name__})")
    if len(value) > _DATA_KEYS:
        raise ValidationError("data", f"must have at most {_DATA_KEYS} keys")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError("data", f"keys must be non-empty strings (got {key!r})")
        _text(f"data.{key[:_DATA_KEY_LEN]}", key, _DATA_KEY_LEN)
        _text(f"data.{key}", item, _DATA_VALUE_LEN)
    text = json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"))
    if len(text) > _DATA_JSON_LEN:
        raise ValidationError("data", f"must be at most {_DATA_JSON_LEN} characters as JSON")
    return text


def _customer(row: Row[Any]) -> Customer:
    m = row._mapping
    created, updated = _from_db(m["created_at"]), _from_db(m["updated_at"])
    assert created is not None and updated is not None
    return Customer(
        id=int(m["id"]),
        name=m["name"],
        phone=m["phone"],
        email=m["email"],
        external_id=m["external_id"],
        data=MappingProxyType(dict(json.loads(m["data"]))),
        created_at=created,
        updated_at=updated,
    )


def _earlier_call(row: Row[Any]) -> EarlierCall:
    m = row._mapping
    started = _from_db(m["started_at"])
    assert started is not None
    return EarlierCall(
        call_id=m["call_id"],
        started_at=started,
        status=m["status"],
        agent_number=m["agent_number"],
        queue_name=m["queue_name"],
        talk_s=None if m["talk_s"] is None else float(m["talk_s"]),
    )


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise DatabaseUnavailableError(f"{what}: {exc.orig or exc}") from exc


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_EARLIER_COLUMNS = (
    t.calls.c.call_id,
    t.calls.c.started_at,
    t.calls.c.status,
    t.calls.c.agent_number,
    t.calls.c.queue_name,
    t.calls.c.talk_s,
)


class CustomerRepository:
    """Customer records, and the call history of a caller number."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(
        self,
        name: str,
        phone: str,
        *,
        email: str = "",
        external_id: str = "",
        data: Mapping[str, str] | None = None,
    ) -> Customer:
        values = {
            "name": _text("name", name, 255, required=True),
            "phone": _phone(phone),
            "email": _email(email),
            "external_id": _text("external_id", external_id, 128),
            "data": _data(data or {}),
        }
        with _translated("customer write failed"), write_transaction(self._engine) as conn:
            return _customer(conn.execute(sa.insert(t.customers).values(**values).returning(*t.customers.c)).one())

    def update(
        self,
        customer_id: int,
        *,
        name: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        external_id: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Customer:
        """Change the given fields (None = unchanged; `data` replaces the whole object)."""
        _int("customer_id", customer_id, minimum=1)
        values: dict[str, object] = {}
        if name is not None:
            values["name"] = _text("name", name, 255, required=True)
        if phone is not None:
            values["phone"] = _phone(phone)
        if email is not None:
            values["email"] = _email(email)
        if external_id is not None:
            values["external_id"] = _text("external_id", external_id, 128)
        if data is not None:
            values["data"] = _data(data)
        with _translated("customer write failed"), write_transaction(self._engine) as conn:
            where = t.customers.c.id == customer_id
            if values:
                conn.execute(sa.update(t.customers).where(where).values(**values))
            row = conn.execute(sa.select(t.customers).where(where)).first()
            if row is None:
                raise NotFoundError(f"customer {customer_id} does not exist")
            return _customer(row)

    def delete(self, customer_id: int) -> None:
        _int("customer_id", customer_id, minimum=1)
        with _translated("customer delete failed"), write_transaction(self._engine) as conn:
            if conn.execute(sa.delete(t.customers).where(t.customers.c.id == customer_id)).rowcount == 0:
                raise NotFoundError(f"customer {customer_id} does not exist")

    def get(self, customer_id: int) -> Customer:
        _int("customer_id", customer_id, minimum=1)
        with _translated("customer read failed"), read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(t.customers).where(t.customers.c.id == customer_id)).first()
        if row is None:
            raise NotFoundError(f"customer {customer_id} does not exist")
        return _customer(row)

    def find_by_phone(self, number: str) -> builtins.list[Customer]:
        """Customers with this phone number, the most recently updated first ([] for a non-number)."""
        normalized = normalize_number(number)
        if normalized is None:
            return []
        with _translated("customer lookup failed"), read_transaction(self._engine) as conn:
            rows = conn.execute(_customers_by_phone(normalized)).all()
        return [_customer(r) for r in rows]

    def recent_calls_from(
        self, number: str, limit: int = 5, *, exclude_call_id: str | None = None
    ) -> builtins.list[EarlierCall]:
        """The newest calls whose caller number is `number` (either spelling), newest first."""
        _int("limit", limit, minimum=1, maximum=1000)
        normalized = normalize_number(number)
        if normalized is None:
            return []
        with _translated("call history read failed"), read_transaction(self._engine) as conn:
            rows = conn.execute(_calls_from(normalized, limit, exclude_call_id)).all()
        return [_earlier_call(r) for r in rows]

    def caller_history(
        self, number: str, limit: int = 5, *, exclude_call_id: str | None = None
    ) -> tuple[builtins.list[Customer], builtins.list[EarlierCall]]:
        """`find_by_phone` and `recent_calls_from` in one read transaction: what the caller lookup reads for
        every inbound call (one BEGIN/COMMIT instead of two)."""
        _int("limit", limit, minimum=1, maximum=1000)
        normalized = normalize_number(number)
        if normalized is None:
            return [], []
        with _translated("customer lookup failed"), read_transaction(self._engine) as conn:
            customers = conn.execute(_customers_by_phone(normalized)).all()
            calls = conn.execute(_calls_from(normalized, limit, exclude_call_id)).all()
        return [_customer(r) for r in customers], [_earlier_call(r) for r in calls]

    def list(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> builtins.list[Customer]:
        """Customers ordered by name; `search` matches part of the name (any case), part of the phone
        number, or the external id exactly."""
        _int("limit", limit, minimum=1, maximum=10_000)
        _int("offset", offset)
        query = sa.select(t.customers)
        if search:
            _text("search", search, 255)
            conditions = [
                sa.func.lower(t.customers.c.name).like(_like(search.lower()), escape="\\"),
                t.customers.c.external_id == search,
            ]
            digits = normalize_number(search)
            if digits is not None:
                conditions.append(t.customers.c.phone.like(_like(digits.removeprefix("+")), escape="\\"))
            query = query.where(sa.or_(*conditions))
        query = query.order_by(t.customers.c.name, t.customers.c.id).limit(limit).offset(offset)
        with _translated("customer read failed"), read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [_customer(r) for r in rows]


def _customers_by_phone(normalized: str) -> sa.Select[Any]:
    return (
        sa.select(t.customers)
        .where(t.customers.c.phone.in_(number_variants(normalized)))
        .order_by(t.customers.c.updated_at.desc(), t.customers.c.id.desc())
        .limit(20)
    )


def _calls_from(normalized: str, limit: int, exclude_call_id: str | None) -> sa.Select[Any]:
    query = sa.select(*_EARLIER_COLUMNS).where(t.calls.c.caller_num.in_(number_variants(normalized)))
    if exclude_call_id is not None:
        query = query.where(t.calls.c.call_id != exclude_call_id)
    return query.order_by(t.calls.c.started_at.desc(), t.calls.c.call_id.desc()).limit(limit)
