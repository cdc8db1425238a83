"""Uploaded audio -> the WAV Asterisk plays: validation, format sniffing, conversion with ffmpeg.

Asterisk's format_wav plays RIFF/WAVE files that are PCM, 16-bit, mono, 8000 Hz (16000 Hz only under
the `.wav16` extension), with a lowercase `.wav` extension (ast22 formats/format_wav.c check_header_fmt).
Played to a G.711 channel such a file costs one slin -> ulaw/alaw translation and no resampling, so
every upload is converted to exactly that, whatever it was.

Invariants:
- the format is sniffed from the bytes, never taken from the file name: RIFF/WAVE or MP3 (an ID3v2 tag
  and/or MPEG-1/2/2.5 Layer III frames).  Anything else, an empty file, a file over the size cap, a
  chunk or tag that runs past the end of the file (a truncated file, a "huge header") is refused with
  `MediaError(field, ...)` before ffmpeg runs; ffmpeg is then told the format (`-f wav|mp3`, file
  protocol only), so it never probes its way into another demuxer;
- ffmpeg runs as a subprocess with a timeout (MP3: stopping at the first decoding error); its output is
  capped at `max_duration_s + 1` seconds of audio, so a tiny file cannot expand without bound;
- the output is read back with Python's `wave` module and must be 8000 Hz, mono, 16-bit, 0 < duration
  <= max_duration_s; otherwise it is deleted and `MediaError` raised;
- nothing is left behind on failure: the work folder is removed; on success the caller gets a file in
  `work_dir` (same file system as the store) to rename into place atomically.
The functions here block (subprocess, file I/O, CPU): call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hotline.errors import ConfigError, ValidationError

AudioFormat = Literal["wav", "mp3"]

OUTPUT_RATE = 8000
OUTPUT_CHANNELS = 1
OUTPUT_SAMPLE_WIDTH = 2  # bytes: 16-bit signed little-endian PCM

# Media names become file names on every node and, without extension, Playback() arguments and MOH file
# names.  No leading '.': res_musiconhold skips dot files (ast22 res_musiconhold.c on_moh_file) and
# Hotline's own temporary files start with one.
NAME_PATTERN = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}"
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"

# WAVE format tags ffmpeg decodes and that real recorders write; anything else is refused by name.
_WAV_CODECS = {
    0x0001: "PCM",
    0x0002: "MS ADPCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0xFFFE: "extensible",
}
_FMT_MAX = 1024  # a fmt chunk is 16, 18 or 40 bytes; a bigger one is a hostile header
_MAX_CHUNKS = 1000
_STREAMING_SIZE = 0xFFFFFFFF  # data size written by streaming encoders that could not seek back

# MPEG audio Layer III (ISO 11172-3 / 13818-3) tables: kbit/s by bitrate index, Hz by sample-rate index.
_L3_BITRATES = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2.5
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MP3_FIRST_FRAME_WINDOW = 4096  # zero padding tolerated between an ID3 tag and the first frame


class MediaError(ValidationError):
    """An upload Hotline refuses: the message names the problem (format, size, duration, name...)."""


@dataclass(frozen=True)
class ConvertedAudio:
    """A converted file waiting in the work folder to be renamed into the store."""

    path: Path
    sha256: str
    duration_s: float
    size: int


# -------------------------------------------------------------------------------------- validation


def check_name(field: str, value: object) -> str:
    if not isinstance(value, str) or re.fullmatch(NAME_PATTERN, value) is None:
        raise MediaError(field, f"must be {NAME_RULE} (got {value!r})")
    return value


def check_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise MediaError("file", "is empty")
    if len(data) > max_bytes:
        raise MediaError("file", f"is {len(data)} bytes; the limit is {max_bytes} bytes")


def sniff_format(data: bytes) -> AudioFormat:
    """'wav' or 'mp3' from the bytes themselves, after checking the container's structure."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        _check_wav(data)
        return "wav"
    if data[:3] == b"ID3" or _mpeg_frame_length(data, 0) is not None:
        _check_mp3(data)
        return "mp3"
    if data[:4] in (b"RIFF", b"RF64"):
        raise MediaError("file", "is a RIFF file but not WAVE audio")
    raise MediaError("file", "is neither WAV (RIFF/WAVE) nor MP3 audio")


