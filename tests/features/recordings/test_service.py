"""RecordingService end to end: AMI facts in, MP3 in storage out, with real ffmpeg, a real database, real
files and a real S3 server; the failure cases keep every recording and show why."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.db.engine import create_engine_for
from hotline.db.repositories.recordings import Recording, RecordingRepository
from hotline.errors import ConflictError, NotFoundError
from hotline.features.recordings.formats import mp3_problem
from hotline.ids import new_call_id
from hotline.protocols.ami import AMIParser, Message

from .conftest import (
    BUCKET,
    MONITOR,
    NODE,
    Relay,
    SeaweedS3,
    ServiceFactory,
    asterisk_wav,
    eventually,
    host_wav,
    pcm_tone,
    running,
    write_file,
)

FIXTURE = Path(__file__).parents[2] / "fixtures" / "ami" / "queue_call.ami"


def channel_event(event: str, call_id: str, uniqueid: str, **extra: str) -> Message:
    """An AMI event with the channel snapshot fields Asterisk 22 sends (as in tests/fixtures/ami), e.g.
    MixMonitorStart (manager_channels.c publish_basic_channel_event)."""
    headers = [
        ("Event", event),
        ("Privilege", "call,all"),
        ("Timestamp", "1795654253.901234"),
        ("SystemName", NODE),
        ("Channel", "PJSIP/carrier-00000000"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "74951234567"),
        ("Context", "hotline-inbound"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Uniqueid", uniqueid),
        ("Linkedid", uniqueid),
        ("ChanVariable", f"HOTLINE_CALL_ID={call_id}"),
        *extra.items(),
    ]
    return Message(headers)


async def rows(repo: RecordingRepository, call_id: str) -> list[Recording]:
    return await asyncio.to_thread(repo.for_call, call_id)


async def one(repo: RecordingRepository, call_id: str) -> Recording:
    found = await rows(repo, call_id)
    assert len(found) == 1, found
    return found[0]


async def wait_state(repo: RecordingRepository, call_id: str, state: str, timeout: float = 15.0) -> Recording:
    async def check() -> bool:
        found = await rows(repo, call_id)
        return len(found) == 1 and found[0].state == state

    await eventually(check, timeout=timeout, what=f"recording of {call_id} to be {state}")
    return await one(repo, call_id)


# ------------------------------------------------------------------------------------------ the happy path
async def test_mixmonitor_hangup_converts_stores_and_removes_the_wav(
    db_url: str, make_service: ServiceFactory, node_dir: Path, tmp_path: Path
) -> None:
    engine = create_engine_for(db_url)
    repo = RecordingRepository(engine)
    try:
        service = make_service(repo=repo)
        call_id, uid = new_call_id(), "node1-1795654253.17"
        wav = host_wav(node_dir, f"{call_id}-{uid}.wav")
        async with running(service):
            service.on_ami(NODE, channel_event("MixMonitorStart", call_id, uid))
            rec = await wait_state(repo, call_id, "recording")
            assert rec.source == f"{MONITOR}/{call_id}-{uid}.wav" and rec.node == NODE
            # Asterisk is still writing: its header has no sizes yet
            write_file(wav, asterisk_wav(pcm_tone(2), finalized=False))
            service.on_ami(NODE, channel_event("Hangup", call_id, uid, Cause="16"))
            rec = await wait_state(repo, call_id, "pending")
            registered_due = rec.next_attempt_at

            async def postponed() -> bool:
                r = await one(repo, call_id)
                return (
                    r.next_attempt_at is not None and registered_due is not None and r.next_attempt_at > registered_due
                )

            await eventually(postponed, what="a worker to look at the open file and postpone it")
            rec = await one(repo, call_id)
            assert (rec.state, rec.attempts, rec.last_error) == ("pending", 0, None)  # not counted as a failure
            assert wav.exists()
            # Asterisk closes the file (update_header): now it is converted
            write_file(wav, asterisk_wav(pcm_tone(2)))
            rec = await wait_state(repo, call_id, "stored")
        assert rec.duration_s == 2.0 and rec.attempts == 0 and rec.last_error is None
        assert rec.storage_key is not None and rec.storage_key.endswith(f"/{call_id}/{call_id}-{uid}.mp3")
        assert rec.stored_at is not None and rec.size is not None
        assert not wav.exists()  # deleted only once stored
        stored = tmp_path / "store" / rec.storage_key
        assert stored.stat().st_size == rec.size
        audio = await service.open(rec.id)
        data = await audio.read_all()
        assert data == stored.read_bytes() and mp3_problem(data, len(data)) is None
        assert [r.id for r in await service.get(call_id)] == [rec.id]
        status = await service.status()
        assert status["states"]["stored"] == 1 and status["database"] == "ok" and status["storage"] == "local"
        assert status["queued_events"] == 0 and status["in_flight"] == 0
    finally:
        engine.dispose()


async def test_real_transcript_hangup_registers_a_recording_whose_start_was_missed(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    """Replays tests/fixtures/ami/queue_call.ami (a real Asterisk 22 queue call, without MixMonitor
    events, as when Hotline restarted mid-call): the caller's Hangup finds its file."""
    data = FIXTURE.read_bytes()
    call_id = re.search(rb"HOTLINE_CALL_ID=([0-9a-f-]{36})", data).group(1).decode()  # type: ignore[union-attr]
    messages = AMIParser().feed(data)
    caller_uid = next(m.get("Uniqueid") for m in messages if (m.get("Channel") or "").startswith("PJSIP/carrier"))
    wav = write_file(host_wav(node_dir, f"{call_id}-{caller_uid}.wav"), asterisk_wav(pcm_tone(1)))
    service = make_service()
    async with running(service, maintenance=False):
        for msg in messages:
            service.on_ami(NODE, msg)
        rec = await wait_state(repo, call_id, "stored")
    # the agent's channel hung up too, but had no file: no row for it
    assert rec.source.endswith(f"{call_id}-{caller_uid}.wav") and not wav.exists()


