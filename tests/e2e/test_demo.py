"""The README's main command: `hotline demo` brings up a working call center and stops it cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from hotline.asterisk import lab
from hotline.settings import load_settings

from .conftest import free_port
from .harness import Sipp, wait_for

pytestmark = pytest.mark.asterisk


def test_demo_runs_a_call_center_and_stops_it(tmp_path: Path) -> None:
    http_port, realtime_port = free_port(), free_port()
    env = {**os.environ, "HOTLINE_DATA_DIR": str(tmp_path), "HOTLINE_HTTP_PORT": str(http_port),
           "HOTLINE_AGI_PORT": str(free_port()), "HOTLINE_REALTIME_PORT": str(realtime_port),
           "HOTLINE_LAB_INSTANCE": "demotest",
           "HOTLINE_NODE_ADDRESS_BASE": "127.0.0.81"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "hotline", "demo"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        out = "".join(lines)
        assert f"web:        http://127.0.0.1:{http_port}/ " in out, out
        assert f"realtime:   the nodes read phones and queues from http://127.0.0.1:{realtime_port}/realtime" in out
        creds = dict(re.findall(r"phone (\d+): user \d+ password (\S+)", out))
        assert set(creds) == {"2001", "2002", "2003"}
        users = dict(re.findall(r"web user (\w+) \(\w+\): (\S+)", out))
        assert set(users) == {"admin", "super", "alice", "boris"}, out
        # the printed web credentials sign in, and the home page sends the admin to the administration
        login = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/api/v1/auth/login",
            data=json.dumps({"username": "admin", "password": users["admin"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(login, timeout=5) as r:
            cookie = r.headers["Set-Cookie"].split(";", 1)[0]
            assert json.loads(r.read())["user"]["role"] == "admin"
        home = urllib.request.Request(f"http://127.0.0.1:{http_port}/admin", headers={"Cookie": cookie})
        with urllib.request.urlopen(home, timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()

        def health() -> dict[str, object]:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=2) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]

        wait_for(lambda: all(n["connected"] for n in health()["nodes"]), 20, "the demo node's AMI")  # type: ignore[index]
        reg = Sipp(tmp_path, "register.xml", "127.0.0.81:5060", local_ip="127.0.0.1", port=5561,
                   keys={"user": "2001", "expires": "60"}, extra_args=("-au", "2001", "-ap", creds["2001"]),
                   timeout_s=10).run()  # fmt: skip
        assert reg.ok, reg.stdout[-2000:]
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest[-3000:]
    settings = load_settings(environ={k: v for k, v in env.items() if k.startswith("HOTLINE_")})
    node = lab.lab_node(settings, lab.node_specs(settings, 1)[0])
    assert node.pid() is None  # the demo stopped its Asterisk node
    # a second start reuses data and credentials (idempotent set-up)
    assert "2001" in (tmp_path / "demo-credentials.txt").read_text()