def _check_wav(data: bytes) -> None:
    n = len(data)
    pos = 12
    fmt_seen = False
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > n:
            raise MediaError("file", f"WAV file ends at byte {n} before its data chunk (truncated)")
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        name = chunk_id.decode("latin-1").strip() or "?"
        if chunk_id == b"fmt ":
            if not 16 <= size <= _FMT_MAX:
                raise MediaError("file", f"WAV fmt chunk of {size} bytes (expected 16 to {_FMT_MAX})")
            if body + size > n:
                raise MediaError("file", "WAV fmt chunk runs past the end of the file (truncated)")
            tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag not in _WAV_CODECS:
                raise MediaError("file", f"WAV audio with format tag 0x{tag:04x} is not supported")
            if not 1 <= channels <= 8:
                raise MediaError("file", f"WAV file with {channels} channels is not supported")
            if not 1000 <= rate <= 384_000:
                raise MediaError("file", f"WAV sample rate {rate} Hz is not supported")
            if block_align == 0 or (tag in (0x0001, 0x0003) and bits not in (8, 16, 24, 32, 64)):
                raise MediaError("file", f"WAV fmt chunk is inconsistent ({bits} bits, block {block_align})")
            fmt_seen = True
        elif chunk_id == b"data":
            if not fmt_seen:
                raise MediaError("file", "WAV data chunk comes before the fmt chunk")
            if size == _STREAMING_SIZE:  # written without seeking back: the audio runs to the end
                size = n - body
            if size == 0:
                raise MediaError("file", "WAV file holds no audio samples")
            if body + size > n:
                raise MediaError(
                    "file", f"WAV data chunk declares {size} bytes but the file has {n - body} (truncated)"
                )
            return
        elif body + size > n:
            raise MediaError("file", f"WAV chunk {name!r} of {size} bytes runs past the end of the file")
        pos = body + size + (size & 1)  # chunks are padded to an even length
    raise MediaError("file", f"WAV file has more than {_MAX_CHUNKS} chunks before its data")