# ------------------------------------------------------------------------------------------ failures
async def test_corrupt_wav_is_retried_then_failed_and_retry_recovers_it(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    service = make_service(max_attempts=3)
    call_id, uid = new_call_id(), "node1-1.1"
    wav = write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), os.urandom(5000).replace(b"RIFF", b"FFIR"))
    async with running(service, maintenance=False):
        service.on_ami(NODE, channel_event("MixMonitorStart", call_id, uid))
        service.on_ami(NODE, channel_event("Hangup", call_id, uid))
        rec = await wait_state(repo, call_id, "failed")
        assert rec.attempts == 3 and rec.next_attempt_at is None
        assert rec.last_error is not None and "not a WAV file" in rec.last_error
        assert wav.exists()  # nothing is lost: the WAV stays for a retry
        status = await service.status()
        assert status["states"]["failed"] == 1 and "not a WAV file" in status["last_error"]
        # the operator fixes the file and retries
        write_file(wav, asterisk_wav(pcm_tone(1)))
        retried = await service.retry(rec.id)
        assert (retried.state, retried.attempts) == ("pending", 0)
        rec = await wait_state(repo, call_id, "stored")
    assert rec.last_error is None and not wav.exists()
    with pytest.raises(ConflictError, match="stored"):
        await service.retry(rec.id)


async def test_ffmpeg_failure_shows_ffmpegs_words(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    import struct

    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 16000, 2, 16)  # IEEE float, 16 bits: no ffmpeg decoder
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 4000) + bytes(4000)
    call_id, uid = new_call_id(), "node1-1.2"
    write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), b"RIFF" + struct.pack("<I", len(body)) + body)
    service = make_service(max_attempts=2)
    async with running(service, maintenance=False):
        service.on_ami(NODE, channel_event("Hangup", call_id, uid))
        rec = await wait_state(repo, call_id, "failed")
    assert rec.attempts == 2 and "ffmpeg failed" in (rec.last_error or "")


async def test_missing_file_fails_visibly(make_service: ServiceFactory, repo: RecordingRepository) -> None:
    service = make_service(max_attempts=2)
    call_id, uid = new_call_id(), "node1-1.3"
    async with running(service, maintenance=False):
        service.on_ami(NODE, channel_event("MixMonitorStart", call_id, uid))
        service.on_ami(NODE, channel_event("Hangup", call_id, uid))
        rec = await wait_state(repo, call_id, "failed")
    assert "not found" in (rec.last_error or "")


