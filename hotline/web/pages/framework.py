"""The page framework: templates, sign-in guard, navigation by permission, security headers, static files.

`Pages` is built once per web application (by `page_routes`).  A page is a coroutine registered with
`pages.page(path, scope=...)`; it receives the request and the authenticated `Caller` and returns
`await pages.render(request, caller, "x.html", {...})`.  The guard does the rest:

- no valid session (or any other credential)  -> 303 to ``/login?next=<path>``;
- signed in without the page's scope           -> 403 page (translated);
- every page response carries the security headers: a Content-Security-Policy without inline scripts or
  styles (scripts and styles come from /static only; data for scripts travels in
  ``<script type="application/json">`` blocks, which are not executed), X-Frame-Options DENY
  (frame-ancestors 'none'), Referrer-Policy same-origin, nosniff, no caching of pages.

Templates (Jinja2, autoescaped) extend ``base.html``; the context always has ``t`` (translator), ``lang``,
``caller`` (the Principal), ``nav`` (entries the caller may open), ``csrf`` (the session's token),
``static(path)`` (a URL with a content hash, so browsers cache static files for a long time but never run a
stale script) and ``page_data`` (what scripts read via ``Hotline.page``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from hotline.domain.permissions import Principal
from hotline.errors import HotlineError
from hotline.web.auth import Caller
from hotline.web.context import WebServices
from hotline.web.errors import status_of
from hotline.web.pages.i18n import Translator, catalogs, language_of

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATE_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static"

PageHandler = Callable[[Request, Caller], Awaitable[Response]]
R = TypeVar("R", bound=Response)

_HOST = re.compile(r"[A-Za-z0-9.\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def safe_next(value: object) -> str:
    """A post-login target that stays on this site: a local absolute path, else '/'."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if len(value) > 512 or any(ord(c) < 0x20 or c == "\\" for c in value):
        return "/"
    return value


def home_of(principal: Principal) -> str:
    """Where `/` sends someone: admins to /admin, supervisors to /monitor, agents to /agent."""
    if principal.role == "admin" or principal.has_scope("users:admin"):
        return "/admin"
    if principal.has_scope("stats:read"):
        return "/monitor"
    if principal.has_scope("self"):
        return "/agent"
    return "/login"


def content_security_policy(request: Request) -> str:
    # 'self' covers same-origin WebSockets in current browsers (CSP level 3); the explicit ws(s) origin is
    # for older ones.  The host comes from the request and is only used when it looks like a host.
    host = request.headers.get("host", "")
    ws = ""
    if _HOST.fullmatch(host):
        scheme = "wss" if request.url.scheme == "https" else "ws"
        ws = f" {scheme}://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src 'self'{ws}; media-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def secure(response: R, request: Request) -> R:
    h = response.headers
    h["Content-Security-Policy"] = content_security_policy(request)
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "same-origin"
    h["X-Content-Type-Options"] = "nosniff"
    h["Cache-Control"] = "no-store"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    return response


@dataclass(frozen=True, slots=True)
class NavEntry:
    key: str  # catalog key of the label
    href: str
    scopes: tuple[str, ...]  # any one of them shows the entry; () = everybody signed in
    order: int

    def visible_to(self, principal: Principal) -> bool:
        return not self.scopes or any(principal.has_scope(s) for s in self.scopes)


class _Static:
    """StaticFiles with nosniff and long caching (URLs from `static()` carry a content hash)."""

    def __init__(self, directory: Path) -> None:
        self._files = StaticFiles(directory=directory)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"cache-control", b"public, max-age=86400"))
                message = {**message, "headers": headers}
            await send(message)

        await self._files(scope, receive, send_with_headers)