def _mpeg_frame_length(data: bytes, pos: int) -> int | None:
    """Length in bytes of the MPEG Layer III frame whose header starts at `pos`, None if none starts there."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = data[pos + 1], data[pos + 2]
    version = (b1 >> 3) & 3  # 0 = 2.5, 1 = reserved, 2 = MPEG-2, 3 = MPEG-1
    layer = (b1 >> 1) & 3  # 1 = Layer III
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values, another layer, or free format: not a frame we accept
    bitrate = _L3_BITRATES[version][bitrate_index] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (b2 >> 1) & 1
    return (144 if version == 3 else 72) * bitrate // rate + padding


def _id3v2_end(data: bytes, pos: int) -> int:
    """End offset of the ID3v2 tag that starts at `pos` (10-byte header, syncsafe size, v2.4 footer)."""
    if pos + 10 > len(data):
        raise MediaError("file", "ID3 tag header is cut short (truncated)")
    major, flags, raw = data[pos + 3], data[pos + 5], data[pos + 6 : pos + 10]
    if major == 0xFF or any(b & 0x80 for b in raw):
        raise MediaError("file", "ID3 tag header is malformed")
    size = (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]
    end = pos + 10 + size + (10 if major >= 4 and flags & 0x10 else 0)
    if end > len(data):
        raise MediaError(
            "file", f"ID3 tag declares {end - pos} bytes but the file has {len(data) - pos} (truncated or corrupt)"
        )
    return end


def _check_mp3(data: bytes) -> None:
    """Walk every frame: the file must be ID3v2? + Layer III frames + (ID3v1 | APE | zero padding)?."""
    n = len(data)
    pos = 0
    while data[pos : pos + 3] == b"ID3":  # some files carry more than one ID3v2 tag
        pos = _id3v2_end(data, pos)
    start = pos
    limit = min(n, start + _MP3_FIRST_FRAME_WINDOW)
    while pos < limit and data[pos] == 0:
        pos += 1
    if _mpeg_frame_length(data, pos) is None:
        where = "after its ID3 tag" if start else "at its start"
        raise MediaError("file", f"has no MPEG Layer III frame {where} (not an MP3, or corrupt)")
    frames = 0
    while pos < n:
        length = _mpeg_frame_length(data, pos)
        if length is None:
            rest = data[pos:]
            if (rest[:3] == b"TAG" and len(rest) == 128) or rest[:8] == b"APETAGEX" or rest[:6] == b"LYRICS":
                break
            if not rest.strip(b"\0"):
                break
            if frames and len(rest) < 4:
                raise MediaError("file", f"MP3 ends inside a frame header at byte {pos} (truncated)")
            raise MediaError("file", f"MP3 has no valid frame at byte {pos} (corrupt)")
        if pos + length > n:
            raise MediaError("file", f"MP3 frame at byte {pos} runs past the end of the file (truncated)")
        pos += length
        frames += 1


# -------------------------------------------------------------------------------------- conversion


def convert_upload(
    data: bytes,
    *,
    work_dir: Path,
    ffmpeg: str = "ffmpeg",
    max_bytes: int = 50 * 1024 * 1024,
    max_duration_s: float = 3600.0,
    timeout_s: float = 120.0,
) -> ConvertedAudio:
    """Check `data` and convert it to 8 kHz mono 16-bit PCM WAV in a fresh file under `work_dir`.

    Raises MediaError for any input Hotline refuses, ConfigError when ffmpeg cannot be run at all.
    The returned file belongs to the caller (rename it or delete it)."""
    check_size(data, max_bytes)
    fmt = sniff_format(data)
    work_dir.mkdir(parents=True, exist_ok=True)
    job = Path(tempfile.mkdtemp(prefix=".convert-", dir=work_dir))
    try:
        source = job / f"input.{fmt}"
        source.write_bytes(data)
        target = job / "output.wav"
        _run_ffmpeg(ffmpeg, fmt, source, target, max_duration_s, timeout_s)
        duration = _verify_output(target, max_duration_s)
        digest, size = _sha256(target)
        final = work_dir / f".{digest}.{os.getpid()}.{job.name[-8:]}.wav"
        os.replace(target, final)
        return ConvertedAudio(final, digest, duration, size)
    finally:
        shutil.rmtree(job, ignore_errors=True)


# MP3: stop at the first decoding error instead of concealing it (the frame walk checked structure, not
# content).  WAV: not needed (the chunk walk found any truncation and PCM cannot be "corrupt"), and harmful:
# with a streaming header (data size 0xFFFFFFFF) ffmpeg 5.1 flags the last packet corrupt.
_STRICT_DECODING: dict[AudioFormat, tuple[str, ...]] = {"mp3": ("-xerror",), "wav": ()}


def _run_ffmpeg(ffmpeg: str, fmt: AudioFormat, source: Path, target: Path, max_s: float, timeout_s: float) -> None:
    cmd = [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        *_STRICT_DECODING[fmt],
        "-threads",
        "1",
        "-protocol_whitelist",
        "file",
        "-f",
        fmt,
        "-i",
        str(source),
        "-map",
        "0:a:0",
        "-ac",
        str(OUTPUT_CHANNELS),
        "-ar",
        str(OUTPUT_RATE),
        "-c:a",
        "pcm_s16le",
        "-t",
        f"{max_s + 1:.3f}",
        # no LIST/INFO chunk: a plain 44-byte header, and the same input always gives the same bytes
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-f",
        "wav",
        "-y",
        str(target),
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False, env=env)
    except FileNotFoundError as exc:
        raise ConfigError(f"ffmpeg ({ffmpeg}) is not installed; it converts uploaded audio") from exc
    except PermissionError as exc:
        raise ConfigError(f"ffmpeg ({ffmpeg}) cannot be executed: {exc}") from exc
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed and reaped ffmpeg
        raise MediaError("file", f"conversion did not finish in {timeout_s:g} s") from exc
    if proc.returncode != 0:
        raise MediaError("file", f"could not be decoded as {fmt.upper()}: {_ffmpeg_reason(proc.stderr, source)}")


def _ffmpeg_reason(stderr: bytes, source: Path) -> str:
    text = stderr.decode("utf-8", errors="replace").replace(str(source), "input")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[-1] if lines else "ffmpeg failed without a message"
    reason = re.sub(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*", "", reason)  # "[mp3float @ 0x55...] " says nothing to users
    reason = "".join(ch for ch in reason if ch.isprintable())
    return reason[:200]


def _verify_output(path: Path, max_s: float) -> float:
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            compression = w.getcomptype()
    except (wave.Error, EOFError, OSError) as exc:
        raise MediaError("file", f"conversion produced no valid WAV ({exc})") from exc
    if (channels, width, rate, compression) != (OUTPUT_CHANNELS, OUTPUT_SAMPLE_WIDTH, OUTPUT_RATE, "NONE"):
        raise MediaError("file", f"conversion produced {rate} Hz, {channels} channel(s), {8 * width}-bit audio")
    if frames <= 0 or frames * width > path.stat().st_size:
        raise MediaError("file", "holds no audio that could be decoded")
    duration = frames / rate
    if duration > max_s:
        raise MediaError("file", f"lasts more than {max_s:g} s; the limit is {max_s:g} s")
    return duration


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def discard(path: Path) -> None:
    """Delete a converted file the caller does not keep."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
