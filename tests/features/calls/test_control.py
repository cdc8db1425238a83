"""CallControlService on a real database (SQLite, PostgreSQL, MariaDB) with the real AgentService and
JournalService: what it refuses, which AMI actions it sends in which order, what it journals.

The nodes are recording collaborators that answer CoreShowChannels with transcripts recorded from a real
Asterisk 22 node (the call-control e2e lab); tests/e2e/test_call_control.py runs the same actions there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from hotline.db.engine import create_engine_for
from hotline.db.repositories import CallRepository, ConfigRepository
from hotline.db.repositories.agents import AgentStateRepository
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.domain.calls import JournalEvent
from hotline.domain.config import ConfigSnapshot
from hotline.errors import AsteriskError, ConflictError, NodeUnavailableError, NotFoundError, ValidationError
from hotline.features.agents.service import AgentService
from hotline.features.calls import CallControlService, PermissionDeniedError
from hotline.features.journal.service import JournalService
from hotline.protocols.ami import AMIParser, Message

HERE = Path(__file__).parent
QUEUE_CALL = "01a2158c-fbd8-712c-9ebd-f8a86f4a3a62"  # the recorded queue call: carrier <-> Alice on 2301
HELD_CALL = "01a2158d-128c-722f-be13-492551aed5c6"
ALICE_LEG = "PJSIP/2301-00000001"
CALLER_LEG = "PJSIP/carrier-00000000"


def transcript(name: str) -> list[Message]:
    return AMIParser(expect_banner=False).feed((HERE / name).read_bytes())


class RecordingNode:
    """A node's AMI as the service sees it: CoreShowChannels answers `channels`; other actions are
    recorded and succeed, unless `errors` names them; `down` makes every action fail as unreachable."""

    def __init__(self, name: str, channels: Iterable[Message] = ()) -> None:
        self.name = name
        self.channels = list(channels)
        self.sent: list[tuple[str, list[tuple[str, str]]]] = []
        self.errors: dict[str, str] = {}
        self.down = False

    async def action(
        self, action: str, fields: Mapping[str, str] | Iterable[tuple[str, str]] = (), *, timeout: float | None = None
    ) -> Message:
        if self.down:
            raise NodeUnavailableError(f"AMI of {self.name} is not connected")
        self.sent.append((action, list(fields.items() if isinstance(fields, Mapping) else fields)))
        if action in self.errors:
            raise AsteriskError(f"{self.name}: {action} failed: {self.errors[action]}")
        return Message([("Response", "Success")])

    async def action_list(
        self, action: str, fields: Mapping[str, str] | Iterable[tuple[str, str]] = (), *, timeout: float | None = None
    ) -> list[Message]:
        if self.down:
            raise NodeUnavailableError(f"AMI of {self.name} is not connected")
        assert action == "CoreShowChannels"
        return list(self.channels)

    def actions(self) -> list[str]:
        return [name for name, _ in self.sent]


@dataclass
class World:
    engine: Engine
    service: CallControlService
    nodes: dict[str, RecordingNode]
    journal: JournalService
    calls: CallRepository
    snap: ConfigSnapshot

    async def entries(self, call_id: str) -> list[JournalEvent]:
        await self.journal.flush()
        return self.calls.events_for(call_id)


@pytest.fixture()
async def world(db_url: str) -> AsyncIterator[World]:
    engine = create_engine_for(db_url)
    config = ConfigRepository(engine)
    cc = CallCenterRepository(engine)
    for name in ("2301", "2302", "2303", "2304"):
        config.add_phone(name, f"secret-{name}", realm="hotline", callerid=f'"Desk {name}" <{name}>')
    config.add_agent_group("callers")
    cc.update_agent_group(
        "callers", allowed_actions="originate,transfer_internal,listen,whisper", allowed_call_types="local"
    )
    config.add_agent_group("restricted")
    cc.update_agent_group("restricted", allowed_actions="transfer_internal", allowed_call_types="local")
    config.add_agent("1001", "Alice", group="callers")
    config.add_agent("1002", "Boris", group="restricted")
    config.add_agent("1003", "Sven", group="callers")
    config.add_queue("sales")
    config.add_route("5401", "hangup", hangup_cause=21)
    cc.add_call_type_rule("_[2-7]XXXXXX", "local", position=10)
    config.upsert_node("node1", "127.0.0.53", 5060, 5038)
    config.upsert_node("node2", "127.0.0.54", 5060, 5038)
    snap = config.load_snapshot()
    agents = AgentService(AgentStateRepository(engine), lambda: snap)
    await agents.start()
    for number, phone in (("1001", "2301"), ("1002", "2302"), ("1003", "2303")):
        await agents.login(number, None, phone, actor="test", check_pin=False)
    calls = CallRepository(engine)
    journal = JournalService(calls)
    nodes = {
        "node1": RecordingNode("node1", transcript("coreshowchannels_queue_call.ami")),
        "node2": RecordingNode("node2"),
    }
    service = CallControlService(nodes.__getitem__, lambda: snap, agents, journal, originate_timeout=20)
    yield World(engine, service, nodes, journal, calls, snap)
    await agents.flush()
    engine.dispose()


def control(events: list[JournalEvent]) -> list[tuple[str, str]]:
    return [(e.data["control"], e.data["outcome"]) for e in events if e.event == "CallControl"]


# ---------------------------------------------------------------------------------------------- click-to-call
async def test_originate_rings_the_agents_phone_into_the_router(world: World) -> None:
    result = await world.service.originate("1001", "2345678", actor="cli root")
    assert result.node == "node1" and "ringing phone 2301 of agent 1001" in result.summary
    [(action, fields)] = world.nodes["node1"].sent
    assert action == "Originate"
    assert fields[:7] == [
        ("Channel", "PJSIP/2301"),
        ("Context", "hotline-phones"),
        ("Exten", "2345678"),
        ("Priority", "1"),
        ("Timeout", "20000"),
        ("CallerID", '"Desk 2301" <2301>'),
        ("Async", "true"),
    ]
    assert ("Variable", f"__HOTLINE_CALL_ID={result.call_id}") in fields
    [entry] = await world.entries(result.call_id)
    assert (entry.source, entry.event, entry.node) == ("hotline", "CallControl", "node1")
    assert dict(entry.data) == {
        "control": "originate", "outcome": "requested", "agent": "1001", "phone": "2301", "number": "2345678",
        "actor": "cli root",
    }  # fmt: skip


async def test_originate_refused_by_the_group_sends_nothing_and_is_journaled(world: World) -> None:
    with pytest.raises(PermissionDeniedError, match="action originate is not allowed for agent 1002") as info:
        await world.service.originate("1002", "2345678", actor="cli root")
    call_id = str(info.value).rsplit("journaled under call ", 1)[1]
    assert world.nodes["node1"].sent == [] and world.nodes["node2"].sent == []
    [entry] = await world.entries(call_id)
    assert entry.data["outcome"] == "refused" and "group restricted" in entry.data["reason"]
    with pytest.raises(PermissionDeniedError, match="call type international of \\+4930123456 is not allowed"):
        await world.service.originate("1001", "+4930123456", actor="cli root")
    assert world.nodes["node1"].sent == []


@pytest.mark.parametrize(
    ("agent", "number", "error", "message"),
    [
        ("1009", "2345678", NotFoundError, "agent '1009' does not exist"),
        ("1001", "23ab", ValidationError, "is not dialable"),
    ],
)
async def test_originate_bad_input(world: World, agent: str, number: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        await world.service.originate(agent, number, actor="cli root")
    assert world.nodes["node1"].sent == []


async def test_originate_needs_a_logged_in_agent_and_tries_the_next_node(world: World, db_url: str) -> None:
    world.nodes["node1"].down = True
    result = await world.service.originate("1003", "2345678", actor="api")
    assert result.node == "node2" and world.nodes["node2"].actions() == ["Originate"]
    entries = await world.entries(result.call_id)
    assert [(e.node, e.data["outcome"]) for e in entries] == [("node1", "requested"), ("node1", "failed"),
                                                             ("node2", "requested")]  # fmt: skip
    world.nodes["node2"].down = True
    with pytest.raises(NodeUnavailableError, match="no node could originate"):
        await world.service.originate("1003", "2345678", actor="api")


async def test_originate_for_an_agent_logged_out(world: World) -> None:
    agents = AgentService(AgentStateRepository(world.engine), lambda: world.snap)
    await agents.start()
    await agents.logoff("1003", actor="test")
    service = CallControlService(world.nodes.__getitem__, lambda: world.snap, agents, world.journal)
    with pytest.raises(ConflictError, match="agent 1003 is not logged in"):
        await service.originate("1003", "2345678", actor="api")


# ---------------------------------------------------------------------------------------------- hang-up
async def test_hangup_by_call_id_hangs_up_every_channel(world: World) -> None:
    result = await world.service.hangup(QUEUE_CALL, actor="cli root")
    assert result.channels == (CALLER_LEG, ALICE_LEG)
    assert world.nodes["node1"].sent == [
        ("Hangup", [("Channel", CALLER_LEG), ("Cause", "16")]),
        ("Hangup", [("Channel", ALICE_LEG), ("Cause", "16")]),
    ]
    assert control(await world.entries(QUEUE_CALL)) == [("hangup", "requested")]


async def test_hangup_tolerates_peers_already_gone_but_not_other_errors(world: World) -> None:
    node = world.nodes["node1"]
    node.errors["Hangup"] = "No such channel"
    await world.service.hangup(ALICE_LEG, actor="cli root")  # by channel name
    assert node.sent == [("Hangup", [("Channel", ALICE_LEG), ("Cause", "16")])]
    node.errors["Hangup"] = "Permission denied"
    with pytest.raises(AsteriskError, match="hang-up failed for PJSIP/carrier-00000000"):
        await world.service.hangup(QUEUE_CALL, actor="cli root")
    assert control(await world.entries(QUEUE_CALL))[-1] == ("hangup", "failed")


async def test_unknown_calls_and_unreachable_nodes(world: World) -> None:
    with pytest.raises(NotFoundError, match="has no live channel"):
        await world.service.hangup("01a2158c-0000-7000-8000-000000000000", actor="x")
    with pytest.raises(NotFoundError, match="no channel PJSIP/2301-99"):
        await world.service.hangup("PJSIP/2301-99", actor="x")
    world.nodes["node2"].down = True
    with pytest.raises(NodeUnavailableError, match="unreachable: node2: AMI of node2 is not connected"):
        await world.service.hangup("01a2158c-0000-7000-8000-000000000000", actor="x")
    # a call on a node that answers is still found while another node is down
    await world.service.hangup(QUEUE_CALL, actor="x")


# ---------------------------------------------------------------------------------------------- transfers
async def test_blind_transfer_sets_the_route_on_the_caller_then_transfers(world: World) -> None:
    result = await world.service.blind_transfer(QUEUE_CALL, "2304", actor="cli root")
    assert result.summary == "transferred to phone 2304" and result.channels == (CALLER_LEG,)
    assert world.nodes["node1"].sent == [
        ("Setvar", [("Channel", CALLER_LEG), ("Variable", "HOTLINE_DIAL"), ("Value", "PJSIP/2304")]),
        ("Setvar", [("Channel", CALLER_LEG), ("Variable", "HOTLINE_DIAL_TIMEOUT"), ("Value", "30")]),
        ("BlindTransfer", [("Channel", ALICE_LEG), ("Context", "hotline-do-dial"), ("Exten", "s")]),
    ]
    [entry] = [e for e in await world.entries(QUEUE_CALL) if e.event == "CallControl"]
    assert entry.data["agent"] == "1001" and entry.data["target"] == "phone 2304"


async def test_transfer_outside_needs_transfer_external(world: World) -> None:
    with pytest.raises(PermissionDeniedError, match="action transfer_external is not allowed for agent 1001"):
        await world.service.blind_transfer(QUEUE_CALL, "2345678", actor="cli root")
    assert world.nodes["node1"].sent == []
    assert control(await world.entries(QUEUE_CALL)) == [("blind_transfer", "refused")]


async def test_transfer_to_a_target_that_reaches_nobody(world: World) -> None:
    with pytest.raises(NotFoundError, match="agent '1009' does not exist"):
        await world.service.blind_transfer(QUEUE_CALL, "agent:1009", actor="x")
    with pytest.raises(ConflictError, match="cannot transfer to did 5401: DID 5401 -> hang up with cause 21"):
        await world.service.blind_transfer(QUEUE_CALL, "5401", actor="x")
    assert world.nodes["node1"].sent == []


async def test_a_failed_transfer_is_journaled(world: World) -> None:
    world.nodes["node1"].errors["BlindTransfer"] = "Transfer not permitted"
    with pytest.raises(AsteriskError, match="Transfer not permitted"):
        await world.service.blind_transfer(QUEUE_CALL, "queue:sales", actor="x")
    entries = [e for e in await world.entries(QUEUE_CALL) if e.event == "CallControl"]
    assert [e.data["outcome"] for e in entries] == ["requested", "failed"]
    assert "Transfer not permitted" in entries[1].data["error"]


async def test_attended_transfer_hands_the_route_to_the_consultation_leg(world: World) -> None:
    result = await world.service.attended_transfer(QUEUE_CALL, "2304", actor="cli root")
    assert result.summary == "consulting phone 2304"
    assert world.nodes["node1"].sent == [
        ("Setvar", [("Channel", ALICE_LEG), ("Variable", "_HOTLINE_DIAL"), ("Value", "PJSIP/2304")]),
        ("Setvar", [("Channel", ALICE_LEG), ("Variable", "_HOTLINE_DIAL_TIMEOUT"), ("Value", "30")]),
        ("Setvar", [("Channel", ALICE_LEG), ("Variable", "_HOTLINE_ACTION"), ("Value", "dial")]),
        ("Atxfer", [("Channel", ALICE_LEG), ("Context", "hotline-control"), ("Exten", "0#")]),
    ]


async def test_transfer_names_the_acting_agent(world: World) -> None:
    with pytest.raises(ConflictError, match="agent 1003 has no channel in call"):
        await world.service.blind_transfer(QUEUE_CALL, "2304", actor="x", agent="1003")


# ---------------------------------------------------------------------------------------------- hold
async def test_hold_of_a_queue_call_is_an_attended_transfer_to_a_silent_leg(world: World) -> None:
    await world.service.hold(QUEUE_CALL, actor="cli root", moh_class="calm")
    assert world.nodes["node1"].sent == [
        ("Setvar", [("Channel", CALLER_LEG), ("Variable", "CHANNEL(musicclass)"), ("Value", "calm")]),
        ("Atxfer", [("Channel", ALICE_LEG), ("Context", "hotline-control"), ("Exten", "1#")]),
    ]
    [entry] = [e for e in await world.entries(QUEUE_CALL) if e.event == "CallControl"]
    assert (entry.data["how"], entry.data["held"]) == ("transfer", CALLER_LEG)
    with pytest.raises(ValidationError, match="moh_class"):
        await world.service.hold(QUEUE_CALL, actor="x", moh_class="a,b")


def _on_queue_hold() -> list[Message]:
    """The recorded queue call as it looks while held: Alice consults Local/1@hotline-control."""
    local1 = [("Channel", "Local/1@hotline-control-00000000;1"), ("Context", "hotline-control"), ("Exten", "1"),
              ("ChanVariable", f"HOTLINE_CALL_ID={QUEUE_CALL}"), ("BridgeId", "b-consult")]  # fmt: skip
    alice = [
        (k, "b-consult" if k == "BridgeId" else v) for k, v in transcript("coreshowchannels_queue_call.ami")[1].headers
    ]
    caller = transcript("coreshowchannels_queue_call.ami")[0]
    return [caller, Message(alice), Message([("Event", "CoreShowChannel"), *local1])]


async def test_unhold_of_a_queue_call_cancels_the_transfer(world: World) -> None:
    world.nodes["node1"].channels = _on_queue_hold()
    with pytest.raises(ConflictError, match="is on hold: end that first"):
        await world.service.blind_transfer(QUEUE_CALL, "2304", actor="x")
    with pytest.raises(ConflictError, match="is on hold"):
        await world.service.hold(QUEUE_CALL, actor="x")
    result = await world.service.unhold(QUEUE_CALL, actor="cli root")
    assert result.channels == (ALICE_LEG,)
    assert world.nodes["node1"].sent == [("CancelAtxfer", [("Channel", ALICE_LEG)])]


async def test_hold_of_another_call_moves_both_parties_together(world: World) -> None:
    # the recorded queue call with Alice's leg as a plain Dial leg (a click-to-call or a direct line)
    dialled = [
        Message([(k, "AppDial" if (k == "Application" and v == "AppQueue") else v) for k, v in m.headers])
        for m in transcript("coreshowchannels_queue_call.ami")
    ]
    world.nodes["node1"].channels = dialled
    await world.service.hold(QUEUE_CALL, actor="cli root")
    assert world.nodes["node1"].sent == [
        ("Redirect", [
            ("Channel", CALLER_LEG), ("Context", "hotline-control"), ("Exten", "hold"), ("Priority", "1"),
            ("ExtraChannel", ALICE_LEG), ("ExtraContext", "hotline-control"), ("ExtraExten", "holding"),
            ("ExtraPriority", "1"),
        ]),
    ]  # fmt: skip


async def test_unhold_bridges_the_held_party_and_the_agent(world: World) -> None:
    with pytest.raises(ConflictError, match="not on hold"):
        await world.service.unhold(QUEUE_CALL, actor="x")
    world.nodes["node1"].channels = transcript("coreshowchannels_hold.ami")
    await world.service.unhold(HELD_CALL, actor="cli root")
    assert world.nodes["node1"].sent == [
        ("Bridge", [("Channel1", "PJSIP/2301-00000004"), ("Channel2", "PJSIP/carrier-00000003"), ("Tone", "no")])
    ]
    with pytest.raises(ConflictError, match="is on hold"):
        await world.service.hold(HELD_CALL, actor="x")


# ---------------------------------------------------------------------------------------------- spy
@pytest.mark.parametrize(("mode", "options"), [("listen", "uqES"), ("whisper", "uqESw")])
async def test_spy_rings_the_supervisor_into_chanspy_on_the_agents_channel(
    world: World, mode: str, options: str
) -> None:
    result = await world.service.spy("2303", "1001", mode, actor="cli root")
    assert result.call_id == QUEUE_CALL and result.channels == (ALICE_LEG,)
    [(action, fields)] = world.nodes["node1"].sent
    assert action == "Originate"
    assert dict(fields)["Channel"] == "PJSIP/2303" and dict(fields)["Application"] == "ChanSpy"
    assert dict(fields)["Data"] == f"{ALICE_LEG},{options}"
    # the spy leg names the call but does not belong to it (it must not keep the call open)
    assert not any(v.startswith("__HOTLINE_CALL_ID") for k, v in fields if k == "Variable")
    [entry] = [e for e in await world.entries(QUEUE_CALL) if e.event == "CallControl"]
    assert entry.data["supervisor"] == "1003" and entry.data["mode"] == mode


async def test_spy_refused_for_a_group_without_the_mode(world: World) -> None:
    with pytest.raises(PermissionDeniedError, match="action listen is not allowed for agent 1002"):
        await world.service.spy("2302", "1001", "listen", actor="x")
    with pytest.raises(PermissionDeniedError, match="action barge is not allowed for agent 1003"):
        await world.service.spy("2303", "1001", "barge", actor="x")
    assert world.nodes["node1"].sent == []
    assert control(await world.entries(QUEUE_CALL)) == [("spy", "refused"), ("spy", "refused")]


async def test_spy_needs_an_agent_on_a_call(world: World) -> None:
    with pytest.raises(ConflictError, match="agent 1003 is not on a call"):
        await world.service.spy("2304", "1003", "listen", actor="x")
    with pytest.raises(ValidationError, match="the agent's own phone"):
        await world.service.spy("2301", "1001", "listen", actor="x")
    with pytest.raises(NotFoundError, match="phone '2399'"):
        await world.service.spy("2399", "1001", "listen", actor="x")
    with pytest.raises(ValidationError, match="mode"):
        await world.service.spy("2303", "1001", "shout", actor="x")
