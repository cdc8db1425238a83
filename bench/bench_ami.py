"""AMI events/s: Hotline's AMI parser (and journal) side by side with panoramisk 1.4's parser (issue 2).

Input: a recorded AMI stream.  The recording of one queue call on Asterisk 22
(tests/fixtures/ami/queue_call.ami, banner + login reply + events) is used when present; otherwise a
synthetic call of realistic Asterisk 22 events.  The call's events are replicated with distinct call
ids, Uniqueid/Linkedid, bridge ids and channel names until the stream holds about --events events,
then cut into 64 KiB chunks.  Every contestant gets the same chunk list, in the same process (pinned
to one CPU):

- panoramisk: `AMIProtocol` on a dummy transport, `data_received(chunk)` per chunk, messages counted
  by a `handle_message` override (panoramisk's parse path: split on EOL EOL + `Message.from_line`,
  which builds a dict of every message);
- hotline: `AMIParser.feed(chunk)`, messages counted.  Hotline's messages are lazy (headers are split
  when first asked for), so an informative line also reads `.headers` of every message, the work
  panoramisk always does;
- hotline + journal: parse + `JournalService.on_ami` + flush through `CallRepository` to a temp SQLite
  database (every call opened with `start_call` before feeding); rows in the database are checked
  against the events journaled.

Each contestant runs --repeats times (default 3, interleaved) and the median is reported.  The target
is Hotline parse >= 3x panoramisk parse in events/s.

    .venv/bin/python bench/bench_ami.py [--events 200000] [--repeats 3]

Writes bench/results/ami.json.  Exits 0 even when the target is missed (the table says FAIL).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

FIXTURE = ROOT / "tests" / "fixtures" / "ami" / "queue_call.ami"
RESULTS = HERE / "results" / "ami.json"
CHUNK = 64 * 1024
TARGET_RATIO = 3.0
NODE = "node1"

# ----------------------------------------------------------------------------------- the stream

# Identifiers that must differ between the replicated calls.  Uniqueid-like values are taken from the
# headers that carry them and then replaced wherever they occur.
_UID_HEADERS = re.compile(rb"^(?:Uniqueid|Linkedid|DestUniqueid|DestLinkedid): (\S+)\r?$", re.MULTILINE)
_CALL_ID = re.compile(rb"HOTLINE_CALL_ID=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_BRIDGE_ID = re.compile(rb"^BridgeUniqueid: ([0-9a-f-]{36})\r?$", re.MULTILINE)
_CHANNEL = re.compile(rb"\b(?:PJSIP|SIP|IAX2|Local)/[^\s/;-]+-([0-9a-f]{8})\b")


def _synthetic_call() -> bytes:
    """One queue call as Asterisk 22 reports it (used only when the recorded fixture is missing)."""
    ts = 1764000000.0
    out: list[str] = []

    def channel(name: str, state: int, desc: str, num: str, cname: str, uid: str, context: str,
                call_id: str, conn: tuple[str, str] = ("<unknown>", "<unknown>")) -> list[str]:  # fmt: skip
        return [
            f"Channel: {name}", f"ChannelState: {state}", f"ChannelStateDesc: {desc}", f"CallerIDNum: {num}",
            f"CallerIDName: {cname}", f"ConnectedLineNum: {conn[0]}", f"ConnectedLineName: {conn[1]}",
            "Language: en", "AccountCode: ", f"Context: {context}", "Exten: s", "Priority: 1",
            f"Uniqueid: {uid}", "Linkedid: node1-1764000000.20", f"ChanVariable: HOTLINE_CALL_ID={call_id}",
        ]  # fmt: skip

    def event(name: str, privilege: str, *lines: str) -> None:
        nonlocal ts
        ts += 0.0113
        out.append("\r\n".join([f"Event: {name}", f"Privilege: {privilege}", f"Timestamp: {ts:.6f}",
                                "SystemName: node1", *lines]) + "\r\n\r\n")  # fmt: skip

    cid = "019ab3c4-0000-7000-8000-000000000001"
    caller_uid, agent_uid = "node1-1764000000.20", "node1-1764000000.26"
    caller = ("PJSIP/carrier-00000000", "74951234567", "Test Caller", caller_uid)
    agent = ("PJSIP/2101-00000001", "2101", "Agent One", agent_uid)

    unknown = ("<unknown>", "<unknown>")
    them = ("74951234567", "Test Caller")

    def c(state: int, desc: str, context: str, call_id: str = cid, conn: tuple[str, str] = unknown) -> list[str]:
        return channel(caller[0], state, desc, caller[1], caller[2], caller[3], context, call_id, conn)

    def a(state: int, desc: str, call_id: str = cid, conn: tuple[str, str] = them) -> list[str]:
        return channel(agent[0], state, desc, agent[1], agent[2], agent[3], "hotline-phones", call_id, conn)

    def dest(lines: list[str]) -> list[str]:
        return ["Dest" + line for line in lines]

    bridge = ["BridgeUniqueid: 8f1c7a52-2f3e-4c1b-9b7e-3a5d2c1e0f00", "BridgeType: basic",
              "BridgeTechnology: simple_bridge", "BridgeCreator: <unknown>", "BridgeName: <unknown>",
              "BridgeNumChannels: 1", "BridgeVideoSourceMode: none"]  # fmt: skip
    event("Newchannel", "call,all", *c(4, "Ring", "from-carrier", call_id=""))
    event("Newstate", "call,all", *c(4, "Ring", "hotline-inbound"))
    event("QueueCallerJoin", "agent,all", *c(4, "Ring", "hotline-do-queue"), "Queue: support", "Position: 1",
          "Count: 1")  # fmt: skip
    event("MusicOnHoldStart", "call,all", *c(4, "Ring", "hotline-do-queue"), "Class: default")
    event("Newchannel", "call,all", *a(0, "Down", call_id="", conn=("<unknown>", "<unknown>")))
    event("AgentCalled", "agent,all", *c(4, "Ring", "hotline-do-queue"), *dest(a(0, "Down")), "Queue: support",
          "Interface: PJSIP/2101", "MemberName: agent-2101")  # fmt: skip
    event("DialBegin", "call,all", *c(4, "Ring", "hotline-do-queue"), *dest(a(0, "Down")),
          "DialString: PJSIP/2101")  # fmt: skip
    event("Newstate", "call,all", *a(5, "Ringing"))
    event("Newstate", "call,all", *a(6, "Up"))
    event("DialEnd", "call,all", *c(4, "Ring", "hotline-do-queue"), *dest(a(6, "Up")), "DialStatus: ANSWER")
    event("Newstate", "call,all", *c(6, "Up", "hotline-do-queue", conn=("2101", "Agent One")))
    event("MusicOnHoldStop", "call,all", *c(6, "Up", "hotline-do-queue", conn=("2101", "Agent One")))
    event("BridgeCreate", "call,all", *bridge[:5], "BridgeNumChannels: 0", "BridgeVideoSourceMode: none")
    event("AgentConnect", "agent,all", *c(6, "Up", "hotline-do-queue", conn=("2101", "Agent One")),
          *dest(a(6, "Up")), "Queue: support", "Interface: PJSIP/2101", "MemberName: agent-2101",
          "HoldTime: 2", "RingTime: 1")  # fmt: skip
    event("BridgeEnter", "call,all", *bridge, *c(6, "Up", "hotline-do-queue", conn=("2101", "Agent One")))
    event("BridgeEnter", "call,all", *bridge[:5], "BridgeNumChannels: 2", "BridgeVideoSourceMode: none",
          *a(6, "Up"))  # fmt: skip
    event("HangupRequest", "call,all", *a(6, "Up"), "Cause: 16")
    event("BridgeLeave", "call,all", *bridge, *a(6, "Up"))
    event("Hangup", "call,all", *a(6, "Up"), "Cause: 16", "Cause-txt: Normal Clearing")
    event("AgentComplete", "agent,all", *c(6, "Up", "hotline-do-queue", conn=("2101", "Agent One")),
          *dest(a(6, "Up")), "Queue: support", "Interface: PJSIP/2101", "MemberName: agent-2101",
          "HoldTime: 2", "TalkTime: 12", "Reason: agent")  # fmt: skip
    event("BridgeLeave", "call,all", *bridge[:5], "BridgeNumChannels: 0", "BridgeVideoSourceMode: none",
          *c(6, "Up", "hotline-do-queue", conn=("2101", "Agent One")))  # fmt: skip
    event("BridgeDestroy", "call,all", *bridge[:5], "BridgeNumChannels: 0", "BridgeVideoSourceMode: none")
    event("QueueCallerLeave", "agent,all", *c(6, "Up", "hotline-do-queue", conn=("2101", "Agent One")),
          "Queue: support", "Count: 0", "Position: 1")  # fmt: skip
    event("Hangup", "call,all", *c(6, "Up", "hotline-do-queue", conn=("2101", "Agent One")), "Cause: 16",
          "Cause-txt: Normal Clearing")  # fmt: skip
    return "".join(out).encode()


@dataclass
class Stream:
    source: str
    prefix: bytes  # banner and login reply, once
    pieces: list[bytes]  # the call's events cut around its identifiers ...
    slots: list[tuple[str, bytes]]  # ... and what goes between them: (kind, original value)
    events_per_call: int
    caller_uid: bytes
    caller_channel: bytes

    def render(self, k: int) -> bytes:
        """Copy k of the call: every identifier replaced by its copy-k value."""
        parts = [self.pieces[0]]
        for (kind, original), piece in zip(self.slots, self.pieces[1:], strict=True):
            parts.append(_new_value(kind, original, k))
            parts.append(piece)
        return b"".join(parts)


def _new_value(kind: str, original: bytes, k: int) -> bytes:
    """Copy k's version of an identifier: same shape, distinct per copy."""
    if kind in ("call", "bridge"):  # a UUID: replace its last 12 hex digits
        return original[:24] + b"%012x" % k
    if kind == "uid":  # node1-1795646242.20 -> node1-1795646242.(20 + 1000k)
        head, _, seq = original.rpartition(b".")
        return head + b"." + str(int(seq) + 1000 * k).encode() if seq.isdigit() else original + b"-%d" % k
    if kind == "chan":  # the 8-hex channel counter
        return b"%08x" % ((int(original, 16) + 1000 * k) & 0xFFFFFFFF)
    raise AssertionError(kind)


