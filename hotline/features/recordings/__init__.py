"""Call recordings: MixMonitor WAV files on the nodes become MP3s in a storage backend (local folder or
S3-compatible), tracked in the `recordings` table, retried until stored, deleted after a retention
period.  See service.py for the flow and docs/recordings.md for operators."""

from hotline.db.repositories.recordings import STATES, Recording, RecordingRepository
from hotline.features.recordings.convert import Mp3Converter, Mp3File
from hotline.features.recordings.errors import (
    ConversionError,
    RecordingError,
    RecordingStorageError,
    WavFormatError,
)
from hotline.features.recordings.service import NodePaths, RecordingService, recording_file_name
from hotline.features.recordings.storage import (
    LocalStorage,
    RecordingStorage,
    S3Storage,
    StoredAudio,
    recording_key,
)

__all__ = [
    "STATES",
    "ConversionError",
    "LocalStorage",
    "Mp3Converter",
    "Mp3File",
    "NodePaths",
    "Recording",
    "RecordingError",
    "RecordingRepository",
    "RecordingService",
    "RecordingStorage",
    "RecordingStorageError",
    "S3Storage",
    "StoredAudio",
    "WavFormatError",
    "recording_file_name",
    "recording_key",
]
