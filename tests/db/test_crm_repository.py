"""CustomerRepository: customers round trip, lookup by any spelling of a number, call history of a number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.db import tables as t
from hotline.db.engine import create_engine_for
from hotline.db.repositories import CallRepository
from hotline.db.repositories.crm import CustomerRepository, normalize_number
from hotline.domain.calls import CallRecord
from hotline.errors import DatabaseUnavailableError, NotFoundError, ValidationError

T0 = datetime(2025, 11, 25, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def customers(engine: Engine) -> CustomerRepository:
    return CustomerRepository(engine)


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.customers)).scalar_one())


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("+7 (495) 123-45-67", "+74951234567"),
        ("8.495.123.45.67", "84951234567"),
        ("1001", "1001"),
        ("+1/555/0100", "+15550100"),
        ("", None),
        ("+", None),
        ("anonymous", None),
        ("12ab", None),
        ("++7", None),
        ("7+7", None),
        ("1" * 32, "1" * 32),
        ("1" * 33, None),
        (None, None),
    ],
)
def test_normalize_number(raw: object, normalized: str | None) -> None:
    assert normalize_number(raw) == normalized


def test_customer_round_trip(customers: CustomerRepository, engine: Engine) -> None:
    data = {"account": "A-1001", "Тариф": "Золотой 🎧", "note": 'quote " and \\'}
    c = customers.add("Иван Петров", "+7 (495) 123-45-67", email="ivan@example.ru", external_id="crm-7", data=data)
    assert (c.name, c.phone, c.email, c.external_id, dict(c.data)) == (
        "Иван Петров",
        "+74951234567",
        "ivan@example.ru",
        "crm-7",
        data,
    )
    assert c.created_at.tzinfo is UTC and c.updated_at.tzinfo is UTC
    assert customers.get(c.id) == c
    with pytest.raises(TypeError):
        c.data["x"] = "y"  # type: ignore[index]

    changed = customers.update(c.id, email="", data={"account": "A-2002"})
    assert (changed.name, changed.email, dict(changed.data)) == ("Иван Петров", "", {"account": "A-2002"})
    assert customers.update(c.id) == changed  # nothing to change
    customers.delete(c.id)
    with pytest.raises(NotFoundError):
        customers.get(c.id)
    with pytest.raises(NotFoundError):
        customers.delete(c.id)
    with pytest.raises(NotFoundError):
        customers.update(c.id, name="x")
    assert count(engine) == 0


def test_find_by_phone_matches_every_spelling_newest_first(customers: CustomerRepository) -> None:
    older = customers.add("Old record", "74951234567")
    newer = customers.add("New record", "+7 495 123 45 67")
    customers.add("Someone else", "+74951234568")
    newer = customers.update(newer.id, name="New record, updated")
    for spelling in ("+74951234567", "74951234567", "7-495-123-45-67"):
        assert [c.id for c in customers.find_by_phone(spelling)] == [newer.id, older.id]
    assert customers.find_by_phone("84951234567") == []
    assert customers.find_by_phone("anonymous") == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"phone": "call me"}, "phone"),
        ({"phone": ""}, "phone"),
        ({"email": "not an address"}, "email"),
        ({"external_id": "x" * 129}, "external_id"),
        ({"data": ["a"]}, "data"),
        ({"data": {"k": 1}}, "data.k"),
        ({"data": {"": "v"}}, "data"),
        ({"data": {"k" * 65: "v"}}, "data." + "k" * 64),
        ({"data": {"k": "v\x00"}}, "data.k"),
        ({"data": {f"k{i}": "v" for i in range(101)}}, "data"),
        ({"data": {f"k{i}": "é" * 1000 for i in range(20)}}, "data"),
    ],
)
def test_invalid_customers_are_refused_and_nothing_is_written(
    customers: CustomerRepository, engine: Engine, kwargs: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"name": "Ivan", "phone": "+74951234567", **kwargs}
    with pytest.raises(ValidationError) as info:
        customers.add(**values)  # type: ignore[arg-type]
    assert info.value.field == field
    assert count(engine) == 0
    kept = customers.add("Ivan", "+74951234567")
    update = {k: v for k, v in kwargs.items()}
    with pytest.raises(ValidationError):
        customers.update(kept.id, **update)  # type: ignore[arg-type]
    assert customers.get(kept.id) == kept


def test_list_searches_name_phone_and_external_id(customers: CustomerRepository) -> None:
    ivan = customers.add("Ivan Petrov", "+74951234567", external_id="A-1")
    anna = customers.add("Anna 100% Sidorova", "+74957654321", external_id="B-2")
    bob = customers.add("Bob_Smith", "15550100")
    assert [c.id for c in customers.list()] == [anna.id, bob.id, ivan.id]  # by name
    assert [c.id for c in customers.list(search="PETROV")] == [ivan.id]
    assert [c.id for c in customers.list(search="100%")] == [anna.id]
    assert customers.list(search="0%S") == []  # '%' is literal, not a wildcard
    assert [c.id for c in customers.list(search="b_s")] == [bob.id]
    assert customers.list(search="b_x") == []  # '_' is literal too
    assert [c.id for c in customers.list(search="765")] == [anna.id]
    assert [c.id for c in customers.list(search="B-2")] == [anna.id]
    assert [c.id for c in customers.list(limit=1, offset=1)] == [bob.id]
    with pytest.raises(ValidationError):
        customers.list(limit=0)


def call(call_id: str, caller: str | None, minutes: int, **kw: object) -> CallRecord:
    values: dict[str, object] = {
        "call_id": call_id,
        "node": "node1",
        "caller_num": caller,
        "caller_name": None,
        "did": "5000",
        "destination": "queue:support",
        "status": "completed",
        "started_at": T0 + timedelta(minutes=minutes),
        **kw,
    }
    return CallRecord(**values)  # type: ignore[arg-type]


def test_recent_calls_from_a_number(customers: CustomerRepository, engine: Engine) -> None:
    CallRepository(engine).upsert_calls(
        [
            call("c1", "74951234567", 1, agent_number="1001", queue_name="support", talk_s=42.5),
            call("c2", "+74951234567", 2, status="abandoned"),
            call("c3", "+74951234567", 3),
            call("c4", "+74951234568", 4),
            call("c5", None, 5),
            call("c6", "74951234567", 6, status="active"),
        ]
    )
    got = customers.recent_calls_from("+7 495 123-45-67", 10)
    assert [c.call_id for c in got] == ["c6", "c3", "c2", "c1"]
    c1 = got[-1]
    assert (c1.started_at, c1.status, c1.agent_number, c1.queue_name, c1.talk_s) == (
        T0 + timedelta(minutes=1),
        "completed",
        "1001",
        "support",
        42.5,
    )
    assert [c.call_id for c in customers.recent_calls_from("74951234567", 2)] == ["c6", "c3"]
    assert [c.call_id for c in customers.recent_calls_from("74951234567", 2, exclude_call_id="c6")] == ["c3", "c2"]
    assert customers.recent_calls_from("unknown") == []
    with pytest.raises(ValidationError):
        customers.recent_calls_from("74951234567", 0)


def test_an_unreachable_database_is_reported_as_such() -> None:
    engine = create_engine_for("postgresql://hotline@127.0.0.1:1/none?connect_timeout=2")
    try:
        repo = CustomerRepository(engine)
        with pytest.raises(DatabaseUnavailableError):
            repo.find_by_phone("+74951234567")
        with pytest.raises(DatabaseUnavailableError):
            repo.recent_calls_from("+74951234567")
        with pytest.raises(DatabaseUnavailableError):
            repo.add("Ivan", "+74951234567")
    finally:
        engine.dispose()


def test_caller_history_reads_customers_and_earlier_calls_together(
    customers: CustomerRepository, engine: Engine
) -> None:
    """What the caller lookup reads for each inbound call, in one transaction: the same answers as the
    two separate reads."""
    older = customers.add("Old record", "74951234567")
    newer = customers.add("New record", "+7 495 123 45 67")
    customers.add("Someone else", "+74951234568")
    CallRepository(engine).upsert_calls(
        [call("c1", "74951234567", 1), call("c2", "+74951234567", 2), call("c3", "+74951234568", 3)]
    )
    found, calls = customers.caller_history("+74951234567", 5, exclude_call_id="c2")
    assert [c.id for c in found] == [newer.id, older.id] == [c.id for c in customers.find_by_phone("74951234567")]
    assert [c.call_id for c in calls] == ["c1"]
    assert calls == customers.recent_calls_from("+74951234567", 5, exclude_call_id="c2")
    assert customers.caller_history("anonymous") == ([], [])
    with pytest.raises(ValidationError):
        customers.caller_history("74951234567", 0)
