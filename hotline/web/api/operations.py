"""REST: what happens now and what happened: agents (state, login, pause), calls (active, history, trace,
control, tags), queues and nodes (live), today's statistics, recordings, media uploads, webhook deliveries.

Agents see only their own agent, calls and figures (scope ``self``); the services do the work, these
handlers translate and audit.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from hotline.db.repositories.agents import AgentEvent
from hotline.domain.agent_state import AgentStatus
from hotline.domain.calls import CallRecord, JournalEvent
from hotline.domain.permissions import Principal
from hotline.errors import NotFoundError, PermissionDeniedError, ValidationError
from hotline.features.crm.lookup import screen_pop_payload
from hotline.web.api.deps import Services, audit, need
from hotline.web.auth import Caller
from hotline.web.context import WebServices

router = APIRouter(prefix="/api/v1")

AgentNumber = Annotated[str, Field(pattern=r"^[0-9]{1,32}$")]
CallId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Strict):
    phone: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    pin: str | None = Field(default=None, pattern=r"^[0-9]{4,12}$", description="needed when an agent logs itself in")


class PauseBody(Strict):
    reason: str = Field(default="", max_length=64)


class OriginateBody(Strict):
    agent: str = Field(pattern=r"^[0-9]{1,32}$", description="whose phone rings first")
    number: str = Field(pattern=r"^\+?[0-9*#]{1,32}$", description="the number to call")


class TransferBody(Strict):
    target: str = Field(min_length=1, max_length=64, description="phone, agent, DID, queue, service or external number")
    attended: bool = False
    agent: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")


class HangupBody(Strict):
    channel: str | None = Field(default=None, max_length=200, description="one channel; default: every channel")


class HoldBody(Strict):
    hold: bool = True
    agent: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")


class SpyBody(Strict):
    agent: str = Field(pattern=r"^[0-9]{1,32}$", description="the agent to listen to")
    supervisor_phone: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="the phone that listens")
    mode: Literal["listen", "whisper", "barge"] = "listen"


class TagBody(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="e.g. discount_id, customer_id, order_id")
    value: str = Field(min_length=1, max_length=255)


# ------------------------------------------------------------------ shapes
def _iso(v: datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def call_dict(r: CallRecord) -> dict[str, Any]:
    return plain(r)


def event_dict(e: JournalEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "ts": e.ts.isoformat(),
        "source": e.source,
        "node": e.node,
        "event": e.event,
        "uniqueid": e.uniqueid,
        "channel": e.channel,
        "data": dict(e.data),
    }


def agent_event_dict(e: AgentEvent) -> dict[str, Any]:
    return {
        "ts": e.ts.isoformat(),
        "event": e.event,
        "from": e.from_state,
        "to": e.to_state,
        "reason": e.reason,
        "phone": e.phone,
        "call_id": e.call_id,
        "actor": e.actor,
    }


def agent_dict(svc: WebServices, s: AgentStatus) -> dict[str, Any]:
    agent = svc.config.snapshot.agent_by_id.get(s.agent_id)
    now = datetime.now(UTC)
    return {
        "agent": agent.number if agent else str(s.agent_id),
        "name": agent.name if agent else "",
        "state": s.state,
        "pause_reason": s.pause_reason,
        "phone": s.phone,
        "since": s.state_since.isoformat(),
        "in_state_s": round((now - s.state_since).total_seconds(), 1),
        "logged_in_at": _iso(s.logged_in_at),
        "wrapup_until": _iso(s.wrapup_until),
        "missed_in_row": s.missed_in_row,
        "missed_total": s.missed_total,
        "call_id": s.call_id,
    }


def _agent_status(svc: WebServices, number: str) -> AgentStatus:
    agent = svc.config.snapshot.agent_by_number.get(number)
    if agent is None:
        raise NotFoundError(f"agent {number!r} does not exist")
    return svc.agents.status(agent.id)


def visible_call(p: Principal, r: CallRecord) -> bool:
    return p.has_scope("calls:read") or (
        p.has_scope("self") and p.agent_number is not None and r.agent_number == p.agent_number
    )


def _today_start() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# ------------------------------------------------------------------ agents
@router.get("/agents/status", tags=["agents"], summary="Every agent's state (an agent user: its own)")
async def agents_status(
    svc: Services, caller: Annotated[Caller, Depends(need(any_of=("agents:read", "self")))]
) -> dict[str, Any]:
    p = caller.principal
    position = svc.bus.position
    items = [agent_dict(svc, svc.agents.status(a.id)) for a in svc.config.snapshot.agents if p.may_see_agent(a.number)]
    return {"items": items, "total": len(items), "position": position}


@router.get("/agents/{number}/status", tags=["agents"], summary="One agent's state")
async def agent_status(
    number: str, svc: Services, caller: Annotated[Caller, Depends(need(any_of=("agents:read", "self")))]
) -> dict[str, Any]:
    caller.principal.require_agent(number)
    return {**agent_dict(svc, _agent_status(svc, number)), "position": svc.bus.position}


@router.get(
    "/agents/{number}/events",
    tags=["agents"],
    summary="An agent's latest state changes (the newest `limit`, in time order)",
)
async def agent_events(
    number: str,
    svc: Services,
    caller: Annotated[Caller, Depends(need(any_of=("agents:read", "self")))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    caller.principal.require_agent(number)
    agent = svc.config.snapshot.agent_by_number.get(number)
    if agent is None:
        raise NotFoundError(f"agent {number!r} does not exist")
    events = await asyncio.to_thread(svc.agent_repo.events_for, agent.id, limit)
    return {"items": [agent_event_dict(e) for e in events], "total": len(events)}


@router.post("/agents/{number}/login", tags=["agents"], summary="Log an agent in on a phone")
async def agent_login(
    number: str,
    body: LoginBody,
    svc: Services,
    caller: Annotated[Caller, Depends(need(any_of=("agents:control", "self")))],
) -> dict[str, Any]:
    p = caller.principal
    p.require_agent(number, control=True)
    supervisor = p.has_scope("agents:control")
    if not supervisor and body.pin is None:
        raise ValidationError("pin", "your PIN is needed to log in")
    status = await svc.agents.login(number, body.pin, body.phone, actor=p.actor, check_pin=not supervisor)
    await audit(svc, caller, "login", "agent", number, after={"phone": body.phone})
    return agent_dict(svc, status)


@router.post("/agents/{number}/logoff", tags=["agents"], summary="Log an agent off")
async def agent_logoff(
    number: str, svc: Services, caller: Annotated[Caller, Depends(need(any_of=("agents:control", "self")))]
) -> dict[str, Any]:
    caller.principal.require_agent(number, control=True)
    status = await svc.agents.logoff(number, actor=caller.principal.actor)
    await audit(svc, caller, "logoff", "agent", number)
    return agent_dict(svc, status)


@router.post("/agents/{number}/pause", tags=["agents"], summary="Pause an agent (with a reason)")
async def agent_pause(
    number: str,
    body: PauseBody,
    svc: Services,
    caller: Annotated[Caller, Depends(need(any_of=("agents:control", "self")))],
) -> dict[str, Any]:
    caller.principal.require_agent(number, control=True)
    status = await svc.agents.pause(number, body.reason, actor=caller.principal.actor)
    await audit(svc, caller, "pause", "agent", number, after={"reason": body.reason})
    return agent_dict(svc, status)


@router.post("/agents/{number}/unpause", tags=["agents"], summary="End an agent's pause")
async def agent_unpause(
    number: str, svc: Services, caller: Annotated[Caller, Depends(need(any_of=("agents:control", "self")))]
) -> dict[str, Any]:
    caller.principal.require_agent(number, control=True)
    status = await svc.agents.unpause(number, actor=caller.principal.actor)
    await audit(svc, caller, "unpause", "agent", number)
    return agent_dict(svc, status)


@router.get("/agents/{number}/stats/today", tags=["agents", "stats"], summary="An agent's figures for today")
async def agent_today(
    number: str, svc: Services, caller: Annotated[Caller, Depends(need(any_of=("stats:read", "self")))]
) -> dict[str, Any]:
    p = caller.principal
    if not (p.has_scope("stats:read") or p.agent_number == number):
        raise PermissionDeniedError(f"{p.actor} may not see agent {number}")
    status = _agent_status(svc, number)
    days = await asyncio.to_thread(svc.history.agent_day, _today_start(), number)
    day = days.get(number)
    answered = day.answered if day else 0
    talk = day.talk_s if day else 0.0
    return {
        "agent": number,
        "answered": answered,
        "talk_s": round(talk, 1),
        "avg_talk_s": round(talk / answered, 1) if answered else None,
        "hung_up_first": day.agent_hung_up if day else 0,
        "missed_in_row": status.missed_in_row,
        "missed_total": status.missed_total,
        "state": status.state,
    }


@router.get("/pause-reasons", tags=["agents"], summary="Pause reasons an agent may choose")
async def pause_reasons(svc: Services, caller: Annotated[Caller, Depends(need())]) -> dict[str, Any]:
    items = [
        {"name": r.name, "paid": r.paid, "max_duration_s": r.max_duration_s}
        for r in svc.config.snapshot.pause_reasons
        if r.enabled
    ]
    return {"items": items, "total": len(items)}


# ------------------------------------------------------------------ calls
@router.get("/calls/active", tags=["calls"], summary="Calls in progress with their path")
async def calls_active(
    svc: Services, caller: Annotated[Caller, Depends(need(any_of=("calls:read", "self")))]
) -> dict[str, Any]:
    p = caller.principal
    position = svc.bus.position
    items = [call_dict(r) for r in svc.journal.active_calls() if visible_call(p, r)]
    items.sort(key=lambda c: str(c["started_at"]))
    return {"items": items, "total": len(items), "position": position}


@router.get("/calls", tags=["calls"], summary="Call history with filters, newest first")
async def calls_history(
    svc: Services,
    caller: Annotated[Caller, Depends(need(any_of=("calls:read", "self")))],
    since: datetime | None = None,
    until: datetime | None = None,
    caller_number: Annotated[str | None, Query(alias="caller", max_length=64)] = None,
    agent: Annotated[str | None, Query(max_length=32)] = None,
    queue: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[Literal["active", "completed", "abandoned", "failed", "fallback"] | None, Query()] = None,
    did: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    p = caller.principal
    if not p.has_scope("calls:read"):
        agent = p.agent_number or "-"
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise ValidationError(name, "give a time zone, e.g. 2026-12-06T09:00:00Z")
    rows, total = await asyncio.to_thread(
        lambda: svc.history.search_calls(
            since=since,
            until=until,
            caller=caller_number,
            agent=agent,
            queue=queue,
            status=status,
            did=did,
            limit=limit,
            offset=offset,
        )
    )
    return {"items": [call_dict(r) for r in rows], "total": total}


@router.get("/calls/{call_id}", tags=["calls"], summary="One call: its record, its trace (every event) and tags")
async def call_trace(
    call_id: str, svc: Services, caller: Annotated[Caller, Depends(need(any_of=("calls:read", "self")))]
) -> dict[str, Any]:
    record = await asyncio.to_thread(svc.call_repo.get_call, call_id)
    if record is None:
        record = next((r for r in svc.journal.active_calls() if r.call_id == call_id), None)
    if record is None or not visible_call(caller.principal, record):
        raise NotFoundError(f"no call {call_id!r}")
    events = await asyncio.to_thread(svc.call_repo.events_for, call_id)
    tags = await asyncio.to_thread(svc.history.tags, call_id)
    return {"call": call_dict(record), "events": [event_dict(e) for e in events], "tags": tags}


@router.put("/calls/{call_id}/tags", tags=["calls"], summary="Attach a value to a call (discount id, customer id...)")
async def call_tag(
    call_id: str,
    body: TagBody,
    svc: Services,
    caller: Annotated[Caller, Depends(need(any_of=("calls:control", "self")))],
) -> dict[str, Any]:
    p = caller.principal
    if not p.has_scope("calls:control"):
        record = await asyncio.to_thread(svc.call_repo.get_call, call_id)
        if record is None:
            record = next((r for r in svc.journal.active_calls() if r.call_id == call_id), None)
        if record is None or record.agent_number != p.agent_number:
            raise PermissionDeniedError(f"{p.actor} may tag only its own calls")
    await svc.journal.flush()
    await asyncio.to_thread(svc.history.set_tag, call_id, body.name, body.value, by=p.actor)
    await audit(svc, caller, "tag", "call", call_id, after=body.model_dump())
    return {"call_id": call_id, "tags": await asyncio.to_thread(svc.history.tags, call_id)}


def _acting_agent(p: Principal, named: str | None) -> str | None:
    """Whose party a call action moves: the named agent (a supervisor; None lets the service find it), or
    the agent user itself."""
    if p.has_scope("calls:control"):
        return named
    if p.agent_number is None:
        raise PermissionDeniedError(f"{p.actor} is not an agent")
    return p.agent_number


def plain(x: Any) -> dict[str, Any]:
    """A dataclass as a JSON-able dict (datetimes as ISO 8601)."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dataclasses.asdict(x).items()}


