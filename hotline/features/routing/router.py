"""Where a call goes: pure decisions from the in-memory configuration snapshot.

`decide_inbound` maps the dialled number (DID) to its route; `decide_internal` handles a number dialled
from a phone.  A decision is data (`Decision`): the dialplan action to run (queue, dial, hangup) and the
channel variables that parameterise it; the AGI handler only writes them to the channel.  No I/O here,
so decisions are unit-testable and take microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hotline.domain.config import ConfigSnapshot

# Q.850 causes we use by name.
CAUSE_UNALLOCATED = 1
CAUSE_NORMAL = 16
CAUSE_SUBSCRIBER_ABSENT = 20
CAUSE_CALL_REJECTED = 21

_DIALABLE = re.compile(r"^\+?[0-9*#]{1,32}$")


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # 'queue' | 'dial' | 'hangup'  (the dialplan context hotline-do-<action>)
    variables: tuple[tuple[str, str], ...]
    summary: str  # one line for the journal: what was decided and why

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action, "summary": self.summary, **dict(self.variables)}


def _hangup(cause: int, why: str, message: str = "") -> Decision:
    return Decision("hangup", (("HOTLINE_CAUSE", str(cause)), ("HOTLINE_MESSAGE", message)), why)


def _dial(target: str, timeout: int, why: str) -> Decision:
    return Decision("dial", (("HOTLINE_DIAL", target), ("HOTLINE_DIAL_TIMEOUT", str(timeout))), why)


def destination(snap: ConfigSnapshot, dest_type: str, dest_value: str, *, hangup_cause: int | None = None) -> Decision:
    """Resolve one destination (shared by DID routes and, later, IVR menus and overflows)."""
    if dest_type == "queue":
        q = snap.queue_by_name.get(dest_value)
        if q is None:
            return _hangup(CAUSE_UNALLOCATED, f"queue {dest_value!r} does not exist")
        variables = [("HOTLINE_QUEUE", q.name), ("HOTLINE_QUEUE_OPTIONS", "t")]
        variables.append(("HOTLINE_QUEUE_TIMEOUT", str(q.max_wait) if q.max_wait else ""))
        return Decision("queue", tuple(variables), f"queue {q.name}")
    if dest_type == "phone":
        p = snap.phone_by_name.get(dest_value)
        if p is None or not p.enabled:
            return _hangup(CAUSE_UNALLOCATED, f"phone {dest_value!r} does not exist or is disabled")
        return _dial(f"PJSIP/{p.name}", 30, f"phone {p.name}")
    if dest_type == "agent":
        a = snap.agent_by_number.get(dest_value)
        if a is None or not a.enabled:
            return _hangup(CAUSE_UNALLOCATED, f"agent {dest_value!r} does not exist or is disabled")
        phone = next((p for p in snap.phones if p.id == a.phone_id), None)
        if phone is None:
            return _hangup(CAUSE_SUBSCRIBER_ABSENT, f"agent {a.number} has no phone")
        return _dial(f"PJSIP/{phone.name}", 30, f"agent {a.number} on phone {phone.name}")
    if dest_type == "external":
        if not _DIALABLE.match(dest_value):
            return _hangup(CAUSE_UNALLOCATED, f"external number {dest_value!r} is not dialable")
        return _dial(f"PJSIP/{dest_value}@carrier", 60, f"external {dest_value}")
    if dest_type == "hangup":
        cause = hangup_cause or CAUSE_NORMAL
        return _hangup(cause, f"hang up with cause {cause}")
    return _hangup(CAUSE_UNALLOCATED, f"unknown destination type {dest_type!r}")


def decide_inbound(snap: ConfigSnapshot, did: str) -> Decision:
    route = snap.route_by_did.get(did)
    if route is None or not route.enabled:
        return _hangup(CAUSE_UNALLOCATED, f"no route for DID {did!r}")
    d = destination(snap, route.dest_type, route.dest_value, hangup_cause=route.hangup_cause)
    return Decision(d.action, d.variables, f"DID {did} -> {d.summary}")


def decide_internal(snap: ConfigSnapshot, caller: str, dialled: str) -> Decision:
    """A phone dialled `dialled`: another phone, a DID of ours, or an outside number."""
    if dialled in snap.phone_by_name:
        return destination(snap, "phone", dialled)
    if dialled in snap.route_by_did:
        return decide_inbound(snap, dialled)
    if dialled in snap.agent_by_number:
        return destination(snap, "agent", dialled)
    return destination(snap, "external", dialled)
