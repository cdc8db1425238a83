"""The recording feature's errors, all under `hotline.errors.HotlineError`.

A failed attempt is recorded with its message in `recordings.last_error`, so messages name the file or
object and the cause, and never carry a secret (no S3 key or endpoint credentials).
"""

from __future__ import annotations

from hotline.errors import HotlineError


class RecordingError(HotlineError):
    """A recording could not be converted, stored, read or deleted."""


class WavFormatError(RecordingError):
    """The source file is not a WAV file Hotline can convert (bad magic, chunk or format)."""


class ConversionError(RecordingError):
    """ffmpeg failed, timed out or produced something that is not an MP3."""


class RecordingStorageError(RecordingError):
    """The storage backend (local folder, S3) refused or failed an operation; retrying may succeed."""
