"""Call control end to end on a real Asterisk 22 node with SIPp phones, driven through the `hotline call`
command exactly as an operator would: click-to-call, a refused click-to-call, hang-up by call id, blind
transfer of a queue call, supervisor listen (ChanSpy), hold and unhold, attended transfer.

The lab is this module's own (instance "e2ectl" on 127.0.0.53).  Hold and attended transfer use the
`hotline-control` dialplan and the atxfer feature code that config_render.py renders on every node.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hotline.asterisk.config_render import CONTROL_CONTEXT, FEATUREMAP_ATXFER, HOLD_EXTEN
from hotline.db.repositories import ConfigRepository
from hotline.db.repositories.agents import AgentStateRepository
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.domain.calls import CallRecord, JournalEvent
from hotline.settings import Settings

from . import scenarios
from .conftest import CARRIER_IP, Lab, _lab
from .harness import Sipp, SippResult, wait_for

pytestmark = pytest.mark.asterisk

ADDRESS = "127.0.0.53"
PASSWORDS = {"2301": "ctl-alice-secret", "2302": "ctl-boris-secret", "2303": "ctl-super-secret", "2304": "ctl-desk"}
# SIPp binds media ports from its port + 2000 up to + 2003: ports 10 apart never collide
PORTS = {"2301": 5710, "2302": 5720, "2303": 5730, "2304": 5740}
DID = "5400"


def _seed(config: ConfigRepository, settings: Settings) -> None:
    cc = CallCenterRepository(config._engine)
    for name, pw in PASSWORDS.items():
        config.add_phone(name, pw, realm=settings.sip_realm, callerid=f'"Desk {name}" <{name}>')
    config.add_agent_group("callers")
    cc.update_agent_group("callers", allowed_actions="originate,transfer_internal,listen",
                          allowed_call_types="local")  # fmt: skip
    config.add_agent_group("restricted")
    cc.update_agent_group("restricted", allowed_actions="transfer_internal", allowed_call_types="local")
    config.add_agent("1001", "Alice", group="callers")
    config.add_agent("1002", "Boris", group="restricted")
    config.add_agent("1003", "Sven", group="callers")
    config.add_queue("ctl-sales", strategy="ringall", timeout=5, retry=1, max_wait=30)
    cc.set_agent_queue("1001", "ctl-sales")
    cc.add_call_type_rule("_[2-7]XXXXXX", "local", position=10)
    config.add_route(DID, "queue", "ctl-sales")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    work = tmp_path_factory.mktemp("e2e-ctl")
    labs = _lab(work, "", instance="e2ectl", address=ADDRESS, seed=_seed)
    lab = next(labs)
    try:
        _check_control_config(lab)
        for phone, port in PORTS.items():
            res = Sipp(lab.workdir, "register.xml", lab.sip_target, local_ip="127.0.0.1", port=port,
                       keys={"user": phone, "expires": "600"}, timeout_s=10,
                       extra_args=("-au", phone, "-ap", PASSWORDS[phone])).run()  # fmt: skip
            assert res.ok, res.stdout[-2000:]
        for agent, phone in (("1001", "2301"), ("1002", "2302"), ("1003", "2303")):
            _hotline(lab, "agent", "login", agent, "--phone", phone)
        version = lab.config.version()
        wait_for(
            lambda: (h := lab.hotline.health())["config_version"] >= version and h["agents"]["version"] >= version,
            10,
            "the service to adopt the logins",
        )
        yield lab
    finally:
        labs.close()  # stops the node and Hotline


def _check_control_config(lab: Lab) -> None:
    """The node runs the call-control dialplan and the atxfer feature code rendered by Hotline."""
    assert f"'{HOLD_EXTEN}' =>" in lab.node.cli(f"dialplan show {HOLD_EXTEN}@{CONTROL_CONTEXT}")
    assert FEATUREMAP_ATXFER in lab.node.cli("features show")


# ---------------------------------------------------------------------------------------------- helpers
def _hotline(lab: Lab, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "hotline", "--config", str(lab.workdir / "hotline.toml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def _phone(lab: Lab, phone: str, *, ip: str = "127.0.0.1") -> Sipp:
    """Desk `phone` answering at its registered address; it takes re-INVITEs and waits for a BYE."""
    port = PORTS.get(phone, 5060)
    party = scenarios.answering_party(lab.workdir, name=f"party-{phone}")
    return Sipp(lab.workdir, str(party), "", local_ip=ip, port=port, timeout_s=25, uas=True)


def _carrier_caller(lab: Lab, caller: str, port: int) -> Sipp:
    scenario = scenarios.waiting_caller(lab.workdir)
    return Sipp(lab.workdir, str(scenario), lab.sip_target, local_ip=CARRIER_IP, port=port, service=DID,
                keys={"caller": caller}, timeout_s=30)  # fmt: skip


def _caller() -> str:
    return f"7{random.randrange(10**9, 10**10)}"


def _answered_call(lab: Lab, caller: str) -> CallRecord:
    def find() -> CallRecord | None:
        return next(
            (r for r in lab.calls.recent_calls(limit=50) if r.caller_num == caller and r.answered_at is not None),
            None,
        )

    try:
        return wait_for(find, 20, f"the answered call of {caller}")
    except AssertionError as exc:  # say what the node saw
        raise AssertionError(
            f"{exc}\n{lab.node.cli('queue show ctl-sales')}{lab.node.cli('core show channels')}"
        ) from None


def _control_events(lab: Lab, call_id: str) -> list[JournalEvent]:
    return [e for e in lab.calls.events_for(call_id) if e.data.get("UserEvent") == "HotlineControl"]


def _ok(*results: SippResult) -> None:
    for res in results:
        assert res.ok, res.stdout[-2000:] + res.messages[-3000:]


def _listening(*phones: Sipp) -> None:
    for p in phones:
        assert p.proc is not None
        wait_for(lambda p=p: p.listening() or p.proc.poll() is not None, 5, f"SIPp {p.name} to listen")
        if p.proc.poll() is not None:
            raise AssertionError(f"SIPp {p.name} ended at once: {p.wait().stdout[-2000:]}")


def _queue_call_to_alice(lab: Lab, port: int) -> tuple[Sipp, Sipp, CallRecord]:
    """A carrier call to the queue, answered by Alice on desk 2301; both sides wait for a BYE."""
    alice = _phone(lab, "2301").start()
    call = None
    try:
        _listening(alice)
        caller = _caller()
        call = _carrier_caller(lab, caller, port).start()
        return alice, call, _answered_call(lab, caller)
    except BaseException:  # no SIPp may outlive a failed test: the next one needs its port
        alice.kill()
        if call is not None:
            call.kill()
        raise


# ---------------------------------------------------------------------------------------------- tests
def test_click_to_call_rings_the_agent_then_dials_the_number(lab: Lab) -> None:
    with _phone(lab, "2301") as alice, _phone(lab, "carrier", ip=CARRIER_IP) as carrier:
        _listening(alice, carrier)
        out = _hotline(lab, "call", "originate", "1001", "2345678")
        call_id = out.stdout.split()[1]
        # Alice's phone rings first; when she answers, the number is dialled (to the carrier)
        wait_for(lambda: _bridged(lab, "PJSIP/2301-", "PJSIP/carrier-"), 15, "Alice talking to the number")
        _hotline(lab, "call", "hangup", call_id)
        carrier_res, alice_res = carrier.wait(), alice.wait()
    _ok(carrier_res, alice_res)
    assert "INVITE sip:2301@127.0.0.1:5710" in alice_res.messages
    assert "INVITE sip:2345678@127.0.0.2:5060" in carrier_res.messages
    record = wait_for(lambda: (r := lab.calls.get_call(call_id)) and r.status != "active" and r, 15, "the record")
    assert record.caller_num == "2301" and record.did == "2345678" and record.status == "completed"
    summaries = [e.data.get("summary", "") for e in lab.calls.events_for(call_id) if e.event == "Routed"]
    assert summaries == ["agent 1001: external 2345678"]  # the router applied Alice's limits
    control = _control_events(lab, call_id)
    assert [(e.data["control"], e.data["outcome"]) for e in control] == [
        ("originate", "requested"),
        ("hangup", "requested"),
    ]
    assert control[0].data["agent"] == "1001" and control[0].data["actor"].startswith("cli ")


def test_click_to_call_refused_by_the_group(lab: Lab) -> None:
    out = _hotline(lab, "call", "originate", "1002", "2345678", ok=False)
    assert out.returncode in (1, 2)
    assert "action originate is not allowed for agent 1002 (group restricted" in out.stderr
    call_id = out.stderr.rsplit("journaled under call ", 1)[1].strip()
    entry = wait_for(lambda: _control_events(lab, call_id), 10, "the refusal in the journal")[0]
    assert entry.data["outcome"] == "refused" and "not allowed" in entry.data["reason"]
    # nothing was sent to Asterisk: the refused call has no channel event
    assert [e.event for e in lab.calls.events_for(call_id)] == ["UserEvent"]
    # and a number outside the group's call types is refused as the router would refuse it
    out = _hotline(lab, "call", "originate", "1001", "+4930123456", ok=False)
    assert "call type international of +4930123456 is not allowed" in out.stderr


def test_hangup_by_call_id_ends_both_sides(lab: Lab) -> None:
    alice, call, record = _queue_call_to_alice(lab, 5750)
    try:
        out = _hotline(lab, "call", "hangup", record.call_id)
        assert "hung up" in out.stdout
        _ok(alice.wait(), call.wait())  # both got a BYE and answered it
    finally:
        alice.kill()
        call.kill()
    ended = wait_for(lambda: (r := lab.calls.get_call(record.call_id)) and r.status != "active" and r, 10, "the end")
    assert ended.status == "completed"
    assert [e.data["control"] for e in _control_events(lab, record.call_id)] == ["hangup"]


def test_blind_transfer_of_a_queue_call_to_another_phone(lab: Lab) -> None:
    alice, call, record = _queue_call_to_alice(lab, 5760)
    try:
        with _phone(lab, "2304") as desk:
            _listening(desk)
            out = _hotline(lab, "call", "transfer", record.call_id, "2304")
            assert "transferred to phone 2304" in out.stdout
            _ok(alice.wait())  # Alice's leg ended with the transfer
            wait_for(lambda: _bridged(lab, "PJSIP/carrier-", "PJSIP/2304-"), 15, "caller with desk")
            _hotline(lab, "call", "hangup", record.call_id)
            desk_res = desk.wait()
        _ok(desk_res, call.wait())
    finally:
        alice.kill()
        call.kill()
    assert "INVITE sip:2304@127.0.0.1:5740" in desk_res.messages
    entry = _control_events(lab, record.call_id)[0]
    assert (entry.data["control"], entry.data["target"], entry.data["agent"]) == (
        "blind_transfer",
        "phone 2304",
        "1001",
    )
    # the desk's leg carried the call id: its events are in the call's journal
    assert any((e.channel or "").startswith("PJSIP/2304-") for e in lab.calls.events_for(record.call_id))


def test_supervisor_listens_and_a_group_without_listen_is_refused(lab: Lab) -> None:
    alice, call, record = _queue_call_to_alice(lab, 5770)
    try:
        # Boris's group may not listen: refused, journaled under Alice's call, nobody rings
        out = _hotline(lab, "call", "spy", "2302", "1001", ok=False)
        assert out.returncode in (1, 2) and "action listen is not allowed for agent 1002" in out.stderr
        with _phone(lab, "2303") as sven:
            _listening(sven)
            out = _hotline(lab, "call", "spy", "2303", "1001", "--mode", "listen")
            assert "rings to listen" in out.stdout
            channels = wait_for(
                lambda: (c := lab.node.cli("core show channels concise")) and "!ChanSpy!" in c and c,
                10,
                "ChanSpy on the supervisor's channel",
            )
            spy_line = next(line for line in channels.splitlines() if "!ChanSpy!" in line)
            assert spy_line.startswith("PJSIP/2303-") and "PJSIP/2301-" in spy_line and "uqES" in spy_line
            _hotline(lab, "call", "hangup", record.call_id)
            sven_res = sven.wait()  # ChanSpy's E option: the spy ends with the call
        _ok(sven_res, alice.wait(), call.wait())
    finally:
        alice.kill()
        call.kill()
    outcomes = [(e.data["control"], e.data["outcome"]) for e in _control_events(lab, record.call_id)]
    assert outcomes[:2] == [("spy", "refused"), ("spy", "requested")]


def test_hold_of_a_queue_call_keeps_it_in_the_queue(lab: Lab) -> None:
    alice, call, record = _queue_call_to_alice(lab, 5780)
    try:
        _hotline(lab, "call", "hold", record.call_id)
        # Alice "consults" a silent leg; the queue's bridge plays music to the caller
        assert wait_for(lambda: _channels(lab, "Wait"), 10, "the silent leg")[0].startswith("Local/1@hotline-control")
        wait_for(lambda: _journaled(lab, record.call_id, "MusicOnHoldStart", "hold"), 10, "music for the caller")
        out = _hotline(lab, "call", "transfer", record.call_id, "2304", ok=False)
        assert out.returncode == 2 and "is on hold: end that first" in out.stderr
        _hotline(lab, "call", "unhold", record.call_id)
        wait_for(lambda: _bridged(lab, "PJSIP/carrier-", "PJSIP/2301-"), 10, "the caller back with Alice")
        assert not _channels(lab, "Wait")
        _hotline(lab, "call", "hangup", record.call_id)
        _ok(alice.wait(), call.wait())
    finally:
        alice.kill()
        call.kill()
    assert [e.data["control"] for e in _control_events(lab, record.call_id)] == ["hold", "unhold", "hangup"]
    # app_queue followed the call to its end, so Alice's state did too
    assert wait_for(lambda: _journaled(lab, record.call_id, "AgentComplete", "hangup"), 10, "AgentComplete")
    assert wait_for(lambda: _agent_state(lab, "1001") == "available", 10, "Alice free again")


def test_hold_of_a_call_without_queue_moves_both_parties(lab: Lab) -> None:
    with _phone(lab, "2301") as alice, _phone(lab, "carrier", ip=CARRIER_IP) as carrier:
        _listening(alice, carrier)
        call_id = _hotline(lab, "call", "originate", "1001", "2345678").stdout.split()[1]
        wait_for(lambda: _bridged(lab, "PJSIP/2301-", "PJSIP/carrier-"), 15, "Alice talking to the number")
        _hotline(lab, "call", "hold", call_id, "--moh-class", "default")
        held = wait_for(lambda: _channels(lab, "MusicOnHold"), 10, "music on hold for the called party")
        assert held[0].startswith("PJSIP/carrier-")
        assert wait_for(lambda: _channels(lab, "Wait"), 5, "Alice waiting")[0].startswith("PJSIP/2301-")
        _hotline(lab, "call", "unhold", call_id)
        wait_for(lambda: not _channels(lab, "MusicOnHold"), 10, "the music to stop")
        out = _hotline(lab, "call", "channels", call_id).stdout
        bridges = {line.split("\t")[6] for line in out.splitlines()}
        assert len(bridges) == 1 and "-" not in bridges, out  # both in one bridge again
        _hotline(lab, "call", "hangup", call_id)
        _ok(alice.wait(), carrier.wait())
    outcomes = [(e.data["control"], e.data.get("how", "")) for e in _control_events(lab, call_id)]
    assert outcomes == [("originate", ""), ("hold", "redirect"), ("unhold", "redirect"), ("hangup", "")]


def _agent_state(lab: Lab, number: str) -> str:
    assert lab.engine is not None
    agent_id = lab.config.load_snapshot().agent_by_number[number].id
    return next((s.state for s in AgentStateRepository(lab.engine).load_all() if s.agent_id == agent_id), "")


def _journaled(lab: Lab, call_id: str, event: str, after_control: str) -> bool:
    """`event` is in the call's journal after the control entry `after_control`."""
    seen = False
    for e in lab.calls.events_for(call_id):
        seen = seen or (e.data.get("UserEvent") == "HotlineControl" and e.data.get("control") == after_control)
        if seen and e.event == event:
            return True
    return False