def _result(r: Any) -> dict[str, Any]:
    return {"call_id": r.call_id, "node": r.node, "summary": r.summary, "channels": list(r.channels)}


@router.post("/calls/originate", tags=["calls"], summary="Click-to-call: ring the agent's phone, then dial the number")
async def originate(
    body: OriginateBody, svc: Services, caller: Annotated[Caller, Depends(need(any_of=("calls:control", "self")))]
) -> dict[str, Any]:
    p = caller.principal
    if not p.has_scope("calls:control") and p.agent_number != body.agent:
        raise PermissionDeniedError(f"{p.actor} may place calls only from its own phone")
    result = await svc.calls.originate(body.agent, body.number, actor=p.actor)
    await audit(svc, caller, "originate", "call", result.call_id, after=body.model_dump())
    return _result(result)


@router.post("/calls/{call_id}/hangup", tags=["calls"], summary="Hang up a call (or one of its channels)")
async def hangup(
    call_id: str, body: HangupBody, svc: Services, caller: Annotated[Caller, Depends(need("calls:control"))]
) -> dict[str, Any]:
    result = await svc.calls.hangup(body.channel or call_id, actor=caller.principal.actor)
    await audit(svc, caller, "hangup", "call", call_id, after=body.model_dump())
    return _result(result)


