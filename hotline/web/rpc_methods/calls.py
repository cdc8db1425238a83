"""XML-RPC: calls in progress and history, the trace of one call, tags, and call control (originate,
hang-up, transfer, hold, supervisor listen / whisper / barge, SIP redirect of an unanswered call).

Scopes and the agent-self rules are the REST API's (hotline/web/api/operations.py): an agent user sees
only its own calls, places calls only from its own phone and transfers or holds only its own party.
Control goes through `CallControlService`, which checks the agent group's limits and journals every
attempt; with no node reachable it raises NodeUnavailableError (fault 503), never a traceback.

`call.redirect` is the one action CallControlService does not offer: an AMI `Redirect` of the caller's
channel into the dialplan's `hotline-do-redirect` context (hotline/asterisk/config_render.py), which
reads the SIP URI from `HOTLINE_REDIRECT` and answers the INVITE with 302 (Transfer() on an unanswered
PJSIP channel).  A call with any answered channel is refused (409): a 302 only exists before the answer,
so routes (destination type 'redirect') are the way for everything else.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

from hotline.domain.calls import CALL_STATUSES, CallRecord
from hotline.errors import ConflictError, HotlineError, NotFoundError, PermissionDeniedError, ValidationError
from hotline.features.calls import actions
from hotline.features.calls.control import JOURNAL_EVENT, ControlResult
from hotline.web.api import operations as rest
from hotline.web.context import WebServices
from hotline.web.rpc import Param, RpcContext
from hotline.web.rpc_methods.base import (
    MAX_LIMIT,
    Catalogue,
    any_of,
    audit,
    bounded,
    members,
    principal,
    utc,
    who,
    wire,
)

CALLS_READ = any_of("calls:read", "self")
CALLS_CONTROL = any_of("calls:control", "self")
SPY_MODES: Final = tuple(actions.SPY_MODES)

#: the dialplan context that turns an unanswered call into a SIP 302 (config_render.py) and the
#: variable it reads the target from (router.py's 'redirect' decision sets the same one)
REDIRECT_CONTEXT: Final = "hotline-do-redirect"
REDIRECT_VARIABLE: Final = "HOTLINE_REDIRECT"
#: what hotline/db/repositories check_destination accepts as a redirect target (it goes into a Contact)
_SIP_URI: Final = re.compile(r"sips?:[A-Za-z0-9._~+!$&'()*,;=:@%/?-]{1,240}")

_HISTORY: Final = {
    "since": "dateTime.iso8601",
    "until": "dateTime.iso8601",
    "caller": "string",
    "agent": "string",
    "queue": "string",
    "status": "string",
    "did": "string",
    "limit": "int",
    "offset": "int",
}


def register(reg: Catalogue, svc: WebServices) -> None:
    _register_reads(reg, svc)
    _register_control(reg, svc)


def _control(r: ControlResult) -> dict[str, Any]:
    return {"call_id": r.call_id, "node": r.node, "summary": r.summary, "channels": list(r.channels)}


async def _record(svc: WebServices, ctx: RpcContext, call_id: str) -> CallRecord:
    """The call's record (stored, else live), when the caller may see it; NotFoundError otherwise."""
    record = await asyncio.to_thread(svc.call_repo.get_call, call_id)
    if record is None:
        record = next((r for r in svc.journal.active_calls() if r.call_id == call_id), None)
    if record is None or not rest.visible_call(principal(ctx), record):
        raise NotFoundError(f"no call {call_id!r}")
    return record


