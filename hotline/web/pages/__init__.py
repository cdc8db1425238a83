"""Server-rendered pages: sign-in, the wallboard, the live monitor, the agent page (and the admin pages).

`page_routes(services)` returns the routes `build_web` mounts: /static, /favicon.ico, /login, /logout, /
(to the caller's home page by role), /wallboard, /monitor, /agent, and whatever `admin.register(pages)`
adds.  The framework (templates, guard, headers, navigation) is in framework.py, the two languages in
i18n.py; docs/pages.md explains how to add a page.  Pages only render a frame and the data scripts need
to start; the scripts read and change everything through the REST API and follow the event stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from hotline.web.auth import SESSION_COOKIE, Caller
from hotline.web.context import WebServices
from hotline.web.pages import admin
from hotline.web.pages.framework import STATIC_DIR, STATIC_PREFIX, Pages, home_of, safe_next, secure

__all__ = ["Pages", "page_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


def page_routes(services: WebServices) -> list[BaseRoute]:
    pages = Pages(services)
    _register_core(pages)
    # The admin pages live in their own module; it registers itself the same way.
    admin.register(pages)
    return [
        Mount(STATIC_PREFIX, app=pages.static_app(), name="static"),
        Route("/favicon.ico", _favicon, methods=["GET", "HEAD"]),
        Route("/login", _login_page(pages), methods=["GET"]),
        Route("/logout", _logout(pages), methods=["GET", "POST"]),
        *pages.routes,
    ]


async def _favicon(request: Request) -> Response:
    return FileResponse(
        STATIC_DIR / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
    )


def _login_page(pages: Pages) -> Endpoint:
    async def login(request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        caller = await pages.caller(request)
        if caller is not None and caller.session is not None:
            return secure(RedirectResponse(target if target != "/" else home_of(caller.principal), 303), request)
        lang = request.query_params.get("lang") or _browser_language(request)
        return await pages.render(request, None, "login.html", {"next": target}, data={"next": target}, language=lang)

    return login


def _logout(pages: Pages) -> Endpoint:
    async def logout(request: Request) -> Response:
        caller = await pages.caller(request)
        if caller is None or caller.session is None:
            return secure(RedirectResponse("/login", 303), request)
        if request.method == "GET":  # signing out changes state: only by POST with the CSRF token
            return await pages.render(request, caller, "logout.html")
        if not await pages.services.auth.csrf_ok(request, caller):
            return await pages.error(request, caller, 403, "error.csrf")
        await pages.services.accounts.logout(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login", 303)
        pages.services.auth.clear_session_cookie(response)
        return secure(response, request)

    return logout


def _browser_language(request: Request) -> str:
    accept = request.headers.get("accept-language", "").lower()
    return "ru" if accept.startswith("ru") else "en"


def _register_core(pages: Pages) -> None:
    from hotline.web.pages import views

    pages.nav("nav.monitor", "/monitor", scopes=("stats:read",), order=20)
    pages.nav("nav.wallboard", "/wallboard", scopes=("stats:read",), order=30)
    pages.nav("nav.agent", "/agent", scopes=("self",), order=40)

    @pages.page("/")
    async def home(request: Request, caller: Caller) -> Response:
        return RedirectResponse(home_of(caller.principal), 303)

    views.register(pages)
