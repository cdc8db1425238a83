"""The event bus: the in-process publish/subscribe hub between features and the outside world.

Features publish what happened (``agent.state``, ``call.ringing``, ``call.screen_pop``...); consumers
(webhooks, later the WebSocket stream) subscribe.  The bus knows nothing about either side.

Invariants:
- `publish` never blocks and never raises because of a subscriber: callbacks are plain functions called
  inline, an exception in one is logged (throttled) and counted, and the others still get the event.
  Subscribers must therefore only hand the event on (append to a queue, set a flag), never wait.
- Events reach every subscriber in position order, even when a subscriber publishes from its callback:
  such an event waits until the current one has reached everybody.
- Each event has a UUIDv7 id (sortable across instances), an aware UTC timestamp and a position that
  increases by exactly one per event within this bus; the last `ring_size` events stay in a ring so a
  consumer that lost its place can resume with `since(position)` (positions restart with the process:
  `stream_id` tells one bus's positions from another's).
- `Event.data` is a deep read-only copy made of JSON types only (str, int, finite float, bool, None,
  lists as tuples, string-keyed mappings); aware datetimes become ISO 8601 strings.  A value that is not
  JSON raises `ValidationError` in the publisher's face, not in a consumer much later.
- Loop thread only: publish from another thread with ``loop.call_soon_threadsafe(bus.publish, ...)``.
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from hotline.errors import ValidationError
from hotline.ids import new_call_id

log = logging.getLogger(__name__)

#: Event names: dotted lowercase words, e.g. ``agent.state`` or ``call.screen_pop`` (fits webhook_deliveries.event).
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
EVENT_NAME_MAX = 64
_MAX_DEPTH = 16

Subscriber = Callable[["Event"], object]


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _freeze(value: object, path: str, depth: int = 0) -> object:
    """A read-only deep copy of `value` made of JSON types; ValidationError naming the path otherwise."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, f"must be a finite number (got {value!r})")
        return value
    if depth >= _MAX_DEPTH:
        raise ValidationError(path, f"is nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        frozen: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(path, f"has a key that is not a string ({key!r})")
            frozen[key] = _freeze(item, f"{path}.{key}", depth + 1)
        return MappingProxyType(frozen)
    if isinstance(value, list | tuple):
        return tuple(_freeze(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValidationError(path, "is a naive datetime; give an aware one")
        return _iso(value)
    raise ValidationError(path, f"is a {type(value).__name__}, which JSON cannot carry")


def thaw(value: object) -> object:
    """Plain dicts and lists again (for JSON encoders and consumers that want to modify a copy)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Event:
    """One published event.  `data` is read-only; `as_dict()` is the wire shape webhooks send."""

    id: str
    position: int
    name: str
    ts: datetime
    data: Mapping[str, object] = field(hash=False)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "event": self.name, "ts": _iso(self.ts), "data": thaw(self.data)}

    def to_json(self) -> str:
        """Compact UTF-8 JSON of `as_dict()` (keys in that order; non-ASCII kept as is)."""
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"))


class Subscription:
    """What `subscribe` returns: `close()` (idempotent) stops the deliveries; also a context manager."""

    __slots__ = ("_bus", "callback", "errors")

    def __init__(self, bus: EventBus, callback: Subscriber) -> None:
        self._bus: EventBus | None = bus
        self.callback = callback
        self.errors = 0

    def close(self) -> None:
        if self._bus is not None:
            self._bus._remove(self)
            self._bus = None

    @property
    def active(self) -> bool:
        return self._bus is not None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, *, ring_size: int = 10_000) -> None:
        if isinstance(ring_size, bool) or not isinstance(ring_size, int) or ring_size < 1:
            raise ValidationError("ring_size", f"must be a positive integer (got {ring_size!r})")
        self.stream_id = new_call_id()
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._subs: tuple[Subscription, ...] = ()
        self._positions = itertools.count(1)
        self._position = 0
        self._backlog: deque[Event] = deque()  # events published by subscribers while dispatching
        self._dispatching = False
        self.published = 0
        self.subscriber_errors = 0

    # ------------------------------------------------------------------ publishing
    def publish(self, name: str, data: Mapping[str, object]) -> Event:
        """Record the event and hand it to every subscriber; returns it.

        Raises `ValidationError` only for a bad name or data (the publisher's bug), never because of a
        subscriber."""
        if not isinstance(name, str) or len(name) > EVENT_NAME_MAX or EVENT_NAME.fullmatch(name) is None:
            raise ValidationError(
                "event", f"must be dotted lowercase words, at most {EVENT_NAME_MAX} characters (got {name!r})"
            )
        if not isinstance(data, Mapping):
            raise ValidationError("data", f"must be a mapping (got {type(data).__name__})")
        frozen = _freeze(data, "data")
        assert isinstance(frozen, Mapping)
        position = next(self._positions)
        event = Event(new_call_id(), position, name, datetime.now(UTC), frozen)
        self._position = position
        self._ring.append(event)
        self.published += 1
        if self._dispatching:
            self._backlog.append(event)  # keep position order: the current event reaches everybody first
            return event
        self._dispatching = True
        try:
            self._dispatch(event)
            while self._backlog:
                self._dispatch(self._backlog.popleft())
        finally:
            self._dispatching = False
        return event

    def _dispatch(self, event: Event) -> None:
        for sub in self._subs:  # a tuple: (un)subscribing inside a callback does not disturb this loop
            if not sub.active:
                continue
            try:
                sub.callback(event)
            except Exception:
                # A broken consumer must not take the publisher (an AMI handler, the router) down with it.
                sub.errors += 1
                self.subscriber_errors += 1
                if _is_power_of_ten(sub.errors):  # 1st, 10th, 100th... failure: enough to see, not a flood
                    log.exception(
                        "event bus: subscriber %r failed on %s (#%d failure of this subscriber)",
                        sub.callback,
                        event.name,
                        sub.errors,
                    )

    # ------------------------------------------------------------------ subscribing
    def subscribe(self, callback: Subscriber) -> Subscription:
        """Call `callback(event)` for every event published from now on; close the result to stop."""
        if not callable(callback):
            raise ValidationError("callback", "must be callable")
        if inspect.iscoroutinefunction(callback):
            # its coroutine would never be awaited: the bus does not wait for anybody
            raise ValidationError("callback", "must be a plain function that does not block, not a coroutine")
        sub = Subscription(self, callback)
        self._subs = (*self._subs, sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._subs = tuple(s for s in self._subs if s is not sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    # ------------------------------------------------------------------ resuming
    @property
    def position(self) -> int:
        """The position of the last event published (0 before the first)."""
        return self._position

    def recent(self, limit: int | None = None) -> list[Event]:
        """The newest events still in the ring, oldest first (at most `limit`)."""
        events = list(self._ring)
        return events if limit is None else events[max(0, len(events) - limit) :]

    def since(self, position: int) -> list[Event] | None:
        """Every event after `position`, oldest first; None when the ring no longer holds all of them
        (the consumer must then resynchronise from the source of truth)."""
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise ValidationError("position", f"must be a non-negative integer (got {position!r})")
        if position > self._position:
            return None  # a position this bus never gave out: another stream (a restarted process)
        if position == self._position:
            return []
        if not self._ring or position < self._ring[0].position - 1:
            return None
        first = self._ring[0].position
        return list(itertools.islice(self._ring, position - first + 1, None))


def _is_power_of_ten(n: int) -> bool:
    while n % 10 == 0:
        n //= 10
    return n == 1