@router.post("/calls/{call_id}/transfer", tags=["calls"], summary="Blind or attended transfer of the agent's party")
async def transfer(
    call_id: str,
    body: TransferBody,
    svc: Services,
    caller: Annotated[Caller, Depends(need(any_of=("calls:control", "self")))],
) -> dict[str, Any]:
    p = caller.principal
    agent = _acting_agent(p, body.agent)
    if body.attended:
        result = await svc.calls.attended_transfer(call_id, body.target, actor=p.actor, agent=agent)
    else:
        result = await svc.calls.blind_transfer(call_id, body.target, actor=p.actor, agent=agent)
    await audit(svc, caller, "transfer", "call", call_id, after=body.model_dump())
    return _result(result)


@router.post("/calls/{call_id}/hold", tags=["calls"], summary="Put the agent's party on hold, or take it off")
async def hold(
    call_id: str,
    body: HoldBody,
    svc: Services,
    caller: Annotated[Caller, Depends(need(any_of=("calls:control", "self")))],
) -> dict[str, Any]:
    p = caller.principal
    agent = _acting_agent(p, body.agent)
    if body.hold:
        result = await svc.calls.hold(call_id, actor=p.actor, agent=agent)
    else:
        result = await svc.calls.unhold(call_id, actor=p.actor, agent=agent)
    await audit(svc, caller, "hold" if body.hold else "unhold", "call", call_id)
    return _result(result)


