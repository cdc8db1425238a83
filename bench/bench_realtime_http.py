#!/usr/bin/env python3
"""Hotline's realtime HTTP path alone: requests/s and Hotline CPU per request, uvicorn+ASGI on the web port
against the realtime listener's own protocol (setting realtime_port), side by side in one Hotline process.

No Asterisk here: wrk replays what res_config_curl sends for a REGISTER's endpoint lookup (a keep-alive
POST with the node token) against each port in turn, the same number of connections, Hotline pinned to
one CPU and wrk to the other. What the node pays per request is measured by bench_realtime.py; this
isolates what Hotline pays, which is CPU the node cannot use on a shared machine.

    .venv/bin/python bench/bench_realtime_http.py            # ~1 min; prints a table and the ratio
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_realtime import PinnedHotline, free_tcp_port  # noqa: E402

from hotline.db.engine import create_engine_for  # noqa: E402
from hotline.db.migrate import upgrade  # noqa: E402
from hotline.db.repositories import ConfigRepository  # noqa: E402
from hotline.settings import load_settings  # noqa: E402

LUA = """
wrk.method = "POST"
wrk.body = "id=30042"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Hotline-Token"] = "%s"
wrk.headers["X-Hotline-Node"] = "node1"
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, script: Path, seconds: int, conns: int, cpu: int) -> tuple[float, float]:
    out = subprocess.run(
        ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    p99 = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("99%"))
    unit = 1e-3 if p99.endswith("us") else (1.0 if p99.endswith("ms") else 1e3)
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return rps, float(p99.rstrip("usm")) * unit


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections (res_curl: one per thread)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per server")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: scripts/bootstrap bench", file=sys.stderr)
        return 2
    last = (os.cpu_count() or 2) - 1
    with tempfile.TemporaryDirectory(prefix="hotline-bench-rthttp-") as tmp:
        work = Path(tmp)
        http_port, realtime_port, agi_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
        toml = work / "hotline.toml"
        toml.write_text(
            f'data_dir = "{work / "data"}"\nhttp_port = {http_port}\nrealtime_port = {realtime_port}\n'
            f'agi_port = {agi_port}\nlab_instance = "bench-rthttp"\nnode_address_base = "127.0.0.71"\n'
            'log_level = "WARNING"\n'
        )
        settings = load_settings(toml, environ={})
        engine = create_engine_for(settings.effective_database_url)
        upgrade(engine)
        repo = ConfigRepository(engine)
        for i in range(500):
            repo.add_phone(str(30000 + i), f"bench-{30000 + i}-secret", realm=settings.sip_realm)
        engine.dispose()
        script = work / "post.lua"
        script.write_text(LUA % settings.realtime_token)
        hotline = PinnedHotline(toml, http_port, work / "hotline.log", cpu=last)
        hotline.start()
        assert hotline.proc is not None
        results: dict[str, list[tuple[float, float, float]]] = {"uvicorn+ASGI": [], "own listener": []}
        try:
            for _ in range(a.rounds):
                for name, port in (("uvicorn+ASGI", http_port), ("own listener", realtime_port)):
                    url = f"http://127.0.0.1:{port}/realtime/ps_endpoints/single"
                    c0, t0 = cpu_seconds(hotline.proc.pid), time.monotonic()
                    rps, p99 = run_wrk(url, script, a.seconds, a.connections, 0)
                    cpu = (cpu_seconds(hotline.proc.pid) - c0) / (time.monotonic() - t0)
                    results[name].append((rps, p99, cpu))
        finally:
            hotline.stop()
    print(f"{'server':14} {'req/s':>9} {'p99 ms':>8} {'hotline CPU':>12} {'us CPU/req':>11}")
    best: dict[str, float] = {}
    for name, runs in results.items():
        for rps, p99, cpu in runs:
            print(f"{name:14} {rps:9.0f} {p99:8.2f} {cpu * 100:11.0f}% {cpu / rps * 1e6:11.1f}")
        best[name] = max(r[0] for r in runs)
    ratio = best["own listener"] / best["uvicorn+ASGI"]
    print(f"requests/s, best of {a.rounds}: own listener {best['own listener']:.0f}, uvicorn+ASGI "
          f"{best['uvicorn+ASGI']:.0f}: {ratio:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
