"""Call control's pure part: permissions, transfer targets, ChanSpy options, the channels of a call as a
real Asterisk 22 node listed them (CoreShowChannels transcripts recorded in the call-control e2e lab),
and the AMI actions built for each request."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.asterisk import config_render as r
from hotline.asterisk.config_render import CONTROL_DIALPLAN
from hotline.domain.config import Agent, CallTypeRule, ConfigSnapshot, ServiceNumber
from hotline.errors import ConflictError, NotFoundError, ValidationError
from hotline.features.calls import actions as a
from hotline.features.calls.actions import LiveChannel, Target
from hotline.features.routing.router import RouteContext
from hotline.protocols.ami import AMIParser

from ... import factories as f

HERE = Path(__file__).parent
CALL_ID = "01a2158c-fbd8-712c-9ebd-f8a86f4a3a62"  # the call of the recorded queue call and consult


def recorded(name: str) -> list[LiveChannel]:
    messages = AMIParser(expect_banner=False).feed((HERE / name).read_bytes())
    return [LiveChannel.from_message("node1", m) for m in messages]


def snap() -> ConfigSnapshot:
    return ConfigSnapshot.build(
        3,
        phones=(f.phone(1, "2301"), f.phone(2, "2302"), f.phone(3, "2304"), f.phone(4, "2305", enabled=False)),
        agent_groups=(
            f.group(
                1,
                "callers",
                allowed_actions="originate,transfer_internal,transfer_external,listen",
                allowed_call_types="local",
            ),
            f.group(2, "restricted", allowed_actions="transfer_internal", allowed_call_types="local,mobile"),
        ),
        agents=(f.agent(1, "1001", group_id=1), f.agent(2, "1002", group_id=2), f.agent(3, "1003")),
        queues=(f.queue(1, "sales", max_wait=30),),
        did_routes=(
            f.route(1, "5400", "queue", "sales"),
            f.route(2, "5401", "hangup", hangup_cause=21),
            f.route(3, "5402", "redirect", "sip:x@127.0.0.9"),
        ),
        service_numbers=(ServiceNumber(1, "112", "emergency", "external", "112", ""),),
        call_type_rules=(CallTypeRule(1, 10, "_[2-7]XXXXXX", "local"), CallTypeRule(2, 20, "_9XXXXXXXXX", "mobile")),
    )


def agent(s: ConfigSnapshot, number: str) -> Agent:
    return s.agent_by_number[number]


# ---------------------------------------------------------------------------------------------- permissions
def test_group_actions_decide_and_no_group_means_no_limits() -> None:
    s = snap()
    assert a.refusal(s, agent(s, "1001"), "originate") is None
    why = a.refusal(s, agent(s, "1002"), "originate")
    assert why == "action originate is not allowed for agent 1002 (group restricted allows: transfer_internal)"
    assert a.refusal(s, agent(s, "1002"), "listen") is not None
    assert a.refusal(s, agent(s, "1003"), "barge") is None  # no group: no limits, as for call types
    assert a.refusal(s, None, "barge") is None  # an operator acting for nobody in particular


def test_call_types_of_dialled_numbers_follow_the_router() -> None:
    s = snap()
    alice = agent(s, "1001")
    assert a.call_type_refusal(s, alice, "2345678") is None  # local
    assert a.call_type_refusal(s, alice, "2304") is None  # one of our phones: internal
    assert a.call_type_refusal(s, alice, "5400") is None  # one of our DIDs: internal
    assert a.call_type_refusal(s, alice, "112") is None  # a service number is open to everyone
    assert a.call_type_refusal(s, alice, "9123456789") == (
        "call type mobile of 9123456789 is not allowed for agent 1001 (group callers)"
    )
    assert "international" in (a.call_type_refusal(s, alice, "+4930123456") or "")
    assert a.call_type_refusal(s, agent(s, "1002"), "9123456789") is None
    assert a.call_type_refusal(s, agent(s, "1003"), "+4930123456") is None


@pytest.mark.parametrize(("mode", "options"), [("listen", "uqES"), ("whisper", "uqESw"), ("barge", "uqESB")])
def test_spy_options(mode: str, options: str) -> None:
    assert a.spy_options(mode) == options
    assert "d" not in options  # DTMF mode switching would let a listener barge in


def test_unknown_spy_mode_is_refused() -> None:
    with pytest.raises(ValidationError, match="mode: 'shout' is not one of listen, whisper, barge"):
        a.spy_options("shout")


# ---------------------------------------------------------------------------------------------- targets
@pytest.mark.parametrize(
    ("text", "kind", "permission"),
    [
        ("2304", "phone", "transfer_internal"),
        ("1002", "agent", "transfer_internal"),
        ("5400", "did", "transfer_internal"),
        ("sales", "queue", "transfer_internal"),
        ("112", "service", "transfer_internal"),
        ("2345678", "external", "transfer_external"),
        ("+4930123456", "external", "transfer_external"),
        ("queue:sales", "queue", "transfer_internal"),
        ("external:2304", "external", "transfer_external"),  # explicit beats the configuration
        (" 2304 ", "phone", "transfer_internal"),
    ],
)
def test_targets_are_classified_against_the_configuration(text: str, kind: str, permission: str) -> None:
    t = a.classify_target(snap(), text)
    value = text.strip().partition(":")[2] if ":" in text else text.strip()
    assert (t.kind, t.value, t.permission) == (kind, value, permission)
    assert t.internal == (kind != "external")


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("", ValidationError, "target: is empty"),
        ("fax:1", ValidationError, "'fax' is not one of"),
        ("queue:nope", NotFoundError, "queue 'nope' does not exist"),
        ("external:12ab", ValidationError, "is not dialable"),
        ("somebody", NotFoundError, "is no phone, agent, DID, queue or dialable number"),
    ],
)
def test_bad_targets(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        a.classify_target(snap(), text)


def ctx(s: ConfigSnapshot, logged_in: dict[str, str] | None = None) -> RouteContext:
    phones = logged_in or {}
    return RouteContext(snap=s, now=datetime(2026, 11, 25, 12, tzinfo=UTC), phone_of_agent=phones.get)


def test_target_decisions_reuse_the_router() -> None:
    s = snap()
    d = a.target_decision(ctx(s), Target("phone", "2304"))
    assert (d.action, dict(d.variables)["HOTLINE_DIAL"]) == ("dial", "PJSIP/2304")
    d = a.target_decision(ctx(s, {"1002": "2302"}), Target("agent", "1002"))
    assert dict(d.variables)["HOTLINE_DIAL"] == "PJSIP/2302"
    d = a.target_decision(ctx(s), Target("did", "5400"))
    assert (d.action, dict(d.variables)["HOTLINE_QUEUE"]) == ("queue", "sales")
    d = a.target_decision(ctx(s), Target("external", "2345678"))
    assert dict(d.variables)["HOTLINE_DIAL"] == "PJSIP/2345678@carrier"
    d = a.target_decision(ctx(s), Target("service", "112"))
    assert dict(d.variables)["HOTLINE_DIAL"] == "PJSIP/112@carrier"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (Target("agent", "1002"), "agent 1002 is not logged in"),
        (Target("did", "5401"), "hang up with cause 21"),
        (Target("did", "5402"), "SIP 302"),
        (Target("phone", "2305"), "does not exist or is disabled"),
    ],
)
def test_targets_that_reach_nobody_are_refused(target: Target, message: str) -> None:
    with pytest.raises(ConflictError, match=message):
        a.target_decision(ctx(snap()), target)


# ---------------------------------------------------------------------------------------------- channels
def test_channels_from_a_recorded_queue_call() -> None:
    channels = recorded("coreshowchannels_queue_call.ami")
    assert [(c.name, c.endpoint, c.application) for c in channels] == [
        ("PJSIP/carrier-00000000", "carrier", "Queue"),
        ("PJSIP/2301-00000001", "2301", "AppQueue"),
    ]
    assert {c.call_id for c in channels} == {CALL_ID}
    caller, alice = channels
    assert caller.bridge_id == alice.bridge_id != "" and caller.uniqueid == alice.linkedid
    assert a.bridged_with(channels, alice) == [caller]
    leg, who = a.pick_agent_leg(channels, {"2301": agent(snap(), "1001")}, CALL_ID, None)
    assert (leg, who.number) == (alice, "1001")


def test_the_agent_leg_must_be_known_and_unambiguous() -> None:
    channels = recorded("coreshowchannels_queue_call.ami")
    s = snap()
    with pytest.raises(ConflictError, match="has no channel of a logged-in agent"):
        a.pick_agent_leg(channels, {}, CALL_ID, None)
    with pytest.raises(ConflictError, match="agent 1002 has no channel in call"):
        a.pick_agent_leg(channels, {"2301": agent(s, "1001")}, CALL_ID, "1002")
    both = {"2301": agent(s, "1001"), "carrier": agent(s, "1002")}
    with pytest.raises(ConflictError, match="channels of agents 1001, 1002: name the one acting"):
        a.pick_agent_leg(channels, both, CALL_ID, None)
    assert a.pick_agent_leg(channels, both, CALL_ID, "1002")[0].name == "PJSIP/carrier-00000000"


def test_an_attended_transfer_in_consultation() -> None:
    channels = recorded("coreshowchannels_attended_consult.ami")
    by_name = {c.name: c for c in channels}
    alice = by_name["PJSIP/2301-00000001"]
    # Alice talks to the consultation leg; the caller waits alone in the queue's bridge
    assert [c.name for c in a.bridged_with(channels, alice)] == ["Local/0@hotline-control-00000000;1"]
    assert a.bridged_with(channels, by_name["PJSIP/carrier-00000000"]) == []
    assert by_name["Local/0@hotline-control-00000000;2"].application == "Dial"
    assert by_name["Local/0@hotline-control-00000000;1"].endpoint == ""


def test_held_legs() -> None:
    held, holding = a.held_legs(recorded("coreshowchannels_hold.ami"))
    assert (held.name, held.application) == ("PJSIP/carrier-00000003", "MusicOnHold")
    assert (holding.name, holding.application) == ("PJSIP/2301-00000004", "Wait")
    assert held.bridge_id == holding.bridge_id == ""
    with pytest.raises(ConflictError, match="not on hold"):
        a.held_legs(recorded("coreshowchannels_queue_call.ami"))


# ---------------------------------------------------------------------------------------------- AMI actions
def test_originate_fields() -> None:
    fields = a.originate_fields(phone="2301", callerid='"Desk 2301" <2301>', number="2345678", call_id=CALL_ID,
                                actor="cli root, the boss", timeout_s=30)  # fmt: skip
    assert fields == [
        ("Channel", "PJSIP/2301"),
        ("Context", "hotline-phones"),
        ("Exten", "2345678"),
        ("Priority", "1"),
        ("Timeout", "30000"),
        ("CallerID", '"Desk 2301" <2301>'),
        ("Async", "true"),
        ("Variable", f"__HOTLINE_CALL_ID={CALL_ID}"),
        ("Variable", "HOTLINE_ORIGINATED_BY=cli root  the boss"),  # a comma would start another variable
    ]


def test_spy_fields_name_the_exact_channel() -> None:
    fields = dict(a.spy_fields(supervisor_phone="2303", channel="PJSIP/2301-00000001", mode="whisper", agent="1001",
                               call_id=CALL_ID, actor="cli root", timeout_s=20))  # fmt: skip
    assert fields["Channel"] == "PJSIP/2303" and fields["Application"] == "ChanSpy"
    assert fields["Data"] == "PJSIP/2301-00000001,uqESw" and fields["Timeout"] == "20000"


def test_transfer_and_hold_fields() -> None:
    d = a.target_decision(ctx(snap()), Target("phone", "2304"))
    assert a.transfer_variables(d, inherit=False) == [("HOTLINE_DIAL", "PJSIP/2304"), ("HOTLINE_DIAL_TIMEOUT", "30")]
    assert a.transfer_variables(d, inherit=True) == [
        ("_HOTLINE_DIAL", "PJSIP/2304"),
        ("_HOTLINE_DIAL_TIMEOUT", "30"),
        ("_HOTLINE_ACTION", "dial"),
    ]
    assert a.blind_transfer_fields("PJSIP/2301-1", d) == [
        ("Channel", "PJSIP/2301-1"), ("Context", "hotline-do-dial"), ("Exten", "s"),
    ]  # fmt: skip
    assert a.atxfer_fields("PJSIP/2301-1") == [("Channel", "PJSIP/2301-1"), ("Context", "hotline-control"),
                                                ("Exten", "0#")]  # fmt: skip
    hold = dict(a.hold_fields("PJSIP/carrier-1", "PJSIP/2301-1"))
    assert (hold["Channel"], hold["Exten"], hold["ExtraChannel"], hold["ExtraExten"]) == (
        "PJSIP/carrier-1", "hold", "PJSIP/2301-1", "holding",
    )  # fmt: skip
    assert a.unhold_fields("PJSIP/2301-1", "PJSIP/carrier-1") == [
        ("Channel1", "PJSIP/2301-1"), ("Channel2", "PJSIP/carrier-1"), ("Tone", "no"),
    ]  # fmt: skip


def test_control_dialplan_matches_the_names_the_actions_use() -> None:
    text = CONTROL_DIALPLAN
    assert f"[{r.CONTROL_CONTEXT}]" in text
    for exten in (r.HOLD_EXTEN, r.HOLDING_EXTEN, r.CONSULT_EXTEN, r.QUEUE_HOLD_EXTEN):
        assert f"exten => {exten},1," in text
    assert r.CONSULT_EXTEN.isdigit() and r.QUEUE_HOLD_EXTEN.isdigit()  # Atxfer keys them as DTMF


def test_queue_calls_are_held_in_their_bridge() -> None:
    queue_call = recorded("coreshowchannels_queue_call.ami")
    alice = next(c for c in queue_call if c.endpoint == "2301")
    assert a.hold_by_transfer(alice)  # AppQueue: Redirect + Bridge would lose app_queue's AgentComplete
    held = recorded("coreshowchannels_hold.ami")
    assert not a.hold_by_transfer(next(c for c in held if c.endpoint == "2301"))
    assert a.busy_with(queue_call) is None
    assert a.busy_with(held) == "on hold"
    assert a.busy_with(recorded("coreshowchannels_attended_consult.ami")) == "in an attended transfer"
    assert not a.on_hold_by_transfer(held)


def test_user_event_fields() -> None:
    fields = a.user_event_fields(CALL_ID, {"control": "hangup", "reason": "line\r\nbreak"}, "PJSIP/2301-1")
    assert fields == [
        ("UserEvent", "HotlineControl"),
        ("ChanVariable", f"HOTLINE_CALL_ID={CALL_ID}"),
        ("Channel", "PJSIP/2301-1"),
        ("control", "hangup"),
        ("reason", "line  break"),
    ]
    with pytest.raises(ValidationError, match="Uniqueid: is a header name the journal reads itself"):
        a.user_event_fields(CALL_ID, {"Uniqueid": "x"})
    with pytest.raises(ValidationError, match="call_id"):
        a.user_event_fields("", {})


# ---------------------------------------------------------------------------------------------- input
@pytest.mark.parametrize("number", ["2345678", "+4930123456", "*11", "1#", "0" * 32])
def test_dialable_numbers(number: str) -> None:
    assert a.check_number(number) == number


@pytest.mark.parametrize("number", ["", "12ab", "+", "1 2", "0" * 33, "12,3", "2345\n678"])
def test_undialable_numbers(number: str) -> None:
    with pytest.raises(ValidationError, match="number: "):
        a.check_number(number)


def test_call_ids_and_channels() -> None:
    assert a.check_call_id(f" {CALL_ID} ") == CALL_ID
    assert a.check_call_id("fb-node1-1795657890.41") == "fb-node1-1795657890.41"
    for bad in ("", "a b", "x" * 41, "id;drop"):
        with pytest.raises(ValidationError, match="call_id"):
            a.check_call_id(bad)
    assert a.check_channel("Local/0@hotline-control-00000000;1") == "Local/0@hotline-control-00000000;1"
    for bad in ("PJSIP", "PJSIP/a b", "PJSIP/1,2", "/x"):
        with pytest.raises(ValidationError, match="channel"):
            a.check_channel(bad)


def test_safe_values_never_carry_separators_or_controls() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "é\x00\x7f"
    for _ in range(2000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        out = a.safe(value)
        assert len(out) <= 120
        assert not any(ch in out for ch in ",=|\r\n\x00\x7f")
