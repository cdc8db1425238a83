"""Hotline's web layer: REST (+ OpenAPI), XML-RPC, the event stream, the pages and the metrics.

`build_web(services, ...)` assembles one Starlette application from the parts; hotline/app.py calls it
with the collaborators (`WebServices`).  Layout:

- api/            REST routers (FastAPI), OpenAPI at /openapi.json, docs at /api/docs
- rpc.py          XML-RPC dispatcher (introspection, multicall, faults); rpc_methods.py its catalogue
- ws.py           the event stream (/ws/events)
- pages/          server-rendered pages: login, admin, monitor, wallboard, agent page (templates, static)
- metrics.py      Prometheus exposition (/metrics)
- auth.py         credentials -> Principal, CSRF; errors.py exceptions -> HTTP
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount

from hotline.web.api import build_api
from hotline.web.context import WebServices
from hotline.web.error_text import localize
from hotline.web.errors import error_body, request_language
from hotline.web.metrics import metrics_routes
from hotline.web.pages import page_routes
from hotline.web.rpc_methods import rpc_routes
from hotline.web.ws import ws_routes


def build_web(services: WebServices, *, health: BaseRoute) -> Starlette:
    resource_names = [r["name"] for r in services.catalog.resources()]
    api = build_api(services, resource_names)
    routes: list[BaseRoute] = [
        health,
        *rpc_routes(services),
        *ws_routes(services),
        *metrics_routes(services),
        *page_routes(services),
        Mount("/", app=api),  # last: the REST API and /openapi.json
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


async def _http_error(request: Request, exc: Exception) -> Response:
    """What no route matched (e.g. a path with a newline): the same JSON error shape as the API."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = localize(str(exc.detail), request_language(request))
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)