def load_stream() -> Stream:
    if FIXTURE.exists():
        data, source = FIXTURE.read_bytes(), str(FIXTURE.relative_to(ROOT))
    else:
        data = b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n"
        data += _synthetic_call()
        source = "synthetic Asterisk 22 queue call (fixture missing)"
    # The banner line and a leading login reply are sent once per connection, not per call.
    prefix_end = data.index(b"\n") + 1
    if data.startswith(b"Response:", prefix_end):
        prefix_end = data.index(b"\r\n\r\n", prefix_end) + 4
    prefix, body = data[:prefix_end], data[prefix_end:]

    spans: list[tuple[int, int, str]] = []
    uids = {m.group(1) for m in _UID_HEADERS.finditer(body)}
    for uid in uids:
        exact = re.compile(rb"(?<![\w.-])" + re.escape(uid) + rb"(?![\w.])")
        spans += [(m.start(), m.end(), "uid") for m in exact.finditer(body)]
    spans += [(m.start(1), m.end(1), "call") for m in _CALL_ID.finditer(body)]
    spans += [(m.start(1), m.end(1), "bridge") for m in _BRIDGE_ID.finditer(body)]
    spans += [(m.start(1), m.end(1), "chan") for m in _CHANNEL.finditer(body)]
    spans.sort()
    pieces, slots, pos = [], [], 0
    for start, end, kind in spans:
        if start < pos:
            raise ValueError(f"overlapping identifiers in the AMI stream at byte {start}")
        pieces.append(body[pos:start])
        slots.append((kind, body[start:end]))
        pos = end
    pieces.append(body[pos:])

    first_newchannel = re.search(rb"Event: Newchannel\r\n(?:[^\r\n]+\r\n)*?\r\n", body)
    if first_newchannel is None:
        raise ValueError("no Newchannel event in the AMI stream")
    block = first_newchannel.group(0)
    caller_uid = re.search(rb"^Uniqueid: (\S+)\r$", block, re.MULTILINE)
    caller_channel = re.search(rb"^Channel: (\S+)\r$", block, re.MULTILINE)
    assert caller_uid and caller_channel
    return Stream(
        source=source, prefix=prefix, pieces=pieces, slots=slots,
        events_per_call=body.count(b"\r\n\r\n"),
        caller_uid=caller_uid.group(1), caller_channel=caller_channel.group(1),
    )  # fmt: skip


