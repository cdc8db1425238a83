"""Where a call goes: pure decisions from the in-memory configuration and the agents' live state.

A decision is data (`Decision`): the dialplan action to run (a context `hotline-do-<action>`) and the
channel variables that parameterise it; the AGI handler only writes them to the channel.  No I/O here,
so decisions are unit-testable and take microseconds.  What the router needs beyond the snapshot comes
in a `RouteContext`: the time (time conditions), how a prompt name becomes what the node plays, who is
logged in where, and each agent's usage of today's quota.

Entry points:
- `decide_inbound(ctx, did)`: a call from the carrier to one of our numbers;
- `decide_internal(ctx, phone, dialled)`: a number dialled on a phone: feature codes (agent login /
  logoff / pause), service numbers (help, emergency), then, only with an agent logged in, other phones,
  agents, our DIDs and outside numbers, the latter checked against the agent group's limits;
- `decide_ivr(ctx, menu, digit, attempt)`: the caller pressed `digit` (or nothing) in a menu;
- `decide_overflow(ctx, queue, status)`: Queue() returned without an agent (timeout, full, empty).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from hotline.domain.config import Agent, ConfigSnapshot
from hotline.domain.limits import check, classify
from hotline.domain.schedule import is_open

# Q.850 causes we use by name.
CAUSE_UNALLOCATED = 1
CAUSE_NORMAL = 16
CAUSE_SUBSCRIBER_ABSENT = 20
CAUSE_CALL_REJECTED = 21
CAUSE_OUTGOING_BARRED = 52
CAUSE_FACILITY_REJECTED = 29

# Core sounds (asterisk-core-sounds-en) used when a call is refused or a code answers.
SOUND_NOT_ALLOWED = "ss-noservice"
SOUND_LOGIN_FIRST = "agent-user"

_DIALABLE = re.compile(r"^\+?[0-9*#]{1,32}$")
_MAX_HOPS = 8  # time condition -> time condition ... chains are configuration errors past this


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # the dialplan context hotline-do-<action>
    variables: tuple[tuple[str, str], ...]
    summary: str  # one line for the journal: what was decided and why
    call_type: str = ""
    agent: str = ""  # the agent placing the call (outbound), for quotas

    def as_dict(self) -> dict[str, str]:
        out = {"action": self.action, "summary": self.summary, **dict(self.variables)}
        if self.call_type:
            out["call_type"] = self.call_type
        return out


def _no_agent(_: str) -> Agent | None:
    return None


def _no_phone(_: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class RouteContext:
    snap: ConfigSnapshot
    now: datetime
    #: a prompt name -> what Playback()/Read() on this node must be given (uploaded prompts: a node path)
    sound: Callable[[str], str] = field(default=lambda name: name)
    #: the agent logged in on a phone (by phone name), if any
    agent_on_phone: Callable[[str], Agent | None] = _no_agent
    #: the phone an agent (by number) is logged in on, if any
    phone_of_agent: Callable[[str], str | None] = _no_phone
    #: (calls, seconds) the agent used today
    usage_today: Callable[[int], tuple[int, int]] = lambda _agent_id: (0, 0)
    login_code: str = "*11"
    logoff_code: str = "*12"
    pause_code: str = "*13"
    unpause_code: str = "*14"


def _hangup(ctx: RouteContext, cause: int, why: str, message: str = "") -> Decision:
    sound = ctx.sound(message) if message else ""
    return Decision("hangup", (("HOTLINE_CAUSE", str(cause)), ("HOTLINE_MESSAGE", sound)), why)


def _dial(target: str, timeout: int, why: str) -> Decision:
    return Decision("dial", (("HOTLINE_DIAL", target), ("HOTLINE_DIAL_TIMEOUT", str(timeout))), why)


def destination(
    ctx: RouteContext,
    dest_type: str,
    dest_value: str,
    *,
    hangup_cause: int | None = None,
    message: str = "",
    hops: int = 0,
) -> Decision:
    """Resolve one destination (shared by DID routes, IVR options, time conditions, overflows)."""
    snap = ctx.snap
    if hops > _MAX_HOPS:
        return _hangup(ctx, CAUSE_UNALLOCATED, f"more than {_MAX_HOPS} chained destinations (a loop?)")
    if dest_type == "queue":
        q = snap.queue_by_name.get(dest_value)
        if q is None:
            return _hangup(ctx, CAUSE_UNALLOCATED, f"queue {dest_value!r} does not exist")
        # Only what varies per queue: every AGI command is a round trip on the node (bench/CALLS.md). The
        # options ('t') are in the dialplan, and a caller Queue() gives back always asks Hotline (overflow).
        variables: tuple[tuple[str, str], ...] = (
            ("HOTLINE_QUEUE", q.name),
            ("HOTLINE_QUEUE_TIMEOUT", str(q.max_wait) if q.max_wait else ""),
            ("HOTLINE_QUEUE_PRIO", str(q.priority)),
        )
        return Decision("queue", variables, f"queue {q.name}")
    if dest_type == "phone":
        p = snap.phone_by_name.get(dest_value)
        if p is None or not p.enabled:
            return _hangup(ctx, CAUSE_UNALLOCATED, f"phone {dest_value!r} does not exist or is disabled")
        return _dial(f"PJSIP/{p.name}", 30, f"phone {p.name}")
    if dest_type == "agent":
        a = snap.agent_by_number.get(dest_value)
        if a is None or not a.enabled:
            return _hangup(ctx, CAUSE_UNALLOCATED, f"agent {dest_value!r} does not exist or is disabled")
        phone = ctx.phone_of_agent(a.number)
        if phone is None:
            return _hangup(ctx, CAUSE_SUBSCRIBER_ABSENT, f"agent {a.number} is not logged in")
        return _dial(f"PJSIP/{phone}", 30, f"agent {a.number} on phone {phone}")
    if dest_type == "external":
        if not _DIALABLE.match(dest_value):
            return _hangup(ctx, CAUSE_UNALLOCATED, f"external number {dest_value!r} is not dialable")
        return _dial(f"PJSIP/{dest_value}@carrier", 60, f"external {dest_value}")
    if dest_type == "hangup":
        cause = hangup_cause or CAUSE_NORMAL
        return _hangup(ctx, cause, f"hang up with cause {cause}" + (f" after {message}" if message else ""), message)
    if dest_type == "redirect":
        # Transfer() on an unanswered PJSIP channel answers the INVITE with 302 and this Contact
        # (asterisk-reference.md 5.1); the hotline-do-redirect context must not Answer() first.
        return Decision("redirect", (("HOTLINE_REDIRECT", dest_value),), f"SIP 302 to {dest_value}")
    if dest_type == "ivr":
        menu = snap.ivr_by_name.get(dest_value)
        if menu is None:
            return _hangup(ctx, CAUSE_UNALLOCATED, f"IVR menu {dest_value!r} does not exist")
        variables = (
            ("HOTLINE_IVR", menu.name),
            ("HOTLINE_IVR_ASK", ctx.sound(menu.prompt)),
            ("HOTLINE_IVR_TIMEOUT", str(menu.timeout_s)),
        )
        return Decision("ivr", variables, f"IVR {menu.name}")
    if dest_type == "time":
        tc = snap.time_by_name.get(dest_value)
        if tc is None:
            return _hangup(ctx, CAUSE_UNALLOCATED, f"time condition {dest_value!r} does not exist")
        opened = is_open(tc.hours, tc.timezone, snap.holiday_days, ctx.now)
        t, v = (tc.open_type, tc.open_value) if opened else (tc.closed_type, tc.closed_value)
        d = destination(ctx, t, v, hops=hops + 1)
        return _explained(d, f"{tc.name} {'open' if opened else 'closed'} -> {d.summary}")
    return _hangup(ctx, CAUSE_UNALLOCATED, f"unknown destination type {dest_type!r}")


def _explained(d: Decision, summary: str) -> Decision:
    return Decision(d.action, d.variables, summary, d.call_type, d.agent)


def decide_inbound(ctx: RouteContext, did: str) -> Decision:
    route = ctx.snap.route_by_did.get(did)
    if route is None or not route.enabled:
        return _hangup(ctx, CAUSE_UNALLOCATED, f"no route for DID {did!r}")
    d = destination(ctx, route.dest_type, route.dest_value, hangup_cause=route.hangup_cause, message=route.message)
    return _explained(d, f"DID {did} -> {d.summary}")


def _code(action: str, why: str) -> Decision:
    return Decision(action, (), why)


def decide_internal(ctx: RouteContext, phone: str, dialled: str) -> Decision:
    """`phone` (the calling endpoint) dialled `dialled`."""
    snap = ctx.snap
    if dialled == ctx.login_code:
        return _code("login", f"agent login code on phone {phone}")
    if dialled == ctx.logoff_code:
        return _code("logoff", f"agent logoff code on phone {phone}")
    if dialled in (ctx.pause_code, ctx.unpause_code):
        which = "pause" if dialled == ctx.pause_code else "unpause"
        return _code(which, f"agent {which} code on phone {phone}")
    service = snap.service_by_number.get(dialled)
    if service is not None:
        d = destination(ctx, service.dest_type, service.dest_value)
        return Decision(
            d.action, d.variables, f"{service.kind} number {dialled} -> {d.summary}", service.kind
        )  # 'help' or 'emergency'; neither needs a login nor counts against limits
    agent = ctx.agent_on_phone(phone)
    if agent is None:
        return _hangup(
            ctx, CAUSE_OUTGOING_BARRED, f"phone {phone} has nobody logged in; dial {ctx.login_code}", SOUND_LOGIN_FIRST
        )
    internal = dialled in snap.phone_by_name or dialled in snap.agent_by_number or dialled in snap.route_by_did
    call_type = classify(dialled, snap.call_type_rules, internal)
    group = snap.group_by_id.get(agent.group_id) if agent.group_id is not None else None
    calls, seconds = ctx.usage_today(agent.id)
    refusal = check(group, call_type, calls_today=calls, seconds_today=seconds)
    if refusal is not None:
        d = _hangup(ctx, CAUSE_OUTGOING_BARRED, f"refused: {refusal}", SOUND_NOT_ALLOWED)
        return Decision("refused", d.variables, d.summary, call_type, agent.number)
    if dialled in snap.phone_by_name:
        d = destination(ctx, "phone", dialled)
    elif dialled in snap.agent_by_number:
        d = destination(ctx, "agent", dialled)
    elif dialled in snap.route_by_did:
        d = decide_inbound(ctx, dialled)
    else:
        d = destination(ctx, "external", dialled)
    return Decision(d.action, d.variables, f"agent {agent.number}: {d.summary}", call_type, agent.number)


def decide_ivr(ctx: RouteContext, menu_name: str, digit: str, attempt: int) -> Decision:
    """After Read() in menu `menu_name`: the option's destination, a retry, or the menu's failure path."""
    menu = ctx.snap.ivr_by_name.get(menu_name)
    if menu is None:
        return _hangup(ctx, CAUSE_UNALLOCATED, f"IVR menu {menu_name!r} does not exist")
    option = ctx.snap.ivr_options_by_menu.get(menu.id, {}).get(digit) if digit else None
    if option is not None:
        d = destination(ctx, option.dest_type, option.dest_value)
        return _explained(d, f"IVR {menu.name} digit {digit} -> {d.summary}")
    what = f"invalid digit {digit!r}" if digit else "no digit"
    if attempt < menu.max_attempts:
        # the next Read() plays "invalid" then the menu again, both interruptible: a caller who knows the
        # menu keys the digit at once
        prompts = [ctx.sound(p) for p in (menu.invalid_prompt, menu.prompt) if p]
        return Decision(
            "ivr-retry",
            (("HOTLINE_IVR_ASK", "&".join(prompts)),),
            f"IVR {menu.name}: {what}, attempt {attempt} of {menu.max_attempts}",
        )
    if menu.fail_type:
        d = destination(ctx, menu.fail_type, menu.fail_value)
        return _explained(d, f"IVR {menu.name}: {what} after {attempt} attempts -> {d.summary}")
    return _hangup(ctx, CAUSE_NORMAL, f"IVR {menu.name}: {what} after {attempt} attempts", "vm-goodbye")


#: Queue() results (QUEUESTATUS) after which a queue's overflow destination applies.
OVERFLOW_STATUSES = frozenset({"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"})


def decide_overflow(ctx: RouteContext, queue_name: str, status: str) -> Decision:
    q = ctx.snap.queue_by_name.get(queue_name)
    if q is None or not q.overflow_type or status not in OVERFLOW_STATUSES:
        cause = 34 if status == "FULL" else CAUSE_NORMAL
        return _hangup(ctx, cause, f"queue {queue_name} ended with {status or 'no status'}; no overflow")
    d = destination(ctx, q.overflow_type, q.overflow_value)
    return _explained(d, f"queue {q.name} {status} -> overflow {d.summary}")
