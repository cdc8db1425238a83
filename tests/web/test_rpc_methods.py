"""The XML-RPC catalogue at /RPC2 of a real in-process Hotline, called the way its users call it: Python's
standard xmlrpc.client (in a thread, so the server keeps running in this loop).  No Asterisk node is
configured, so call control must answer with a clean fault (503), never crash.
"""

from __future__ import annotations

import asyncio
import xmlrpc.client
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hotline.db.repositories.accounts import AccountRepository
from hotline.domain.calls import CallRecord, JournalEvent
from hotline.domain.permissions import SCOPES
from hotline.web.rpc_methods import build_catalogue, update_docs
from hotline.web.rpc_methods.base import AUTHENTICATED
from tests.web.conftest import WebHotline

DOC = Path(__file__).parents[2] / "docs" / "xmlrpc.md"
ADMIN = ("admin", "admin password 1")
SUP = ("sup", "supervisor pw 1")
ALICE = ("alice", "agent password 1")  # agent user of agent 7001
ALICE_PIN = "4321"


@dataclass
class Rpc:
    web: WebHotline

    def proxy(self, who: tuple[str, str]) -> xmlrpc.client.ServerProxy:
        host = self.web.base_url.removeprefix("http://")
        return xmlrpc.client.ServerProxy(
            f"http://{who[0]}:{who[1]}@{host}/RPC2", allow_none=True, use_builtin_types=True
        )

    async def __call__(self, who: tuple[str, str], method: str, *args: Any) -> Any:
        def run() -> Any:
            with self.proxy(who) as proxy:
                return getattr(proxy, method)(*args)

        return await asyncio.to_thread(run)

    async def fault(self, who: tuple[str, str], method: str, *args: Any) -> xmlrpc.client.Fault:
        with pytest.raises(xmlrpc.client.Fault) as caught:
            await self(who, method, *args)
        return caught.value


@pytest_asyncio.fixture(loop_scope="session")
async def rpc(hotline_web: WebHotline) -> AsyncIterator[Rpc]:
    """Admin and supervisor users; phones 2001/2002, agents 7001 (PIN) and 7002 and a pause reason created
    through config.create; an agent user for 7001."""
    repo = AccountRepository(hotline_web.hotline.engine)
    await asyncio.to_thread(repo.add_user, *ADMIN, role="admin")
    await asyncio.to_thread(repo.add_user, *SUP, role="supervisor")
    r = Rpc(hotline_web)
    for phone in ("2001", "2002"):
        await r(ADMIN, "config.create", "phones", {"name": phone, "password": f"secret-{phone}-pw"})
    await r(ADMIN, "config.create", "pause_reasons", {"name": "lunch"})
    await r(ADMIN, "config.create", "agents", {"number": "7001", "name": "Alice", "pin": ALICE_PIN})
    await r(ADMIN, "config.create", "agents", {"number": "7002", "name": "Boris"})
    await r(ADMIN, "user.create", {"username": ALICE[0], "password": ALICE[1], "role": "agent", "agent": "7001"})
    yield r


async def test_introspection_lists_what_each_caller_may_call(rpc: Rpc) -> None:
    admin = await rpc(ADMIN, "system.listMethods")
    agent = await rpc(ALICE, "system.listMethods")
    assert len([m for m in admin if not m.startswith("system.")]) >= 50
    assert {"config.create", "call.trace", "agent.login", "security.agent_logoff"} <= set(admin)
    assert len(agent) < len(admin)
    assert {"agent.status", "agent.pause", "call.trace", "customer.lookup"} <= set(agent)
    assert not {"config.create", "user.list", "queue.status", "call.spy"} & set(agent)
    assert await rpc(ALICE, "system.methodSignature", "agent.login") == [
        ["struct", "string", "string"],
        ["struct", "string", "string", "string"],
    ]
    assert "PIN" in await rpc(ALICE, "system.methodHelp", "agent.login")
    hidden = await rpc.fault(ALICE, "system.methodHelp", "config.create")
    assert hidden.faultCode == 403 and "config:write" in hidden.faultString


