"""Uploaded prompts and music on hold (issue 3): converted to 8 kHz mono WAV, copied to every node, served to
Asterisk without a reload (prompts by absolute path, music classes through the realtime `musiconhold` family).

- convert.py: upload validation (name, size, format sniffed from the bytes) and conversion with ffmpeg;
- distribute.py: copying into node media folders and removing what was deleted (blocking file I/O);
- service.py: `MediaService`, the feature's entry point, and the pure `musiconhold_rows`.
See docs/media.md.
"""

from hotline.features.media.convert import MediaError
from hotline.features.media.service import MediaService, SyncReport, moh_directory, musiconhold_rows, prompt_path

__all__ = ["MediaError", "MediaService", "SyncReport", "moh_directory", "musiconhold_rows", "prompt_path"]
