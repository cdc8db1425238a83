"""WebhookService end to end: bus -> delivery rows -> signed POSTs to a real receiver, retries, restarts."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine

from hotline.db.repositories.webhooks import NewDelivery, WebhookRepository
from hotline.errors import ConfigError, ValidationError
from hotline.features.events import EventBus
from hotline.features.webhooks import backoff_delay, event_matches, sign
from tests.features.events.support import closed_port, eventually
from tests.features.webhooks.conftest import Receiver, make_service, running, verify


async def delivery_state(repo: WebhookRepository, webhook_id: int) -> list[tuple[str, int]]:
    return [(d.state, d.attempts) for d in await asyncio.to_thread(repo.list_deliveries, webhook_id)]


async def test_an_event_is_delivered_signed_and_logged(engine: Engine, receiver: Receiver) -> None:
    bus = EventBus()
    service = make_service(engine, bus)
    repo = WebhookRepository(engine)
    async with running(service):
        created = await service.add_webhook(receiver.url("a"))
        receiver.secrets["a"] = created.secret
        before = time.time()
        event = bus.publish("call.ended", {"call_id": "c-1", "caller": {"number": "+74951234567"}, "talk_s": 42.5})
        await eventually(lambda: len(receiver.got) == 1, what="the delivery")
        await eventually(
            lambda: _state_is(repo, created.webhook.id, [("delivered", 1)]), what="the row to say delivered"
        )
    (got,) = receiver.got
    (row,) = await asyncio.to_thread(repo.list_deliveries, created.webhook.id)
    assert got.json == {
        "id": event.id,
        "event": "call.ended",
        "ts": event.as_dict()["ts"],
        "data": {"call_id": "c-1", "caller": {"number": "+74951234567"}, "talk_s": 42.5},
    }
    assert got.body.decode() == event.to_json() == row.payload
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-hotline-event"] == "call.ended"
    assert got.headers["x-hotline-delivery"] == str(row.id)
    assert got.headers["x-hotline-attempt"] == "1"
    assert before - 1 <= int(got.headers["x-hotline-timestamp"]) <= time.time()
    assert got.headers["x-hotline-signature"] == sign(created.secret, got.headers["x-hotline-timestamp"], got.body)
    assert (row.event_id, row.event, row.state, row.attempts, row.last_status, row.last_error) == (
        event.id,
        "call.ended",
        "delivered",
        1,
        204,
        None,
    )
    assert row.delivered_at is not None and row.next_attempt_at is None
    assert service.stats()["delivered"] == 1


async def _state_is(repo: WebhookRepository, webhook_id: int, expected: list[tuple[str, int]]) -> bool:
    return await delivery_state(repo, webhook_id) == expected


async def test_the_documented_check_rejects_forged_stale_and_tampered_deliveries(receiver: Receiver) -> None:
    secret = "the-real-secret-of-hook-a"
    receiver.secrets["a"] = secret
    body = b'{"id":"x","event":"call.ended","ts":"2025-11-25T10:00:00.000000Z","data":{}}'

    async def post(timestamp: str, signature: str, content: bytes = body) -> int:
        headers = {"X-Hotline-Timestamp": timestamp, "X-Hotline-Signature": signature}
        async with httpx.AsyncClient(trust_env=False) as client:
            return (await client.post(receiver.url("a"), content=content, headers=headers)).status_code

    now = str(int(time.time()))
    stale = str(int(time.time()) - 301)
    assert await post(now, sign(secret, now, body)) == 204
    assert await post(now, sign("a-guessed-secret-value", now, body)) == 401
    assert await post(now, sign(secret, now, body), body.replace(b"ended", b"ENDED")) == 401
    assert await post(stale, sign(secret, stale, body)) == 401  # a replay outside the window
    assert await post(now, sign(secret, now, body).removeprefix("sha256=")) == 401
    assert await post("soon", sign(secret, "soon", body)) == 401
    assert receiver.rejected == 5 and len(receiver.got) == 1


def test_the_signature_matches_openssl() -> None:
    body = b'{"id":"0190f000-0000-7000-8000-0000000000aa","event":"agent.state","data":{"n":"\xc3\xa9"}}'
    secret, timestamp = "k2Hd0p0RZC7uYxh3o2rXyq0b0l8W7dY0", "1764064800"
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret, "-r"],
        input=timestamp.encode() + b"." + body,
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout.decode()
    signature = sign(secret, timestamp, body)
    assert signature == "sha256=" + out.split()[0]
    headers = {"X-Hotline-Timestamp": timestamp, "X-Hotline-Signature": signature}
    assert verify(secret, headers, body, float(timestamp) + 300)
    assert not verify(secret, headers, body, float(timestamp) + 301)
    assert not verify(secret, headers, body + b" ", float(timestamp))


async def test_failed_attempts_are_retried_with_backoff_until_delivered(engine: Engine, receiver: Receiver) -> None:
    bus = EventBus()
    service = make_service(engine, bus, backoff_base=0.05, backoff_max=10.0)
    repo = WebhookRepository(engine)
    async with running(service):
        created = await service.add_webhook(receiver.url("a"))
        receiver.secrets["a"] = created.secret
        receiver.fail_first["a"] = 2
        event = bus.publish("agent.state", {"agent": "1001", "state": "available"})
        await eventually(lambda: _state_is(repo, created.webhook.id, [("delivered", 3)]), what="the third attempt")
    attempts = receiver.for_hook("a")
    assert [r.headers["x-hotline-attempt"] for r in attempts] == ["1", "2", "3"]
    assert {r.headers["x-hotline-delivery"] for r in attempts} == {attempts[0].headers["x-hotline-delivery"]}
    assert {r.json["id"] for r in attempts} == {event.id}
    # back-off: at least half of 0.05 s, then of 0.1 s (jitter takes 50-100 %)
    assert attempts[1].at - attempts[0].at >= 0.025
    assert attempts[2].at - attempts[1].at >= 0.05
    (row,) = await asyncio.to_thread(repo.list_deliveries, created.webhook.id)
    assert (row.last_status, row.last_error) == (204, None)
    assert service.stats()["retried"] == 2


async def test_a_delivery_fails_after_max_attempts_and_can_be_sent_again(engine: Engine, receiver: Receiver) -> None:
    bus = EventBus()
    service = make_service(engine, bus, max_attempts=3)
    repo = WebhookRepository(engine)
    async with running(service):
        created = await service.add_webhook(receiver.url("a"))
        receiver.secrets["a"] = created.secret
        receiver.fail_first["a"] = 10
        bus.publish("call.ended", {"call_id": "c-1"})
        await eventually(lambda: _state_is(repo, created.webhook.id, [("failed", 3)]), what="the delivery to fail")
        (row,) = await asyncio.to_thread(repo.list_deliveries, created.webhook.id)
        assert (row.last_status, row.last_error, row.delivered_at) == (503, "HTTP 503: maintenance", None)
        assert len(receiver.for_hook("a")) == 3
        assert service.stats()["failed"] == 1
        receiver.fail_first["a"] = 0
        again = await service.redeliver(row.id)
        assert (again.state, again.attempts) == ("pending", 0)
        await eventually(lambda: _state_is(repo, created.webhook.id, [("delivered", 1)]), what="the redelivery")


async def test_a_redirect_is_a_failed_attempt_not_followed(sqlite_engine: Engine, receiver: Receiver) -> None:
    # a signed event must reach only the URL the administrator configured
    bus = EventBus()
    service = make_service(sqlite_engine, bus, max_attempts=1)
    repo = WebhookRepository(sqlite_engine)
    async with running(service):
        moved = await service.add_webhook(receiver.url("moved"))
        receiver.secrets["moved"] = receiver.secrets["elsewhere"] = moved.secret
        receiver.redirect["moved"] = "elsewhere"
        bus.publish("call.ended", {})
        await eventually(lambda: _state_is(repo, moved.webhook.id, [("failed", 1)]), what="the redirected attempt")
    (row,) = await asyncio.to_thread(repo.list_deliveries, moved.webhook.id)
    assert (row.last_status, row.last_error) == (302, "HTTP 302: moved")
    assert receiver.for_hook("elsewhere") == [] and len(receiver.for_hook("moved")) == 1


async def test_timeouts_and_connection_errors_are_logged_in_the_row(sqlite_engine: Engine, receiver: Receiver) -> None:
    bus = EventBus()
    service = make_service(sqlite_engine, bus, max_attempts=1, timeout=0.2)
    repo = WebhookRepository(sqlite_engine)
    receiver.hold()
    async with running(service, grace=0.1):
        down = await service.add_webhook(f"http://127.0.0.1:{closed_port()}/hook")
        slow = await service.add_webhook(receiver.url("slow"))
        receiver.secrets["slow"] = slow.secret
        bus.publish("call.ended", {})
        await eventually(lambda: _state_is(repo, down.webhook.id, [("failed", 1)]), what="the refused connection")
        await eventually(lambda: _state_is(repo, slow.webhook.id, [("failed", 1)]), what="the timeout")
    (refused,) = await asyncio.to_thread(repo.list_deliveries, down.webhook.id)
    (timed_out,) = await asyncio.to_thread(repo.list_deliveries, slow.webhook.id)
    assert refused.last_status is None and refused.last_error is not None
    assert refused.last_error.startswith("ClientConnectorError: Cannot connect to host"), refused.last_error
    assert (timed_out.last_status, timed_out.last_error) == (None, "no answer within 0.2 s")


async def test_filters_choose_the_events_of_each_webhook(sqlite_engine: Engine, receiver: Receiver) -> None:
    bus = EventBus()
    service = make_service(sqlite_engine, bus)
    async with running(service):
        for name, events in [("all", "*"), ("agents", "agent.*"), ("two", "call.ended, call.screen_pop")]:
            receiver.secrets[name] = (await service.add_webhook(receiver.url(name), events=events)).secret
        off = await service.add_webhook(receiver.url("off"), enabled=False)
        receiver.secrets["off"] = off.secret
        for name in ("agent.state", "agentx.state", "call.ended", "call.answered", "call.screen_pop", "agent"):
            bus.publish(name, {})
        await eventually(lambda: len(receiver.got) == 6 + 1 + 2, what="every matching delivery")
        await eventually(lambda: service.stats()["in_flight"] == 0, what="the senders to finish")

    def events(name: str) -> list[str]:
        return sorted(r.json["event"] for r in receiver.for_hook(name))

    everything = ["agent.state", "agentx.state", "call.ended", "call.answered", "call.screen_pop", "agent"]
    assert events("all") == sorted(everything)
    assert events("agents") == ["agent.state"]
    assert events("two") == ["call.ended", "call.screen_pop"]
    assert events("off") == []
    assert service.stats()["created"] == 9


async def test_a_disabled_webhook_keeps_its_deliveries_until_enabled(sqlite_engine: Engine, receiver: Receiver) -> None:
    bus = EventBus()
    service = make_service(sqlite_engine, bus)
    repo = WebhookRepository(sqlite_engine)
    receiver.hold()
    async with running(service):
        created = await service.add_webhook(receiver.url("a"))
        receiver.secrets["a"] = created.secret
        bus.publish("call.ended", {"n": 1})
        await eventually(lambda: receiver.active == 1, what="the first attempt to arrive")
        await service.enable_webhook(created.webhook.id, False)
        bus.publish("call.ended", {"n": 2})  # not for a disabled webhook
        assert receiver.gate is not None
        receiver.gate.set()
        await eventually(lambda: _state_is(repo, created.webhook.id, [("delivered", 1)]), what="the first delivery")
        await service.enable_webhook(created.webhook.id, True)
        bus.publish("call.ended", {"n": 3})
        await eventually(lambda: len(receiver.got) == 2, what="the third event")
    assert [r.json["data"]["n"] for r in receiver.got] == [1, 3]


async def test_pending_rows_survive_a_restart(engine: Engine, receiver: Receiver) -> None:
    repo = WebhookRepository(engine)
    created = await asyncio.to_thread(repo.add, receiver.url("a"))
    receiver.secrets["a"] = created.secret
    hook = created.webhook.id
    now = datetime.now(UTC)
    body = '{"id":"0190f000-0000-7000-8000-0000000000aa","event":"call.ended","ts":"x","data":{}}'
    # rows a previous run left: one due (never sent, or retry due), one leased by a sender still running
    due, leased = await asyncio.to_thread(
        repo.create_deliveries,
        [
            NewDelivery(hook, "0190f000-0000-7000-8000-0000000000aa", "call.ended", body, now - timedelta(seconds=5)),
            NewDelivery(hook, "0190f000-0000-7000-8000-0000000000bb", "call.ended", body, now + timedelta(hours=1)),
        ],
        now=now,
    )
    assert due is not None and leased is not None
    service = make_service(engine)
    async with running(service):
        await eventually(lambda: len(receiver.got) == 1, what="the due row to be sent")
        await eventually(lambda: service.stats()["in_flight"] == 0, what="the sender to finish")
    assert receiver.got[0].headers["x-hotline-delivery"] == str(due)
    assert receiver.got[0].body.decode() == body
    assert (await asyncio.to_thread(repo.get_delivery, due)).state == "delivered"
    assert (await asyncio.to_thread(repo.get_delivery, leased)).state == "pending"


async def test_stop_gives_unfinished_deliveries_back_for_the_next_run(engine: Engine, receiver: Receiver) -> None:
    bus = EventBus()
    repo = WebhookRepository(engine)
    gate = receiver.hold()
    first = make_service(engine, bus)
    async with running(first, grace=0.05):
        created = await first.add_webhook(receiver.url("a"))
        receiver.secrets["a"] = created.secret
        bus.publish("call.ended", {"n": 1})
        await eventually(lambda: receiver.active == 1, what="the attempt to reach the receiver")
    (row,) = await asyncio.to_thread(repo.list_deliveries, created.webhook.id)
    assert (row.state, row.attempts) == ("pending", 0)
    assert row.next_attempt_at is not None and row.next_attempt_at <= datetime.now(UTC)
    bus.publish("call.ended", {"n": 2})  # the stopped service no longer listens
    gate.set()
    await eventually(lambda: receiver.active == 0, what="the abandoned request to end")
    receiver.got.clear()
    second = make_service(engine, EventBus())
    async with running(second):
        await eventually(lambda: _state_is(repo, created.webhook.id, [("delivered", 1)]), what="the resumed delivery")
    assert [r.json["data"] for r in receiver.got] == [{"n": 1}]


async def test_concurrency_is_bounded_and_the_overflow_waits_in_the_database(
    engine: Engine, receiver: Receiver
) -> None:
    bus = EventBus()
    service = make_service(engine, bus, concurrency=2)
    repo = WebhookRepository(engine)
    gate = receiver.hold()
    async with running(service):
        created = await service.add_webhook(receiver.url("a"))
        receiver.secrets["a"] = created.secret
        for n in range(7):
            bus.publish("call.ended", {"n": n})
        await eventually(lambda: receiver.active == 2, what="two attempts in flight")
        await eventually(lambda: service.stats()["queued"] == 0, what="the events to be written")
        states = await delivery_state(repo, created.webhook.id)
        assert states == [("pending", 0)] * 7  # all seven in the database, two of them being sent
        assert service.stats()["in_flight"] == 2
        gate.set()
        await eventually(lambda: _state_is(repo, created.webhook.id, [("delivered", 1)] * 7), what="all seven")
    assert receiver.max_active == 2
    assert sorted(r.json["data"]["n"] for r in receiver.got) == list(range(7))


async def test_a_full_intake_drops_events_without_blocking_the_publisher(
    sqlite_engine: Engine, receiver: Receiver
) -> None:
    bus = EventBus()
    service = make_service(sqlite_engine, bus, queue_size=2)
    created = await service.add_webhook(receiver.url("a"))
    receiver.secrets["a"] = created.secret
    await service.start()  # subscribed, but its writer is not running yet: nothing drains the intake
    for n in range(5):
        bus.publish("call.ended", {"n": n})
    assert service.stats()["dropped"] == 3
    assert bus.subscriber_errors == 0
    task = asyncio.create_task(service.run())
    try:
        await eventually(lambda: len(receiver.got) == 2, what="the two queued events")
    finally:
        await service.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sorted(r.json["data"]["n"] for r in receiver.got) == [0, 1]


async def test_an_oversized_event_is_not_stored(sqlite_engine: Engine, receiver: Receiver) -> None:
    bus = EventBus()
    service = make_service(sqlite_engine, bus)
    repo = WebhookRepository(sqlite_engine)
    async with running(service):
        created = await service.add_webhook(receiver.url("a"))
        receiver.secrets["a"] = created.secret
        bus.publish("call.ended", {"blob": "x" * 70_000})
        bus.publish("call.ended", {"blob": "small"})
        await eventually(lambda: len(receiver.got) == 1, what="the small event")
    assert receiver.got[0].json["data"] == {"blob": "small"}
    assert len(await delivery_state(repo, created.webhook.id)) == 1
    assert service.stats()["dropped"] == 1


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "http://127.0.0.1/x#f", "http://" + "a" * 1100]
)
async def test_add_webhook_validates_the_url(sqlite_engine: Engine, url: str) -> None:
    service = make_service(sqlite_engine)
    with pytest.raises(ValidationError) as info:
        await service.add_webhook(url)
    assert info.value.field == "url"
    assert await service.list_webhooks() == []


async def test_the_secret_is_returned_once(sqlite_engine: Engine) -> None:
    service = make_service(sqlite_engine)
    created = await service.add_webhook("https://example.com/hook", events="agent.*")
    assert len(created.secret) >= 43
    (listed,) = await service.list_webhooks()
    assert listed == created.webhook and not hasattr(listed, "secret")
    await service.delete_webhook(listed.id)
    assert await service.list_webhooks() == []


@pytest.mark.parametrize(
    ("tokens", "name", "match"),
    [
        (("*",), "anything.at_all", True),
        (("agent.*",), "agent.state", True),
        (("agent.*",), "agent.state.changed", True),
        (("agent.*",), "agent", False),
        (("agent.*",), "agentx.state", False),
        (("call.ended", "call.answered"), "call.answered", True),
        (("call.ended",), "call.ended_late", False),
    ],
)
def test_event_matches(tokens: tuple[str, ...], name: str, match: bool) -> None:
    assert event_matches(tokens, name) is match


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, nominal in [(1, 5.0), (2, 10.0), (3, 20.0), (8, 640.0), (12, 3600.0), (500, 3600.0)]:
        delays = [backoff_delay(attempt, 5.0, 3600.0, rng) for _ in range(200)]
        assert all(nominal / 2 <= d <= nominal for d in delays)
        assert max(delays) - min(delays) > nominal / 4  # jittered, not constant


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"timeout": 0}, "webhook_timeout"),
        ({"max_attempts": 0}, "webhook_max_attempts"),
        ({"backoff_base": -1}, "webhook_backoff_base"),
        ({"concurrency": 0}, "webhook_concurrency"),
        ({"queue_size": True}, "webhook_queue_size"),
    ],
)
def test_bad_settings_are_refused(sqlite_engine: Engine, kwargs: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        make_service(sqlite_engine, **kwargs)
