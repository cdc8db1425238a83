"""MediaService end to end: real ffmpeg, a real SQLite database, real node folders under tmp_path."""

from __future__ import annotations

import asyncio
import os
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.db.engine import create_engine_for
from hotline.db.repositories import ConfigRepository
from hotline.db.repositories.media import MediaRepository, MediaState
from hotline.errors import ConfigError, ConflictError, NotFoundError
from hotline.features.media import MediaError, MediaService, musiconhold_rows
from hotline.features.media.distribute import MANIFEST


class Lab:
    """Fake node folders: host side under tmp_path, node side as a chroot'ed Asterisk would see it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.nodes: dict[str, tuple[Path, str]] = {}

    def add(self, name: str) -> Path:
        host = self.base / "root" / "hl" / "lab" / name / "media"
        self.nodes[name] = (host, f"/hl/lab/{name}/media")
        return host

    def host(self, name: str) -> Path:
        return self.nodes[name][0]

    def __call__(self) -> dict[str, tuple[Path, str]]:
        return dict(self.nodes)


@pytest.fixture
def repo(sqlite_url: str) -> Iterator[MediaRepository]:
    engine = create_engine_for(sqlite_url)
    try:
        yield MediaRepository(engine)
    finally:
        engine.dispose()


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = Lab(tmp_path)
    lab.add("node1")
    lab.add("node2")
    return lab


@pytest.fixture
def service(repo: MediaRepository, lab: Lab, tmp_path: Path) -> MediaService:
    return MediaService(repo, tmp_path / "store", lab, garbage_grace_s=3600.0)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def wav_format(path: Path) -> tuple[int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), 8 * w.getsampwidth()


async def test_upload_reaches_every_node(service: MediaService, lab: Lab, wav_bytes: bytes, mp3_bytes: bytes) -> None:
    await service.start()
    prompt = await service.add_prompt("welcome", mp3_bytes, "C:\\Users\\me\\Accueil.mp3")
    assert prompt.original_name == "Accueil.mp3"
    assert prompt.duration_s == pytest.approx(2.0, abs=0.06)
    await service.add_moh_class("sales", random=True)
    await service.add_moh_file("sales", "track1", wav_bytes, "track1.wav")
    for node in ("node1", "node2"):
        host = lab.host(node)
        assert files_under(host) == [MANIFEST, "moh/sales/track1.wav", "prompts/welcome.wav"]
        assert wav_format(host / "prompts/welcome.wav") == (8000, 1, 16)
        assert (host / "prompts/welcome.wav").read_bytes() == service.blob_path(prompt.sha256).read_bytes()
        # Playback() gets the node-side absolute path without extension; the file is that path + ".wav"
        path = service.prompt_path_for_node(node, "welcome")
        assert path == f"/hl/lab/{node}/media/prompts/welcome"
        assert (lab.base / "root" / (path.lstrip("/") + ".wav")).is_file()
        assert service.moh_directory_for_node(node, "sales") == f"/hl/lab/{node}/media/moh/sales"
    assert service.musiconhold_rows_for_node("node2") == [
        {"name": "sales", "mode": "files", "directory": "/hl/lab/node2/media/moh/sales", "sort": "random"}
    ]
    assert [p.name for p in await service.list_prompts()] == ["welcome"]
    assert [(f.moh_class, f.name) for f in await service.list_moh_files()] == [("sales", "track1")]
    assert [c.name for c in await service.list_moh_classes()] == ["sales"]


async def test_sync_is_idempotent_by_sha256(service: MediaService, lab: Lab, wav_bytes: bytes) -> None:
    await service.add_prompt("welcome", wav_bytes)
    target = lab.host("node1") / "prompts/welcome.wav"
    stamp = target.stat().st_mtime_ns
    report = await service.sync_nodes()
    assert report.ok
    assert {n: (r.copied, r.removed) for n, r in report.nodes.items()} == {"node1": (0, 0), "node2": (0, 0)}
    assert target.stat().st_mtime_ns == stamp
    # without the manifest the files are hashed, found identical and kept
    (lab.host("node1") / MANIFEST).unlink()
    report = await service.sync_nodes()
    assert report.nodes["node1"].copied == 0
    assert target.stat().st_mtime_ns == stamp
    assert (lab.host("node1") / MANIFEST).is_file()
    # a file changed on the node is put back
    target.write_bytes(b"tampered")
    report = await service.sync_nodes()
    assert report.nodes["node1"].copied == 1
    assert wav_format(target) == (8000, 1, 16)


async def test_deletions_reach_every_node(service: MediaService, lab: Lab, wav_bytes: bytes) -> None:
    await service.add_prompt("welcome", wav_bytes)
    await service.add_prompt("bye", wav_bytes)
    await service.add_moh_class("sales")
    await service.add_moh_file("sales", "track1", wav_bytes)
    await service.delete_prompt("welcome")
    for node in ("node1", "node2"):
        assert files_under(lab.host(node)) == [MANIFEST, "moh/sales/track1.wav", "prompts/bye.wav"]
    with pytest.raises(NotFoundError):
        service.prompt_path_for_node("node1", "welcome")
    assert await service.delete_moh_class("sales") == 1
    for node in ("node1", "node2"):
        assert files_under(lab.host(node)) == [MANIFEST, "prompts/bye.wav"]
        assert not (lab.host(node) / "moh/sales").exists()
    assert service.musiconhold_rows("/x") == []
    with pytest.raises(NotFoundError):
        await service.delete_prompt("welcome")


async def test_a_late_node_gets_everything(service: MediaService, lab: Lab, wav_bytes: bytes) -> None:
    await service.add_prompt("welcome", wav_bytes)
    await service.add_moh_class("sales")
    await service.add_moh_file("sales", "track1", wav_bytes)
    host3 = lab.add("node3")
    assert not host3.exists()
    report = await service.sync_nodes()
    assert report.nodes["node3"].copied == 2
    assert files_under(host3) == [MANIFEST, "moh/sales/track1.wav", "prompts/welcome.wav"]
    assert service.prompt_path_for_node("node3", "welcome") == "/hl/lab/node3/media/prompts/welcome"


async def test_stray_files_go_young_temporary_files_stay(service: MediaService, lab: Lab, wav_bytes: bytes) -> None:
    await service.add_prompt("welcome", wav_bytes)
    host = lab.host("node1")
    (host / "prompts/old.wav").write_bytes(b"x")
    (host / "prompts/en").mkdir()  # would shadow prompts: Playback tries <dir>/<language>/<name> first
    (host / "prompts/en/welcome.wav").write_bytes(b"x")
    (host / "moh/ghost").mkdir(parents=True)
    (host / "moh/ghost/song.wav").write_bytes(b"x")
    young = host / "prompts/.welcome.wav.0a1b2c3d.tmp"  # another instance copying right now
    young.write_bytes(b"x")
    old = host / "prompts/.bye.wav.deadbeef.tmp"  # left by a crash long ago
    old.write_bytes(b"x")
    long_ago = time.time() - 7200
    os.utime(old, (long_ago, long_ago))
    report = await service.sync_nodes()
    assert report.nodes["node1"].removed == 4
    assert files_under(host) == [MANIFEST, "prompts/.welcome.wav.0a1b2c3d.tmp", "prompts/welcome.wav"]


async def test_replacing_a_prompt_updates_every_node(
    service: MediaService, lab: Lab, make_audio: object, wav_bytes: bytes
) -> None:
    first = await service.add_prompt("welcome", wav_bytes)
    with pytest.raises(ConflictError, match="prompt 'welcome' already exists"):
        await service.add_prompt("welcome", wav_bytes)
    other = make_audio("880.wav", freq=880, seconds=1.0)  # type: ignore[operator]
    second = await service.add_prompt("welcome", other, replace=True)
    assert second.id == first.id
    assert second.duration_s == pytest.approx(1.0, abs=0.01)
    assert second.sha256 != first.sha256
    for node in ("node1", "node2"):
        assert (lab.host(node) / "prompts/welcome.wav").read_bytes() == service.blob_path(second.sha256).read_bytes()


async def test_refused_uploads_leave_nothing(service: MediaService, lab: Lab, tmp_path: Path, mp3_bytes: bytes) -> None:
    await service.start()
    with pytest.raises(MediaError, match="truncated"):
        await service.add_prompt("welcome", mp3_bytes[:5000])
    with pytest.raises(MediaError, match="neither WAV"):
        await service.add_prompt("welcome", b"\x00" * 100)
    with pytest.raises(MediaError, match="name: must be"):
        await service.add_prompt("../etc/passwd", mp3_bytes)
    with pytest.raises(NotFoundError, match="music class 'nope'"):
        await service.add_moh_file("nope", "song", mp3_bytes)
    assert await service.list_prompts() == []
    assert files_under(tmp_path / "store") == []
    assert files_under(lab.host("node1")) == []


async def test_size_cap_comes_before_conversion(
    repo: MediaRepository, lab: Lab, tmp_path: Path, wav_bytes: bytes
) -> None:
    service = MediaService(repo, tmp_path / "store", lab, max_upload_bytes=1000, ffmpeg=str(tmp_path / "none"))
    with pytest.raises(MediaError, match="the limit is 1000 bytes"):
        await service.add_prompt("welcome", wav_bytes)


async def test_unreferenced_blobs_are_collected_after_the_grace_period(
    repo: MediaRepository, lab: Lab, tmp_path: Path, wav_bytes: bytes
) -> None:
    service = MediaService(repo, tmp_path / "store", lab, garbage_grace_s=0.0)
    prompt = await service.add_prompt("welcome", wav_bytes)
    blob = service.blob_path(prompt.sha256)
    assert blob.is_file()
    await service.delete_prompt("welcome")
    assert not blob.exists()
    assert service.last_report is not None and service.last_report.blobs_removed == 1


async def test_a_missing_blob_is_reported_and_the_rest_still_copied(
    service: MediaService, repo: MediaRepository, lab: Lab, wav_bytes: bytes
) -> None:
    await service.add_prompt("welcome", wav_bytes)
    # a row written by another Hotline instance whose store this one does not share
    await asyncio.to_thread(repo.add_file, "prompt", "remote", sha256="c" * 64, duration_s=1.0, size=10)
    lab.add("node3")
    report = await service.sync_nodes()
    assert not report.ok
    assert report.nodes["node3"].errors == [f"prompts/remote.wav: sha256 {'c' * 64} is not in this media store"]
    assert files_under(lab.host("node3")) == [MANIFEST, "prompts/welcome.wav"]


async def test_state_is_published_between_copy_and_prune(service: MediaService, lab: Lab, wav_bytes: bytes) -> None:
    seen: list[tuple[set[str], bool]] = []

    def listener(state: MediaState) -> None:
        names = {f.name for f in state.files}
        # at publication every file the state names is on every node...
        for name in names:
            for node in ("node1", "node2"):
                assert (lab.host(node) / f"prompts/{name}.wav").is_file()
        # ...and a file it no longer names is still there (removed after)
        seen.append((names, (lab.host("node1") / "prompts/old.wav").is_file()))

    service.subscribe(listener)
    await service.add_prompt("old", wav_bytes)
    await service.add_prompt("new", wav_bytes)
    await service.delete_prompt("old")
    assert seen == [({"old"}, True), ({"new", "old"}, True), ({"new"}, True)]
    assert not (lab.host("node1") / "prompts/old.wav").exists()


async def test_changes_from_another_instance_arrive_through_notify(
    service: MediaService, repo: MediaRepository, lab: Lab, tmp_path: Path, wav_bytes: bytes
) -> None:
    other = MediaService(repo, tmp_path / "store", lambda: {}, sync_interval_s=3600.0)  # same shared store
    await other.add_prompt("welcome", wav_bytes)
    assert not (lab.host("node1") / "prompts/welcome.wav").exists()
    service._sync_interval = 3600.0  # only notify_changed can wake it in this test
    loop_task = asyncio.create_task(service.sync_loop())
    try:
        service.notify_changed()
        deadline = time.monotonic() + 10
        while not (lab.host("node2") / "prompts/welcome.wav").exists():
            assert time.monotonic() < deadline, "the sync loop did not copy the new prompt"
            await asyncio.sleep(0.01)
        assert service.prompt_path_for_node("node2", "welcome") == "/hl/lab/node2/media/prompts/welcome"
    finally:
        loop_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop_task


async def test_concurrent_uploads(service: MediaService, lab: Lab, wav_bytes: bytes, mp3_bytes: bytes) -> None:
    await service.add_moh_class("sales")
    await asyncio.gather(
        service.add_moh_file("sales", "a", wav_bytes),
        service.add_moh_file("sales", "b", mp3_bytes),
        service.add_prompt("c", wav_bytes),
    )
    assert files_under(lab.host("node1")) == [MANIFEST, "moh/sales/a.wav", "moh/sales/b.wav", "prompts/c.wav"]


async def test_unknown_node_and_class(service: MediaService, wav_bytes: bytes) -> None:
    await service.add_prompt("welcome", wav_bytes)
    with pytest.raises(NotFoundError, match="node 'node9'"):
        service.prompt_path_for_node("node9", "welcome")
    with pytest.raises(NotFoundError, match="music class 'nope'"):
        service.moh_directory_for_node("node1", "nope")


async def test_class_used_by_a_queue_is_kept(service: MediaService, sqlite_url: str, wav_bytes: bytes) -> None:
    await service.add_moh_class("sales")
    await service.add_moh_file("sales", "track1", wav_bytes)
    engine = create_engine_for(sqlite_url)
    try:
        ConfigRepository(engine).add_queue("q1", musicclass="sales")
    finally:
        engine.dispose()
    with pytest.raises(ConflictError, match="q1"):
        await service.delete_moh_class("sales")
    assert service.musiconhold_rows("/m")[0]["name"] == "sales"


# ------------------------------------------------------------------------------------ the realtime rows (pure)


def test_musiconhold_rows_only_classes_with_files(repo: MediaRepository) -> None:
    repo.add_moh_class("zeta", random=True)
    repo.add_moh_class("alpha")
    repo.add_moh_class("empty")
    for cls in ("zeta", "alpha"):
        repo.add_file("moh", "song", moh_class=cls, sha256="a" * 64, duration_s=1.0, size=10)
    repo.add_file("prompt", "empty", sha256="a" * 64, duration_s=1.0, size=10)  # a prompt is no class
    rows = musiconhold_rows(repo.load_state(), "/var/lib/hotline/media/")
    assert rows == [
        {"name": "alpha", "mode": "files", "directory": "/var/lib/hotline/media/moh/alpha", "sort": "alpha"},
        {"name": "zeta", "mode": "files", "directory": "/var/lib/hotline/media/moh/zeta", "sort": "random"},
    ]


@pytest.mark.parametrize("root", ["relative/media", "", "/" + "x" * 250, "/bad\nroot"])
def test_musiconhold_rows_refuse_roots_asterisk_cannot_use(repo: MediaRepository, root: str) -> None:
    repo.add_moh_class("sales")
    repo.add_file("moh", "song", moh_class="sales", sha256="a" * 64, duration_s=1.0, size=10)
    with pytest.raises(ConfigError):
        musiconhold_rows(repo.load_state(), root)
