"""Pure readers for the two audio formats recordings pass through: the WAV MixMonitor writes and the MP3
ffmpeg makes.  No I/O: callers hand in the first bytes of a file and its size.

WAV (`parse_wav`).  Asterisk 22's format_wav (formats/format_wav.c) writes a 44-byte header whose RIFF
and data sizes are *zero* (write_header) and fills them in only when the stream is closed
(wav_close -> update_header), then pads the file to an even length.  Its writes go through stdio, so a
file being recorded may also be shorter than its header for a while.  Hence three outcomes:
- `None`: the header is not fully on disk yet (a prefix of a plausible WAV): look again later;
- a `WavInfo` with `finalized=False`: a valid header whose sizes do not match the file (still being
  written, or the writer died before closing it);
- a `WavInfo` with `finalized=True`: the writer closed the file; converting it now loses nothing.
Anything that cannot be a WAV raises `WavFormatError` naming what is wrong.

MP3 (`mp3_problem`).  Checks that the bytes start (after an optional ID3v2 tag) with a valid MPEG audio
Layer III frame header, and that a second one follows where the first says it ends (or the file ends
there): random bytes almost never pass both.

Invariant: every function is total: it returns or raises `WavFormatError`, never anything else, for
any bytes and any size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hotline.features.recordings.errors import WavFormatError

# How many bytes of a file callers read for `parse_wav`: the fmt and data chunk headers must be in them.
WAV_PROBE_BYTES = 65536
# How many bytes of an MP3 callers read for `mp3_problem` (an ID3 tag plus two frames fit easily).
MP3_PROBE_BYTES = 65536

# WAVE format tags ffmpeg decodes and telephony writes: PCM, IEEE float, A-law, mu-law, GSM 6.10
# (Asterisk's "WAV"/wav49 format), WAVE_FORMAT_EXTENSIBLE.
_FORMAT_TAGS = {1: "PCM", 3: "IEEE float", 6: "A-law", 7: "mu-law", 0x31: "GSM 6.10", 0xFFFE: "extensible"}
_RIFF_HEAD = struct.Struct("<4sI4s")
_CHUNK_HEAD = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")


@dataclass(frozen=True, slots=True)
class WavInfo:
    format: str
    channels: int
    sample_rate: int
    byte_rate: int
    block_align: int
    bits_per_sample: int
    data_offset: int  # where the audio starts in the file
    audio_bytes: int  # whole blocks of audio present in the file
    finalized: bool  # RIFF and data sizes match the file: its writer closed it

    @property
    def duration_s(self) -> float:
        return self.audio_bytes / self.byte_rate

    @property
    def empty(self) -> bool:
        return self.audio_bytes == 0


def parse_wav(head: bytes, file_size: int) -> WavInfo | None:
    """Read a WAV header from `head` (the first bytes of a file of `file_size` bytes).

    None when the file is a still-incomplete prefix of a WAV header; WavFormatError when it is not a
    WAV Hotline can convert."""
    if file_size < 0 or len(head) > file_size:
        raise WavFormatError(f"inconsistent probe: {len(head)} bytes read from a file of {file_size} bytes")
    if len(head) < _RIFF_HEAD.size:
        if head[:4] == b"RIFF"[: len(head)] and head[8:] == b"WAVE"[: max(0, len(head) - 8)]:
            return None  # nothing but the start of a RIFF header on disk yet
        raise WavFormatError("not a WAV file (no RIFF header)")
    riff, riff_size, wave = _RIFF_HEAD.unpack_from(head)
    if riff == b"RF64":
        raise WavFormatError("RF64 (64-bit WAV) files are not supported")
    if riff != b"RIFF" or wave != b"WAVE":
        raise WavFormatError("not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int, int, int] | None = None
    pos = _RIFF_HEAD.size
    while True:
        if pos + _CHUNK_HEAD.size > len(head):
            if len(head) == file_size:
                return None  # the chunk list stops where the file does: still being written
            raise WavFormatError(f"no data chunk in the first {len(head)} bytes")
        chunk_id, size = _CHUNK_HEAD.unpack_from(head, pos)
        body = pos + _CHUNK_HEAD.size
        if chunk_id == b"data":
            if fmt is None:
                raise WavFormatError("data chunk before the fmt chunk")
            return _info(fmt, riff_size, size, body, file_size)
        if chunk_id == b"fmt ":
            if size < _FMT.size:
                raise WavFormatError(f"fmt chunk of {size} bytes (at least {_FMT.size} expected)")
            if body + _FMT.size > len(head):
                if len(head) == file_size:
                    return None
                raise WavFormatError("fmt chunk cut short")
            fmt = _FMT.unpack_from(head, body)
            _check_fmt(*fmt)
        elif any(not 0x20 <= b <= 0x7E for b in chunk_id):
            raise WavFormatError(f"chunk id {chunk_id!r} at offset {pos} is not a RIFF chunk id")
        pos = body + size + (size & 1)  # chunks are padded to an even length


def _check_fmt(tag: int, channels: int, rate: int, byte_rate: int, block_align: int, bits: int) -> None:
    if tag not in _FORMAT_TAGS:
        raise WavFormatError(f"WAVE format tag 0x{tag:04x} is not supported")
    if not 1 <= channels <= 8:
        raise WavFormatError(f"{channels} channels (1 to 8 supported)")
    if not 1000 <= rate <= 384_000:
        raise WavFormatError(f"sample rate {rate} Hz out of range")
    if byte_rate == 0 or block_align == 0:
        raise WavFormatError("byte rate and block alignment must not be 0")
    if tag in (1, 3) and (bits == 0 or bits > 64):
        raise WavFormatError(f"{bits} bits per sample")


def _info(
    fmt: tuple[int, int, int, int, int, int], riff_size: int, data_size: int, data_offset: int, file_size: int
) -> WavInfo:
    tag, channels, rate, byte_rate, block_align, bits = fmt
    present = max(0, file_size - data_offset)
    # Closed by its writer: the RIFF size covers the file (Asterisk may add one pad byte after it) and
    # the declared audio is all there.  Asterisk's open header has riff_size 0, which never matches.
    finalized = riff_size + 8 in (file_size, file_size - 1) and data_size <= present
    audio = data_size if finalized else present
    audio -= audio % block_align
    return WavInfo(
        format=_FORMAT_TAGS[tag],
        channels=channels,
        sample_rate=rate,
        byte_rate=byte_rate,
        block_align=block_align,
        bits_per_sample=bits,
        data_offset=data_offset,
        audio_bytes=audio,
        finalized=finalized,
    )


# ------------------------------------------------------------------------------------------ MP3

_BITRATES_V1_L3 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2_L3 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits


def _frame_length(head: bytes, pos: int) -> int | None:
    """Length of the MPEG-1/2/2.5 Layer III frame whose header starts at `pos`, None if none does."""
    if pos + 4 > len(head):
        return None
    b1, b2 = head[pos + 1], head[pos + 2]
    if head[pos] != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version = (b1 >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = (b1 >> 1) & 3  # 1: Layer III
    bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    rate = _RATES[version][rate_index]
    if version == 3:
        return 144_000 * _BITRATES_V1_L3[bitrate_index] // rate + padding
    return 72_000 * _BITRATES_V2_L3[bitrate_index] // rate + padding


def mp3_problem(head: bytes, file_size: int) -> str | None:
    """Why `head` (the first bytes of a file of `file_size` bytes) is not an MP3 file; None if it is."""
    pos = 0
    if head[:3] == b"ID3":
        if len(head) < 10:
            return "ID3 tag cut short"
        size_bytes = head[6:10]
        if any(b & 0x80 for b in size_bytes):
            return "ID3 tag size is not synchsafe"
        size = (size_bytes[0] << 21) | (size_bytes[1] << 14) | (size_bytes[2] << 7) | size_bytes[3]
        pos = 10 + size + (10 if head[5] & 0x10 else 0)
    first = _frame_length(head, pos)
    if first is None:
        return "no MPEG audio Layer III frame at the start"
    after = pos + first
    if after == file_size:
        return None  # a single frame (a very short recording)
    if after > file_size:
        return "the first MP3 frame runs past the end of the file"
    if after + 4 <= len(head) and _frame_length(head, after) is None:
        return "the first MP3 frame is not followed by another"
    return None
