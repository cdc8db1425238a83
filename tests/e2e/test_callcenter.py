"""The call-center core end to end on a real Asterisk 22 node with SIPp phones: hot-desk login by DTMF,
queues ringing the logged-in agent, pause, auto-pause after missed calls, IVR, time conditions, SIP 302,
limits and quotas.  Configuration changes happen while the node runs: nothing is reloaded."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.db.repositories.agents import AgentStateRepository
from hotline.domain.agent_state import AgentStatus
from hotline.domain.calls import CallRecord, JournalEvent

from . import scenarios
from .conftest import CARRIER_IP, CC_PASSWORDS, CLOSED_TARGET, Lab
from .harness import Sipp, wait_for

pytestmark = pytest.mark.asterisk


@pytest.fixture()
def lab(cc_lab: Lab) -> Lab:
    if cc_lab.hotline.proc is None or cc_lab.hotline.proc.poll() is not None:
        cc_lab.hotline.start()
    cc_lab.hotline.wait_nodes_connected()
    return cc_lab


# ---------------------------------------------------------------------------------------------- helpers
def _status(lab: Lab, number: str) -> AgentStatus | None:
    assert lab.engine is not None
    agent = lab.config.load_snapshot().agent_by_number[number]
    return next((s for s in AgentStateRepository(lab.engine).load_all() if s.agent_id == agent.id), None)


def _state(lab: Lab, number: str) -> str:
    s = _status(lab, number)
    return "logged_out" if s is None else s.state


def _cli(lab: Lab, *args: str) -> str:
    """Run `hotline ...` as an administrator would, then wait until the running service has applied the
    configuration change it made (the service checks the configuration version twice a second)."""
    out = subprocess.run(
        [sys.executable, "-m", "hotline", "--config", str(lab.workdir / "hotline.toml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    version = lab.config.version()
    wait_for(
        lambda: (h := lab.hotline.health())["config_version"] >= version and h["agents"]["version"] >= version,
        10,
        "the service to apply the change",
    )
    return out.stdout


def _register(lab: Lab, phone: str, port: int, password: str | None = None) -> None:
    res = Sipp(lab.workdir, "register.xml", lab.sip_target, local_ip="127.0.0.1", port=port,
               keys={"user": phone, "expires": "300"}, timeout_s=10,
               extra_args=("-au", phone, "-ap", password or CC_PASSWORDS[phone])).run()  # fmt: skip
    assert res.ok, res.stdout[-2000:]


def _phone_call(lab: Lab, phone: str, port: int, dialled: str, scenario: Path) -> Sipp:
    return Sipp(lab.workdir, str(scenario), lab.sip_target, local_ip="127.0.0.1", port=port, service=dialled,
                keys={"user": phone}, timeout_s=25, extra_args=("-au", phone, "-ap", CC_PASSWORDS[phone]))  # fmt: skip


def _carrier_call(lab: Lab, did: str, port: int, scenario: Path | str, caller: str) -> Sipp:
    return Sipp(lab.workdir, str(scenario), lab.sip_target, local_ip=CARRIER_IP, port=port, service=did,
                keys={"user": caller, "caller": caller}, timeout_s=30)  # fmt: skip


def _caller() -> str:
    return f"7{random.randrange(10**9, 10**10)}"


def _call_of(lab: Lab, caller: str, *, did: str | None = None, ended: bool = True) -> CallRecord:
    def find() -> CallRecord | None:
        for rec in lab.calls.recent_calls(limit=100):
            if rec.caller_num == caller and (rec.status != "active" or not ended) and did in (None, rec.did):
                return rec
        return None

    return wait_for(find, 20, f"the call record of {caller}")


def _routed(lab: Lab, call_id: str) -> list[str]:
    return [e.data.get("summary", "") for e in lab.calls.events_for(call_id) if e.event == "Routed"]


def _events(lab: Lab, call_id: str, name: str) -> list[JournalEvent]:
    return [e for e in lab.calls.events_for(call_id) if e.event == name]


def _login_by_dtmf(lab: Lab, phone: str, port: int, agent: str, pin: str) -> None:
    scenario = scenarios.keyed_call(lab.workdir, f"{agent}# {pin}#", phone=True, name=f"login-{port}")
    res = _phone_call(lab, phone, port, "*11", scenario).run()
    assert res.ok, res.stdout[-3000:] + res.messages[-3000:]


def _logoff_everyone(lab: Lab) -> None:
    for number in ("1001", "1002"):
        if _state(lab, number) != "logged_out":
            _cli(lab, "agent", "logoff", number)


# ---------------------------------------------------------------------------------------------- tests
def test_agent_logs_in_by_dtmf_and_the_queue_rings_that_phone(lab: Lab) -> None:
    _logoff_everyone(lab)
    _register(lab, "2201", 5611)
    _login_by_dtmf(lab, "2201", 5611, "1001", "0000")  # wrong PIN: refused, nothing changes
    assert _state(lab, "1001") == "logged_out"
    _login_by_dtmf(lab, "2201", 5611, "1001", "4321")
    status = wait_for(lambda: _status(lab, "1001"), 5, "Alice's status")
    assert status.state == "available" and status.phone == "2201"
    # a carrier call to the queue now rings desk 2201, where Alice logged in
    with Sipp(lab.workdir, "answer_hangup.xml", "", local_ip="127.0.0.1", port=5611, duration_ms=800,
              timeout_s=20, uas=True) as desk:  # fmt: skip
        wait_for(desk.listening, 5, "desk 2201 to listen")
        caller = _caller()
        call = _carrier_call(lab, "5300", 5621, "caller_waits.xml", caller).run()
        desk_res = desk.wait()
    assert call.ok and desk_res.ok, call.stdout[-2000:] + desk_res.stdout[-2000:]
    rec = _call_of(lab, caller)
    assert rec.queue_name == "cc-sales" and rec.agent_number == "1001" and rec.hangup_by == "agent"
    assert wait_for(lambda: _state(lab, "1001") == "available", 10, "Alice available after the call")
    # the pause and logoff codes from the same desk
    for code, state in (("*13", "paused"), ("*14", "available"), ("*12", "logged_out")):
        plain = scenarios.keyed_call(lab.workdir, "", phone=True, name=f"code-{code[1:]}")
        assert _phone_call(lab, "2201", 5611, code, plain).run().ok
        assert wait_for(lambda s=state: _state(lab, "1001") == s, 5, f"Alice {state} after {code}")


def test_phone_without_agent_reaches_only_codes_and_emergency(lab: Lab) -> None:
    _logoff_everyone(lab)
    _register(lab, "2203", 5631)
    # Q.850 cause 52 (outgoing calls barred) reaches the phone as 603 Decline with a Reason header
    refused = scenarios.refused_call(lab.workdir, phone=True, code=603, name="nologin")
    res = _phone_call(lab, "2203", 5631, "2345678", refused).run()
    assert res.ok, res.stdout[-3000:] + res.messages[-3000:]
    assert "Reason: Q.850;cause=52" in res.messages
    rec = _call_of(lab, "2203")
    assert any("nobody logged in" in s for s in _routed(lab, rec.call_id))
    # the emergency number needs no login (in this lab it just hangs up: the decision is what is checked)
    emergency = scenarios.refused_call(lab.workdir, phone=True, code=603, name="emergency")
    res = _phone_call(lab, "2203", 5632, "112", emergency).run()
    assert res.ok, res.messages[-2000:]
    call = wait_for(
        lambda: next((c for c in lab.calls.recent_calls(limit=20) if c.caller_num == "2203" and c.did == "112"), None),
        10,
        "the emergency call's record",
    )
    assert wait_for(lambda: any("emergency number 112" in s for s in _routed(lab, call.call_id)), 5, "its route")


def _no_invite_reaches(lab: Lab, port: int, seconds: int) -> bool:
    """A desk that listens for `seconds` and must get no INVITE (SIPp then ends by its timeout)."""
    with Sipp(lab.workdir, "answer.xml", "", local_ip="127.0.0.1", port=port, timeout_s=seconds, uas=True) as desk:
        wait_for(desk.listening, 5, "the desk to listen")
        res = desk.wait()
    return "INVITE sip:" not in res.messages


def test_pause_stops_the_queue_ringing_the_agent_and_unpause_restores_it(lab: Lab) -> None:
    _logoff_everyone(lab)
    _register(lab, "2202", 5641)
    _cli(lab, "agent", "login", "1002", "--phone", "2202")  # a supervisor logs Boris in (another process)
    _cli(lab, "agent", "pause", "1002", "--reason", "lunch")
    assert _state(lab, "1002") == "paused"
    caller = _caller()
    waiting = _carrier_call(lab, "5300", 5651, "caller.xml", caller)
    waiting.cmd[waiting.cmd.index("-d") + 1] = "6000"  # the caller waits 6 s in the queue, then gives up
    waiting.start()
    try:
        assert _no_invite_reaches(lab, 5641, 5), "a paused agent was rung"
    finally:
        waiting.wait()
    rec = _call_of(lab, caller)
    assert rec.queue_name == "cc-sales" and rec.agent_number is None
    # unpaused: the next caller reaches Boris
    _cli(lab, "agent", "unpause", "1002")
    with Sipp(lab.workdir, "answer_hangup.xml", "", local_ip="127.0.0.1", port=5641, duration_ms=500,
              timeout_s=20, uas=True) as desk:  # fmt: skip
        wait_for(desk.listening, 5, "desk 2202 to listen")
        caller = _caller()
        call = _carrier_call(lab, "5300", 5652, "caller_waits.xml", caller).run()
        assert desk.wait().ok and call.ok
    assert _call_of(lab, caller).agent_number == "1002"


def test_missed_calls_in_a_row_pause_the_agent(lab: Lab) -> None:
    _logoff_everyone(lab)
    _register(lab, "2201", 5661)
    _cli(lab, "agent", "login", "1001", "--phone", "2201")  # Alice's group pauses after 2 misses in a row
    rna = scenarios.ring_no_answer(lab.workdir)
    with Sipp(lab.workdir, str(rna), "", local_ip="127.0.0.1", port=5661, calls=2, timeout_s=25, uas=True) as desk:
        wait_for(desk.listening, 5, "desk 2201 to listen")
        caller = _caller()
        waiting = _carrier_call(lab, "5300", 5671, "caller.xml", caller)
        waiting.cmd[waiting.cmd.index("-d") + 1] = "15000"
        waiting.start()
        try:
            status = wait_for(
                lambda: (s := _status(lab, "1001")) is not None and s.state == "paused" and s, 25, "the auto-pause"
            )
            desk_res = desk.wait()
        finally:
            if waiting.proc is not None:
                waiting.proc.kill()
                waiting.proc.communicate()
    assert desk_res.ok, desk_res.stdout[-2000:]
    assert status.pause_reason == "missed calls" and status.missed_in_row >= 2
    assert lab.engine is not None
    agent_id = lab.config.load_snapshot().agent_by_number["1001"].id
    events = [(e.event, e.actor) for e in AgentStateRepository(lab.engine).events_for(agent_id)]
    assert ("ring_no_answer", "asterisk") in events and ("pause", "auto") in events
    # the pause holds: no more rings for this caller's successors until someone unpauses Alice
    assert _no_invite_reaches(lab, 5661, 4)
    _cli(lab, "agent", "unpause", "1001")


def test_ivr_routes_by_digit_after_an_invalid_one(lab: Lab) -> None:
    caller = _caller()
    # '5' interrupts the menu prompt; '2' interrupts the "invalid option" prompt that follows
    keyed = scenarios.keyed_call(lab.workdir, "5 2", phone=False, name="ivr-keys", first_pause_ms=600, gap_ms=800)
    res = _carrier_call(lab, "5303", 5681, keyed, caller).run()
    assert res.ok, res.stdout[-2000:] + res.messages[-2000:]
    rec = _call_of(lab, caller)
    summaries = wait_for(lambda: (s := _routed(lab, rec.call_id)) and len(s) >= 3 and s, 5, "three decisions")
    assert summaries[0] == "DID 5303 -> IVR cc-main"
    assert summaries[1] == "IVR cc-main: invalid digit '5', attempt 1 of 2"
    assert summaries[2].startswith("IVR cc-main digit 2 -> hang up")


def test_time_condition_and_holiday_switch_without_reload(lab: Lab) -> None:
    caller = _caller()
    keyed = scenarios.keyed_call(lab.workdir, "2", phone=False, name="open-keys")
    assert _carrier_call(lab, "5301", 5691, keyed, caller).run().ok  # open: the IVR answers
    assert _routed(lab, _call_of(lab, caller).call_id)[0] == "DID 5301 -> cc-hours open -> IVR cc-main"
    today = datetime.now(UTC).date()
    _cli(lab, "time", "holiday", today.isoformat(), "Test holiday")
    try:
        caller = _caller()
        redirected = scenarios.redirected_call(lab.workdir, CLOSED_TARGET.replace(".", "[.]"), name="closed")
        res = _carrier_call(lab, "5301", 5692, redirected, caller).run()
        assert res.ok, res.messages[-2000:]
        assert f"Contact: <{CLOSED_TARGET}>" in res.messages or f"Contact: {CLOSED_TARGET}" in res.messages
    finally:
        _cli(lab, "time", "holiday", today.isoformat(), "--delete")


def test_redirect_answers_the_carrier_with_302(lab: Lab) -> None:
    caller = _caller()
    redirected = scenarios.redirected_call(lab.workdir, r"sip:[+]4930999@127[.]0[.]0[.]9:5090", name="r302")
    res = _carrier_call(lab, "5302", 5701, redirected, caller).run()
    assert res.ok, res.stdout[-2000:] + res.messages[-2000:]
    assert "SIP/2.0 302 Moved Temporarily" in res.messages
    rec = _call_of(lab, caller)
    assert rec.answered_at is None  # redirected before any answer
    assert _routed(lab, rec.call_id) == ["DID 5302 -> SIP 302 to sip:+4930999@127.0.0.9:5090"]


def test_limits_refuse_call_types_and_quotas_survive_a_restart(lab: Lab) -> None:
    _logoff_everyone(lab)
    _register(lab, "2201", 5711)
    _cli(lab, "agent", "login", "1001", "--phone", "2201")
    _cli(lab, "group", "set", "juniors", "--daily-call-quota", "1")
    try:
        refused = scenarios.refused_call(lab.workdir, phone=True, code=603, name="mobile")
        assert _phone_call(lab, "2201", 5711, "9161234567", refused).run().ok  # mobile: not for juniors
        rec = _call_of(lab, "2201", did="9161234567")
        assert "refused: call type mobile is not allowed for group juniors" in _routed(lab, rec.call_id)[0]
        # first local call: allowed (the carrier answers and hangs up), counted against the quota
        with Sipp(lab.workdir, "answer_hangup.xml", "", local_ip=CARRIER_IP, port=5060, duration_ms=300,
                  timeout_s=10, uas=True) as carrier:  # fmt: skip
            wait_for(carrier.listening, 5, "the carrier")
            ok_call = scenarios.keyed_call(lab.workdir, "", phone=True, name="local-ok")
            assert _phone_call(lab, "2201", 5712, "2345678", ok_call).run().ok
            carrier.wait()
        lab.hotline.stop()  # the quota state lives in the database, not in this process
        lab.hotline.start()
        lab.hotline.wait_nodes_connected()
        assert _phone_call(lab, "2201", 5713, "2345679", refused).run().ok
        rec = _call_of(lab, "2201", did="2345679")
        summary = wait_for(lambda: _routed(lab, rec.call_id), 5, "the refusal")[0]
        assert "daily call quota of group juniors reached (1/1)" in summary
    finally:
        _cli(lab, "group", "set", "juniors", "--daily-call-quota", "-1")


class _Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every request (headers and raw body)."""

    def __init__(self) -> None:
        import http.server
        import threading

        received = self.received = []  # type: ignore[var-annotated]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_screen_pop_webhooks_signed_and_recording_stored(lab: Lab) -> None:
    """One queue call with recording on: the agent's ring publishes the screen pop (caller found in the
    customer records), webhooks deliver it and the call's end signed with HMAC, and the recording becomes
    an MP3 in the storage under the call id."""
    import hashlib
    import hmac
    import json

    from hotline.db.repositories.recordings import RecordingRepository

    _logoff_everyone(lab)
    caller = _caller()
    _cli(lab, "customer", "add", "Ada Lovelace", caller, "--email", "ada@example.org", "--field", "tier=gold")
    receiver = _Receiver()
    out = _cli(lab, "webhook", "add", receiver.url, "--events", "call.*,agent.ringing")
    secret = out.split("signing secret (shown once): ", 1)[1].strip()
    _cli(lab, "queue", "set", "cc-sales", "recording=always")
    try:
        _register(lab, "2202", 5721)
        _cli(lab, "agent", "login", "1002", "--phone", "2202")
        with Sipp(lab.workdir, "answer.xml", "", local_ip="127.0.0.1", port=5721, timeout_s=20, uas=True) as desk:
            wait_for(desk.listening, 5, "desk 2202 to listen")
            call = _carrier_call(lab, "5300", 5731, "caller_talks.xml", caller)
            call.cmd[call.cmd.index("-d") + 1] = "2500"  # 2.5 s of conversation, then the caller hangs up
            assert call.run().ok
            assert desk.wait().ok
        rec = _call_of(lab, caller)
        assert rec.agent_number == "1002"

        def deliveries() -> dict[str, dict[str, object]]:
            out: dict[str, dict[str, object]] = {}
            for headers, body in list(receiver.received):
                ts = headers["X-Hotline-Timestamp"]
                expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                assert hmac.compare_digest(headers["X-Hotline-Signature"], expected), "bad signature"
                doc = json.loads(body)
                if doc["data"].get("call_id") == rec.call_id:
                    out[doc["event"]] = doc["data"]
            return out

        got = wait_for(lambda: (d := deliveries()) and {"call.screen_pop", "call.ended"} <= set(d) and d, 20,
                       "the signed webhook deliveries")  # fmt: skip
        pop = got["call.screen_pop"]
        assert pop["agent"] == "1002" and pop["queue"] == "cc-sales"
        assert pop["customer"]["name"] == "Ada Lovelace" and pop["customer"]["data"] == {"tier": "gold"}  # type: ignore[index]
        assert got["call.ended"]["hangup_by"] == "caller"
        assert lab.engine is not None
        recordings = RecordingRepository(lab.engine)
        stored = wait_for(
            lambda: [r for r in recordings.for_call(rec.call_id) if r.state == "stored"], 30, "the stored recording"
        )
        key = stored[0].storage_key
        assert key is not None and rec.call_id in key and key.endswith(".mp3")
        mp3 = lab.settings.data_dir / "recordings" / key
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration", "-of",
                                "json", str(mp3)], capture_output=True, text=True, timeout=30)  # fmt: skip
        fmt = json.loads(probe.stdout)["format"]
        assert fmt["format_name"] == "mp3" and 1.5 <= float(fmt["duration"]) <= 4.0
    finally:
        receiver.close()
        _cli(lab, "queue", "set", "cc-sales", "recording=never")


