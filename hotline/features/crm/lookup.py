"""Caller lookup: who is calling, from the call history, the customer records and an optional HTTP CRM.

On an inbound call the router asks `CallerLookupService.lookup(number, did=..., call_id=...)`; the
answer's `name` becomes CALLERID(name) and the whole `CallerInfo` becomes the screen-pop payload that
`screen_pop()` publishes (event ``call.screen_pop``) when an agent's phone rings.  docs/crm.md describes
the CRM request and the JSON answer it expects.

Invariants:
- `lookup` never raises for a bad number or a failing source and never takes longer than
  `lookup_timeout`: the database read (in a thread) and the CRM request run concurrently and whatever
  has not answered by the deadline is left out, with a line in `errors`.  Neither is cancelled: a slow
  database read finishes in its thread (at most `max_db_reads` of them at once; beyond that the database
  is skipped, so a hung database cannot fill the default executor), a slow CRM request is bounded by
  its own `crm_timeout` and still fills the cache for the next call;
- one CRM request per number at a time: concurrent lookups of the same number wait for the same request;
- CRM answers are cached in a bounded LRU: found for `cache_ttl`, not found for `negative_ttl`; errors,
  timeouts and invalid answers are not cached;
- a CRM answer is checked before use (`parse_crm_answer`): at most `max_answer_bytes`, a JSON object of
  the documented shape; anything else is ignored with a reason (logged, throttled), never a traceback;
- name precedence: CRM > customer record > none; names pass `sanitize_caller_name` (no control or
  format characters, no double quotes or backslashes, at most 80 characters).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from types import MappingProxyType
from urllib.parse import quote, urlsplit

import aiohttp

from hotline.db.repositories.crm import Customer, CustomerRepository, EarlierCall, normalize_number
from hotline.errors import ConfigError, HotlineError, ProtocolError
from hotline.features.events.bus import Event, EventBus

log = logging.getLogger(__name__)

SCREEN_POP_EVENT = "call.screen_pop"
CALLER_NAME_MAX = 80
_FIELDS_MAX = 50
_FIELD_KEY_MAX = 64
_FIELD_VALUE_MAX = 1024
_NAME_RAW_MAX = 1024
_URL_MAX = 1024
_BY_CALL_MAX = 10_000
_LOG_INTERVAL = 30.0
_DRAIN_S = 0.2  # how long the body of a not-found or error answer may take to arrive before its connection goes


# ---------------------------------------------------------------------------------- pure helpers


def sanitize_caller_name(value: object, max_len: int = CALLER_NAME_MAX) -> str | None:
    """A name safe for CALLERID(name) and a SIP display name, or None when nothing is left.

    Control, format (bidi overrides, zero-width) and line-separator characters go (controls become
    spaces); double quotes and backslashes go (they end or escape a SIP quoted-string and an AGI
    argument); an ASCII apostrophe becomes U+2019 so "O'Brien" stays readable without a quote character;
    runs of spaces become one; the result is clipped to `max_len` characters."""
    if not isinstance(value, str):
        return None
    out: list[str] = []
    for ch in value:
        if ch in '"\\`':
            continue
        if ch == "'":
            out.append("\u2019")
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp") or ch.isspace():
            out.append(" ")
        elif category not in ("Cf", "Cs", "Co", "Cn"):
            out.append(ch)
    name = " ".join("".join(out).split())[:max_len].rstrip()
    return name or None


@dataclass(frozen=True, slots=True)
class CrmAnswer:
    """A CRM answer that passed `parse_crm_answer`."""

    found: bool
    name: str | None
    fields: Mapping[str, str | int | float | bool | None]
    url: str | None


def _check(ok: bool, reason: str) -> None:
    if not ok:
        raise ProtocolError(reason)


def parse_crm_answer(body: bytes, *, max_bytes: int = 65_536) -> CrmAnswer:
    """Check and decode a CRM answer (shape in docs/crm.md); ProtocolError(reason) for anything else."""
    _check(len(body) <= max_bytes, f"answer larger than {max_bytes} bytes")
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"answer is not UTF-8 JSON ({type(exc).__name__})") from exc
    _check(isinstance(doc, dict), f"answer must be a JSON object (got {type(doc).__name__})")
    name = doc.get("name")
    _check(name is None or isinstance(name, str), "'name' must be a string or null")
    _check(name is None or len(name) <= _NAME_RAW_MAX, f"'name' longer than {_NAME_RAW_MAX} characters")
    raw_fields = doc.get("fields", {})
    _check(isinstance(raw_fields, dict), "'fields' must be an object")
    _check(len(raw_fields) <= _FIELDS_MAX, f"'fields' has more than {_FIELDS_MAX} entries")
    fields: dict[str, str | int | float | bool | None] = {}
    for key, value in raw_fields.items():
        _check(0 < len(key) <= _FIELD_KEY_MAX, f"field names must be 1 to {_FIELD_KEY_MAX} characters")
        _check(not any(unicodedata.category(c) == "Cc" for c in key), "field names must not contain control characters")
        ok = value is None or isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value))
        _check(ok, f"field {key[:_FIELD_KEY_MAX]!r} must be a string, number, boolean or null")
        _check(not isinstance(value, str) or len(value) <= _FIELD_VALUE_MAX, f"field {key!r} is too long")
        fields[key] = value
    url = doc.get("url")
    _check(url is None or (isinstance(url, str) and len(url) <= _URL_MAX), "'url' must be a string or null")
    if isinstance(url, str):
        _check(urlsplit(url).scheme in ("http", "https"), "'url' must be an http(s) link")
    found = doc.get("found")
    _check(found is None or isinstance(found, bool), "'found' must be true, false or absent")
    if found is None:
        found = name is not None or bool(fields)
    return CrmAnswer(found, name, MappingProxyType(fields), url)


def _no_constant(token: str) -> object:
    raise ValueError(f"{token} is not JSON")


# ------------------------------------------------------------------------------------- the answer


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """What Hotline knows about a caller.  `sources` lists the sources that contributed data
    ('customers', 'calls', 'crm'); `errors` says which could not be asked and why."""

    number: str  # normalised; "" for an anonymous or unusable caller id
    name: str | None
    customer: Customer | None
    earlier_calls: tuple[EarlierCall, ...]
    crm: Mapping[str, str | int | float | bool | None] = field(hash=False)
    crm_url: str | None
    sources: tuple[str, ...]
    errors: tuple[str, ...]


_EMPTY_FIELDS: Mapping[str, str | int | float | bool | None] = MappingProxyType({})


def screen_pop_payload(info: CallerInfo, call_id: str, agent: str, queue: str | None) -> dict[str, object]:
    """The data of a ``call.screen_pop`` event (JSON types only; docs/crm.md shows an example)."""
    customer = info.customer
    return {
        "call_id": call_id,
        "agent": agent,
        "queue": queue,
        "caller": {"number": info.number, "name": info.name},
        "customer": None
        if customer is None
        else {
            "id": customer.id,
            "name": customer.name,
            "phone": customer.phone,
            "email": customer.email,
            "external_id": customer.external_id,
            "data": dict(customer.data),
        },
        "earlier_calls": [
            {
                "call_id": c.call_id,
                "started_at": c.started_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "status": c.status,
                "agent_number": c.agent_number,
                "queue_name": c.queue_name,
                "talk_s": c.talk_s,
            }
            for c in info.earlier_calls
        ],
        "crm": {"fields": dict(info.crm), "url": info.crm_url} if "crm" in info.sources else None,
        "sources": list(info.sources),
        "errors": list(info.errors),
    }


# ------------------------------------------------------------------------------------ the service


@dataclass(frozen=True, slots=True)
class _CrmOutcome:
    answer: CrmAnswer | None  # None: not found, or an error
    error: str | None


class _Throttle:
    """At most one log line per key and interval; says how many were held back."""

    def __init__(self, clock: Callable[[], float], interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)


def _validate_crm_url(template: str) -> bool:
    """ConfigError unless `template` is a usable CRM URL template; returns whether it uses {did}."""
    if len(template) > _URL_MAX:
        raise ConfigError(f"crm_url: must be at most {_URL_MAX} characters")
    if "{number}" not in template:
        raise ConfigError("crm_url: must contain the {number} placeholder")
    sample = template.replace("{number}", "1").replace("{did}", "1")
    if "{" in sample or "}" in sample:
        raise ConfigError("crm_url: only the {number} and {did} placeholders are known")
    try:
        parts = urlsplit(sample)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"crm_url: not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("crm_url: must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ConfigError("crm_url: must not contain credentials; use crm_token")
    if any(ch.isspace() for ch in template):
        raise ConfigError("crm_url: must not contain spaces")
    return "{did}" in template


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}: must be a positive number of seconds (got {value!r})")
    return float(value)


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: must be a positive integer (got {value!r})")
    return value


class CallerLookupService:
    def __init__(
        self,
        customers: CustomerRepository,
        bus: EventBus,
        *,
        crm_url: str = "",
        crm_token: str = "",
        crm_timeout: float = 0.5,
        lookup_timeout: float = 0.6,
        cache_ttl: float = 300.0,
        negative_ttl: float = 60.0,
        cache_size: int = 10_000,
        earlier_calls: int = 5,
        max_answer_bytes: int = 65_536,
        max_db_reads: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = customers
        self._bus = bus
        self._crm_url = crm_url
        self._uses_did = _validate_crm_url(crm_url) if crm_url else False
        if any(ord(c) < 33 or ord(c) > 126 for c in crm_token):
            raise ConfigError("crm_token: must be printable ASCII without spaces")
        self._token = crm_token
        self._crm_timeout = _positive("crm_timeout", crm_timeout)
        self._lookup_timeout = _positive("lookup_timeout", lookup_timeout)
        self._ttl = _positive("crm_cache_ttl", cache_ttl)
        self._negative_ttl = _positive("crm_negative_ttl", negative_ttl)
        self._cache_size = _count("crm_cache_size", cache_size)
        self._earlier = _count("earlier_calls", earlier_calls)
        self._max_bytes = _count("max_answer_bytes", max_answer_bytes)
        self._max_db_reads = _count("max_db_reads", max_db_reads)
        self._clock = clock
        self._client: aiohttp.ClientSession | None = None
        self._cache: OrderedDict[tuple[str, str], tuple[float, _CrmOutcome]] = OrderedDict()
        self._inflight: dict[tuple[str, str], asyncio.Task[_CrmOutcome]] = {}
        self._db_tasks: set[asyncio.Task[tuple[Customer | None, tuple[EarlierCall, ...]]]] = set()
        self._by_call: OrderedDict[str, CallerInfo] = OrderedDict()
        self._pop_tasks: set[asyncio.Task[Event]] = set()
        self._throttle = _Throttle(clock, _LOG_INTERVAL)
        self.lookups = 0
        self.crm_requests = 0
        self.crm_errors = 0
        self.cache_hits = 0
        self.db_errors = 0

    # ------------------------------------------------------------------ public
    async def lookup(self, number: str, *, did: str | None = None, call_id: str | None = None) -> CallerInfo:
        """What is known about caller `number` (as Asterisk gives it), within `lookup_timeout`.

        With `call_id`, that call is left out of the earlier calls and the answer is kept for
        `screen_pop` of the same call."""
        self.lookups += 1
        normalized = normalize_number(number)
        if normalized is None:  # anonymous, "unknown", or not a number: nothing to look up
            info = CallerInfo("", None, None, (), _EMPTY_FIELDS, None, (), ())
            return self._remember(call_id, info)
        errors: list[str] = []
        db_task = self._start_db_read(normalized, call_id, errors)
        crm_outcome: _CrmOutcome | None = None
        crm_task: asyncio.Task[_CrmOutcome] | None = None
        if self._crm_url:
            key = (normalized, (did or "") if self._uses_did else "")
            crm_outcome = self._cached(key)
            if crm_outcome is None:
                crm_task = self._crm_request(key, did)
        waits = [t for t in (db_task, crm_task) if t is not None and not t.done()]
        if waits:
            # asyncio.wait neither cancels what is still running at the deadline nor when this lookup is
            # cancelled: the database thread and the shared CRM request finish on their own.
            await asyncio.wait(waits, timeout=self._lookup_timeout)

        customer: Customer | None = None
        calls: tuple[EarlierCall, ...] = ()
        if db_task is not None:
            if not db_task.done():
                errors.append(f"database: no answer within {self._lookup_timeout:g} s")
            elif db_task.cancelled():
                errors.append("database: read cancelled")
            elif (exc := db_task.exception()) is not None:
                errors.append(f"database: {exc}")
            else:
                customer, calls = db_task.result()
        if crm_task is not None:
            if not crm_task.done():
                errors.append(f"crm: no answer within the lookup deadline ({self._lookup_timeout:g} s)")
            elif crm_task.cancelled():
                errors.append("crm: request cancelled")
            else:
                crm_outcome = crm_task.result()
        answer = None
        if crm_outcome is not None:
            if crm_outcome.error is not None:
                errors.append(crm_outcome.error)
            elif crm_outcome.answer is not None and crm_outcome.answer.found:
                answer = crm_outcome.answer

        sources = []
        if customer is not None:
            sources.append("customers")
        if calls:
            sources.append("calls")
        if answer is not None:
            sources.append("crm")
        name = sanitize_caller_name(answer.name) if answer is not None else None
        if name is None and customer is not None:
            name = sanitize_caller_name(customer.name)
        info = CallerInfo(
            number=normalized,
            name=name,
            customer=customer,
            earlier_calls=calls,
            crm=answer.fields if answer is not None else _EMPTY_FIELDS,
            crm_url=answer.url if answer is not None else None,
            sources=tuple(sources),
            errors=tuple(errors),
        )
        return self._remember(call_id, info)

    async def screen_pop(
        self, *, call_id: str, number: str | None, agent: str, queue: str | None = None, did: str | None = None
    ) -> Event:
        """Publish ``call.screen_pop`` for the agent whose phone rings: the call's earlier lookup when
        there was one, else a new one."""
        info = self._by_call.get(call_id)
        if info is None:
            info = await self.lookup(number or "", did=did, call_id=call_id)
        return self._bus.publish(SCREEN_POP_EVENT, screen_pop_payload(info, call_id, agent, queue))

    def screen_pop_nowait(
        self, *, call_id: str, number: str | None, agent: str, queue: str | None = None, did: str | None = None
    ) -> Event | None:
        """`screen_pop` for callers that must not wait (an AMI event handler): publishes at once when the
        call was looked up already and returns the event; otherwise looks up in a task of its own
        (tracked, cancelled by `aclose`), publishes when done, and returns None."""
        info = self._by_call.get(call_id)
        if info is not None:
            return self._bus.publish(SCREEN_POP_EVENT, screen_pop_payload(info, call_id, agent, queue))
        task = asyncio.get_running_loop().create_task(
            self.screen_pop(call_id=call_id, number=number, agent=agent, queue=queue, did=did),
            name=f"screen-pop-{call_id}",
        )
        self._pop_tasks.add(task)
        task.add_done_callback(self._pop_done)
        return None

    def _pop_done(self, task: asyncio.Task[Event]) -> None:
        self._pop_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("caller lookup: screen pop failed", exc_info=task.exception())

    def forget_call(self, call_id: str) -> None:
        """Drop the remembered lookup of an ended call (it would age out anyway)."""
        self._by_call.pop(call_id, None)

    def stats(self) -> dict[str, int]:
        return {
            "lookups": self.lookups,
            "crm_requests": self.crm_requests,
            "crm_errors": self.crm_errors,
            "cache_hits": self.cache_hits,
            "cached": len(self._cache),
            "db_errors": self.db_errors,
            "db_reads_running": len(self._db_tasks),
        }

    async def aclose(self) -> None:
        """Cancel screen pops and CRM requests still running and close the HTTP client."""
        running = [*self._pop_tasks, *self._inflight.values()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
        if self._client is not None:
            await self._client.close()
            self._client = None

    # ------------------------------------------------------------------ database
    def _start_db_read(
        self, number: str, call_id: str | None, errors: list[str]
    ) -> asyncio.Task[tuple[Customer | None, tuple[EarlierCall, ...]]] | None:
        if len(self._db_tasks) >= self._max_db_reads:
            errors.append(f"database: skipped, {len(self._db_tasks)} earlier reads still running")
            self._warn(
                "db-busy", "caller lookup: %d database reads still running; database skipped", len(self._db_tasks)
            )
            return None
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._read_db, number, call_id))
        self._db_tasks.add(task)
        task.add_done_callback(self._db_done)
        return task

    def _read_db(self, number: str, call_id: str | None) -> tuple[Customer | None, tuple[EarlierCall, ...]]:
        customers, calls = self._repo.caller_history(number, self._earlier, exclude_call_id=call_id)
        return (customers[0] if customers else None), tuple(calls)

    def _db_done(self, task: asyncio.Task[tuple[Customer | None, tuple[EarlierCall, ...]]]) -> None:
        self._db_tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so a lookup that stopped waiting leaves no warning behind
        if exc is not None:
            self.db_errors += 1
            if isinstance(exc, HotlineError):
                self._warn("db", "caller lookup: database read failed: %s", exc)
            else:  # a bug, not an outage: keep the traceback
                log.error("caller lookup: database read failed", exc_info=exc)

    # ------------------------------------------------------------------ CRM
    def _cached(self, key: tuple[str, str]) -> _CrmOutcome | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        self.cache_hits += 1
        return entry[1]

    def _store(self, key: tuple[str, str], outcome: _CrmOutcome) -> None:
        found = outcome.answer is not None and outcome.answer.found
        self._cache[key] = (self._clock() + (self._ttl if found else self._negative_ttl), outcome)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _crm_request(self, key: tuple[str, str], did: str | None) -> asyncio.Task[_CrmOutcome]:
        task = self._inflight.get(key)
        if task is None:
            url = self._crm_url.replace("{number}", quote(key[0], safe="")).replace("{did}", quote(did or "", safe=""))
            task = asyncio.get_running_loop().create_task(self._fetch(key, url), name=f"crm-lookup-{key[0]}")
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return task

    async def _fetch(self, key: tuple[str, str], url: str) -> _CrmOutcome:
        self.crm_requests += 1
        try:
            async with asyncio.timeout(self._crm_timeout):
                answer = await self._get(url)
        except TimeoutError:
            return self._crm_failed("timeout", f"crm: no answer within {self._crm_timeout:g} s")
        except aiohttp.ClientError as exc:
            return self._crm_failed("unreachable", f"crm: unreachable ({type(exc).__name__}: {exc})")
        except ProtocolError as exc:
            return self._crm_failed("invalid", f"crm: ignored answer: {exc}")
        except Exception:  # a bug here must not turn into a failed call: report it, answer without the CRM
            log.exception("caller lookup: CRM request to %s failed unexpectedly", self._crm_url)
            self.crm_errors += 1
            return _CrmOutcome(None, "crm: internal error (see the log)")
        outcome = _CrmOutcome(answer, None)
        self._store(key, outcome)
        return outcome

    def _crm_failed(self, kind: str, message: str) -> _CrmOutcome:
        self.crm_errors += 1
        self._warn(f"crm-{kind}", "caller lookup: %s (%s)", message, self._crm_url)
        return _CrmOutcome(None, message)

    async def _get(self, url: str) -> CrmAnswer | None:
        """One CRM request: the checked answer, or None when the CRM does not know the number."""
        if self._client is None:
            # aiohttp: ~0.17 ms of CPU per keep-alive request against ~1.1 ms for httpx on the same loop
            # (measured 2026-12-07, bench/CALLS.md); one pool of at most 32 connections, reused.
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._crm_timeout),
                connector=aiohttp.TCPConnector(limit=32),
                trust_env=False,  # no proxy from the environment between Hotline and its CRM
                headers={"User-Agent": "Hotline caller lookup"},
            )
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        async with self._client.get(url, headers=headers, allow_redirects=False) as resp:
            if resp.status != 200:
                await self._drain(resp)
                if resp.status in (204, 404):
                    return None
                raise ProtocolError(f"HTTP {resp.status} {resp.reason or ''}".rstrip())
            length = self._declared_too_long(resp)
            if length is not None:
                raise ProtocolError(f"answer larger than {self._max_bytes} bytes (Content-Length {length})")
            body = await self._read_body(resp)
            if body is None:
                raise ProtocolError(f"answer larger than {self._max_bytes} bytes")
        return parse_crm_answer(body, max_bytes=self._max_bytes)

    async def _drain(self, resp: aiohttp.ClientResponse) -> None:
        """Read a not-found or error answer's (short) body to its end, so that its connection serves the next
        lookup: a response closed unread closes its connection, and with TLS the next lookup would pay a
        handshake (most callers are unknown to the CRM).  The status is the answer: a body that is too long,
        slow or broken only costs this connection, never an error or a wait."""
        if self._declared_too_long(resp) is not None:
            return
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with asyncio.timeout(_DRAIN_S):
                await self._read_body(resp)

    def _declared_too_long(self, resp: aiohttp.ClientResponse) -> str | None:
        """The answer's Content-Length when it announces more than the size limit, else None."""
        length = resp.headers.get("Content-Length", "")
        return length if length.isdigit() and int(length) > self._max_bytes else None

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes | None:
        """The whole body, or None as soon as it exceeds the size limit (the rest is left unread and the
        connection is closed, not returned to the pool)."""
        body = bytearray()
        async for chunk in resp.content.iter_any():
            body += chunk
            if len(body) > self._max_bytes:
                resp.close()
                return None
        return bytes(body)

    # ------------------------------------------------------------------ helpers
    def _remember(self, call_id: str | None, info: CallerInfo) -> CallerInfo:
        if call_id is not None:
            self._by_call[call_id] = info
            self._by_call.move_to_end(call_id)
            while len(self._by_call) > _BY_CALL_MAX:
                self._by_call.popitem(last=False)
        return info

    def _warn(self, key: str, message: str, *args: object) -> None:
        held = self._throttle.allow(key)
        if held is not None:
            suffix = f" ({held} similar messages held back)" if held else ""
            log.warning(message + suffix, *args)
