"""The event stream (/ws/events): a real Hotline in this process and a real WebSocket client (websockets).

Events are published on Hotline's own bus from the test; every wait is on a message the server sends
(an event, a reply, a close), never on time.  Unit tests of the pure rules (permissions, Origin, message
parsing) come first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hotline.app import Hotline
from hotline.domain.permissions import ROLES, Principal
from hotline.errors import ValidationError
from hotline.features.events import Event
from hotline.settings import load_settings
from hotline.web import ws
from hotline.web.auth import SESSION_COOKIE

from .browser import free_port

TIMEOUT_S = 10
QUEUE_SIZE = 10  # the smallest ws_queue_size the settings allow
MAX_CLIENTS = 3


# -------------------------------------------------------------------------------------------- pure rules
def _event(name: str, **data: Any) -> Event:
    from datetime import UTC, datetime

    return Event("id", 1, name, datetime.now(UTC), MappingProxyType(data))


def _principal(*scopes: str, agent: str | None = None) -> Principal:
    return Principal(kind="api_key", name="k", scopes=frozenset(scopes), agent_number=agent)


@pytest.mark.parametrize(
    ("scopes", "agent", "name", "data", "seen"),
    [
        (("events:read",), None, "anything.at_all", {}, True),
        (("stats:read",), None, "queue.stats", {}, True),
        (("stats:read",), None, "agent.login", {"agent": "1001"}, False),
        (("agents:read",), None, "agent.pause", {"agent": "1002"}, True),
        (("agents:read",), None, "call.screen_pop", {"agent": "1002"}, False),
        (("calls:read",), None, "call.ended", {"agent": ""}, True),
        (("self",), "1001", "agent.pause", {"agent": "1001"}, True),
        (("self",), "1001", "agent.pause", {"agent": "1002"}, False),
        (("self",), "1001", "call.screen_pop", {"agent": "1001"}, True),
        (("self",), "1001", "call.screen_pop", {"agent": "1002"}, False),
        (("self",), "1001", "call.ended", {"agent": 1001}, False),  # not the string: no match by accident
        (("self",), "1001", "call.ended", {}, False),
        (("self",), "1001", "queue.stats", {"agent": "1001"}, False),
        (("self",), None, "agent.pause", {"agent": "1001"}, False),
        (("self",), "1001", "webhook.failed", {"agent": "1001"}, False),  # other families: events:read only
    ],
)
def test_may_see(scopes: tuple[str, ...], agent: str | None, name: str, data: dict[str, Any], seen: bool) -> None:
    assert ws.may_see(_principal(*scopes, agent=agent), _event(name, **data)) is seen


def test_a_pattern_the_principal_can_never_see_is_refused_naming_the_permission() -> None:
    agent = _principal("self", agent="1001")
    assert ws.family_refusal(agent, "agent.*") is None
    assert ws.family_refusal(agent, "*") is None
    assert ws.family_refusal(agent, "queue.*") == "'queue.*' needs the permission stats:read or events:read"
    assert ws.family_refusal(_principal("stats:read"), "call.ended") is not None
    assert ws.family_refusal(_principal("events:read"), "webhook.failed") is None


@pytest.mark.parametrize(
    ("origin", "host", "public", "ok"),
    [
        ("http://127.0.0.1:8480", "127.0.0.1:8480", "http://127.0.0.1:8480", True),
        ("https://hotline.example.com", "10.0.0.5:8480", "https://hotline.example.com", True),
        ("https://hotline.example.com:443", "10.0.0.5:8480", "https://HOTLINE.example.com/", True),
        ("https://hotline.example.com", "hotline.example.com", "", True),  # behind a TLS proxy: the Host
        ("http://evil.example", "127.0.0.1:8480", "http://127.0.0.1:8480", False),
        ("http://127.0.0.1:8481", "127.0.0.1:8480", "http://127.0.0.1:8480", False),
        ("null", "127.0.0.1:8480", "http://127.0.0.1:8480", False),
        ("", "127.0.0.1:8480", "http://127.0.0.1:8480", False),
        ("http://a", "a/b", "", False),  # a Host that is not a host name is ignored
    ],
)
def test_origin_allowed(origin: str, host: str, public: str, ok: bool) -> None:
    assert ws.origin_allowed(origin, host, public) is ok


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("not json", "message", "is not JSON: Expecting value at line 1 column 1"),
        ("[1]", "message", "must be a JSON object (got list)"),
        ('{"events": ["*"]}', "type", "missing"),
        ('{"type": "unsubscribe"}', "type", "unknown message type 'unsubscribe'"),
        ('{"type": "subscribe"}', "events", "missing"),
        ('{"type": "subscribe", "events": "queue.*"}', "events", "must be a list"),
        ('{"type": "subscribe", "events": []}', "events", "at least one"),
        ('{"type": "subscribe", "events": ["queue.*", "Agent.*"]}', "events[1]", "'Agent.*' is not an event pattern"),
        ('{"type": "subscribe", "events": ["queue.*", 3]}', "events[1]", "must be a string (got int)"),
        ('{"type": "subscribe", "events": ["*"], "since": -1}', "since", "non-negative integer"),
        ('{"type": "subscribe", "events": ["*"], "since": true}', "since", "non-negative integer"),
        ('{"type": "subscribe", "events": ["*"], "since": "5"}', "since", "non-negative integer"),
        ('{"type": "subscribe", "events": ["*"], "stream": 7}', "stream", "stream id"),
        ('{"type": "subscribe", "events": ["*"], "sinse": 5}', "sinse", "unknown field"),
        ('{"type": "ping", "x": 1}', "x", "unknown field"),
        ("[" * 100_000, "message", "larger than 65536 bytes"),
        ("[" * 60_000, "message", "not usable JSON (RecursionError)"),
        ('"' + "é" * 40_000 + '"', "message", "larger than 65536 bytes"),  # bytes, not characters
    ],
)
def test_bad_client_messages_name_the_field(text: str, field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ws.parse_client_message(text)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_patterns_are_globs_over_whole_names() -> None:
    request = ws.parse_client_message('{"type":"subscribe","events":["queue.*","call.screen_pop","queue.*"]}')
    assert isinstance(request, ws.Subscribe)
    assert request.patterns == ("queue.*", "call.screen_pop")  # duplicates dropped
    assert request.regex.fullmatch("queue.stats")
    assert request.regex.fullmatch("call.screen_pop")
    assert not request.regex.fullmatch("call.screen_popped")
    assert not request.regex.fullmatch("queues.stats")
    assert isinstance(ws.parse_client_message('{"type":"ping"}'), ws.Ping)


# -------------------------------------------------------------------------------------------- Hotline
@dataclass(frozen=True)
class Stream:
    hotline: Hotline
    url: str  # ws://host:port/ws/events
    origin: str
    admin_key: str  # events:read (an admin's key)

    async def key(self, name: str, *scopes: str) -> str:
        admin = Principal(kind="user", name="admin", scopes=ROLES["admin"], role="admin")
        _, key = await self.hotline.accounts.create_api_key(name, list(scopes), created_by=admin)
        return key

    async def session(self, username: str, role: str, agent: str | None = None) -> str:
        await asyncio.to_thread(
            self.hotline.accounts.repo.add_user, username, "correct horse battery", role=role, agent=agent
        )
        login = await self.hotline.accounts.login(username, "correct horse battery", address="127.0.0.1")
        return login.token

    def connect(self, key: str | None = None, **kwargs: Any) -> connect:
        headers = dict(kwargs.pop("additional_headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return connect(
            self.url,
            additional_headers=headers,
            proxy=None,
            open_timeout=TIMEOUT_S,
            close_timeout=TIMEOUT_S,
            **kwargs,
        )

    def publish(self, name: str, **data: Any) -> Event:
        return self.hotline.bus.publish(name, data)


async def _start(tmp_path: Path, **overrides: Any) -> Hotline:
    settings = load_settings(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "asterisk_root": tmp_path / "no-asterisk-root",
            "http_port": free_port(),
            "agi_port": free_port(),
            "realtime_port": free_port(),
            "ws_queue_size": QUEUE_SIZE,
            "ws_max_subscribers": MAX_CLIENTS,
            **overrides,
        },
    )
    hotline = Hotline(settings)
    await hotline.start()
    return hotline


@pytest_asyncio.fixture
async def stream(tmp_path: Path) -> AsyncIterator[Stream]:
    hotline = await _start(tmp_path)
    try:
        base = hotline.settings.effective_public_url
        s = Stream(hotline, base.replace("http://", "ws://") + ws.PATH, base, "")
        s = Stream(hotline, s.url, base, await s.key("admin-key", "events:read"))
        await asyncio.to_thread(hotline.config_repo.add_agent, "1001", "Alice")
        await asyncio.to_thread(hotline.config_repo.add_agent, "1002", "Boris")
        yield s
    finally:
        await hotline.stop()


async def recv(conn: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT_S):
        message = json.loads(await conn.recv())
    assert isinstance(message, dict)
    return message


async def recv_type(conn: ClientConnection, kind: str) -> dict[str, Any]:
    message = await recv(conn)
    assert message["type"] == kind, message
    return message


async def subscribe(conn: ClientConnection, events: list[str], **extra: Any) -> dict[str, Any]:
    hello = await recv_type(conn, "hello")
    await conn.send(json.dumps({"type": "subscribe", "events": events, **extra}))
    return hello


async def events(conn: ClientConnection, n: int) -> list[dict[str, Any]]:
    return [await recv_type(conn, "event") for _ in range(n)]


def names(received: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in received]


def refusal(caught: pytest.ExceptionInfo[InvalidStatus]) -> tuple[int, dict[str, Any]]:
    response = caught.value.response
    return response.status_code, json.loads(response.body or b"{}")


# -------------------------------------------------------------------------------------------- admission
async def test_no_or_wrong_credentials_are_refused_before_the_handshake(stream: Stream) -> None:
    with pytest.raises(InvalidStatus) as caught:
        async with stream.connect():
            pass
    status, body = refusal(caught)
    assert status == 403
    assert body["code"] == "unauthenticated"
    assert "API key" in body["message"]
    with pytest.raises(InvalidStatus) as caught:
        async with stream.connect("hlk_0123456789ab_not-a-real-key"):
            pass
    assert refusal(caught)[0] == 403
    with pytest.raises(InvalidStatus) as caught:
        async with stream.connect(additional_headers={"Cookie": f"{SESSION_COOKIE}=forged"}, origin=stream.origin):
            pass
    assert refusal(caught)[0] == 403


async def test_a_session_cookie_streams_only_to_hotlines_own_pages(stream: Stream) -> None:
    token = await stream.session("sue", "supervisor")
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    for origin in ("http://evil.example", None):  # a cross-site page; no Origin at all
        with pytest.raises(InvalidStatus) as caught:
            async with stream.connect(additional_headers=cookie, origin=origin):
                pass
        status, body = refusal(caught)
        assert (status, body["code"]) == (403, "origin")
    async with stream.connect(additional_headers=cookie, origin=stream.origin) as conn:
        hello = await recv_type(conn, "hello")
        assert hello["user"] == "sue"
        assert hello["stream"] == stream.hotline.bus.stream_id


async def test_connections_beyond_ws_max_subscribers_are_refused(stream: Stream) -> None:
    opened = [await stream.connect(stream.admin_key) for _ in range(MAX_CLIENTS)]
    try:
        for conn in opened:
            await recv_type(conn, "hello")
        with pytest.raises(InvalidStatus) as caught:
            async with stream.connect(stream.admin_key):
                pass
        status, body = refusal(caught)
        assert (status, body["code"]) == (503, "full")
    finally:
        for conn in opened:
            await conn.close()
    await opened[0].wait_closed()
    # a slot is free again once a client left (the server sees the close before answering a new handshake)
    async with stream.connect(stream.admin_key) as conn:
        await recv_type(conn, "hello")


# -------------------------------------------------------------------------------------------- filtering
async def test_only_subscribed_events_arrive_in_order(stream: Stream) -> None:
    async with stream.connect(stream.admin_key) as conn:
        await subscribe(conn, ["queue.*", "call.screen_pop"])
        subscribed = await recv_type(conn, "subscribed")
        assert subscribed["events"] == ["queue.*", "call.screen_pop"]
        stream.publish("agent.login", agent="1001")
        first = stream.publish("queue.stats", queue="support", waiting=2)
        stream.publish("call.ended", call_id="c1", agent="1001")
        stream.publish("call.screen_pop", call_id="c1", agent="1001", caller={"number": "5551234", "name": "Ann"})
        stream.publish("queue.stats", queue="sales", waiting=0)  # the sentinel: nothing else came in between
        got = await events(conn, 3)
        assert names(got) == ["queue.stats", "call.screen_pop", "queue.stats"]
        assert got[0] == {"type": "event", "position": first.position, **first.as_dict()}
        assert got[1]["data"]["caller"] == {"number": "5551234", "name": "Ann"}
        assert [e["position"] for e in got] == [first.position, first.position + 2, first.position + 3]


async def test_an_agent_sees_only_its_own_agent_events_and_screen_pops(stream: Stream) -> None:
    token = await stream.session("alice", "agent", agent="1001")
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    async with stream.connect(additional_headers=cookie, origin=stream.origin) as conn:
        await subscribe(conn, ["queue.*"])
        error = await recv_type(conn, "error")
        assert (error["code"], error["field"]) == ("forbidden", "events[0]")
        assert "stats:read" in error["message"]
        await conn.send(json.dumps({"type": "subscribe", "events": ["*"]}))
        await recv_type(conn, "subscribed")
        stream.publish("queue.stats", queue="support", waiting=1)
        stream.publish("agent.pause", agent="1002", state="paused")
        stream.publish("agent.pause", agent="1001", state="paused")
        stream.publish("call.screen_pop", call_id="c2", agent="1002", caller={"number": "1", "name": ""})
        stream.publish("call.screen_pop", call_id="c3", agent="1001", caller={"number": "2", "name": ""})
        stream.publish("call.ended", call_id="c2", agent="1002")
        stream.publish("webhook.failed", agent="1001")
        stream.publish("call.ended", call_id="c3", agent="1001")
        got = await events(conn, 3)
        assert [(e["event"], e["data"]["agent"]) for e in got] == [
            ("agent.pause", "1001"),
            ("call.screen_pop", "1001"),
            ("call.ended", "1001"),
        ]


async def test_a_stats_key_sees_queue_tiles_and_nothing_else(stream: Stream) -> None:
    key = await stream.key("wallboard", "stats:read")
    async with stream.connect(key) as conn:
        await subscribe(conn, ["*"])
        await recv_type(conn, "subscribed")
        stream.publish("agent.login", agent="1001")
        stream.publish("call.screen_pop", agent="1001")
        stream.publish("queue.stats", queue="support")
        assert names(await events(conn, 1)) == ["queue.stats"]


# -------------------------------------------------------------------------------------------- resume
async def test_resume_with_since_gets_exactly_the_missed_events_then_live_ones(stream: Stream) -> None:
    async with stream.connect(stream.admin_key) as conn:
        hello = await subscribe(conn, ["call.*"])
        await recv_type(conn, "subscribed")
        for i in range(3):
            stream.publish("call.ended", call_id=f"seen-{i}")
        seen = await events(conn, 3)
    last = seen[-1]["position"]
    missed = [stream.publish("call.ended", call_id=f"missed-{i}") for i in range(4)]
    stream.publish("agent.login", agent="1001")  # missed too, but not subscribed: not replayed
    async with stream.connect(stream.admin_key) as conn:
        await subscribe(conn, ["call.*"], since=last, stream=hello["stream"])
        subscribed = await recv_type(conn, "subscribed")
        assert subscribed["replayed"] == 4
        assert subscribed["position"] == stream.hotline.bus.position
        live = stream.publish("call.ended", call_id="live")
        got = await events(conn, 5)
        assert [e["id"] for e in got] == [e.id for e in missed] + [live.id]
        await conn.send(json.dumps({"type": "ping"}))
        assert (await recv_type(conn, "pong"))["position"] == live.position  # no duplicate came before it


async def test_a_position_from_another_stream_gets_a_reset_then_live_events(stream: Stream) -> None:
    stream.publish("call.ended", call_id="before")
    async with stream.connect(stream.admin_key) as conn:
        await subscribe(conn, ["call.*"], since=1, stream="0190aaaa-0000-7000-8000-000000000000")
        reset = await recv_type(conn, "reset")
        assert reset["reason"] == "stream"
        assert reset["stream"] == stream.hotline.bus.stream_id
        assert (await recv_type(conn, "subscribed"))["replayed"] == 0
        stream.publish("call.ended", call_id="after")
        assert [e["data"]["call_id"] for e in await events(conn, 1)] == ["after"]
    async with stream.connect(stream.admin_key) as conn:
        ahead = stream.hotline.bus.position + 100
        await subscribe(conn, ["call.*"], since=ahead, stream=stream.hotline.bus.stream_id)
        assert (await recv_type(conn, "reset"))["reason"] == "unknown-position"


async def test_a_position_older_than_the_ring_gets_a_reset(tmp_path: Path) -> None:
    hotline = await _start(tmp_path, event_ring_size=100)
    try:
        s = Stream(hotline, hotline.settings.effective_public_url.replace("http://", "ws://") + ws.PATH, "", "")
        key = await s.key("k", "events:read")
        published = [s.publish("call.ended", call_id=str(i)) for i in range(150)]
        async with s.connect(key) as conn:
            await subscribe(conn, ["*"], since=published[10].position, stream=hotline.bus.stream_id)
            reset = await recv_type(conn, "reset")
            assert reset["reason"] == "expired"
            assert "REST" in reset["message"]
            assert (await recv_type(conn, "subscribed"))["replayed"] == 0  # live from now on
            await conn.send(json.dumps({"type": "subscribe", "events": ["*"], "since": published[139].position}))
            assert (await recv_type(conn, "subscribed"))["replayed"] == 10
            assert [e["data"]["call_id"] for e in await events(conn, 10)] == [str(i) for i in range(140, 150)]
    finally:
        await hotline.stop()


# -------------------------------------------------------------------------------------------- robustness
async def test_malformed_messages_get_a_precise_error_and_the_stream_goes_on(stream: Stream) -> None:
    errors_before = ws.metrics.errors_sent
    async with stream.connect(stream.admin_key) as conn:
        await recv_type(conn, "hello")
        bad: list[tuple[str | bytes, str]] = [
            ("{oops", "message"),
            ('{"type":"subscribe","events":["queue.*"],"since":"yesterday"}', "since"),
            ('{"type":"subscribe","events":["queue.*","QUEUE"]}', "events[1]"),
            ('{"type":"hello"}', "type"),
            (b"\x00\x01", "message"),
            ("x" * (ws.MAX_MESSAGE_BYTES + 1), "message"),
        ]
        for message, field in bad:
            await conn.send(message)
            error = await recv_type(conn, "error")
            assert error["field"] == field, error
        assert ws.metrics.errors_sent - errors_before == len(bad)
        await conn.send(json.dumps({"type": "subscribe", "events": ["queue.*"]}))
        await recv_type(conn, "subscribed")
        stream.publish("queue.stats", queue="support")
        assert names(await events(conn, 1)) == ["queue.stats"]


async def test_a_flood_of_messages_is_closed_with_1008(stream: Stream) -> None:
    async with stream.connect(stream.admin_key) as conn:
        await recv_type(conn, "hello")
        for _ in range(ws.RATE_BURST + 5):
            await conn.send('{"type":"ping"}')
        with pytest.raises(ConnectionClosed) as caught:
            while True:
                await recv(conn)
        assert caught.value.rcvd is not None
        assert caught.value.rcvd.code == 1008


async def test_a_slow_client_is_dropped_with_1013_and_others_keep_up(stream: Stream) -> None:
    payload = "x" * 32_000
    dropped_before = ws.metrics.clients_dropped
    # the slow client stops reading: its library buffers one message, then the socket buffers fill
    slow = await stream.connect(stream.admin_key, compression=None, max_queue=1)
    try:
        async with stream.connect(stream.admin_key, compression=None) as fast:
            for conn in (slow, fast):
                await subscribe(conn, ["call.*"])
                await recv_type(conn, "subscribed")
            sent = 0
            while ws.metrics.clients_dropped == dropped_before:
                assert sent < 20_000, "the slow client was never dropped"
                for _ in range(QUEUE_SIZE // 2):  # below the queue size: the fast one always keeps up
                    stream.publish("call.progress", n=sent, payload=payload)
                    sent += 1
                got = await events(fast, QUEUE_SIZE // 2)
                assert got[-1]["data"]["n"] == sent - 1
            # the fast client goes on
            stream.publish("call.progress", n=sent, payload="")
            assert (await events(fast, 1))[0]["data"]["n"] == sent
        # the slow one reads what reached it, then the close frame with the reason
        with pytest.raises(ConnectionClosed) as caught:
            while True:
                await recv(slow)
        assert caught.value.rcvd is not None
        assert caught.value.rcvd.code == 1013
        assert "too slow" in caught.value.rcvd.reason
    finally:
        await slow.close()


async def test_hotline_stop_closes_streams_with_1012(tmp_path: Path) -> None:
    hotline = await _start(tmp_path)
    stopped = False
    try:
        s = Stream(hotline, hotline.settings.effective_public_url.replace("http://", "ws://") + ws.PATH, "", "")
        key = await s.key("k", "events:read")
        open_before = ws.metrics.connections
        async with s.connect(key) as conn:
            await subscribe(conn, ["*"])
            await recv_type(conn, "subscribed")
            assert ws.metrics.connections == open_before + 1
            async with asyncio.timeout(TIMEOUT_S):
                await hotline.stop()
            stopped = True
            with pytest.raises(ConnectionClosed) as caught:
                await recv(conn)
            assert caught.value.rcvd is not None
            assert caught.value.rcvd.code == 1012
        assert ws.metrics.connections == open_before  # the handler finished during stop()
    finally:
        if not stopped:
            await hotline.stop()


@contextlib.asynccontextmanager
async def _serve_stream(endpoint: ws.EventStream) -> AsyncIterator[str]:
    """Only the stream endpoint (with short timers) on its own uvicorn server; yields its ws:// URL."""
    port = free_port()
    app = Starlette(routes=[WebSocketRoute(ws.PATH, endpoint)])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)  # uvicorn has no start-up event to wait on
        yield f"ws://127.0.0.1:{port}{ws.PATH}"
    finally:
        server.should_exit = True
        await task


async def test_idle_clients_get_keepalives_and_a_revoked_key_ends_the_stream(stream: Stream) -> None:
    endpoint = ws.EventStream(stream.hotline.services, keepalive=0.05, reauth=0.2)
    key = await stream.key("soon-revoked", "stats:read")
    async with _serve_stream(endpoint) as url:
        s = Stream(stream.hotline, url, stream.origin, stream.admin_key)
        async with s.connect(key) as conn:
            hello = await recv_type(conn, "hello")
            assert hello["keepalive"] == 0.05
            assert (await recv_type(conn, "keepalive"))["position"] == stream.hotline.bus.position
            await asyncio.to_thread(stream.hotline.accounts.repo.set_api_key_enabled, "soon-revoked", False)
            stream.hotline.accounts.forget_all()
            with pytest.raises(ConnectionClosed) as caught:
                while True:
                    assert (await recv(conn))["type"] == "keepalive"
            assert caught.value.rcvd is not None
            assert caught.value.rcvd.code == ws.CLOSE_UNAUTHENTICATED
