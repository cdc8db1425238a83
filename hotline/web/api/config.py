"""REST: every configuration resource (phones, agents, groups, queues, routes, IVR, time conditions, limits,
music on hold, nodes, customers, webhooks...) through the one resource catalogue
(hotline/features/config/resources), so REST, XML-RPC and the web admin validate and write the same way.

Routes are generated per resource, so the OpenAPI document names each one:

    GET    /api/v1/config                      the resources and their fields
    GET    /api/v1/config/{resource}           list (q = search, limit, offset, sort)
    POST   /api/v1/config/{resource}           create
    GET    /api/v1/config/{resource}/{key}     one
    PATCH  /api/v1/config/{resource}/{key}     change some fields
    DELETE /api/v1/config/{resource}/{key}     delete
    POST   /api/v1/config/{resource}/bulk      delete / enable / disable / update one field on many, all or nothing

Every write is audited with the record before and after (secrets masked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from hotline.web.api.deps import Services, audit, need
from hotline.web.auth import Caller
from hotline.web.context import WebServices


class BulkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["delete", "enable", "disable", "update"]
    keys: list[str] = Field(min_length=1, max_length=1000)
    data: dict[str, Any] | None = Field(default=None, description="for action 'update': the one field and its value")


JsonObject = Annotated[dict[str, Any], Body(description="the fields, as in GET /api/v1/config")]
KeyPath = Annotated[str, Path(min_length=1, max_length=255)]


def _describe(catalog: Any) -> list[dict[str, Any]]:
    return list(catalog.resources())


async def _changed(svc: WebServices) -> None:
    """A write happened through this instance: pick up the new configuration at once (others poll)."""
    await svc.config.reload()


def add_config_routes(api: FastAPI, resource_names: list[str]) -> None:
    router = APIRouter(prefix="/api/v1/config", tags=["configuration"])

    @router.get("", summary="The configuration resources and their fields")
    async def describe(svc: Services, caller: Annotated[Caller, Depends(need("config:read"))]) -> dict[str, Any]:
        return {"resources": _describe(svc.catalog)}

    for name in resource_names:
        _add_resource(router, name)
    api.include_router(router)


def _add_resource(router: APIRouter, name: str) -> None:
    op = name.replace("-", "_")

    async def list_items(
        svc: Services,
        caller: Annotated[Caller, Depends(need("config:read"))],
        q: Annotated[str | None, Query(max_length=128, description="search text")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        sort: Annotated[str | None, Query(max_length=64, pattern=r"^-?[a-z_]{1,64}$")] = None,
    ) -> dict[str, Any]:
        rows, total = await asyncio.to_thread(
            lambda: svc.catalog.list(name, search=q, limit=limit, offset=offset, sort=sort)
        )
        return {"items": rows, "total": total}

    async def create_item(
        body: JsonObject, svc: Services, caller: Annotated[Caller, Depends(need("config:write"))]
    ) -> dict[str, Any]:
        row: dict[str, Any] = await asyncio.to_thread(svc.catalog.create, name, body)
        await audit(svc, caller, "create", name, _key_of(svc, name, row), after=row)
        await _changed(svc)
        return row

    async def get_item(
        key: KeyPath, svc: Services, caller: Annotated[Caller, Depends(need("config:read"))]
    ) -> dict[str, Any]:
        row: dict[str, Any] = await asyncio.to_thread(svc.catalog.get, name, key)
        return row

    async def update_item(
        key: KeyPath, body: JsonObject, svc: Services, caller: Annotated[Caller, Depends(need("config:write"))]
    ) -> dict[str, Any]:
        before, after = await asyncio.to_thread(svc.catalog.update, name, key, body)
        await audit(svc, caller, "update", name, key, before=before, after=after)
        await _changed(svc)
        return dict(after)

    async def delete_item(
        key: KeyPath, svc: Services, caller: Annotated[Caller, Depends(need("config:write"))]
    ) -> dict[str, Any]:
        before = await asyncio.to_thread(svc.catalog.delete, name, key)
        await audit(svc, caller, "delete", name, key, before=before)
        await _changed(svc)
        return {"deleted": key}

    async def bulk(
        body: BulkBody, svc: Services, caller: Annotated[Caller, Depends(need("config:write"))]
    ) -> dict[str, Any]:
        result = await asyncio.to_thread(svc.catalog.bulk, name, body.action, body.keys, body.data)
        await audit(svc, caller, f"bulk_{body.action}", name, ",".join(body.keys)[:255], after=body.data)
        await _changed(svc)
        return {"action": body.action, "keys": body.keys, "result": result}

    routes: list[tuple[str, str, Callable[..., Awaitable[Any]], str, int]] = [
        (f"/{name}", "GET", list_items, f"List {name}", 200),
        (f"/{name}", "POST", create_item, f"Create one of {name}", 201),
        (f"/{name}/bulk", "POST", bulk, f"Bulk action on {name} (all or nothing)", 200),
        (f"/{name}/{{key}}", "GET", get_item, f"One of {name}", 200),
        (f"/{name}/{{key}}", "PATCH", update_item, f"Change one of {name}", 200),
        (f"/{name}/{{key}}", "DELETE", delete_item, f"Delete one of {name}", 200),
    ]
    for path, method, fn, summary, status in routes:
        router.add_api_route(
            path,
            fn,
            methods=[method],
            summary=summary,
            status_code=status,
            operation_id=f"{method.lower()}_{op}{'_bulk' if path.endswith('/bulk') else ''}"
            f"{'_item' if '{key}' in path else ''}",
        )


def _key_of(svc: WebServices, name: str, row: dict[str, Any]) -> str:
    """The key of a created row as clients write it (composite keys joined by ':')."""
    resource = svc.catalog.resource(name)
    return resource.format_key(tuple(row.get(k, "") for k in resource.key_fields))
