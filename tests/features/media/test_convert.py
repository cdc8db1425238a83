"""Upload checks and conversion with the real ffmpeg: real WAV and MP3 in, Asterisk's WAV out, hostile input refused."""

from __future__ import annotations

import contextlib
import hashlib
import random
import struct
import wave
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.errors import ConfigError, ValidationError
from hotline.features.media.convert import (
    MediaError,
    check_name,
    check_size,
    convert_upload,
    sniff_format,
)

from .conftest import Make


def header(path: Path) -> tuple[int, int, int, str, float]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), 8 * w.getsampwidth(), w.getcomptype(), w.getnframes() / 8000


def convert(data: bytes, work: Path, **kw: object) -> Path:
    result = convert_upload(data, work_dir=work, **kw)  # type: ignore[arg-type]
    assert result.path.parent == work
    assert result.path.name.startswith(".")  # invisible to res_musiconhold until renamed
    assert result.size == result.path.stat().st_size
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    return result.path


# ------------------------------------------------------------------------------------ good input


def test_wav_becomes_8khz_mono_16bit(wav_bytes: bytes, tmp_path: Path) -> None:
    assert sniff_format(wav_bytes) == "wav"
    out = convert(wav_bytes, tmp_path)
    rate, channels, bits, comp, duration = header(out)
    assert (rate, channels, bits, comp) == (8000, 1, 16, "NONE")
    assert duration == pytest.approx(2.0, abs=0.01)
    raw = out.read_bytes()
    # what format_wav checks (ast22 formats/format_wav.c): RIFF/WAVE, fmt tag 1, and a plain 44-byte header
    assert raw[:4] == b"RIFF" and raw[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<HHIIHH", raw, 20) == (1, 1, 8000, 16000, 2, 16)
    assert raw[36:40] == b"data"
    assert len(raw) == 44 + 16000 * 2


def test_mp3_becomes_8khz_mono_16bit(mp3_bytes: bytes, tmp_path: Path) -> None:
    assert mp3_bytes[:3] == b"ID3"
    assert sniff_format(mp3_bytes) == "mp3"
    rate, channels, bits, comp, duration = header(convert(mp3_bytes, tmp_path))
    assert (rate, channels, bits, comp) == (8000, 1, 16, "NONE")
    assert duration == pytest.approx(2.0, abs=0.06)


@pytest.mark.parametrize(
    ("name", "args", "rate"),
    [
        ("mono22.mp3", ("-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k"), 22050),  # MPEG-2
        ("low8.mp3", ("-ac", "1", "-c:a", "libmp3lame", "-b:a", "16k"), 8000),  # MPEG-2.5
        ("noid3.mp3", ("-c:a", "libmp3lame", "-id3v2_version", "0"), 48000),  # frames from byte 0
        ("v1.mp3", ("-c:a", "libmp3lame", "-write_id3v1", "1", "-metadata", "title=x"), 44100),  # ID3v1 trailer
        ("u8.wav", ("-c:a", "pcm_u8"), 16000),
        ("float.wav", ("-c:a", "pcm_f32le"), 48000),
        ("alaw.wav", ("-c:a", "pcm_alaw"), 8000),
        ("s24.wav", ("-ac", "3", "-c:a", "pcm_s24le"), 96000),  # WAVE_FORMAT_EXTENSIBLE
    ],
)
def test_other_real_encodings(make_audio: Make, tmp_path: Path, name: str, args: tuple[str, ...], rate: int) -> None:
    data = make_audio(name, *args, rate=rate, seconds=1.0)
    assert sniff_format(data) == name.rsplit(".", 1)[1]
    got_rate, channels, bits, _comp, duration = header(convert(data, tmp_path))
    assert (got_rate, channels, bits) == (8000, 1, 16)
    assert duration == pytest.approx(1.0, abs=0.08)


def test_streaming_wav_header_is_accepted(wav_bytes: bytes, tmp_path: Path) -> None:
    # A WAV written to a pipe cannot seek back: its sizes stay 0xFFFFFFFF and the audio runs to the end
    # (ffmpeg's own wav muxer does this when its output is a pipe).
    data = bytearray(wav_bytes)
    at = data.index(b"data")
    data[4:8] = data[at + 4 : at + 8] = b"\xff\xff\xff\xff"
    assert header(convert(bytes(data), tmp_path))[4] == pytest.approx(2.0, abs=0.01)


def test_same_input_gives_the_same_bytes(wav_bytes: bytes, tmp_path: Path) -> None:
    a = convert_upload(wav_bytes, work_dir=tmp_path)
    b = convert_upload(wav_bytes, work_dir=tmp_path)
    assert a.path != b.path
    assert a.sha256 == b.sha256  # bitexact, no metadata: a re-upload is recognised by its sha256


# ------------------------------------------------------------------------------------ refused input


def refused(data: bytes, work: Path, match: str, **kw: object) -> None:
    with pytest.raises(MediaError, match=match) as info:
        convert_upload(data, work_dir=work, **kw)  # type: ignore[arg-type]
    assert info.value.field == "file"
    assert isinstance(info.value, ValidationError)
    leftovers = sorted(p.name for p in work.rglob("*")) if work.exists() else []
    assert leftovers == []  # no temporary folder, no half-written output


def test_empty_file(tmp_path: Path) -> None:
    refused(b"", tmp_path, "is empty")


def test_over_the_size_cap(wav_bytes: bytes, tmp_path: Path) -> None:
    refused(wav_bytes, tmp_path, f"is {len(wav_bytes)} bytes; the limit is 1000 bytes", max_bytes=1000)


def test_garbage_named_mp3(tmp_path: Path) -> None:
    refused(random.Random(7).randbytes(20_000), tmp_path, "neither WAV")


def test_text_file(tmp_path: Path) -> None:
    refused(b"<html><body>not audio</body></html>\n", tmp_path, "neither WAV")


def test_truncated_mp3(mp3_bytes: bytes, tmp_path: Path) -> None:
    refused(mp3_bytes[: len(mp3_bytes) // 2 + 7], tmp_path, r"runs past the end of the file \(truncated\)")


def test_truncated_wav(wav_bytes: bytes, tmp_path: Path) -> None:
    refused(wav_bytes[:5000], tmp_path, r"data chunk declares 352800 bytes but the file has \d+ \(truncated\)")


def test_wav_cut_inside_its_header(wav_bytes: bytes, tmp_path: Path) -> None:
    refused(wav_bytes[:30], tmp_path, "truncated")


def test_huge_id3_header(mp3_bytes: bytes, tmp_path: Path) -> None:
    hostile = b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + mp3_bytes[10:]  # declares a 256 MB tag
    refused(hostile, tmp_path, r"ID3 tag declares 268435465 bytes but the file has \d+")


def test_huge_fmt_chunk(wav_bytes: bytes, tmp_path: Path) -> None:
    hostile = wav_bytes[:16] + struct.pack("<I", 0x7FFFFFF0) + wav_bytes[20:]
    refused(hostile, tmp_path, "fmt chunk of 2147483632 bytes")


def test_huge_unknown_chunk(tmp_path: Path) -> None:
    hostile = b"RIFF\x00\x00\x00\x00WAVEjunk" + struct.pack("<I", 0xFFFFFFF0) + b"\x00" * 64
    refused(hostile, tmp_path, "chunk 'junk' of 4294967280 bytes runs past the end")


def test_riff_that_is_not_wave(tmp_path: Path) -> None:
    refused(b"RIFF\x10\x00\x00\x00AVI LIST" + b"\x00" * 32, tmp_path, "RIFF file but not WAVE")


def test_data_before_fmt(tmp_path: Path) -> None:
    refused(b"RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00", tmp_path, "data chunk comes before")


def test_unsupported_wav_codec(wav_bytes: bytes, tmp_path: Path) -> None:
    hostile = bytearray(wav_bytes)
    hostile[20:22] = struct.pack("<H", 0x0055)  # MPEG layer 3 inside WAV
    refused(bytes(hostile), tmp_path, "format tag 0x0055 is not supported")


def test_wav_without_samples(tmp_path: Path) -> None:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    refused(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + fmt + b"data\x00\x00\x00\x00", tmp_path, "no audio")


def test_id3_tag_then_garbage(mp3_bytes: bytes, tmp_path: Path) -> None:
    tag_end = 10 + int.from_bytes(mp3_bytes[6:10], "big")  # small sizes: syncsafe == plain here
    hostile = mp3_bytes[:tag_end] + random.Random(3).randbytes(5000)
    refused(hostile, tmp_path, "no MPEG Layer III frame after its ID3 tag")


def test_one_frame_header_then_garbage(tmp_path: Path) -> None:
    hostile = b"\xff\xfb\x90\x00" + b"\x00" * 413 + b"garbage!" * 100
    refused(hostile, tmp_path, "no valid frame at byte 417")


def test_mp3_layer_ii_is_not_mp3(make_audio: Make, tmp_path: Path) -> None:
    refused(make_audio("layer2.mp2", "-c:a", "mp2", "-f", "mp2", seconds=0.5), tmp_path, "neither WAV")


def test_valid_frames_with_garbage_audio(tmp_path: Path) -> None:
    # structurally perfect MPEG-1 Layer III frames whose payload is noise: only the decoder can tell
    rng = random.Random(1)
    hostile = b"".join(b"\xff\xfb\x90\x00" + rng.randbytes(413) for _ in range(40))
    assert sniff_format(hostile) == "mp3"
    refused(hostile, tmp_path, "could not be decoded as MP3: Error while decoding MPEG audio frame")


def test_longer_than_the_cap(wav_bytes: bytes, tmp_path: Path) -> None:
    refused(wav_bytes, tmp_path, "lasts more than 1.5 s", max_duration_s=1.5)


def test_conversion_timeout(wav_bytes: bytes, tmp_path: Path) -> None:
    refused(wav_bytes, tmp_path, "did not finish in 0.001 s", timeout_s=0.001)


def test_missing_ffmpeg_is_a_config_error(wav_bytes: bytes, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not installed"):
        convert_upload(wav_bytes, work_dir=tmp_path, ffmpeg=str(tmp_path / "no-ffmpeg"))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ names and sizes


@pytest.mark.parametrize("name", ["welcome", "a", "queue-1_intro.v2", "A" * 64, "-x", "_"])
def test_good_names(name: str) -> None:
    assert check_name("name", name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "a b", "a/b", "../x", "x" * 65, "é", "a\n", None, 3])
def test_bad_names(name: object) -> None:
    with pytest.raises(MediaError, match="name: must be 1 to 64"):
        check_name("name", name)


def test_size_cap_is_inclusive() -> None:
    check_size(b"x" * 10, 10)
    with pytest.raises(MediaError, match="is 11 bytes; the limit is 10 bytes"):
        check_size(b"x" * 11, 10)


# ------------------------------------------------------------------------------------ the sniffer never breaks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_sniff_random_bytes(data: bytes) -> None:
    with contextlib.suppress(MediaError):  # parse or raise MediaError, never anything else
        sniff_format(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=10_000),
    flips=st.lists(st.tuples(st.integers(0, 9999), st.integers(0, 255)), max_size=8),
    which=st.booleans(),
)
def test_sniff_mutated_real_files(
    wav_bytes: bytes, mp3_bytes: bytes, cut: int, flips: list[tuple[int, int]], which: bool
) -> None:
    data = bytearray((wav_bytes if which else mp3_bytes)[:cut])
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    with contextlib.suppress(MediaError):
        sniff_format(bytes(data))


def test_every_prefix_of_a_real_mp3(mp3_bytes: bytes) -> None:
    head = mp3_bytes[:3000]
    outcomes: set[str] = set()
    for n in range(len(head)):
        try:
            outcomes.add(sniff_format(head[:n]))
        except MediaError as exc:
            outcomes.add(exc.message.split(" (")[0][:20])
    assert "mp3" in outcomes  # the prefixes that end exactly on a frame boundary are whole files
