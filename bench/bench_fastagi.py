"""FastAGI sessions/s: Hotline's AGIServer side by side with panoramisk 1.4's FastAGI server (issue 2).

Each server runs in its own process pinned to CPU 0; a load generator written in C (bench/agi_load.c,
compiled here with gcc -O2 into a temp folder) plays Asterisk from CPU 1: 20 concurrent sessions, each
connect, the 22-variable `agi_*` block Asterisk 22 sends, an answer to every command, until the server
closes.  Contestants, on the same load and in the same run:

- hotline:          `hotline.asterisk.agi_server.AGIServer`, a handler doing GET VARIABLE + 4 SET VARIABLE;
- panoramisk:       `panoramisk.fast_agi.Application` on `asyncio.start_server`, a route doing the same
                    5 `send_command` calls, with the same bytes on the wire;
- each of the two on uvloop (the loop Hotline ships with) and on stock asyncio.  The target compares
  the two on the SAME loop (uvloop): the loop is not Hotline's work, so it may not count for it;
- hotline-routing:  (informative) the real `RoutingHandlers.inbound` with a `JournalService` writing to a
                    temp SQLite database, one DID route to a queue (4 commands per session), on uvloop;
- floors (informative, once each): a bare `asyncio.Protocol` on uvloop that writes the same 5 command
  lines with no codec, no task and no checks (what any Python server on this loop pays: mostly the
  kernel's TCP work), and a minimal C server (`agi_load --serve`, the generator's ceiling).

Every measurement is repeated (default 3 times, interleaved) and the median is reported
(performance-anchors.md §10).  The target is Hotline >= 3x panoramisk in sessions/s, both on uvloop.  The
C generator reports its own CPU use during the window, and the C server run shows its ceiling, so a reader
can check that the generator was never the bottleneck.

    .venv/bin/python bench/bench_fastagi.py [--seconds 10] [--repeats 3] [--no-routing] [--no-asyncio]

Writes bench/results/fastagi.json.  Exits 0 even when the target is missed (the table says FAIL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from benchlib import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "fastagi.json"
TARGET_RATIO = 3.0
SERVER_CPU = 0
LOAD_CPU = 1
# Command lines per session, checked by the generator.  hotline-routing, for a new call to a queue on an
# environment without agi_arg_1: GET VARIABLE HOTLINE_CALL_ID, SET __HOTLINE_CALL_ID, SET HOTLINE_VARS
# (the decision's variables, applied by the dialplan with MSet), SET HOTLINE_ACTION.
COMMANDS = {
    "hotline": 5, "panoramisk": 5, "hotline-asyncio": 5, "panoramisk-asyncio": 5, "hotline-routing": 4,
    "python-floor": 5, "c-reference": 5,
}  # fmt: skip
FLOORS = ("python-floor", "c-reference")  # measured once, for --ceiling-seconds
DID = "5000"  # agi_extension in agi_load.c's environment block

# ----------------------------------------------------------------------------------- servers
# Each contestant runs in a child process started as `bench_fastagi.py --serve KIND`: it pins itself
# to CPU 0, prints "READY <port>", serves until its stdin is closed, then prints one JSON line of
# its own counters.


async def _until_stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    fd = sys.stdin.fileno()

    def readable() -> None:
        if not os.read(fd, 4096) and not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)


def _ready(port: int) -> None:
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()


async def _serve_hotline() -> dict[str, Any]:
    from hotline.asterisk.agi_server import AGIServer, AGISession

    async def handler(session: AGISession) -> None:
        await session.get_variable("HOTLINE_CALL_ID")
        for i in range(4):
            await session.set_variable(f"HOTLINE_V{i}", f"value{i}")

    server = AGIServer({"inbound": handler})
    await server.start("127.0.0.1", 0)
    _ready(server.port)
    await _until_stdin_closed()
    await server.stop()
    return {
        "sessions_done": server.sessions_done,
        "handler_errors": server.handler_errors,
        "protocol_errors": server.protocol_errors,
        "refused": server.refused,
    }


async def _serve_panoramisk() -> dict[str, Any]:
    from panoramisk.fast_agi import Application, Request

    counters = {"sessions_done": 0, "bad_replies": 0}

    async def route(request: Request) -> None:
        # The same bytes Hotline sends (its codec quotes every argument).
        replies = [await request.send_command('GET VARIABLE "HOTLINE_CALL_ID"')]
        for i in range(4):
            replies.append(await request.send_command(f'SET VARIABLE "HOTLINE_V{i}" "value{i}"'))
        counters["bad_replies"] += sum(1 for r in replies if r.get("status_code") != 200)
        counters["sessions_done"] += 1

    app = Application(loop=asyncio.get_running_loop())
    # panoramisk routes on the whole agi_network_script, query string included.
    app.add_route("inbound?node=node1", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    _ready(server.sockets[0].getsockname()[1])
    await _until_stdin_closed()
    server.close()
    await server.wait_closed()
    return counters


async def _serve_python_floor() -> dict[str, Any]:
    """The least a Python server on this loop can do: the same 5 command lines, written from callbacks,
    no codec, no task, no future, no validation.  Not a usable server; it prices the loop and the kernel."""
    commands = [b'GET VARIABLE "HOTLINE_CALL_ID"\n'] + [
        f'SET VARIABLE "HOTLINE_V{i}" "value{i}"\n'.encode() for i in range(4)
    ]
    counters = {"sessions_done": 0}

    class Floor(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)
            self.sent = -1
            self.head = b""

        def data_received(self, data: bytes) -> None:
            if self.sent < 0:
                self.head += data
                if b"\n\n" not in self.head:
                    return
            self.sent += 1
            if self.sent == len(commands):
                counters["sessions_done"] += 1
                self.transport.close()
            else:
                self.transport.write(commands[self.sent])

    server = await asyncio.get_running_loop().create_server(Floor, "127.0.0.1", 0, backlog=1024)
    _ready(server.sockets[0].getsockname()[1])
    await _until_stdin_closed()
    server.close()
    return counters


async def _serve_hotline_routing() -> dict[str, Any]:
    from hotline.asterisk.agi_server import AGIServer
    from hotline.db import migrate
    from hotline.db.engine import create_engine_for
    from hotline.db.repositories import CallRepository, ConfigRepository
    from hotline.db.repositories.agents import AgentStateRepository
    from hotline.features.agents.service import AgentService
    from hotline.features.journal.service import JournalService
    from hotline.features.routing.agi_handlers import RoutingHandlers
    from hotline.features.routing.router import RouteContext

    tmp = tempfile.mkdtemp(prefix="hotline-bench-agi-")
    try:
        engine = create_engine_for(f"sqlite:///{tmp}/journal.db")
        migrate.upgrade(engine)
        journal = JournalService(CallRepository(engine))
        # The configuration as the app builds it: rows through the repository, then a snapshot.
        config = ConfigRepository(engine)
        config.add_queue("support")
        config.add_route(DID, "queue", "support")
        snapshot = config.load_snapshot()
        agents = AgentService(AgentStateRepository(engine), lambda: snapshot)
        handlers = RoutingHandlers(lambda node: RouteContext(snapshot, datetime.now(UTC)), journal, agents)
        flusher = asyncio.get_running_loop().create_task(journal.flush_loop(), name="journal-flush")
        server = AGIServer({"inbound": handlers.inbound})
        await server.start("127.0.0.1", 0)
        _ready(server.port)
        await _until_stdin_closed()
        await server.stop()
        # On Python 3.11 flush_loop can swallow a cancellation (asyncio.wait_for returns the inner
        # result when the wake-up event is set as the cancel arrives), so cancel until it has ended;
        # the timeout only bounds each wait in that case.  The count is reported.
        cancels = 0
        while not flusher.done():
            flusher.cancel()
            cancels += 1
            await asyncio.wait({flusher}, timeout=1.0)
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await journal.flush()
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT count(*) FROM call_events").scalar()
            calls = conn.exec_driver_sql("SELECT count(*) FROM calls").scalar()
        engine.dispose()
        return {
            "sessions_done": server.sessions_done,
            "handler_errors": server.handler_errors,
            "protocol_errors": server.protocol_errors,
            "refused": server.refused,
            "decided": handlers.decided,
            "route_failed": handlers.failed,
            "journal_written": journal.written,
            "journal_dropped": journal.dropped,
            "db_event_rows": rows,
            "db_call_rows": calls,
            "flush_loop_cancels": cancels,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# (server, event loop).  The target pair runs on the same loop, uvloop (Hotline's `event_loop` default):
# panoramisk does not choose a loop, it runs on whatever loop the application runs, so it gets the
# faster one too.  The "-asyncio" twins run both on stock asyncio (informative).
SERVERS = {
    "hotline": (_serve_hotline, "uvloop"),
    "panoramisk": (_serve_panoramisk, "uvloop"),
    "hotline-asyncio": (_serve_hotline, "asyncio"),
    "panoramisk-asyncio": (_serve_panoramisk, "asyncio"),
    "hotline-routing": (_serve_hotline_routing, "uvloop"),
    "python-floor": (_serve_python_floor, "uvloop"),
}


def serve(kind: str) -> None:
    os.sched_setaffinity(0, {SERVER_CPU})
    sys.path.insert(0, str(ROOT))
    server, loop = SERVERS[kind]
    if loop == "uvloop":
        import uvloop

        result = uvloop.run(server())
    else:
        result = asyncio.run(server())
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------- driver


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process (and its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def _cpu_busy_ticks(cpu: int) -> int:
    """Ticks CPU `cpu` spent on anything but idle and iowait, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                ticks = [int(x) for x in line.split()[1:]]
                return sum(ticks) - ticks[3] - ticks[4]
    raise RuntimeError(f"cpu{cpu} not in /proc/stat")


