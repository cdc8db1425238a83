"""Hotline's exception tree -> HTTP status and JSON body, in one place (style.md principle 10).

Every error body has the same shape::

    {"error": {"code": "validation_error", "message": "name: must be ...", "field": "name"}}

`field` is present for validation errors (our own and FastAPI's request validation, as a dotted path such
as ``body.timeout``).  An unexpected exception is logged with its traceback and answered 500 with a
generic message: a traceback never reaches a client.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from hotline.errors import (
    ActionTimeoutError,
    AsteriskError,
    AuthenticationError,
    ConflictError,
    DatabaseUnavailableError,
    HotlineError,
    NodeUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    ValidationError,
)
from hotline.web.error_text import localize, preferred_language

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[HotlineError], int, str], ...] = (
    (ValidationError, 422, "validation_error"),
    (AuthenticationError, 401, "not_authenticated"),
    (RateLimitedError, 429, "rate_limited"),
    (PermissionDeniedError, 403, "permission_denied"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (DatabaseUnavailableError, 503, "database_unavailable"),
    (NodeUnavailableError, 503, "node_unavailable"),
    (ActionTimeoutError, 504, "node_timeout"),
    (AsteriskError, 502, "asterisk_error"),
    (ProtocolError, 400, "bad_request"),
)


def status_of(exc: HotlineError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return status, code
    # a feature's own HotlineError subclass not listed above: the client asked for something that cannot be done
    return 400, "bad_request"


def error_body(code: str, message: str, field: str | None = None, **extra: object) -> dict[str, object]:
    err: dict[str, object] = {"code": code, "message": message}
    if field is not None:
        err["field"] = field
    err.update(extra)
    return {"error": err}


def request_language(request: Request) -> str | None:
    """The language an error message is wanted in: the request's Accept-Language (the pages send the
    user's language); None for English."""
    return preferred_language(request.headers.get("accept-language"))


def error_response(exc: HotlineError, lang: str | None = None) -> JSONResponse:
    status, code = status_of(exc)
    headers: dict[str, str] = {}
    body = error_body(code, localize(str(exc), lang), exc.field if isinstance(exc, ValidationError) else None)
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(int(exc.retry_after) + 1)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="hotline"'
    return JSONResponse(body, status_code=status, headers=headers)


async def hotline_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HotlineError)
    return error_response(exc, request_language(request))


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    message = localize("internal error; see Hotline's log", request_language(request))
    return JSONResponse(error_body("internal_error", message), status_code=500)
