"""Call control, the pure part: who may do what, where a transfer goes, and the AMI actions that do it.

No I/O here (style.md principle 1): `control.CallControlService` gathers the facts (the configuration
snapshot, the agents' live state, the node's channel list) and sends what these functions build.

Facts about Asterisk 22 this relies on (checked in its source, main/manager.c, main/bridge*.c,
apps/app_chanspy.c; the end-to-end tests run them on a real node):
- `Originate` with `Async: true` answers at once; the channel to the agent's phone rings for `Timeout`
  milliseconds and, once answered, runs the dialplan at Context/Exten/Priority.  Each `Variable` header
  is split on commas by Asterisk, so no value we put in one may contain a comma.
- `BlindTransfer` moves every party bridged with `Channel` (the transferer) to Context/Exten and hangs
  the transferer up; the transferee keeps its channel variables.  It needs no DTMF feature code.
- `Atxfer` only emulates the attended-transfer DTMF feature on the transferer: features.conf must map
  `atxfer` (empty by default) and the transferer must have been given transfer rights (Queue option `t`).
- `Redirect` of one party of a two-party bridge dissolves the bridge and hangs the other party up (read
  in main/bridge.c, not exercised: Hotline always moves both); with `ExtraChannel` both move together.
  `Bridge` joins two channels that run dialplan, but it first swaps each for a "Surrogate" channel
  (ast_channel_yank, main/bridge.c): app_queue follows the masquerade, and its AgentComplete then names
  an internal channel, which AMI never shows ("No agent event string, bailing" in the node's log; seen
  on 22.10), so Hotline would never see the agent's queue call end.
  Queue calls are therefore held inside their bridge instead: an attended transfer to a silent leg
  makes the bridge play music on hold to the caller, CancelAtxfer ends it.
- ChanSpy's option `u` takes an exact channel name: the plain prefix form `PJSIP/2201` would also match
  `PJSIP/22010-...`.  Option `d` (switch modes by DTMF) is never given: it would let a supervisor allowed
  only to listen press 6 and barge in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hotline.asterisk.config_render import (
    CONSULT_EXTEN,
    CONTROL_CONTEXT,
    HOLD_EXTEN,
    HOLDING_EXTEN,
    PHONES_CONTEXT,
    QUEUE_HOLD_EXTEN,
)
from hotline.domain.calls import pjsip_endpoint
from hotline.domain.config import Agent, AgentGroup, ConfigSnapshot
from hotline.domain.limits import classify
from hotline.errors import ConflictError, NotFoundError, ValidationError
from hotline.features.routing.router import Decision, RouteContext, decide_inbound, destination
from hotline.protocols.ami import Message

#: Group actions (domain/config.py GROUP_ACTIONS) by what they are used for here.
ORIGINATE = "originate"
TRANSFER_INTERNAL = "transfer_internal"
TRANSFER_EXTERNAL = "transfer_external"
SPY_MODES: dict[str, str] = {"listen": "", "whisper": "w", "barge": "B"}

#: Kinds of transfer targets; all but 'external' are ours.
TARGET_KINDS: tuple[str, ...] = ("phone", "agent", "did", "queue", "service", "external")
#: The routing decisions a transferred party may be sent to: anything else would hang it up or
#: redirect it (SIP 302 only works on unanswered calls).
TRANSFERABLE_ACTIONS = frozenset({"dial", "queue", "ivr"})

_DIALABLE = re.compile(r"^\+?[0-9*#]{1,32}$")
_CALL_ID = re.compile(r"^[A-Za-z0-9._-]{1,40}$")  # calls.call_id is String(40): UUIDs, 'fb-<uniqueid>'
_CHANNEL = re.compile(r"^[A-Za-z0-9]+/[^\s,|]{1,200}$")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f,=|]")
_UNSAFE_HEADER = re.compile(r"[\x00-\x1f\x7f]")
_RESERVED_HEADERS = frozenset(
    {
        "action",
        "actionid",
        "userevent",
        "chanvariable",
        "uniqueid",
        "linkedid",
        "destuniqueid",
        "channel",
        "event",
        "privilege",
        "timestamp",
    }
)


# ---------------------------------------------------------------------------------------------- input
def check_call_id(call_id: str) -> str:
    call_id = call_id.strip()
    if not _CALL_ID.fullmatch(call_id):
        raise ValidationError("call_id", f"{call_id!r} is not a Hotline call id")
    return call_id


def check_channel(name: str) -> str:
    name = name.strip()
    if not _CHANNEL.fullmatch(name):
        raise ValidationError("channel", f"{name!r} is not a channel name like PJSIP/2101-0000000a")
    return name


def check_number(number: str) -> str:
    number = number.strip()
    if not _DIALABLE.fullmatch(number):
        raise ValidationError("number", f"{number!r} is not dialable (digits, * and #, optionally a leading +)")
    return number


def safe(value: str, limit: int = 120) -> str:
    """A value fit for an AMI `Variable` or UserEvent header: no controls, commas, '=' or '|'."""
    return _UNSAFE.sub(" ", value).strip()[:limit]


# ---------------------------------------------------------------------------------------------- permissions
def group_of(snap: ConfigSnapshot, agent: Agent | None) -> AgentGroup | None:
    if agent is None or agent.group_id is None:
        return None
    return snap.group_by_id.get(agent.group_id)


def refusal(snap: ConfigSnapshot, agent: Agent | None, action: str) -> str | None:
    """None when `agent` may do `action`, else why not.

    No agent (an operator acting from the CLI or for a phone nobody is logged in on) and agents without
    a group have no limits, as for call types (domain/limits.py)."""
    group = group_of(snap, agent)
    if agent is None or group is None:
        return None
    if action not in group.actions:
        allowed = ", ".join(sorted(group.actions)) or "none"
        return f"action {action} is not allowed for agent {agent.number} (group {group.name} allows: {allowed})"
    return None


def call_type_refusal(snap: ConfigSnapshot, agent: Agent | None, number: str) -> str | None:
    """A number the agent makes Asterisk dial (click-to-call, transfer outside) obeys the group's call
    types as in the router: our own numbers are 'internal', service numbers and emergency are open."""
    group = group_of(snap, agent)
    if agent is None or group is None or number in snap.service_by_number:
        return None
    internal = number in snap.phone_by_name or number in snap.agent_by_number or number in snap.route_by_did
    call_type = classify(number, snap.call_type_rules, internal)
    if call_type not in ("internal", "emergency") and call_type not in group.call_types:
        return f"call type {call_type} of {number} is not allowed for agent {agent.number} (group {group.name})"
    return None


def spy_options(mode: str) -> str:
    """ChanSpy options: exact channel (u), quiet (q), end with the call (E) or at once when it is gone
    (S), plus w (whisper) or B (barge)."""
    if mode not in SPY_MODES:
        raise ValidationError("mode", f"{mode!r} is not one of {', '.join(SPY_MODES)}")
    return "uqES" + SPY_MODES[mode]


# ---------------------------------------------------------------------------------------------- targets
@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    value: str

    @property
    def internal(self) -> bool:
        return self.kind != "external"

    @property
    def permission(self) -> str:
        return TRANSFER_INTERNAL if self.internal else TRANSFER_EXTERNAL

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


def classify_target(snap: ConfigSnapshot, text: str) -> Target:
    """What a transfer target names: `kind:value` explicitly, else (in the router's order) a phone, an
    agent number, one of our DIDs, a queue, a service number, or else an outside number."""
    text = text.strip()
    if not text:
        raise ValidationError("target", "is empty")
    kind, sep, value = text.partition(":")
    if sep:
        if kind not in TARGET_KINDS:
            raise ValidationError("target", f"{kind!r} is not one of {', '.join(TARGET_KINDS)}")
        known = {
            "phone": snap.phone_by_name,
            "agent": snap.agent_by_number,
            "did": snap.route_by_did,
            "queue": snap.queue_by_name,
            "service": snap.service_by_number,
        }.get(kind)
        if known is not None and value not in known:
            raise NotFoundError(f"{kind} {value!r} does not exist")
        if known is None:
            value = check_number(value)
        return Target(kind, value)
    for kind, known in (
        ("phone", snap.phone_by_name),
        ("agent", snap.agent_by_number),
        ("did", snap.route_by_did),
        ("queue", snap.queue_by_name),
        ("service", snap.service_by_number),
    ):
        if text in known:
            return Target(kind, text)
    if _DIALABLE.fullmatch(text):
        return Target("external", text)
    raise NotFoundError(f"transfer target {text!r} is no phone, agent, DID, queue or dialable number")


def target_decision(ctx: RouteContext, target: Target) -> Decision:
    """Where the transferred party goes, decided as the router would; refused unless it reaches someone."""
    if target.kind == "did":
        decision = decide_inbound(ctx, target.value)
    elif target.kind == "service":
        s = ctx.snap.service_by_number[target.value]
        decision = destination(ctx, s.dest_type, s.dest_value)
    else:
        decision = destination(ctx, target.kind, target.value)
    if decision.action not in TRANSFERABLE_ACTIONS:
        raise ConflictError(f"cannot transfer to {target}: {decision.summary}")
    return decision


# ---------------------------------------------------------------------------------------------- channels
@dataclass(frozen=True, slots=True)
class LiveChannel:
    """One channel as a node's `CoreShowChannels` lists it now."""

    node: str
    name: str
    uniqueid: str
    linkedid: str
    call_id: str
    state: str
    context: str
    exten: str
    application: str
    bridge_id: str
    caller: str

    @property
    def endpoint(self) -> str:
        """The PJSIP endpoint: 'PJSIP/2101-0000000a' -> '2101' ('' for other technologies)."""
        return pjsip_endpoint(self.name)

    @classmethod
    def from_message(cls, node: str, msg: Message) -> LiveChannel:
        g = msg.get
        return cls(
            node=node,
            name=g("Channel") or "",
            uniqueid=g("Uniqueid") or "",
            linkedid=g("Linkedid") or "",
            call_id=msg.chan_variables.get("HOTLINE_CALL_ID") or "",
            state=g("ChannelStateDesc") or "",
            context=g("Context") or "",
            exten=g("Exten") or "",
            application=g("Application") or "",
            bridge_id=g("BridgeId") or "",
            caller=g("CallerIDNum") or "",
        )


def bridged_with(channels: Iterable[LiveChannel], leg: LiveChannel) -> list[LiveChannel]:
    """The channels in the same bridge as `leg` (its peers in the conversation)."""
    if not leg.bridge_id:
        return []
    return [c for c in channels if c.bridge_id == leg.bridge_id and c.name != leg.name]


def pick_agent_leg(
    channels: Sequence[LiveChannel], agents_by_phone: dict[str, Agent], call_id: str, agent: str | None
) -> tuple[LiveChannel, Agent]:
    """The channel of the agent acting on the call: the one named by `agent`, else the only channel of
    the call on a phone an agent is logged in on.  `agents_by_phone`: endpoint -> logged-in agent."""
    legs = [(c, agents_by_phone[c.endpoint]) for c in channels if c.endpoint in agents_by_phone]
    if agent is not None:
        mine = [(c, a) for c, a in legs if a.number == agent]
        if not mine:
            raise ConflictError(f"agent {agent} has no channel in call {call_id}")
        legs = mine
    if not legs:
        raise ConflictError(f"call {call_id} has no channel of a logged-in agent")
    agents = sorted({a.number for _, a in legs})
    if len(agents) > 1:
        raise ConflictError(f"call {call_id} has channels of agents {', '.join(agents)}: name the one acting")
    bridged = [(c, a) for c, a in legs if c.bridge_id]
    return (bridged or legs)[0]


def held_legs(channels: Sequence[LiveChannel]) -> tuple[LiveChannel, LiveChannel]:
    """(held party, holding agent) of a call put on hold by `hold`."""
    held = [c for c in channels if c.context == CONTROL_CONTEXT and c.exten == HOLD_EXTEN]
    holding = [c for c in channels if c.context == CONTROL_CONTEXT and c.exten == HOLDING_EXTEN]
    if len(held) != 1 or len(holding) != 1:
        raise ConflictError("the call is not on hold")
    return held[0], holding[0]


# ---------------------------------------------------------------------------------------------- AMI actions
Fields = list[tuple[str, str]]


def originate_fields(*, phone: str, callerid: str, number: str, call_id: str, actor: str, timeout_s: float) -> Fields:
    """Click-to-call: ring the agent's phone; once answered it dials `number` through the router."""
    return [
        ("Channel", f"PJSIP/{phone}"),
        ("Context", PHONES_CONTEXT),
        ("Exten", number),
        ("Priority", "1"),
        ("Timeout", str(int(timeout_s * 1000))),
        ("CallerID", callerid or phone),
        ("Async", "true"),
        # the double underscore makes every channel of the call inherit the id (the router keeps it)
        ("Variable", f"__HOTLINE_CALL_ID={call_id}"),
        ("Variable", f"HOTLINE_ORIGINATED_BY={safe(actor)}"),
    ]


def spy_fields(
    *, supervisor_phone: str, channel: str, mode: str, agent: str, call_id: str, actor: str, timeout_s: float
) -> Fields:
    return [
        ("Channel", f"PJSIP/{supervisor_phone}"),
        ("Application", "ChanSpy"),
        ("Data", f"{channel},{spy_options(mode)}"),
        ("Timeout", str(int(timeout_s * 1000))),
        ("CallerID", f'"{mode} {agent}" <{agent}>'),  # what the supervisor's display shows
        ("Async", "true"),
        # deliberately not HOTLINE_CALL_ID: the spy leg is not part of the call (it must not keep the
        # call's record open), it only names it
        ("Variable", f"HOTLINE_SPY_CALL_ID={call_id}"),
        ("Variable", f"HOTLINE_SPY_BY={safe(actor)}"),
    ]


def setvar_fields(channel: str, name: str, value: str) -> Fields:
    return [("Channel", channel), ("Variable", name), ("Value", value)]


def transfer_variables(decision: Decision, *, inherit: bool) -> Fields:
    """The decision's variables; `inherit`: with one leading underscore, so a channel the holder creates
    (the attended transfer's consultation leg) gets them."""
    prefix = "_" if inherit else ""
    out = [(prefix + name, value) for name, value in decision.variables]
    if inherit:
        out.append(("_HOTLINE_ACTION", decision.action))
    return out


def blind_transfer_fields(transferer: str, decision: Decision) -> Fields:
    return [("Channel", transferer), ("Context", f"hotline-do-{decision.action}"), ("Exten", "s")]


def atxfer_fields(transferer: str, exten: str = CONSULT_EXTEN) -> Fields:
    # '#' ends the number: the first digit usually interrupts the "transfer" prompt, and the digit
    # collector then waits for one more digit for `transferdigittimeout` (3 s) unless '#' follows
    return [("Channel", transferer), ("Context", CONTROL_CONTEXT), ("Exten", exten + "#")]


def hold_by_transfer(agent_leg: LiveChannel) -> bool:
    """Queue calls are held inside the queue's bridge (an attended transfer to a silent leg): moving them
    out and back with Redirect and Bridge would lose app_queue's AgentComplete (module docstring)."""
    return agent_leg.application == "AppQueue"


def on_hold_by_transfer(channels: Sequence[LiveChannel]) -> bool:
    return any(c.context == CONTROL_CONTEXT and c.exten == QUEUE_HOLD_EXTEN for c in channels)


def busy_with(channels: Sequence[LiveChannel]) -> str | None:
    """What control action is under way on the call ('on hold', 'in an attended transfer'), else None."""
    extens = {c.exten for c in channels if c.context == CONTROL_CONTEXT}
    if extens & {HOLD_EXTEN, HOLDING_EXTEN, QUEUE_HOLD_EXTEN}:
        return "on hold"
    if CONSULT_EXTEN in extens:
        return "in an attended transfer"
    return None


def hold_fields(held: str, holding: str) -> Fields:
    return [
        ("Channel", held),
        ("Context", CONTROL_CONTEXT),
        ("Exten", HOLD_EXTEN),
        ("Priority", "1"),
        ("ExtraChannel", holding),
        ("ExtraContext", CONTROL_CONTEXT),
        ("ExtraExten", HOLDING_EXTEN),
        ("ExtraPriority", "1"),
    ]


def unhold_fields(holding: str, held: str) -> Fields:
    return [("Channel1", holding), ("Channel2", held), ("Tone", "no")]


def hangup_fields(channel: str, cause: int = 16) -> Fields:
    return [("Channel", channel), ("Cause", str(cause))]


def user_event_fields(call_id: str, data: dict[str, str], channel: str | None = None) -> Fields:
    """A journal entry sent as an AMI `UserEvent` (the CLI's way into the running service's journal).

    Asterisk copies every header of the action into the event; Hotline's journal files the event under
    the call named by its `ChanVariable: HOTLINE_CALL_ID=` header, exactly as for channel events, so the
    entry takes its place in the call's sequence.  No `Uniqueid` header: the call tracker would count it
    as a live channel of the call."""
    out: Fields = [("UserEvent", "HotlineControl"), ("ChanVariable", f"HOTLINE_CALL_ID={check_call_id(call_id)}")]
    if channel:
        out.append(("Channel", safe(channel, 200)))
    for key, value in data.items():
        if key.lower() in _RESERVED_HEADERS:
            raise ValidationError(key, "is a header name the journal reads itself")
        out.append((key, _UNSAFE_HEADER.sub(" ", value).strip()[:400]))
    return out
