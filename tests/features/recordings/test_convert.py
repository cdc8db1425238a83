"""WAV -> MP3 with the real ffmpeg binary, checked by ffprobe (an independent reader)."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from hotline.features.recordings.convert import Mp3Converter, read_wav
from hotline.features.recordings.errors import ConversionError, WavFormatError

from .conftest import asterisk_wav, ffmpeg_wav, pcm_tone, write_file


def _probe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration", "-of", "default=nw=1", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    fields = dict(line.split("=", 1) for line in out.split())
    assert fields["format_name"] == "mp3"
    return float(fields["duration"])


async def test_ffmpeg_sine_wav_becomes_a_real_mp3(tmp_path: Path) -> None:
    src = ffmpeg_wav(tmp_path / "in.wav", seconds=3)
    mp3 = await Mp3Converter().convert(src, tmp_path / "out.mp3")
    assert mp3.duration_s == 3.0
    assert mp3.size == (tmp_path / "out.mp3").stat().st_size > 1000
    assert abs(_probe_duration(mp3.path) - 3.0) < 0.2


async def test_asterisk_wav_closed_and_still_open(tmp_path: Path) -> None:
    conv = Mp3Converter(bitrate_kbps=24)
    closed = await conv.convert(write_file(tmp_path / "c.wav", asterisk_wav(pcm_tone(2))), tmp_path / "c.mp3")
    assert closed.duration_s == 2.0 and abs(_probe_duration(closed.path) - 2.0) < 0.2
    # a header Asterisk never finalized: ffmpeg reads the audio up to the end of the file
    opened = await conv.convert(
        write_file(tmp_path / "o.wav", asterisk_wav(pcm_tone(1), finalized=False)), tmp_path / "o.mp3"
    )
    assert opened.duration_s == 1.0 and abs(_probe_duration(opened.path) - 1.0) < 0.2


async def test_corrupt_input_is_refused_before_ffmpeg(tmp_path: Path) -> None:
    src = write_file(tmp_path / "bad.wav", os.urandom(4000).replace(b"RIFF", b"XXXX"))
    with pytest.raises(WavFormatError, match="not a WAV"):
        await Mp3Converter().convert(src, tmp_path / "bad.mp3")
    assert not (tmp_path / "bad.mp3").exists()


async def test_incomplete_header_is_refused(tmp_path: Path) -> None:
    src = write_file(tmp_path / "new.wav", asterisk_wav(b"", finalized=False)[:20])
    with pytest.raises(WavFormatError, match="header is incomplete"):
        await Mp3Converter().convert(src, tmp_path / "new.mp3")


async def test_ffmpeg_failure_is_a_conversion_error_with_its_message(tmp_path: Path) -> None:
    # a well-formed header ffmpeg has no decoder for: IEEE float with 16 bits per sample
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 16000, 2, 16)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 4000) + bytes(4000)
    src = write_file(tmp_path / "float16.wav", b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(ConversionError, match=r"ffmpeg failed on float16.wav \(exit 1\): .*[Dd]ecoder"):
        await Mp3Converter().convert(src, tmp_path / "float16.mp3")
    assert not (tmp_path / "float16.mp3").exists()


async def test_missing_binary(tmp_path: Path) -> None:
    src = write_file(tmp_path / "a.wav", asterisk_wav(pcm_tone(0.2)))
    with pytest.raises(ConversionError, match="not found"):
        await Mp3Converter(str(tmp_path / "no-ffmpeg")).convert(src, tmp_path / "a.mp3")


def _ffmpeg_processes_writing(target: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(target).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


async def test_timeout_kills_ffmpeg(tmp_path: Path) -> None:
    src = write_file(tmp_path / "long.wav", asterisk_wav(pcm_tone(1) * 600))  # 10 minutes of audio
    target = tmp_path / "long.mp3"
    with pytest.raises(ConversionError, match="did not finish"):
        await Mp3Converter(timeout_s=0.05).convert(src, target)
    assert _ffmpeg_processes_writing(target) == []  # killed and reaped


async def test_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    with pytest.raises(WavFormatError, match="not a regular file"):
        read_wav(fifo)  # would block forever if it were opened
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "absent.wav")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="bitrate"):
        Mp3Converter(bitrate_kbps=4)
    with pytest.raises(ValueError, match="timeout"):
        Mp3Converter(timeout_s=0)


def test_command_reads_files_through_the_file_protocol(tmp_path: Path) -> None:
    cmd = Mp3Converter().command(Path("-i"), Path("pipe:1"))
    assert "-nostdin" in cmd
    assert cmd[cmd.index("-i") + 1] == f"file:{Path('-i').absolute()}"
    assert cmd[-1] == f"file:{Path('pipe:1').absolute()}"


async def test_cancellation_kills_ffmpeg(tmp_path: Path) -> None:
    import asyncio

    from .conftest import eventually

    src = write_file(tmp_path / "long.wav", asterisk_wav(pcm_tone(1) * 1200))
    target = tmp_path / "cancelled.mp3"
    task = asyncio.ensure_future(Mp3Converter(timeout_s=60).convert(src, target))

    async def running() -> bool:
        return bool(_ffmpeg_processes_writing(target))

    await eventually(running, what="ffmpeg to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _ffmpeg_processes_writing(target) == []