def test_uploaded_music_on_hold_and_queue_overflow(lab: Lab) -> None:
    """An MP3 uploaded as a music class plays to callers waiting in the queue that names it (served to the
    node through realtime, no reload); after the queue's maximum wait the overflow destination takes over."""
    mp3 = lab.workdir / "calm.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=330:duration=4",
                    str(mp3)], check=True, timeout=60)  # fmt: skip
    _cli(lab, "media", "moh-class", "calm")
    _cli(lab, "media", "moh", "calm", "tone", str(mp3))
    _cli(lab, "queue", "set", "cc-hold", "musicclass=calm")
    # the running service copies the converted file to the node's media folder
    node_file = lab.node.host_dir / "media" / "moh" / "calm" / "tone.wav"
    wait_for(node_file.exists, 10, "the music file on the node")
    caller = _caller()
    # never answered: music as early media (183), then the overflow hangs up (603, cause 16)
    waits = scenarios.refused_call(lab.workdir, phone=False, code=603, name="moh-wait")
    res = _carrier_call(lab, "5304", 5741, waits, caller).run()
    assert res.ok, res.messages[-2000:]
    assert "SIP/2.0 183" in res.messages
    rec = _call_of(lab, caller)
    moh = wait_for(lambda: _events(lab, rec.call_id, "MusicOnHoldStart"), 5, "the music-on-hold event")
    assert moh[0].data.get("Class") == "calm"

    def both_steps() -> list[str] | None:
        summaries = _routed(lab, rec.call_id)
        return summaries if len(summaries) >= 2 else None

    summaries = wait_for(both_steps, 5, "both routing steps")
    assert summaries[0] == "DID 5304 -> queue cc-hold"
    assert summaries[1].startswith("queue cc-hold TIMEOUT -> overflow hang up")
    assert rec.queue_wait_s is not None and 2.5 <= rec.queue_wait_s <= 6


