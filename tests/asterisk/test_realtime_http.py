"""The realtime listener's own HTTP/1.1 protocol (hotline/asterisk/realtime_http.py) over a real loopback
socket: the requests res_config_curl sends (recorded from Asterisk 22), keep-alive and pipelining, and
hostile input, which gets a precise status and a closed connection, never a hang."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.asterisk.realtime_backend import RealtimeASGI, RealtimeBackend
from hotline.asterisk.realtime_http import RealtimeListener, encode_response

from . import test_realtime_backend as rt
from .test_realtime_backend import TOKEN, recorded_requests

backend = rt.backend  # the same seeded backend, and its write-behind loop running, as the ASGI tests
persisting = rt.persisting


async def _listen(rb: RealtimeBackend, *, allowed: str = "127.0.0.0/8", **kw: float) -> RealtimeListener:
    listener = RealtimeListener(RealtimeASGI(rb, TOKEN, [allowed]), **kw)  # type: ignore[arg-type]
    await listener.start("127.0.0.1", 0)
    return listener


@pytest.fixture()
async def listener(backend) -> AsyncIterator[RealtimeListener]:  # type: ignore[no-untyped-def]
    lst = await _listen(backend[0])
    yield lst
    await lst.close()


def post(path: str, body: bytes, *, token: str = TOKEN, extra: bytes = b"") -> bytes:
    return (
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: asterisk-libcurl-agent/1.0\r\nAccept: */*\r\n"
            f"X-Hotline-Token: {token}\r\nX-Hotline-Node: node1\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        ).encode()
        + extra
        + b"\r\n"
        + body
    )


class Answer:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


async def read_answers(reader: asyncio.StreamReader, n: int) -> list[Answer]:
    """Exactly n HTTP answers, parsed by a real HTTP parser (so framing errors fail the test)."""
    answers: list[Answer] = []
    current = Answer()
    parser = httptools.HttpResponseParser(current)
    while len(answers) < n:
        data = await asyncio.wait_for(reader.read(65536), 5)
        assert data, f"connection closed after {len(answers)} of {n} answers"
        view = memoryview(data)
        while view:
            # feed one byte at a time across answer boundaries: one parser per answer
            parser.feed_data(bytes(view[:1]))
            view = view[1:]
            if current.done:
                current.status = parser.get_status_code()
                answers.append(current)
                current = Answer()
                parser = httptools.HttpResponseParser(current)
    return answers


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 5)


async def connect(lst: RealtimeListener) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", lst.port)


async def test_recorded_requests_on_one_keep_alive_connection_match_the_backend(backend, listener) -> None:  # type: ignore[no-untyped-def]
    rb, persisted, _ = backend
    reqs = recorded_requests()
    reader, writer = await connect(listener)
    for path, body in reqs:
        writer.write(post(path, body))
        (ans,) = await read_answers(reader, 1)
        assert ans.status == 200, (path, body, ans.body)
        assert ans.headers[b"content-type"] == b"text/plain; charset=utf-8"
        assert b"connection" not in ans.headers  # curl keeps the connection
    writer.close()
    assert rb.errors == 0
    assert rb.requests == len(reqs)
    await rb.drain()
    assert any(kind == "contact_upsert" for kind, _ in persisted.writes)


async def test_an_answer_is_the_backends_and_is_written_in_one_piece(backend, listener) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    reader, writer = await connect(listener)
    writer.write(post("/realtime/ps_auths/single", b"id=2101"))
    (ans,) = await read_answers(reader, 1)
    assert ans.body.decode() == rb.handle("ps_auths", "single", b"id=2101", "")[1]
    assert b"password_digest=MD5%3A" in ans.body
    assert encode_response(200, "a=b", close=False) == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 3\r\n\r\na=b"
    )
    writer.close()


async def test_pipelined_requests_are_answered_in_order(backend, listener) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await connect(listener)
    writer.write(
        post("/realtime/ps_endpoints/single", b"id=2101")
        + post("/realtime/ps_endpoints/single", b"id=9999")
        + post("/realtime/ps_aors/single", b"id=2102")
    )
    a, b, c = await read_answers(reader, 3)
    assert b"id=2101" in a.body and b.body == b"" and b"id=2102" in c.body
    assert (a.status, b.status, c.status) == (200, 200, 200)
    writer.close()


async def test_a_request_split_byte_by_byte_is_answered(listener) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await connect(listener)
    for byte in post("/realtime/ps_endpoints/single", b"id=2102"):
        writer.write(bytes([byte]))
        await writer.drain()
    (ans,) = await read_answers(reader, 1)
    assert ans.status == 200 and b"id=2102" in ans.body
    writer.close()


async def test_wrong_token_is_refused_and_the_backend_not_asked(backend, listener) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    reader, writer = await connect(listener)
    writer.write(post("/realtime/ps_auths/single", b"id=2101", token="guess"))
    writer.write(post("/realtime/ps_auths/single", b"id=2101", token=""))
    a, b = await read_answers(reader, 2)
    assert (a.status, b.status) == (403, 403)
    assert b"node token" in a.body and b"MD5" not in a.body + b.body
    assert rb.requests == 0
    writer.close()


async def test_a_peer_outside_the_node_networks_is_refused_before_parsing(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    lst = await _listen(rb, allowed="10.99.0.0/16")
    try:
        reader, writer = await connect(lst)
        writer.write(post("/realtime/ps_auths/single", b"id=2101"))
        data = await read_to_eof(reader)
        assert data.startswith(b"HTTP/1.1 403 Forbidden\r\n") and data.endswith(b"node address and the node token\n")
        assert rb.requests == 0
        writer.close()
    finally:
        await lst.close()


@pytest.mark.parametrize(
    ("raw", "status", "phrase"),
    [
        (b"HELLO\r\n\r\n", 400, b"malformed HTTP request"),
        (b"POST /realtime/ps_auths/single HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400, b"malformed HTTP request"),
        (b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 400, b"upgrades are not served"),
        (b"POST /realtime/ps_auths/single HTTP/1.1\r\nX-A: " + b"a" * 20000 + b"\r\n\r\n", 431, b"request head over"),
        (b"POST /realtime/" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", 431, b"request head over"),
        (b"POST http://[x/realtime/ps_auths/single HTTP/1.1\r\nHost: x\r\n\r\n", 400, b"malformed request target"),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 403, b"node token"),
    ],
    ids=["not-http", "bad-length", "upgrade", "huge-header", "huge-url", "bad-target", "asterisk-target"],
)
async def test_malformed_input_gets_a_precise_status_and_a_closed_connection(listener, raw, status, phrase) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await connect(listener)
    writer.write(raw)
    data = await read_to_eof(reader)
    assert data.startswith(f"HTTP/1.1 {status} ".encode()), data[:80]
    assert b"connection: close\r\n" in data and phrase in data
    writer.close()


async def test_a_header_line_that_never_ends_is_cut_off_with_bounded_memory(listener) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await connect(listener)
    writer.write(b"POST /realtime/ps_auths/single HTTP/1.1\r\nX-Endless: ")
    with contextlib.suppress(ConnectionError):
        for _ in range(200):  # 200 x 1 KiB, well past head + body limits, never a newline
            writer.write(b"a" * 1024)
            await writer.drain()
            if reader.at_eof() or len(reader._buffer):  # the answer arrived: stop sending
                break
    (ans,) = await read_answers(reader, 1)
    assert ans.status == 431 and ans.headers[b"connection"] == b"close"
    assert await read_to_eof(reader) == b""  # and then the listener's FIN
    writer.close()


async def test_a_body_over_the_limit_gets_413_and_the_backend_is_not_asked(backend, listener) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    reader, writer = await connect(listener)
    big = b"id=" + b"x" * 70000
    writer.write(post("/realtime/ps_auths/single", big))
    data = await read_to_eof(reader)
    assert data.startswith(b"HTTP/1.1 413 ") and b"request body over 65536 bytes" in data
    assert rb.requests == 0
    writer.close()


async def test_bad_paths_and_methods_get_404_and_405_and_keep_the_connection(listener) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await connect(listener)
    writer.write(post("/realtime/ps_auths", b""))
    writer.write(post("/other/ps_auths/single", b""))
    writer.write(post("/realtime/no_such_table/single", b"id=1"))
    writer.write(post("/realtime/ps_auths/single", b"id=2101").replace(b"POST", b"PUT", 1))
    writer.write(post("/realtime/ps_auths/single", b"id=2101"))
    answers = await read_answers(reader, 5)
    assert [a.status for a in answers] == [404, 404, 404, 405, 200]
    assert b"unknown realtime family 'no_such_table'" in answers[2].body
    writer.close()


async def test_connection_close_is_honoured(listener) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await connect(listener)
    writer.write(post("/realtime/ps_endpoints/single", b"id=2101", extra=b"Connection: close\r\n"))
    data = await read_to_eof(reader)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close\r\n" in data and b"id=2101" in data
    writer.close()


async def test_an_idle_or_stuck_connection_is_closed(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    lst = await _listen(rb, idle_timeout=0.3)
    try:
        reader, writer = await connect(lst)
        writer.write(post("/realtime/ps_endpoints/single", b"id=2101"))
        (ans,) = await read_answers(reader, 1)
        assert ans.status == 200
        writer.write(b"POST /realtime/ps_endpoints/single HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert await read_to_eof(reader) == b""  # closed by the listener, not by this test's timeout
        writer.close()
    finally:
        await lst.close()


def test_the_listener_serves_on_uvloop_as_the_service_runs_it(backend) -> None:  # type: ignore[no-untyped-def]
    """Hotline runs on uvloop (setting event_loop), whose transports are not asyncio's classes."""
    import uvloop

    rb, _, _ = backend

    async def one_lookup() -> list[Answer]:
        lst = await _listen(rb)
        try:
            reader, writer = await connect(lst)
            writer.write(post("/realtime/ps_endpoints/single", b"id=2101") + post("/realtime/x/single", b""))
            answers = await read_answers(reader, 2)
            writer.close()
            return answers
        finally:
            await lst.close()

    a, b = uvloop.run(one_lookup())
    assert (a.status, b.status) == (200, 404) and b"id=2101" in a.body


class _Transport:
    """Just enough of an asyncio transport to run the protocol without a socket."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.eof = False

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def write(self, data: bytes) -> None:
        assert not self.eof, "wrote after its FIN"
        self.out += data

    def is_closing(self) -> bool:
        return self.closed or self.eof

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(max_size=300), max_size=8), prefix=st.sampled_from([b"", b"POST /realtime/"]))
async def test_any_bytes_get_http_answers_or_nothing_and_never_an_exception(backend, chunks, prefix) -> None:  # type: ignore[no-untyped-def]
    from hotline.asterisk.realtime_http import RealtimeHTTPProtocol

    rb, _, _ = backend
    proto = RealtimeHTTPProtocol(RealtimeASGI(rb, TOKEN, ["127.0.0.0/8"]), set())
    transport = _Transport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    for chunk in [prefix, *chunks]:
        proto.data_received(chunk)  # never raises, whatever the bytes
    if transport.out:
        assert transport.out.startswith(b"HTTP/1.1 ")
        answers = transport.out.count(b"HTTP/1.1 ")
        assert answers >= 1 and b"content-length: " in transport.out
