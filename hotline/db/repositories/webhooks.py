"""Webhooks (where events go) and their deliveries (one row per event and webhook, with its attempts).

Responsibility: validate webhooks before they are stored (URL, event filter, secret), keep the delivery
log, and hand due deliveries to exactly one sender at a time.  Synchronous, one short transaction per
method: services call these through `asyncio.to_thread`.

Invariants:
- a stored URL is http(s), has a host, no credentials and no fragment, at most 1024 characters; the event
  filter is '*' or a comma list of event names and prefix wildcards ('agent.*'), stored normalised;
- a secret is generated (`secrets.token_urlsafe(32)`) unless one is given; only `add` returns it
  (`CreatedWebhook.secret`); `Webhook` values never carry it, and `WebhookTarget`/`DueDelivery`, which
  must (the sender signs with it), keep it out of their repr;
- a delivery is `pending` until one attempt gets a 2xx (`delivered`) or the sender gives up (`failed`);
  each attempt increments `attempts` and overwrites `last_status`/`last_error` in one transaction;
- claiming is a lease: `claim_due` moves `next_attempt_at` of the rows it returns to `lease_until` with a
  conditional UPDATE, so concurrent claimers (other Hotline instances) never get the same row while the
  lease runs; a sender that dies without recording its attempt loses the lease when it expires, and the
  row is delivered again (at least once: receivers de-duplicate by event id);
- only deliveries of enabled webhooks are claimed; deleting a webhook deletes its deliveries (FK cascade).
"""

from __future__ import annotations

import builtins
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, Row

from hotline.db import tables as t
from hotline.db.engine import read_transaction, write_transaction
from hotline.db.repositories import _bump_version, _flag, _from_db, _int, _text, _to_db
from hotline.errors import ConflictError, DatabaseUnavailableError, NotFoundError, ValidationError

URL_MAX = 1024
PAYLOAD_MAX_BYTES = 60_000  # MariaDB TEXT holds 65,535 bytes
DELIVERY_STATES = ("pending", "delivered", "failed")
_ERROR_MAX = 2000
_SECRET = re.compile(r"[\x21-\x7e]{16,128}")
_FILTER_TOKEN = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*(?:\.\*)?")
_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")


# ------------------------------------------------------------------------------------- validators