def _register_reads(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "call.active",
        returns="struct",
        help="Calls in progress with their path (caller, DID, queue, agent, times, status): {items, total}.  "
        "An agent user: its own.",
        scope=CALLS_READ,
    )
    async def active(ctx: RpcContext) -> Any:
        return wire(await rest.calls_active(svc, who(ctx).caller))

    @reg.method(
        "call.history",
        returns="struct",
        params=[Param("filters", "struct", optional=True)],
        help="Call records, newest first: {items, total}.  filters: {since, until (dateTime, UTC), caller (part "
        f"of the number), agent, queue, did, status ({', '.join(CALL_STATUSES)}), limit 1..1000 (100), "
        "offset}.  An agent user: its own calls.",
        scope=CALLS_READ,
    )
    async def history(ctx: RpcContext, filters: dict[str, Any] | None = None) -> Any:
        f = members(ctx, "filters", filters or {}, _HISTORY)
        status = f.get("status")
        if status is not None and status not in CALL_STATUSES:
            raise ValidationError("status", f"must be one of {', '.join(CALL_STATUSES)} (got {status!r})")
        answer = await rest.calls_history(
            svc,
            who(ctx).caller,
            since=utc("since", f.get("since")),
            until=utc("until", f.get("until")),
            caller_number=_opt(f, "caller", 64),
            agent=_opt(f, "agent", 32),
            queue=_opt(f, "queue", 128),
            status=status,  # checked against CALL_STATUSES above
            did=_opt(f, "did", 64),
            limit=bounded("limit", f.get("limit", 100), 1, MAX_LIMIT),
            offset=bounded("offset", f.get("offset", 0), 0, 1_000_000),
        )
        return wire(answer)

    @reg.method(
        "call.get",
        returns="struct",
        params=[Param("call_id", "string")],
        help="One call's record: caller, DID, destination, status, times, queue and wait, agent, talk time, "
        "who hung up and why.",
        scope=CALLS_READ,
    )
    async def get(ctx: RpcContext, call_id: str) -> Any:
        return wire(rest.call_dict(await _record(svc, ctx, call_id)))

    @reg.method(
        "call.trace",
        returns="struct",
        params=[Param("call_id", "string")],
        help="One call from the first ring to the hang-up: {call: the record, events: every journaled event in "
        "order [{seq, ts, source, node, event, uniqueid, channel, data}], tags}.",
        scope=CALLS_READ,
    )
    async def trace(ctx: RpcContext, call_id: str) -> Any:
        return wire(await rest.call_trace(call_id, svc, who(ctx).caller))

    @reg.method(
        "call.tags",
        returns="array",
        params=[Param("call_id", "string")],
        help="The values attached to a call: [{name, value, by, at}].",
        scope=CALLS_READ,
    )
    async def tags(ctx: RpcContext, call_id: str) -> Any:
        await _record(svc, ctx, call_id)
        return wire(await asyncio.to_thread(svc.history.tags, call_id))

    @reg.method(
        "call.tag",
        returns="struct",
        params=[Param("call_id", "string"), Param("name", "string"), Param("value", "string")],
        help="Attach a value to a call (discount_id, customer_id, order_id...; a later value of the same name "
        "replaces it).  An agent user: its own calls.  Returns {call_id, tags}.  Audited.",
        scope=CALLS_CONTROL,
    )
    async def tag(ctx: RpcContext, call_id: str, name: str, value: str) -> Any:
        p = principal(ctx)
        if not p.has_scope("calls:control"):
            record = await asyncio.to_thread(svc.call_repo.get_call, call_id)
            if record is None:
                record = next((r for r in svc.journal.active_calls() if r.call_id == call_id), None)
            if record is None or record.agent_number != p.agent_number:
                raise PermissionDeniedError(f"{p.actor} may tag only its own calls")
        await svc.journal.flush()
        await asyncio.to_thread(svc.history.set_tag, call_id, name, value, by=p.actor)
        await audit(svc, ctx, "tag", "call", call_id, after={"name": name, "value": value})
        return wire({"call_id": call_id, "tags": await asyncio.to_thread(svc.history.tags, call_id)})

    @reg.method(
        "call.find_by_tag",
        returns="array",
        params=[Param("name", "string"), Param("value", "string"), Param("limit", "int", optional=True)],
        help="The ids of the calls tagged name = value (a discount or customer id...), at most limit (100).",
        scope="calls:read",
    )
    async def find_by_tag(ctx: RpcContext, name: str, value: str, limit: int = 100) -> Any:
        bounded("limit", limit, 1, MAX_LIMIT)
        return await asyncio.to_thread(svc.history.find_by_tag, name, value, limit)

    @reg.method(
        "call.channels",
        returns="struct",
        help="Every live channel on every node now (as the nodes' CoreShowChannels list them): {items: "
        "[{node, name, call_id, state, context, exten, application, bridge_id, caller, uniqueid}], unreachable: "
        "{node: error}}.  Fault 503 when no node is configured.",
        scope="calls:read",
    )
    async def channels(ctx: RpcContext) -> Any:
        found, errors = await svc.calls.live_channels()
        rows = [
            {
                "node": c.node,
                "name": c.name,
                "call_id": c.call_id,
                "state": c.state,
                "context": c.context,
                "exten": c.exten,
                "application": c.application,
                "bridge_id": c.bridge_id,
                "caller": c.caller,
                "uniqueid": c.uniqueid,
            }
            for c in found
        ]
        return {"items": rows, "total": len(rows), "unreachable": dict(errors)}