@router.post("/calls/spy", tags=["calls"], summary="Listen to, whisper to or barge into an agent's call")
async def spy(body: SpyBody, svc: Services, caller: Annotated[Caller, Depends(need("calls:spy"))]) -> dict[str, Any]:
    result = await svc.calls.spy(body.supervisor_phone, body.agent, body.mode, actor=caller.principal.actor)
    await audit(svc, caller, "spy", "call", result.call_id, after=body.model_dump())
    return _result(result)


# ------------------------------------------------------------------ live: queues, nodes, statistics
@router.get("/queues/status", tags=["queues", "stats"], summary="Every queue's tile: waiting, agents, today, alarm")
async def queues_status(svc: Services, caller: Annotated[Caller, Depends(need("stats:read"))]) -> dict[str, Any]:
    tiles = svc.monitor.tiles()
    return {"items": tiles, "total": len(tiles), "position": svc.bus.position}


@router.get("/queues/{name}/status", tags=["queues", "stats"], summary="One queue's tile and waiting callers")
async def queue_status(
    name: str, svc: Services, caller: Annotated[Caller, Depends(need("stats:read"))]
) -> dict[str, Any]:
    if name not in svc.config.snapshot.queue_by_name:
        raise NotFoundError(f"queue {name!r} does not exist")
    return {**svc.monitor.tile(name), "callers": svc.monitor.waiting_callers(name)}