async def test_config_round_trip_is_live_and_audited(rpc: Rpc) -> None:
    created = await rpc(ADMIN, "config.create", "queues", {"name": "support", "strategy": "rrmemory"})
    assert created["name"] == "support" and created["strategy"] == "rrmemory"
    # times are dateTime in UTC (the wire has no zone: xmlrpc.client gives naive datetimes)
    now = datetime.now(UTC).replace(tzinfo=None)
    assert abs(created["created_at"] - now) < timedelta(minutes=1)
    await rpc(ADMIN, "config.update", "queues", "support", {"strategy": "leastrecent", "timeout": 20})
    row = await rpc(SUP, "config.get", "queues", "support")
    assert (row["strategy"], row["timeout"]) == ("leastrecent", 20)
    listed = await rpc(SUP, "queue.list")
    assert [q["name"] for q in listed["items"]] == ["support"] and listed["total"] == 1
    page = await rpc(SUP, "config.list", "phones", {"search": "200", "limit": 1, "sort": "-name"})
    assert [p["name"] for p in page["items"]] == ["2002"] and page["total"] == 2
    assert "password" not in page["items"][0] and page["items"][0]["has_password"] is True
    assert "support" in rpc.web.hotline.config.snapshot.queue_by_name  # live at once

    assert await rpc(ADMIN, "config.delete", "queues", "support") == {"deleted": "support"}
    gone = await rpc.fault(SUP, "config.get", "queues", "support")
    assert gone.faultCode == 404
    denied = await rpc.fault(SUP, "config.delete", "phones", "2001")
    assert denied.faultCode == 403 and "config:write" in denied.faultString

    log = await rpc(ADMIN, "audit.list", {"resource": "queues", "key": "support"})
    assert [(e["action"], e["interface"], e["actor"]) for e in log["items"]] == [
        ("delete", "xmlrpc", "user:admin"),
        ("update", "xmlrpc", "user:admin"),
        ("create", "xmlrpc", "user:admin"),
    ]
    assert log["items"][1]["before"]["strategy"] == "rrmemory"
    assert log["items"][1]["after"]["strategy"] == "leastrecent"
    phones = await rpc(ADMIN, "audit.list", {"resource": "phones", "key": "2001"})
    assert phones["total"] == 1 and "secret-2001-pw" not in str(phones)


async def test_a_supervisor_logs_an_agent_in_pauses_and_logs_it_off(rpc: Rpc) -> None:
    state = await rpc(SUP, "agent.login", "7001", "2001")
    assert (state["agent"], state["state"], state["phone"]) == ("7001", "available", "2001")
    assert isinstance(state["since"], datetime)
    paused = await rpc(SUP, "agent.pause", "7001", "lunch")
    assert (paused["state"], paused["pause_reason"]) == ("paused", "lunch")
    unknown = await rpc.fault(SUP, "agent.pause", "7001", "nap")
    assert unknown.faultCode == 422 and unknown.faultString.startswith("reason")
    assert (await rpc(SUP, "agent.unpause", "7001"))["state"] == "available"
    everyone = await rpc(SUP, "agent.status_all")
    assert {a["agent"]: a["state"] for a in everyone["items"]} == {"7001": "available", "7002": "logged_out"}
    assert (await rpc(SUP, "agent.logoff", "7001"))["state"] == "logged_out"
    again = await rpc.fault(SUP, "agent.logoff", "7001")
    assert again.faultCode == 409

    history = await rpc(SUP, "agent.events", "7001", 10)
    assert [e["event"] for e in history["items"]] == ["login", "pause", "unpause", "logoff"]
    assert {e["actor"] for e in history["items"]} == {"user:sup"}
    log = await rpc(ADMIN, "audit.list", {"resource": "agent", "actor": "user:sup"})
    assert [e["action"] for e in log["items"]] == ["logoff", "unpause", "pause", "login"]
    assert {e["interface"] for e in log["items"]} == {"xmlrpc"}


async def test_an_agent_acts_only_on_itself_and_logs_in_with_its_pin(rpc: Rpc) -> None:
    wrong = await rpc.fault(ALICE, "agent.login", "7001", "2001", "0000")
    assert wrong.faultCode == 401
    no_pin = await rpc.fault(ALICE, "agent.login", "7001", "2001")
    assert no_pin.faultCode == 422 and no_pin.faultString.startswith("pin")
    assert (await rpc(ALICE, "agent.login", "7001", "2001", ALICE_PIN))["state"] == "available"
    await rpc(SUP, "agent.login", "7002", "2002")
    other = await rpc.fault(ALICE, "agent.pause", "7002")
    assert other.faultCode == 403 and "7002" in other.faultString
    assert (await rpc(SUP, "agent.status", "7002"))["state"] == "available"  # untouched
    assert (await rpc(ALICE, "agent.pause", "7001", "lunch"))["state"] == "paused"
    assert [a["agent"] for a in (await rpc(ALICE, "agent.status_all"))["items"]] == ["7001"]
    assert (await rpc.fault(ALICE, "agent.status", "7002")).faultCode == 403
    assert (await rpc.fault(ALICE, "agent.stats_today", "7002")).faultCode == 403
    assert (await rpc(ALICE, "agent.stats_today", "7001"))["answered"] == 0

    # security: a supervisor logs the agent off its phone; the history says why
    off = await rpc(SUP, "security.phone_logoff", "2001", "shared password")
    assert off == {"phone": "2001", "agent": "7001"}
    assert (await rpc(SUP, "security.phone_logoff", "2001")) == {"phone": "2001", "agent": None}
    last = (await rpc(ALICE, "agent.events", "7001", 1))["items"][0]
    assert (last["event"], last["reason"]) == ("logoff", "security: shared password")
    assert (await rpc(SUP, "security.agent_logoff", "7002"))["state"] == "logged_out"
    assert (await rpc.fault(ALICE, "security.agent_logoff", "7001")).faultCode == 403


