"""The call-center core end to end on a real Asterisk 22 node with SIPp phones: hot-desk login by DTMF,
queues ringing the logged-in agent, pause, auto-pause after missed calls, IVR, time conditions, SIP 302,
limits and quotas.  Configuration changes happen while the node runs: nothing is reloaded."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.db.repositories.agents import AgentStateRepository
from hotline.domain.agent_state import AgentStatus
from hotline.domain.calls import CallRecord, JournalEvent

from . import scenarios
from .conftest import CARRIER_IP, CC_PASSWORDS, Lab
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
    out = subprocess.run(
        [sys.executable, "-m", "hotline", "--config", str(lab.workdir / "hotline.toml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _register(lab: Lab, phone: str, port: int) -> None:
    res = Sipp(lab.workdir, "register.xml", lab.sip_target, local_ip="127.0.0.1", port=port,
               keys={"user": phone, "expires": "300"}, timeout_s=10,
               extra_args=("-au", phone, "-ap", CC_PASSWORDS[phone])).run()  # fmt: skip
    assert res.ok, res.stdout[-2000:]


def _phone_call(lab: Lab, phone: str, port: int, dialled: str, scenario: Path) -> Sipp:
    return Sipp(lab.workdir, str(scenario), lab.sip_target, local_ip="127.0.0.1", port=port, service=dialled,
                keys={"user": phone}, timeout_s=25, extra_args=("-au", phone, "-ap", CC_PASSWORDS[phone]))  # fmt: skip


def _carrier_call(lab: Lab, did: str, port: int, scenario: Path | str, caller: str) -> Sipp:
    return Sipp(lab.workdir, str(scenario), lab.sip_target, local_ip=CARRIER_IP, port=port, service=did,
                keys={"user": caller, "caller": caller}, timeout_s=30)  # fmt: skip


def _caller() -> str:
    return f"7{random.randrange(10**9, 10**10)}"


def _call_of(lab: Lab, caller: str, *, ended: bool = True) -> CallRecord:
    def find() -> CallRecord | None:
        for rec in lab.calls.recent_calls(limit=100):
            if rec.caller_num == caller and (rec.status != "active" or not ended):
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
