"""CallerLookupService against a real database and a real (fake) CRM over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from hotline.db.engine import create_engine_for
from hotline.db.repositories import CallRepository
from hotline.db.repositories.crm import CustomerRepository
from hotline.domain.calls import CallRecord
from hotline.errors import ConfigError
from hotline.features.crm import SCREEN_POP_EVENT, CallerLookupService, screen_pop_payload
from hotline.features.events import Event, EventBus
from tests.features.crm.conftest import FakeCrm
from tests.features.events.support import closed_port, eventually

NUMBER = "+74951234567"
T0 = datetime(2025, 11, 25, 10, 0, tzinfo=UTC)
TOKEN = "crm-token-for-tests"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def service(repo: CustomerRepository, crm_url: str = "", **kw: Any) -> AsyncIterator[CallerLookupService]:
    svc = CallerLookupService(repo, kw.pop("bus", None) or EventBus(), crm_url=crm_url, **kw)
    try:
        yield svc
    finally:
        await svc.aclose()


def call(call_id: str, caller: str, minutes: int, **kw: object) -> CallRecord:
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


async def test_lookup_merges_history_customer_and_crm(engine: Engine, crm: FakeCrm) -> None:
    repo = CustomerRepository(engine)
    customer = repo.add("Ivan Petrov", "+7 495 123-45-67", email="ivan@example.ru", data={"tier": "gold"})
    CallRepository(engine).upsert_calls(
        [
            call("c1", "74951234567", 1, agent_number="1001", queue_name="support", talk_s=42.5),
            call("c2", NUMBER, 2, status="abandoned"),
            call("c3", "+74950000000", 3),
            call("now", NUMBER, 4, status="active"),
        ]
    )
    crm.answer(NUMBER, {"name": 'Acme Ltd \u2014 Ivan "the" Petrov\n', "fields": {"account": "A-1", "open": 2}})
    async with service(repo, crm.url, crm_token=TOKEN) as svc:
        info = await svc.lookup("+7 (495) 123-45-67", did="5000", call_id="now")
    assert info.number == NUMBER
    assert info.name == "Acme Ltd \u2014 Ivan the Petrov"  # CRM first, sanitised
    assert info.customer == customer
    assert [c.call_id for c in info.earlier_calls] == ["c2", "c1"]  # newest first, this call left out
    assert (info.earlier_calls[1].agent_number, info.earlier_calls[1].talk_s) == ("1001", 42.5)
    assert dict(info.crm) == {"account": "A-1", "open": 2}
    assert info.sources == ("customers", "calls", "crm")
    assert info.errors == ()
    (req,) = crm.requests
    assert req.number == NUMBER
    assert req.raw_query == "number=%2B74951234567"  # '+' must not arrive as a space
    assert req.authorization == f"Bearer {TOKEN}"


async def test_name_precedence_crm_then_customer_then_none(customers: CustomerRepository, crm: FakeCrm) -> None:
    customers.add("Customer Name", NUMBER)
    crm.answer("+15550100", {"name": "Only In CRM"})
    async with service(customers, crm.url) as svc:
        info = await svc.lookup(NUMBER)  # the CRM does not know it (404)
        assert (info.name, info.sources, info.errors) == ("Customer Name", ("customers",), ())
        info = await svc.lookup("+15550100")
        assert (info.name, info.customer, info.sources) == ("Only In CRM", None, ("crm",))
        info = await svc.lookup("+15550199")
        assert (info.name, info.customer, info.earlier_calls, info.sources) == (None, None, (), ())
    # without a CRM at all
    async with service(customers) as svc:
        info = await svc.lookup(NUMBER)
        assert (info.name, info.sources, info.errors) == ("Customer Name", ("customers",), ())


async def test_found_false_and_empty_answers_mean_unknown(customers: CustomerRepository, crm: FakeCrm) -> None:
    crm.answer("1", {"found": False, "name": "ignored"})
    crm.answer("2", {})
    crm.answers["3"] = (204, b"")
    async with service(customers, crm.url) as svc:
        for number in ("1", "2", "3"):
            info = await svc.lookup(number)
            assert (info.name, info.sources, info.errors) == (None, (), ()), number


async def test_not_found_answers_keep_the_connection_open(customers: CustomerRepository, crm: FakeCrm) -> None:
    # Most callers are unknown to the CRM: each of them must not cost a new connection (with https, a TLS
    # handshake).  A not-found page over the size limit still means "not found".
    crm.answers["2"] = (204, b"")
    crm.answers["3"] = (404, b"<html>" + b"no such customer " * 20 + b"</html>")
    crm.answer("4", {"found": True, "name": "Known Customer"})
    crm.answers["6"] = (404, b"x" * 200_000)
    async with service(customers, crm.url, max_answer_bytes=4096) as svc:
        infos = [await svc.lookup(number) for number in ("1", "2", "3", "4", "5", "6")]
    assert [(i.name, i.errors) for i in infos] == [(None, ())] * 3 + [("Known Customer", ())] + [(None, ())] * 2
    assert [r.number for r in crm.requests] == ["1", "2", "3", "4", "5", "6"]
    assert len(set(crm.connections)) == 1, f"one connection for all lookups, not {crm.connections}"


async def test_a_not_found_answer_whose_body_stalls_is_still_not_found(
    customers: CustomerRepository, crm: FakeCrm
) -> None:
    crm.stalled.add("7")
    crm.answer("8", {"found": True, "name": "Next Caller"})
    async with service(customers, crm.url, crm_timeout=5, lookup_timeout=5) as svc:
        started = time.monotonic()
        info = await svc.lookup("7")
        assert (info.name, info.errors) == (None, ())  # the status said it: no error, no wait for the body
        assert time.monotonic() - started < 2
        assert svc.stats()["crm_errors"] == 0
        assert (await svc.lookup("8")).name == "Next Caller"


async def test_positive_and_negative_answers_are_cached_with_their_own_ttl(
    customers: CustomerRepository, crm: FakeCrm
) -> None:
    clock = FakeClock()
    crm.answer("111", {"name": "Known"})
    async with service(customers, crm.url, cache_ttl=300, negative_ttl=60, clock=clock) as svc:

        async def requests_after_lookups() -> list[str]:
            crm.requests.clear()
            assert (await svc.lookup("111")).name == "Known"
            assert (await svc.lookup("222")).name is None
            return [r.number for r in crm.requests]

        assert await requests_after_lookups() == ["111", "222"]
        assert await requests_after_lookups() == []  # both cached
        clock.now += 61
        assert await requests_after_lookups() == ["222"]  # the negative answer expired
        clock.now += 40
        assert await requests_after_lookups() == []  # the new negative answer is cached again
        clock.now = 1301  # 301 s after the first answer, 240 s after the second negative one
        assert await requests_after_lookups() == ["111", "222"]
        assert svc.stats()["cache_hits"] == 5


async def test_the_cache_is_bounded(customers: CustomerRepository, crm: FakeCrm) -> None:
    async with service(customers, crm.url, cache_size=2) as svc:
        for number in ("1", "2", "3"):
            await svc.lookup(number)
        assert svc.stats()["cached"] == 2
        crm.requests.clear()
        await svc.lookup("3")
        await svc.lookup("2")
        await svc.lookup("1")  # the least recently used entry was evicted
        assert [r.number for r in crm.requests] == ["1"]


async def test_concurrent_lookups_of_one_number_share_one_request(customers: CustomerRepository, crm: FakeCrm) -> None:
    crm.answer(NUMBER, {"name": "Shared"})
    gate = crm.hold()
    async with service(customers, crm.url, crm_timeout=5, lookup_timeout=5) as svc:
        lookups = [asyncio.create_task(svc.lookup(NUMBER)) for _ in range(10)]
        await asyncio.wait_for(crm.arrived.wait(), 5)
        gate.set()
        infos = await asyncio.gather(*lookups)
    assert {i.name for i in infos} == {"Shared"}
    assert len(crm.requests) == 1


async def test_a_slow_crm_is_cut_off_at_crm_timeout(customers: CustomerRepository, crm: FakeCrm) -> None:
    customers.add("From The Database", NUMBER)
    crm.hold()  # never answers during the test
    async with service(customers, crm.url, crm_timeout=0.2, lookup_timeout=0.5) as svc:
        started = time.monotonic()
        info = await svc.lookup(NUMBER)
        elapsed = time.monotonic() - started
    assert 0.19 <= elapsed < 1.5  # the error below says which timer fired
    assert info.name == "From The Database"
    assert info.errors == ("crm: no answer within 0.2 s",)


async def test_the_lookup_deadline_holds_and_a_late_crm_answer_fills_the_cache(
    customers: CustomerRepository, crm: FakeCrm
) -> None:
    crm.answer(NUMBER, {"name": "Late But Useful"})
    gate = crm.hold()
    async with service(customers, crm.url, crm_timeout=10, lookup_timeout=0.2) as svc:
        started = time.monotonic()
        info = await svc.lookup(NUMBER)
        elapsed = time.monotonic() - started
        assert 0.19 <= elapsed < 1.5  # not the CRM's 10 s
        assert info.name is None
        assert info.errors == ("crm: no answer within the lookup deadline (0.2 s)",)
        gate.set()  # the request goes on after the lookup gave up, and its answer is kept
        await eventually(lambda: svc.stats()["cached"] == 1, what="the late answer to be cached")
        info = await svc.lookup(NUMBER)
        assert (info.name, info.errors) == ("Late But Useful", ())
    assert len(crm.requests) == 1


async def test_an_unreachable_crm_is_an_error_note(customers: CustomerRepository) -> None:
    url = f"http://127.0.0.1:{closed_port()}/lookup?number={{number}}"
    customers.add("Still Found", NUMBER)
    async with service(customers, url) as svc:
        info = await svc.lookup(NUMBER)
        assert info.name == "Still Found"
        (error,) = info.errors
        assert error.startswith("crm: unreachable (ClientConnectorError: Cannot connect to host 127.0.0.1:"), error
        await svc.lookup(NUMBER)
        assert svc.stats()["crm_requests"] == 2  # errors are not cached


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b"<html>oops</html>", "answer is not UTF-8 JSON"),
        (200, b"\xff\xfe{}", "answer is not UTF-8 JSON"),
        (200, b'{"name": NaN}', "answer is not UTF-8 JSON"),
        (200, b"[" * 50_000 + b"]" * 50_000, "larger than 65536 bytes"),
        (200, b"[" * 20_000 + b"]" * 20_000, "answer is not UTF-8 JSON"),
        (200, b'["a list"]', "must be a JSON object"),
        (200, b'{"name": 42}', "'name' must be a string or null"),
        (200, json.dumps({"name": "x" * 1025}).encode(), "'name' longer than 1024"),
        (200, b'{"fields": ["a"]}', "'fields' must be an object"),
        (200, b'{"fields": {"a": {"nested": 1}}}', "field 'a' must be a string, number"),
        (200, json.dumps({"fields": {f"k{i}": i for i in range(51)}}).encode(), "more than 50"),
        (200, json.dumps({"fields": {"a": "x" * 1025}}).encode(), "field 'a' is too long"),
        (200, json.dumps({"fields": {"": 1}}).encode(), "field names must be 1 to 64"),
        (200, b'{"found": "yes"}', "'found' must be true, false"),
        (200, b'{"url": "javascript:alert(1)"}', "'url' must be an http(s) link"),
        (500, b"Internal error", "HTTP 500 Internal Server Error"),
        (302, b"", "HTTP 302 Found"),
    ],
)
async def test_invalid_answers_are_ignored_with_a_logged_reason(
    customers: CustomerRepository,
    crm: FakeCrm,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    reason: str,
) -> None:
    customers.add("Fallback Name", NUMBER)
    crm.answers[NUMBER] = (status, body)
    async with service(customers, crm.url) as svc:
        with caplog.at_level(logging.WARNING, logger="hotline.features.crm.lookup"):
            info = await svc.lookup(NUMBER)
        assert info.name == "Fallback Name"
        assert info.sources == ("customers",)
        (error,) = info.errors
        assert error.startswith("crm: ignored answer:") and reason in error, error
        assert any(reason in r.getMessage() and r.exc_info is None for r in caplog.records)
        await svc.lookup(NUMBER)
    assert len(crm.requests) == 2  # not cached


async def test_an_endless_answer_is_cut_at_the_size_limit(customers: CustomerRepository, crm: FakeCrm) -> None:
    crm.streamed[NUMBER] = 10 * 1024 * 1024  # chunked, no Content-Length
    async with service(customers, crm.url, max_answer_bytes=4096, crm_timeout=5, lookup_timeout=5) as svc:
        info = await svc.lookup(NUMBER)
    assert info.errors == ("crm: ignored answer: answer larger than 4096 bytes",)


@pytest.mark.parametrize("number", ["", "anonymous", "unknown", "+", "1" * 40, "<sip:1001@host>"])
async def test_unusable_numbers_are_not_looked_up(customers: CustomerRepository, crm: FakeCrm, number: str) -> None:
    async with service(customers, crm.url) as svc:
        info = await svc.lookup(number)
    assert (info.number, info.name, info.customer, info.sources, info.errors) == ("", None, None, (), ())
    assert crm.requests == []


async def test_the_did_placeholder_is_sent_and_part_of_the_cache_key(
    customers: CustomerRepository, crm: FakeCrm
) -> None:
    url = crm.url + "&did={did}"
    crm.answer(NUMBER, {"name": "Known"})
    async with service(customers, url) as svc:
        await svc.lookup(NUMBER, did="5000")
        await svc.lookup(NUMBER, did="5000")
        await svc.lookup(NUMBER, did="5001")
    assert [(r.number, r.did) for r in crm.requests] == [(NUMBER, "5000"), (NUMBER, "5001")]


async def test_an_unreachable_database_is_an_error_note(crm: FakeCrm) -> None:
    engine = create_engine_for(f"postgresql://hotline@127.0.0.1:{closed_port()}/none?connect_timeout=2")
    crm.answer(NUMBER, {"name": "From The CRM"})
    try:
        async with service(CustomerRepository(engine), crm.url) as svc:
            info = await svc.lookup(NUMBER)
            assert info.name == "From The CRM"
            (error,) = info.errors
            assert error.startswith("database: customer lookup failed")
            await eventually(lambda: svc.stats()["db_errors"] == 1, what="the failure to be counted")
    finally:
        engine.dispose()


async def test_a_blocked_database_does_not_hold_the_lookup(pg_url: str, crm: FakeCrm) -> None:
    engine = create_engine_for(pg_url)
    locker = engine.connect()
    try:
        locker.exec_driver_sql("BEGIN")
        locker.exec_driver_sql("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")  # readers now wait
        crm.answer(NUMBER, {"name": "From The CRM"})
        async with service(CustomerRepository(engine), crm.url, lookup_timeout=0.3, max_db_reads=1) as svc:
            started = time.monotonic()
            first = await svc.lookup(NUMBER)
            assert time.monotonic() - started < 1.5  # the lock is held until the test lets go
            assert first.name == "From The CRM"
            assert first.errors == ("database: no answer within 0.3 s",)
            # the first read still waits in its thread: the second lookup does not add another
            second = await svc.lookup(NUMBER)
            assert second.errors == ("database: skipped, 1 earlier reads still running",)
            await asyncio.to_thread(locker.rollback)
            await eventually(lambda: svc.stats()["db_reads_running"] == 0, what="the blocked read to finish")
            third = await svc.lookup(NUMBER)
            assert third.errors == ()
    finally:
        locker.close()
        engine.dispose()


async def test_screen_pop_publishes_the_calls_lookup(customers: CustomerRepository, crm: FakeCrm) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    customer = customers.add("Ivan Petrov", NUMBER, external_id="X-1", data={"tier": "gold"})
    crm.answer(NUMBER, {"name": "Ivan P.", "fields": {"account": "A-1"}, "url": "https://crm.example/a/1"})
    async with service(customers, crm.url, bus=bus) as svc:
        info = await svc.lookup(NUMBER, call_id="call-1")
        event = await svc.screen_pop(call_id="call-1", number=NUMBER, agent="1001", queue="support")
        # a call the router never looked up gets a lookup of its own
        other = await svc.screen_pop(call_id="call-2", number="+15550100", agent="1002")
    assert seen == [event, other]
    assert len(crm.requests) == 2
    assert event.name == SCREEN_POP_EVENT
    expected = {
        "call_id": "call-1",
        "agent": "1001",
        "queue": "support",
        "caller": {"number": NUMBER, "name": "Ivan P."},
        "customer": {
            "id": customer.id,
            "name": "Ivan Petrov",
            "phone": NUMBER,
            "email": "",
            "external_id": "X-1",
            "data": {"tier": "gold"},
        },
        "earlier_calls": [],
        "crm": {"fields": {"account": "A-1"}, "url": "https://crm.example/a/1"},
        "sources": ["customers", "crm"],
        "errors": [],
    }
    assert event.as_dict()["data"] == expected == screen_pop_payload(info, "call-1", "1001", "support")
    assert other.as_dict()["data"]["caller"] == {"number": "+15550100", "name": None}  # type: ignore[index]
    assert json.loads(event.to_json())["data"] == expected


def test_earlier_calls_in_the_payload_are_json() -> None:
    from hotline.db.repositories.crm import EarlierCall
    from hotline.features.crm import CallerInfo

    info = CallerInfo(
        "1", None, None, (EarlierCall("c1", T0, "completed", "1001", "support", 1.5),), {}, None, ("calls",), ()
    )
    payload = screen_pop_payload(info, "c2", "1001", None)
    assert payload["earlier_calls"] == [
        {
            "call_id": "c1",
            "started_at": "2025-11-25T10:00:00Z",
            "status": "completed",
            "agent_number": "1001",
            "queue_name": "support",
            "talk_s": 1.5,
        }
    ]
    assert payload["crm"] is None
    json.dumps(payload)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crm_url": "https://crm.example/lookup"}, "{number}"),
        ({"crm_url": "ftp://crm.example/{number}"}, "http://"),
        ({"crm_url": "https://user:pw@crm.example/{number}"}, "credentials"),
        ({"crm_url": "https://crm.example/{number}/{id}"}, "placeholders"),
        ({"crm_url": "https://crm.example:99999/{number}"}, "not a valid URL"),
        ({"crm_url": "https://crm.example/{number} x"}, "spaces"),
        ({"crm_token": "has space"}, "crm_token"),
        ({"crm_timeout": 0}, "crm_timeout"),
        ({"lookup_timeout": float("inf")}, "lookup_timeout"),
        ({"cache_ttl": -1}, "crm_cache_ttl"),
        ({"negative_ttl": True}, "crm_negative_ttl"),
        ({"cache_size": 0}, "crm_cache_size"),
    ],
)
def test_bad_configuration_is_refused(customers: CustomerRepository, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        CallerLookupService(customers, EventBus(), **kwargs)


async def test_screen_pop_nowait_never_waits(customers: CustomerRepository, crm: FakeCrm) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    crm.answer(NUMBER, {"name": "Known"})
    gate = crm.hold()
    async with service(customers, crm.url, bus=bus, crm_timeout=5, lookup_timeout=5) as svc:
        # not looked up yet: the pop comes from a task of its own, once the (held) CRM answers
        assert svc.screen_pop_nowait(call_id="call-1", number=NUMBER, agent="1001") is None
        await asyncio.wait_for(crm.arrived.wait(), 5)
        assert seen == []
        gate.set()
        await eventually(lambda: len(seen) == 1, what="the screen pop")
        assert seen[0].data["caller"] == {"number": NUMBER, "name": "Known"}
        # looked up already: published at once, without another request
        event = svc.screen_pop_nowait(call_id="call-1", number=NUMBER, agent="1002", queue="sales")
        assert event is not None and seen[-1] is event
        assert (event.data["agent"], event.data["queue"]) == ("1002", "sales")
        # aclose cancels a pop still waiting for its lookup
        crm.hold()
        crm.arrived.clear()
        assert svc.screen_pop_nowait(call_id="call-2", number="+15550100", agent="1001") is None
        await asyncio.wait_for(crm.arrived.wait(), 5)
    assert len(seen) == 2
    assert len(crm.requests) == 2
