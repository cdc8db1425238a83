"""WAV -> MP3 with the ffmpeg binary (Debian's `ffmpeg`, installed by scripts/bootstrap).

Responsibility: check that the input is a WAV file (`formats.parse_wav`), run ffmpeg as a subprocess
with a deadline, and check that what it wrote is an MP3 (`formats.mp3_problem`).  The duration comes
from the WAV header (audio bytes / byte rate), exact for the PCM MixMonitor writes.

Invariants:
- nothing here blocks the event loop: ffmpeg is an asyncio subprocess, file reads go to a thread;
- ffmpeg never outlives its call: on timeout or cancellation it is killed and reaped;
- ffmpeg reads the input through the `file:` protocol, so a name can never be taken for another
  protocol or option, and never reads stdin (`-nostdin`);
- a failure is a `WavFormatError` (input) or `ConversionError` (ffmpeg, output), with ffmpeg's own last
  words in the message; the output file is removed when it is not a valid MP3.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from hotline.features.recordings.errors import ConversionError, WavFormatError
from hotline.features.recordings.formats import MP3_PROBE_BYTES, WAV_PROBE_BYTES, WavInfo, mp3_problem, parse_wav

_STDERR_TAIL = 600  # characters of ffmpeg's stderr kept in an error message


@dataclass(frozen=True, slots=True)
class WavFile:
    """A WAV file as found on disk: its header (None while the header is still being written)."""

    info: WavInfo | None
    size: int
    mtime: float  # seconds since the epoch
    mtime_ns: int  # to tell whether the file changed between two looks


@dataclass(frozen=True, slots=True)
class Mp3File:
    path: Path
    size: int
    duration_s: float


def read_wav(path: Path) -> WavFile:
    """Look at a WAV file (blocking: call it in a thread).

    FileNotFoundError when it does not exist; WavFormatError when it cannot be a WAV file."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read below forever
        raise WavFormatError(f"{path} is not a regular file")
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        head = fh.read(min(WAV_PROBE_BYTES, st.st_size))
    # The file may have grown between fstat and read: parse what was read as a file of that size at least.
    size = max(st.st_size, len(head))
    return WavFile(parse_wav(head, size), size, st.st_mtime, st.st_mtime_ns)


class Mp3Converter:
    """Runs ffmpeg to turn one WAV file into an MP3 file."""

    def __init__(self, binary: str = "ffmpeg", *, bitrate_kbps: int = 32, timeout_s: float = 600.0) -> None:
        if not 8 <= bitrate_kbps <= 320:
            raise ValueError(f"bitrate_kbps must be between 8 and 320 (got {bitrate_kbps})")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive (got {timeout_s})")
        self.binary = binary
        self.bitrate_kbps = bitrate_kbps
        self.timeout_s = timeout_s

    def command(self, source: Path, target: Path) -> list[str]:
        return [
            self.binary,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-i",
            f"file:{source.absolute()}",
            "-vn",
            "-map_metadata",
            "-1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            f"{self.bitrate_kbps}k",
            "-f",
            "mp3",
            f"file:{target.absolute()}",
        ]

    async def convert(self, source: Path, target: Path) -> Mp3File:
        """Convert `source` (a WAV file) to `target` (overwritten).  The source may be a WAV whose header
        was never finalized: ffmpeg then reads its audio up to the end of the file."""
        wav = await asyncio.to_thread(read_wav, source)
        if wav.info is None:
            raise WavFormatError(f"{source}: the WAV header is incomplete ({wav.size} bytes)")
        await self._run(source, target)
        size = await asyncio.to_thread(_check_mp3, target)
        return Mp3File(target, size, wav.info.duration_s)

    async def _run(self, source: Path, target: Path) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(source, target),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise ConversionError(f"ffmpeg binary {self.binary!r} not found (install Debian's ffmpeg)") from exc
        except OSError as exc:
            raise ConversionError(f"cannot run ffmpeg binary {self.binary!r}: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout_s):
                _, stderr = await proc.communicate()
        except TimeoutError:
            raise ConversionError(f"ffmpeg did not finish converting {source.name} in {self.timeout_s:g} s") from None
        finally:
            if proc.returncode is None:  # timed out or cancelled: ffmpeg must not outlive the call
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.shield(proc.wait())
        if proc.returncode != 0:
            await asyncio.to_thread(_remove, target)
            tail = stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
            raise ConversionError(f"ffmpeg failed on {source.name} (exit {proc.returncode}): {tail or 'no message'}")


def _check_mp3(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(MP3_PROBE_BYTES)
    except FileNotFoundError:
        raise ConversionError(f"ffmpeg reported success but wrote no {path.name}") from None
    problem = "the file is empty" if size == 0 else mp3_problem(head, size)
    if problem is not None:
        _remove(path)
        raise ConversionError(f"ffmpeg's output {path.name} is not an MP3: {problem}")
    return size


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