def _queue_call_reaches(lab: Lab, phone: str, port: int, agent: str) -> None:
    with Sipp(lab.workdir, "answer_hangup.xml", "", local_ip="127.0.0.1", port=port, duration_ms=500,
              timeout_s=20, uas=True) as desk:  # fmt: skip
        wait_for(desk.listening, 5, f"desk {phone} to listen")
        caller = _caller()
        call = _carrier_call(lab, "5300", port + 1, "caller_waits.xml", caller).run()
        desk_res = desk.wait()
    assert call.ok and desk_res.ok, call.stdout[-2000:] + desk_res.stdout[-2000:]
    assert _call_of(lab, caller).agent_number == agent


def test_phones_added_later_are_rung_by_the_queue(lab: Lab) -> None:
    """PJSIP follows the registrations (device state) only of the AORs it learnt when it loaded; Hotline
    makes every node learn each phone, whether added while the node runs or while Hotline was down."""
    _logoff_everyone(lab)
    lab.hotline.stop()  # a phone added while the service is down: the node learns it when Hotline reconnects
    lab.config.add_phone("2209", "new-desk-pw-2209", realm=lab.settings.sip_realm)
    lab.hotline.start()
    lab.hotline.wait_nodes_connected()
    lab.config.add_phone("2210", "new-desk-pw-2210", realm=lab.settings.sip_realm)  # and one while all runs
    version = lab.config.version()
    wait_for(lambda: all((n["cache_version"] or 0) >= version for n in lab.hotline.health()["nodes"]), 10,
             "the node to learn the new phones")  # fmt: skip
    for agent, name, phone, port in (("1009", "Vera", "2209", 5741), ("1010", "Gleb", "2210", 5751)):
        _cli(lab, "agent", "add", agent, name, "--pin", "1357")
        _cli(lab, "agent", "queue", agent, "cc-sales")
        _register(lab, phone, port, f"new-desk-pw-{phone}")
        _cli(lab, "agent", "login", agent, "--phone", phone)
        try:
            _queue_call_reaches(lab, phone, port, agent)
        finally:
            _cli(lab, "agent", "logoff", agent)


