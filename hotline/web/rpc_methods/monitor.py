"""XML-RPC: today's statistics, nodes and Hotline's own status, recordings, media, customers (screen-pop
data) and webhook deliveries.

Reads call the REST handlers (hotline/web/api/operations.py) so both interfaces answer the same; the one
change here (recording.retry) is audited as 'xmlrpc'.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Final

import hotline
from hotline.errors import ConflictError, NotFoundError, ValidationError
from hotline.web.api import operations as rest
from hotline.web.context import WebServices
from hotline.web.rpc import Param, RpcContext
from hotline.web.rpc_methods.base import AUTHENTICATED, MAX_LIMIT, Catalogue, any_of, audit, bounded, items, who, wire

RECORDING_STATES: Final = ("recording", "pending", "stored", "failed", "deleted")
DELIVERY_STATES: Final = ("pending", "delivered", "failed")


def register(reg: Catalogue, svc: WebServices) -> None:
    _register_stats(reg, svc)
    _register_recordings(reg, svc)
    _register_crm(reg, svc)


def _recording(r: Any) -> dict[str, Any]:
    d = dataclasses.asdict(r)
    d.pop("source", None)  # a path on the node: not for clients
    return d


def _recording_id(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 2**63 - 1:
        raise ValidationError("recording_id", f"must be a recording id (decimal digits), not {value!r}")
    return int(value)


def _register_stats(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "stats.today",
        returns="struct",
        help="Today's figures (UTC day): {queues: [{queue, offered, answered, abandoned, service_level, "
        "abandon_rate, avg_wait_s}], agents: [{agent, answered, talk_s, hung_up_first}]}.",
        scope="stats:read",
    )
    async def today(ctx: RpcContext) -> Any:
        return wire(await rest.stats_today(svc, who(ctx).caller))

    @reg.method(
        "stats.queue_today",
        returns="struct",
        params=[Param("queue", "string")],
        help="One queue's figures today: {queue, offered, answered, abandoned, service_level, abandon_rate, "
        "avg_wait_s, waiting, longest_wait_s}.",
        scope="stats:read",
    )
    async def queue_today(ctx: RpcContext, queue: str) -> Any:
        if queue not in svc.config.snapshot.queue_by_name:
            raise NotFoundError(f"queue {queue!r} does not exist")
        tile = svc.monitor.tile(queue)
        out = {"queue": queue, **tile["today"], "waiting": tile["waiting"], "longest_wait_s": tile["longest_wait_s"]}
        return wire(out)

    @reg.method(
        "node.status",
        returns="struct",
        help="Asterisk nodes: {items: [{name, address, state, active_calls, load, last_seen_at, ami_connected, "
        "ami_events (a string)}], total}.",
        scope=any_of("stats:read", "config:read"),
    )
    async def node_status(ctx: RpcContext) -> Any:
        answer = await rest.nodes_status(svc, who(ctx).caller)
        for node in answer["items"]:
            node["ami_events"] = str(node["ami_events"])
        return wire(answer)

    @reg.method(
        "hotline.status",
        returns="struct",
        help="Hotline itself: {version, config_version (a string), nodes, nodes_connected, active_calls, "
        "agents_logged_in}.",
        scope=AUTHENTICATED,
    )
    async def status(ctx: RpcContext) -> Any:
        nodes = svc.nodes.status()
        version = svc.config.version
        logged_in = sum(1 for s in svc.agents.statuses() if s.phone is not None)
        return {
            "version": hotline.__version__,
            "config_version": None if version is None else str(version),
            "nodes": len(svc.config.snapshot.nodes),
            "nodes_connected": sum(1 for n in nodes if n.get("connected")),
            "active_calls": len(svc.journal.active_calls()),
            "agents_logged_in": logged_in,
        }


def _register_recordings(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "recording.list",
        returns="struct",
        params=[Param("call_id", "string")],
        help="The recordings of a call, oldest first: {items: [{id, call_id, node, state, attempts, last_error, "
        "storage_key, size, duration_s, created_at, stored_at, ...}], total}; id and size are strings.",
        scope="recordings:read",
    )
    async def by_call(ctx: RpcContext, call_id: str) -> Any:
        return items([_recording(r) for r in await svc.recordings.get(call_id)])

    @reg.method(
        "recording.recent",
        returns="struct",
        params=[Param("state", "string", optional=True), Param("limit", "int", optional=True)],
        help=f"The newest recordings, optionally in one state ({', '.join(RECORDING_STATES)}): {{items, total}}; "
        "limit 1..1000 (100).",
        scope="recordings:read",
    )
    async def recent(ctx: RpcContext, state: str = "", limit: int = 100) -> Any:
        if state and state not in RECORDING_STATES:
            raise ValidationError("state", f"must be one of {', '.join(RECORDING_STATES)} (got {state!r})")
        bounded("limit", limit, 1, MAX_LIMIT)
        rows = await svc.recordings.recent(state=state or None, limit=limit)
        return items([_recording(r) for r in rows])

    @reg.method(
        "recording.get",
        returns="struct",
        params=[Param("recording_id", "string")],
        help="One recording by its id (a string of digits).",
        scope="recordings:read",
    )
    async def get(ctx: RpcContext, recording_id: str) -> Any:
        return wire(_recording(await svc.recordings.recording(_recording_id(recording_id))))

    @reg.method(
        "recording.url",
        returns="struct",
        params=[Param("recording_id", "string")],
        help="Where to download a stored recording's MP3 over REST: {path, url}; send the same credentials "
        "(Basic or an API key with recordings:read).  Fault 409 when it is not stored (yet, or any more).",
        scope="recordings:read",
    )
    async def url(ctx: RpcContext, recording_id: str) -> Any:
        rec = await svc.recordings.recording(_recording_id(recording_id))
        if rec.state != "stored":
            raise ConflictError(f"recording {rec.id} is {rec.state}, not stored")
        path = f"/api/v1/recordings/{rec.id}/audio"
        return {"path": path, "url": svc.settings.effective_public_url + path}

    @reg.method(
        "recording.retry",
        returns="struct",
        params=[Param("recording_id", "string")],
        help="Start a failed recording's conversion and upload over.  Returns the recording.  Audited.",
        scope="config:write",
    )
    async def retry(ctx: RpcContext, recording_id: str) -> Any:
        rec = await svc.recordings.retry(_recording_id(recording_id))
        await audit(svc, ctx, "retry", "recording", str(rec.id))
        return wire(_recording(rec))

    @reg.method(
        "media.list",
        returns="struct",
        help="Uploaded prompts, music-on-hold classes and files: {prompts, moh_classes, moh_files}.",
        scope="config:read",
    )
    async def media(ctx: RpcContext) -> Any:
        return wire(await rest.media_list(svc, who(ctx).caller))


def _register_crm(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "customer.lookup",
        returns="struct",
        params=[Param("number", "string")],
        help="What Hotline knows of a caller number (the screen pop's data): {caller: {number, name}, customer, "
        "earlier_calls, crm, sources}.",
        scope=any_of("calls:read", "self"),
    )
    async def lookup(ctx: RpcContext, number: str) -> Any:
        if not 1 <= len(number) <= 64:
            raise ValidationError("number", "must be 1 to 64 characters")
        return wire(await rest.customer_lookup(svc, who(ctx).caller, number))

    @reg.method(
        "customer.find",
        returns="struct",
        params=[Param("search", "string"), Param("limit", "int", optional=True)],
        help="Customers whose name, phone or external id matches search: {items, total}; limit 1..1000 (100).",
        scope="config:read",
    )
    async def find(ctx: RpcContext, search: str, limit: int = 100) -> Any:
        bounded("limit", limit, 1, MAX_LIMIT)
        rows, total = await asyncio.to_thread(lambda: svc.catalog.list("customers", search=search or None, limit=limit))
        return items(rows, total)

    @reg.method(
        "webhook.deliveries",
        returns="struct",
        params=[
            Param("webhook_id", "string"),
            Param("state", "string", optional=True),
            Param("limit", "int", optional=True),
        ],
        help=f"A webhook's deliveries, newest first, optionally in one state ({', '.join(DELIVERY_STATES)}): "
        "{items: [{id, event_id, event, payload, state, attempts, last_status, last_error, ...}], total}.",
        scope="config:read",
    )
    async def deliveries(ctx: RpcContext, webhook_id: str, state: str = "", limit: int = 100) -> Any:
        if not webhook_id.isdigit() or not 1 <= int(webhook_id) <= 2**31 - 1:
            raise ValidationError("webhook_id", f"must be a webhook id (decimal digits), not {webhook_id!r}")
        if state and state not in DELIVERY_STATES:
            raise ValidationError("state", f"must be one of {', '.join(DELIVERY_STATES)} (got {state!r})")
        bounded("limit", limit, 1, MAX_LIMIT)
        answer = await rest.webhook_deliveries(
            int(webhook_id),
            svc,
            who(ctx).caller,
            state=state or None,  # type: ignore[arg-type]  # checked against DELIVERY_STATES above
            limit=limit,
        )
        return wire(answer)
