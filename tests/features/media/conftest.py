"""Real audio for the media tests, generated once per session with Debian's ffmpeg (lavfi sine source)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

Make = Callable[..., bytes]


@pytest.fixture(scope="session")
def make_audio(tmp_path_factory: pytest.TempPathFactory) -> Make:
    """make_audio(name, *ffmpeg output args, seconds=2.0, rate=44100, freq=440) -> the file's bytes (cached)."""
    folder = tmp_path_factory.mktemp("audio")
    cache: dict[tuple[object, ...], bytes] = {}

    def make(name: str, *args: str, seconds: float = 2.0, rate: int = 44100, freq: int = 440) -> bytes:
        key = (name, args, seconds, rate, freq)
        if key not in cache:
            out = folder / name
            cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                   f"sine=frequency={freq}:duration={seconds}:sample_rate={rate}", *args, "-y", str(out)]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True, timeout=60)
            cache[key] = out.read_bytes()
        return cache[key]

    return make


@pytest.fixture(scope="session")
def wav_bytes(make_audio: Make) -> bytes:
    """2 s, 44.1 kHz, stereo, 16-bit PCM WAV (with ffmpeg's LIST/INFO chunk)."""
    return make_audio("in.wav", "-ac", "2", "-c:a", "pcm_s16le")


@pytest.fixture(scope="session")
def mp3_bytes(make_audio: Make) -> bytes:
    """2 s, 44.1 kHz, stereo, 64 kbit/s MP3 with an ID3v2 tag (lame)."""
    return make_audio("in.mp3", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "64k")