def test_callers_waiting_together_ring_free_agents_at_once(lab: Lab) -> None:
    """A busy queue rings every free agent for the callers waiting, not only for the one at the head: the
    second caller rings Boris while Alice's phone is still ringing for the first (queues.conf `autofill`;
    without it the second caller waited until the first was answered, then up to a second more)."""
    _logoff_everyone(lab)
    _cli(lab, "queue", "add", "cc-parallel", "--strategy", "rrmemory")
    _cli(lab, "route", "add", "5305", "queue", "cc-parallel")
    for agent, phone, port in (("1001", "2201", 5761), ("1002", "2202", 5771)):
        _cli(lab, "agent", "queue", agent, "cc-parallel")
        _register(lab, phone, port)
        _cli(lab, "agent", "login", agent, "--phone", phone)
    # desks that ring 2 s before answering: the first caller is still ringing when the second one waits
    slow_desk = lab.workdir / "answer_hangup_ring2s.xml"
    slow_desk.write_text(
        (Path(__file__).parent / "sipp" / "answer_hangup.xml")
        .read_text()
        .replace('<pause milliseconds="300"/>', '<pause milliseconds="2000"/>', 1)
    )
    try:
        with (
            Sipp(lab.workdir, str(slow_desk), "", local_ip="127.0.0.1", port=5761, duration_ms=500, timeout_s=20,
                 uas=True) as alice,
            Sipp(lab.workdir, str(slow_desk), "", local_ip="127.0.0.1", port=5771, duration_ms=500, timeout_s=20,
                 uas=True) as boris,
        ):  # fmt: skip
            wait_for(lambda: alice.listening() and boris.listening(), 5, "both desks to listen")
            first, second = _caller(), _caller()
            call1 = _carrier_call(lab, "5305", 5781, "caller_waits.xml", first).start()
            call_id1 = _call_of(lab, first, ended=False).call_id
            wait_for(lambda: _events(lab, call_id1, "AgentCalled"), 5, "the first caller to ring an agent")
            call2 = _carrier_call(lab, "5305", 5791, "caller_waits.xml", second).start()
            results = [call1.wait(), call2.wait(), alice.wait(), boris.wait()]
        assert all(r.ok for r in results), "\n".join(r.stdout[-1500:] for r in results)
        rec1, rec2 = _call_of(lab, first), _call_of(lab, second)
        assert {rec1.agent_number, rec2.agent_number} == {"1001", "1002"}
        answered_first = _events(lab, rec1.call_id, "AgentConnect")[0].ts
        rung_second = _events(lab, rec2.call_id, "AgentCalled")[0].ts
        assert rung_second < answered_first, (rung_second, answered_first)
    finally:
        _logoff_everyone(lab)
