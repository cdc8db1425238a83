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


def test_call_center_configuration_and_agent_commands(tmp_path: Path) -> None:
    def ok(*args: str, stdin: str = "") -> str:
        r = hotline(tmp_path, *args, stdin=stdin)
        assert r.returncode == 0, r.stderr
        return r.stdout

    ok("phone", "add", "2101", "--password-stdin", stdin="a-good-password\n")
    ok("queue", "add", "sales")
    ok("group", "add", "juniors")
    ok("group", "set", "juniors", "--allowed-call-types", "local,mobile", "--daily-call-quota", "5")
    ok("agent", "add", "1001", "Alice", "--group", "juniors", "--pin", "4321")
    ok("agent", "queue", "1001", "sales", "--penalty", "2")
    ok("pause-reason", "add", "lunch", "--max-minutes", "30")
    assert "on phone 2101" in ok("agent", "login", "1001", "--phone", "2101")
    assert "paused (lunch)" in ok("agent", "pause", "1001", "--reason", "lunch")
    status = ok("agent", "status")
    assert "1001\tAlice\tpaused\tlunch\t2101" in status
    ok("ivr", "add", "main", "--prompt", "queue-thankyou", "--fail", "queue:sales")
    ok("ivr", "option", "main", "1", "redirect:sip:+4930@127.0.0.9")
    ok("time", "add", "office", "--hours", "mon-fri 09:00-18:00", "--open", "queue:sales", "--closed", "ivr:main")
    ok("time", "holiday", "2026-12-25", "Christmas")
    ok("limits", "calltype", "_8800X.", "premium")
    ok("limits", "service", "112", "emergency", "external:112")
    ok("queue", "set", "sales", "wrapuptime=10", "overflow_type=ivr", "overflow_value=main")
    ok("route", "add", "5000", "time", "office")
    assert "logged_out" in ok("agent", "logoff", "1001")


def test_call_center_mistakes_are_one_clear_line(tmp_path: Path) -> None:
    hotline(tmp_path, "queue", "add", "sales")
    cases = [
        (("agent", "pause", "4040", "--reason", "x"), "agent '4040' does not exist"),
        (("ivr", "option", "main", "1", "queue:sales"), "IVR menu 'main' does not exist"),
        (("time", "add", "t", "--hours", "mon 9-10", "--open", "queue:sales", "--closed", "hangup"), "hours:"),
        (("time", "holiday", "25/12/2026"), "day: '25/12/2026' is not a date"),
        (("queue", "set", "sales", "wrapuptime"), "must be OPTION=VALUE"),
        (("queue", "set", "sales", "colour=red"), "colour: is not a queue option"),
        (("limits", "service", "112", "emergency", ":112"), "destination: must be TYPE"),
        (("recordings", "retry", "7"), "recording 7 does not exist"),
    ]
    for args, message in cases:
        r = hotline(tmp_path, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