@dataclass
class Workload:
    stream: Stream
    chunks: list[bytes]
    size: int
    calls: list[tuple[str, str, str]]  # (call id, caller uniqueid, caller channel) per copy
    messages: int  # messages in the stream, login reply included


def _map_in_copy(original: bytes, k: int) -> bytes:
    """What `original` (an identifier, or a channel name holding one) becomes in copy k."""
    m = _CHANNEL.fullmatch(original)
    if m:
        return original[: m.start(1)] + _new_value("chan", m.group(1), k)
    return _new_value("uid", original, k)


def build_workload(target_events: int) -> Workload:
    stream = load_stream()
    copies = max(1, -(-target_events // stream.events_per_call))
    call_ids = [s[1] for s in stream.slots if s[0] == "call"]
    if not call_ids:
        raise ValueError("the AMI stream carries no HOTLINE_CALL_ID channel variable")
    parts = [stream.prefix]
    calls = []
    for k in range(copies):
        parts.append(stream.render(k))
        calls.append((
            _new_value("call", call_ids[0], k).decode(),
            _map_in_copy(stream.caller_uid, k).decode(),
            _map_in_copy(stream.caller_channel, k).decode(),
        ))  # fmt: skip
    data = b"".join(parts)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    messages = data.count(b"\r\n\r\n")
    return Workload(stream, chunks, len(data), calls, messages)


# ----------------------------------------------------------------------------------- contestants


def run_panoramisk(work: Workload) -> dict[str, Any]:
    from panoramisk.ami_protocol import AMIProtocol

    class Transport:  # what connection_made needs; nothing is ever written
        def write(self, data: bytes) -> None:
            raise AssertionError("nothing is sent in this benchmark")

        def close(self) -> None:
            pass

    class CountingAMI(AMIProtocol):  # type: ignore[misc]
        count = 0

        def handle_message(self, message: Any) -> None:
            self.count += 1

    proto = CountingAMI()
    proto.connection_made(Transport())
    feed = proto.data_received
    t0, c0 = time.perf_counter(), time.process_time()
    for chunk in work.chunks:
        feed(chunk)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": elapsed, "cpu_seconds": cpu, "events": proto.count}


def run_hotline(work: Workload) -> dict[str, Any]:
    from hotline.protocols.ami import AMIParser

    parser = AMIParser()
    feed = parser.feed
    count = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for chunk in work.chunks:
        count += len(feed(chunk))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": elapsed, "cpu_seconds": cpu, "events": count}


def run_hotline_headers(work: Workload) -> dict[str, Any]:
    from hotline.protocols.ami import AMIParser

    parser = AMIParser()
    feed = parser.feed
    count = headers = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for chunk in work.chunks:
        for msg in feed(chunk):
            headers += len(msg.headers)
            count += 1
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": elapsed, "cpu_seconds": cpu, "events": count, "headers": headers}


async def _journal_run(work: Workload, db_path: Path) -> dict[str, Any]:
    from hotline.db import migrate
    from hotline.db.engine import create_engine_for
    from hotline.db.repositories import CallRepository
    from hotline.features.journal.service import JournalService
    from hotline.protocols.ami import AMIParser

    engine = create_engine_for(f"sqlite:///{db_path}")
    try:
        migrate.upgrade(engine)
        journal = JournalService(CallRepository(engine))
        batch = 500  # JournalService's default batch_size
        for call_id, uid, channel in work.calls:
            journal.start_call(call_id, node=NODE, uniqueid=uid, caller_num="74951234567",
                               caller_name="Test Caller", did="5100", channel=channel)  # fmt: skip
        parser = AMIParser()
        feed, on_ami = parser.feed, journal.on_ami
        parsed = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for chunk in work.chunks:
            msgs = feed(chunk)
            parsed += len(msgs)
            for msg in msgs:
                on_ami(NODE, msg)
            # What flush_loop does when a batch is full (it is woken by on_ami), done inline so that
            # the measurement is deterministic: parsing waits while the batch is written.
            if journal.pending() >= batch:
                await journal.flush()
        await journal.flush()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT count(*) FROM call_events").scalar()
            call_rows = conn.exec_driver_sql("SELECT count(*) FROM calls").scalar()
            completed = conn.exec_driver_sql("SELECT count(*) FROM calls WHERE status = 'completed'").scalar()
        return {
            "seconds": elapsed, "cpu_seconds": cpu, "events": parsed, "journaled": journal.written, "rows": rows,
            "call_rows": call_rows, "calls_completed": completed, "dropped": journal.dropped,
            "rejected": journal.rejected,
        }  # fmt: skip
    finally:
        engine.dispose()


def run_hotline_journal(work: Workload) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-ami-") as tmp:
        return asyncio.run(_journal_run(work, Path(tmp) / "journal.db"))


CONTESTANTS: dict[str, tuple[str, Callable[[Workload], dict[str, Any]]]] = {
    "panoramisk": ("panoramisk 1.4 AMIProtocol parse", run_panoramisk),
    "hotline": ("hotline AMIParser.feed", run_hotline),
    "hotline-headers": ("hotline feed + .headers (info)", run_hotline_headers),
    "hotline-journal": ("hotline parse + journal + SQLite", run_hotline_journal),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="about this many events (default 200000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per contestant; the median is reported")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin this process to (default 0; -1: none)")
    parser.add_argument("--no-journal", action="store_true", help="skip the parse + journal contestant")
    args = parser.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})

    work = build_workload(args.events)
    mb = work.size / 1e6
    print(
        f"stream: {work.stream.source}, {work.stream.events_per_call} messages per call x {len(work.calls)} calls "
        f"= {work.messages} messages, {mb:.1f} MB in {len(work.chunks)} chunks of {CHUNK // 1024} KiB",
        flush=True,
    )
    kinds = [k for k in CONTESTANTS if not (args.no_journal and k == "hotline-journal")]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    load_before = os.getloadavg()
    for rep in range(args.repeats):
        for kind in kinds:  # interleaved, so that a noisy moment hurts every contestant alike
            gc.collect()
            r = CONTESTANTS[kind][1](work)
            r["events_per_s"] = r["events"] / r["seconds"]
            r["mb_per_s"] = mb / r["seconds"]
            # Per CPU-second of this process (all its threads): barely moved by other processes.
            r["events_per_cpu_s"] = r["events"] / r["cpu_seconds"]
            runs[kind].append(r)
            line = (
                f"  run {rep + 1}/{args.repeats} {kind:<16} {r['events_per_s']:>10.0f} events/s  {r['seconds']:.3f} s  "
                f"({r['events_per_cpu_s']:.0f} events/CPU-s)"
            )
            print(line, flush=True)

    problems: list[str] = []
    for kind, rs in runs.items():
        for r in rs:
            if r["events"] != work.messages:
                problems.append(f"{kind} counted {r['events']} messages, the stream has {work.messages}")
            if kind == "hotline-journal":
                if r["rows"] != r["journaled"]:
                    problems.append(f"journal: {r['rows']} rows in the database, {r['journaled']} events journaled")
                if r["dropped"] or r["rejected"]:
                    problems.append(f"journal dropped {r['dropped']} and rejected {r['rejected']} events")
                if r["call_rows"] != len(work.calls):
                    problems.append(f"journal: {r['call_rows']} call rows for {len(work.calls)} calls")

    summary: dict[str, dict[str, Any]] = {}
    for kind, rs in runs.items():
        summary[kind] = {
            "events_per_s": statistics.median(r["events_per_s"] for r in rs),
            "mb_per_s": statistics.median(r["mb_per_s"] for r in rs),
            "seconds": statistics.median(r["seconds"] for r in rs),
            "events_per_cpu_s": statistics.median(r["events_per_cpu_s"] for r in rs),
        }
    pano = summary["panoramisk"]["events_per_s"]
    ratio = summary["hotline"]["events_per_s"] / pano
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    paired = [h["events_per_s"] / p["events_per_s"] for h, p in zip(runs["hotline"], runs["panoramisk"], strict=True)]

    print()
    print(f"AMI parse, same {mb:.1f} MB stream and {CHUNK // 1024} KiB chunks, one process on CPU {args.cpu}; "
          f"median of {args.repeats}")  # fmt: skip
    pano_cpu = summary["panoramisk"]["events_per_cpu_s"]
    header = (
        f"{'contestant':<36} {'events/s':>10} {'MB/s':>7} {'seconds':>8} {'x panoramisk':>12} "
        f"{'events/CPU-s':>12} {'x (CPU)':>8}"
    )
    print(header)
    print("-" * len(header))
    for kind, s in summary.items():
        print(
            f"{CONTESTANTS[kind][0]:<36} {s['events_per_s']:>10.0f} {s['mb_per_s']:>7.1f} {s['seconds']:>8.3f} "
            f"{s['events_per_s'] / pano:>11.2f}x {s['events_per_cpu_s']:>12.0f} "
            f"{s['events_per_cpu_s'] / pano_cpu:>7.2f}x"
        )
    print()
    print(f"ratio hotline parse / panoramisk parse: {ratio:.2f}x (per run: {', '.join(f'{x:.2f}' for x in paired)})"
          f"  target >= {TARGET_RATIO:g}x: {verdict}")  # fmt: skip
    if "hotline-journal" in summary:
        j = runs["hotline-journal"][-1]
        journal_ratio = summary["hotline-journal"]["events_per_s"] / pano
        print(
            f"ratio hotline parse+journal / panoramisk parse: {journal_ratio:.2f}x; "
            f"last run: {j['journaled']} events journaled of {j['events']} parsed (housekeeping events are skipped), "
            f"{j['rows']} rows in the database, {j['call_rows']} call rows ({j['calls_completed']} completed), "
            f"{j['journaled'] / j['seconds']:.0f} rows/s"
        )
    print(f"checks: {'OK' if not problems else '; '.join(problems)}")
    disturbed = sum(1 for rs in runs.values() for r in rs if r["cpu_seconds"] < 0.9 * r["seconds"])
    if disturbed:
        print(
            f"warning: {disturbed} run(s) got under 90 % of a CPU (other work on the machine); "
            "compare the events/CPU-s columns, or rerun on a quiet machine"
        )
    print(f"load average before the runs: {' '.join(f'{x:.2f}' for x in load_before)}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(
        RESULTS,
        {
            "benchmark": "ami",
            "target_ratio": TARGET_RATIO,
            "ratio": ratio,
            "ratio_per_run": paired,
            "ratio_cpu": summary["hotline"]["events_per_cpu_s"] / pano_cpu,
            "verdict": verdict,
            "stream": {
                "source": work.stream.source,
                "bytes": work.size,
                "messages": work.messages,
                "calls": len(work.calls),
                "chunk": CHUNK,
            },
            "summary": summary,
            "runs": runs,
            "problems": problems,
            "settings": vars(args),
        },
        load_before,
    )
    print(f"results: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
