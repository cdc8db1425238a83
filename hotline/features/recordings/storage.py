"""Where converted recordings are kept: a local folder (default) or an S3-compatible object store.

Both backends implement `RecordingStorage`: `put(key, file)`, `open(key)` (a `StoredAudio` read in
chunks), `delete(key)` and `check()`.  Keys come from `recording_key`: `YYYY/MM/DD/<call id>/<file>.mp3`,
the date being the call's (from its UUIDv7 id), so a retried upload of the same recording always lands on
the same key and overwrites, never duplicates.

Invariants:
- no method blocks the event loop: file and boto3 calls run in threads (`asyncio.to_thread`), each with
  a deadline (`op_timeout_s`, plus botocore's own connect/read timeouts and bounded retries);
- `put` is atomic and checked: the local backend writes a temporary file in the target folder, fsyncs it
  and renames it into place; the S3 backend compares the stored object's length with the file's.  A
  reader never sees half a recording;
- every failure is a `RecordingStorageError` (retrying may succeed) or `NotFoundError` (no such key),
  translated where it enters (`raise ... from`); messages never contain credentials;
- keys are validated: relative, `/`-separated segments of `[A-Za-z0-9._-]`, no `.` or `..` segment, so a
  key can never escape the local folder or the S3 prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from hotline.errors import ConfigError, NotFoundError
from hotline.features.recordings.errors import RecordingStorageError

CONTENT_TYPE = "audio/mpeg"
_CHUNK = 64 * 1024
_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,128}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------- keys
def check_key(key: str) -> str:
    """The key itself if it is a safe relative object key, else ValueError naming the problem."""
    if not isinstance(key, str) or not key or len(key) > 512:
        raise ValueError(f"storage key {key!r} must be 1 to 512 characters")
    for part in key.split("/"):
        if part in (".", "..") or _SEGMENT.fullmatch(part) is None:
            raise ValueError(f"storage key {key!r}: segment {part!r} is not allowed")
    return key


def recording_key(call_id: str, source_name: str, created_at: datetime) -> str:
    """`YYYY/MM/DD/<call id>/<source file stem>.mp3`, dated by the call id (UUIDv7) when it is one,
    else by `created_at`.  Characters outside [A-Za-z0-9._-] become '_'."""
    when = created_at
    with contextlib.suppress(ValueError):
        parsed = uuid.UUID(call_id)
        if parsed.version == 7:
            when = datetime.fromtimestamp((parsed.int >> 80) / 1000.0, UTC)
    when = when.astimezone(UTC)
    stem = source_name.rsplit("/", 1)[-1]
    if stem.lower().endswith(".wav"):
        stem = stem[:-4]
    safe_call = _UNSAFE.sub("_", call_id)[:64].lstrip(".") or "_"
    safe_stem = _UNSAFE.sub("_", stem)[:120].lstrip(".") or "recording"
    return check_key(f"{when:%Y/%m/%d}/{safe_call}/{safe_stem}.mp3")


# ------------------------------------------------------------------------------------------ reading
class _Reader(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...
    def close(self) -> None: ...


class StoredAudio:
    """A stored MP3 opened for reading: iterate it for chunks (each read runs in a thread); close it with
    `aclose()` (iteration to the end closes it too)."""

    content_type = CONTENT_TYPE

    def __init__(self, reader: _Reader, size: int, *, chunk_size: int = _CHUNK) -> None:
        self._reader = reader
        self.size = size
        self._chunk = chunk_size
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(self._reader.read, self._chunk)
                except (OSError, BotoCoreError) as exc:
                    raise RecordingStorageError(f"reading a stored recording failed: {exc}") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            await self.aclose()

    async def read_all(self) -> bytes:
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._reader.close)


# --------------------------------------------------------------------------------------- the protocol
class RecordingStorage(Protocol):
    """Where MP3 recordings are kept."""

    @property
    def name(self) -> str: ...

    async def put(self, key: str, source: Path) -> None:
        """Store the file under `key`, replacing what is there; atomic."""

    async def open(self, key: str) -> StoredAudio:
        """Open the object for reading; NotFoundError if there is none."""

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    async def check(self) -> None:
        """Raise RecordingStorageError when the backend is not usable right now."""


async def _in_thread(what: str, timeout_s: float, fn: Callable[[], _T]) -> _T:
    try:
        async with asyncio.timeout(timeout_s):
            return await asyncio.to_thread(fn)
    except TimeoutError:
        raise RecordingStorageError(f"{what}: no answer in {timeout_s:g} s") from None


# ------------------------------------------------------------------------------------ local folder
class LocalStorage:
    """Recordings as files under one folder (`<folder>/<key>`)."""

    name = "local"

    def __init__(self, folder: Path, *, op_timeout_s: float = 300.0) -> None:
        self.folder = Path(folder)
        self._timeout = op_timeout_s

    def path_of(self, key: str) -> Path:
        try:
            return self.folder / check_key(key)
        except ValueError as exc:
            raise RecordingStorageError(str(exc)) from None

    async def put(self, key: str, source: Path) -> None:
        target = self.path_of(key)
        await _in_thread(f"local storage: writing {key}", self._timeout, lambda: self._put(target, source))

    def _put(self, target: Path, source: Path) -> None:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(source, "rb") as src, open(tmp, "xb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise RecordingStorageError(f"local storage: cannot write {target}: {exc.strerror or exc}") from exc

    async def open(self, key: str) -> StoredAudio:
        path = self.path_of(key)

        def _open() -> StoredAudio:
            try:
                fh = open(path, "rb")  # noqa: SIM115 - StoredAudio closes it
            except FileNotFoundError:
                raise NotFoundError(f"recording {key} is not in the local storage") from None
            except OSError as exc:
                raise RecordingStorageError(f"local storage: cannot read {path}: {exc.strerror or exc}") from exc
            return StoredAudio(fh, os.fstat(fh.fileno()).st_size)

        return await _in_thread(f"local storage: opening {key}", self._timeout, _open)

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        await _in_thread(f"local storage: deleting {key}", self._timeout, lambda: self._delete(path))

    def _delete(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise RecordingStorageError(f"local storage: cannot delete {path}: {exc.strerror or exc}") from exc
        # prune the day/call folders left empty (best effort: a concurrent put may refill one)
        parent = path.parent
        while parent != self.folder and self.folder in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    async def check(self) -> None:
        def _check() -> None:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RecordingStorageError(
                    f"local storage: cannot create {self.folder}: {exc.strerror or exc}"
                ) from exc
            if not os.access(self.folder, os.W_OK | os.X_OK):
                raise RecordingStorageError(f"local storage: {self.folder} is not writable")

        await _in_thread("local storage: check", self._timeout, _check)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- S3
class _S3Client(Protocol):
    """The part of boto3's S3 client Hotline uses (boto3 ships no type hints)."""

    def put_object(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def head_object(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def get_object(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def delete_object(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def head_bucket(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def create_bucket(self, **kwargs: Any) -> Mapping[str, Any]: ...


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})


class S3Storage:
    """Recordings as objects `<prefix><key>` in one bucket of an S3-compatible store, through boto3."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        addressing_style: str = "path",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
        op_timeout_s: float = 300.0,
    ) -> None:
        if not isinstance(bucket, str) or _BUCKET.fullmatch(bucket) is None:
            raise ConfigError(f"recording S3 bucket {bucket!r}: 3 to 63 lower-case letters, digits, '.' or '-'")
        if endpoint_url is not None and re.fullmatch(r"https?://[^\s/]+(/\S*)?", endpoint_url) is None:
            raise ConfigError(f"recording S3 endpoint {endpoint_url!r}: must be an http:// or https:// URL")
        if (access_key is None) != (secret_key is None):
            raise ConfigError("recording S3 credentials: give both the access key and the secret key, or neither")
        if prefix:
            try:
                check_key(prefix.rstrip("/"))
            except ValueError as exc:
                raise ConfigError(f"recording S3 prefix: {exc}") from None
            prefix = prefix.rstrip("/") + "/"
        if addressing_style not in ("path", "virtual", "auto"):
            raise ConfigError(f"recording S3 addressing style {addressing_style!r}: must be path, virtual or auto")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self._timeout = op_timeout_s
        self._client = _make_client(
            endpoint_url=endpoint_url,
            region=region,
            access_key=access_key,
            secret_key=secret_key,
            addressing_style=addressing_style,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_attempts=max_attempts,
        )

    def object_key(self, key: str) -> str:
        try:
            return self.prefix + check_key(key)
        except ValueError as exc:
            raise RecordingStorageError(str(exc)) from None

    async def _call(self, op: str, key: str, fn: Callable[[], _T]) -> _T:
        what = f"S3 {op} {self.bucket}/{key}" if key else f"S3 {op} {self.bucket}"

        def guarded() -> _T:
            try:
                return fn()
            except (BotoCoreError, ClientError, OSError) as exc:
                raise _translate(what, exc) from exc

        return await _in_thread(what, self._timeout, guarded)

    async def put(self, key: str, source: Path) -> None:
        obj = self.object_key(key)

        def _put() -> None:
            with open(source, "rb") as body:
                size = os.fstat(body.fileno()).st_size
                self._client.put_object(
                    Bucket=self.bucket, Key=obj, Body=body, ContentLength=size, ContentType=CONTENT_TYPE
                )
            stored = self._client.head_object(Bucket=self.bucket, Key=obj).get("ContentLength")
            if stored != size:
                raise RecordingStorageError(f"S3 put {self.bucket}/{obj}: stored {stored} bytes of {size}")

        await self._call("put", obj, _put)

    async def open(self, key: str) -> StoredAudio:
        obj = self.object_key(key)

        def _open() -> StoredAudio:
            response = self._client.get_object(Bucket=self.bucket, Key=obj)
            body: _Reader = response["Body"]
            return StoredAudio(body, int(response.get("ContentLength") or 0))

        return await self._call("get", obj, _open)

    async def delete(self, key: str) -> None:
        obj = self.object_key(key)
        await self._call("delete", obj, lambda: self._client.delete_object(Bucket=self.bucket, Key=obj))

    async def check(self) -> None:
        await self._call("head-bucket", "", lambda: self._client.head_bucket(Bucket=self.bucket))

    async def ensure_bucket(self, region: str = "us-east-1") -> None:
        """Create the bucket unless it exists (for a fresh store; production buckets are made by their
        owner)."""

        def _ensure() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _error_code(exc) not in _NOT_FOUND:
                    raise
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self._client.create_bucket(**kwargs)

        await self._call("create-bucket", "", _ensure)


def _make_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    addressing_style: str,
    connect_timeout_s: float,
    read_timeout_s: float,
    max_attempts: int,
) -> _S3Client:
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    config = Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        s3={"addressing_style": addressing_style},
    )
    # A session per storage: boto3's default session is module state shared by the whole process.
    session = boto3.session.Session()
    client: _S3Client = session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )
    return client


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping) and error.get("Code") is not None:
            return str(error["Code"])
    return None


def _translate(what: str, exc: BaseException) -> NotFoundError | RecordingStorageError:
    code = _error_code(exc)
    if code in _NOT_FOUND:
        return NotFoundError(f"{what}: not found ({code})")
    if code is not None:
        response: Any = getattr(exc, "response", {})
        message = str(response.get("Error", {}).get("Message") or "")
        return RecordingStorageError(f"{what}: {code} {message}".rstrip())
    return RecordingStorageError(f"{what}: {type(exc).__name__}: {exc}")


__all__ = [
    "CONTENT_TYPE",
    "LocalStorage",
    "RecordingStorage",
    "S3Storage",
    "StoredAudio",
    "check_key",
    "recording_key",
]