def compile_generator(tmp: Path) -> Path:
    exe = tmp / "agi_load"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(HERE / "agi_load.c")], check=True)
    return exe


def run_generator(exe: Path, port: int, args: argparse.Namespace, expect: int, seconds: float) -> dict[str, Any]:
    cmd = [
        str(exe), "--port", str(port), "--cpu", str(LOAD_CPU), "--concurrency", str(args.concurrency),
        "--seconds", str(seconds), "--warmup", str(args.warmup), "--expect", str(expect),
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return cast(dict[str, Any], json.loads(out))


def measure(kind: str, exe: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement: start the server process, load it, stop it, collect both sides' counters."""
    expect = COMMANDS[kind]
    seconds = args.ceiling_seconds if kind in FLOORS else args.seconds
    if kind == "c-reference":
        proc = subprocess.Popen(
            [str(exe), "--serve", "--port", "0", "--cpu", str(SERVER_CPU), "--commands", "5"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
    else:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", kind],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()  # blocks until the server listens
        if not line.startswith("READY "):
            raise RuntimeError(f"{kind} server did not start: {line!r}")
        port = int(line.split()[1])
        ticks0, busy0, wall0 = _cpu_ticks(proc.pid), _cpu_busy_ticks(SERVER_CPU), time.monotonic()
        load = run_generator(exe, port, args, expect, seconds)
        ticks1, busy1, wall1 = _cpu_ticks(proc.pid), _cpu_busy_ticks(SERVER_CPU), time.monotonic()
        server_stats: dict[str, Any] = {}
        if kind == "c-reference":
            proc.terminate()
            proc.wait(timeout=60)
        else:
            # Closing its stdin tells the server to stop and print its counters.
            try:
                out, _ = proc.communicate(timeout=60)
                server_stats = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
            except subprocess.TimeoutExpired:
                server_stats = {"stop_timeout": 1}
            if not server_stats:
                server_stats = {"no_report": 1}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    hz = os.sysconf("SC_CLK_TCK")
    server_cpu_s = (ticks1 - ticks0) / hz
    load["server_cpu_share"] = server_cpu_s / (wall1 - wall0)
    # What else ran on CPU 0 meanwhile (other processes, and interrupts not charged to the server): a
    # high value means the run was disturbed and its sessions/s understate the server.
    load["cpu0_other_share"] = max(0.0, ((busy1 - busy0) / hz - server_cpu_s) / (wall1 - wall0))
    # CPU cost per session is robust against other processes sharing CPU 0 (throughput is not):
    # the server's CPU over the whole generator run, divided by every session of that run.
    load["server_cpu_us_per_session"] = server_cpu_s / max(load["completed_total"], 1) * 1e6
    load["server"] = server_stats
    return load


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "sessions_per_s", "commands_per_s", "p50_ms", "p99_ms", "generator_cpu_share", "server_cpu_share",
        "server_cpu_us_per_session", "cpu0_other_share",
    )  # fmt: skip
    out: dict[str, Any] = {k: _median(runs, k) for k in keys}
    out["errors"] = sum(
        r["bad_sessions"] + r["connect_errors"] + r["io_errors"] + r["abandoned"]
        + r["server"].get("handler_errors", 0) + r["server"].get("protocol_errors", 0)
        + r["server"].get("refused", 0) + r["server"].get("bad_replies", 0)
        + r["server"].get("stop_timeout", 0) + r["server"].get("no_report", 0)
        for r in runs
    )  # fmt: skip
    return out


def _ratio(runs: dict[str, list[dict[str, Any]]], summary: dict[str, Any], a: str, b: str) -> tuple[float, list[float]]:
    """Sessions/s of `a` over `b`: the ratio of the medians, and the per-repeat (paired) ratios."""
    den = summary[b]["sessions_per_s"]
    ratio = summary[a]["sessions_per_s"] / den if den else float("inf")
    paired = [x["sessions_per_s"] / y["sessions_per_s"] if y["sessions_per_s"] else float("inf")
              for x, y in zip(runs[a], runs[b], strict=True)]  # fmt: skip
    return ratio, paired


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds before each run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per server; the median is reported")
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent sessions (default 20)")
    parser.add_argument(
        "--ceiling-seconds", type=float, default=3.0, help="seconds of the one run of each floor (Python, C)"
    )
    parser.add_argument("--no-routing", action="store_true", help="skip the informative hotline-routing line")
    parser.add_argument("--no-asyncio", action="store_true", help="skip the informative stock-asyncio pair")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    if not {SERVER_CPU, LOAD_CPU} <= os.sched_getaffinity(0):
        print(f"needs CPUs {SERVER_CPU} and {LOAD_CPU} (server on one, load on the other)", file=sys.stderr)
        return 2
    if args.repeats < 1 or args.seconds <= 0 or args.ceiling_seconds <= 0 or args.concurrency < 1:
        print("--repeats, --seconds, --ceiling-seconds and --concurrency must be positive", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {LOAD_CPU})  # this driver idles on the generator's core, never on the server's
    kinds = ["hotline", "panoramisk"]
    kinds += [] if args.no_asyncio else ["hotline-asyncio", "panoramisk-asyncio"]
    kinds += [] if args.no_routing else ["hotline-routing"]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in [*kinds, *FLOORS]}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        exe = compile_generator(Path(tmp))
        for rep in range(args.repeats):
            for kind in kinds:  # interleaved, so that a noisy moment hurts every contestant alike
                r = measure(kind, exe, args)
                runs[kind].append(r)
                print(
                    f"  run {rep + 1}/{args.repeats} {kind:<18} {r['sessions_per_s']:>8.0f} sessions/s  "
                    f"p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
                    f"server CPU {r['server_cpu_share']:4.0%} ({r['server_cpu_us_per_session']:.0f} us/session)  "
                    f"generator CPU {r['generator_cpu_share']:4.0%}  other load on CPU 0 {r['cpu0_other_share']:4.0%}",
                    flush=True,
                )
        for kind in FLOORS:
            runs[kind].append(measure(kind, exe, args))

    summary = {k: summarize(v) for k, v in runs.items()}
    hot, pano = summary["hotline"], summary["panoramisk"]
    ratio, paired = _ratio(runs, summary, "hotline", "panoramisk")
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"

    print()
    print(
        f"FastAGI, {args.concurrency} concurrent sessions, 22-var env + N commands each, "
        f"server on CPU {SERVER_CPU}, C load on CPU {LOAD_CPU}; median of {args.repeats} x {args.seconds:g} s "
        f"(floors: 1 x {args.ceiling_seconds:g} s)"
    )
    header = (
        f"{'server':<38} {'cmds':>4} {'sessions/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'commands/s':>10} "
        f"{'srv CPU':>7} {'us/sess':>7} {'gen CPU':>7} {'CPU0 oth':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    labels = {
        "hotline": "hotline AGIServer, uvloop",
        "panoramisk": "panoramisk 1.4 fast_agi, uvloop",
        "hotline-asyncio": "hotline AGIServer, asyncio (info)",
        "panoramisk-asyncio": "panoramisk 1.4, asyncio (info)",
        "hotline-routing": "hotline RoutingHandlers.inbound, uvloop",
        "python-floor": "bare asyncio.Protocol, uvloop (floor)",
        "c-reference": "C reference server (gen ceiling)",
    }
    for kind, s in summary.items():
        print(
            f"{labels[kind]:<38} {COMMANDS[kind]:>4} {s['sessions_per_s']:>10.0f} {s['p50_ms']:>8.2f} "
            f"{s['p99_ms']:>8.2f} {s['commands_per_s']:>10.0f} {s['server_cpu_share']:>7.0%} "
            f"{s['server_cpu_us_per_session']:>7.0f} {s['generator_cpu_share']:>7.0%} {s['cpu0_other_share']:>8.0%} "
            f"{s['errors']:>6}"
        )
    print()
    print(
        f"ratio hotline / panoramisk sessions/s, both on uvloop: {ratio:.2f}x (per run: "
        f"{', '.join(f'{x:.2f}' for x in paired)})  target >= {TARGET_RATIO:g}x: {verdict}"
    )
    cost_ratio = pano["server_cpu_us_per_session"] / hot["server_cpu_us_per_session"]
    print(
        f"server CPU per session, panoramisk / hotline (uvloop): {cost_ratio:.2f}x "
        "(> 1: Hotline is cheaper; unlike sessions/s this barely moves when other processes share CPU 0)"
    )
    floor = summary["python-floor"]["server_cpu_us_per_session"]
    print(
        f"the bare-Protocol floor costs {floor:.0f} us/session: no Python server on uvloop can be more than "
        f"{pano['server_cpu_us_per_session'] / floor:.2f}x cheaper than panoramisk here (informative)"
    )
    stock: float | None = None
    if "hotline-asyncio" in summary:
        stock, stock_paired = _ratio(runs, summary, "hotline-asyncio", "panoramisk-asyncio")
        print(
            f"ratio hotline / panoramisk, both on stock asyncio: {stock:.2f}x "
            f"(per run: {', '.join(f'{x:.2f}' for x in stock_paired)}; informative)"
        )
        shipped, _ = _ratio(runs, summary, "hotline", "panoramisk-asyncio")
        print(
            f"ratio hotline on uvloop / panoramisk on stock asyncio: {shipped:.2f}x "
            "(informative only: the loop's share is not Hotline's work)"
        )
    lost_cancels = 0
    if "hotline-routing" in summary:
        routing_ratio = summary["hotline-routing"]["sessions_per_s"] / pano["sessions_per_s"]
        print(f"ratio hotline-routing / panoramisk (uvloop): {routing_ratio:.2f}x (informative)")
        srv = runs["hotline-routing"][-1]["server"]
        journal_ok = all(
            r["server"].get("db_event_rows", -1) == 2 * r["server"].get("decided", 0) == 2 * r["server"]["db_call_rows"]
            and r["server"]["journal_dropped"] == 0
            for r in runs["hotline-routing"]
            if "db_call_rows" in r["server"]
        ) and all("db_call_rows" in r["server"] for r in runs["hotline-routing"])
        lost_cancels = sum(r["server"].get("flush_loop_cancels", 1) - 1 for r in runs["hotline-routing"])
        print(
            f"hotline-routing last run: {srv.get('decided')} calls decided, {srv.get('db_event_rows')} journal rows "
            f"and {srv.get('db_call_rows')} call rows in SQLite, {srv.get('journal_dropped')} dropped; "
            + ("OK" if journal_ok else "MISMATCH (expected 2 journal rows and 1 call row per decided call)")
        )
    if lost_cancels:
        print(
            f"note: JournalService.flush_loop ignored {lost_cancels} cancellation(s) at shutdown "
            "(Python 3.11 asyncio.wait_for race; see bench/FASTAGI_AMI.md)"
        )
    disturbed = [k for k, rs in runs.items() for r in rs if r["cpu0_other_share"] > 0.10]
    if disturbed:
        print(
            f"warning: {len(disturbed)} run(s) shared CPU 0 with other work (> 10 %: "
            f"{', '.join(sorted(set(disturbed)))}); "
            "their sessions/s are low; compare 'us/sess', or rerun on a quiet machine"
        )
    print(f"load average before the runs: {' '.join(f'{x:.2f}' for x in load_before)}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(
        RESULTS,
        {
            "benchmark": "fastagi",
            "target": "hotline / panoramisk sessions/s, both on uvloop",
            "target_ratio": TARGET_RATIO,
            "ratio": ratio,
            "ratio_per_run": paired,
            "cpu_per_session_ratio": cost_ratio,
            "ratio_stock_asyncio": stock,
            "verdict": verdict,
            "summary": summary,
            "runs": runs,
            "settings": vars(args),
        },
        load_before,
    )
    print(f"results: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
