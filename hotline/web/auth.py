"""The HTTP edge of authentication: credentials in a request -> `Principal`, and the CSRF rule.

Where credentials come from, in this order:
1. ``Authorization: Bearer hlk_...`` or ``X-API-Key: hlk_...``: an API key (other systems);
2. ``Authorization: Basic ...``: a user name and password (XML-RPC clients such as `xmlrpc.client`);
3. the ``hotline_session`` cookie: a browser session.

CSRF: a request authenticated by the cookie that changes something (any method but GET, HEAD, OPTIONS)
must carry the session's CSRF token in the ``X-CSRF-Token`` header (the pages' script sends it) or in a
``csrf_token`` form field (plain HTML forms).  Keys and Basic credentials are not sent by browsers on
their own, so they need no token.  The cookie is HttpOnly, SameSite=Lax and Secure when the public
address is https (setting `session_cookie_secure`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from hotline.domain.permissions import Principal
from hotline.features.accounts import AccountService, SessionInfo, parse_basic
from hotline.settings import Settings

SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request and how: the principal, its session (cookie logins only) and its address."""

    principal: Principal
    session: SessionInfo | None
    address: str


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""


class Authenticator:
    def __init__(self, accounts: AccountService, settings: Settings) -> None:
        self.accounts = accounts
        self._secure = settings.session_cookie_secure == "always" or (
            settings.session_cookie_secure == "auto" and settings.effective_public_url.startswith("https://")
        )
        self._ttl = int(settings.session_ttl)

    async def caller(self, conn: HTTPConnection) -> Caller | None:
        """The authenticated caller, or None (no or wrong credentials).  Raises RateLimitedError when a
        Basic login is throttled, AuthenticationError for a wrong Basic password."""
        address = client_address(conn)
        headers = conn.headers
        authorization = headers.get("authorization", "")
        api_key = headers.get("x-api-key", "")
        if authorization[:7].lower() == "bearer ":
            api_key = authorization[7:].strip()
        if api_key:
            principal = await self.accounts.api_key_principal(api_key)
            return None if principal is None else Caller(principal, None, address)
        if authorization[:6].lower() == "basic ":
            pair = parse_basic(authorization)
            if pair is None:
                return None
            principal = await self.accounts.password_principal(pair[0], pair[1], address=address)
            return Caller(principal, None, address)
        token = conn.cookies.get(SESSION_COOKIE, "")
        if token:
            info = await self.accounts.session(token)
            if info is not None:
                return Caller(info.principal, info, address)
        return None

    @staticmethod
    async def csrf_ok(request: Request, caller: Caller) -> bool:
        """True unless the request rides on the session cookie, changes something and lacks the token."""
        if caller.session is None or request.method in SAFE_METHODS:
            return True
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else ""
        return bool(sent) and hmac.compare_digest(sent, caller.session.csrf_token)

    def set_session_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=self._ttl,
            httponly=True,
            secure=self._secure,
            samesite="lax",
            path="/",
        )

    def clear_session_cookie(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=self._secure, samesite="lax")
