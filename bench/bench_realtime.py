#!/usr/bin/env python3
"""Realtime benchmark (issue 2): Hotline's res_config_curl backend against Asterisk's own res_config_pgsql.

One run, side by side, everything set up and torn down here (see bench/REALTIME.md):

- a temporary folder with a Hotline TOML (lab instance "bench-realtime", its own ports, SQLite) and N phones
  created with `ConfigRepository.add_phone` (names 30000.., known passwords);
- a fresh PostgreSQL database `hotline_bench_<random>` on 127.0.0.1:5432 with the Asterisk realtime tables
  ps_endpoints / ps_auths / ps_aors / ps_contacts (Asterisk alembic column names), filled with the very rows
  Hotline serves (`realtime_backend.endpoint_row/auth_row/aor_row` over the same snapshot);
- two Asterisk 22 nodes from the lab root: node A (127.0.0.61) renders normally (curl -> Hotline), node B
  (127.0.0.62) is the same rendered config with the four PJSIP families mapped to `pgsql` instead;
- Hotline as its own process (`python -m hotline --config <toml> serve`) pinned to one CPU with taskset;
  PostgreSQL is the host's server as it runs (also a separate process);
- SIPp REGISTER storms with digest auth (bench/sipp/register_storm.xml, one phone per call from an injection
  file) at the same fixed rates against each node, interleaved step by step.

Per step it records successful REGISTERs/s and p50/p99 of the whole registration (from a tcpdump of the SIP
packets, microsecond timestamps), failures (SIPp), the backend's own service time per realtime request (same
capture, on the backend's TCP connection), realtime operations/s (Hotline: delta of GET /health
`realtime.requests`; PostgreSQL: delta of `pg_stat_database.xact_commit` of the bench database, since
res_config_pgsql runs each query as its own autocommit transaction), and CPU use of Asterisk, the backend,
SIPp and the rest of the machine from /proc.  Then it prints the table, the Hotline/pgsql ratios, PASS/FAIL
against the 1.0x target and writes bench/results/realtime.json.

    .venv/bin/python bench/bench_realtime.py            # default: 500 phones, 50..800 REGISTER/s, ~4 min
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from hotline.asterisk import lab  # noqa: E402
from hotline.asterisk.realtime_backend import aor_row, auth_row, endpoint_row  # noqa: E402
from hotline.db.engine import create_engine_for  # noqa: E402
from hotline.db.migrate import upgrade  # noqa: E402
from hotline.db.repositories import ConfigRepository  # noqa: E402
from hotline.settings import Settings, load_settings  # noqa: E402
from tests.e2e.harness import HotlineProcess, wait_for  # noqa: E402

SIPP_SCENARIO = Path(__file__).resolve().parent / "sipp" / "register_storm.xml"
RESULTS = Path(__file__).resolve().parent / "results" / "realtime.json"
LAB_INSTANCE = "bench-realtime"  # its own node folders: never collides with e2e or another bench run
NODE_ADDRESS_BASE = "127.0.0.61"  # node A = .61 (curl -> Hotline), node B = .62 (res_config_pgsql)
SIPP_IP = "127.0.0.1"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_FAMILIES = ("ps_endpoints", "ps_auths", "ps_aors", "ps_contacts")
MODULE_DIR = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Column types after Asterisk's alembic scripts (contrib/ast-db-manage/config/versions): ids and strings as
# there (widened to 255 where later migrations widened them), booleans as the `ast_bool_values` enum, other
# enums (dtmf_mode, auth_type) as VARCHAR.  A column Hotline serves that is not listed gets VARCHAR(255).
BOOL = "ast_bool_values"
AST_BOOL_VALUES = ("0", "1", "off", "on", "false", "true", "no", "yes")
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "ps_endpoints": {
        "id": "VARCHAR(255) NOT NULL", "transport": "VARCHAR(40)", "aors": "VARCHAR(2048)",
        "auth": "VARCHAR(255)", "context": "VARCHAR(40)", "disallow": "VARCHAR(200)", "allow": "VARCHAR(200)",
        "callerid": "VARCHAR(40)", "direct_media": BOOL, "rtp_symmetric": BOOL, "force_rport": BOOL,
        "rewrite_contact": BOOL, "send_rpid": BOOL, "send_pai": BOOL, "trust_id_outbound": BOOL,
        "trust_id_inbound": BOOL, "dtmf_mode": "VARCHAR(40)",
    },
    "ps_auths": {
        "id": "VARCHAR(255) NOT NULL", "auth_type": "VARCHAR(40)", "username": "VARCHAR(40)",
        "realm": "VARCHAR(255)", "password": "VARCHAR(80)", "md5_cred": "VARCHAR(40)",
        "password_digest": "VARCHAR(1024)",
    },
    "ps_aors": {
        "id": "VARCHAR(255) NOT NULL", "max_contacts": "INTEGER", "remove_existing": BOOL,
        "qualify_frequency": "INTEGER", "default_expiration": "INTEGER", "maximum_expiration": "INTEGER",
        "minimum_expiration": "INTEGER",
    },
    # asterisk-reference.md §1.5: the registered contact fields (location.c); all sent by sorcery's /store.
    "ps_contacts": {
        "id": "VARCHAR(255) NOT NULL", "uri": "VARCHAR(511)", "path": "TEXT", "expiration_time": "BIGINT",
        "qualify_frequency": "INTEGER", "qualify_timeout": "FLOAT", "qualify_2xx_only": BOOL,
        "authenticate_qualify": BOOL, "outbound_proxy": "VARCHAR(256)", "user_agent": "VARCHAR(255)",
        "endpoint": "VARCHAR(255)", "reg_server": "VARCHAR(255)", "via_addr": "VARCHAR(40)",
        "via_port": "INTEGER", "call_id": "VARCHAR(255)", "prune_on_boot": BOOL,
    },
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_base(ip: str, span: int) -> int:
    """A port p such that p .. p+span-1 are all free for UDP on `ip` (SIPp binds SIP and media ports)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
            base = int(s.getsockname()[1])
        if base + span >= 65000:
            continue
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + span):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(u)
                u.bind((ip, p))
            return base
        except OSError:
            continue
        finally:
            for u in socks:
                u.close()
    raise RuntimeError(f"no {span} consecutive free UDP ports on {ip}")


