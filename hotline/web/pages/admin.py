"""The web admin (/admin): every configuration resource, users, API keys, media uploads and the audit log.

The admin is one generic, metadata-driven UI: these handlers only render a frame (templates/admin/app.html)
with the facts its script needs (which view, which resource and key, whether the caller may write), and
static/admin.js builds list pages and forms from GET /api/v1/config, then reads and writes through the REST
API, which validates, audits and applies every change.  So a resource added to the catalogue
(hotline/features/config/resources) appears here with no change to this module.

Who may see what (the REST routes enforce the same scopes; the pages only avoid offering what would fail):
- configuration pages and media need ``config:read``; writing needs ``config:write`` (a supervisor sees
  everything read-only, the forms and bulk actions are not offered);
- users, API keys and the audit log need ``users:admin``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from hotline.domain.permissions import SCOPES
from hotline.errors import NotFoundError, ValidationError
from hotline.web.auth import Caller
from hotline.web.pages.framework import PageHandler, Pages

READ = ("config:read",)
WRITE = ("config:write",)
ACCOUNTS = ("users:admin",)
KEY_MAX = 255  # the REST API's limit on a key in a path


@dataclass(frozen=True, slots=True)
class Section:
    """A group of links in the admin's side navigation."""

    key: str  # catalog key of the heading
    entries: tuple[tuple[str, str, str], ...]  # (catalog key of the label, href, data-admin-nav)


#: Where each configuration resource is listed in the side navigation; one not named here goes to "other".
_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("admin.section.telephony", ("phones", "did_routes", "nodes")),
    (
        "admin.section.callcenter",
        ("agents", "agent_groups", "agent_queues", "queues", "pause_reasons", "ivr_menus", "ivr_options"),
    ),
    ("admin.section.schedule", ("time_conditions", "holidays")),
    ("admin.section.limits", ("call_type_rules", "service_numbers")),
    ("admin.section.media", ("moh_classes",)),
    ("admin.section.integration", ("customers", "webhooks")),
)


def sections(resource_names: list[str], *, accounts: bool) -> list[Section]:
    """The side navigation: configuration resources by area, then media, then users/keys/audit."""
    known = set(resource_names)
    out: list[Section] = []
    placed: set[str] = set()
    for heading, names in _GROUPS:
        entries = [(f"admin.resource.{n}", f"/admin/config/{n}", n) for n in names if n in known]
        if heading == "admin.section.media":
            entries.append(("admin.media", "/admin/media", "media"))
        placed.update(names)
        if entries:
            out.append(Section(heading, tuple(entries)))
    other = [n for n in resource_names if n not in placed]
    if other:
        out.append(
            Section("admin.section.other", tuple((f"admin.resource.{n}", f"/admin/config/{n}", n) for n in other))
        )
    if accounts:
        out.append(
            Section(
                "admin.section.access",
                (
                    ("admin.users", "/admin/users", "users"),
                    ("admin.api_keys", "/admin/api-keys", "api_keys"),
                    ("admin.audit", "/admin/audit", "audit"),
                ),
            )
        )
    return out


class _AdminPages:
    """The admin's handlers: each renders the frame for one view of the script."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.resource_names = [str(r["name"]) for r in pages.services.catalog.resources()]
        self.known = frozenset(self.resource_names)

    async def frame(
        self,
        request: Request,
        caller: Caller,
        view: str,
        *,
        resource: str = "",
        key: str | None = None,
        title_key: str = "admin.title",
    ) -> Response:
        p = caller.principal
        accounts = p.has_scope("users:admin")
        may_write = accounts if resource in ("users", "api_keys") else p.has_scope("config:write")
        current = resource or view
        return await self.pages.render(
            request,
            caller,
            "admin/app.html",
            {
                "sections": sections(self.resource_names, accounts=accounts),
                "title_key": title_key,
                "current": current,
                "view": view,
            },
            data={
                "admin": {
                    "view": view,
                    "resource": resource,
                    "key": key,
                    "can_write": may_write,
                    "scope_catalog": dict(SCOPES),
                }
            },
        )

    def resource_of(self, request: Request) -> str:
        name = str(request.path_params["resource"])
        if name not in self.known:
            raise NotFoundError(f"there is no configuration resource {name!r}")
        return name

    @staticmethod
    def key_of(request: Request) -> str:
        key = request.query_params.get("key", "")
        if not key or len(key) > KEY_MAX:
            raise ValidationError("key", f"give the key of the record: ?key=... (1 to {KEY_MAX} characters)")
        return key

    # ------------------------------------------------------------------ handlers
    async def index(self, request: Request, caller: Caller) -> Response:
        return await self.frame(request, caller, "index")

    async def config_list(self, request: Request, caller: Caller) -> Response:
        name = self.resource_of(request)
        return await self.frame(request, caller, "list", resource=name, title_key=f"admin.resource.{name}")

    async def config_new(self, request: Request, caller: Caller) -> Response:
        name = self.resource_of(request)
        return await self.frame(request, caller, "new", resource=name, title_key=f"admin.resource.{name}")

    async def config_edit(self, request: Request, caller: Caller) -> Response:
        name = self.resource_of(request)
        key = self.key_of(request)
        return await self.frame(request, caller, "edit", resource=name, key=key, title_key=f"admin.resource.{name}")

    def account_views(self, resource: str, title_key: str) -> tuple[PageHandler, PageHandler, PageHandler]:
        """List, new and edit of users or API keys."""

        async def listing(request: Request, caller: Caller) -> Response:
            return await self.frame(request, caller, "list", resource=resource, title_key=title_key)

        async def new(request: Request, caller: Caller) -> Response:
            return await self.frame(request, caller, "new", resource=resource, title_key=title_key)

        async def edit(request: Request, caller: Caller) -> Response:
            key = self.key_of(request)
            return await self.frame(request, caller, "edit", resource=resource, key=key, title_key=title_key)

        return listing, new, edit

    async def media(self, request: Request, caller: Caller) -> Response:
        return await self.frame(request, caller, "media", title_key="admin.media")

    async def audit(self, request: Request, caller: Caller) -> Response:
        return await self.frame(request, caller, "audit", title_key="admin.audit")


def register(pages: Pages) -> None:
    """Add the admin pages and their navigation entry to the page framework."""
    admin = _AdminPages(pages)
    pages.nav("nav.admin", "/admin", scopes=READ, order=10)
    pages.page("/admin", scopes=READ)(admin.index)
    pages.page("/admin/config/{resource}", scopes=READ)(admin.config_list)
    pages.page("/admin/config/{resource}/new", scopes=WRITE)(admin.config_new)
    pages.page("/admin/config/{resource}/edit", scopes=READ)(admin.config_edit)
    for resource, path, title_key in (
        ("users", "/admin/users", "admin.users"),
        ("api_keys", "/admin/api-keys", "admin.api_keys"),
    ):
        listing, new, edit = admin.account_views(resource, title_key)
        pages.page(path, scopes=ACCOUNTS)(listing)
        pages.page(path + "/new", scopes=ACCOUNTS)(new)
        pages.page(path + "/edit", scopes=ACCOUNTS)(edit)
    pages.page("/admin/media", scopes=READ)(admin.media)
    pages.page("/admin/audit", scopes=ACCOUNTS)(admin.audit)