async def test_s3_down_then_back_stores_the_recording(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path, seaweed: SeaweedS3, relay: Relay
) -> None:
    storage = seaweed.storage(
        BUCKET, endpoint_url=f"http://127.0.0.1:{relay.port}", max_attempts=1, connect_timeout_s=1
    )
    await storage.ensure_bucket()
    await relay.down()  # the object store goes away
    service = make_service(storage=storage, max_attempts=50, retry_base_s=0.05, retry_max_s=0.1)
    call_id, uid = new_call_id(), "node1-1.4"
    wav = write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), asterisk_wav(pcm_tone(1.5)))
    async with running(service, maintenance=False):
        service.on_ami(NODE, channel_event("MixMonitorStart", call_id, uid))
        service.on_ami(NODE, channel_event("Hangup", call_id, uid))

        async def retried() -> bool:
            r = await one(repo, call_id) if await rows(repo, call_id) else None
            return r is not None and r.attempts >= 2

        await eventually(retried, what="upload attempts while S3 is down")
        rec = await one(repo, call_id)
        assert rec.state == "pending" and "S3 put hotline-test" in (rec.last_error or "")
        assert wav.exists()
        await relay.up()  # back on the same address
        rec = await wait_state(repo, call_id, "stored")
    assert rec.last_error is None and not wav.exists()
    assert rec.storage_key is not None
    data = await (await service.open(rec.id)).read_all()
    assert len(data) == rec.size and mp3_problem(data, len(data)) is None


# ------------------------------------------------------------------------------------------ odd files
async def test_empty_recording_is_not_stored(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    call_id, uid = new_call_id(), "node1-1.5"
    wav = write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), asterisk_wav(b""))  # never bridged
    service = make_service()
    async with running(service, maintenance=False):
        service.on_ami(NODE, channel_event("MixMonitorStart", call_id, uid))
        service.on_ami(NODE, channel_event("Hangup", call_id, uid))
        rec = await wait_state(repo, call_id, "deleted")
    assert "empty recording" in (rec.last_error or "") and rec.storage_key is None and not wav.exists()
    with pytest.raises(ConflictError, match="deleted"):
        await service.open(rec.id)


async def test_file_never_closed_is_salvaged_after_the_grace_period(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    call_id, uid = new_call_id(), "node1-1.6"
    # the node died mid-call ten minutes ago: the header was never finalized
    write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), asterisk_wav(pcm_tone(1.25), finalized=False), age_s=600)
    service = make_service(incomplete_grace_s=120)
    async with running(service, maintenance=False):
        service.on_ami(NODE, channel_event("Hangup", call_id, uid))
        rec = await wait_state(repo, call_id, "stored")
    assert rec.duration_s == 1.25 and "salvaged" in (rec.last_error or "")


# ------------------------------------------------------------------------------------------ missed events
async def test_finalized_file_without_hangup_is_picked_up_by_the_check(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    call_id, uid = new_call_id(), "node1-1.7"
    service = make_service()
    async with running(service):
        service.on_ami(NODE, channel_event("MixMonitorStart", call_id, uid))
        await wait_state(repo, call_id, "recording")
        write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), asterisk_wav(pcm_tone(1)))
        # no Hangup ever reaches us (AMI connection lost at the wrong moment)
        rec = await wait_state(repo, call_id, "stored")
    assert rec.duration_s == 1.0


async def test_scan_registers_orphan_files(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    call_id, uid = new_call_id(), "node1-1.8"
    write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), asterisk_wav(pcm_tone(1)))
    other = write_file(host_wav(node_dir, "not-a-hotline-recording.wav"), asterisk_wav(pcm_tone(1)))
    service = make_service()
    assert await service.scan() == 1
    assert await service.scan() == 0  # registered once
    rec = await one(repo, call_id)
    assert rec.state == "pending"  # finalized: checked at once
    async with running(service, maintenance=False):
        await wait_state(repo, call_id, "stored")
    assert other.exists()


async def test_scan_of_a_node_without_recordings(make_service: ServiceFactory) -> None:
    assert await make_service().scan() == 0  # its monitor folder does not exist yet


