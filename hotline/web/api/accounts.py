"""REST: sign in and out, who am I, users, API keys and the audit log."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hotline.db.repositories.accounts import User
from hotline.errors import PermissionDeniedError
from hotline.web.api.deps import Services, audit, need
from hotline.web.auth import Caller, client_address
from hotline.web.context import WebServices

router = APIRouter(prefix="/api/v1")

Role = Literal["admin", "supervisor", "agent"]
Language = Literal["en", "ru"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserCreate(Strict):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
    password: str = Field(min_length=10, max_length=256)
    role: Role
    display_name: str = Field(default="", max_length=128)
    language: Language = "en"
    agent: str | None = Field(default=None, max_length=32, description="agent number (required for role agent)")


class UserUpdate(Strict):
    password: str | None = Field(default=None, min_length=10, max_length=256)
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=128)
    language: Language | None = None
    agent: str | None = Field(default=None, max_length=32)
    enabled: bool | None = None


class MePatch(Strict):
    language: Language | None = None
    password: str | None = Field(default=None, min_length=10, max_length=256)
    current_password: str | None = Field(default=None, max_length=256)


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    scopes: list[str] = Field(min_length=1, max_length=32)
    expires_at: datetime | None = Field(default=None, description="aware ISO 8601 time; none = never expires")


class ApiKeyUpdate(Strict):
    enabled: bool


# ------------------------------------------------------------------ sessions
@router.post("/auth/login", tags=["auth"], summary="Sign in: sets the session cookie, returns the CSRF token")
async def login(body: LoginBody, request: Request, response: Response, svc: Services) -> dict[str, Any]:
    new = await svc.accounts.login(
        body.username,
        body.password,
        address=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    svc.auth.set_session_cookie(response, new.token)
    return {"user": new.user.as_dict(), "csrf_token": new.info.csrf_token, "scopes": sorted(new.info.principal.scopes)}


@router.post("/auth/logout", tags=["auth"], summary="Sign out (ends the session)")
async def logout(
    request: Request, response: Response, svc: Services, caller: Annotated[Caller, Depends(need())]
) -> dict[str, Any]:
    token = request.cookies.get("hotline_session", "")
    if token and caller.session is not None:
        await svc.accounts.logout(token)
    svc.auth.clear_session_cookie(response)
    return {"ok": True}


@router.get("/auth/me", tags=["auth"], summary="Who is calling, with the permissions")
async def me(svc: Services, caller: Annotated[Caller, Depends(need())]) -> dict[str, Any]:
    p = caller.principal
    out: dict[str, Any] = {
        "kind": p.kind,
        "name": p.name,
        "role": p.role,
        "agent": p.agent_number,
        "language": p.language,
        "scopes": sorted(p.scopes),
    }
    if caller.session is not None:
        out["csrf_token"] = caller.session.csrf_token
    return out


@router.patch("/auth/me", tags=["auth"], summary="Change one's own language or password")
async def patch_me(body: MePatch, svc: Services, caller: Annotated[Caller, Depends(need())]) -> dict[str, Any]:
    p = caller.principal
    if p.kind != "user":
        raise PermissionDeniedError("only users have a language and a password")
    fields: dict[str, object] = {}
    if body.language is not None:
        fields["language"] = body.language
    if body.password is not None:
        await svc.accounts.password_principal(p.name, body.current_password or "", address=caller.address)
        fields["password"] = body.password
    before, after = await _update_user(svc, p.name, fields)
    await audit(svc, caller, "update", "user", p.name, before=before.as_dict(), after=after.as_dict())
    return after.as_dict()


# ------------------------------------------------------------------ users
async def _update_user(svc: WebServices, username: str, fields: dict[str, object]) -> tuple[User, User]:
    result = await asyncio.to_thread(lambda: svc.accounts.repo.update_user(username, **fields))
    svc.accounts.forget_all()
    return result


@router.get("/users", tags=["users"], summary="List users")
async def list_users(
    svc: Services,
    caller: Annotated[Caller, Depends(need("users:admin"))],
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    users, total = await asyncio.to_thread(svc.accounts.repo.list_users, search=q, limit=limit, offset=offset)
    return {"items": [u.as_dict() for u in users], "total": total}


@router.post("/users", tags=["users"], status_code=201, summary="Create a user")
async def create_user(
    body: UserCreate, svc: Services, caller: Annotated[Caller, Depends(need("users:admin"))]
) -> dict[str, Any]:
    user = await asyncio.to_thread(
        lambda: svc.accounts.repo.add_user(
            body.username,
            body.password,
            role=body.role,
            display_name=body.display_name,
            language=body.language,
            agent=body.agent,
        )
    )
    await audit(svc, caller, "create", "user", user.username, after=user.as_dict())
    return user.as_dict()


@router.get("/users/{username}", tags=["users"], summary="One user")
async def get_user(
    username: str, svc: Services, caller: Annotated[Caller, Depends(need("users:admin"))]
) -> dict[str, Any]:
    return (await asyncio.to_thread(svc.accounts.repo.get_user, username)).as_dict()


@router.patch("/users/{username}", tags=["users"], summary="Change a user (role, password, language, agent, enabled)")
async def update_user(
    username: str, body: UserUpdate, svc: Services, caller: Annotated[Caller, Depends(need("users:admin"))]
) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    before, after = await _update_user(svc, username, fields)
    await audit(svc, caller, "update", "user", username, before=before.as_dict(), after=after.as_dict())
    return after.as_dict()


@router.delete("/users/{username}", tags=["users"], summary="Delete a user")
async def delete_user(
    username: str, svc: Services, caller: Annotated[Caller, Depends(need("users:admin"))]
) -> dict[str, Any]:
    before = await asyncio.to_thread(svc.accounts.repo.delete_user, username)
    svc.accounts.forget_all()
    await audit(svc, caller, "delete", "user", username, before=before.as_dict())
    return {"deleted": username}


# ------------------------------------------------------------------ API keys
@router.get("/api-keys", tags=["api keys"], summary="List API keys (never the keys themselves)")
async def list_keys(svc: Services, caller: Annotated[Caller, Depends(need("users:admin"))]) -> dict[str, Any]:
    keys = await asyncio.to_thread(svc.accounts.repo.list_api_keys)
    return {"items": [k.as_dict() for k in keys], "total": len(keys)}


@router.post("/api-keys", tags=["api keys"], status_code=201, summary="Create an API key (shown once)")
async def create_key(
    body: ApiKeyCreate, svc: Services, caller: Annotated[Caller, Depends(need("users:admin"))]
) -> dict[str, Any]:
    row, key = await svc.accounts.create_api_key(
        body.name, body.scopes, created_by=caller.principal, expires_at=body.expires_at
    )
    await audit(svc, caller, "create", "api_key", row.name, after=row.as_dict())
    return {**row.as_dict(), "key": key}


@router.patch("/api-keys/{name}", tags=["api keys"], summary="Enable or disable an API key")
async def update_key(
    name: str, body: ApiKeyUpdate, svc: Services, caller: Annotated[Caller, Depends(need("users:admin"))]
) -> dict[str, Any]:
    before, after = await asyncio.to_thread(svc.accounts.repo.set_api_key_enabled, name, body.enabled)
    svc.accounts.forget_all()
    await audit(svc, caller, "update", "api_key", name, before=before.as_dict(), after=after.as_dict())
    return after.as_dict()


@router.delete("/api-keys/{name}", tags=["api keys"], summary="Revoke (delete) an API key")
async def delete_key(
    name: str, svc: Services, caller: Annotated[Caller, Depends(need("users:admin"))]
) -> dict[str, Any]:
    before = await asyncio.to_thread(svc.accounts.repo.delete_api_key, name)
    svc.accounts.forget_all()
    await audit(svc, caller, "delete", "api_key", name, before=before.as_dict())
    return {"deleted": name}


# ------------------------------------------------------------------ audit log
@router.get("/audit", tags=["audit"], summary="The audit log, newest first")
async def audit_log(
    svc: Services,
    caller: Annotated[Caller, Depends(need("users:admin"))],
    resource: Annotated[str | None, Query(max_length=32)] = None,
    key: Annotated[str | None, Query(max_length=255)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    entries, total = await asyncio.to_thread(
        lambda: svc.accounts.repo.audit_entries(resource=resource, key=key, actor=actor, limit=limit, offset=offset)
    )
    return {"items": [e.as_dict() for e in entries], "total": total}
