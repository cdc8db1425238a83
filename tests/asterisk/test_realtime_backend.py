"""The realtime backend over HTTP (in-process ASGI), on requests recorded from Asterisk 22
(tests/fixtures/realtime/requests.txt) and on hostile input."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from hotline.asterisk.realtime_backend import RealtimeASGI, RealtimeBackend
from hotline.db.engine import create_engine_for
from hotline.db.repositories import ConfigRepository

FIX = Path(__file__).parents[1] / "fixtures" / "realtime" / "requests.txt"
TOKEN = "test-token"


def recorded_requests() -> list[tuple[str, bytes]]:
    """(path, body) of every request Asterisk sent in the recording."""
    data = FIX.read_bytes()
    out = []
    for m in re.finditer(rb"POST (\S+) HTTP/1.1\r\n(.*?)\r\n\r\n", data, re.S):
        length = int(re.search(rb"Content-Length: (\d+)", m.group(2)).group(1))  # type: ignore[union-attr]
        start = m.end()
        out.append((m.group(1).decode(), data[start : start + length]))
    return out


class Persisted:
    def __init__(self) -> None:
        self.writes: list[tuple[str, tuple[Any, ...]]] = []

    async def __call__(self, batch: tuple[Any, ...]) -> None:
        self.writes.extend(batch)


@pytest.fixture()
def backend(sqlite_url: str) -> tuple[RealtimeBackend, Persisted, ConfigRepository]:
    repo = ConfigRepository(create_engine_for(sqlite_url))
    repo.add_phone("2101", "agent-one-secret", realm="hotline", callerid='"Agent One" <2101>')
    repo.add_phone("2102", "agent-two-secret", realm="hotline")
    repo.add_queue("support", strategy="ringall")
    repo.add_queue_member("support", "PJSIP/2101", membername="agent-2101")
    persisted = Persisted()
    rb = RealtimeBackend(persisted)
    rb.apply_snapshot(repo.load_snapshot())
    return rb, persisted, repo


@pytest.fixture(autouse=True)
async def persisting(backend):  # type: ignore[no-untyped-def]
    """Run the backend's write-behind loop, as the app does."""
    import asyncio
    import contextlib

    task = asyncio.create_task(backend[0].persist_loop())
    yield
    await backend[0].drain()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def client(rb: RealtimeBackend, addr: str = "127.0.0.1", token: str = TOKEN) -> httpx.AsyncClient:
    app = RealtimeASGI(rb, TOKEN, ["127.0.0.0/8"])
    transport = httpx.ASGITransport(app=app, client=(addr, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://hotline", headers={"X-Hotline-Token": token})


def rows(text: str) -> list[dict[str, list[str]]]:
    out = []
    for line in text.splitlines():
        row: dict[str, list[str]] = {}
        for pair in line.split("&"):
            k, _, v = pair.partition("=")
            row.setdefault(unquote(k), []).append(unquote(v))
        out.append(row)
    return out


async def test_every_recorded_request_is_answered(backend) -> None:  # type: ignore[no-untyped-def]
    rb, persisted, _ = backend
    reqs = recorded_requests()
    assert len(reqs) >= 20
    async with client(rb) as c:
        for path, body in reqs:
            r = await c.post(path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code == 200, (path, body, r.text)
    assert rb.errors == 0
    await rb.drain()
    assert any(kind == "contact_upsert" for kind, _ in persisted.writes)  # the REGISTER's /store


async def test_endpoint_auth_aor_rows_as_pjsip_needs_them(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    async with client(rb) as c:
        ep = rows((await c.post("/realtime/ps_endpoints/single", content=b"id=2101")).text)[0]
        auth = rows((await c.post("/realtime/ps_auths/single", content=b"id=2101")).text)[0]
        missing = (await c.post("/realtime/ps_endpoints/single", content=b"id=9999")).text
    keys = list(ep)
    assert keys.index("disallow") < keys.index("allow")  # sorcery applies fields in order
    assert ep["callerid"] == ['"Agent One" <2101>']
    md5 = __import__("hashlib").md5(b"2101:hotline:agent-one-secret").hexdigest()
    assert f"MD5:{md5}" in auth["password_digest"] and len(auth["password_digest"]) == 2
    assert "password" not in auth  # only digests ever leave Hotline
    assert missing == ""


async def test_answers_use_percent_20_never_plus(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    async with client(rb) as c:
        text = (await c.post("/realtime/ps_endpoints/single", content=b"id=2101")).text
    assert "+" not in text and "%20" in text and "\n" not in text


async def test_contact_store_update_lookup_destroy(backend) -> None:  # type: ignore[no-untyped-def]
    rb, persisted, _ = backend
    cid = "2101%3B%40abc"
    async with client(rb) as c:
        stored = await c.post(
            "/realtime/ps_contacts/store",
            content=f"id={cid}&uri=sip%3A2101%40127.0.0.1%3A5161&expiration_time=1700000300&endpoint=2101".encode(),
        )
        assert stored.text == "1"
        assert (await c.post("/realtime/ps_contacts/multi", content=b"id%20LIKE=2101%3B%40%25")).text.startswith(
            "id=2101%3B%40abc"
        )
        expired = await c.post("/realtime/ps_contacts/multi", content=b"expiration_time%20%3C%3D=1700000299")
        assert expired.text == ""  # numeric comparison, not text
        expired = await c.post("/realtime/ps_contacts/multi", content=b"expiration_time%20%3C%3D=1700000300")
        assert expired.text != ""
        upd = await c.post(f"/realtime/ps_contacts/update?id={cid}", content=b"expiration_time=1700000900")
        assert upd.text == "1"
        assert (await c.post("/realtime/ps_contacts/destroy", content=f"id={cid}&".encode())).text == "1"
        assert (await c.post("/realtime/ps_contacts/destroy", content=f"id={cid}&".encode())).text == "0"
    await rb.drain()
    # coalesced or not (depending on when the write-behind ran), the last write is the delete
    kinds = [k for k, _ in persisted.writes]
    assert kinds[-1] == "contact_delete" and set(kinds) <= {"contact_upsert", "contact_delete"}


async def test_member_pause_is_kept_for_the_next_reread(backend) -> None:  # type: ignore[no-untyped-def]
    rb, persisted, repo = backend
    uid = repo.load_snapshot().queue_members[0].uniqueid
    async with client(rb) as c:
        r = await c.post(f"/realtime/queue_members/update?uniqueid={uid}", content=b"reason_paused=lunch&paused=1")
        assert r.text == "1"
        members = rows(
            (await c.post("/realtime/queue_members/multi", content=b"interface%20LIKE=%25&queue_name=support")).text
        )
    assert members[0]["paused"] == ["1"] and members[0]["reason_paused"] == ["lunch"]
    assert next(iter(members[0])) == "interface"  # Asterisk names multi rows by the first lookup column
    await rb.drain()
    assert persisted.writes == [("member_pause", (uid, True, "lunch"))]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/realtime/nosuch/single", b"id=1", 404, "unknown realtime family"),
        ("/realtime/ps_endpoints/explode", b"id=1", 400, "explode"),
        ("/realtime/ps_endpoints/single", b"id%20REGEXP=.*", 400, "REGEXP"),
        ("/realtime/ps_endpoints/single", b"id=%ZZ", 400, "%"),
        ("/realtime/ps_endpoints/single", b"id=%FF%FE", 400, "UTF-8"),
        ("/realtime/ps_endpoints/store", b"id=x&context=evil", 400, "store is not allowed"),
        ("/realtime/queue_members/update?uniqueid=x", b"interface=PJSIP/666", 400, "paused"),
        ("/realtime/ps_endpoints/single", b"a=" + b"x" * 70000, 413, "body over"),
        ("/realtime/ps_endpoints", b"id=1", 404, "expected"),
    ],
)
async def test_bad_requests_get_a_clear_error(backend, path: str, body: bytes, status: int, message: str) -> None:  # type: ignore[no-untyped-def]
    rb, persisted, _ = backend
    async with client(rb) as c:
        r = await c.post(path, content=body)
    assert r.status_code == status and message.lower() in r.text.lower(), r.text
    assert "Traceback" not in r.text and persisted.writes == []


async def test_token_and_address_are_required(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    for c in (client(rb, token="wrong"), client(rb, addr="203.0.113.9"), client(rb, token="")):
        async with c:
            r = await c.post("/realtime/ps_auths/single", content=b"id=2101")
        assert r.status_code == 403 and "digest" not in r.text.lower()


async def test_snapshot_change_is_seen_by_the_next_lookup(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, repo = backend
    repo.set_phone_password("2101", "another-secret-1", realm="hotline")
    rb.apply_snapshot(repo.load_snapshot())
    md5 = __import__("hashlib").md5(b"2101:hotline:another-secret-1").hexdigest()
    async with client(rb) as c:
        auth = rows((await c.post("/realtime/ps_auths/single", content=b"id=2101")).text)[0]
    assert f"MD5:{md5}" in auth["password_digest"]


async def test_persistence_failures_are_retried_not_dropped(sqlite_url: str) -> None:
    import asyncio

    attempts: list[str] = []

    async def flaky(batch: tuple[Any, ...]) -> None:
        attempts.append(batch[0][0])
        if len(attempts) < 3:
            raise ConnectionError("database down")

    rb = RealtimeBackend(flaky)
    task = asyncio.create_task(rb.persist_loop())
    async with client(rb) as c:
        r = await c.post("/realtime/ps_contacts/store", content=b"id=2101%3B%40x&uri=sip%3Ax&expiration_time=1")
        assert r.text == "1"  # Asterisk is answered at once; the write is kept until the database takes it
    await rb.drain(timeout=5)
    task.cancel()
    assert attempts == ["contact_upsert"] * 3 and rb.pending_writes() == 0


async def test_a_burst_of_writes_is_coalesced_into_one_batch(sqlite_url: str) -> None:
    import asyncio

    batches: list[tuple[Any, ...]] = []

    async def record(batch: tuple[Any, ...]) -> None:
        batches.append(batch)

    rb = RealtimeBackend(record)
    async with client(rb) as c:  # Asterisk's writes arrive before the write-behind runs
        for expiry in (100, 200, 300):
            await c.post(
                "/realtime/ps_contacts/store", content=f"id=a%3B%40x&uri=sip%3Aa&expiration_time={expiry}".encode()
            )
        await c.post("/realtime/ps_contacts/store", content=b"id=b%3B%40y&uri=sip%3Ab&expiration_time=1")
        await c.post("/realtime/ps_contacts/destroy", content=b"id=b%3B%40y&")
    task = asyncio.create_task(rb.persist_loop())
    await rb.drain()
    task.cancel()
    assert len(batches) == 1
    (kind_a, (cid_a, row_a)), (kind_b, args_b) = batches[0]
    assert (kind_a, cid_a, dict(row_a)["expiration_time"]) == ("contact_upsert", "a;@x", "300")
    assert (kind_b, args_b) == ("contact_delete", ("b;@y",))


async def test_a_pause_reason_is_cleaned_to_what_the_database_keeps(backend) -> None:  # type: ignore[no-untyped-def]
    rb, persisted, repo = backend
    uid = repo.load_snapshot().queue_members[0].uniqueid
    reason = "%09".join(["lunch"] * 40)  # 40 words joined by tabs, ~240 characters
    async with client(rb) as c:
        r = await c.post(
            f"/realtime/queue_members/update?uniqueid={uid}", content=f"reason_paused={reason}&paused=1".encode()
        )
        assert r.text == "1"
    await rb.drain()
    (kind, (puid, paused, kept)) = persisted.writes[-1]
    assert (kind, puid, paused) == ("member_pause", uid, True)
    assert len(kept) == 80 and "\t" not in kept and kept.startswith("lunchlunch")
    repo.set_member_paused(uid, paused, kept)  # and the database takes it


async def test_a_reload_before_the_pause_is_saved_keeps_the_pause(backend) -> None:  # type: ignore[no-untyped-def]
    _, _, repo = backend
    rb = RealtimeBackend(Persisted())  # its write-behind is not running: the pause stays unsaved
    rb.apply_snapshot(repo.load_snapshot())
    uid = repo.load_snapshot().queue_members[0].uniqueid
    async with client(rb) as c:
        await c.post(f"/realtime/queue_members/update?uniqueid={uid}", content=b"reason_paused=break&paused=1")
        rb.apply_snapshot(repo.load_snapshot())  # a configuration reload (the database says: not paused)
        members = rows((await c.post("/realtime/queue_members/multi", content=b"queue_name=support")).text)
    assert repo.load_snapshot().queue_members[0].paused == 0
    assert members[0]["paused"] == ["1"] and members[0]["reason_paused"] == ["break"]


async def test_node_families_answer_per_node_and_refuse_writes(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    rb.add_node_family(
        "musiconhold",
        "name",
        lambda node: [
            {"name": "calm", "mode": "files", "directory": f"/hl/lab/{node}/media/moh/calm", "sort": "alpha"}
        ],
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with client(rb) as c:
        r1 = await c.post(
            "/realtime/musiconhold/single", content=b"name=calm", headers={**form, "X-Hotline-Node": "n1"}
        )
        r2 = await c.post(
            "/realtime/musiconhold/single", content=b"name=calm", headers={**form, "X-Hotline-Node": "n2"}
        )
        missing = await c.post("/realtime/musiconhold/single", content=b"name=loud", headers=form)
        write = await c.post("/realtime/musiconhold/store", content=b"name=x&mode=files", headers=form)
    assert rows(r1.text)[0]["directory"] == ["/hl/lab/n1/media/moh/calm"]
    assert rows(r2.text)[0]["directory"] == ["/hl/lab/n2/media/moh/calm"]
    assert missing.status_code == 200 and missing.text == ""
    assert write.status_code == 400 and "read-only" in write.text


async def test_observer_times_each_answered_request_with_bounded_labels(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend
    seen: list[tuple[str, str, float]] = []
    app = RealtimeASGI(rb, TOKEN, ["127.0.0.0/8"], observe=lambda f, op, s: seen.append((f, op, s)))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hotline", headers={"X-Hotline-Token": TOKEN}
    ) as c:
        ok = await c.post("/realtime/ps_endpoints/single", content=b"id=2101")
        unknown = await c.post("/realtime/no_such_family_42/single", content=b"id=1")
        bad = await c.post("/realtime/queues/single", content=b"")
        refused = await c.post("/realtime/queues/multi", headers={"X-Hotline-Token": "wrong"})
        malformed = await c.post("/realtime/queues")
    assert (ok.status_code, unknown.status_code, bad.status_code) == (200, 404, 400)
    assert (refused.status_code, malformed.status_code) == (403, 404)
    # refused and malformed requests never reach the backend and are not timed; an unknown family is "other"
    assert [(f, op) for f, op, _ in seen] == [("ps_endpoints", "single"), ("other", "single"), ("queues", "single")]
    assert all(0 <= s < 1 for _, _, s in seen)


async def test_a_failing_observer_does_not_fail_the_lookup(backend) -> None:  # type: ignore[no-untyped-def]
    rb, _, _ = backend

    def broken(family: str, op: str, seconds: float) -> None:
        raise RuntimeError("metrics bug")

    app = RealtimeASGI(rb, TOKEN, ["127.0.0.0/8"], observe=broken)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hotline", headers={"X-Hotline-Token": TOKEN}
    ) as c:
        r = await c.post("/realtime/ps_endpoints/single", content=b"id=2101")
    assert r.status_code == 200 and "2101" in r.text


async def test_writes_from_the_listener_thread_reach_the_persist_loop(backend) -> None:  # type: ignore[no-untyped-def]
    """With realtime_port the requests are handled on another thread: its writes are handed to the loop
    that persists them, none is lost, and drain() waits for those handed over but not queued yet."""
    rb, persisted, _ = backend
    rb.attach(asyncio.get_running_loop())

    def register_many() -> list[tuple[int, str]]:
        answers = []
        for i in range(200):
            n = f"9{i:03d}"
            body = f"id={n}%3B%40x&uri=sip%3A{n}%40127.0.0.1%3A5161&expiration_time=1700000300&endpoint={n}"
            answers.append(rb.handle("ps_contacts", "store", body.encode(), ""))
        return answers

    answers = await asyncio.to_thread(register_many)  # a thread that is not the event loop's
    assert answers == [(200, "1")] * 200
    await rb.drain()
    assert rb.pending_writes() == 0
    upserted = {args[0] for kind, args in persisted.writes if kind == "contact_upsert"}
    assert {f"9{i:03d};@x" for i in range(200)} <= upserted
    assert rb.contact_count() >= 200
