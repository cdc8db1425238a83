"""EventBus: ordering, ids, isolation from broken subscribers, read-only data, the resume ring."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hotline.errors import ValidationError
from hotline.features.events import Event, EventBus


def test_events_get_sortable_ids_utc_times_and_consecutive_positions() -> None:
    bus = EventBus()
    before = datetime.now(UTC)
    events = [bus.publish("agent.state", {"i": i}) for i in range(200)]
    after = datetime.now(UTC)
    assert [e.position for e in events] == list(range(1, 201))
    assert bus.position == 200
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert len({e.id for e in events}) == 200
    assert all(uuid.UUID(e.id).version == 7 for e in events)
    assert all(e.ts.tzinfo is UTC and before <= e.ts <= after for e in events)
    assert [e.data["i"] for e in events] == list(range(200))


def test_every_subscriber_gets_every_event_in_order_and_can_unsubscribe() -> None:
    bus = EventBus()
    a: list[int] = []
    b: list[int] = []
    sub_a = bus.subscribe(lambda e: a.append(e.position))
    with bus.subscribe(lambda e: b.append(e.position)):
        bus.publish("call.ringing", {})
        bus.publish("call.answered", {})
    bus.publish("call.ended", {})
    sub_a.close()
    sub_a.close()  # idempotent
    bus.publish("call.ended", {})
    assert a == [1, 2, 3]
    assert b == [1, 2]
    assert bus.subscriber_count == 0


def test_a_failing_subscriber_neither_breaks_publish_nor_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    got: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError(f"boom on {event.name}")

    bus.subscribe(broken)
    bus.subscribe(lambda e: got.append(e.name))
    with caplog.at_level(logging.ERROR, logger="hotline.features.events.bus"):
        for _ in range(12):
            bus.publish("agent.state", {})
    assert got == ["agent.state"] * 12
    assert bus.subscriber_errors == 12
    # logged on the 1st and 10th failure only, each with its traceback
    logged = [r for r in caplog.records if "subscriber" in r.getMessage()]
    assert len(logged) == 2
    assert all(r.exc_info is not None for r in logged)


def test_events_published_from_a_callback_keep_position_order_for_everyone() -> None:
    bus = EventBus()
    first: list[tuple[int, str]] = []
    second: list[tuple[int, str]] = []

    def echo(event: Event) -> None:
        first.append((event.position, event.name))
        if event.name == "call.ringing":
            bus.publish("call.screen_pop", {"for": event.position})

    bus.subscribe(echo)
    bus.subscribe(lambda e: second.append((e.position, e.name)))
    nested = bus.publish("call.ringing", {})
    assert nested.position == 1
    assert first == second == [(1, "call.ringing"), (2, "call.screen_pop")]


def test_subscribing_inside_a_callback_takes_effect_from_the_next_event() -> None:
    bus = EventBus()
    late: list[int] = []

    def join(event: Event) -> None:
        if event.position == 1:
            bus.subscribe(lambda e: late.append(e.position))

    bus.subscribe(join)
    bus.publish("a.b", {})
    bus.publish("a.b", {})
    assert late == [2]


def test_data_is_a_deep_read_only_copy_of_json_values() -> None:
    bus = EventBus()
    source: dict[str, object] = {
        "caller": {"number": "+74951234567", "tags": ["vip", "ru"]},
        "n": 3,
        "x": 1.5,
        "ok": True,
        "none": None,
        "at": datetime(2025, 11, 25, 13, 0, tzinfo=timezone(timedelta(hours=3))),
    }
    event = bus.publish("call.screen_pop", source)
    source["n"] = 4
    source["caller"]["tags"].append("changed")  # type: ignore[index, union-attr]
    assert event.data["n"] == 3
    with pytest.raises(TypeError):
        event.data["n"] = 5  # type: ignore[index]
    wire = event.as_dict()
    assert wire == {
        "id": event.id,
        "event": "call.screen_pop",
        "ts": event.ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "data": {
            "caller": {"number": "+74951234567", "tags": ["vip", "ru"]},
            "n": 3,
            "x": 1.5,
            "ok": True,
            "none": None,
            "at": "2025-11-25T10:00:00.000000Z",
        },
    }
    assert json.loads(event.to_json()) == wire


@pytest.mark.parametrize(
    ("name", "data", "field"),
    [
        ("Agent.State", {}, "event"),
        ("agent..state", {}, "event"),
        ("", {}, "event"),
        ("a" * 65, {}, "event"),
        ("agent.state", [], "data"),
        ("agent.state", {"x": object()}, "data.x"),
        ("agent.state", {"x": {"y": [1, {2: 3}]}}, "data.x.y[1]"),
        ("agent.state", {"x": float("nan")}, "data.x"),
        ("agent.state", {"x": datetime(2025, 1, 1)}, "data.x"),
        ("agent.state", {"x": b"bytes"}, "data.x"),
    ],
)
def test_bad_names_and_data_are_refused_before_anything_is_published(name: str, data: object, field: str) -> None:
    bus = EventBus()
    got: list[Event] = []
    bus.subscribe(got.append)
    with pytest.raises(ValidationError) as info:
        bus.publish(name, data)  # type: ignore[arg-type]
    assert info.value.field == field
    assert got == [] and bus.position == 0 and bus.recent() == []


def test_deeply_nested_data_is_refused() -> None:
    nested: dict[str, object] = {}
    inner = nested
    for _ in range(20):
        inner["x"] = {}
        inner = inner["x"]  # type: ignore[assignment]
    with pytest.raises(ValidationError, match="nested deeper"):
        EventBus().publish("a.b", nested)


def test_async_callbacks_are_refused() -> None:
    async def handler(event: Event) -> None:
        return None

    with pytest.raises(ValidationError, match="not a coroutine"):
        EventBus().subscribe(handler)


def test_the_ring_keeps_the_newest_events_for_resuming() -> None:
    bus = EventBus(ring_size=5)
    assert bus.since(0) == []
    for i in range(1, 9):
        bus.publish("a.b", {"i": i})
    assert [e.position for e in bus.recent()] == [4, 5, 6, 7, 8]
    assert [e.position for e in bus.recent(2)] == [7, 8]
    assert [e.position for e in bus.since(3) or []] == [4, 5, 6, 7, 8]
    assert [e.position for e in bus.since(6) or []] == [7, 8]
    assert bus.since(8) == []
    assert bus.since(2) is None  # event 3 is gone: the consumer must resynchronise
    assert bus.since(9) is None  # a position from another stream (before a restart)
    with pytest.raises(ValidationError):
        bus.since(-1)
    assert EventBus().stream_id != bus.stream_id


def test_ring_size_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        EventBus(ring_size=0)