async def test_bad_parameters_name_the_parameter(rpc: Rpc) -> None:
    typed = await rpc.fault(SUP, "agent.status", 7001)
    assert typed.faultCode == -32602 and "'agent'" in typed.faultString and "got int" in typed.faultString
    member = await rpc.fault(SUP, "config.list", "phones", {"limit": "5"})
    assert member.faultCode == -32602 and "'query'" in member.faultString and "'limit'" in member.faultString
    extra = await rpc.fault(SUP, "call.history", {"agnet": "7001"})
    assert extra.faultCode == -32602 and "'agnet'" in extra.faultString
    too_many = await rpc.fault(SUP, "config.list", "phones", {"limit": 5000})
    assert too_many.faultCode == 422 and too_many.faultString.startswith("limit")
    resource = await rpc.fault(SUP, "config.get", "phonez", "2001")
    assert resource.faultCode == 422 and resource.faultString.startswith("resource")
    field = await rpc.fault(ADMIN, "config.create", "phones", {"name": "bad name!"})
    assert field.faultCode == 422 and field.faultString.startswith("name")
    arity = await rpc.fault(SUP, "agent.login", "7001")
    assert arity.faultCode == -32602 and "'phone'" in arity.faultString
    recording = await rpc.fault(SUP, "recording.get", "12a")
    assert recording.faultCode == 422 and recording.faultString.startswith("recording_id")


def _journal(call_id: str, agent: str, start: datetime) -> tuple[list[JournalEvent], CallRecord]:
    events = [
        JournalEvent(call_id, 1, start, "ami", "node1", "Newchannel", "1.1", "PJSIP/carrier-1", {"Exten": "5000"}),
        JournalEvent(call_id, 2, start + timedelta(seconds=1), "agi", "node1", "RouteDecision", "1.1", None, {}),
        JournalEvent(call_id, 3, start + timedelta(seconds=9), "ami", "node1", "Hangup", "1.1", None, {"Cause": "16"}),
    ]
    record = CallRecord(
        call_id=call_id,
        node="node1",
        caller_num="+74951234567",
        caller_name=None,
        did="5000",
        destination="queue:support",
        status="completed",
        started_at=start,
        answered_at=start + timedelta(seconds=3),
        agent_number=agent,
        ended_at=start + timedelta(seconds=9),
        duration_s=9.0,
        talk_s=6.0,
        hangup_by="caller",
        hangup_cause=16,
    )
    return events, record


async def test_the_trace_of_a_journaled_call(rpc: Rpc) -> None:
    start = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    mine, mine_record = _journal("call-alice", "7001", start)
    theirs, theirs_record = _journal("call-boris", "7002", start + timedelta(minutes=1))
    await asyncio.to_thread(rpc.web.hotline.call_repo.write_journal, mine + theirs, [mine_record, theirs_record])

    trace = await rpc(SUP, "call.trace", "call-alice")
    assert [e["event"] for e in trace["events"]] == ["Newchannel", "RouteDecision", "Hangup"]
    assert [e["seq"] for e in trace["events"]] == [1, 2, 3]
    assert trace["events"][0]["ts"] == start.replace(tzinfo=None) and trace["events"][2]["data"] == {"Cause": "16"}
    assert trace["call"]["agent_number"] == "7001" and trace["call"]["hangup_by"] == "caller"
    assert (await rpc(SUP, "call.get", "call-alice"))["talk_s"] == 6.0

    # an agent sees its own calls only
    assert (await rpc(ALICE, "call.trace", "call-alice"))["call"]["call_id"] == "call-alice"
    assert (await rpc.fault(ALICE, "call.trace", "call-boris")).faultCode == 404
    assert [c["call_id"] for c in (await rpc(ALICE, "call.history"))["items"]] == ["call-alice"]
    found = await rpc(SUP, "call.history", {"since": start + timedelta(seconds=30), "status": "completed"})
    assert [c["call_id"] for c in found["items"]] == ["call-boris"] and found["total"] == 1

    # tags: the agent attaches a discount id to its own call, not to another's
    tagged = await rpc(ALICE, "call.tag", "call-alice", "discount_id", "D-77")
    assert [(t["name"], t["value"], t["by"]) for t in tagged["tags"]] == [("discount_id", "D-77", "user:alice")]
    assert (await rpc.fault(ALICE, "call.tag", "call-boris", "discount_id", "D-1")).faultCode == 403
    assert await rpc(SUP, "call.find_by_tag", "discount_id", "D-77") == ["call-alice"]
    assert (await rpc(SUP, "call.tags", "call-alice"))[0]["value"] == "D-77"