@router.get(
    "/queues/{name}/members", tags=["queues"], summary="A queue's members as Asterisk sees them (realtime rows)"
)
async def queue_members(
    name: str, svc: Services, caller: Annotated[Caller, Depends(need("stats:read"))]
) -> dict[str, Any]:
    snap = svc.config.snapshot
    if name not in snap.queue_by_name:
        raise NotFoundError(f"queue {name!r} does not exist")
    items = [
        {
            "interface": m.interface,
            "member": m.membername,
            "penalty": m.penalty,
            "paused": bool(m.paused),
            "reason_paused": m.reason_paused,
        }
        for m in snap.members_by_queue.get(name, ())
    ]
    return {"items": items, "total": len(items)}


@router.get("/nodes/status", tags=["nodes"], summary="Asterisk nodes: connection, load, calls")
async def nodes_status(
    svc: Services, caller: Annotated[Caller, Depends(need(any_of=("stats:read", "config:read")))]
) -> dict[str, Any]:
    live = {n["name"]: n for n in svc.nodes.status()}
    items = []
    for n in svc.config.snapshot.nodes:
        items.append(
            {
                "name": n.name,
                "address": n.address,
                "state": n.state,
                "active_calls": n.active_calls,
                "load": n.load,
                "last_seen_at": _iso(n.last_seen_at),
                "ami_connected": bool(live.get(n.name, {}).get("connected")),
                "ami_events": live.get(n.name, {}).get("events", 0),
            }
        )
    return {"items": items, "total": len(items)}


@router.get("/stats/today", tags=["stats"], summary="Today's figures per queue and per agent")
async def stats_today(svc: Services, caller: Annotated[Caller, Depends(need("stats:read"))]) -> dict[str, Any]:
    agents = await asyncio.to_thread(svc.history.agent_day, _today_start(), None)
    return {
        "queues": [{"queue": t["queue"], **t["today"]} for t in svc.monitor.tiles()],
        "agents": [
            {"agent": a.agent, "answered": a.answered, "talk_s": round(a.talk_s, 1), "hung_up_first": a.agent_hung_up}
            for a in agents.values()
        ],
    }


# ------------------------------------------------------------------ recordings
def _recording(r: Any) -> dict[str, Any]:
    d = plain(r)
    d.pop("source", None)  # a path on the node: nothing a client can use
    return d


