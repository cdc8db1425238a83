"""Storage backends: the local folder, and S3Storage against a real SeaweedFS started for the session."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.errors import ConfigError, NotFoundError
from hotline.features.recordings.errors import RecordingStorageError
from hotline.features.recordings.storage import LocalStorage, S3Storage, check_key, recording_key
from hotline.ids import new_call_id

from .conftest import BUCKET, SeaweedS3, write_file

# ------------------------------------------------------------------------------------------ keys


def test_recording_key_is_dated_by_the_uuid7_call_id() -> None:
    call_id = new_call_id()
    when = datetime.fromtimestamp((uuid.UUID(call_id).int >> 80) / 1000, UTC)
    key = recording_key(
        call_id, f"/hl/x/spool/monitor/{call_id}-node1-1795654253.17.wav", datetime(2001, 1, 1, tzinfo=UTC)
    )
    assert key == f"{when:%Y/%m/%d}/{call_id}/{call_id}-node1-1795654253.17.mp3"


def test_recording_key_falls_back_to_created_at_and_sanitises() -> None:
    key = recording_key("not a uuid", "/x/../we ird;name.WAV", datetime(2030, 2, 3, 23, 59, tzinfo=UTC))
    assert key == "2030/02/03/not_a_uuid/we_ird_name.mp3"
    # a call id of dots must not become the path segment '..'
    assert recording_key("..", "..wav", datetime(2030, 2, 3, tzinfo=UTC)) == "2030/02/03/_/recording.mp3"


@pytest.mark.parametrize("bad", ["", "/abs/x.mp3", "a//b", "a/../b", "./a", "a/b/", "a b", "a\\b", "x" * 513])
def test_check_key_refuses_unsafe_keys(bad: str) -> None:
    with pytest.raises(ValueError, match="storage key"):
        check_key(bad)


# ------------------------------------------------------------------------------------------ local
async def test_local_put_open_delete(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    await store.check()
    src = write_file(tmp_path / "a.mp3", b"ID3" + os.urandom(200_000))
    await store.put("2030/01/02/call/a.mp3", src)
    audio = await store.open("2030/01/02/call/a.mp3")
    assert audio.size == 200_003 and audio.content_type == "audio/mpeg"
    assert await audio.read_all() == src.read_bytes()
    # replacing is atomic: no temporary file is left beside the object
    src2 = write_file(tmp_path / "b.mp3", b"second")
    await store.put("2030/01/02/call/a.mp3", src2)
    assert sorted(p.name for p in (tmp_path / "store/2030/01/02/call").iterdir()) == ["a.mp3"]
    assert await (await store.open("2030/01/02/call/a.mp3")).read_all() == b"second"
    await store.delete("2030/01/02/call/a.mp3")
    await store.delete("2030/01/02/call/a.mp3")  # a missing object is not an error
    assert list((tmp_path / "store").iterdir()) == []  # empty day/call folders pruned
    with pytest.raises(NotFoundError):
        await store.open("2030/01/02/call/a.mp3")


async def test_local_chunks_and_early_close(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    await store.put("k.mp3", write_file(tmp_path / "a.mp3", bytes(200_000)))
    audio = await store.open("k.mp3")
    sizes = [len(c) async for c in audio]
    assert sum(sizes) == 200_000 and len(sizes) == 4
    again = await store.open("k.mp3")
    await again.aclose()
    await again.aclose()


async def test_local_failures_are_storage_errors(tmp_path: Path) -> None:
    blocker = write_file(tmp_path / "store", b"a file where the folder should be")
    store = LocalStorage(blocker)
    src = write_file(tmp_path / "a.mp3", b"x")
    with pytest.raises(RecordingStorageError, match="cannot write"):
        await store.put("2030/a.mp3", src)
    with pytest.raises(RecordingStorageError, match="cannot create"):
        await store.check()
    with pytest.raises(RecordingStorageError, match=r"segment '\.\.'"):
        await LocalStorage(tmp_path / "ok").put("../escape.mp3", src)
    with pytest.raises(RecordingStorageError, match="cannot write"):
        await LocalStorage(tmp_path / "ok").put("a.mp3", tmp_path / "missing.mp3")
    assert not (tmp_path / "ok" / "a.mp3").exists()


# ------------------------------------------------------------------------------------------ S3
async def test_s3_put_open_delete(seaweed: SeaweedS3, tmp_path: Path) -> None:
    store = seaweed.storage(BUCKET, prefix="calls/")
    await store.ensure_bucket()
    await store.ensure_bucket()  # idempotent
    await store.check()
    src = write_file(tmp_path / "a.mp3", b"ID3" + os.urandom(300_000))
    await store.put("2030/01/02/call/a.mp3", src)
    audio = await store.open("2030/01/02/call/a.mp3")
    assert audio.size == 300_003
    assert await audio.read_all() == src.read_bytes()
    # the prefix is part of the object key: a storage without it sees the object under the full name
    raw = seaweed.storage(BUCKET)
    assert await (await raw.open("calls/2030/01/02/call/a.mp3")).read_all() == src.read_bytes()
    await store.delete("2030/01/02/call/a.mp3")
    await store.delete("2030/01/02/call/a.mp3")  # missing is fine
    with pytest.raises(NotFoundError, match="NoSuchKey"):
        await store.open("2030/01/02/call/a.mp3")


async def test_s3_bad_credentials_are_a_storage_error_without_the_secret(seaweed: SeaweedS3, tmp_path: Path) -> None:
    secret = "wrong-secret-" + os.urandom(4).hex()
    store = S3Storage(BUCKET, endpoint_url=seaweed.endpoint, access_key=seaweed.access_key, secret_key=secret)
    with pytest.raises(RecordingStorageError) as info:
        await store.put("x.mp3", write_file(tmp_path / "x.mp3", b"x"))
    assert "S3 put hotline-test/x.mp3" in str(info.value)
    assert secret not in str(info.value) and seaweed.secret_key not in str(info.value)


async def test_s3_down_is_a_storage_error_quickly(seaweed: SeaweedS3, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    store = seaweed.storage(BUCKET, endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1)
    start = asyncio.get_running_loop().time()
    with pytest.raises(RecordingStorageError, match="Could not connect"):
        await store.put("x.mp3", write_file(tmp_path / "x.mp3", b"x"))
    assert asyncio.get_running_loop().time() - start < 5


async def test_s3_missing_bucket(seaweed: SeaweedS3) -> None:
    store = seaweed.storage("no-such-bucket-here")
    with pytest.raises(NotFoundError):
        await store.check()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"bucket": "ok-bucket", "endpoint_url": "ftp://x"}, "endpoint"),
        ({"bucket": "ok-bucket", "access_key": "a"}, "credentials"),
        ({"bucket": "ok-bucket", "prefix": "../x"}, "prefix"),
        ({"bucket": "ok-bucket", "addressing_style": "odd"}, "addressing style"),
    ],
)
def test_s3_settings_are_checked(kwargs: dict[str, str], problem: str) -> None:
    bucket = kwargs.pop("bucket")
    with pytest.raises(ConfigError, match=problem):
        S3Storage(bucket, **kwargs)  # type: ignore[arg-type]
