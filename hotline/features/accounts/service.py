"""Accounts: who is calling an interface, and the audit log of what they changed.

`AccountService` turns credentials into a `Principal` (domain/permissions.py) for every interface:
- a web session cookie (random token; the table keeps its SHA-256; sliding expiry `session_ttl`);
- an API key ``hlk_<prefix>_<secret>`` (looked up by prefix, compared by SHA-256 in constant time);
- a user name and password (login form, HTTP Basic for XML-RPC clients such as `xmlrpc.client`).

Invariants:
- wrong credentials never say which part was wrong, and an unknown user costs the same argon2 check as a
  known one (no user enumeration by timing);
- failed logins are counted per user name and per source address over `login_window`; past the limit the
  attempt is refused with `RateLimitedError` before the password is even checked (throttling also stops
  a guesser who found the right password meanwhile);
- a verified credential is cached for `credential_cache_ttl` seconds so a busy client does not pay argon2
  per request; a change through this instance (password, role, key revoked, logout) drops the cache at
  once, another instance's change is seen within the TTL;
- `audit()` masks every secret-looking field before it is written.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hotline.db.repositories.accounts import AccountRepository, ApiKey, User
from hotline.domain.permissions import Principal
from hotline.errors import AuthenticationError, RateLimitedError, ValidationError
from hotline.passwords import hash_secret, verify_secret

log = logging.getLogger(__name__)

SECRET_FIELDS = frozenset(
    {
        "password",
        "password_hash",
        "pin",
        "pin_hash",
        "secret",
        "key",
        "key_hash",
        "token",
        "digest_md5",
        "digest_sha256",
    }
)
API_KEY_PREFIX = "hlk_"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def mask_secrets(value: object) -> object:
    """A copy of `value` with every secret-looking key's value replaced by "***"."""
    if isinstance(value, Mapping):
        return {k: ("***" if k in SECRET_FIELDS and v not in (None, "") else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


class LoginThrottle:
    """Failed attempts per key (a user name, an address) within a sliding window."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self._window:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def retry_after(self, key: str) -> float:
        """0 when an attempt may be made now, else the seconds until the oldest failure leaves the window."""
        now = self._clock()
        q = self._prune(key, now)
        if q is None or len(q) < self._limit:
            return 0.0
        return max(0.0, q[0] + self._window - now)

    def failed(self, key: str) -> None:
        now = self._clock()
        q = self._prune(key, now)
        if q is None:
            q = self._failures[key] = deque()
        q.append(now)
        if len(q) > self._limit * 2:  # bounded: older failures add nothing once the limit is reached
            q.popleft()
        if len(self._failures) > 100_000:  # a flood of distinct names must not grow memory without end
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    principal: Principal
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    info: SessionInfo
    user: User


class AccountService:
    def __init__(
        self,
        repo: AccountRepository,
        *,
        session_ttl: float,
        login_max_failures: int,
        login_max_failures_per_address: int,
        login_window: float,
        credential_cache_ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self._session_ttl = timedelta(seconds=session_ttl)
        self._by_user = LoginThrottle(login_max_failures, login_window, clock)
        self._by_address = LoginThrottle(login_max_failures_per_address, login_window, clock)
        self._cache_ttl = credential_cache_ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, object]] = {}
        self._dummy_hash: str | None = None
        self.logins_ok = 0
        self.logins_failed = 0
        self.logins_throttled = 0

    # ------------------------------------------------------------------ cache
    def _cached(self, key: str) -> object | None:
        hit = self._cache.get(key)
        if hit is None:
            return None
        if hit[0] < self._clock():
            self._cache.pop(key, None)
            return None
        return hit[1]

    def _remember(self, key: str, value: object) -> None:
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (self._clock() + self._cache_ttl, value)

    def forget_all(self) -> None:
        """Drop every cached credential (after a change to users or keys)."""
        self._cache.clear()

    # ------------------------------------------------------------------ passwords
    async def _check_password(self, username: str, password: str, address: str) -> User:
        for throttle, key in ((self._by_user, "u:" + username.lower()), (self._by_address, "a:" + address)):
            wait = throttle.retry_after(key)
            if wait > 0:
                self.logins_throttled += 1
                log.warning("login throttled for %s (%s)", username, address)
                raise RateLimitedError(f"too many failed logins; try again in {int(wait) + 1} s", wait)
        found = await asyncio.to_thread(self.repo.user_with_hash, username) if username else None
        if found is None:
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(hash_secret, secrets.token_hex(16))
            await asyncio.to_thread(verify_secret, self._dummy_hash, password)
            ok = False
            user = None
        else:
            user, hashed = found
            ok = await asyncio.to_thread(verify_secret, hashed, password) and user.enabled
        if not ok or user is None:
            self.logins_failed += 1
            self._by_user.failed("u:" + username.lower())
            self._by_address.failed("a:" + address)
            log.warning("failed login for %r from %s", username[:64], address)
            raise AuthenticationError("wrong user name or password")
        self._by_user.succeeded("u:" + username.lower())
        self.logins_ok += 1
        return user

    @staticmethod
    def _principal(user: User, session_id: str | None = None) -> Principal:
        return Principal.for_user(
            user_id=user.id,
            username=user.username,
            role=user.role,
            agent_number=user.agent_number,
            language=user.language,
            session_id=session_id,
        )

    async def login(self, username: str, password: str, *, address: str, user_agent: str = "") -> NewSession:
        """Check the password and open a web session; AuthenticationError or RateLimitedError otherwise."""
        if not isinstance(username, str) or not isinstance(password, str) or len(username) > 64 or len(password) > 256:
            raise AuthenticationError("wrong user name or password")
        user = await self._check_password(username, password, address)
        token = secrets.token_urlsafe(32)
        session_hash = _sha256(token)
        csrf = secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        expires = now + self._session_ttl
        await asyncio.to_thread(
            self.repo.add_session,
            session_hash,
            user.id,
            csrf_token=csrf,
            now=now,
            expires_at=expires,
            source_ip=address,
            user_agent=user_agent,
        )
        info = SessionInfo(self._principal(user, session_hash), csrf, expires)
        self._remember("s:" + session_hash, info)
        return NewSession(token, info, user)

    async def password_principal(self, username: str, password: str, *, address: str) -> Principal:
        """HTTP Basic (XML-RPC clients): a verified user name and password -> Principal."""
        key = "p:" + _sha256(f"{username}\0{password}")
        hit = self._cached(key)
        if isinstance(hit, Principal):
            return hit
        if len(username) > 64 or len(password) > 256:
            raise AuthenticationError("wrong user name or password")
        principal = self._principal(await self._check_password(username, password, address))
        self._remember(key, principal)
        return principal

    # ------------------------------------------------------------------ sessions
    async def session(self, token: str) -> SessionInfo | None:
        if not token or len(token) > 128:
            return None
        session_hash = _sha256(token)
        hit = self._cached("s:" + session_hash)
        now = datetime.now(UTC)
        if isinstance(hit, SessionInfo) and hit.expires_at > now:
            return hit
        found = await asyncio.to_thread(self.repo.session, session_hash, now)
        if found is None:
            return None
        expires = now + self._session_ttl
        if (expires - found.expires_at).total_seconds() > 60:  # sliding expiry, written at most once a minute
            await asyncio.to_thread(self.repo.extend_session, session_hash, now, expires)
        else:
            expires = found.expires_at
        info = SessionInfo(self._principal(found.user, session_hash), found.csrf_token, expires)
        self._remember("s:" + session_hash, info)
        return info

    async def logout(self, token: str) -> None:
        session_hash = _sha256(token)
        self._cache.pop("s:" + session_hash, None)
        await asyncio.to_thread(self.repo.delete_session, session_hash)

    # ------------------------------------------------------------------ API keys
    async def create_api_key(
        self, name: str, scopes: object, *, created_by: Principal, expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new key; the plain key is returned once and never stored.  Scopes are capped by the creator's."""
        from hotline.domain.permissions import check_scopes

        wanted = check_scopes(scopes)
        beyond = sorted(wanted - created_by.scopes)
        if beyond:
            raise ValidationError("scopes", f"you cannot grant scopes you do not have: {', '.join(beyond)}")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise ValidationError("expires_at", "must be in the future")
        prefix = secrets.token_hex(6)
        key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        row = await asyncio.to_thread(
            self.repo.add_api_key,
            name,
            prefix=prefix,
            key_hash=_sha256(key),
            scopes=sorted(wanted),
            created_by=created_by.actor,
            expires_at=expires_at,
        )
        return row, key

    async def api_key_principal(self, key: str) -> Principal | None:
        if not key.startswith(API_KEY_PREFIX) or len(key) > 128:
            return None
        key_hash = _sha256(key)
        hit = self._cached("k:" + key_hash)
        if isinstance(hit, Principal):
            return hit
        parts = key[len(API_KEY_PREFIX) :].split("_", 1)
        if len(parts) != 2:
            return None
        found = await asyncio.to_thread(self.repo.api_key_by_prefix, parts[0])
        if found is None:
            return None
        row, stored = found
        now = datetime.now(UTC)
        if not hmac.compare_digest(stored, key_hash) or not row.enabled:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            await asyncio.to_thread(self.repo.touch_api_key, row.id, now)
        principal = Principal(kind="api_key", name=row.name, scopes=row.scopes)
        self._remember("k:" + key_hash, principal)
        return principal

    # ------------------------------------------------------------------ housekeeping
    async def maintenance_loop(self, audit_retention_days: int, interval: float = 3600.0) -> None:
        """Hourly: delete expired sessions and audit entries past their retention (0 days = keep forever)."""
        while True:
            try:
                now = datetime.now(UTC)
                await asyncio.to_thread(self.repo.purge_sessions, now)
                if audit_retention_days > 0:
                    await asyncio.to_thread(self.repo.purge_audit, now - timedelta(days=audit_retention_days))
            except Exception as exc:  # a database hiccup must not end housekeeping
                log.warning("accounts housekeeping failed: %s", exc)
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ audit
    async def audit(
        self,
        principal: Principal,
        action: str,
        resource: str,
        key: str = "",
        *,
        before: object = None,
        after: object = None,
        address: str = "",
        interface: str = "",
    ) -> None:
        await asyncio.to_thread(
            self.repo.audit,
            at=datetime.now(UTC),
            actor=principal.actor,
            actor_kind=principal.kind,
            action=action,
            resource=resource,
            resource_key=key,
            before=mask_secrets(before),
            after=mask_secrets(after),
            source_ip=address,
            interface=interface,
        )


def parse_basic(header: str) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` -> (user, password); None when malformed."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value or len(value) > 1024:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
