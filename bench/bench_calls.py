#!/usr/bin/env python3
"""Call-rate benchmark (issue 3, item 11): calls/s through one node with the full Hotline path against the
same node with a static dialplan and static configuration, raised step by step until each saturates.

One run, side by side, everything set up and torn down here (see bench/CALLS.md):

- "full": Hotline as its own process (`python -m hotline --config <toml> serve`, SQLite by default or a fresh
  PostgreSQL database with --database postgresql) and one Asterisk 22 node it configures (lab instance
  "benchfull", 127.0.0.61): phones, queues and members from Hotline's realtime backend (res_config_curl),
  every call routed by FastAGI (`inbound` with caller lookup: earlier calls, customer records and a local
  HTTP CRM stub; `outbound` with call-type classification and the agent group's quota), the AMI journal on;
- "static": the same Asterisk root, a node (lab instance "benchstatic", 127.0.0.62) whose pjsip.conf,
  queues.conf and extensions.conf are written here (`render_static_node`) with the very same objects and
  the same call flow as fixed Queue()/Dial(): no AGI, no realtime, no curl, no AMI client;
- the load, the same for both: SIPp as the carrier (127.0.0.63) calling the DIDs of 8 queues served by
  logged-in agents, and SIPp as agents' phones (127.0.0.65) dialling mobile numbers (digest auth) for a
  share of the calls; one SIPp (127.0.0.64) answers everything (the agents' registered phones and the
  carrier's far end), the caller hangs up after a short hold; no RTP.

Per step (offered rate, each backend in turn at the same rate): completed calls/s, failed calls, p50/p99
of the SIPp response time (INVITE -> 200 OK), CPU of Asterisk, Hotline, the CRM stub, SIPp and the rest of
the machine from /proc; for the full path also realtime requests, AGI sessions and journal events per call.
The result is the highest rate each carried (<= 1 % failed, >= 95 % of the offered rate answered, p99 under
the limit) and the ratio full/static (target >= 0.9).  Writes bench/results/calls.json.

    .venv/bin/python bench/bench_calls.py --hybrid   # the ladder plus the what-if node, ~12 min
    .venv/bin/python bench/bench_calls.py --quick    # smoke run, ~2 min
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import sqlalchemy as sa  # noqa: E402
from bench_realtime import (  # noqa: E402
    CLK_TCK,
    PinnedHotline,
    free_tcp_port,
    log,
    percentile,
    proc_ticks,
    read_pcap,
    start_prepared_node,
    system_busy_ticks,
    write_files,
)
from benchlib import write_results  # noqa: E402

from hotline.asterisk import lab  # noqa: E402
from hotline.asterisk.config_render import NodeSpec, render_node  # noqa: E402
from hotline.asterisk.realtime_backend import aor_row, auth_row, endpoint_row, member_row, queue_row  # noqa: E402
from hotline.db import tables as t  # noqa: E402
from hotline.db.engine import create_engine_for  # noqa: E402
from hotline.db.migrate import upgrade  # noqa: E402
from hotline.db.repositories import ConfigRepository  # noqa: E402
from hotline.db.repositories.agents import AgentStateRepository  # noqa: E402
from hotline.db.repositories.callcenter import CallCenterRepository  # noqa: E402
from hotline.domain.config import ConfigSnapshot  # noqa: E402
from hotline.errors import LabError  # noqa: E402
from hotline.features.agents.service import AgentService  # noqa: E402
from hotline.settings import Settings, load_settings  # noqa: E402

SIPP_DIR = HERE / "sipp"
RESULTS = HERE / "results" / "calls.json"
TARGET_RATIO = 0.9


class NodeStuck(Exception):
    """A node that does not get back to idle between steps: its ladder ends."""


# Lab instances and loopback addresses reserved for this benchmark (never e2e/main/e2ecc/e2ectl, .11, .51-.53).
FULL_INSTANCE, STATIC_INSTANCE = "benchfull", "benchstatic"
FULL_IP, STATIC_IP = "127.0.0.61", "127.0.0.62"
CARRIER_IP = "127.0.0.63"  # the carrier's SIPp: the full node's `carrier_addresses`, the static identify
UAS_IP = "127.0.0.64"  # answers everything: agents' phones (their contacts) and the carrier's far end
PHONES_IP = "127.0.0.65"  # agents' phones placing outside calls (not the carrier address: identified by user)
SIP_PORT, AMI_PORT, MEDIA_PORT = 5060, 5038, 6000
# 4000 RTP ports per node (the lab default of 1000 runs out at ~250 bridged calls: 2 channels x 2 ports each)
FULL_RTP, STATIC_RTP = (40000, 43999), (44000, 47999)
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

FIRST_AGENT_PHONE, FIRST_OUT_PHONE = 30000, 39000
FIRST_AGENT, FIRST_OUT_AGENT = 7000, 8000
FIRST_DID = 6000
CALLER_PREFIX = "+7495"  # + 7 digits: a unique caller number per inbound call (some repeat, see carrier_csv)
MOBILE_PREFIX = "916"  # + 7 digits: "mobile" by the call-type rules below
BACKENDS = ("full", "static")  # compared side by side; "hybrid" (--hybrid) is an extra what-if
HOTLINE_BACKENDS = ("full", "hybrid")  # the backends whose calls Hotline routes and journals
# Call-type rules of the full path (classification walks them in position order, as in production).
CALL_TYPE_RULES = (
    ("_8809X.", "premium", 5),
    ("_[2-7]XXXXXX", "local", 10),
    ("_9XXXXXXXXX", "mobile", 20),
    ("_8XXXXXXXXXX", "long_distance", 30),
    ("_810X.", "international", 40),
)
# res_config_curl and friends: the static node loads none of them.
REALTIME_MODULES = ("res_curl.so", "func_curl.so", "res_config_curl.so", "res_sorcery_realtime.so",
                    "res_realtime.so", "func_realtime.so")  # fmt: skip


# ---------------------------------------------------------------------------------------------- static node
def _section(name: str, kind: str, row: Sequence[tuple[str, str]], skip: str) -> str:
    lines = [f"[{name}]", f"type = {kind}"] + [f"{k} = {v}" for k, v in row if k != skip]
    return "\n".join(lines) + "\n"


def render_static_node(
    settings: Settings, spec: NodeSpec, ast_dir: str, snap: ConfigSnapshot, *, hybrid: bool = False
) -> dict[str, str]:
    """The static node: Hotline's rendered files for what both share (asterisk.conf, logger, rtp, manager,
    musiconhold, indications, the carrier trunk and transport), with

    - no realtime: the curl/realtime modules are not loaded, extconfig.conf is empty, sorcery.conf is
      empty (PJSIP objects from pjsip.conf, contacts in astdb: Asterisk's defaults);
    - pjsip.conf: every enabled phone as endpoint/auth/aor sections made of the very rows the realtime
      backend serves (`endpoint_row`, `auth_row`, `aor_row`);
    - queues.conf: every queue from `queue_row` (column names with '-' as app_queue's realtime loader
      turns them) and its members from `member_row` (the members the agents' logins created);
    - extensions.conf: the same call flow with fixed applications: DID -> Queue() of its route's queue,
      a number dialled on a phone -> Dial(PJSIP/<number>@carrier).  No AGI, no curl.

    `hybrid` (the --hybrid what-if): the same static PJSIP objects and queues, but Hotline's own rendered
    extensions.conf (FastAGI routing with caller lookup and limits; Hotline also journals the node's AMI
    events): what the full path costs without res_config_curl."""
    files = render_node(settings, spec, ast_dir)
    files.pop("res_curl.conf", None)
    mods = [
        line for line in files["modules.conf"].splitlines() if line.split("=", 1)[-1].strip() not in REALTIME_MODULES
    ]
    files["modules.conf"] = "\n".join(mods) + "\n"
    files["extconfig.conf"] = "[settings]\n"
    files["sorcery.conf"] = ""
    phones = [p for p in snap.phones if p.enabled]
    pjsip = [files["pjsip.conf"]]
    for p in phones:
        pjsip.append(_section(p.name, "endpoint", endpoint_row(p), "id"))
        pjsip.append(_section(p.name, "auth", auth_row(p), "id"))
        pjsip.append(_section(p.name, "aor", aor_row(p), "id"))
    files["pjsip.conf"] = "\n".join(pjsip)
    queues = [files["queues.conf"]]
    for q in snap.queues:
        lines = [f"[{q.name}]"] + [f"{k.replace('_', '-')} = {v}" for k, v in queue_row(q) if k != "name"]
        for m in snap.members_by_queue.get(q.name, ()):
            mr = dict(member_row(m))
            lines.append(f"member => {mr['interface']},{mr['penalty']},{mr['membername']},{mr['state_interface']}")
        queues.append("\n".join(lines) + "\n")
    files["queues.conf"] = "\n".join(queues)
    ext = [
        "; Static call flow of the call-rate benchmark (bench/bench_calls.py): what Hotline's router decides",
        "; for these DIDs and phones, as fixed applications.",
        "[general]\nstatic = yes\nwriteprotect = yes\n",
        "[from-carrier]",
        "exten => _X!,1,Goto(static-inbound,${EXTEN},1)",
        "exten => _+X.,1,Goto(static-inbound,${EXTEN},1)\n",
        "[static-inbound]",
    ]
    for r in snap.did_routes:
        if r.dest_type == "queue" and r.enabled:
            ext += [
                f"exten => {r.did},1,Set(QUEUE_PRIO=0)",
                f" same => n,Queue({r.dest_value},t)",
                " same => n,Hangup(16)",
            ]
    ext += ["", "[hotline-phones]", "exten => _X.,1,Dial(PJSIP/${EXTEN}@carrier,60)", " same => n,Hangup()", ""]
    if not hybrid:
        files["extensions.conf"] = "\n".join(ext)
    return files


# ---------------------------------------------------------------------------------------------- CRM stub
async def _crm_serve(port: int, delay: float) -> None:
    """A CRM on 127.0.0.1 answering `GET /lookup?number=...` after `delay` s: numbers ending in 0-4 are
    found (JSON as docs/crm.md), the others 404.  HTTP/1.1 keep-alive, one buffered write per answer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode("latin-1")
                number = parse_qs(urlsplit(target).query).get("number", [""])[0]
                if delay:
                    await asyncio.sleep(delay)
                if number[-1:] in tuple("01234"):
                    body = json.dumps({"found": True, "name": f"CRM customer {number[-4:]}",
                                       "fields": {"account": f"A-{number[-6:]}", "tier": "gold"},
                                       "url": f"https://crm.example/accounts/{number[-6:]}"}).encode()  # fmt: skip
                    status = b"200 OK"
                else:
                    body, status = b"", b"404 Not Found"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)  # the parent closes our stdin to stop us
    await stdin_closed
    server.close()


class CrmStub:
    def __init__(self, delay_ms: float, log_file: Path, cpu: int) -> None:
        self.delay_ms = delay_ms
        self.cpu = cpu
        self.log_file = log_file
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self) -> None:
        with open(self.log_file, "wb") as err:
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(self.cpu), sys.executable, str(Path(__file__).resolve()), "--serve-crm",
                 "--crm-delay-ms", str(self.delay_ms)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the CRM stub did not start: {line!r}; see {self.log_file}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


