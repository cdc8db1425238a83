"""Shared pieces of the REST routes: who is calling (with the scope a route needs), the services, audit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBasic, HTTPBearer

from hotline.errors import AuthenticationError, PermissionDeniedError
from hotline.web.auth import SESSION_COOKIE, Caller
from hotline.web.context import WebServices

# Declared for the OpenAPI document only (auto_error=False): Authenticator reads the headers itself.
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hlk_...`")
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key in a header")
_basic = HTTPBasic(auto_error=False, description="A user name and password")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="A web session (send X-CSRF-Token)")


def services(request: Request) -> WebServices:
    svc = request.app.state.services
    assert isinstance(svc, WebServices)
    return svc


Services = Annotated[WebServices, Depends(services)]


def need(scope: str | None = None, *, any_of: tuple[str, ...] = ()) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the authenticated caller, who must hold `scope` (or one of `any_of`), CSRF-checked."""

    async def dependency(
        request: Request,
        _b: Annotated[Any, Depends(_bearer)] = None,
        _k: Annotated[Any, Depends(_key_header)] = None,
        _u: Annotated[Any, Depends(_basic)] = None,
        _c: Annotated[Any, Depends(_cookie)] = None,
    ) -> Caller:
        svc = services(request)
        caller = await svc.auth.caller(request)
        if caller is None:
            raise AuthenticationError("authentication required: a session, an API key or a user name and password")
        p = caller.principal
        if scope is not None and not p.has_scope(scope):
            raise PermissionDeniedError(f"{p.actor} lacks the permission {scope!r}")
        if any_of and not any(p.has_scope(s) for s in any_of):
            raise PermissionDeniedError(f"{p.actor} needs one of the permissions {', '.join(any_of)}")
        if not await svc.auth.csrf_ok(request, caller):
            raise PermissionDeniedError("CSRF token missing or wrong: send the X-CSRF-Token header of your session")
        request.state.caller = caller
        return caller

    return dependency


async def audit(
    svc: WebServices,
    caller: Caller,
    action: str,
    resource: str,
    key: str = "",
    *,
    before: object = None,
    after: object = None,
    interface: str = "rest",
) -> None:
    await svc.accounts.audit(
        caller.principal,
        action,
        resource,
        key,
        before=before,
        after=after,
        address=caller.address,
        interface=interface,
    )