class Pages:
    def __init__(self, services: WebServices) -> None:
        self.services = services
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["static"] = self.static
        self.routes: list[BaseRoute] = []
        self._nav: list[NavEntry] = []
        self._hashes: dict[str, str] = {}
        catalogs()  # a broken catalog stops start-up with a ConfigError naming the file

    # ------------------------------------------------------------------ registry
    def nav(self, key: str, href: str, *, scopes: tuple[str, ...] = (), order: int = 50) -> None:
        """Add a navigation entry shown to callers holding any of `scopes`."""
        self._nav.append(NavEntry(key, href, scopes, order))
        self._nav.sort(key=lambda e: (e.order, e.href))

    def nav_for(self, principal: Principal) -> list[NavEntry]:
        return [e for e in self._nav if e.visible_to(principal)]

    def page(
        self, path: str, *, scopes: tuple[str, ...] = (), methods: tuple[str, ...] = ("GET",), name: str | None = None
    ) -> Callable[[PageHandler], PageHandler]:
        """Register a page at `path` for callers holding any of `scopes` (() = anyone signed in)."""

        def register(handler: PageHandler) -> PageHandler:
            async def endpoint(request: Request) -> Response:
                caller = await self.caller(request)
                if caller is None:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return secure(RedirectResponse(f"/login?next={quote(target, safe='')}", 303), request)
                if scopes and not any(caller.principal.has_scope(s) for s in scopes):
                    return await self.error(request, caller, 403, "error.forbidden")
                try:
                    response = await handler(request, caller)
                except HotlineError as exc:  # e.g. NotFoundError for /agent?agent=999
                    return await self.error(request, caller, _status(exc), "error.page", message=str(exc))
                return secure(response, request)

            self.routes.append(Route(path, endpoint, methods=list(methods), name=name))
            return handler

        return register

    async def caller(self, request: Request) -> Caller | None:
        try:
            return await self.services.auth.caller(request)
        except HotlineError:  # a wrong or throttled Basic header on a page: treat as signed out
            return None

    # ------------------------------------------------------------------ rendering
    def static(self, path: str) -> str:
        """``/static/<path>?v=<hash of the file>``; the hash is computed once per file and process."""
        digest = self._hashes.get(path)
        if digest is None:
            file = (STATIC_DIR / path).resolve()
            if not file.is_relative_to(STATIC_DIR.resolve()) or not file.is_file():
                raise jinja2.TemplateRuntimeError(f"no static file {path!r}")
            digest = self._hashes[path] = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
        return f"{STATIC_PREFIX}/{path}?v={digest}"

    def context(self, request: Request, caller: Caller | None, language: str | None = None) -> dict[str, Any]:
        principal = caller.principal if caller else None
        lang = language_of(language or (principal.language if principal else None))
        csrf = caller.session.csrf_token if caller and caller.session else ""
        return {
            "request": request,
            "t": Translator(lang),
            "lang": lang,
            "caller": principal,
            "nav": self.nav_for(principal) if principal else [],
            "csrf": csrf,
            "path": request.url.path,
            "i18n_json": dict(catalogs()[lang]),
            "page_data": {
                "csrf": csrf,
                "lang": lang,
                "user": principal.name if principal else None,
                "role": principal.role if principal else None,
                "agent": principal.agent_number if principal else None,
                "scopes": sorted(principal.scopes) if principal else [],
            },
        }

    async def render(
        self,
        request: Request,
        caller: Caller | None,
        template: str,
        values: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        data: Mapping[str, Any] | None = None,
        language: str | None = None,
    ) -> HTMLResponse:
        """Render `template`; `data` is merged into `page_data` (what the page's script reads)."""
        ctx = self.context(request, caller, language)
        if data:
            ctx["page_data"].update(data)
        if values:
            ctx.update(values)
        html = self.env.get_template(template).render(ctx)
        return secure(HTMLResponse(html, status_code=status), request)

    async def error(
        self, request: Request, caller: Caller | None, status: int, key: str, *, message: str = ""
    ) -> HTMLResponse:
        return await self.render(
            request, caller, "error.html", {"status": status, "key": key, "message": message}, status=status
        )

    def static_app(self) -> _Static:
        return _Static(STATIC_DIR)


def _status(exc: HotlineError) -> int:
    return status_of(exc)[0]
