"""End to end on a real Asterisk 22 node with SIPp phones: registration, a queue call, the journal,
who hung up first, and the fallback when Hotline is down or frozen."""

from __future__ import annotations

import random

import pytest

from hotline.domain.calls import CallRecord

from .conftest import CARRIER_IP, FALLBACK_IP, FALLBACK_PORT, PHONE_PASSWORDS, Lab
from .harness import Sipp, wait_for

pytestmark = pytest.mark.asterisk


def _register(lab: Lab, user: str, password: str, port: int) -> Sipp:
    return Sipp(
        lab.workdir,
        "register.xml",
        lab.sip_target,
        local_ip="127.0.0.1",
        port=port,
        keys={"user": user, "expires": "300"},
        timeout_s=10,
        extra_args=("-au", user, "-ap", password),
    )


def _caller_number() -> str:
    return f"7{random.randrange(10**9, 10**10)}"


def _final_record(lab: Lab, caller: str, timeout: float = 20) -> CallRecord:
    def find() -> CallRecord | None:
        for rec in lab.calls.recent_calls(limit=200):
            if rec.caller_num == caller and rec.status != "active":
                return rec
        return None

    return wait_for(find, timeout, f"the final call record of caller {caller}")


def test_phone_registers_with_credentials_served_by_hotline(running_hotline: Lab) -> None:
    res = _register(running_hotline, "2101", PHONE_PASSWORDS["2101"], 5161).run()
    assert res.ok, res.stdout[-2000:]
    # Asterisk stored the registration through Hotline's realtime backend (ps_contacts /store)
    contacts = running_hotline.node.cli("pjsip show contacts")
    assert "2101/sip:2101@127.0.0.1:5161" in contacts


def test_wrong_password_is_refused(running_hotline: Lab) -> None:
    res = _register(running_hotline, "2103", "not-the-password", 5163).run()
    assert not res.ok
    # the authenticated REGISTER (CSeq 2) was answered with a new challenge, not 200
    answered = res.messages.split("CSeq: 2 REGISTER", 1)[1]
    assert "SIP/2.0 401" in answered and "SIP/2.0 200" not in answered


def test_password_change_takes_effect_on_next_register(running_hotline: Lab) -> None:
    lab = running_hotline
    assert _register(lab, "2103", PHONE_PASSWORDS["2103"], 5164).run().ok
    lab.config.set_phone_password("2103", "a-brand-new-secret", realm=lab.settings.sip_realm)
    version = lab.config.version()
    # Hotline loads the new version and refreshes the node's PJSIP caches (SorceryMemoryCachePopulate)
    wait_for(
        lambda: [n["cache_version"] for n in lab.hotline.health()["nodes"]] == [version],
        10,
        "the node's caches at the new version",
    )
    assert not _register(lab, "2103", PHONE_PASSWORDS["2103"], 5164).run().ok
    assert _register(lab, "2103", "a-brand-new-secret", 5164).run().ok
    lab.config.set_phone_password("2103", PHONE_PASSWORDS["2103"], realm=lab.settings.sip_realm)


def _queue_call(lab: Lab, *, agent_hangs_up: bool, did: str, phone: str, port: int) -> tuple[str, CallRecord]:
    assert _register(lab, phone, PHONE_PASSWORDS[phone], port).run().ok
    with Sipp(
        lab.workdir,
        "answer_hangup.xml" if agent_hangs_up else "answer.xml",
        "",
        local_ip="127.0.0.1",
        port=port,
        duration_ms=1500,
        timeout_s=20,
        uas=True,
    ) as agent:
        wait_for(agent.listening, 5, "the agent phone to listen")
        caller = _caller_number()
        call = Sipp(
            lab.workdir,
            "caller_waits.xml" if agent_hangs_up else "caller.xml",
            lab.sip_target,
            local_ip=CARRIER_IP,
            port=port + 10,
            service=did,
            keys={"caller": caller},
            duration_ms=1500,
            timeout_s=20,
        ).run()
        agent_res = agent.wait()
    assert call.ok, call.stdout[-3000:]
    assert agent_res.ok, agent_res.stdout[-3000:]
    return caller, _final_record(lab, caller)