def proc_ticks(pid: int | None) -> int:
    """utime+stime of a live process (all its threads), in clock ticks; 0 if it is gone."""
    if pid is None:
        return 0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def system_busy_ticks() -> int:
    """Busy CPU ticks of the whole machine (all CPUs) from /proc/stat."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(vals) - vals[3] - vals[4]  # minus idle and iowait


def postgres_ticks() -> int:
    """CPU of every process named `postgres` on the host (the cluster: postmaster, backends, writers)."""
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if (d / "comm").read_text().strip() == "postgres":
                total += proc_ticks(int(d.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100)
    return ordered[int(rank) - 1]


def settle(read: Callable[[], int], quiet: float, deadline: float) -> tuple[int, bool]:
    """Poll a counter until it has not changed for `quiet` seconds (or `deadline` seconds passed)."""
    end = time.monotonic() + deadline
    last = read()
    changed = time.monotonic()
    while time.monotonic() - changed < quiet:
        if time.monotonic() > end:
            return last, False
        time.sleep(0.1)  # polling the counter; the stats collector gives no event to wait on
        now = read()
        if now != last:
            last, changed = now, time.monotonic()
    return last, True


def pg_escape_chunk(value: str) -> str:
    """res_config_pgsql splits column values on ';' and decodes '^XX': escape both in one value."""
    return value.replace("^", "^5E").replace(";", "^3B")


def pg_rows(rows: Iterable[tuple[tuple[str, str], ...]]) -> tuple[list[str], list[dict[str, str]]]:
    """Hotline's rows as PostgreSQL rows: a column named twice (password_digest) becomes one column with
    the values joined by ';' (res_config_pgsql turns them back into repeated variables, in order)."""
    columns: list[str] = []
    out: list[dict[str, str]] = []
    for row in rows:
        values: dict[str, list[str]] = {}
        for k, v in row:
            if k not in columns:
                columns.append(k)
            values.setdefault(k, []).append(pg_escape_chunk(v))
        out.append({k: ";".join(vs) for k, vs in values.items()})
    return columns, out


# ---------------------------------------------------------------------------------------------- processes
@dataclass
class PinnedHotline(HotlineProcess):
    """`hotline serve` as its own process, pinned to one CPU with taskset (as in production)."""

    cpu: int = 0

    def start(self) -> None:
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(self.cpu), sys.executable, "-m", "hotline", "--config", str(self.config_file),
                 "serve"],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, cwd=str(REPO),
            )  # fmt: skip
        wait_for(self.health, 60, "Hotline's /health")

    def requests(self) -> int:
        return int(self.health()["realtime"]["requests"])


def start_prepared_node(node: lab.LabNode, children: dict[int, subprocess.Popen[bytes]],
                        boot_timeout: float = 60) -> int:  # fmt: skip
    """Start a node whose config files are already written (lab.start_node would re-render them).

    Same steps as hotline.asterisk.lab.start_node: `asterisk -C <conf> -f -n` in the chroot, pid file, then
    poll `core waitfullybooted` until it answers or the deadline passes."""
    sock = node.host_dir / "run" / "asterisk.ctl"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    node.console_log.parent.mkdir(parents=True, exist_ok=True)
    with open(node.console_log, "ab") as out:
        proc = subprocess.Popen(node._cmd("-f", "-n"), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    children[proc.pid] = proc
    node.pidfile.write_text(str(proc.pid))

    def booted() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"node {node.name} exited with {proc.returncode}; see {node.console_log}")
        if not sock.exists():
            return False
        try:
            return "fully booted" in node.cli("core waitfullybooted", timeout=5).lower()
        except Exception:
            return False

    deadline = time.monotonic() + boot_timeout
    while not booted():
        if time.monotonic() > deadline:
            raise RuntimeError(f"node {node.name} did not boot in {boot_timeout:.0f} s; see {node.console_log}")
        time.sleep(0.1)  # polling the node's control socket for readiness
    return proc.pid


def pgsql_node_files(files: dict[str, str], dbname: str) -> dict[str, str]:
    """Node B: node A's rendered config with the PJSIP families on res_config_pgsql instead of curl."""
    out = dict(files)
    ext = ["[settings]"] + [f"{fam} => pgsql,general,{fam}" for fam in PG_FAMILIES]
    # queues/queue_members are not part of a REGISTER: node B leaves them static (it never calls Hotline).
    out["extconfig.conf"] = "\n".join(ext) + "\n"
    out["res_pgsql.conf"] = (
        f"[general]\ndbhost=127.0.0.1\ndbport=5432\ndbname={dbname}\ndbuser=postgres\nrequirements=warn\n"
    )
    mods = out["modules.conf"].splitlines()
    at = next(i for i, line in enumerate(mods) if line.strip() == "load = res_config_curl.so")
    mods.insert(at + 1, "load = res_config_pgsql.so")
    mods.append("require = res_config_pgsql.so")
    out["modules.conf"] = "\n".join(mods) + "\n"
    return out


def cached_sorcery(text: str) -> str:
    """--sorcery-cache: a memory cache in front of the realtime endpoint/auth/aor wizards (contacts stay
    uncached: asterisk-reference.md §1.5 calls them a bad fit)."""
    out = []
    for line in text.splitlines():
        for obj in ("endpoint", "auth", "aor"):
            if line.replace(" ", "").startswith(f"{obj}=realtime,"):
                out.append(f"{obj}/cache = memory_cache,object_lifetime_stale=300,object_lifetime_maximum=1800,"
                           "expire_on_reload=yes")  # fmt: skip
        out.append(line)
    return "\n".join(out) + "\n"


def write_files(node: lab.LabNode, files: dict[str, str]) -> None:
    for name, text in files.items():
        (node.host_dir / "etc" / name).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------- results
@dataclass
class Step:
    backend: str
    phase: str  # "warmup" or "step"
    offered_rate: int
    calls: int
    ok: int = 0
    failed: int = 0
    sipp_rc: int | None = None
    wall_s: float = 0.0
    active_s: float = 0.0  # first -> last completed registration (packet capture)
    register_per_s: float = 0.0
    lookups: int = 0
    lookups_settled: bool = True
    lookups_per_s: float = 0.0
    lookups_per_register: float | None = None
    pg_rollbacks: int | None = None
    pcap_dropped: int | None = None
    service_requests: int = 0  # realtime requests seen on the backend connection(s)
    service_p50_ms: float | None = None  # backend service time per request (packet capture)
    service_p99_ms: float | None = None
    service_share: float | None = None  # sum of service times / sum of registration times
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    cpu_pct: dict[str, float] = field(default_factory=dict)
    errors_sample: list[str] = field(default_factory=list)