def _node_channels(lab: Lab) -> list[list[str]]:
    """The node's channels now (`core show channels concise`: name!context!exten!prio!state!app!data!
    callerid!account!peeraccount!amaflags!duration!bridge!uniqueid); one call runs at a time here."""
    return [line.split("!") for line in lab.node.cli("core show channels concise").splitlines() if "!" in line]


def _channels(lab: Lab, application: str) -> list[str]:
    return [c[0] for c in _node_channels(lab) if c[5] == application]


def test_attended_transfer_consults_then_connects(lab: Lab) -> None:
    alice, call, record = _queue_call_to_alice(lab, 5790)
    try:
        with _phone(lab, "2304") as desk:
            _listening(desk)
            out = _hotline(lab, "call", "transfer", record.call_id, "2304", "--attended")
            assert "consulting phone 2304" in out.stdout
            # the desk rings while the caller hears music: Alice consults the desk
            wait_for(lambda: _channels(lab, "AppDial"), 15, "the consultation call")
            alice_leg = next(
                line.split("\t")[1]
                for line in _hotline(lab, "call", "channels", record.call_id).stdout.splitlines()
                if "\tPJSIP/2301-" in line
            )
            # Alice hangs up: the attended transfer completes, the caller and the desk talk
            _hotline(lab, "call", "hangup", "--channel", alice_leg)
            _ok(alice.wait())
            wait_for(lambda: _bridged(lab, "PJSIP/carrier-", "PJSIP/2304-"), 10, "caller with desk")
            _hotline(lab, "call", "hangup", record.call_id)
            desk_res = desk.wait()
        _ok(desk_res, call.wait())
    finally:
        alice.kill()
        call.kill()
    assert "INVITE sip:2304@127.0.0.1:5740" in desk_res.messages