# ------------------------------------------------------------------------------------------ retention
async def test_retention_deletes_old_recordings_from_storage(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old_id, new_id = new_call_id(), new_call_id()
    for call_id, age in ((old_id, 40), (new_id, 10)):
        source = f"{MONITOR}/{call_id}-node1-9.{age}.wav"
        write_file(host_wav(node_dir, f"{call_id}-node1-9.{age}.wav"), asterisk_wav(pcm_tone(0.5)))
        repo.register(call_id, NODE, source, ended=True, now=now - timedelta(days=age), next_attempt_at=now)
    service = make_service(retention_days=30)
    async with running(service):
        old = await wait_state(repo, old_id, "deleted")
        new = await wait_state(repo, new_id, "stored")
    assert old.deleted_at is not None and old.storage_key is not None
    assert not (tmp_path / "store" / old.storage_key).exists()
    assert new.storage_key is not None and (tmp_path / "store" / new.storage_key).exists()
    with pytest.raises(ConflictError):
        await service.open(old.id)
    assert await service.apply_retention() == 0


async def test_retention_keeps_the_row_stored_when_storage_refuses(
    make_service: ServiceFactory, repo: RecordingRepository, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    call_id = new_call_id()
    rec, _ = repo.register(
        call_id, NODE, f"{MONITOR}/{call_id}-x.wav", ended=True, now=now - timedelta(days=9), next_attempt_at=now
    )
    assert repo.mark_stored(rec.id, storage_key="../bad", size=1, duration_s=1.0, now=now)
    service = make_service(retention_days=1)
    assert await service.apply_retention() == 0
    assert (await one(repo, call_id)).state == "stored"
    assert "retention" in ((await service.status())["last_error"] or "")


# ------------------------------------------------------------------------------------------ intake
async def test_on_ami_only_queues_and_is_bounded(make_service: ServiceFactory, repo: RecordingRepository) -> None:
    service = make_service(max_queued=3)
    call_id = new_call_id()
    service.on_ami(NODE, channel_event("Newchannel", call_id, "node1-2.1"))  # not ours
    service.on_ami(NODE, Message([("Event", "Hangup"), ("Uniqueid", "node1-2.2")]))  # not a Hotline call
    service.on_ami(NODE, channel_event("MixMonitorStop", call_id, "node1-2.3"))  # never started: wait for Hangup
    assert service.queued() == 0
    service.on_ami(NODE, channel_event("MixMonitorStart", "../../etc", "node1-2.4"))
    assert service.rejected == 1 and service.queued() == 0
    for i in range(5):
        service.on_ami(NODE, channel_event("MixMonitorStart", call_id, f"node1-3.{i}"))
    assert service.queued() == 3 and service.dropped == 2
    assert await rows(repo, call_id) == []  # nothing written by on_ami itself
    async with running(service, maintenance=False):

        async def drained() -> bool:
            return service.queued() == 0 and len(await rows(repo, call_id)) == 3

        await eventually(drained, what="the queued facts to be registered")


async def test_facts_arriving_together_are_applied_in_one_batch(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    # On a busy node every call's Hangups arrive a few ms apart; each batch is a hop to a worker thread and
    # one transaction, so the intake gathers what arrives within `gather_s` of the first fact.
    service = make_service(gather_s=1.0)
    batches: list[int] = []
    apply = service._apply

    def counting_apply(batch: list[Any]) -> bool:
        batches.append(len(batch))
        return apply(batch)

    service._apply = counting_apply  # type: ignore[method-assign]
    call_id = new_call_id()
    uids = [f"node1-9.{i}" for i in range(4)]
    async with running(service, maintenance=False):
        for uid in uids:  # four channels start recording, 20 ms apart
            service.on_ami(NODE, channel_event("MixMonitorStart", call_id, uid))
            await asyncio.sleep(0.02)

        async def drained() -> bool:
            return service.queued() == 0 and len(await rows(repo, call_id)) == 4

        await eventually(drained, what="the four facts to be registered")
    assert batches == [4]
    with pytest.raises(ValueError, match="gather_s"):
        make_service(gather_s=-1)


async def test_mixmonitor_stop_ends_the_recording(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    call_id, uid = new_call_id(), "node1-4.1"
    write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), asterisk_wav(pcm_tone(0.5)))
    service = make_service()
    async with running(service, maintenance=False):
        service.on_ami(NODE, channel_event("MixMonitorStart", call_id, uid))
        service.on_ami(NODE, channel_event("MixMonitorStop", call_id, uid))  # StopMixMonitor closed the file
        await wait_state(repo, call_id, "stored")


async def test_intake_keeps_facts_while_the_database_is_down(
    make_service: ServiceFactory, sqlite_url: str, tmp_path: Path
) -> None:
    db_file = tmp_path / "db" / "hotline.db"
    db_file.mkdir(parents=True)  # SQLite cannot open a folder as its database: every query fails
    engine = create_engine_for(f"sqlite:///{db_file}")
    service = make_service(repo=RecordingRepository(engine))
    call_id = new_call_id()
    try:
        async with running(service, maintenance=False):
            service.on_ami(NODE, channel_event("MixMonitorStart", call_id, "node1-5.1"))

            async def failing() -> bool:
                return "intake" in service.errors

            await eventually(failing, what="the intake to fail")
            assert service.queued() == 1  # kept for the next try
            status = await service.status()
            assert status["states"] is None and status["database"].startswith("error")
            assert "unable to open database file" in status["errors"]["intake"]
            # the database comes back (a migrated copy appears where the folder was)
            db_file.rmdir()
            source = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
            try:
                source.execute("VACUUM INTO ?", (str(db_file),))
            finally:
                source.close()

            async def registered() -> bool:
                return service.queued() == 0 and len(await asyncio.to_thread(service_rows, engine, call_id)) == 1

            await eventually(registered, what="the kept fact to be registered")
    finally:
        engine.dispose()


def service_rows(engine: object, call_id: str) -> list[Recording]:
    return RecordingRepository(engine).for_call(call_id)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ queries
async def test_open_and_retry_errors(make_service: ServiceFactory, repo: RecordingRepository) -> None:
    service = make_service()
    with pytest.raises(NotFoundError):
        await service.open(12345)
    with pytest.raises(NotFoundError):
        await service.retry(12345)
    call_id = new_call_id()
    now = datetime.now(UTC)
    rec, _ = repo.register(call_id, NODE, f"{MONITOR}/{call_id}-z.wav", ended=False, now=now, next_attempt_at=now)
    with pytest.raises(ConflictError, match="recording, not stored"):
        await service.open(rec.id)
    assert [r.id for r in await service.recent(state="recording")] == [rec.id]
    assert (await service.recording(rec.id)).call_id == call_id


def test_bad_constructor_arguments(make_service: ServiceFactory) -> None:
    with pytest.raises(ValueError, match="workers"):
        make_service(workers=0)


def test_node_paths(tmp_path: Path) -> None:
    from hotline.features.recordings.errors import RecordingError
    from hotline.features.recordings.service import NodePaths

    paths = NodePaths({"node1": ("/hl/main/node1", tmp_path / "n1")})
    assert paths.monitor_dir("node1") == "/hl/main/node1/spool/monitor"
    assert paths.resolve("node1", "/hl/main/node1/spool/monitor/a.wav") == tmp_path / "n1/spool/monitor/a.wav"
    for bad in ("/hl/main/node1/../../etc/passwd", "relative.wav", "/elsewhere/a.wav"):
        with pytest.raises(RecordingError):
            paths.resolve("node1", bad)
    with pytest.raises(RecordingError, match="node 'node9'"):
        paths.resolve("node9", "/hl/main/node1/a.wav")
    assert paths.nodes() == ["node1"]


def _processes_reading(path: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(path).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


async def test_stopping_mid_conversion_kills_ffmpeg_and_gives_the_lease_back(
    make_service: ServiceFactory, repo: RecordingRepository, node_dir: Path
) -> None:
    call_id, uid = new_call_id(), "node1-6.1"
    wav = write_file(host_wav(node_dir, f"{call_id}-{uid}.wav"), asterisk_wav(pcm_tone(1) * 900))  # 15 min
    service = make_service(lease_s=3600)
    async with running(service, maintenance=False):
        service.on_ami(NODE, channel_event("Hangup", call_id, uid))

        async def converting() -> bool:
            return bool(_processes_reading(wav))

        await eventually(converting, what="ffmpeg to start on the recording")
        assert (await service.status())["in_flight"] == 1
    rec = await one(repo, call_id)
    assert (rec.state, rec.attempts) == ("pending", 0)
    assert rec.next_attempt_at is not None and rec.next_attempt_at <= datetime.now(UTC)  # not 1 h away
    assert wav.exists() and _processes_reading(wav) == []