def _opt(f: dict[str, Any], name: str, limit: int) -> str | None:
    value = f.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise ValidationError(name, f"at most {limit} characters")
    return str(value)


def _register_control(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "call.originate",
        returns="struct",
        params=[Param("agent", "string"), Param("number", "string")],
        help="Click-to-call: ring the phone the agent is logged in on, then dial number (the agent group's "
        "limits apply).  An agent user: from its own phone.  Returns {call_id, node, summary, channels}.  Audited.",
        scope=CALLS_CONTROL,
    )
    async def originate(ctx: RpcContext, agent: str, number: str) -> Any:
        p = principal(ctx)
        if not p.has_scope("calls:control") and p.agent_number != agent:
            raise PermissionDeniedError(f"{p.actor} may place calls only from its own phone")
        result = await svc.calls.originate(agent, number, actor=p.actor)
        await audit(svc, ctx, "originate", "call", result.call_id, after={"agent": agent, "number": number})
        return _control(result)

    @reg.method(
        "call.hangup",
        returns="struct",
        params=[Param("call_id", "string"), Param("channel", "string", optional=True)],
        help="Hang up every channel of a call, or one of its channels (PJSIP/2001-0000000a).  Audited.",
        scope="calls:control",
    )
    async def hangup(ctx: RpcContext, call_id: str, channel: str = "") -> Any:
        result = await svc.calls.hangup(channel or call_id, actor=principal(ctx).actor)
        await audit(svc, ctx, "hangup", "call", call_id, after={"channel": channel or None})
        return _control(result)

    @reg.method(
        "call.transfer",
        returns="struct",
        params=[
            Param("call_id", "string"),
            Param("target", "string"),
            Param("attended", "boolean", optional=True),
            Param("agent", "string", optional=True),
        ],
        help="Transfer the agent's party to target (a phone, agent, DID, queue, service or external number): "
        "blind, or attended (the agent consults the target first).  agent: which agent's party when several "
        "are on the call (supervisors; an agent user transfers its own).  Audited.",
        scope=CALLS_CONTROL,
    )
    async def transfer(ctx: RpcContext, call_id: str, target: str, attended: bool = False, agent: str = "") -> Any:
        p = principal(ctx)
        acting = (agent or None) if p.has_scope("calls:control") else p.agent_number
        if acting is None and not p.has_scope("calls:control"):
            raise PermissionDeniedError(f"{p.actor} is not an agent")
        if len(target) > 64:
            raise ValidationError("target", "at most 64 characters")
        if attended:
            result = await svc.calls.attended_transfer(call_id, target, actor=p.actor, agent=acting)
        else:
            result = await svc.calls.blind_transfer(call_id, target, actor=p.actor, agent=acting)
        after = {"target": target, "attended": attended, "agent": acting}
        await audit(svc, ctx, "transfer", "call", call_id, after=after)
        return _control(result)

    async def hold_or_unhold(ctx: RpcContext, call_id: str, agent: str = "") -> Any:
        p = principal(ctx)
        acting = (agent or None) if p.has_scope("calls:control") else p.agent_number
        if acting is None and not p.has_scope("calls:control"):
            raise PermissionDeniedError(f"{p.actor} is not an agent")
        hold = ctx.method == "call.hold"
        if hold:
            result = await svc.calls.hold(call_id, actor=p.actor, agent=acting)
        else:
            result = await svc.calls.unhold(call_id, actor=p.actor, agent=acting)
        await audit(svc, ctx, "hold" if hold else "unhold", "call", call_id)
        return _control(result)

    for name, what in (
        ("call.hold", "Put the agent's party on hold (music on hold for it, silence for the agent)"),
        ("call.unhold", "Take the agent's party off hold"),
    ):
        reg.register(
            name,
            hold_or_unhold,
            returns="struct",
            params=[Param("call_id", "string"), Param("agent", "string", optional=True)],
            help=f"{what}.  agent: which agent's party (supervisors); an agent user acts on its own.  Audited.",
            scope=CALLS_CONTROL,
        )

    @reg.method(
        "call.spy",
        returns="struct",
        params=[Param("supervisor_phone", "string"), Param("agent", "string"), Param("mode", "string", optional=True)],
        help=f"Ring the supervisor's phone, then join the agent's call: mode {' | '.join(SPY_MODES)} (listen: "
        "hear both sides; whisper: the agent hears you too; barge: both sides hear you).  Audited.",
        scope="calls:spy",
    )
    async def spy(ctx: RpcContext, supervisor_phone: str, agent: str, mode: str = "listen") -> Any:
        if mode not in SPY_MODES:
            raise ValidationError("mode", f"must be one of {', '.join(SPY_MODES)} (got {mode!r})")
        result = await svc.calls.spy(supervisor_phone, agent, mode, actor=principal(ctx).actor)
        after = {"supervisor_phone": supervisor_phone, "agent": agent, "mode": mode}
        await audit(svc, ctx, "spy", "call", result.call_id, after=after)
        return _control(result)

    @reg.method(
        "call.redirect",
        returns="struct",
        params=[Param("call_id", "string"), Param("target", "string")],
        help="Send an unanswered inbound call elsewhere with a SIP 302 to target (a sip: or sips: URI), e.g. "
        "while it waits in a queue.  Fault 409 once any of its channels is answered: only unanswered calls "
        "can be redirected; use routes (destination type redirect) for calls as they arrive.  Audited.",
        scope="calls:control",
    )
    async def redirect(ctx: RpcContext, call_id: str, target: str) -> Any:
        if not _SIP_URI.fullmatch(target):
            raise ValidationError("target", "must be a SIP URI such as sip:+4930123@carrier.example")
        p = principal(ctx)
        chans = await svc.calls.call_channels(call_id)
        if any(c.state == "Up" for c in chans):
            raise ConflictError(f"call {call_id} is answered: only unanswered calls can be redirected; use routes")
        caller = next((c for c in chans if c.uniqueid and c.uniqueid == c.linkedid), None)
        if caller is None or not caller.name.startswith("PJSIP/"):
            raise ConflictError(f"call {call_id}: no inbound SIP channel to redirect")
        data = {"control": "redirect", "channel": caller.name, "target": target, "actor": p.actor}
        svc.journal.record(caller.call_id, JOURNAL_EVENT, {**data, "outcome": "requested"}, node=caller.node)
        client = svc.nodes.client(caller.node)
        try:
            await client.action("Setvar", actions.setvar_fields(caller.name, REDIRECT_VARIABLE, target))
            await client.action(
                "Redirect", [("Channel", caller.name), ("Context", REDIRECT_CONTEXT), ("Exten", "s"), ("Priority", "1")]
            )
        except HotlineError as exc:
            failed = {**data, "outcome": "failed", "error": str(exc)}
            svc.journal.record(caller.call_id, JOURNAL_EVENT, failed, node=caller.node)
            raise
        await audit(svc, ctx, "redirect", "call", call_id, after={"target": target, "channel": caller.name})
        return _control(ControlResult(caller.call_id, caller.node, f"SIP 302 to {target}", (caller.name,)))
