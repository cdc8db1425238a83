"""What every benchmark writes the same way: its JSON results with a description of the machine."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def write_results(path: Path, results: dict[str, Any], load_before: tuple[float, float, float]) -> None:
    """Write `results` plus the machine (Python, CPUs, platform, load before the runs) to `path`."""
    results = {
        **results,
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
