"""Outbound webhooks: bus events POSTed to configured URLs, signed with HMAC-SHA256, retried with back-off.

Flow: the bus callback (`on_event`) matches the event against the enabled webhooks' filters in memory
and only enqueues (event, webhook ids) on a bounded intake queue.  The writer task turns queued events
into `webhook_deliveries` rows (pending), in batches, one transaction per batch.  Rows the service has
a free sender for are created already leased to this instance and sent at once; the others are
created due, and the dispatcher claims them from the database as senders free up.  The dispatcher
also claims retries when they fall due, rows left by a previous run (resume after a restart), and rows
written by other instances; it polls every `poll_interval` for those.  docs/webhooks.md is the
receiver's side: body, headers, signature, replay window.

Invariants:
- `on_event` never blocks and never touches the database; when the intake is full the event is dropped
  for webhooks and counted (`dropped`): memory stays bounded while the database is down;
- at most `concurrency` deliveries are in flight; everything else waits in the database, not in memory;
- every attempt is written to its row (attempts, last_status, last_error, delivered_at) before the next
  is scheduled; a 2xx answer delivers, anything else (other status, timeout, connection error) is
  retried after `backoff_base * 2**(attempt-1)` seconds (at most `backoff_max`, with jitter: 50-100 %
  of that) until `max_attempts`, then the row is `failed`;
- delivery is at least once: a row is leased while it is being sent; a sender that dies leaves the
  lease to expire and the row is sent again; `stop()` gives unfinished rows back at once;
- each attempt is bounded by `timeout` (a total deadline around the whole request); redirects are not
  followed; at most 512 bytes of an error answer are read into `last_error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import heapq
import hmac
import logging
import math
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from hotline.db.repositories.webhooks import (
    PAYLOAD_MAX_BYTES,
    CreatedWebhook,
    Delivery,
    DueDelivery,
    NewDelivery,
    Webhook,
    WebhookRepository,
    WebhookTarget,
)
from hotline.errors import ConfigError, DatabaseUnavailableError, HotlineError
from hotline.features.events.bus import Event, EventBus, Subscription

log = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
_BATCH = 500
_ERROR_BODY_BYTES = 512
_LOG_INTERVAL = 60.0
_PURGE_INTERVAL = 3600.0


# ---------------------------------------------------------------------------------- pure helpers


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Hotline-Signature value: ``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def event_matches(tokens: tuple[str, ...], name: str) -> bool:
    """Whether a webhook filter (`parse_event_filter` tokens) selects event `name`."""
    for token in tokens:
        if token == "*" or token == name:
            return True
        if token.endswith(".*") and name.startswith(token[:-1]):
            return True
    return False


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped, 50-100 %."""
    delay = min(cap, base * 2.0 ** min(attempt - 1, 60))
    return delay * (0.5 + 0.5 * rng.random())


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}: must be a positive number (got {value!r})")
    return float(value)


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: must be a positive integer (got {value!r})")
    return value


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WebhookService:
    def __init__(
        self,
        repo: WebhookRepository,
        bus: EventBus,
        *,
        timeout: float = 10.0,
        max_attempts: int = 10,
        backoff_base: float = 5.0,
        backoff_max: float = 3600.0,
        concurrency: int = 8,
        queue_size: int = 10_000,
        poll_interval: float = 2.0,
        refresh_interval: float = 15.0,
        retention: float = 14 * 86400.0,
        rng: random.Random | None = None,
    ) -> None:
        self._repo = repo
        self._bus = bus
        self._timeout = _check_positive("webhook_timeout", timeout)
        self._max_attempts = _check_count("webhook_max_attempts", max_attempts)
        self._base = _check_positive("webhook_backoff_base", backoff_base)
        self._cap = _check_positive("webhook_backoff_max", backoff_max)
        self._concurrency = _check_count("webhook_concurrency", concurrency)
        self._poll = _check_positive("webhook_poll_interval", poll_interval)
        self._refresh_every = _check_positive("refresh_interval", refresh_interval)
        self._retention = _check_positive("webhook_retention", retention)
        # a lease outlives the longest attempt plus recording it, so a live sender never loses its row
        self._lease = 2 * self._timeout + 30.0
        self._rng = rng or random.Random()
        self._intake: asyncio.Queue[tuple[Event, tuple[int, ...]]] = asyncio.Queue(
            _check_count("webhook_queue_size", queue_size)
        )
        self._targets: dict[int, WebhookTarget] = {}
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._reserved = 0  # sender slots promised to rows being created or claimed right now
        self._retry_at: list[float] = []  # monotonic times at which retries this instance scheduled fall due
        self._wakeup = asyncio.Event()
        self._claim_needed = False
        self._more = False  # the last claim filled every free slot: more rows may be due
        self._closing = False
        self._persist_lock = asyncio.Lock()
        self._sub: Subscription | None = None
        self._client: aiohttp.ClientSession | None = None
        self._log_last: dict[str, float] = {}
        self.dropped = 0
        self.created = 0
        self.delivered = 0
        self.retried = 0
        self.failed = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Load the webhooks, subscribe to the bus, and ask for pending rows left by an earlier run."""
        await self.refresh()
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            connector=aiohttp.TCPConnector(limit=self._concurrency),  # kept alive and reused
            trust_env=False,  # no proxy from the environment
            headers={"User-Agent": "Hotline-Webhooks/1"},
        )
        self._closing = False
        self._sub = self._bus.subscribe(self.on_event)
        self._request_claim()

    async def run(self) -> None:
        """The service's background work (spawn as one named task; cancel it after `stop()`)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._writer_loop(), name="webhooks-writer")
            tg.create_task(self._dispatch_loop(), name="webhooks-dispatch")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking events, write the queued ones, let running deliveries finish for up to `grace`
        seconds, then cancel the rest and give their rows back (due now) for the next run."""
        self._closing = True
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        try:
            async with asyncio.timeout(grace), self._persist_lock:
                while not self._intake.empty():
                    batch = [self._intake.get_nowait() for _ in range(min(_BATCH, self._intake.qsize()))]
                    await self._persist(batch)
        except (TimeoutError, HotlineError) as exc:
            log.error(
                "webhooks: %d queued events not written at shutdown (%s)", self._intake.qsize(), str(exc) or "timeout"
            )
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=grace)
        unfinished = list(self._inflight)
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        await self._release(unfinished)
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ------------------------------------------------------------------ administration
    async def refresh(self) -> None:
        """Reload the enabled webhooks (also done every `refresh_interval`, for other instances' changes)."""
        targets = await asyncio.to_thread(self._repo.targets)
        self._targets = {t.id: t for t in targets}

    async def add_webhook(
        self, url: str, *, events: str = "*", secret: str | None = None, enabled: bool = True
    ) -> CreatedWebhook:
        """Create a webhook; the result carries its secret, which is never shown again."""
        created = await asyncio.to_thread(self._repo.add, url, events=events, secret=secret, enabled=enabled)
        await self.refresh()
        return created

    async def list_webhooks(self) -> list[Webhook]:
        return await asyncio.to_thread(self._repo.list)

    async def delete_webhook(self, webhook_id: int) -> None:
        await asyncio.to_thread(self._repo.delete, webhook_id)
        await self.refresh()

    async def enable_webhook(self, webhook_id: int, enabled: bool = True) -> Webhook:
        webhook = await asyncio.to_thread(self._repo.enable, webhook_id, enabled)
        await self.refresh()
        if enabled:
            self._request_claim()  # its waiting deliveries may go now
        return webhook

    async def deliveries(self, webhook_id: int, *, state: str | None = None, limit: int = 100) -> list[Delivery]:
        return await asyncio.to_thread(self._repo.list_deliveries, webhook_id, state=state, limit=limit)

    async def redeliver(self, delivery_id: int) -> Delivery:
        delivery = await asyncio.to_thread(self._repo.redeliver, delivery_id, now=_utcnow())
        self._request_claim()
        return delivery

    def stats(self) -> dict[str, int]:
        return {
            "webhooks": len(self._targets),
            "queued": self._intake.qsize(),
            "in_flight": len(self._inflight),
            "created": self.created,
            "delivered": self.delivered,
            "retried": self.retried,
            "failed": self.failed,
            "dropped": self.dropped,
        }

    # ------------------------------------------------------------------ intake (bus callback)
    def on_event(self, event: Event) -> None:
        if self._closing:
            return
        ids = tuple(t.id for t in self._targets.values() if event_matches(t.events, event.name))
        if not ids:
            return
        try:
            self._intake.put_nowait((event, ids))
        except asyncio.QueueFull:
            self.dropped += 1
            self._warn("intake", "webhooks: intake queue full (database slow or down); event %s dropped", event.name)

    # ------------------------------------------------------------------ writer
    async def _writer_loop(self) -> None:
        while True:
            batch = [await self._intake.get()]
            while len(batch) < _BATCH and not self._intake.empty():
                batch.append(self._intake.get_nowait())
            delay = 0.5
            while True:
                try:
                    async with self._persist_lock:
                        await self._persist(batch)
                    break
                except DatabaseUnavailableError as exc:
                    self._warn("db", "webhooks: cannot write deliveries (%s); retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)  # back-off while the database is away, not synchronisation
                    delay = min(delay * 2, 10.0)
                except HotlineError as exc:
                    self.dropped += len(batch)
                    log.error("webhooks: %d events refused by the database, dropped: %s", len(batch), exc)
                    break

    async def _persist(self, batch: list[tuple[Event, tuple[int, ...]]]) -> None:
        now = _utcnow()
        lease_until = now + timedelta(seconds=self._lease)
        free = 0 if self._closing else max(0, self._concurrency - len(self._inflight) - self._reserved)
        rows: list[NewDelivery] = []
        for event, ids in batch:
            body = event.to_json()
            if len(body.encode()) > PAYLOAD_MAX_BYTES:
                self.dropped += 1
                log.error("webhooks: event %s %s is over %d bytes; not sent", event.name, event.id, PAYLOAD_MAX_BYTES)
                continue
            for webhook_id in ids:
                due = lease_until if len(rows) < free else now
                rows.append(NewDelivery(webhook_id, event.id, event.name, body, due))
        if not rows:
            return
        leased = min(free, len(rows))
        self._reserved += leased
        try:
            ids_created = await asyncio.to_thread(self._repo.create_deliveries, rows, now=now)
        finally:
            self._reserved -= leased
        self.created += sum(1 for i in ids_created if i is not None)
        not_started: list[int] = []
        for row, delivery_id in zip(rows[:leased], ids_created[:leased], strict=True):
            if delivery_id is None:
                continue
            target = self._targets.get(row.webhook_id)
            if target is None:
                not_started.append(delivery_id)  # disabled meanwhile: the row waits in the database
                continue
            claim = DueDelivery(
                id=delivery_id,
                webhook_id=row.webhook_id,
                event_id=row.event_id,
                event=row.event,
                payload=row.payload,
                attempts=0,
                url=target.url,
                secret=target.secret,
            )
            if not self._start(claim):
                not_started.append(delivery_id)
        await self._release(not_started)
        if len(rows) > leased:
            self._more = True
            self._request_claim()

    # ------------------------------------------------------------------ dispatcher
    def _request_claim(self) -> None:
        self._claim_needed = True
        self._wakeup.set()

    async def _dispatch_loop(self) -> None:
        loop_time = time.monotonic
        next_poll = loop_time()
        next_refresh = loop_time() + self._refresh_every
        next_purge = loop_time()
        error_delay = 0.0
        while True:
            now = loop_time()
            deadline = min(next_poll, self._retry_at[0] if self._retry_at else math.inf)
            if not self._claim_needed and deadline > now:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(deadline - now):
                        await self._wakeup.wait()
                self._wakeup.clear()
                continue  # woken: a claim request, a new retry time, or the deadline; look again
            self._claim_needed = False
            while self._retry_at and self._retry_at[0] <= now:
                heapq.heappop(self._retry_at)
            next_poll = now + self._poll
            try:
                if now >= next_refresh:
                    await self.refresh()
                    next_refresh = now + self._refresh_every
                await self._claim()
                if now >= next_purge:
                    next_purge = now + _PURGE_INTERVAL
                    before = _utcnow() - timedelta(seconds=self._retention)
                    purged = await asyncio.to_thread(self._repo.purge_deliveries, before=before)
                    if purged:
                        log.info("webhooks: %d old deliveries purged", purged)
                error_delay = 0.0
            except HotlineError as exc:
                error_delay = min(max(error_delay * 2, 0.5), 10.0)
                next_poll = now + error_delay
                self._warn("db", "webhooks: dispatcher cannot reach the database (%s); retrying", exc)

    async def _claim(self) -> None:
        if self._closing:
            return
        free = self._concurrency - len(self._inflight) - self._reserved
        if free <= 0:
            self._more = True  # a finishing delivery asks again
            return
        now = _utcnow()
        self._reserved += free
        try:
            claimed = await asyncio.to_thread(
                self._repo.claim_due, now=now, lease_until=now + timedelta(seconds=self._lease), limit=free
            )
        finally:
            self._reserved -= free
        self._more = len(claimed) == free
        await self._release([d.id for d in claimed if not self._start(d)])

    def _start(self, delivery: DueDelivery) -> bool:
        if self._closing or self._client is None:
            return False
        task = asyncio.get_running_loop().create_task(self._deliver(delivery), name=f"webhook-delivery-{delivery.id}")
        self._inflight[delivery.id] = task
        task.add_done_callback(functools.partial(self._delivery_done, delivery.id))
        return True

    def _delivery_done(self, delivery_id: int, task: asyncio.Task[None]) -> None:
        self._inflight.pop(delivery_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhooks: delivery %d failed unexpectedly", delivery_id, exc_info=task.exception())
        if self._more and not self._closing:
            self._request_claim()

    async def _release(self, delivery_ids: list[int]) -> None:
        if not delivery_ids:
            return
        try:
            await asyncio.to_thread(self._repo.release, delivery_ids, now=_utcnow())
        except HotlineError as exc:  # the leases expire on their own; the rows are sent later
            log.warning(
                "webhooks: could not give back %d deliveries (%s); they wait for their lease", len(delivery_ids), exc
            )

    # ------------------------------------------------------------------ one attempt
    async def _deliver(self, d: DueDelivery) -> None:
        status, error = await self._attempt(d)
        attempt = d.attempts + 1
        now = _utcnow()
        delay: float | None = None
        if error is None:
            state = "delivered"
        elif attempt >= self._max_attempts:
            state = "failed"
        else:
            state = "pending"
            delay = backoff_delay(attempt, self._base, self._cap, self._rng)
        next_at = None if delay is None else now + timedelta(seconds=delay)
        try:
            await asyncio.to_thread(
                self._repo.record_attempt,
                d.id,
                state=state,
                status=status,
                error=error,
                at=now,
                next_attempt_at=next_at,
            )
        except HotlineError as exc:
            self._warn("db", "webhooks: attempt %d of delivery %d not recorded (%s); resent later", attempt, d.id, exc)
            return
        if state == "delivered":
            self.delivered += 1
            log.debug("webhooks: delivery %d (%s) to webhook %d: HTTP %s", d.id, d.event, d.webhook_id, status)
        elif state == "failed":
            self.failed += 1
            log.warning(
                "webhooks: delivery %d (%s) to webhook %d failed after %d attempts: %s",
                *(d.id, d.event, d.webhook_id, attempt, error),
            )
        else:
            assert delay is not None
            self.retried += 1
            self._warn(
                f"retry-{d.webhook_id}",
                "webhooks: webhook %d attempt %d failed (%s); retry in %.1f s",
                *(d.webhook_id, attempt, error, delay),
            )
            heapq.heappush(self._retry_at, time.monotonic() + delay)
            self._wakeup.set()  # the dispatcher recomputes when to wake

    async def _attempt(self, d: DueDelivery) -> tuple[int | None, str | None]:
        """POST the delivery once: (HTTP status or None, None when delivered or why not)."""
        assert self._client is not None
        body = d.payload.encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Hotline-Event": d.event,
            "X-Hotline-Delivery": str(d.id),
            "X-Hotline-Attempt": str(d.attempts + 1),
            "X-Hotline-Timestamp": timestamp,
            "X-Hotline-Signature": sign(d.secret, timestamp, body),
        }
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.post(d.url, data=body, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
                    # a short answer is read to the end so the connection can be reused
                    snippet = await _read_prefix(resp, _ERROR_BODY_BYTES)
                    if 200 <= status < 300:
                        return status, None
                    return status, f"HTTP {status}" + (f": {snippet}" if snippet else "")
        except TimeoutError:
            return None, f"no answer within {self._timeout:g} s"
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a URL aiohttp cannot use
            return None, f"{type(exc).__name__}: {exc}".rstrip(": ")

    # ------------------------------------------------------------------ helpers
    def _warn(self, key: str, message: str, *args: Any) -> None:
        """At most one such line per key and minute: a receiver down for a day must not fill the log."""
        now = time.monotonic()
        if now - self._log_last.get(key, -math.inf) >= _LOG_INTERVAL:
            self._log_last[key] = now
            log.warning(message, *args)


async def _read_prefix(resp: aiohttp.ClientResponse, limit: int) -> str:
    data = bytearray()
    async for chunk in resp.content.iter_any():
        data += chunk
        if len(data) >= limit:
            break
    text = bytes(data[:limit]).decode("utf-8", "replace")
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