def validate_webhook_url(url: object) -> str:
    """The URL if Hotline may POST to it; ValidationError('url', why) otherwise."""
    _text("url", url, URL_MAX, required=True)
    assert isinstance(url, str)
    if any(ch.isspace() for ch in url):
        raise ValidationError("url", "must not contain spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0..65535
    except ValueError as exc:
        raise ValidationError("url", f"is not a valid URL ({exc})") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("url", f"must start with http:// or https:// (got {parts.scheme or 'no'} scheme)")
    if "@" in parts.netloc:
        raise ValidationError("url", "must not contain credentials (user:password@); the signature authenticates")
    if not parts.hostname:
        raise ValidationError("url", "must name a host")
    if parts.fragment or url.endswith("#"):
        raise ValidationError("url", "must not have a #fragment (it is never sent)")
    return url


def parse_event_filter(value: object) -> tuple[str, ...]:
    """'*' or 'call.ended, agent.*' -> ('*',) or ('call.ended', 'agent.*'); ValidationError('events', ...)."""
    _text("events", value, 1024, required=True)
    assert isinstance(value, str)
    tokens: list[str] = []
    for raw in value.split(","):
        token = raw.strip()
        if token == "*":
            return ("*",)
        if not token or _FILTER_TOKEN.fullmatch(token) is None or len(token) > 66:
            raise ValidationError(
                "events", f"must be '*' or a comma list of event names or prefixes like 'agent.*' (got {raw!r})"
            )
        if token not in tokens:
            tokens.append(token)
    return tuple(tokens)


def _secret(value: object) -> str:
    if value is None:
        return secrets.token_urlsafe(32)
    if not isinstance(value, str) or _SECRET.fullmatch(value) is None:
        raise ValidationError("secret", "must be 16 to 128 printable ASCII characters without spaces")
    return value


def _aware(field_name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationError(field_name, "must be a timezone-aware datetime")
    return value


# ----------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    url: str
    events: str
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    """The new webhook and its secret: the only time the secret is shown."""

    webhook: Webhook
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """An enabled webhook as the sender needs it."""

    id: int
    url: str
    events: tuple[str, ...]
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class NewDelivery:
    webhook_id: int
    event_id: str
    event: str
    payload: str
    # when the first attempt is due: now (any sender may claim it) or a lease (the creator sends it)
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: str
    event: str
    payload: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed for one attempt, with what is needed to send it."""

    id: int
    webhook_id: int
    event_id: str
    event: str
    payload: str
    attempts: int
    url: str
    secret: str = field(repr=False)


def _webhook(row: Row[Any]) -> Webhook:
    m = row._mapping
    created = _from_db(m["created_at"])
    assert created is not None
    return Webhook(id=int(m["id"]), url=m["url"], events=m["events"], enabled=bool(m["enabled"]), created_at=created)


def _delivery(row: Row[Any]) -> Delivery:
    m = row._mapping
    created = _from_db(m["created_at"])
    assert created is not None
    return Delivery(
        id=int(m["id"]),
        webhook_id=int(m["webhook_id"]),
        event_id=m["event_id"],
        event=m["event"],
        payload=m["payload"],
        state=m["state"],
        attempts=int(m["attempts"]),
        last_status=m["last_status"],
        last_error=m["last_error"],
        next_attempt_at=_from_db(m["next_attempt_at"]),
        created_at=created,
        delivered_at=_from_db(m["delivered_at"]),
    )


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise DatabaseUnavailableError(f"{what}: {exc.orig or exc}") from exc


_D = t.webhook_deliveries
_W = t.webhooks


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(_D.c.state == "pending", sa.or_(_D.c.next_attempt_at.is_(None), _D.c.next_attempt_at <= now))


class WebhookRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ------------------------------------------------------------------ webhooks
    def add(self, url: str, *, events: str = "*", secret: str | None = None, enabled: bool = True) -> CreatedWebhook:
        values = {
            "url": validate_webhook_url(url),
            "events": ",".join(parse_event_filter(events)),
            "secret": _secret(secret),
            "enabled": _flag("enabled", enabled),
            "created_at": t.utcnow_naive(),
        }
        with _translated("webhook write failed"), write_transaction(self._engine) as conn:
            _bump_version(conn)  # configuration: every Hotline instance reloads its webhooks at once
            row = conn.execute(sa.insert(_W).values(**values).returning(*_W.c)).one()
        return CreatedWebhook(_webhook(row), str(values["secret"]))

    def get(self, webhook_id: int) -> Webhook:
        _int("webhook_id", webhook_id, minimum=1)
        with _translated("webhook read failed"), read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(_W).where(_W.c.id == webhook_id)).first()
        if row is None:
            raise NotFoundError(f"webhook {webhook_id} does not exist")
        return _webhook(row)

    def delete(self, webhook_id: int) -> None:
        """Delete the webhook and its delivery log."""
        _int("webhook_id", webhook_id, minimum=1)
        with _translated("webhook delete failed"), write_transaction(self._engine) as conn:
            _bump_version(conn)
            # deliveries first: the FK cascades too, but explicit is the same on every database
            conn.execute(sa.delete(_D).where(_D.c.webhook_id == webhook_id))
            if conn.execute(sa.delete(_W).where(_W.c.id == webhook_id)).rowcount == 0:
                raise NotFoundError(f"webhook {webhook_id} does not exist")

    def enable(self, webhook_id: int, enabled: bool = True) -> Webhook:
        _int("webhook_id", webhook_id, minimum=1)
        _flag("enabled", enabled)
        with _translated("webhook write failed"), write_transaction(self._engine) as conn:
            _bump_version(conn)
            conn.execute(sa.update(_W).where(_W.c.id == webhook_id).values(enabled=enabled))
            row = conn.execute(sa.select(_W).where(_W.c.id == webhook_id)).first()
        if row is None:
            raise NotFoundError(f"webhook {webhook_id} does not exist")
        return _webhook(row)

    def targets(self) -> builtins.list[WebhookTarget]:
        """The enabled webhooks with their parsed filters and secrets (for the sender only)."""
        with _translated("webhook read failed"), read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(_W.c.id, _W.c.url, _W.c.events, _W.c.secret).where(_W.c.enabled).order_by(_W.c.id)
            ).all()
        return [WebhookTarget(int(r.id), r.url, parse_event_filter(r.events), r.secret) for r in rows]

    # ------------------------------------------------------------------ deliveries
    def create_deliveries(self, rows: Sequence[NewDelivery], *, now: datetime) -> builtins.list[int | None]:
        """Insert pending deliveries in one transaction; returns their ids in order, None for a row whose
        webhook no longer exists (deleted since the event was matched)."""
        _aware("now", now)
        for r in rows:
            _int("webhook_id", r.webhook_id, minimum=1)
            _text("event_id", r.event_id, 40, required=True)
            if not isinstance(r.event, str) or len(r.event) > 64 or _EVENT.fullmatch(r.event) is None:
                raise ValidationError("event", f"must be an event name of at most 64 characters (got {r.event!r})")
            if not isinstance(r.payload, str) or len(r.payload.encode()) > PAYLOAD_MAX_BYTES:
                raise ValidationError("payload", f"must be a string of at most {PAYLOAD_MAX_BYTES} UTF-8 bytes")
            _aware("next_attempt_at", r.next_attempt_at)
        if not rows:
            return []
        created = _to_db(now)
        for attempt in (1, 2):
            try:
                with _translated("delivery write failed"), write_transaction(self._engine) as conn:
                    wanted = sorted({r.webhook_id for r in rows})
                    existing = set(conn.execute(sa.select(_W.c.id).where(_W.c.id.in_(wanted))).scalars())
                    keep = [i for i, r in enumerate(rows) if r.webhook_id in existing]
                    ids: list[int | None] = [None] * len(rows)
                    if keep:
                        params = [
                            {
                                "webhook_id": rows[i].webhook_id,
                                "event_id": rows[i].event_id,
                                "event": rows[i].event,
                                "payload": rows[i].payload,
                                "state": "pending",
                                "next_attempt_at": _to_db(rows[i].next_attempt_at),
                                "created_at": created,
                            }
                            for i in keep
                        ]
                        # one executemany with RETURNING in parameter order (all three databases have it)
                        stmt = sa.insert(_D).returning(_D.c.id, sort_by_parameter_order=True)
                        for i, new_id in zip(keep, conn.execute(stmt, params).scalars(), strict=True):
                            ids[i] = int(new_id)
                    return ids
            except sa_exc.IntegrityError as exc:
                # a webhook was deleted between the check and the insert: the second pass will not see it
                if attempt == 2:
                    raise ConflictError(f"deliveries refused by the database: {exc.orig or exc}") from exc
        raise AssertionError("not reached")  # pragma: no cover

    def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> builtins.list[DueDelivery]:
        """Up to `limit` due deliveries of enabled webhooks, oldest due first, leased until `lease_until`."""
        _aware("now", now)
        _aware("lease_until", lease_until)
        _int("limit", limit, minimum=1, maximum=10_000)
        now_db, lease_db = _to_db(now), _to_db(lease_until)
        assert now_db is not None
        claimed: list[DueDelivery] = []
        with _translated("delivery claim failed"), write_transaction(self._engine) as conn:
            candidates = conn.execute(
                sa.select(
                    _D.c.id,
                    _D.c.webhook_id,
                    _D.c.event_id,
                    _D.c.event,
                    _D.c.payload,
                    _D.c.attempts,
                    _W.c.url,
                    _W.c.secret,
                )
                .join(_W, _W.c.id == _D.c.webhook_id)
                .where(_due(now_db), _W.c.enabled)
                .order_by(_D.c.next_attempt_at, _D.c.id)
                .limit(limit)
            ).all()
            for r in candidates:
                # conditional: another instance may have claimed the row since the SELECT
                taken = conn.execute(
                    sa.update(_D).where(_D.c.id == r.id, _due(now_db)).values(next_attempt_at=lease_db)
                ).rowcount
                if taken == 1:
                    claimed.append(
                        DueDelivery(
                            id=int(r.id),
                            webhook_id=int(r.webhook_id),
                            event_id=r.event_id,
                            event=r.event,
                            payload=r.payload,
                            attempts=int(r.attempts),
                            url=r.url,
                            secret=r.secret,
                        )
                    )
        return claimed

    def record_attempt(
        self,
        delivery_id: int,
        *,
        state: str,
        status: int | None,
        error: str | None,
        at: datetime,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Log one attempt (attempts + 1) and its outcome; False if the row is gone or no longer pending."""
        _int("delivery_id", delivery_id, minimum=1, maximum=2**63 - 1)
        if state not in DELIVERY_STATES:
            raise ValidationError("state", f"must be one of {', '.join(DELIVERY_STATES)} (got {state!r})")
        if status is not None:
            _int("status", status, minimum=100, maximum=999)
        _aware("at", at)
        if (state == "pending") != (next_attempt_at is not None):
            raise ValidationError("next_attempt_at", "is required for a pending delivery and only for one")
        if next_attempt_at is not None:
            _aware("next_attempt_at", next_attempt_at)
        values: dict[str, object] = {
            "attempts": _D.c.attempts + 1,
            "state": state,
            "last_status": status,
            "last_error": None if error is None else error[:_ERROR_MAX],
            "next_attempt_at": _to_db(next_attempt_at),
        }
        if state == "delivered":
            values["delivered_at"] = _to_db(at)
        with _translated("delivery write failed"), write_transaction(self._engine) as conn:
            result = conn.execute(sa.update(_D).where(_D.c.id == delivery_id, _D.c.state == "pending").values(**values))
            return result.rowcount == 1

    def release(self, delivery_ids: Sequence[int], *, now: datetime) -> int:
        """Give leased deliveries back (due at `now`) without counting an attempt: a clean shutdown."""
        _aware("now", now)
        if not delivery_ids:
            return 0
        with _translated("delivery write failed"), write_transaction(self._engine) as conn:
            return conn.execute(
                sa.update(_D)
                .where(_D.c.id.in_(list(delivery_ids)), _D.c.state == "pending")
                .values(next_attempt_at=_to_db(now))
            ).rowcount

    def redeliver(self, delivery_id: int, *, now: datetime) -> Delivery:
        """Send a failed delivery again, with a fresh series of attempts."""
        _int("delivery_id", delivery_id, minimum=1, maximum=2**63 - 1)
        _aware("now", now)
        with _translated("delivery write failed"), write_transaction(self._engine) as conn:
            row = conn.execute(sa.select(_D).where(_D.c.id == delivery_id)).first()
            if row is None:
                raise NotFoundError(f"delivery {delivery_id} does not exist")
            if row.state != "failed":
                raise ConflictError(f"delivery {delivery_id} is {row.state}; only a failed one can be sent again")
            conn.execute(
                sa.update(_D)
                .where(_D.c.id == delivery_id)
                .values(state="pending", attempts=0, next_attempt_at=_to_db(now))
            )
            return _delivery(conn.execute(sa.select(_D).where(_D.c.id == delivery_id)).one())

    def get_delivery(self, delivery_id: int) -> Delivery:
        _int("delivery_id", delivery_id, minimum=1, maximum=2**63 - 1)
        with _translated("delivery read failed"), read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(_D).where(_D.c.id == delivery_id)).first()
        if row is None:
            raise NotFoundError(f"delivery {delivery_id} does not exist")
        return _delivery(row)

    def list_deliveries(
        self, webhook_id: int, *, state: str | None = None, limit: int = 100
    ) -> builtins.list[Delivery]:
        """The webhook's deliveries, newest first."""
        _int("webhook_id", webhook_id, minimum=1)
        _int("limit", limit, minimum=1, maximum=10_000)
        query = sa.select(_D).where(_D.c.webhook_id == webhook_id)
        if state is not None:
            if state not in DELIVERY_STATES:
                raise ValidationError("state", f"must be one of {', '.join(DELIVERY_STATES)} (got {state!r})")
            query = query.where(_D.c.state == state)
        with _translated("delivery read failed"), read_transaction(self._engine) as conn:
            rows = conn.execute(query.order_by(_D.c.id.desc()).limit(limit)).all()
        return [_delivery(r) for r in rows]

    def purge_deliveries(self, *, before: datetime) -> int:
        """Delete delivered and failed deliveries created before `before`; pending ones stay."""
        _aware("before", before)
        with _translated("delivery purge failed"), write_transaction(self._engine) as conn:
            return conn.execute(
                sa.delete(_D).where(_D.c.state.in_(("delivered", "failed")), _D.c.created_at < _to_db(before))
            ).rowcount

    def list(self) -> builtins.list[Webhook]:
        with _translated("webhook read failed"), read_transaction(self._engine) as conn:
            rows = conn.execute(sa.select(_W).order_by(_W.c.id)).all()
        return [_webhook(r) for r in rows]