def _bridged(lab: Lab, first: str, second: str) -> bool:
    """Two channels (by name prefix) hear each other: in one bridge, or in two bridges joined by the two
    halves of a Local channel (an attended transfer leaves one until media flows, and SIPp sends none,
    so Asterisk never optimizes it away)."""
    group = {c[0]: c[12] for c in _node_channels(lab) if c[12]}
    merged = {b: b for b in group.values()}

    def root(b: str) -> str:
        while merged[b] != b:
            b = merged[b]
        return b

    for name, bridge in group.items():  # Local/x;1 and Local/x;2 are one line
        if name.startswith("Local/") and name.endswith(";1") and (other := group.get(name[:-1] + "2")):
            merged[root(bridge)] = root(other)
    a = [root(b) for n, b in group.items() if n.startswith(first)]
    b = [root(b) for n, b in group.items() if n.startswith(second)]
    return bool(a and b and a[0] == b[0])


def test_unknown_call_and_bad_input_are_clear_errors(lab: Lab) -> None:
    out = _hotline(lab, "call", "hangup", "0190aaaa-0000-7000-8000-000000000000", ok=False)
    assert out.returncode == 2 and "has no live channel" in out.stderr
    out = _hotline(lab, "call", "transfer", "not a call id", "2304", ok=False)
    assert out.returncode == 2 and "is not a Hotline call id" in out.stderr
    out = _hotline(lab, "call", "originate", "1001", "12ab", ok=False)
    assert out.returncode == 2 and "is not dialable" in out.stderr
    out = _hotline(lab, "call", "spy", "2303", "1001", "--mode", "listen", ok=False)
    assert out.returncode == 2 and "agent 1001 is not on a call" in out.stderr
