"""The REST API (FastAPI) with its OpenAPI document at /openapi.json and interactive docs at /api/docs.

Errors have one shape everywhere (hotline/web/errors.py); a request that fails validation names the
field, e.g. ``{"error": {"code": "validation_error", "field": "body.timeout", "message": ...}}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotline.errors import HotlineError
from hotline.web.api import accounts, operations
from hotline.web.api.config import add_config_routes
from hotline.web.api.deps import need
from hotline.web.auth import Caller
from hotline.web.context import WebServices
from hotline.web.error_text import localize
from hotline.web.errors import error_body, hotline_error_handler, request_language, unexpected_error_handler


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    lang = request_language(request)
    details = [{"field": _field(e.get("loc", ())), "message": localize(str(e.get("msg", "")), lang)} for e in errors]
    first = details[0] if details else {"field": "", "message": localize("invalid request", lang)}
    return JSONResponse(
        error_body("validation_error", f"{first['field']}: {first['message']}", first["field"], details=details),
        status_code=422,
    )


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated"}.get(exc.status_code, "http_error")
    message = localize(str(exc.detail), request_language(request))
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None))


def build_api(services: WebServices, resource_names: list[str]) -> FastAPI:
    api = FastAPI(
        title="Hotline",
        version="1",
        summary="Call-center platform API: configuration, agents, calls, queues, statistics, recordings.",
        openapi_url=None,  # served below, behind authentication like everything else
        docs_url=None,
        redoc_url=None,
    )
    api.state.services = services
    api.add_exception_handler(HotlineError, hotline_error_handler)
    api.add_exception_handler(RequestValidationError, _validation_handler)
    api.add_exception_handler(StarletteHTTPException, _http_handler)
    api.add_exception_handler(Exception, unexpected_error_handler)
    api.include_router(accounts.router)
    api.include_router(operations.router)
    add_config_routes(api, resource_names)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi_document(caller: Annotated[Caller, Depends(need())]) -> JSONResponse:
        return JSONResponse(api.openapi())

    @api.get("/api/docs", include_in_schema=False)
    async def api_docs(caller: Annotated[Caller, Depends(need())]) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Hotline API")

    return api