async def test_call_control_without_a_node_is_a_clean_fault(rpc: Rpc) -> None:
    await rpc(SUP, "agent.login", "7001", "2001")
    for method, args in [
        ("call.originate", ("7001", "5000")),
        ("call.hangup", ("call-x",)),
        ("call.transfer", ("call-x", "2002")),
        ("call.hold", ("call-x",)),
        ("call.unhold", ("call-x",)),
        ("call.redirect", ("call-x", "sip:+4930123@carrier.example")),
        ("call.channels", ()),
    ]:
        fault = await rpc.fault(SUP, method, *args)
        assert fault.faultCode == 503 and "node" in fault.faultString, (method, fault)
    bad_target = await rpc.fault(SUP, "call.redirect", "call-x", "5000")
    assert bad_target.faultCode == 422 and bad_target.faultString.startswith("target")
    not_logged_in = await rpc.fault(SUP, "call.originate", "7002", "5000")
    assert not_logged_in.faultCode == 409
    foreign = await rpc.fault(ALICE, "call.originate", "7002", "5000")
    assert foreign.faultCode == 403
    mode = await rpc.fault(SUP, "call.spy", "2002", "7001", "shout")
    assert mode.faultCode == 422 and mode.faultString.startswith("mode")


async def test_multicall_runs_each_call_on_its_own(rpc: Rpc) -> None:
    def run() -> list[Any]:
        with rpc.proxy(SUP) as proxy:
            multi = xmlrpc.client.MultiCall(proxy)
            multi.agent.status("7001")
            multi.config.get("phones", "nope")
            multi.hotline.status()
            return list(multi().results)

    first, failed, last = await asyncio.to_thread(run)
    assert first[0]["agent"] == "7001"
    assert failed["faultCode"] == 404 and "nope" in failed["faultString"]
    assert last[0]["version"] and last[0]["nodes"] == 0


async def test_every_read_without_parameters_answers_in_xmlrpc_types(rpc: Rpc) -> None:
    """Catches a value XML-RPC cannot carry (-32603) in any function an admin can call without arguments."""
    await rpc(ADMIN, "config.create", "queues", {"name": "support"})
    member = await rpc(ADMIN, "queue.add_member", "support", "7001", 2)
    assert (member["key"], member["penalty"]) == ("7001:support", 2)
    assert (await rpc.fault(ADMIN, "queue.add_member", "support", "7001")).faultCode == 409
    await rpc(SUP, "agent.login", "7001", "2001")
    await rpc.web.hotline.config.reload()  # memberships reach the snapshot by the config poll; no waiting
    members = await rpc(SUP, "queue.members", "support")
    assert [m["interface"] for m in members["items"]] == ["PJSIP/2001"]
    tile = await rpc(SUP, "queue.status", "support")
    assert tile["queue"] == "support" and tile["callers"] == []

    names = await rpc(ADMIN, "system.listMethods")
    signatures = await asyncio.to_thread(_signatures, rpc.proxy(ADMIN), names)
    no_args = [n for n in names if [s for s in signatures[n] if len(s) == 1]]
    assert len(no_args) > 25
    for name in no_args:
        if name == "call.channels":
            continue  # needs a node (503, tested above)
        if name == "system.multicall":
            continue
        await rpc(ADMIN, name)
    status = await rpc(ADMIN, "hotline.status")
    assert status["agents_logged_in"] == 1 and isinstance(status["config_version"], str)
    assert await rpc(ADMIN, "queue.remove_member", "support", "7001") == {"deleted": "7001:support"}


def _signatures(proxy: xmlrpc.client.ServerProxy, names: list[str]) -> dict[str, list[list[str]]]:
    with proxy:
        multi = xmlrpc.client.MultiCall(proxy)
        for name in names:
            multi.system.methodSignature(name)
        answers: list[Any] = list(multi().results)
        return {name: answer[0] for name, answer in zip(names, answers, strict=True)}


def test_every_function_names_a_known_scope() -> None:
    catalogue = build_catalogue(None)  # type: ignore[arg-type]  # registration touches no service
    for method in catalogue.entries:
        assert method.scope is not None
        scopes = method.scope.split("|")
        assert method.scope == AUTHENTICATED or set(scopes) <= set(SCOPES), method.name
        assert len(method.help) > 20, method.name


def test_docs_catalogue_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text == update_docs(text), "run: .venv/bin/python -m hotline.web.rpc_methods"