class Sipp:
    """One SIPp REGISTER storm: `calls` registrations at `rate`/s, each with the next phone of the CSV."""

    def __init__(self, workdir: Path, target: str, csv: Path, rate: int, calls: int, recv_timeout_ms: int,
                 cpu: int | None) -> None:  # fmt: skip
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = base = free_udp_base(SIPP_IP, 4)
        cmd = ["sipp", target, "-sf", str(SIPP_SCENARIO), "-inf", str(csv), "-i", SIPP_IP, "-p", str(base),
               "-mi", SIPP_IP, "-mp", str(base + 2), "-r", str(rate), "-rp", "1000", "-m", str(calls),
               "-recv_timeout", str(recv_timeout_ms), "-nd", "-timeout", f"{int(calls / rate + 60)}s", "-nostdin",
               "-trace_stat", "-stf", "stats.csv", "-fd", "1", "-timer_resol", "1",
               "-trace_err", "-error_file", "errors.log", "-trace_screen", "-screen_file", "screen.log"]  # fmt: skip
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.cmd = cmd
        self.proc: subprocess.Popen[bytes] | None = None
        self.cpu_s = 0.0

    def start(self) -> None:
        with open(self.dir / "stdout.log", "wb") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)  # fmt: skip

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
                raise RuntimeError(f"SIPp did not finish in {timeout:.0f} s: {' '.join(self.cmd)}")
            time.sleep(0.02)  # polling the child for exit (wait4 with rusage has no timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stats(self) -> dict[str, str]:
        """The last line of SIPp's statistics file (cumulative counters), by column name."""
        path = self.dir / "stats.csv"
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        header = lines[0].rstrip(";").split(";")
        last = lines[-1].rstrip(";").split(";")
        return dict(zip(header, last, strict=False))

    def error_sample(self, n: int = 3) -> list[str]:
        path = self.dir / "errors.log"
        if not path.exists():
            return []
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        return lines[:n]


class SipCapture:
    """tcpdump on loopback during one SIPp run, with microsecond kernel timestamps:

    - the SIP packets between SIPp and the node: per-call registration times (SIPp's own response-time
      clock ticks in whole milliseconds; its RTD values came out in 4 ms steps here);
    - the node's TCP connections to its backend (`backend_port`: Hotline's HTTP port, or the client port of
      res_config_pgsql's PostgreSQL connection): the backend's service time per realtime request, from a
      request's first packet to the first packet of the answer.  What a registration takes beyond those is
      spent in Asterisk (and in the network stack)."""

    def __init__(self, path: Path, node_ip: str, sipp_port: int, backend_port: int | None,
                 server_port: int | None) -> None:  # fmt: skip
        self.path = path
        self.sipp_port = sipp_port
        self.server_port = server_port  # the backend's listening port (requests go to it)
        self.err = path.with_suffix(".tcpdump.log")
        self.node_ip = node_ip
        expr = f"(udp and host {node_ip} and port {sipp_port})"
        if backend_port:
            expr += f" or (tcp and host 127.0.0.1 and port {backend_port})"
        self.cmd = ["tcpdump", "-i", "lo", "-n", "--immediate-mode", "-U", "-s", "4096", "-B", "16384",
                    "-w", str(path), expr]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.dropped: int | None = None
        self.ticks = 0
        self._scanned = self._marks = self._carry = 0

    def start(self) -> None:
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        wait_for(lambda: self._check() and "listening on" in self.err.read_text(errors="replace"), 10,
                 "tcpdump to listen", interval=0.02)  # fmt: skip
        self._mark(1)  # the capture is live once it has written our first marker

    MARKER = b"hotline-bench-capture-marker"

    def _mark(self, count: int) -> None:
        """Send a marker datagram the filter matches; wait until the file holds `count` markers, so every
        packet before it has been written too."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.sendto(self.MARKER, (self.node_ip, self.sipp_port))
        wait_for(lambda: self._check() and self._markers() >= count, 10, "tcpdump to write its marker",
                 interval=0.01)  # fmt: skip

    def _markers(self) -> int:
        """Markers in the capture file so far (reads only what was added since the last call)."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as fh:
            fh.seek(max(0, self._scanned - len(self.MARKER)))
            chunk = fh.read()
        if chunk:
            self._marks += chunk.count(self.MARKER) - self._carry
            self._carry = chunk[-len(self.MARKER) :].count(self.MARKER) if len(chunk) >= len(self.MARKER) else 0
            self._scanned = max(0, self._scanned - len(self.MARKER)) + len(chunk)
        return self._marks

    def _check(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"tcpdump exited: {self.err.read_text(errors='replace')[-500:]}")
        return True

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.ticks = proc_ticks(self.proc.pid)
        self._mark(2)  # everything SIPp exchanged is on disk
        self.proc.send_signal(signal.SIGINT)  # tcpdump prints its counters
        self.proc.wait(15)
        m = re.search(r"(\d+) packets? dropped by kernel", self.err.read_text(errors="replace"))
        self.dropped = int(m.group(1)) if m else None

    def registrations(self) -> tuple[list[tuple[float, float]], int]:
        """([(first REGISTER sent, 200 to the authenticated REGISTER received)] per registered call, calls
        seen), in epoch seconds from the capture."""
        starts: dict[str, float] = {}
        ends: dict[str, float] = {}
        for ts, proto, sport, _dport, payload in read_pcap(self.path):
            if proto != 17:
                continue
            head, _, _ = payload.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            fields = {}
            for ln in lines[1:]:
                name, sep, value = ln.partition(b":")
                if sep:
                    fields[name.strip().lower()] = value.strip()
            call_id = (fields.get(b"call-id") or fields.get(b"i") or b"").decode("latin-1")
            cseq = fields.get(b"cseq", b"")
            if sport == self.sipp_port and lines[0].startswith(b"REGISTER ") and cseq.startswith(b"1 "):
                starts.setdefault(call_id, ts)
            elif sport != self.sipp_port and lines[0].startswith(b"SIP/2.0 200") and cseq.startswith(b"2 "):
                ends.setdefault(call_id, ts)
        done = [(starts[c], ends[c]) for c in ends if c in starts]
        return sorted(done), len(starts)

    def service_times(self, is_request: Callable[[bytes], bool]) -> list[float]:
        """Backend service time (ms) of every request on the backend TCP connections (no pipelining: curl
        and libpq wait for each answer)."""
        pending: dict[int, float] = {}  # client port -> time of the request's first packet
        out: list[float] = []
        for ts, proto, sport, dport, payload in read_pcap(self.path):
            if proto != 6 or not payload:
                continue
            if dport == self.server_port:
                if sport not in pending and is_request(payload):
                    pending[sport] = ts
            elif sport == self.server_port and dport in pending:
                out.append((ts - pending.pop(dport)) * 1000.0)
        return out


