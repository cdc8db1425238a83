"""WebhookRepository: validation on creation, secrets shown once, the delivery log and its leases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.db import tables as t
from hotline.db.repositories.webhooks import (
    NewDelivery,
    WebhookRepository,
    parse_event_filter,
    validate_webhook_url,
)
from hotline.errors import ConflictError, NotFoundError, ValidationError

NOW = datetime(2025, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
EVENT_ID = "0190f000-0000-7000-8000-0000000000aa"


@pytest.fixture
def hooks(engine: Engine) -> WebhookRepository:
    return WebhookRepository(engine)


def rows(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def new(webhook_id: int, n: int = 0, due: datetime = NOW, payload: str = '{"x":1}') -> NewDelivery:
    return NewDelivery(webhook_id, f"{EVENT_ID[:-2]}{n:02d}", "call.ended", payload, due)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "https://example.com/a/b?c=d&e=%20", "HTTPS://EXAMPLE.COM", "http://[::1]:9/x"],
)
def test_valid_urls(url: str) -> None:
    assert validate_webhook_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "empty"),
        ("ftp://example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://token@example.com/", "credentials"),
        ("http:///path", "host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com:port/", "not a valid URL"),
        ("http://example.com/a b", "spaces"),
        ("http://example.com/\n", "control"),
        ("http://example.com/#frag", "fragment"),
        ("http://example.com/" + "a" * 1010, "at most 1024"),
        (42, "string"),
    ],
)
def test_invalid_urls(url: object, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as info:
        validate_webhook_url(url)
    assert info.value.field == "url"


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("*", ("*",)),
        ("call.ended, agent.*", ("call.ended", "agent.*")),
        ("agent.*,agent.*", ("agent.*",)),
        ("call.ended,*", ("*",)),
    ],
)
def test_event_filters(text: str, tokens: tuple[str, ...]) -> None:
    assert parse_event_filter(text) == tokens


@pytest.mark.parametrize("text", ["", " ", "Call.Ended", "call..ended", "call.ended,", "*.call", "agent*", "a.*.b"])
def test_invalid_event_filters(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_event_filter(text)
    assert info.value.field == "events"


def test_the_secret_is_generated_and_shown_only_on_creation(hooks: WebhookRepository) -> None:
    created = hooks.add("http://127.0.0.1:9/hook", events="agent.* , call.ended")
    assert len(created.secret) == 43  # token_urlsafe(32)
    assert created.secret not in repr(created)
    hook = created.webhook
    assert (hook.url, hook.events, hook.enabled) == ("http://127.0.0.1:9/hook", "agent.*,call.ended", True)
    assert hooks.get(hook.id) == hook == hooks.list()[0]
    assert not hasattr(hook, "secret")
    (target,) = hooks.targets()
    assert (target.id, target.events, target.secret) == (hook.id, ("agent.*", "call.ended"), created.secret)
    assert created.secret not in repr(target)
    other = hooks.add("http://127.0.0.1:9/other")
    assert other.secret != created.secret
    given = hooks.add("http://127.0.0.1:9/given", secret="s3cr3t-from-the-receiver")
    assert given.secret == "s3cr3t-from-the-receiver"


@pytest.mark.parametrize("secret", ["short", "has space in it!!", "x" * 129, "ünïcode-secret-123456"])
def test_invalid_secrets_are_refused(hooks: WebhookRepository, engine: Engine, secret: str) -> None:
    with pytest.raises(ValidationError) as info:
        hooks.add("http://127.0.0.1:9/hook", secret=secret)
    assert info.value.field == "secret"
    assert rows(engine, t.webhooks) == 0


def test_enable_disable_and_delete(hooks: WebhookRepository, engine: Engine) -> None:
    a = hooks.add("http://127.0.0.1:9/a").webhook
    b = hooks.add("http://127.0.0.1:9/b", enabled=False).webhook
    assert [x.id for x in hooks.targets()] == [a.id]
    assert hooks.enable(b.id).enabled is True
    assert hooks.enable(a.id, False).enabled is False
    assert hooks.enable(a.id, False).enabled is False  # unchanged is fine
    assert [x.id for x in hooks.targets()] == [b.id]
    hooks.create_deliveries([new(a.id, 1), new(b.id, 2)], now=NOW)
    hooks.delete(a.id)
    assert [x.id for x in hooks.list()] == [b.id]
    assert rows(engine, t.webhook_deliveries) == 1
    for call in (lambda: hooks.delete(a.id), lambda: hooks.enable(a.id), lambda: hooks.get(a.id)):
        with pytest.raises(NotFoundError):
            call()


def test_deliveries_are_created_in_order_and_skip_deleted_webhooks(hooks: WebhookRepository) -> None:
    a = hooks.add("http://127.0.0.1:9/a").webhook
    gone = 999_999
    ids = hooks.create_deliveries([new(a.id, 1), new(gone, 2), new(a.id, 3)], now=NOW)
    assert ids[1] is None and ids[0] is not None and ids[2] is not None and ids[0] < ids[2]
    first = hooks.get_delivery(ids[0])
    assert (first.webhook_id, first.event, first.payload, first.state, first.attempts) == (
        a.id,
        "call.ended",
        '{"x":1}',
        "pending",
        0,
    )
    assert (first.created_at, first.next_attempt_at, first.delivered_at, first.last_status) == (NOW, NOW, None, None)
    assert hooks.create_deliveries([], now=NOW) == []
    assert [d.id for d in hooks.list_deliveries(a.id)] == [ids[2], ids[0]]


@pytest.mark.parametrize(
    ("delivery", "field"),
    [
        (NewDelivery(1, "", "call.ended", "{}", NOW), "event_id"),
        (NewDelivery(1, EVENT_ID, "Call", "{}", NOW), "event"),
        (NewDelivery(1, EVENT_ID, "call.ended", "é" * 30_001, NOW), "payload"),
        (NewDelivery(1, EVENT_ID, "call.ended", "{}", datetime(2025, 1, 1)), "next_attempt_at"),
        (NewDelivery(0, EVENT_ID, "call.ended", "{}", NOW), "webhook_id"),
    ],
)
def test_invalid_deliveries_are_refused(
    hooks: WebhookRepository, engine: Engine, delivery: NewDelivery, field: str
) -> None:
    hooks.add("http://127.0.0.1:9/a")
    with pytest.raises(ValidationError) as info:
        hooks.create_deliveries([new(1, 1), delivery], now=NOW)
    assert info.value.field == field
    assert rows(engine, t.webhook_deliveries) == 0


def test_claim_takes_due_rows_of_enabled_webhooks_once(hooks: WebhookRepository) -> None:
    a = hooks.add("http://127.0.0.1:9/a", secret="secret-of-webhook-a").webhook
    off = hooks.add("http://127.0.0.1:9/off", enabled=False).webhook
    later = NOW + timedelta(minutes=5)
    ids = hooks.create_deliveries(
        [new(a.id, 1, NOW - timedelta(seconds=2)), new(a.id, 2, later), new(off.id, 3), new(a.id, 4)], now=NOW
    )
    lease = NOW + timedelta(hours=1)
    claimed = hooks.claim_due(now=NOW, lease_until=lease, limit=10)
    assert [d.id for d in claimed] == [ids[0], ids[3]]  # oldest due first; not later, not the disabled one
    d = claimed[0]
    assert (d.url, d.secret, d.attempts, d.event, d.payload) == (
        "http://127.0.0.1:9/a",
        "secret-of-webhook-a",
        0,
        "call.ended",
        '{"x":1}',
    )
    assert "secret-of-webhook-a" not in repr(d)
    assert hooks.get_delivery(ids[0]).next_attempt_at == lease
    assert hooks.claim_due(now=NOW, lease_until=lease, limit=10) == []  # leased
    hooks.enable(off.id)
    assert [x.id for x in hooks.claim_due(now=NOW, lease_until=lease, limit=10)] == [ids[2]]
    assert [x.id for x in hooks.claim_due(now=later, lease_until=lease, limit=10)] == [ids[1]]
    # the leases expire: the rows are due again (their sender died), lowest id first
    assert [x.id for x in hooks.claim_due(now=lease, lease_until=lease + timedelta(1), limit=1)] == [ids[0]]


def test_concurrent_claims_never_share_a_row(hooks: WebhookRepository) -> None:
    a = hooks.add("http://127.0.0.1:9/a").webhook
    ids = hooks.create_deliveries([new(a.id, n) for n in range(60)], now=NOW)
    got: list[list[int]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def claimer(i: int) -> None:
        start.wait()
        while batch := hooks.claim_due(now=NOW, lease_until=NOW + timedelta(minutes=1), limit=5):
            got[i].extend(d.id for d in batch)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    everything = [d for ids_of_one in got for d in ids_of_one]
    assert sorted(everything) == sorted(i for i in ids if i is not None)  # each row exactly once


def test_attempts_are_logged_in_the_row(hooks: WebhookRepository) -> None:
    a = hooks.add("http://127.0.0.1:9/a").webhook
    (d,) = hooks.create_deliveries([new(a.id)], now=NOW)
    assert d is not None
    retry_at = NOW + timedelta(seconds=10)
    assert hooks.record_attempt(
        d, state="pending", status=503, error="HTTP 503: busy", at=NOW, next_attempt_at=retry_at
    )
    row = hooks.get_delivery(d)
    assert (row.state, row.attempts, row.last_status, row.last_error, row.next_attempt_at) == (
        "pending",
        1,
        503,
        "HTTP 503: busy",
        retry_at,
    )
    assert hooks.record_attempt(d, state="pending", status=None, error="x" * 5000, at=NOW, next_attempt_at=retry_at)
    assert hooks.get_delivery(d).last_error == "x" * 2000  # clipped, not refused
    done_at = NOW + timedelta(seconds=11)
    assert hooks.record_attempt(d, state="delivered", status=204, error=None, at=done_at)
    row = hooks.get_delivery(d)
    assert (row.state, row.attempts, row.last_status, row.last_error, row.delivered_at, row.next_attempt_at) == (
        "delivered",
        3,
        204,
        None,
        done_at,
        None,
    )
    # a delivered row takes no more attempts (a second sender that lost its lease)
    assert not hooks.record_attempt(d, state="failed", status=500, error="late", at=NOW)
    assert hooks.get_delivery(d).state == "delivered"
    assert not hooks.record_attempt(10**9, state="failed", status=None, error="gone", at=NOW)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"state": "sent"}, "state"),
        ({"state": "pending"}, "next_attempt_at"),
        ({"state": "failed", "next_attempt_at": NOW}, "next_attempt_at"),
        ({"state": "failed", "status": 42}, "status"),
        ({"state": "failed", "at": datetime(2025, 1, 1)}, "at"),
    ],
)
def test_invalid_attempts_are_refused(hooks: WebhookRepository, kwargs: dict[str, object], field: str) -> None:
    a = hooks.add("http://127.0.0.1:9/a").webhook
    (d,) = hooks.create_deliveries([new(a.id)], now=NOW)
    assert d is not None
    values: dict[str, object] = {"status": None, "error": None, "at": NOW, **kwargs}
    with pytest.raises(ValidationError) as info:
        hooks.record_attempt(d, **values)  # type: ignore[arg-type]
    assert info.value.field == field
    assert hooks.get_delivery(d).attempts == 0


def test_release_redeliver_and_purge(hooks: WebhookRepository, engine: Engine) -> None:
    a = hooks.add("http://127.0.0.1:9/a").webhook
    ids = [i for i in hooks.create_deliveries([new(a.id, n) for n in range(3)], now=NOW) if i is not None]
    lease = NOW + timedelta(minutes=1)
    hooks.claim_due(now=NOW, lease_until=lease, limit=3)
    assert hooks.release(ids[:2], now=NOW) == 2
    assert [d.id for d in hooks.claim_due(now=NOW, lease_until=lease, limit=3)] == ids[:2]
    assert hooks.release([], now=NOW) == 0

    hooks.record_attempt(ids[0], state="failed", status=500, error="HTTP 500", at=NOW)
    hooks.record_attempt(ids[1], state="delivered", status=200, error=None, at=NOW)
    assert hooks.release(ids[:2], now=NOW) == 0  # finished rows are not given back
    with pytest.raises(ConflictError):
        hooks.redeliver(ids[1], now=NOW)
    with pytest.raises(NotFoundError):
        hooks.redeliver(10**9, now=NOW)
    again = hooks.redeliver(ids[0], now=NOW)
    assert (again.state, again.attempts, again.next_attempt_at, again.last_status) == ("pending", 0, NOW, 500)
    assert [d.id for d in hooks.list_deliveries(a.id, state="pending")] == [ids[2], ids[0]]
    assert [d.id for d in hooks.list_deliveries(a.id, state="delivered")] == [ids[1]]
    with pytest.raises(ValidationError):
        hooks.list_deliveries(a.id, state="done")

    assert hooks.purge_deliveries(before=NOW) == 0  # created exactly at NOW: not before it
    assert hooks.purge_deliveries(before=NOW + timedelta(seconds=1)) == 1  # only the delivered one
    assert rows(engine, t.webhook_deliveries) == 2
