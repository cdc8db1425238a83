"""XML-RPC: configuration through the resource catalogue (config.*), the short lists front ends read
(phone.list, queue.list, ...), users, API keys and the audit log.

Everything goes through the same code as REST (hotline/web/api/config.py and accounts.py): the resource
catalogue validates and writes, every change is audited with the row before and after (secrets masked by
the audit), and the running instance reloads its configuration at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from hotline.web.context import WebServices
from hotline.web.rpc import Param, RpcContext
from hotline.web.rpc_methods.base import (
    AUTHENTICATED,
    MAX_LIMIT,
    Catalogue,
    audit,
    bounded,
    items,
    members,
    principal,
    wire,
)

#: (function prefix, catalogue resource, what it lists) for the thin `<prefix>.list` reads
LISTS: Final[tuple[tuple[str, str, str], ...]] = (
    ("phone", "phones", "SIP desk phones"),
    ("group", "agent_groups", "agent groups with their limits"),
    ("agent", "agents", "agents (number, name, group, fixed phone)"),
    ("skill", "agent_queues", "the queues each agent serves, with penalties"),
    ("queue", "queues", "queues and their options"),
    ("route", "did_routes", "inbound DID routes"),
    ("ivr", "ivr_menus", "IVR menus"),
    ("ivr_option", "ivr_options", "IVR menu options"),
    ("time_condition", "time_conditions", "business hours"),
    ("holiday", "holidays", "holidays"),
    ("pause_reason", "pause_reasons", "pause reasons"),
    ("service_number", "service_numbers", "help and emergency numbers open to every phone"),
    ("call_type_rule", "call_type_rules", "number classification rules"),
    ("moh", "moh_classes", "music-on-hold classes"),
    ("node", "nodes", "Asterisk nodes"),
    ("webhook", "webhooks", "webhooks"),
)

_LIST_QUERY: Final = {"search": "string", "filters": "struct", "limit": "int", "offset": "int", "sort": "string"}
_USER_CREATE: Final = {
    "username": "string",
    "password": "string",
    "role": "string",
    "display_name": "string",
    "language": "string",
    "agent": "string",
}
_USER_UPDATE: Final = {
    "password": "string",
    "role": "string",
    "display_name": "string",
    "language": "string",
    "agent": "string",
    "enabled": "boolean",
}
_AUDIT_QUERY: Final = {"resource": "string", "key": "string", "actor": "string", "limit": "int", "offset": "int"}


def register(reg: Catalogue, svc: WebServices) -> None:
    _register_config(reg, svc)
    _register_lists(reg, svc)
    _register_accounts(reg, svc)


def _key_of(svc: WebServices, resource: str, row: dict[str, Any]) -> str:
    return str(row.get(svc.catalog.resource(resource).key, ""))


async def _changed(svc: WebServices) -> None:
    """A write happened through this instance: pick up the new configuration at once (others poll)."""
    await svc.config.reload()


def _register_config(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "config.resources",
        returns="array",
        help="Every configuration resource with its key, search fields, bulk actions and fields (type, limits, "
        "choices, default, references, read-only / write-only flags): what config.* accepts.",
        scope="config:read",
    )
    async def resources(ctx: RpcContext) -> Any:
        return wire(svc.catalog.resources())

    @reg.method(
        "config.list",
        returns="struct",
        params=[Param("resource", "string"), Param("query", "struct", optional=True)],
        help="One page of a resource's rows: {items, total}.  query: {search: part of any search field, "
        "filters: {field: value} (all equal), limit: 1..1000 (100), offset (0), sort: 'field' or '-field'}.",
        scope="config:read",
    )
    async def config_list(ctx: RpcContext, resource: str, query: dict[str, Any] | None = None) -> Any:
        q = members(ctx, "query", query or {}, _LIST_QUERY)
        limit = bounded("limit", q.get("limit", 100), 1, MAX_LIMIT)
        offset = bounded("offset", q.get("offset", 0), 0, 1_000_000)
        rows, total = await asyncio.to_thread(
            lambda: svc.catalog.list(
                resource,
                search=q.get("search"),
                filters=q.get("filters"),
                limit=limit,
                offset=offset,
                sort=q.get("sort"),
            )
        )
        return items(rows, total)

    @reg.method(
        "config.get",
        returns="struct",
        params=[Param("resource", "string"), Param("key", "string")],
        help="One row of a resource by its key (a name, number, DID, day, id, or AGENT:QUEUE / MENU:DIGIT).",
        scope="config:read",
    )
    async def config_get(ctx: RpcContext, resource: str, key: str) -> Any:
        return wire(await asyncio.to_thread(svc.catalog.get, resource, key))

    @reg.method(
        "config.create",
        returns="struct",
        params=[Param("resource", "string"), Param("data", "struct")],
        help="Create a row from its fields (config.resources lists them); returns the row as stored, plus "
        "a generated password or secret, shown this once.  Audited.",
        scope="config:write",
    )
    async def config_create(ctx: RpcContext, resource: str, data: dict[str, Any]) -> Any:
        row: dict[str, Any] = await asyncio.to_thread(svc.catalog.create, resource, data)
        await audit(svc, ctx, "create", resource, _key_of(svc, resource, row), after=row)
        await _changed(svc)
        return wire(row)

    @reg.method(
        "config.update",
        returns="struct",
        params=[Param("resource", "string"), Param("key", "string"), Param("data", "struct")],
        help="Change some fields of a row (keys cannot change); returns the row after.  Audited with the "
        "row before and after.",
        scope="config:write",
    )
    async def config_update(ctx: RpcContext, resource: str, key: str, data: dict[str, Any]) -> Any:
        before, after = await asyncio.to_thread(svc.catalog.update, resource, key, data)
        await audit(svc, ctx, "update", resource, key, before=before, after=after)
        await _changed(svc)
        return wire(after)

    @reg.method(
        "config.delete",
        returns="struct",
        params=[Param("resource", "string"), Param("key", "string")],
        help="Delete a row; fault 409 names what still uses it.  Returns {deleted: key}.  Audited.",
        scope="config:write",
    )
    async def config_delete(ctx: RpcContext, resource: str, key: str) -> Any:
        before = await asyncio.to_thread(svc.catalog.delete, resource, key)
        await audit(svc, ctx, "delete", resource, key, before=before)
        await _changed(svc)
        return {"deleted": key}

    @reg.method(
        "config.bulk",
        returns="struct",
        params=[
            Param("resource", "string"),
            Param("action", "string"),
            Param("keys", "array"),
            Param("data", "struct", optional=True),
        ],
        help="delete, enable, disable or update (data = {field: value}, one field) up to 1000 rows, all or "
        "nothing.  Returns {action, keys, result: [{key, before, after}]}.  Audited.",
        scope="config:write",
    )
    async def config_bulk(
        ctx: RpcContext, resource: str, action: str, keys: list[Any], data: dict[str, Any] | None = None
    ) -> Any:
        result = await asyncio.to_thread(svc.catalog.bulk, resource, action, keys, data)
        joined = ",".join(str(k) for k in keys)[:255]
        await audit(svc, ctx, f"bulk_{action}", resource, joined, before=[r["before"] for r in result], after=data)
        await _changed(svc)
        return wire({"action": action, "keys": keys, "result": result})


def _register_lists(reg: Catalogue, svc: WebServices) -> None:
    for prefix, resource, what in LISTS:
        reg.register(
            f"{prefix}.list",
            _lister(svc, resource),
            returns="struct",
            params=[Param("search", "string", optional=True)],
            help=f"The {what}: {{items, total}} (resource {resource}, at most 1000 rows; config.list pages "
            f"through more).  search: part of any search field, any case.",
            scope="config:read",
        )


def _lister(svc: WebServices, resource: str) -> Any:
    async def list_rows(ctx: RpcContext, search: str = "") -> Any:
        rows, total = await asyncio.to_thread(
            lambda: svc.catalog.list(resource, search=search or None, limit=MAX_LIMIT)
        )
        return items(rows, total)

    return list_rows


def _register_accounts(reg: Catalogue, svc: WebServices) -> None:
    @reg.method(
        "user.me",
        returns="struct",
        help="Who you are: {kind, name, role, agent, language, scopes}.",
        scope=AUTHENTICATED,
    )
    async def me(ctx: RpcContext) -> Any:
        p = principal(ctx)
        return wire(
            {
                "kind": p.kind,
                "name": p.name,
                "role": p.role,
                "agent": p.agent_number,
                "language": p.language,
                "scopes": sorted(p.scopes),
            }
        )

    @reg.method(
        "user.list",
        returns="struct",
        params=[Param("search", "string", optional=True), Param("limit", "int", optional=True)],
        help="Users (never their passwords): {items, total}; search: part of the user name.",
        scope="users:admin",
    )
    async def user_list(ctx: RpcContext, search: str = "", limit: int = 100) -> Any:
        bounded("limit", limit, 1, MAX_LIMIT)
        users, total = await asyncio.to_thread(lambda: svc.accounts.repo.list_users(search=search or None, limit=limit))
        return items([u.as_dict() for u in users], total)

    @reg.method(
        "user.get",
        returns="struct",
        params=[Param("username", "string")],
        help="One user: {username, display_name, role, language, agent, enabled, last_login_at, created_at}.",
        scope="users:admin",
    )
    async def user_get(ctx: RpcContext, username: str) -> Any:
        return wire((await asyncio.to_thread(svc.accounts.repo.get_user, username)).as_dict())

    @reg.method(
        "user.create",
        returns="struct",
        params=[Param("user", "struct")],
        help="Create a user: {username, password (10+ characters), role: admin | supervisor | agent, "
        "display_name, language: en | ru, agent: the agent number (role agent)}.  Audited.",
        scope="users:admin",
    )
    async def user_create(ctx: RpcContext, user: dict[str, Any]) -> Any:
        u = members(ctx, "user", user, _USER_CREATE)
        created = await asyncio.to_thread(
            lambda: svc.accounts.repo.add_user(
                str(u.get("username", "")),
                str(u.get("password", "")),
                role=str(u.get("role", "")),
                display_name=str(u.get("display_name", "")),
                language=str(u.get("language", "en")),
                agent=None if u.get("agent") is None else str(u["agent"]),
            )
        )
        await audit(svc, ctx, "create", "user", created.username, after=created.as_dict())
        return wire(created.as_dict())

    @reg.method(
        "user.update",
        returns="struct",
        params=[Param("username", "string"), Param("changes", "struct")],
        help="Change a user: {password, role, display_name, language, agent, enabled}; a new password, "
        "role or a disabled account ends the user's sessions.  Audited.",
        scope="users:admin",
    )
    async def user_update(ctx: RpcContext, username: str, changes: dict[str, Any]) -> Any:
        fields = members(ctx, "changes", changes, _USER_UPDATE)
        if "agent" in changes and changes["agent"] is None:
            fields["agent"] = None  # nil unbinds the agent
        before, after = await asyncio.to_thread(lambda: svc.accounts.repo.update_user(username, **fields))
        svc.accounts.forget_all()
        await audit(svc, ctx, "update", "user", username, before=before.as_dict(), after=after.as_dict())
        return wire(after.as_dict())

    @reg.method(
        "user.delete",
        returns="struct",
        params=[Param("username", "string")],
        help="Delete a user (not the last admin).  Returns {deleted}.  Audited.",
        scope="users:admin",
    )
    async def user_delete(ctx: RpcContext, username: str) -> Any:
        before = await asyncio.to_thread(svc.accounts.repo.delete_user, username)
        svc.accounts.forget_all()
        await audit(svc, ctx, "delete", "user", username, before=before.as_dict())
        return {"deleted": username}

    @reg.method(
        "apikey.list",
        returns="struct",
        help="API keys with their scopes (never the keys themselves): {items, total}.",
        scope="users:admin",
    )
    async def apikey_list(ctx: RpcContext) -> Any:
        keys = await asyncio.to_thread(svc.accounts.repo.list_api_keys)
        return items([k.as_dict() for k in keys])

    @reg.method(
        "apikey.create",
        returns="struct",
        params=[
            Param("name", "string"),
            Param("scopes", "array"),
            Param("expires_at", "dateTime.iso8601", optional=True),
        ],
        help="Create an API key with some of your scopes, optionally expiring (UTC).  The key is in the "
        "answer's 'key' member, shown this once.  Audited.",
        scope="users:admin",
    )
    async def apikey_create(ctx: RpcContext, name: str, scopes: list[Any], expires_at: Any = None) -> Any:
        row, key = await svc.accounts.create_api_key(name, scopes, created_by=principal(ctx), expires_at=expires_at)
        await audit(svc, ctx, "create", "api_key", row.name, after=row.as_dict())
        return wire({**row.as_dict(), "key": key})

    @reg.method(
        "apikey.set_enabled",
        returns="struct",
        params=[Param("name", "string"), Param("enabled", "boolean")],
        help="Enable or disable an API key.  Audited.",
        scope="users:admin",
    )
    async def apikey_enable(ctx: RpcContext, name: str, enabled: bool) -> Any:
        before, after = await asyncio.to_thread(svc.accounts.repo.set_api_key_enabled, name, enabled)
        svc.accounts.forget_all()
        await audit(svc, ctx, "update", "api_key", name, before=before.as_dict(), after=after.as_dict())
        return wire(after.as_dict())

    @reg.method(
        "apikey.delete",
        returns="struct",
        params=[Param("name", "string")],
        help="Revoke (delete) an API key.  Returns {deleted}.  Audited.",
        scope="users:admin",
    )
    async def apikey_delete(ctx: RpcContext, name: str) -> Any:
        before = await asyncio.to_thread(svc.accounts.repo.delete_api_key, name)
        svc.accounts.forget_all()
        await audit(svc, ctx, "delete", "api_key", name, before=before.as_dict())
        return {"deleted": name}

    @reg.method(
        "audit.list",
        returns="struct",
        params=[Param("query", "struct", optional=True)],
        help="The audit log, newest first: {items, total}.  query: {resource, key, actor ('user:alice'), "
        "limit: 1..1000 (100), offset}.",
        scope="users:admin",
    )
    async def audit_list(ctx: RpcContext, query: dict[str, Any] | None = None) -> Any:
        q = members(ctx, "query", query or {}, _AUDIT_QUERY)
        limit = bounded("limit", q.get("limit", 100), 1, MAX_LIMIT)
        offset = bounded("offset", q.get("offset", 0), 0, 1_000_000)
        entries, total = await asyncio.to_thread(
            lambda: svc.accounts.repo.audit_entries(
                resource=q.get("resource"), key=q.get("key"), actor=q.get("actor"), limit=limit, offset=offset
            )
        )
        return items([e.as_dict() for e in entries], total)
