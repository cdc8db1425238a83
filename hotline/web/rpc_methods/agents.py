"""XML-RPC: agents (state, login, logoff, pause), queues (tiles, members, callers waiting, skills) and the
security actions.

Scopes and the agent-self rules are the REST API's (hotline/web/api/operations.py): a supervisor
(agents:control) acts on any agent; an agent user (scope self) only on its own agent, and logs itself in
with its PIN.  Reads call the REST handlers themselves, so both interfaces answer the same; changes are
made here so they are audited as 'xmlrpc'.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hotline.errors import NotFoundError, ValidationError
from hotline.web.api import operations as rest
from hotline.web.context import WebServices
from hotline.web.rpc import Param, RpcContext
from hotline.web.rpc_methods.base import (
    AUTHENTICATED,
    MAX_LIMIT,
    Catalogue,
    any_of,
    audit,
    bounded,
    principal,
    who,
    wire,
)

AGENT_READ = any_of("agents:read", "self")
AGENT_CONTROL = any_of("agents:control", "self")
SECURITY_REASON = "security"


def register(reg: Catalogue, svc: WebServices) -> None:
    _register_agents(reg, svc)
    _register_queues(reg, svc)
    _register_security(reg, svc)


def _register_agents(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "agent.status",
        returns="struct",
        params=[Param("agent", "string")],
        help="One agent's state: {agent, name, state, pause_reason, phone, since, in_state_s, logged_in_at, "
        "wrapup_until, missed_in_row, missed_total, call_id}.  An agent user: only its own.",
        scope=AGENT_READ,
    )
    async def status(ctx: RpcContext, agent: str) -> Any:
        return wire(await rest.agent_status(agent, svc, who(ctx).caller))

    @reg.method(
        "agent.status_all",
        returns="struct",
        help="Every agent's state (an agent user: its own): {items, total}.",
        scope=AGENT_READ,
    )
    async def status_all(ctx: RpcContext) -> Any:
        return wire(await rest.agents_status(svc, who(ctx).caller))

    @reg.method(
        "agent.events",
        returns="struct",
        params=[Param("agent", "string"), Param("limit", "int", optional=True)],
        help="An agent's state history (login, pause, ring, call, wrap-up, logoff, each with its reason and "
        "actor): the newest limit (1..1000, 100) events, oldest first: {items, total}.",
        scope=AGENT_READ,
    )
    async def events(ctx: RpcContext, agent: str, limit: int = 100) -> Any:
        return wire(await rest.agent_events(agent, svc, who(ctx).caller, bounded("limit", limit, 1, MAX_LIMIT)))

    @reg.method(
        "agent.login",
        returns="struct",
        params=[Param("agent", "string"), Param("phone", "string"), Param("pin", "string", optional=True)],
        help="Log an agent in on a phone (whoever was on it is logged off).  A supervisor needs no PIN; an "
        "agent user logs itself in with its PIN (fault 401 when wrong).  Returns the agent's state.  Audited.",
        scope=AGENT_CONTROL,
    )
    async def login(ctx: RpcContext, agent: str, phone: str, pin: str = "") -> Any:
        p = principal(ctx)
        p.require_agent(agent, control=True)
        supervisor = p.has_scope("agents:control")
        if not supervisor and not pin:
            raise ValidationError("pin", "your PIN is needed to log in")
        # a wrong PIN raises the agents service's AuthenticationError: fault 401 through rpc.fault_for
        status = await svc.agents.login(agent, pin or None, phone, actor=p.actor, check_pin=not supervisor)
        await audit(svc, ctx, "login", "agent", agent, after={"phone": phone})
        return wire(rest.agent_dict(svc, status))

    @reg.method(
        "agent.logoff",
        returns="struct",
        params=[Param("agent", "string")],
        help="Log an agent off (fault 409 when not logged in).  Returns its state.  Audited.",
        scope=AGENT_CONTROL,
    )
    async def logoff(ctx: RpcContext, agent: str) -> Any:
        p = principal(ctx)
        p.require_agent(agent, control=True)
        status = await svc.agents.logoff(agent, actor=p.actor)
        await audit(svc, ctx, "logoff", "agent", agent)
        return wire(rest.agent_dict(svc, status))

    @reg.method(
        "agent.pause",
        returns="struct",
        params=[Param("agent", "string"), Param("reason", "string", optional=True)],
        help="Pause a logged-in agent, with one of agent.pause_reasons (or none).  Returns its state.  Audited.",
        scope=AGENT_CONTROL,
    )
    async def pause(ctx: RpcContext, agent: str, reason: str = "") -> Any:
        p = principal(ctx)
        p.require_agent(agent, control=True)
        status = await svc.agents.pause(agent, reason, actor=p.actor)
        await audit(svc, ctx, "pause", "agent", agent, after={"reason": reason})
        return wire(rest.agent_dict(svc, status))

    @reg.method(
        "agent.unpause",
        returns="struct",
        params=[Param("agent", "string")],
        help="End an agent's pause.  Returns its state.  Audited.",
        scope=AGENT_CONTROL,
    )
    async def unpause(ctx: RpcContext, agent: str) -> Any:
        p = principal(ctx)
        p.require_agent(agent, control=True)
        status = await svc.agents.unpause(agent, actor=p.actor)
        await audit(svc, ctx, "unpause", "agent", agent)
        return wire(rest.agent_dict(svc, status))

    async def today(ctx: RpcContext, agent: str) -> Any:
        return wire(await rest.agent_today(agent, svc, who(ctx).caller))

    for name in ("agent.stats_today", "stats.agent_today"):
        reg.register(
            name,
            today,
            returns="struct",
            params=[Param("agent", "string")],
            help="An agent's figures for today (UTC): {agent, answered, talk_s, avg_talk_s, hung_up_first, "
            "missed_in_row, missed_total, state}.  An agent user: only its own.",
            scope=any_of("stats:read", "self"),
        )

    @reg.method(
        "agent.pause_reasons",
        returns="struct",
        help="The pause reasons an agent may choose: {items: [{name, paid, max_duration_s}], total}.",
        scope=AUTHENTICATED,
    )
    async def pause_reasons(ctx: RpcContext) -> Any:
        return wire(await rest.pause_reasons(svc, who(ctx).caller))


def _register_queues(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "queue.status",
        returns="struct",
        params=[Param("queue", "string")],
        help="One queue's tile and its callers waiting: {queue, waiting, longest_wait_s, agents: {available, "
        "ringing, on_call, wrap_up, paused, logged_in}, today: {offered, answered, abandoned, service_level, "
        "abandon_rate, avg_wait_s}, thresholds, alarm, callers}.",
        scope="stats:read",
    )
    async def status(ctx: RpcContext, queue: str) -> Any:
        return wire(await rest.queue_status(queue, svc, who(ctx).caller))

    @reg.method(
        "queue.status_all",
        returns="struct",
        help="Every queue's tile (as queue.status, without callers): {items, total, position}; position is the "
        "event stream's position these tiles include (a string).",
        scope="stats:read",
    )
    async def status_all(ctx: RpcContext) -> Any:
        answer = await rest.queues_status(svc, who(ctx).caller)
        return wire({**answer, "position": str(answer["position"])})

    @reg.method(
        "queue.members",
        returns="struct",
        params=[Param("queue", "string")],
        help="A queue's members as Asterisk sees them (logged-in agents' phones): {items: [{interface, member, "
        "penalty, paused, reason_paused}], total}.",
        scope="stats:read",
    )
    async def queue_members(ctx: RpcContext, queue: str) -> Any:
        return wire(await rest.queue_members(queue, svc, who(ctx).caller))

    @reg.method(
        "queue.waiting",
        returns="struct",
        params=[Param("queue", "string", optional=True)],
        help="Callers waiting now (in one queue or all): {items: [{queue, call_id, caller, caller_name, node, "
        "position, wait_s, uniqueid}], total}.",
        scope="stats:read",
    )
    async def waiting(ctx: RpcContext, queue: str = "") -> Any:
        if queue and queue not in svc.config.snapshot.queue_by_name:
            raise NotFoundError(f"queue {queue!r} does not exist")
        rows = svc.monitor.waiting_callers(queue or None)
        return wire({"items": rows, "total": len(rows)})

    @reg.method(
        "queue.add_member",
        returns="struct",
        params=[Param("queue", "string"), Param("agent", "string"), Param("penalty", "int", optional=True)],
        help="Make an agent serve a queue (a skill, resource agent_queues) with a penalty (0: rings first); it "
        "rings the agent's phone while the agent is logged in.  Fault 409 when it already does.  Audited.",
        scope="config:write",
    )
    async def add_member(ctx: RpcContext, queue: str, agent: str, penalty: int = 0) -> Any:
        data = {"agent": agent, "queue": queue, "penalty": penalty}
        row: dict[str, Any] = await asyncio.to_thread(svc.catalog.create, "agent_queues", data)
        await audit(svc, ctx, "create", "agent_queues", str(row.get("key", f"{agent}:{queue}")), after=row)
        await svc.config.reload()
        return wire(row)

    @reg.method(
        "queue.remove_member",
        returns="struct",
        params=[Param("queue", "string"), Param("agent", "string")],
        help="Stop an agent serving a queue (resource agent_queues).  Returns {deleted: 'AGENT:QUEUE'}.  Audited.",
        scope="config:write",
    )
    async def remove_member(ctx: RpcContext, queue: str, agent: str) -> Any:
        key = f"{agent}:{queue}"
        before = await asyncio.to_thread(svc.catalog.delete, "agent_queues", key)
        await audit(svc, ctx, "delete", "agent_queues", key, before=before)
        await svc.config.reload()
        return {"deleted": key}


def _register_security(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "security.agent_logoff",
        returns="struct",
        params=[Param("agent", "string"), Param("note", "string", optional=True)],
        help="Log an agent off its phone for security reasons (journaled with reason 'security'); returns its "
        "state.  Audited.",
        scope="security",
    )
    async def agent_logoff(ctx: RpcContext, agent: str, note: str = "") -> Any:
        reason = f"{SECURITY_REASON}: {note}"[:120] if note else SECURITY_REASON
        status = await svc.agents.logoff(agent, actor=principal(ctx).actor, reason=reason)
        await audit(svc, ctx, "security_logoff", "agent", agent, after={"reason": reason})
        return wire(rest.agent_dict(svc, status))

    @reg.method(
        "security.phone_logoff",
        returns="struct",
        params=[Param("phone", "string"), Param("note", "string", optional=True)],
        help="Log off whoever is logged in on a phone (reason 'security'): {phone, agent} (agent nil when "
        "nobody was).  Audited.",
        scope="security",
    )
    async def phone_logoff(ctx: RpcContext, phone: str, note: str = "") -> Any:
        if phone not in svc.config.snapshot.phone_by_name:
            raise NotFoundError(f"phone {phone!r} does not exist")
        reason = f"{SECURITY_REASON}: {note}"[:120] if note else SECURITY_REASON
        agent = svc.agents.agent_on_phone(phone)
        status = await svc.agents.logoff_phone(phone, actor=principal(ctx).actor, reason=reason)
        number = agent.number if agent is not None and status is not None else None
        await audit(svc, ctx, "security_logoff", "phone", phone, after={"agent": number, "reason": reason})
        return {"phone": phone, "agent": number}