# ---------------------------------------------------------------------------------------------- SIPp
class SippRun:
    """One SIPp process: a UAC placing `calls` at `rate`/s, or the UAS (no -m; stopped with SIGUSR1)."""

    def __init__(self, name: str, workdir: Path, scenario: str, ip: str, *, target: str = "",
                 csv: Path | None = None, rate: int = 0, calls: int = 0, hold_ms: int = 1000,
                 recv_timeout_ms: int = 10_000, cpu: int | None = None) -> None:  # fmt: skip
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        # The hold is the UAC's wait for a re-INVITE (a <pause> could not take one): 1000 ms in the file.
        sf = self.dir / scenario
        sf.write_text((SIPP_DIR / scenario).read_text().replace('timeout="1000" ontimeout="bye"',
                                                                 f'timeout="{hold_ms}" ontimeout="bye"'))  # fmt: skip
        cmd = ["sipp", "-sf", str(sf), "-i", ip, "-p", str(SIP_PORT), "-mi", ip,
               "-mp", str(MEDIA_PORT), "-nostdin", "-trace_stat", "-stf", "stats.csv", "-fd", "1",
               "-trace_err", "-error_file", "errors.log", "-timer_resol", "1"]  # fmt: skip
        if target:
            cmd += [target, "-inf", str(csv), "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", "4000",
                    "-recv_timeout", str(recv_timeout_ms), "-trace_rtt", "-rtt_freq", "1",
                    "-timeout", f"{int(calls / rate + recv_timeout_ms / 1000 + hold_ms / 1000 + 30)}s"]  # fmt: skip
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.cmd = cmd
        self.proc: subprocess.Popen[bytes] | None = None
        self.cpu_s = 0.0
        self.started = 0.0

    def start(self) -> SippRun:
        with open(self.dir / "stdout.log", "wb") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)  # fmt: skip
        self.started = time.time()
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def wait(self, timeout: float) -> int:
        """Wait for SIPp to exit; keep its CPU time (wait4 rusage)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid == self.proc.pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_s = usage.ru_utime + usage.ru_stime
                return self.proc.returncode
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"SIPp {self.name} did not finish in {timeout:.0f} s: {' '.join(self.cmd)}")
            time.sleep(0.02)  # polling the child for exit (wait4 with rusage has no timeout)

    def soft_stop(self, timeout: float = 5) -> None:
        """The UAS: SIGUSR1 makes SIPp stop taking calls and exit once its calls ended (final statistics);
        calls the node never ended (after a failure on the caller's side) would keep it: killed then."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
                if pid == self.proc.pid:
                    break
                if time.monotonic() > deadline:
                    self.proc.send_signal(signal.SIGKILL)
                    pid, status, usage = os.wait4(self.proc.pid, 0)
                    break
                time.sleep(0.02)  # polling the child for exit (wait4 with rusage has no timeout)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.cpu_s = usage.ru_utime + usage.ru_stime

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def listening(self) -> bool:
        ip = self.cmd[self.cmd.index("-i") + 1]
        out = subprocess.run(["ss", "-Hlun", f"src {ip}:{SIP_PORT}"], capture_output=True, text=True, check=False)
        return bool(out.stdout.strip())

    def stats(self) -> dict[str, str]:
        """The last line of SIPp's statistics file (cumulative counters), by column name."""
        path = self.dir / "stats.csv"
        if not path.exists():
            return {}
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        if len(lines) < 2:
            return {}
        return dict(zip(lines[0].rstrip(";").split(";"), lines[-1].rstrip(";").split(";"), strict=False))

    def answers(self) -> list[tuple[float, float]]:
        """(epoch second of the 200 OK, response time in ms) of every answered call (SIPp's rtt file; its
        dates are ms since SIPp's start, which its statistics file gives as an epoch)."""
        start = float(self.stats().get("StartTime", "0").split()[-1] or 0) or self.started
        out: list[tuple[float, float]] = []
        for path in self.dir.glob("*_rtt.csv"):
            for line in path.read_text(errors="replace").splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2 and parts[0]:
                    out.append((start + float(parts[0]) / 1000.0, float(parts[1])))
        return sorted(out)

    def error_sample(self, n: int = 3) -> list[str]:
        path = self.dir / "errors.log"
        if not path.exists():
            return []
        return [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()][:n]


def thread_ticks(pid: int | None) -> dict[str, int]:
    """utime+stime of every thread of a live process, by thread id."""
    out: dict[str, int] = {}
    if pid is None:
        return out
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, IndexError):
                fields = (task / "stat").read_text().rsplit(") ", 1)[1].split()
                out[task.name] = int(fields[11]) + int(fields[12])
    return out


def counter(stats: dict[str, str], name: str) -> int:
    try:
        return int(stats.get(name, "0") or 0)
    except ValueError:
        return 0


