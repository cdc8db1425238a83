"""The pure WAV/MP3 readers: Asterisk's own header layout (open and closed), other writers, every prefix
of a header, bad input, and a fuzzer stating the invariant "a result or WavFormatError, nothing else"."""

from __future__ import annotations

import contextlib
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.features.recordings.errors import WavFormatError
from hotline.features.recordings.formats import mp3_problem, parse_wav

from .conftest import asterisk_wav, ffmpeg_wav, pcm_tone


def _parse(data: bytes):  # type: ignore[no-untyped-def]
    return parse_wav(data, len(data))


def test_closed_asterisk_wav_is_finalized_with_exact_duration() -> None:
    info = _parse(asterisk_wav(pcm_tone(1.5)))
    assert info is not None
    assert (info.format, info.channels, info.sample_rate, info.bits_per_sample) == ("PCM", 1, 8000, 16)
    assert info.finalized and info.data_offset == 44
    assert info.audio_bytes == 24000 and info.duration_s == 1.5


def test_open_asterisk_wav_is_not_finalized_and_counts_what_is_there() -> None:
    # format_wav's write_header leaves both sizes 0 until wav_close
    info = _parse(asterisk_wav(pcm_tone(0.5), finalized=False))
    assert info is not None and not info.finalized
    assert info.audio_bytes == 8000 and info.duration_s == 0.5


def test_pad_byte_after_close_still_counts_as_finalized() -> None:
    data = asterisk_wav(pcm_tone(0.1)) + b"\x00"  # wav_close pads the file to an even length
    info = _parse(data)
    assert info is not None and info.finalized and info.audio_bytes == 1600


def test_a_file_that_grew_after_its_header_was_written_is_not_finalized() -> None:
    data = asterisk_wav(pcm_tone(0.1)) + pcm_tone(0.1)  # sizes say 0.1 s, 0.2 s are there
    info = _parse(data)
    assert info is not None and not info.finalized and info.audio_bytes == 3200


def test_a_truncated_file_is_not_finalized() -> None:
    data = asterisk_wav(pcm_tone(0.1))[:-101]
    info = _parse(data)
    assert info is not None and not info.finalized
    assert info.audio_bytes == 1600 - 101 - 1  # whole blocks only


def test_closed_empty_recording() -> None:
    info = _parse(asterisk_wav(b""))
    assert info is not None and info.finalized and info.empty


def test_header_just_written_is_open_and_empty() -> None:
    info = _parse(asterisk_wav(b"", finalized=False))
    assert info is not None and not info.finalized and info.empty


def test_every_prefix_of_a_header_is_incomplete_not_an_error() -> None:
    header = asterisk_wav(b"", finalized=False)
    for n in range(len(header)):  # stdio flushes whenever it likes: any prefix may be on disk
        assert parse_wav(header[:n], n) is None, n


def test_ffmpeg_wav_with_list_chunk(tmp_path: Path) -> None:
    data = ffmpeg_wav(tmp_path / "a.wav", seconds=2).read_bytes()
    info = _parse(data)
    assert info is not None and info.finalized and info.data_offset > 44
    assert info.duration_s == 2.0


def test_probe_smaller_than_file_reads_the_header_from_the_probe() -> None:
    data = asterisk_wav(pcm_tone(2))
    info = parse_wav(data[:4096], len(data))
    assert info is not None and info.finalized and info.duration_s == 2.0


def _fmt(
    tag: int = 1, channels: int = 1, rate: int = 8000, byte_rate: int = 16000, align: int = 2, bits: int = 16
) -> bytes:
    return b"fmt " + struct.pack("<IHHIIHH", 16, tag, channels, rate, byte_rate, align, bits)


def _riff(*chunks: bytes, size: int | None = None) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"ID3\x04" + bytes(60), "no RIFF"),
        (b"not a wav", "no RIFF"),
        (b"RF64" + bytes(40), "RF64"),
        (b"RIFF\x00\x00\x00\x00AVI " + bytes(40), "RIFF/WAVE"),
        (_riff(b"data" + struct.pack("<I", 2) + b"ab", _fmt()), "before the fmt"),
        (_riff(_fmt(tag=0x55), b"data\x00\x00\x00\x00"), "format tag 0x0055"),
        (_riff(_fmt(channels=0), b"data\x00\x00\x00\x00"), "0 channels"),
        (_riff(_fmt(rate=10), b"data\x00\x00\x00\x00"), "sample rate 10"),
        (_riff(_fmt(align=0), b"data\x00\x00\x00\x00"), "must not be 0"),
        (_riff(b"fmt " + struct.pack("<I", 4) + b"abcd", b"data\x00\x00\x00\x00"), "fmt chunk of 4 bytes"),
        (_riff(b"\x01\x02\x03\x04" + struct.pack("<I", 0), _fmt()), "not a RIFF chunk id"),
    ],
)
def test_bad_input_is_a_precise_wav_format_error(data: bytes, problem: str) -> None:
    with pytest.raises(WavFormatError, match=problem):
        _parse(data)


def test_no_data_chunk_in_the_probe_of_a_bigger_file() -> None:
    data = _riff(_fmt(), b"JUNK" + struct.pack("<I", 100_000) + bytes(100_000), b"data\x00\x00\x00\x00")
    with pytest.raises(WavFormatError, match="no data chunk"):
        parse_wav(data[:65536], len(data))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=10_000))
def test_fuzz_parse_wav_returns_or_raises_wav_format_error(data: bytes, extra: int) -> None:
    with contextlib.suppress(WavFormatError):
        parse_wav(data, len(data) + extra)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=43), st.integers(min_value=0, max_value=255), st.integers(0, 5000))
def test_fuzz_mutated_asterisk_header(pos: int, value: int, extra: int) -> None:
    data = bytearray(asterisk_wav(pcm_tone(0.01)))
    data[pos] = value
    try:
        info = parse_wav(bytes(data), len(data) + extra)
    except WavFormatError:
        return
    if info is not None:
        assert 0 <= info.audio_bytes <= len(data) + extra and info.audio_bytes % info.block_align == 0


# ------------------------------------------------------------------------------------------ MP3
def _ffmpeg_mp3(tmp_path: Path, seconds: float) -> bytes:
    wav = ffmpeg_wav(tmp_path / "in.wav", seconds)
    out = tmp_path / "out.mp3"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), "-f", "mp3", str(out)],
        check=True,
        timeout=30,
    )
    return out.read_bytes()


def test_ffmpeg_mp3_passes(tmp_path: Path) -> None:
    data = _ffmpeg_mp3(tmp_path, 1.0)
    assert data[:3] == b"ID3"
    assert mp3_problem(data, len(data)) is None
    assert mp3_problem(data[:65536], len(data)) is None


def test_not_mp3(tmp_path: Path) -> None:
    wav = asterisk_wav(pcm_tone(0.2))
    assert mp3_problem(wav, len(wav)) == "no MPEG audio Layer III frame at the start"
    tag_only = b"ID3\x04\x00\x00\x00\x00\x00\x05" + bytes(5)
    assert mp3_problem(tag_only, len(tag_only)) == "no MPEG audio Layer III frame at the start"
    assert mp3_problem(b"ID3\x04", 4) == "ID3 tag cut short"
    data = _ffmpeg_mp3(tmp_path, 1.0)
    assert mp3_problem(data[:200], 200) is not None  # cut inside the first frame


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_mp3_problem_never_raises(data: bytes) -> None:
    result = mp3_problem(data, len(data))
    assert result is None or isinstance(result, str)