def test_queue_call_agent_hangs_up_journal_and_record(running_hotline: Lab) -> None:
    lab = running_hotline
    caller, rec = _queue_call(lab, agent_hangs_up=True, did="5100", phone="2101", port=5171)
    assert rec.status == "completed"
    assert rec.did == "5100" and rec.queue_name == "e2e-support"
    assert rec.agent_number == "agent-2101"
    assert rec.hangup_by == "agent"
    assert (
        rec.answered_at is not None and rec.ended_at is not None and rec.started_at <= rec.answered_at <= rec.ended_at
    )
    assert rec.queue_wait_s is not None and 0 <= rec.queue_wait_s < 10
    assert rec.talk_s is not None and rec.talk_s >= 1.0  # the agent talked -d 1500 ms before hanging up

    events = lab.calls.events_for(rec.call_id)
    names = [e.event for e in events]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {e.call_id for e in events} == {rec.call_id}
    # one call id from first ring to hang-up, across the caller's and the agent's channels
    channels = {e.channel for e in events if e.channel}
    assert any(c.startswith("PJSIP/carrier-") for c in channels)
    assert any(c.startswith("PJSIP/2101-") for c in channels)
    order = ["CallIdAssigned", "Routed", "QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete"]
    positions = [names.index(n) for n in order]
    assert positions == sorted(positions), names
    assert names.count("Hangup") >= 2 and names.index("Hangup") > names.index("AgentConnect")
    complete = events[names.index("AgentComplete")]
    assert complete.data["Reason"] == "agent"


def test_queue_call_caller_hangs_up(running_hotline: Lab) -> None:
    caller, rec = _queue_call(running_hotline, agent_hangs_up=False, did="5101", phone="2102", port=5181)
    assert rec.status == "completed"
    assert rec.queue_name == "e2e-second" and rec.agent_number == "agent-2102"
    assert rec.hangup_by == "caller"
    assert rec.hangup_cause == 16


@pytest.mark.parametrize("did", ["5102", "7"])
def test_did_routed_to_hangup_with_cause(running_hotline: Lab, did: str) -> None:
    lab = running_hotline
    caller = _caller_number()
    res = Sipp(
        lab.workdir,
        "caller.xml",
        lab.sip_target,
        local_ip=CARRIER_IP,
        port=5191,
        service=did,
        keys={"caller": caller},
        timeout_s=10,
    ).run()
    assert not res.ok
    assert "SIP/2.0 403" in res.messages  # cause 21 (rejected) -> 403 Forbidden
    rec = _final_record(lab, caller)
    assert rec.status == "failed" and rec.hangup_by == "system" and rec.hangup_cause == 21
    assert "hang up with cause 21" in (rec.destination or "")


def _fallback_call(lab: Lab, port: int) -> None:
    with Sipp(lab.workdir, "answer.xml", "", local_ip=FALLBACK_IP, port=FALLBACK_PORT, timeout_s=20, uas=True) as uas:
        wait_for(uas.listening, 5, "the fallback target to listen")
        res = Sipp(
            lab.workdir,
            "caller.xml",
            lab.sip_target,
            local_ip=CARRIER_IP,
            port=port,
            service="5100",
            keys={"caller": _caller_number()},
            duration_ms=500,
            timeout_s=20,
        ).run()
        fb = uas.wait()
    assert res.ok, res.stdout[-3000:]
    assert fb.ok, fb.stdout[-3000:]
    assert "INVITE sip:fallback@" in fb.messages


def test_hotline_down_call_reaches_fallback(running_hotline: Lab) -> None:
    lab = running_hotline
    lab.hotline.kill()
    _fallback_call(lab, 5201)
    messages = lab.node.console_log.read_text(errors="replace")
    assert "Hotline fallback" in messages and "agi=FAILURE" in messages


def test_hotline_frozen_call_reaches_fallback_via_watchdog(running_hotline: Lab) -> None:
    lab = running_hotline
    lab.hotline.freeze()
    try:
        _fallback_call(lab, 5211)
    finally:
        lab.hotline.thaw()
    assert "reason=watchdog" in lab.node.console_log.read_text(errors="replace")