def read_pcap(path: Path) -> Iterable[tuple[float, int, int, int, bytes]]:
    """(timestamp, IP protocol, source port, destination port, payload) of every IPv4 UDP/TCP packet of a
    classic pcap file."""
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise RuntimeError(f"{path}: not a pcap file")
    frac = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    linktype = struct.unpack(end + "I", data[20:24])[0]
    link_len = {0: 4, 1: 14, 113: 16, 276: 20}.get(linktype)
    if link_len is None:
        raise RuntimeError(f"{path}: link type {linktype} not handled")
    off = 24
    while off + 16 <= len(data):
        sec, sub, caplen, _ = struct.unpack(end + "IIII", data[off : off + 16])
        pkt = data[off + 16 : off + 16 + caplen]
        off += 16 + caplen
        ip = pkt[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] not in (6, 17):
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        seg = ip[ihl:total]
        if len(seg) < 8:
            continue
        sport, dport = struct.unpack("!HH", seg[:4])
        if ip[9] == 17:
            yield sec + sub * frac, 17, sport, dport, seg[8:]
        elif len(seg) >= 20:
            yield sec + sub * frac, 6, sport, dport, seg[(seg[12] >> 4) * 4 :]


# ---------------------------------------------------------------------------------------------- the bench
class RealtimeBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="hotline-bench-realtime-"))
        self.dbname = f"hotline_bench_{secrets.token_hex(4)}"
        self.db_created = False
        self.settings: Settings | None = None
        self.hotline: PinnedHotline | None = None
        self.engine: Any = None
        self.node_a: lab.LabNode | None = None
        self.node_b: lab.LabNode | None = None
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.sipp: Sipp | None = None
        self.pids: dict[str, int | None] = {}
        self.checks: dict[str, Any] = {}
        self.pg_unflushed_since: float | None = None  # monotonic time of node B lookups not yet in the stats
        self.info: dict[str, Any] = {}
        ncpu = os.cpu_count() or 1
        self.hotline_cpu = args.hotline_cpu if args.hotline_cpu is not None else ncpu - 1
        self.phone_names = [str(args.first_phone + i) for i in range(args.phones)]

    # ------------------------------------------------------------------ setup
    def pg(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(PG_DSN.replace("dbname=postgres", f"dbname={dbname}"), autocommit=True)

    def setup(self) -> None:
        a = self.args
        if shutil.which("sipp") is None:
            lab.install_sipp()
        if shutil.which("tcpdump") is None:
            lab.apt_install("tcpdump")
        for tool in ("taskset", "chroot"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed")
        http_port, agi_port = free_tcp_port(), free_tcp_port()
        toml = self.work / "hotline.toml"
        toml.write_text(
            f'data_dir = "{self.work / "data"}"\n'
            f"http_port = {http_port}\nagi_port = {agi_port}\n"
            f'lab_instance = "{LAB_INSTANCE}"\nnode_address_base = "{NODE_ADDRESS_BASE}"\nnode_count = 2\n'
            f"rtp_port_start = 32000\n" + f"realtime_port = {0 if a.asgi_realtime else free_tcp_port()}\n"
        )
        settings = self.settings = load_settings(toml, environ={})
        root = lab.provision(settings)
        self.info["asterisk"] = lab.asterisk_version_in(root)
        self.info["realtime_served_by"] = "uvicorn+ASGI on http_port" if a.asgi_realtime else "own listener"
        mods = subprocess.run(["chroot", str(root), "ls", MODULE_DIR], capture_output=True, text=True, check=True)
        if "res_config_pgsql.so" not in mods.stdout.split():
            raise RuntimeError(f"res_config_pgsql.so is not in {root}{MODULE_DIR}")
        specs = lab.node_specs(settings, 2)
        self.node_a, self.node_b = (lab.lab_node(settings, s) for s in specs)
        for node in (self.node_a, self.node_b):
            lab.stop_node(node)  # a node left over from an interrupted run of this bench

        # --- Hotline's database: N phones with known passwords
        t0 = time.monotonic()
        self.engine = create_engine_for(settings.effective_database_url)
        upgrade(self.engine)
        config = ConfigRepository(self.engine)
        for name in self.phone_names:
            config.add_phone(name, self.password(name), realm=settings.sip_realm)
        spec_a = self.node_a.spec
        config.upsert_node(spec_a.name, spec_a.address, spec_a.sip_port, spec_a.ami_port)
        snap = config.load_snapshot()
        log(f"{len(self.phone_names)} phones in Hotline's SQLite database ({time.monotonic() - t0:.1f} s)")
        csv = self.work / "phones.csv"
        csv.write_text("SEQUENTIAL\n" + "".join(
            f"{n};{self.password(n)};[authentication username={n} password={self.password(n)}]\n"
            for n in self.phone_names))  # fmt: skip

        # --- PostgreSQL: the same rows, in Asterisk's realtime tables
        phones = [p for p in snap.phones if p.enabled]
        self.create_pg_database({
            "ps_endpoints": [endpoint_row(p) for p in phones],
            "ps_auths": [auth_row(p) for p in phones],
            "ps_aors": [aor_row(p) for p in phones],
            "ps_contacts": [],
        })  # fmt: skip

        # --- processes: Hotline (pinned), node A (curl), node B (pgsql)
        self.hotline = PinnedHotline(toml, http_port, self.work / "hotline.log", cpu=self.hotline_cpu)
        self.hotline.start()
        assert self.hotline.proc is not None
        self.pids["hotline"] = self.hotline.proc.pid
        if a.sorcery_cache:  # what-if: both nodes get the same sorcery memory cache
            lab.write_node_config(settings, self.node_a)
            files = lab.render_node(settings, self.node_a.spec, self.node_a.ast_dir)
            files["sorcery.conf"] = cached_sorcery(files["sorcery.conf"])
            write_files(self.node_a, files)
            self.pids["asterisk_a"] = start_prepared_node(self.node_a, self.children)
        else:  # node A exactly as Hotline renders and starts it
            self.pids["asterisk_a"] = lab.start_node(settings, self.node_a)
        self.hotline.wait_nodes_connected(30)
        # Node B: the same rendered files with the pgsql changes, written after write_node_config (which
        # lab.start_node would call again and undo them), then started by start_prepared_node.
        lab.write_node_config(settings, self.node_b)
        files = pgsql_node_files(lab.render_node(settings, self.node_b.spec, self.node_b.ast_dir), self.dbname)
        if a.sorcery_cache:
            files["sorcery.conf"] = cached_sorcery(files["sorcery.conf"])
        write_files(self.node_b, files)
        self.pids["asterisk_b"] = start_prepared_node(self.node_b, self.children)
        log(f"Hotline pid {self.pids['hotline']} on CPU {self.hotline_cpu}; node A {spec_a.address} "
            f"(curl) pid {self.pids['asterisk_a']}; node B {self.node_b.spec.address} (pgsql) "
            f"pid {self.pids['asterisk_b']}")  # fmt: skip
        self.verify_backends()

    @staticmethod
    def password(name: str) -> str:
        return f"bench-{name}-secret"

    def create_pg_database(self, tables: dict[str, list[tuple[tuple[str, str], ...]]]) -> None:
        with self.pg() as conn:
            self.info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))
            self.db_created = True
        with self.pg(self.dbname) as conn:
            labels = sql.SQL(", ").join(sql.Literal(v) for v in AST_BOOL_VALUES)
            conn.execute(sql.SQL("CREATE TYPE ast_bool_values AS ENUM ({})").format(labels))
            for table, rows in tables.items():
                types = COLUMN_TYPES[table]
                columns, values = pg_rows(rows)
                for c in types:  # every registered column (contacts: all of them), served ones first
                    if c not in columns:
                        columns.append(c)
                coldefs = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types.get(c, "VARCHAR(255)"))) for c in columns
                )
                conn.execute(sql.SQL("CREATE TABLE {} ({}, UNIQUE (id))").format(sql.Identifier(table), coldefs))
                conn.execute(sql.SQL("CREATE INDEX {} ON {} (id)").format(
                    sql.Identifier(f"{table}_id"), sql.Identifier(table)))  # fmt: skip
                if table == "ps_contacts":
                    conn.execute("ALTER TABLE ps_contacts ADD CONSTRAINT ps_contacts_uq UNIQUE (id, reg_server)")
                    conn.execute("CREATE INDEX ps_contacts_qualifyfreq_exp ON ps_contacts "
                                 "(qualify_frequency, expiration_time)")  # fmt: skip
                if values:
                    cols = list(values[0])
                    stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols)),
                        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
                    )  # fmt: skip
                    with conn.cursor() as cur:
                        cur.executemany(stmt, [[r[c] for c in cols] for r in values])
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        log(f"PostgreSQL {self.info['postgresql']}: database {self.dbname} with "
            + ", ".join(f"{t} ({len(r)})" for t, r in tables.items()))  # fmt: skip

    def verify_backends(self) -> None:
        """Both nodes must read the same objects: compare `pjsip show endpoint/auth/aor` of two phones."""
        assert self.node_a is not None and self.node_b is not None
        status = self.node_b.cli("realtime show pgsql status")
        self.checks["pgsql_status"] = status.strip()
        if "connected" not in status.lower():
            raise RuntimeError(f"node B is not connected to PostgreSQL: {status.strip()}")
        diffs: list[str] = []
        for name in (self.phone_names[0], self.phone_names[-1]):
            for what in ("endpoint", "auth", "aor"):
                # the transport line names the node's own address: the only expected difference
                a = self.node_a.cli(f"pjsip show {what} {name}").replace(self.node_a.spec.address, "<node>")
                b = self.node_b.cli(f"pjsip show {what} {name}").replace(self.node_b.spec.address, "<node>")
                a, b = a.strip().splitlines(), b.strip().splitlines()
                if not any(name in ln for ln in a):
                    raise RuntimeError(f"node A does not see {what} {name}:\n" + "\n".join(a[-10:]))
                if a != b:
                    diffs += [f"{what} {name}: A={x!r} B={y!r}" for x, y in zip(a, b, strict=False) if x != y]
                    if len(a) != len(b):
                        diffs.append(f"{what} {name}: {len(a)} lines on A, {len(b)} on B")
        digests = [ln.strip() for ln in self.node_b.cli(f"pjsip show auth {self.phone_names[0]}").splitlines()
                   if "password_digest" in ln]  # fmt: skip
        self.checks["objects_identical"] = not diffs
        self.checks["object_differences"] = diffs[:20]
        self.checks["pgsql_auth_digest_lines"] = digests
        self.pg_unflushed_since = time.monotonic()
        log("objects served by both backends: " + ("identical" if not diffs else f"{len(diffs)} differences"))
        for d in diffs[:10]:
            log(f"  {d}")

    # ------------------------------------------------------------------ measuring
    def pg_backends(self) -> list[tuple[int, int | None]]:
        """(pid, client port) of the PostgreSQL backends serving node B (res_config_pgsql: one connection)."""
        with self.pg() as conn:
            rows = conn.execute("SELECT pid, client_port FROM pg_stat_activity WHERE datname = %s "
                                "AND pid <> pg_backend_pid()", (self.dbname,)).fetchall()  # fmt: skip
        return [(int(r[0]), int(r[1]) if r[1] is not None else None) for r in rows]

    def pg_xacts(self) -> tuple[int, int]:
        with self.pg() as conn:
            row = conn.execute("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s",
                               (self.dbname,)).fetchone()  # fmt: skip
        assert row is not None
        return int(row[0]), int(row[1])

    def hotline_requests(self) -> int:
        assert self.hotline is not None
        return self.hotline.requests()

    def pg_flushed_xacts(self, last_activity: float) -> int:
        """xact_commit of the bench database once node B's PostgreSQL backend has published its counters.

        A backend publishes its counters when a transaction ends at least PGSTAT_MIN_INTERVAL (1 s) after its
        previous flush; a burst's tail is otherwise held back for PGSTAT_IDLE_INTERVAL (10 s).  So: let one
        second pass after the last query of the step, make one probe lookup through node B (its CLI
        `realtime load`, one autocommit SELECT), then poll pg_stat_database until it is stable.  The probe
        is counted in the returned value; the caller subtracts it."""
        assert self.node_b is not None
        wait = last_activity + 1.05 - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # PostgreSQL's documented minimum stats flush interval, not a guess at readiness
        self.node_b.cli(f"realtime load ps_endpoints id {self.phone_names[0]}")
        value, _ = settle(lambda: self.pg_xacts()[0], 0.3, 15)
        return value

    def cpu_ticks(self, ast_pid: int | None, pg_pids: list[int]) -> dict[str, int]:
        idle_pid = self.pids["asterisk_b"] if ast_pid == self.pids["asterisk_a"] else self.pids["asterisk_a"]
        return {
            "asterisk": proc_ticks(ast_pid),
            "asterisk_idle_node": proc_ticks(idle_pid),
            "hotline": proc_ticks(self.pids["hotline"]),
            "pg_backend": sum(proc_ticks(p) for p in pg_pids),
            "postgres_all": postgres_ticks(),
            "system": system_busy_ticks(),
        }

    def run_step(self, backend: str, phase: str, rate: int, calls: int) -> Step:
        assert self.node_a is not None and self.node_b is not None
        node = self.node_a if backend == "hotline" else self.node_b
        ast_pid = self.pids["asterisk_a" if backend == "hotline" else "asterisk_b"]
        step = Step(backend, phase, rate, calls)
        if backend == "hotline":
            before_lookups, _ = settle(self.hotline_requests, 0.3, 15)
        elif self.pg_unflushed_since is not None:  # node B did lookups (verify_backends) not yet published
            before_lookups, self.pg_unflushed_since = self.pg_flushed_xacts(self.pg_unflushed_since), None
        else:
            before_lookups = self.pg_xacts()[0]
        rollbacks0 = self.pg_xacts()[1] if backend == "pgsql" else 0
        pg_backends = self.pg_backends() if backend == "pgsql" else []
        pg_pids = [pid for pid, _ in pg_backends]
        ticks0 = self.cpu_ticks(ast_pid, pg_pids)
        sipp_dir = self.work / "sipp" / f"{backend}-{phase}-{rate}-{time.monotonic_ns()}"
        target = f"{node.spec.address}:{node.spec.sip_port}"
        self.sipp = sipp = Sipp(sipp_dir, target, self.work / "phones.csv", rate, calls,
                                self.args.recv_timeout_ms, self.args.sipp_cpu)  # fmt: skip
        assert self.settings is not None
        if backend == "hotline":
            backend_port: int | None = self.settings.effective_realtime_port
            server_port = self.settings.effective_realtime_port
        else:  # res_config_pgsql keeps one connection: its client port identifies it
            backend_port = pg_backends[0][1] if len(pg_backends) == 1 else None
            server_port = 5432
        capture = SipCapture(sipp_dir / "sip.pcap", node.spec.address, sipp.port, backend_port, server_port)
        capture.start()
        try:
            t0 = time.monotonic()
            sipp.start()
            step.sipp_rc = sipp.wait(calls / rate + 90)
            step.wall_s = time.monotonic() - t0
        finally:
            capture.stop()
        ticks1 = self.cpu_ticks(ast_pid, pg_pids)
        self.sipp = None
        if backend == "hotline":
            after_lookups, step.lookups_settled = settle(self.hotline_requests, 0.3, 15)
        else:
            after_lookups = self.pg_flushed_xacts(time.monotonic()) - 1  # minus the probe
            step.pg_rollbacks = self.pg_xacts()[1] - rollbacks0
        stats = sipp.stats()
        step.ok = int(stats.get("SuccessfulCall(C)", 0))
        step.failed = int(stats.get("FailedCall(C)", 0))
        done, seen = capture.registrations()
        times = [(end - start) * 1000.0 for start, end in done]
        step.pcap_dropped = capture.dropped
        # Requests: an HTTP POST to /realtime/..., or a libpq simple query ('Q' message).
        is_request = (lambda p: p.startswith(b"POST /realtime/")) if backend == "hotline" else (lambda p: p[:1] == b"Q")
        service = capture.service_times(is_request) if backend_port else []
        step.service_requests = len(service)
        step.service_p50_ms, step.service_p99_ms = percentile(service, 50), percentile(service, 99)
        if done and service:
            step.service_share = round(sum(service) / sum(e - s for s, e in done) / 1000.0, 3)
        # Throughput from the capture: registrations completed per second between the first and the last
        # completion (steady state; SIPp's start-up and exit are outside that window).
        ends = sorted(e for _, e in done)
        step.active_s = (ends[-1] - ends[0]) if len(ends) > 1 else step.wall_s
        step.register_per_s = (len(ends) - 1) / step.active_s if len(ends) > 1 else 0.0
        step.lookups = after_lookups - before_lookups
        step.lookups_per_s = step.lookups / step.active_s
        step.lookups_per_register = step.lookups / step.ok if step.ok else None
        step.p50_ms, step.p90_ms = percentile(times, 50), percentile(times, 90)
        step.p99_ms, step.max_ms = percentile(times, 99), (max(times) if times else None)
        wall = step.wall_s
        pct = {k: 100.0 * (ticks1[k] - ticks0[k]) / CLK_TCK / wall for k in ticks0}
        pct["sipp"] = 100.0 * sipp.cpu_s / wall
        pct["tcpdump"] = 100.0 * capture.ticks / CLK_TCK / wall
        # rest = busy CPU of the machine not used by the processes above (other users' processes, kernel
        # work not charged to a process): a high value means the run was disturbed.
        known = ("asterisk", "asterisk_idle_node", "hotline", "postgres_all", "sipp", "tcpdump")
        pct["rest"] = pct["system"] - sum(pct[k] for k in known)
        if backend != "pgsql":
            pct.pop("pg_backend")
        step.cpu_pct = {k: round(v, 1) for k, v in pct.items()}
        if step.failed:
            step.errors_sample = sipp.error_sample()
        if len(times) != step.ok or seen != calls:
            log(f"  note: capture saw {seen} calls and {len(times)} registrations; SIPp counted {step.ok} ok "
                f"of {calls} (tcpdump dropped {capture.dropped})")  # fmt: skip
        if not self.args.keep_workdir:
            capture.path.unlink(missing_ok=True)
        return step

    def run(self) -> list[Step]:
        a = self.args
        steps: list[Step] = []
        backends = ("hotline", "pgsql")
        # Warm-up: every phone registers once (the contact rows exist afterwards, curl connections are open).
        for backend in backends:
            s = self.run_step(backend, "warmup", a.warmup_rate, len(self.phone_names))
            log(f"warm-up {backend:8s}: {s.ok}/{s.calls} registered, {s.failed} failed, "
                f"{s.lookups_per_register or 0:.2f} realtime ops per REGISTER")  # fmt: skip
            if s.ok == 0:
                raise RuntimeError(f"no phone could register on the {backend} node; SIPp errors: "
                                   f"{s.errors_sample}")  # fmt: skip
            steps.append(s)
        # Measured steps, interleaved so that both backends see the same machine state.
        for rate in a.rates:
            for backend in backends:
                s = self.run_step(backend, "step", rate, max(1, int(rate * a.step_seconds)))
                log(f"{backend:8s} {rate:5d}/s offered: {s.register_per_s:7.1f} REGISTER/s ok={s.ok} "
                    f"failed={s.failed} p50={fmt(s.p50_ms)} p99={fmt(s.p99_ms)} ms "
                    f"lookups/s={s.lookups_per_s:7.0f} cpu={s.cpu_pct}")  # fmt: skip
                steps.append(s)
        return steps

    # ------------------------------------------------------------------ cleanup
    def cleanup(self) -> None:
        if self.sipp is not None:
            with contextlib.suppress(Exception):
                self.sipp.kill()
        for node in (self.node_a, self.node_b):
            if node is not None:
                try:
                    lab.stop_node(node)
                except Exception as exc:
                    log(f"could not stop {node.name}: {exc}")
        for proc in self.children.values():
            with contextlib.suppress(Exception):
                proc.wait(5)
        if self.hotline is not None:
            with contextlib.suppress(Exception):
                self.hotline.stop()
        if self.engine is not None:
            with contextlib.suppress(Exception):
                self.engine.dispose()
        if self.db_created:
            try:
                with self.pg() as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.dbname)))  # fmt: skip
            except Exception as exc:
                log(f"could not drop database {self.dbname}: {exc}")
        if self.args.keep_workdir:
            log(f"work folder kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- report
def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summarize(steps: list[Step]) -> dict[str, Any]:
    measured = [s for s in steps if s.phase == "step"]
    by: dict[str, dict[int, Step]] = {"hotline": {}, "pgsql": {}}
    for s in measured:
        by[s.backend][s.offered_rate] = s
    out: dict[str, Any] = {}
    for backend, rows in by.items():
        best = max(rows.values(), key=lambda s: s.register_per_s, default=None)
        out[backend] = {
            "max_register_per_s": round(best.register_per_s, 1) if best else None,
            "at_offered_rate": best.offered_rate if best else None,
            # realtime operations per second while carrying the most registrations (useful work) ...
            "lookups_per_s_at_max": round(best.lookups_per_s, 1) if best else None,
            # ... and the most seen in any step (overloaded steps add retransmitted REGISTERs' lookups)
            "peak_lookups_per_s": round(max((s.lookups_per_s for s in rows.values()), default=0.0), 1),
            "p99_ms_at_max": best.p99_ms if best else None,
            "service_p50_ms_at_max": best.service_p50_ms if best else None,
            "service_p99_ms_at_max": best.service_p99_ms if best else None,
        }
    h, p = out["hotline"], out["pgsql"]
    thr_ratio = (h["max_register_per_s"] / p["max_register_per_s"]) if p["max_register_per_s"] else None
    lookups_ratio = (h["lookups_per_s_at_max"] / p["lookups_per_s_at_max"]) if p["lookups_per_s_at_max"] else None

    # Latency is compared at the highest offered rate both backends carried completely (no failure).
    def carried(s: Step) -> bool:  # every call registered, at (nearly) the offered rate
        return s.failed == 0 and s.ok == s.calls and s.register_per_s >= 0.95 * s.offered_rate

    clean = [r for r in sorted(by["hotline"]) if r in by["pgsql"] and carried(by["hotline"][r])
             and carried(by["pgsql"][r])]  # fmt: skip
    lat: dict[str, Any] = {"rate": None, "hotline_p99_ms": None, "pgsql_p99_ms": None, "ratio": None}
    if clean:
        r = clean[-1]
        hp, pp = by["hotline"][r].p99_ms, by["pgsql"][r].p99_ms
        lat = {"rate": r, "hotline_p99_ms": hp, "pgsql_p99_ms": pp, "ratio": (hp / pp) if hp and pp else None}
    top = max(by["hotline"], default=None)
    sat = {b: bool(top in rows and not carried(rows[top])) for b, rows in by.items()}
    out["register_ratio_hotline_over_pgsql"] = round(thr_ratio, 3) if thr_ratio else None
    out["lookups_ratio_hotline_over_pgsql"] = round(lookups_ratio, 3) if lookups_ratio else None
    out["p99_compare"] = {**lat, "ratio": round(lat["ratio"], 3) if lat["ratio"] else None}
    out["saturated_at_top_rate"] = sat
    # A backend that carried the top rate only gives a lower bound of its ceiling: the throughput verdict
    # is conclusive when the ratio's direction cannot change (or both saturated).
    verdict: bool | None = None
    if thr_ratio is not None:
        if sat["hotline"] and sat["pgsql"]:
            verdict = thr_ratio >= 1.0
        elif sat["hotline"] and thr_ratio < 1.0:  # pgsql's figure is a lower bound: the true ratio is lower
            verdict = False
        elif sat["pgsql"] and thr_ratio >= 1.0:  # Hotline's figure is a lower bound
            verdict = True
    out["pass_throughput"] = verdict
    out["pass_p99"] = bool(lat["ratio"] and lat["ratio"] <= 1.0)
    out["pass"] = bool(verdict) and out["pass_p99"]
    out["disturbed_steps"] = [
        f"{s.backend} {s.phase} {s.offered_rate}/s" for s in steps if s.cpu_pct.get("rest", 0.0) > 20.0
    ]
    return out


def print_report(steps: list[Step], summary: dict[str, Any], args: argparse.Namespace) -> None:
    head = (f"{'backend':8s} {'phase':6s} {'offered/s':>9s} {'calls':>6s} {'ok':>6s} {'fail':>5s} "
            f"{'REG/s':>7s} {'ops/s':>7s} {'ops/REG':>7s} {'p50ms':>7s} {'p99ms':>7s} {'maxms':>7s} "
            f"{'svc50':>6s} {'svc99':>6s} "
            f"{'ast%':>6s} {'back%':>6s} {'pgall%':>6s} {'sipp%':>6s} {'rest%':>6s}")  # fmt: skip
    print()
    print(
        f"Realtime REGISTER storm: {args.phones} phones, digest auth, {args.step_seconds:g} s per step; "
        "ops = realtime operations (Hotline: /health realtime.requests; pgsql: pg_stat_database.xact_commit)"
    )
    print(
        "back% = the backend process: Hotline (pinned to one CPU) or the PostgreSQL backend serving "
        "Asterisk; PostgreSQL is a separate server process, like Hotline. pgall% = every postgres process.\n"
        "CPU in % of one core (2 cores = 200%); rest% = machine CPU used by nothing listed (other users' "
        "processes, kernel): high values mean the run was disturbed.\n"
        "p50/p99/max = one registration (first REGISTER sent -> 200 to the authenticated one), svc50/svc99 = "
        "the backend's time per realtime request (request packet -> answer packet), from a packet capture."
    )
    print(head)
    print("-" * len(head))
    for s in sorted(steps, key=lambda s: (s.phase != "warmup", s.offered_rate, s.backend)):
        back = s.cpu_pct.get("hotline" if s.backend == "hotline" else "pg_backend")
        print(f"{s.backend:8s} {s.phase:6s} {s.offered_rate:9d} {s.calls:6d} {s.ok:6d} {s.failed:5d} "
              f"{s.register_per_s:7.1f} {s.lookups_per_s:7.0f} {fmt(s.lookups_per_register, 2):>7s} "
              f"{fmt(s.p50_ms):>7s} {fmt(s.p99_ms):>7s} {fmt(s.max_ms):>7s} "
              f"{fmt(s.service_p50_ms, 2):>6s} {fmt(s.service_p99_ms, 2):>6s} "
              f"{fmt(s.cpu_pct.get('asterisk')):>6s} {fmt(back):>6s} {fmt(s.cpu_pct.get('postgres_all')):>6s} "
              f"{fmt(s.cpu_pct.get('sipp')):>6s} {fmt(s.cpu_pct.get('rest')):>6s}")  # fmt: skip
    h, p = summary["hotline"], summary["pgsql"]
    lat = summary["p99_compare"]
    print()
    print(
        f"saturation REGISTER/s: Hotline {h['max_register_per_s']} (offered {h['at_offered_rate']}/s), "
        f"res_config_pgsql {p['max_register_per_s']} (offered {p['at_offered_rate']}/s)"
    )
    print(
        f"  ratio Hotline/pgsql = {fmt(summary['register_ratio_hotline_over_pgsql'], 3)}x  (target >= 1.0): "
        f"{ {True: 'PASS', False: 'FAIL', None: 'INCONCLUSIVE'}[summary['pass_throughput']] }"
    )
    print(
        f"realtime ops/s at saturation: Hotline {h['lookups_per_s_at_max']}, pgsql {p['lookups_per_s_at_max']} "
        f"(ratio {fmt(summary['lookups_ratio_hotline_over_pgsql'], 3)}x); peak in any step: Hotline "
        f"{h['peak_lookups_per_s']}, pgsql {p['peak_lookups_per_s']}"
    )
    if lat["rate"] is not None:
        print(
            f"p99 registration at {lat['rate']}/s (highest rate both carried fully, without failure): "
            f"Hotline {fmt(lat['hotline_p99_ms'])} ms, pgsql {fmt(lat['pgsql_p99_ms'])} ms; "
            f"ratio Hotline/pgsql = {fmt(lat['ratio'], 3)}x (target <= 1.0): "
            f"{'PASS' if summary['pass_p99'] else 'FAIL'}"
        )
    else:
        print("p99: no rate was carried without failure by both backends: FAIL")
    for backend, saturated in summary["saturated_at_top_rate"].items():
        if not saturated:
            print(
                f"note: {backend} carried the top rate fully; its REGISTER/s is a lower bound of its ceiling "
                "(raise --rates to find it)"
            )
    disturbed = [s for s in steps if s.cpu_pct.get("rest", 0.0) > 20.0]
    if disturbed:
        print(
            f"warning: {len(disturbed)} step(s) ran while other work used > 20% of a CPU (rest%); "
            "the machine was shared: rerun for clean figures"
        )
    print(f"RESULT: {'PASS' if summary['pass'] else 'FAIL'}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--phones", type=int, default=500, help="phones (endpoints/auths/aors) served by both")
    ap.add_argument("--first-phone", type=int, default=30000, help="name of the first phone")
    ap.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")],
                    default=[50, 100, 200, 250, 300, 400, 500, 600, 800],
                    help="offered REGISTER/s, one step each per backend (comma separated)")  # fmt: skip
    ap.add_argument("--step-seconds", type=float, default=6.0, help="length of each step at its rate")
    ap.add_argument("--warmup-rate", type=int, default=200, help="rate of the warm-up (each phone once)")
    ap.add_argument("--recv-timeout-ms", type=int, default=5000, help="SIPp: a call fails without answer")
    ap.add_argument("--hotline-cpu", type=int, default=None, help="CPU Hotline is pinned to (default: last)")
    ap.add_argument("--sipp-cpu", type=int, default=None, help="pin SIPp to this CPU (default: not pinned)")
    ap.add_argument("--sorcery-cache", action="store_true",
                    help="what-if: put a sorcery memory cache before the realtime endpoint/auth/aor wizards of "
                         "BOTH nodes (not what Hotline renders today)")  # fmt: skip
    ap.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    ap.add_argument(
        "--asgi-realtime",
        action="store_true",
        help="serve the realtime backend on the web port (uvicorn+ASGI, realtime_port = 0) instead of its own "
        "listener (the default since 2026-12-06)",
    )
    ap.add_argument("--keep-workdir", action="store_true", help="keep the temporary folder (logs, SIPp files)")
    return ap.parse_args(argv)


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    bench = RealtimeBench(args)
    started = time.time()
    try:
        log(f"work folder {bench.work}; PostgreSQL database {bench.dbname}")
        bench.setup()
        steps = bench.run()
        summary = summarize(steps)
        print_report(steps, summary, args)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "benchmark": "realtime REGISTER storm: Hotline (res_config_curl) vs res_config_pgsql",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "duration_s": round(time.time() - started, 1),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "environment": {
                **bench.info,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "hotline_cpu": bench.hotline_cpu,
                "sipp": SIPP_SCENARIO.name,
                "lookups_hotline": "delta of GET /health realtime.requests (every res_config_curl request)",
                "lookups_pgsql": "delta of pg_stat_database.xact_commit of the bench database "
                "(res_config_pgsql runs every query in its own autocommit transaction)",
            },
            "checks": bench.checks,
            "summary": summary,
            "steps": [asdict(s) for s in steps],
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        log(f"results written to {args.json}")
        return 0 if summary["pass"] else 1
    finally:
        bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
