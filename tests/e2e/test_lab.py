"""`hotline lab`: several nodes side by side on their own loopback addresses, status, stop."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.asterisk


def lab(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "HOTLINE_DATA_DIR": str(tmp_path),
        "HOTLINE_LAB_INSTANCE": "multi",
        "HOTLINE_NODE_ADDRESS_BASE": "127.0.0.91",
    }
    return subprocess.run(
        [sys.executable, "-m", "hotline", "lab", "--nodes", "2", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**__import__("os").environ, **env},
    )


def ami_banner(address: str) -> bytes:
    with socket.create_connection((address, 5038), timeout=5) as s:
        return s.recv(64)


def test_two_nodes_side_by_side(tmp_path: Path) -> None:
    try:
        started = lab(tmp_path, "start")
        assert started.returncode == 0, started.stderr
        assert "node1 running" in started.stdout and "node2 running" in started.stdout
        for address in ("127.0.0.91", "127.0.0.92"):
            assert ami_banner(address).startswith(b"Asterisk Call Manager/")
        status = lab(tmp_path, "status").stdout
        assert "node1 127.0.0.91 running" in status and "node2 127.0.0.92 running" in status
        again = lab(tmp_path, "start")  # idempotent: running nodes are left alone
        assert again.returncode == 0 and again.stdout == started.stdout
        version = lab(tmp_path, "cli", "--node", "2", "core", "show", "version").stdout
        assert version.startswith("Asterisk 22.")
    finally:
        stopped = lab(tmp_path, "stop")
    assert "node1: stopped" in stopped.stdout and "node2: stopped" in stopped.stdout
    assert "stopped" in lab(tmp_path, "status").stdout
    with pytest.raises(OSError):
        ami_banner("127.0.0.91")