@router.get("/recordings", tags=["recordings"], summary="Recordings of a call, or the newest ones")
async def recordings(
    svc: Services,
    caller: Annotated[Caller, Depends(need("recordings:read"))],
    call_id: Annotated[str | None, Query(max_length=40)] = None,
    state: Annotated[Literal["recording", "pending", "stored", "failed", "deleted"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = await svc.recordings.get(call_id) if call_id else await svc.recordings.recent(state=state, limit=limit)
    return {"items": [_recording(r) for r in rows], "total": len(rows)}


@router.get("/recordings/{recording_id}/audio", tags=["recordings"], summary="Download the MP3")
async def recording_audio(
    recording_id: Annotated[int, Field(ge=1, le=2**31 - 1)],
    svc: Services,
    caller: Annotated[Caller, Depends(need("recordings:read"))],
) -> StreamingResponse:
    audio = await svc.recordings.open(recording_id)
    await audit(svc, caller, "download", "recording", str(recording_id))
    return StreamingResponse(
        audio,
        media_type=audio.content_type,
        headers={
            "Content-Length": str(audio.size),
            "Content-Disposition": f'attachment; filename="{recording_id}.mp3"',
        },
    )


@router.post("/recordings/{recording_id}/retry", tags=["recordings"], summary="Retry a failed conversion/upload")
async def recording_retry(
    recording_id: Annotated[int, Field(ge=1, le=2**31 - 1)],
    svc: Services,
    caller: Annotated[Caller, Depends(need("config:write"))],
) -> dict[str, Any]:
    r = await svc.recordings.retry(recording_id)
    await audit(svc, caller, "retry", "recording", str(recording_id))
    return _recording(r)


# ------------------------------------------------------------------ media (prompts, music on hold)
@router.get("/media", tags=["media"], summary="Prompts, music-on-hold classes and files")
async def media_list(svc: Services, caller: Annotated[Caller, Depends(need("config:read"))]) -> dict[str, Any]:
    prompts = await svc.media.list_prompts()
    classes = await svc.media.list_moh_classes()
    files = await svc.media.list_moh_files()

    return {
        "prompts": [plain(p) for p in prompts],
        "moh_classes": [plain(c) for c in classes],
        "moh_files": [plain(f) for f in files],
    }


@router.post("/media/prompts/{name}", tags=["media"], status_code=201, summary="Upload a prompt (WAV or MP3)")
async def media_prompt(
    name: str,
    file: UploadFile,
    svc: Services,
    caller: Annotated[Caller, Depends(need("config:write"))],
    replace: bool = False,
) -> dict[str, Any]:
    data = await _read_upload(svc, file)
    f = await svc.media.add_prompt(name, data, file.filename or "", replace=replace)
    await audit(svc, caller, "upload", "prompt", name, after={"file": file.filename, "size": len(data)})
    return plain(f)


@router.post("/media/moh/{moh_class}/{name}", tags=["media"], status_code=201, summary="Upload a music-on-hold file")
async def media_moh(
    moh_class: str, name: str, file: UploadFile, svc: Services, caller: Annotated[Caller, Depends(need("config:write"))]
) -> dict[str, Any]:
    data = await _read_upload(svc, file)
    f = await svc.media.add_moh_file(moh_class, name, data, file.filename or "")
    await audit(svc, caller, "upload", "moh", f"{moh_class}/{name}", after={"file": file.filename, "size": len(data)})
    return plain(f)


async def _read_upload(svc: WebServices, file: UploadFile) -> bytes:
    limit = svc.settings.media_max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ValidationError("file", f"is larger than {limit} bytes")
    if not data:
        raise ValidationError("file", "is empty")
    return data


# ------------------------------------------------------------------ webhooks
@router.get("/webhooks/{webhook_id}/deliveries", tags=["webhooks"], summary="A webhook's deliveries (newest first)")
async def webhook_deliveries(
    webhook_id: Annotated[int, Field(ge=1, le=2**31 - 1)],
    svc: Services,
    caller: Annotated[Caller, Depends(need("config:read"))],
    state: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = await svc.webhooks.deliveries(webhook_id, state=state, limit=limit)
    items = [plain(r) for r in rows]
    return {"items": items, "total": len(items)}


@router.get("/customers/lookup", tags=["customers"], summary="What Hotline knows of a caller (screen-pop data)")
async def customer_lookup(
    svc: Services,
    caller: Annotated[Caller, Depends(need(any_of=("calls:read", "self")))],
    number: Annotated[str, Query(min_length=1, max_length=64)],
) -> dict[str, Any]:
    info = await svc.caller_lookup.lookup(number)
    payload = dict(screen_pop_payload(info, "", "", None))
    for key in ("call_id", "agent", "queue"):
        payload.pop(key, None)
    return payload
