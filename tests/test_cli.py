"""The `hotline` command: clear one-line errors, never a traceback; the config commands work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def hotline(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline", "--data-dir", str(tmp_path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_config_file_is_one_clear_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("http_port = 'eighty'\n")
    r = subprocess.run(
        [sys.executable, "-m", "hotline", "--config", str(cfg), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == "hotline: setting http_port: invalid literal for int() with base 10: 'eighty' (got 'eighty')"
    )


def test_configuration_round_trip(tmp_path: Path) -> None:
    assert hotline(tmp_path, "phone", "add", "2001", "--password-stdin", stdin="a-good-password\n").returncode == 0
    assert hotline(tmp_path, "queue", "add", "support", "--strategy", "rrmemory").returncode == 0
    assert hotline(tmp_path, "queue", "member", "support", "PJSIP/2001").returncode == 0
    assert hotline(tmp_path, "route", "add", "5000", "queue", "support").returncode == 0
    assert "2001" in hotline(tmp_path, "phone", "list").stdout
    assert "PJSIP/2001" in hotline(tmp_path, "queue", "list").stdout
    assert "5000\tqueue\tsupport" in hotline(tmp_path, "route", "list").stdout


def test_invalid_input_names_the_field(tmp_path: Path) -> None:
    r = hotline(tmp_path, "phone", "add", "2001", "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and r.stderr.startswith("hotline: password:") and "Traceback" not in r.stderr
    r = hotline(tmp_path, "queue", "add", "q", "--strategy", "loudest")
    assert r.returncode == 2 and "strategy" in r.stderr and "Traceback" not in r.stderr
    r = hotline(tmp_path, "route", "add", "5000", "queue", "no-such-queue")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = hotline(tmp_path, "calls", "0190f000-0000-7000-8000-000000000001")
    assert r.returncode == 2 and "no call" in r.stderr


def test_settings_doc_command(tmp_path: Path) -> None:
    r = hotline(tmp_path, "settings-doc")
    assert r.returncode == 0 and "| `agi_watchdog` |" in r.stdout