# ---------------------------------------------------------------------------------------------- results
@dataclass
class Step:
    backend: str
    phase: str  # "warmup" or "step"
    offered_rate: int
    inbound_rate: int
    outbound_rate: int
    calls: int = 0  # placed by SIPp (both UACs)
    ok: int = 0
    failed: int = 0
    uas_failed: int = 0
    answered_per_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    inbound_p50_ms: float | None = None
    inbound_p99_ms: float | None = None
    outbound_p50_ms: float | None = None
    outbound_p99_ms: float | None = None
    wall_s: float = 0.0
    cpu_pct: dict[str, float] = field(default_factory=dict)
    asterisk_ms_per_call: float | None = None
    # the busiest thread of the node under load (on the full node: the autoservice thread, see CALLS.md)
    asterisk_top_thread_pct: float | None = None
    asterisk_top_thread_ms_per_call: float | None = None
    hotline_ms_per_call: float | None = None
    per_call: dict[str, float] = field(default_factory=dict)  # full path: realtime/AGI/journal/CRM per call
    journal_events: dict[str, int] = field(default_factory=dict)
    route_failed: int = 0
    carried: bool = False
    why_not: str = ""
    disturbed_attempts: list[float] = field(default_factory=list)  # rest% of earlier, discarded attempts
    errors_sample: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- the bench
class CallBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="hotline-bench-calls-"))
        self.settings: Settings | None = None
        self.static_settings: Settings | None = None
        self.hotline: PinnedHotline | None = None
        self.engine: Any = None
        self.full: lab.LabNode | None = None
        self.static: lab.LabNode | None = None
        self.crm: CrmStub | None = None
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.sipps: list[SippRun] = []
        self.capture: subprocess.Popen[bytes] | None = None
        self.pg_database: str | None = None
        self.pids: dict[str, int | None] = {}
        self.checks: dict[str, Any] = {}
        self.info: dict[str, Any] = {}
        self.last_event_id = 0
        self.customers = 0
        self.snap: ConfigSnapshot | None = None
        ncpu = os.cpu_count() or 1
        self.hotline_cpu = args.hotline_cpu if args.hotline_cpu is not None else ncpu - 1
        a = args
        self.agent_phones = [str(FIRST_AGENT_PHONE + i) for i in range(a.queues * a.agents_per_queue)]
        self.out_phones = [str(FIRST_OUT_PHONE + i) for i in range(a.out_phones)]
        # next caller number per backend, each in its own block: a caller the full path looked up (its CRM
        # answer cached, its call in the history) never calls the hybrid node, which sees the same mix
        self.caller_seq: Counter[str] = Counter()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def password(name: str) -> str:
        return f"bench-{name}-secret"

    def plan_callers(self) -> int:
        """How many inbound calls one backend's warm-up and ladder can place, disturbed steps measured again
        included (the caller numbers customers are made for)."""
        a = self.args
        total = a.warmup_rate * a.warmup_seconds
        total += sum(r * a.step_seconds for r in a.rates) * (1 + a.retries)
        return int(total * (1 - a.outbound_share)) + 100

    def database_url(self) -> str:
        if self.args.database == "sqlite":
            return ""
        name = f"hotline_bench_calls_{secrets.token_hex(4)}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.pg_database = name
        return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def setup(self) -> None:
        a = self.args
        if shutil.which("sipp") is None:
            lab.install_sipp()
        if a.profile and shutil.which("tcpdump") is None:
            lab.apt_install("tcpdump")
        for tool in ("taskset", "chroot", "ss"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed")
        self.crm = CrmStub(a.crm_delay_ms, self.work / "crm.log", self.hotline_cpu)
        if a.crm:
            self.crm.start()
            self.pids["crm"] = self.crm.proc.pid if self.crm.proc else None
        http_port, agi_port = free_tcp_port(), free_tcp_port()
        db_url = self.database_url()
        toml = self.work / "hotline.toml"
        toml.write_text(
            f'data_dir = "{self.work / "data"}"\n'
            f"http_port = {http_port}\nagi_port = {agi_port}\nrealtime_port = {free_tcp_port()}\n"
            f'lab_instance = "{FULL_INSTANCE}"\nnode_address_base = "{FULL_IP}"\nnode_count = 1\n'
            f'carrier_addresses = ["{CARRIER_IP}/32"]\ncarrier_contact = "sip:{UAS_IP}:{SIP_PORT}"\n'
            f"rtp_port_start = {FULL_RTP[0]}\n"
            f'database_url = "{db_url}"\n'
            + (f'crm_url = "http://127.0.0.1:{self.crm.port}/lookup?number={{number}}"\n' if a.crm else "")
        )
        settings = self.settings = load_settings(toml, environ={})
        self.static_settings = settings.replace(lab_instance=STATIC_INSTANCE, node_address_base=STATIC_IP)
        root = lab.provision(settings)
        self.info["asterisk"] = lab.asterisk_version_in(root)
        full_spec = NodeSpec("node1", FULL_IP, SIP_PORT, AMI_PORT, *FULL_RTP)
        # named node2: in the --hybrid phase Hotline knows it by that name (AGI ?node=node2, its AMI client)
        static_spec = NodeSpec("node2", STATIC_IP, SIP_PORT, AMI_PORT, *STATIC_RTP)
        self.full = lab.lab_node(settings, full_spec)
        self.static = lab.lab_node(self.static_settings, static_spec)
        for node in (self.full, self.static):
            lab.stop_node(node)  # a node left over from an interrupted run of this bench
            shutil.rmtree(node.host_dir, ignore_errors=True)  # no contacts or logs of an earlier run

        t0 = time.monotonic()
        self.engine = create_engine_for(settings.effective_database_url)
        upgrade(self.engine)
        snap = self.snap = self.seed(settings)
        log(f"seeded {len(snap.phones)} phones, {len(snap.agents)} agents logged in, {len(snap.queues)} queues "
            f"({len(snap.queue_members)} members), {self.customers} customers in "
            f"{'SQLite' if a.database == 'sqlite' else 'PostgreSQL ' + str(self.pg_database)} "
            f"({time.monotonic() - t0:.1f} s)")  # fmt: skip

        # --- processes: Hotline (pinned) and the full node as Hotline renders it; the static node
        self.hotline = PinnedHotline(toml, http_port, self.work / "hotline.log", cpu=self.hotline_cpu)
        try:
            self.hotline.start()
        except AssertionError as exc:
            tail = (self.work / "hotline.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Hotline did not start ({exc}); its log ends with:\n{tail}") from None
        assert self.hotline.proc is not None
        self.pids["hotline"] = self.hotline.proc.pid
        self.pids["asterisk_full"] = lab.start_node(settings, self.full)
        self.pin_node(self.pids["asterisk_full"])
        self.hotline.wait_nodes_connected(30)
        self.start_second_node(hybrid=False)
        log(f"Hotline pid {self.pids['hotline']} on CPU {self.hotline_cpu}; full node {FULL_IP} pid "
            f"{self.pids['asterisk_full']}; static node {STATIC_IP} pid {self.pids['asterisk_static']}; "
            f"CRM stub {'pid ' + str(self.pids.get('crm')) if a.crm else 'off'}")  # fmt: skip
        self.register_phones(BACKENDS)
        self.verify_objects()

    def pin_node(self, pid: int | None) -> None:
        """--node-cpu: every thread of the node on that CPU (threads created later inherit it)."""
        if self.args.node_cpu is not None and pid is not None:
            subprocess.run(["taskset", "-a", "-p", "-c", str(self.args.node_cpu), str(pid)], check=True,
                           capture_output=True)  # fmt: skip

    def start_second_node(self, *, hybrid: bool) -> None:
        """(Re)start the node on 127.0.0.62 with the static configuration, or the --hybrid one (then Hotline
        is told about it, so it journals its AMI events like the full node's)."""
        node, settings = self.static, self.static_settings
        assert node is not None and settings is not None and self.snap is not None
        lab.stop_node(node)
        shutil.rmtree(node.host_dir, ignore_errors=True)
        lab.write_node_config(settings, node)  # folders (its files are overwritten below)
        for stale in (node.host_dir / "etc").iterdir():
            stale.unlink()
        write_files(node, render_static_node(settings, node.spec, node.ast_dir, self.snap, hybrid=hybrid))
        self.pids["asterisk_static"] = start_prepared_node(node, self.children)
        self.pin_node(self.pids["asterisk_static"])
        if hybrid:
            assert self.hotline is not None
            ConfigRepository(self.engine).upsert_node(node.spec.name, STATIC_IP, SIP_PORT, AMI_PORT)
            self.hotline.wait_nodes_connected(30)

    def seed(self, settings: Settings) -> ConfigSnapshot:
        a = self.args
        config = ConfigRepository(self.engine)
        cc = CallCenterRepository(self.engine)
        config.add_agent_group("bench-in")
        config.add_agent_group("bench-out")
        # outside calls are classified and checked against the group's call types and daily quotas
        cc.update_agent_group("bench-out", allowed_call_types="local,mobile,long_distance",
                              daily_call_quota=100_000, daily_minute_quota=100_000)  # fmt: skip
        for pattern, call_type, position in CALL_TYPE_RULES:
            cc.add_call_type_rule(pattern, call_type, position=position)
        for q in range(a.queues):
            # rrmemory rings one free agent at a time; ringinuse=no (default): a busy agent is skipped
            config.add_queue(f"bench-q{q}", strategy="rrmemory", timeout=15, retry=1, wrapuptime=0)
            config.add_route(str(FIRST_DID + q), "queue", f"bench-q{q}")
        logins: list[tuple[str, str]] = []
        for i, phone in enumerate(self.agent_phones):
            config.add_phone(phone, self.password(phone), realm=settings.sip_realm)
            number = str(FIRST_AGENT + i)
            config.add_agent(number, f"Agent {number}", group="bench-in")
            cc.set_agent_queue(number, f"bench-q{i // a.agents_per_queue}")
            logins.append((number, phone))
        for j, phone in enumerate(self.out_phones):
            config.add_phone(phone, self.password(phone), realm=settings.sip_realm)
            number = str(FIRST_OUT_AGENT + j)
            config.add_agent(number, f"Caller {number}", group="bench-out")
            logins.append((number, phone))
        config.upsert_node("node1", FULL_IP, SIP_PORT, AMI_PORT)
        # Customers: every other caller number of the full and the hybrid block has a record (one bulk
        # insert: setup only).
        rows = [{"name": f"Customer {n}", "phone": self.caller(n), "email": "", "external_id": f"C{n}",
                 "data": json.dumps({"tier": "silver"})} for n in range(0, 2 * self.plan_callers(), 2)]  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.customers), rows)
        self.customers = len(rows)

        async def login_all() -> None:  # the service's own login (queue memberships, journal), no PIN check
            snap = config.load_snapshot()
            agents = AgentService(AgentStateRepository(self.engine), lambda: snap)
            for number, phone in logins:
                await agents.login(number, None, phone, actor="bench", check_pin=False)

        asyncio.run(login_all())
        return config.load_snapshot()

    @staticmethod
    def caller(n: int) -> str:
        return f"{CALLER_PREFIX}{n:07d}"

    def register_phones(self, backends: Sequence[str]) -> None:
        """Every phone registers on both nodes from the UAS address, so its contact is where SIPp answers.

        Seen here on the full node (3 runs of ~10, not reproducible on demand): every registered realtime
        endpoint stayed `Unavailable` (contact NonQual), so the queues never rang them; IvozProvider's issue
        #377 reports the same for realtime endpoints.  So the agents' state is checked in every queue, and
        the unavailable phones are unregistered (Expires: 0) and registered again, up to 3 times."""
        phones = self.agent_phones + self.out_phones
        for backend in backends:
            self.sipp_register(backend, phones, 3600)
            found = re.search(r"Objects found: (\d+)", self.node(backend).cli("pjsip show contacts"))
            registered = int(found.group(1)) if found else 0
            self.checks[f"contacts_{backend}"] = registered
            log(f"{backend:6s} node: {registered} contacts registered ({len(phones)} phones)")
            if registered < len(phones):
                raise RuntimeError(f"only {registered} of {len(phones)} phones registered on the {backend} node")
            for attempt in range(4):
                down = self.unavailable_members(backend)
                if not down:
                    break
                if attempt == 3:
                    raise RuntimeError(f"{len(down)} agents' phones stay Unavailable on the {backend} node "
                                       f"(e.g. {down[:5]}) after 3 new registrations")  # fmt: skip
                log(f"  {backend}: {len(down)} agents' phones Unavailable in their queues (e.g. {down[:3]}); "
                    "registering them again")  # fmt: skip
                self.checks.setdefault(f"reregistered_{backend}", []).append(len(down))
                self.sipp_register(backend, down, 0)
                self.sipp_register(backend, down, 3600)

    def unavailable_members(self, backend: str) -> list[str]:
        """Agents' phones that a queue of the node sees as Unavailable (`queue show`)."""
        down: list[str] = []
        for q in range(self.args.queues):
            for line in self.node(backend).cli(f"queue show bench-q{q}").splitlines():
                m = re.search(r"\(PJSIP/(\w+)\).*\((Unavailable|Invalid|Unknown)\)", line)
                if m:
                    down.append(m.group(1))
        return down

    def sipp_register(self, backend: str, phones: list[str], expires: int) -> None:
        """One SIPp run from the UAS address registering (or, with expires 0, unregistering) `phones`."""
        d = self.work / f"register-{backend}-{expires}-{time.monotonic_ns()}"
        d.mkdir()
        csv = d / "phones.csv"
        csv.write_text("SEQUENTIAL\n" + "".join(
            f"{n};{self.password(n)};[authentication username={n} password={self.password(n)}]\n"
            for n in phones))  # fmt: skip
        cmd = ["sipp", f"{self.node(backend).spec.address}:{SIP_PORT}", "-sf", str(SIPP_DIR / "calls_register.xml"),
               "-inf", str(csv), "-key", "expires", str(expires), "-i", UAS_IP, "-p", str(SIP_PORT), "-mi", UAS_IP,
               "-mp", str(MEDIA_PORT), "-r", "100", "-m", str(len(phones)), "-recv_timeout", "5000", "-nostdin",
               "-nd", "-timeout", "120s", "-trace_stat", "-stf", "stats.csv", "-trace_err"]  # fmt: skip
        res = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=180, check=False)
        if res.returncode != 0:
            errs = (d / "errors.log").read_text(errors="replace")[-1500:] if (d / "errors.log").exists() else ""
            raise RuntimeError(f"registering {len(phones)} phones (expires {expires}) on the {backend} node failed "
                               f"(rc {res.returncode}): {errs or res.stdout[-1500:]}")  # fmt: skip

    def verify_objects(self) -> None:
        """Both nodes see the same phone and queue (transport line masked: it names the node's address)."""
        assert self.full is not None and self.static is not None
        diffs: list[str] = []
        phone = self.agent_phones[0]
        for cmd in (f"pjsip show endpoint {phone}", f"pjsip show aor {phone}", f"pjsip show auth {phone}"):
            a = self.full.cli(cmd).replace(FULL_IP, "<node>").strip().splitlines()
            b = self.static.cli(cmd).replace(STATIC_IP, "<node>").strip().splitlines()
            # contacts and the endpoint's channel/device state lines differ by design (registration times)
            a = [ln for ln in a if "Contact:" not in ln and "contact" not in ln.lower()]
            b = [ln for ln in b if "Contact:" not in ln and "contact" not in ln.lower()]
            diffs += [f"{cmd}: full={x!r} static={y!r}" for x, y in zip(a, b, strict=False) if x != y]
        self.checks["object_differences"] = diffs[:20]
        q_full = self.full.cli("queue show bench-q0")
        q_static = self.static.cli("queue show bench-q0")
        self.checks["queue_members"] = {"full": q_full.count("PJSIP/"), "static": q_static.count("PJSIP/")}
        log(f"objects on both nodes: {'identical' if not diffs else str(len(diffs)) + ' differences'}; queue "
            f"bench-q0 members full={self.checks['queue_members']['full']} "
            f"static={self.checks['queue_members']['static']}")  # fmt: skip
        for d in diffs[:8]:
            log(f"  {d}")

    # ------------------------------------------------------------------ load files
    def carrier_csv(self, path: Path, calls: int, backend: str) -> None:
        """Inbound calls: a new caller number per call, except every 5th call, which repeats the caller of
        20 calls before (a caller with history: earlier calls, a cached CRM answer); DIDs round robin."""
        lines = ["SEQUENTIAL"]
        first = self.caller_seq[backend] + self.plan_callers() * ("full", "hybrid", "static").index(backend)
        for i in range(calls):
            n = first + i - 20 if i % 5 == 4 and i >= 20 else first + i
            lines.append(f"{self.caller(n)};{FIRST_DID + i % self.args.queues};")
        self.caller_seq[backend] += calls
        path.write_text("\n".join(lines) + "\n")

    def phone_csv(self, path: Path, calls: int, backend: str) -> None:
        lines = ["SEQUENTIAL"]
        for i in range(calls):
            ph = self.out_phones[i % len(self.out_phones)]
            auth = f"[authentication username={ph} password={self.password(ph)}]"
            lines.append(f"{ph};{auth};{MOBILE_PREFIX}{(self.caller_seq[backend] + i) % 10_000_000:07d};")
        path.write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------------ measuring
    def node(self, backend: str) -> lab.LabNode:
        node = self.full if backend == "full" else self.static  # static and hybrid share 127.0.0.62
        assert node is not None
        return node

    def channels(self, backend: str) -> int:
        out = self.node(backend).cli("core show channels count")
        m = re.search(r"(\d+) active channels?", out)
        return int(m.group(1)) if m else -1

    def wait_idle(self, backend: str, timeout: float = 20, give_up: float = 120) -> None:
        """No channel left on the node (calls of the last step ended); hang up stragglers at the deadline.

        A node still so overloaded that its CLI times out counts as busy; one not idle after `give_up`
        seconds raises NodeStuck, which ends that backend's ladder (the other's goes on)."""
        deadline = time.monotonic() + timeout
        end = time.monotonic() + give_up
        while True:
            try:
                left = self.channels(backend)
            except LabError:  # the CLI timed out: still overloaded
                left = -1
            if left == 0:
                break
            if time.monotonic() > end:
                raise NodeStuck(f"{backend}: the node still has calls (or no CLI answer) after {give_up:.0f} s")
            if time.monotonic() > deadline:
                log(f"  {backend}: channels left after {timeout:.0f} s; hanging them up")
                try:
                    self.node(backend).cli("channel request hangup all", timeout=30)
                except LabError as exc:
                    log(f"  {backend}: {exc}")
                deadline = time.monotonic() + 10
                timeout = 10
            time.sleep(0.2)  # polling the node's channel count; there is no event for "idle"
        if backend in HOTLINE_BACKENDS:
            assert self.hotline is not None
            end = time.monotonic() + 30
            while self.hotline.health()["journal"]["pending"]:  # the journal has written everything
                if time.monotonic() > end:
                    break
                time.sleep(0.1)

    def health(self) -> dict[str, Any]:
        assert self.hotline is not None
        return self.hotline.health()

    def journal_counts(self) -> Counter[str]:
        """Journal events by name written since the last call (the call_events table, by id)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.call_events.c.id, t.call_events.c.event)
                                .where(t.call_events.c.id > self.last_event_id)).all()  # fmt: skip
        if rows:
            self.last_event_id = max(r[0] for r in rows)
        return Counter(r[1] for r in rows)

    def cpu_ticks(self) -> dict[str, int]:
        return {
            "asterisk_full": proc_ticks(self.pids["asterisk_full"]),
            "asterisk_static": proc_ticks(self.pids["asterisk_static"]),
            "hotline": proc_ticks(self.pids["hotline"]),
            "crm": proc_ticks(self.pids.get("crm")),
            "bench": int((os.times().user + os.times().system) * CLK_TCK),
            "system": system_busy_ticks(),
        }

    def start_capture(self) -> Path:
        assert self.settings is not None
        path = self.work / "profile.pcap"
        s = self.settings
        expr = (f"(tcp and host 127.0.0.1 and (port {s.effective_realtime_port} or port {s.agi_port})) or "
                f"(tcp and host {FULL_IP} and port {AMI_PORT})")  # fmt: skip
        with open(self.work / "tcpdump.log", "wb") as err:
            self.capture = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "-s", "0", "-B", "32768", "-w",
                                             str(path), expr], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=err)  # fmt: skip
        deadline = time.monotonic() + 10
        while "listening on" not in (self.work / "tcpdump.log").read_text(errors="replace"):
            if self.capture.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tcpdump did not start: " + (self.work / "tcpdump.log").read_text()[-300:])
            time.sleep(0.05)  # polling tcpdump's stderr for readiness
        return path

    def stop_capture(self) -> None:
        if self.capture is not None and self.capture.poll() is None:
            time.sleep(0.3)  # let the last packets of the step reach the capture buffer (-U flushes per packet)
            self.capture.send_signal(signal.SIGINT)
            self.capture.wait(15)
        self.capture = None

    def profile(self, path: Path, calls: int) -> dict[str, Any]:
        """Per call of the full path, from a capture of Hotline's HTTP and AGI ports and the node's AMI port:
        realtime requests by family/operation, AGI sessions and commands, AMI events and bytes."""
        assert self.settings is not None
        http, agi = self.settings.effective_realtime_port, self.settings.agi_port
        realtime: Counter[str] = Counter()
        ami_names: Counter[str] = Counter()
        agi_sessions = agi_commands = ami_events = ami_bytes = 0
        for _ts, proto, sport, dport, payload in read_pcap(path):
            if proto != 6 or not payload:
                continue
            if dport == http and payload.startswith(b"POST /realtime/"):
                realtime[payload.split(b" ", 2)[1].decode("latin-1").removeprefix("/realtime/")] += 1
            elif dport == agi:
                agi_sessions += payload.count(b"agi_request:")
            elif sport == agi:
                agi_commands += payload.count(b"\n")
            elif sport == AMI_PORT:
                ami_events += payload.count(b"\r\nEvent: ") + payload.startswith(b"Event: ")
                ami_names.update(m.decode("latin-1") for m in re.findall(rb"(?:^|\r\n)Event: ([A-Za-z]+)", payload))
                ami_bytes += len(payload)
        total = sum(realtime.values())
        return {
            "calls": calls,
            "realtime_per_call": round(total / calls, 2),
            "realtime_by_request_per_call": {k: round(v / calls, 2) for k, v in realtime.most_common()},
            "agi_sessions_per_call": round(agi_sessions / calls, 2),
            "agi_commands_per_call": round(agi_commands / calls, 2),
            "ami_events_per_call": round(ami_events / calls, 1),
            "ami_bytes_per_call": round(ami_bytes / calls),
            "ami_events_by_name_per_call": {k: round(v / calls, 2) for k, v in ami_names.most_common()},
        }

    def run_step(self, backend: str, phase: str, rate: int, seconds: float, *, profile: bool = False) -> Step:
        a = self.args
        node = self.node(backend)
        out_rate = round(rate * a.outbound_share) if a.outbound_share > 0 else 0
        in_rate = rate - out_rate
        step = Step(backend, phase, rate, in_rate, out_rate)
        self.wait_idle(backend)
        routed = backend in HOTLINE_BACKENDS
        before = self.health() if routed else None
        if routed:
            self.journal_counts()  # skip what is already written
        tag = f"{backend}-{phase}-{rate}-{time.monotonic_ns()}"
        stepdir = self.work / "sipp" / tag
        stepdir.mkdir(parents=True)
        target = f"{node.spec.address}:{SIP_PORT}"
        uas = SippRun("uas", stepdir, "calls_uas.xml", UAS_IP, cpu=a.sipp_cpu).start()
        self.sipps = [uas]
        deadline = time.monotonic() + 10
        while not uas.listening():
            if not uas.running() or uas.proc is None or uas.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the answering SIPp did not start: {(uas.dir / 'stdout.log').read_text()[-800:]}")
            time.sleep(0.02)  # polling the socket table for SIPp's bind
        uacs: list[SippRun] = []
        n_in, n_out = max(1, int(in_rate * seconds)), int(out_rate * seconds)
        self.carrier_csv(stepdir / "carrier.csv", n_in, backend)
        uacs.append(SippRun("carrier", stepdir, "calls_carrier.xml", CARRIER_IP, target=target,
                            csv=stepdir / "carrier.csv", rate=in_rate, calls=n_in, hold_ms=a.hold_ms,
                            recv_timeout_ms=a.recv_timeout_ms, cpu=a.sipp_cpu))  # fmt: skip
        if n_out:
            self.phone_csv(stepdir / "phones.csv", n_out, backend)
            uacs.append(SippRun("phones", stepdir, "calls_phone.xml", PHONES_IP, target=target,
                                csv=stepdir / "phones.csv", rate=out_rate, calls=n_out, hold_ms=a.hold_ms,
                                recv_timeout_ms=a.recv_timeout_ms, cpu=a.sipp_cpu))  # fmt: skip
        self.sipps += uacs
        capture = self.start_capture() if profile else None
        ast_pid = self.pids["asterisk_full" if backend == "full" else "asterisk_static"]
        threads0 = thread_ticks(ast_pid)
        ticks0 = self.cpu_ticks()
        t0 = time.monotonic()
        for u in uacs:
            u.start()
        for u in uacs:
            u.wait(seconds + a.recv_timeout_ms / 1000 + a.hold_ms / 1000 + 120)
        step.wall_s = time.monotonic() - t0
        ticks1 = self.cpu_ticks()
        threads1 = thread_ticks(ast_pid)
        uas.soft_stop()
        if capture is not None:
            self.stop_capture()
        self.sipps = []
        # --- SIPp: calls, failures, answers and response times
        answers: list[tuple[float, float]] = []
        for u in uacs:
            st = u.stats()
            step.calls += counter(st, "OutgoingCall(C)")
            step.ok += counter(st, "SuccessfulCall(C)")
            step.failed += counter(st, "FailedCall(C)")
            ans = u.answers()
            answers += ans
            times = [rt for _, rt in ans]
            p50, p99 = percentile(times, 50), percentile(times, 99)
            if u.name == "carrier":
                step.inbound_p50_ms, step.inbound_p99_ms = p50, p99
            else:
                step.outbound_p50_ms, step.outbound_p99_ms = p50, p99
            if counter(st, "FailedCall(C)"):
                step.errors_sample += [f"{u.name}: {e}" for e in u.error_sample()]
        step.uas_failed = counter(uas.stats(), "FailedCall(C)")
        answers.sort()
        times = [rt for _, rt in answers]
        step.p50_ms, step.p99_ms = percentile(times, 50), percentile(times, 99)
        step.max_ms = max(times) if times else None
        if len(answers) > 1:
            step.answered_per_s = (len(answers) - 1) / max(answers[-1][0] - answers[0][0], 1e-6)
        # --- CPU in % of one core over the UACs' run (SIPp from wait4 rusage)
        wall = step.wall_s
        pct = {k: 100.0 * (ticks1[k] - ticks0[k]) / CLK_TCK / wall for k in ticks0}
        pct["sipp"] = 100.0 * (sum(u.cpu_s for u in uacs) + uas.cpu_s) / wall
        known = ("asterisk_full", "asterisk_static", "hotline", "crm", "sipp", "bench")
        pct["rest"] = pct["system"] - sum(pct[k] for k in known)
        step.cpu_pct = {k: round(v, 1) for k, v in pct.items()}
        ast_key = "asterisk_full" if backend == "full" else "asterisk_static"
        top = max((threads1[t] - threads0.get(t, 0) for t in threads1), default=0)
        step.asterisk_top_thread_pct = round(100.0 * top / CLK_TCK / wall, 1)
        if step.calls:
            step.asterisk_ms_per_call = round(pct[ast_key] * 10 * wall / step.calls, 2)
            step.asterisk_top_thread_ms_per_call = round(1000.0 * top / CLK_TCK / step.calls, 2)
            if routed:
                step.hotline_ms_per_call = round(pct["hotline"] * 10 * wall / step.calls, 2)
        # --- the full path's own counters (after the node is idle and the journal written)
        idle = True
        try:
            self.wait_idle(backend)
        except NodeStuck as exc:  # the step stays measured; the next one will not start on this node
            log(f"  {backend}: {exc}; this step's per-call counters are skipped")
            idle = False
        if idle and routed and before is not None and step.calls:
            after = self.health()
            n = step.calls
            step.per_call = {
                "realtime_requests": round((after["realtime"]["requests"] - before["realtime"]["requests"]) / n, 2),
                "agi_sessions": round((after["agi"]["done"] - before["agi"]["done"]) / n, 2),
                "journal_events": round((after["journal"]["written"] - before["journal"]["written"]) / n, 2),
                "caller_lookups": round(
                    (after["caller_lookup"]["lookups"] - before["caller_lookup"]["lookups"]) / n, 2
                ),
                "crm_requests": round((after["caller_lookup"]["crm_requests"]
                                       - before["caller_lookup"]["crm_requests"]) / n, 2),
            }  # fmt: skip
            counts = self.journal_counts()
            step.journal_events = dict(counts.most_common())
            step.route_failed = counts.get("RouteFailed", 0)
            if capture is not None:
                self.checks["profile"] = self.profile(capture, n)
        # --- carried?
        why = []
        if step.calls == 0 or step.failed > 0.01 * step.calls:
            why.append(f"{step.failed} failed")
        if step.route_failed > 0.01 * max(step.calls, 1):
            why.append(f"{step.route_failed} routing fallbacks")
        if step.answered_per_s < 0.95 * rate:
            why.append(f"answered {step.answered_per_s:.1f}/s")
        if step.p99_ms is None or step.p99_ms > a.p99_limit_ms:
            why.append(f"p99 {fmt(step.p99_ms)} ms")
        step.carried = not why
        step.why_not = ", ".join(why)
        return step

    def verify_flow(self, step: Step) -> None:
        """The warm-up's journal must show what the full path is meant to do: inbound calls routed to a
        queue with a caller lookup, outside calls classified as mobile and counted against the quota."""
        with self.engine.connect() as conn:
            routed = [json.loads(d) for (d,) in conn.execute(
                sa.select(t.call_events.c.data).where(t.call_events.c.event == "Routed")).all()]  # fmt: skip
        queued = sum(1 for r in routed if r.get("action") == "queue")
        mobile = sum(
            1 for r in routed if r.get("action") == "dial" and r.get("call_type") == "mobile" and r.get("agent")
        )
        self.checks["warmup_routed"] = {"queue": queued, "outside_mobile_by_agent": mobile,
                                        "sample": [r.get("summary") for r in routed[:1] + routed[-1:]]}  # fmt: skip
        self.checks["warmup_per_call"] = step.per_call
        if not queued or (self.args.outbound_share > 0 and not mobile) or step.per_call.get("caller_lookups", 0) <= 0:
            raise RuntimeError(f"the full path did not route as expected in the warm-up: {self.checks['warmup_routed']}"
                               f", per call {step.per_call}")  # fmt: skip

    def warmup(self, backend: str) -> Step:
        a = self.args
        s = self.run_step(backend, "warmup", a.warmup_rate, a.warmup_seconds, profile=a.profile and backend == "full")
        log(f"warm-up {backend:6s}: {s.ok}/{s.calls} ok, {s.failed} failed, p50 {fmt(s.p50_ms)} ms, "
            f"per call {s.per_call}")  # fmt: skip
        if s.ok == 0:
            raise RuntimeError(f"no call completed on the {backend} node; SIPp errors: {s.errors_sample}")
        if backend == "full":
            self.verify_flow(s)
        return s

    def ladder(self, backends: Sequence[str]) -> list[Step]:
        """The rates in turn, each backend once per rate (interleaved: both see the same machine state); a
        backend leaves the ladder after --stop-after steps in a row it did not carry."""
        a = self.args
        steps: list[Step] = []
        misses = dict.fromkeys(backends, 0)
        for rate in a.rates:
            active = [b for b in backends if misses[b] < a.stop_after]
            if not active:
                break
            for backend in active:
                try:
                    s = self.run_step(backend, "step", rate, a.step_seconds)
                except NodeStuck as exc:
                    log(f"{backend:6s} {rate:4d}/s: not run, {exc}; {backend} leaves the ladder")
                    misses[backend] = a.stop_after
                    continue
                disturbed: list[float] = []
                # The machine is shared: a step during which other work took more than --max-rest % of a CPU is
                # measured again (at most --retries times); the last measurement counts, the others are noted.
                while s.cpu_pct.get("rest", 0.0) > a.max_rest and len(disturbed) < a.retries:
                    disturbed.append(s.cpu_pct["rest"])
                    log(f"{backend:6s} {rate:4d}/s: other work used {s.cpu_pct['rest']:.0f}% of a CPU; measuring again")
                    try:
                        s = self.run_step(backend, "step", rate, a.step_seconds)
                    except NodeStuck as exc:  # the disturbed measurement is kept
                        log(f"{backend:6s} {rate:4d}/s: not measured again, {exc}; {backend} leaves the ladder")
                        misses[backend] = a.stop_after - 1  # and this step, counted below, ends it if not carried
                        break
                s.disturbed_attempts = disturbed
                steps.append(s)
                misses[backend] = 0 if s.carried else misses[backend] + 1
                ast = s.cpu_pct.get("asterisk_full" if backend == "full" else "asterisk_static")
                log(f"{backend:6s} {rate:4d}/s offered: {s.answered_per_s:6.1f}/s answered, {s.ok}/{s.calls} ok, "
                    f"{s.failed} failed, p50 {fmt(s.p50_ms)} p99 {fmt(s.p99_ms)} ms, ast {fmt(ast)}% (top thread "
                    f"{fmt(s.asterisk_top_thread_pct)}%) hotline {fmt(s.cpu_pct.get('hotline'))}% sipp "
                    f"{fmt(s.cpu_pct.get('sipp'))}% rest {fmt(s.cpu_pct.get('rest'))}%"
                    + ("" if s.carried else f"  NOT CARRIED ({s.why_not})"))  # fmt: skip
        return steps

    def run(self) -> list[Step]:
        steps = [self.warmup(b) for b in BACKENDS]
        steps += self.ladder(BACKENDS)
        if self.args.hybrid:
            log("what-if: the node on 127.0.0.62 restarts with static PJSIP objects and queues, routed by Hotline")
            self.start_second_node(hybrid=True)
            self.register_phones(("hybrid",))
            steps.append(self.warmup("hybrid"))
            steps += self.ladder(("hybrid",))
        return steps

    # ------------------------------------------------------------------ cleanup
    def cleanup(self) -> None:
        for s in self.sipps:
            with contextlib.suppress(Exception):
                s.kill()
        with contextlib.suppress(Exception):
            if self.capture is not None and self.capture.poll() is None:
                self.capture.kill()
                self.capture.wait(5)
        for node in (self.full, self.static):
            if node is not None:
                try:
                    lab.stop_node(node)
                except Exception as exc:
                    log(f"could not stop {node.name} ({node.spec.address}): {exc}")
        for proc in self.children.values():
            with contextlib.suppress(Exception):
                proc.wait(5)
        if self.hotline is not None:
            with contextlib.suppress(Exception):
                self.hotline.stop()
        if self.crm is not None:
            with contextlib.suppress(Exception):
                self.crm.stop()
        if self.engine is not None:
            with contextlib.suppress(Exception):
                self.engine.dispose()
        if self.pg_database:
            try:
                admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)'))
                admin.dispose()
            except Exception as exc:
                log(f"could not drop database {self.pg_database}: {exc}")
        if self.args.keep_workdir:
            log(f"work folder kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- report
def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summarize(steps: list[Step], args: argparse.Namespace) -> dict[str, Any]:
    measured = [s for s in steps if s.phase == "step"]
    out: dict[str, Any] = {}
    for backend in (*BACKENDS, "hybrid"):
        rows = [s for s in measured if s.backend == backend]
        carried = [s for s in rows if s.carried]
        best = max(carried, key=lambda s: s.offered_rate, default=None)
        top = max((s.offered_rate for s in rows), default=None)
        out[backend] = {
            "max_sustained_cps": round(best.answered_per_s, 1) if best else None,
            "at_offered_rate": best.offered_rate if best else None,
            "p99_ms_at_max": best.p99_ms if best else None,
            "asterisk_ms_per_call_at_max": best.asterisk_ms_per_call if best else None,
            # a backend that carried the highest rate it was offered was never pushed to its limit
            "saturated": bool(rows) and not any(s.carried and s.offered_rate == top for s in rows),
        }
        if not rows:
            del out[backend]
    f, s = out["full"], out["static"]
    ratio = (
        f["max_sustained_cps"] / s["max_sustained_cps"] if f["max_sustained_cps"] and s["max_sustained_cps"] else None
    )
    verdict: bool | None = None
    if ratio is not None:
        if f["saturated"] and s["saturated"]:
            verdict = ratio >= TARGET_RATIO
        elif f["saturated"] and ratio < TARGET_RATIO:  # static's figure is a lower bound: the true ratio is lower
            verdict = False
        elif s["saturated"] and ratio >= TARGET_RATIO:  # full's figure is a lower bound
            verdict = True
    elif f["max_sustained_cps"] is None and s["max_sustained_cps"]:
        verdict = False
    out["ratio_full_over_static"] = round(ratio, 3) if ratio else None
    hy = out.get("hybrid", {}).get("max_sustained_cps")
    if hy:
        out["ratio_hybrid_over_static"] = round(hy / s["max_sustained_cps"], 3) if s["max_sustained_cps"] else None
        out["ratio_full_over_hybrid"] = round(f["max_sustained_cps"] / hy, 3) if f["max_sustained_cps"] else None
    out["target"] = TARGET_RATIO
    out["pass"] = verdict
    # Per-call costs at a rate both carried (the highest such): where the full path spends its extra time.
    both = [r for r in sorted({x.offered_rate for x in measured})
            if all(any(x.backend == b and x.offered_rate == r and x.carried for x in measured)
                   for b in BACKENDS)]  # fmt: skip
    if both:
        r = both[-1]
        sf = next(x for x in measured if x.backend == "full" and x.offered_rate == r)
        ss = next(x for x in measured if x.backend == "static" and x.offered_rate == r)
        out["per_call_at_common_rate"] = {
            "rate": r,
            "asterisk_ms_full": sf.asterisk_ms_per_call,
            "asterisk_ms_static": ss.asterisk_ms_per_call,
            "hotline_ms_full": sf.hotline_ms_per_call,
            "p50_ms_full": sf.p50_ms, "p50_ms_static": ss.p50_ms,
            "p99_ms_full": sf.p99_ms, "p99_ms_static": ss.p99_ms,
        }  # fmt: skip
    out["disturbed_steps"] = [
        f"{x.backend} {x.phase} {x.offered_rate}/s" for x in steps if x.cpu_pct.get("rest", 0) > args.max_rest
    ]
    return out


def print_report(steps: list[Step], summary: dict[str, Any], checks: dict[str, Any], args: argparse.Namespace) -> None:
    head = (f"{'backend':7s} {'phase':6s} {'offer/s':>7s} {'calls':>6s} {'fail':>5s} {'done/s':>7s} {'p50ms':>7s} "
            f"{'p99ms':>7s} {'in99':>6s} {'out99':>6s} {'ast%':>6s} {'top%':>5s} {'hot%':>6s} {'crm%':>5s} "
            f"{'sipp%':>6s} {'rest%':>6s} {'astms':>6s} {'hotms':>6s} {'rt/c':>5s} {'jr/c':>5s}  carried")  # fmt: skip
    print()
    print(f"Calls through one node: {args.queues} queues x {args.agents_per_queue} logged-in agents, "
          f"{args.out_phones} agents' phones dialling out ({args.outbound_share:.0%} of the calls), hold "
          f"{args.hold_ms} ms, {args.step_seconds:g} s per step, no RTP; full = Hotline (realtime, FastAGI routing "
          f"with caller lookup and limits, AMI journal), static = the same flow in static config files.")  # fmt: skip
    print("done/s = answered calls per second (SIPp 200 OKs, first to last); p50/p99 = INVITE -> 200 OK "
          "(in99/out99: carrier calls / agents' outside calls);\nCPU in % of one core (2 cores = 200%): ast = "
          "the node under load, top = its busiest thread, hot = Hotline, sipp = all three SIPp, rest = the "
          "machine minus all of these; "
          "astms/hotms = CPU ms per call;\nrt/c, jr/c = realtime requests and journal events per call "
          "(full).")  # fmt: skip
    print(head)
    print("-" * len(head))
    for s in sorted(steps, key=lambda s: (s.phase != "warmup", s.offered_rate, s.backend)):
        ast = s.cpu_pct.get("asterisk_full" if s.backend == "full" else "asterisk_static")
        print(f"{s.backend:7s} {s.phase:6s} {s.offered_rate:7d} {s.calls:6d} {s.failed:5d} {s.answered_per_s:7.1f} "
              f"{fmt(s.p50_ms):>7s} {fmt(s.p99_ms):>7s} {fmt(s.inbound_p99_ms, 0):>6s} {fmt(s.outbound_p99_ms, 0):>6s} "
              f"{fmt(ast):>6s} {fmt(s.asterisk_top_thread_pct):>5s} {fmt(s.cpu_pct.get('hotline')):>6s} "
              f"{fmt(s.cpu_pct.get('crm')):>5s} "
              f"{fmt(s.cpu_pct.get('sipp')):>6s} {fmt(s.cpu_pct.get('rest')):>6s} "
              f"{fmt(s.asterisk_ms_per_call, 2):>6s} {fmt(s.hotline_ms_per_call, 2):>6s} "
              f"{fmt(s.per_call.get('realtime_requests'), 1):>5s} {fmt(s.per_call.get('journal_events'), 1):>5s}  "
              f"{'yes' if s.carried else 'no: ' + s.why_not}")  # fmt: skip
    f, st = summary["full"], summary["static"]
    print()
    print(
        f"highest sustained rate: full {f['max_sustained_cps']} calls/s (offered {f['at_offered_rate']}/s), "
        f"static {st['max_sustained_cps']} calls/s (offered {st['at_offered_rate']}/s)"
    )
    print(
        f"  ratio full/static = {fmt(summary['ratio_full_over_static'], 3)}x (target >= {TARGET_RATIO}): "
        f"{ {True: 'PASS', False: 'FAIL', None: 'INCONCLUSIVE'}[summary['pass']] }"
    )
    pc = summary.get("per_call_at_common_rate")
    if pc:
        print(f"  at {pc['rate']}/s (highest rate both carried): Asterisk CPU per call full "
              f"{pc['asterisk_ms_full']} ms vs static {pc['asterisk_ms_static']} ms, Hotline {pc['hotline_ms_full']} "
              f"ms; p50 {fmt(pc['p50_ms_full'])} vs {fmt(pc['p50_ms_static'])} ms, p99 {fmt(pc['p99_ms_full'])} vs "
              f"{fmt(pc['p99_ms_static'])} ms")  # fmt: skip
    prof = checks.get("profile")
    if prof:
        print(f"  full path per call (warm-up capture, {prof['calls']} calls): {prof['realtime_per_call']} realtime "
              f"requests {prof['realtime_by_request_per_call']}, {prof['agi_sessions_per_call']} AGI sessions with "
              f"{prof['agi_commands_per_call']} commands, {prof['ami_events_per_call']} AMI events "
              f"({prof['ami_bytes_per_call']} bytes)")  # fmt: skip
    h = summary.get("hybrid")
    if h:
        print(f"what-if hybrid (static PJSIP objects and queues, Hotline's FastAGI routing and AMI journal): "
              f"{h['max_sustained_cps']} calls/s (offered {h['at_offered_rate']}/s); hybrid/static = "
              f"{fmt(summary.get('ratio_hybrid_over_static'), 3)}x, full/hybrid = "
              f"{fmt(summary.get('ratio_full_over_hybrid'), 3)}x")  # fmt: skip
    for b in (*BACKENDS, "hybrid"):
        if b in summary and not summary[b]["saturated"]:
            print(f"note: {b} carried the highest rate it was offered; its figure is a lower bound (raise --rates)")
    if summary["disturbed_steps"]:
        print(f"warning: {len(summary['disturbed_steps'])} step(s) ran while other work used > {args.max_rest:g}% "
              f"of a CPU (rest%): {', '.join(summary['disturbed_steps'])}")  # fmt: skip
    print(f"RESULT: { {True: 'PASS', False: 'FAIL', None: 'INCONCLUSIVE'}[summary['pass']] }")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    rates = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    ap.add_argument("--rates", type=rates,
                    default=[5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 140, 160, 180, 200, 240, 280],
                    help="offered calls/s, one step each per backend, interleaved (comma separated)")  # fmt: skip
    ap.add_argument("--step-seconds", type=float, default=12.0, help="length of each step at its rate")
    ap.add_argument("--stop-after", type=int, default=2, help="a backend stops after this many steps in a row "
                    "not carried")  # fmt: skip
    ap.add_argument("--warmup-rate", type=int, default=5, help="rate of the warm-up step (checks the call flow)")
    ap.add_argument("--warmup-seconds", type=float, default=6.0, help="length of the warm-up step")
    ap.add_argument("--hold-ms", type=int, default=1000, help="talk time after the answer, before the BYE")
    ap.add_argument("--outbound-share", type=float, default=0.2, help="share of the calls placed by agents' "
                    "phones to outside numbers (limits: classification + quota)")  # fmt: skip
    ap.add_argument("--queues", type=int, default=8, help="queues (one DID each)")
    ap.add_argument("--agents-per-queue", type=int, default=40, help="logged-in agents (phones) per queue")
    ap.add_argument("--out-phones", type=int, default=20, help="agents' phones placing outside calls")
    ap.add_argument("--p99-limit-ms", type=float, default=500.0, help="a step with a higher p99 is not carried")
    ap.add_argument("--recv-timeout-ms", type=int, default=10_000, help="SIPp: a call fails without answer")
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                    help="Hotline's database: SQLite in the work folder or a fresh PostgreSQL database")  # fmt: skip
    ap.add_argument(
        "--no-crm", dest="crm", action="store_false", help="no HTTP CRM stub (caller lookup: database only)"
    )
    ap.add_argument("--crm-delay-ms", type=float, default=2.0, help="the CRM stub's answer delay")
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="no packet capture of the full path's warm-up (realtime/AGI/AMI per call)")  # fmt: skip
    ap.add_argument("--hotline-cpu", type=int, default=None, help="CPU Hotline is pinned to (default: last)")
    ap.add_argument("--sipp-cpu", type=int, default=None, help="pin SIPp to this CPU (default: not pinned)")
    ap.add_argument("--node-cpu", type=int, default=None,
                    help="pin both nodes to this CPU (with --sipp-cpu and --hotline-cpu on the other one: the node "
                         "alone on a core, as if Hotline and the load ran elsewhere)")  # fmt: skip
    ap.add_argument(
        "--max-rest",
        type=float,
        default=25.0,
        help="a step during which other processes used more than this %% of a CPU is measured again",
    )
    ap.add_argument("--retries", type=int, default=2, help="how many times a disturbed step is measured again")
    ap.add_argument("--hybrid", action="store_true",
                    help="what-if after the comparison: the 127.0.0.62 node with static PJSIP objects and "
                         "queues but Hotline's routing and journal (the full path minus res_config_curl)")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 short steps, fewer agents")
    ap.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    ap.add_argument("--keep-workdir", action="store_true", help="keep the temporary folder (logs, SIPp files)")
    ap.add_argument("--serve-crm", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.rates, args.step_seconds, args.warmup_seconds = [10, 20, 40], 4.0, 4.0
        args.queues, args.agents_per_queue, args.out_phones = 4, 20, 10
    if not 0 <= args.outbound_share < 1:
        ap.error("--outbound-share must be in [0, 1)")
    return args


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_crm:
        asyncio.run(_crm_serve(0, args.crm_delay_ms / 1000.0))
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C must clean up even when the shell started us with SIGINT ignored (a background job)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    load_before = os.getloadavg()
    bench = CallBench(args)
    started = time.time()
    try:
        log(f"work folder {bench.work}")
        bench.setup()
        steps = bench.run()
        summary = summarize(steps, args)
        print_report(steps, summary, bench.checks, args)
        write_results(args.json, {
            "benchmark": "calls/s through one node: full Hotline path vs static dialplan and config",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "duration_s": round(time.time() - started, 1),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "environment": {**bench.info, "hotline_cpu": bench.hotline_cpu},
            "checks": bench.checks,
            "summary": summary,
            "steps": [asdict(s) for s in steps],
        }, load_before)  # fmt: skip
        log(f"results written to {args.json}")
        return 0 if summary["pass"] else 1
    except KeyboardInterrupt:
        log("interrupted; stopping everything this run started")
        return 130
    finally:
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
