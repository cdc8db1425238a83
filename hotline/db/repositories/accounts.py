"""Users, API keys, web sessions and the audit log (issue 4).

Invariants:
- passwords are stored only as argon2id hashes (hashed before the transaction opens: argon2 takes tens of
  milliseconds and locks should not wait on it); API keys and session tokens are random 256-bit values of
  which only the SHA-256 is stored, so a leaked table signs nobody in;
- a user row never leaves this module with its hash (`User` has no such field);
- the last enabled admin can be neither deleted, disabled nor demoted (ConflictError): nobody could
  manage Hotline afterwards;
- the audit log is append-only here: no method updates or deletes a row except `purge_audit` (retention).
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from hotline.db import tables as t
from hotline.db.engine import read_transaction, write_transaction
from hotline.db.repositories import _execute_insert, _from_db, _text, _to_db, _token
from hotline.domain.permissions import check_language, check_role, check_scopes
from hotline.errors import ConflictError, NotFoundError, ValidationError
from hotline.passwords import hash_secret

USERNAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"
PASSWORD_MIN = 10
PASSWORD_MAX = 256


def validate_user_password(password: object) -> str:
    if not isinstance(password, str):
        raise ValidationError("password", "must be a string")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValidationError("password", f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")
    if password.strip() == "":
        raise ValidationError("password", "must not be blank")
    return password


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    language: str
    agent_number: str | None
    enabled: bool
    last_login_at: datetime | None
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "language": self.language,
            "agent": self.agent_number,
            "enabled": self.enabled,
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    enabled: bool
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "prefix": self.prefix,
            "scopes": sorted(self.scopes),
            "enabled": self.enabled,
            "created_by": self.created_by,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class WebSession:
    id: str
    user: User
    csrf_token: str
    expires_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    resource: str
    resource_key: str
    before: object
    after: object
    source_ip: str
    interface: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "action": self.action,
            "resource": self.resource,
            "key": self.resource_key,
            "before": self.before,
            "after": self.after,
            "source_ip": self.source_ip,
            "interface": self.interface,
        }


_USER_SELECT = sa.select(t.users, t.agents.c.number.label("agent_number")).outerjoin(
    t.agents, t.agents.c.id == t.users.c.agent_id
)


def _user(row: Row[Any]) -> User:
    m = row._mapping
    return User(
        id=m["id"],
        username=m["username"],
        display_name=m["display_name"],
        role=m["role"],
        language=m["language"],
        agent_number=m["agent_number"],
        enabled=bool(m["enabled"]),
        last_login_at=_from_db(m["last_login_at"]),
        created_at=_from_db(m["created_at"]),  # type: ignore[arg-type]
    )


def _api_key(row: Row[Any]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m["id"],
        name=m["name"],
        prefix=m["prefix"],
        scopes=frozenset(m["scopes"].split()),
        enabled=bool(m["enabled"]),
        created_by=m["created_by"],
        expires_at=_from_db(m["expires_at"]),
        last_used_at=_from_db(m["last_used_at"]),
        created_at=_from_db(m["created_at"]),  # type: ignore[arg-type]
    )


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _username(value: object) -> str:
    return _token("username", value, USERNAME_PATTERN, "1 to 64 letters, digits, '.', '_', '@' or '-'")


class AccountRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ------------------------------------------------------------------ users
    def add_user(
        self,
        username: str,
        password: str,
        *,
        role: str,
        display_name: str = "",
        language: str = "en",
        agent: str | None = None,
    ) -> User:
        _username(username)
        validate_user_password(password)
        check_role(role)
        _text("display_name", display_name, 128)
        check_language(language)
        if role == "agent" and not agent:
            raise ValidationError("agent", "an agent user needs the agent number it acts for")
        password_hash = hash_secret(password)
        with write_transaction(self._engine) as conn:
            agent_id = self._agent_id(conn, agent)
            _execute_insert(
                conn,
                sa.insert(t.users).values(
                    username=username,
                    display_name=display_name,
                    role=role,
                    password_hash=password_hash,
                    language=language,
                    agent_id=agent_id,
                ),
                f"user {username!r} already exists",
            )
            return self._get_user(conn, username)

    def update_user(self, username: str, **fields: object) -> tuple[User, User]:
        """Change role, display_name, language, agent, enabled or password; returns (before, after)."""
        allowed = {"role", "display_name", "language", "agent", "enabled", "password"}
        for name in fields:
            if name not in allowed:
                raise ValidationError(name, f"unknown field; known: {', '.join(sorted(allowed))}")
        values: dict[str, object] = {}
        if "role" in fields:
            values["role"] = check_role(fields["role"])
        if "display_name" in fields:
            values["display_name"] = _text("display_name", fields["display_name"], 128)
        if "language" in fields:
            values["language"] = check_language(fields["language"])
        if "enabled" in fields:
            if not isinstance(fields["enabled"], bool):
                raise ValidationError("enabled", "must be true or false")
            values["enabled"] = fields["enabled"]
        if "password" in fields:
            values["password_hash"] = hash_secret(validate_user_password(fields["password"]))
        with write_transaction(self._engine) as conn:
            before = self._get_user(conn, username)
            if "agent" in fields:
                agent = fields["agent"]
                if agent is not None and not isinstance(agent, str):
                    raise ValidationError("agent", "must be an agent number or null")
                values["agent_id"] = self._agent_id(conn, agent or None)
            role = values.get("role", before.role)
            has_agent = values["agent_id"] is not None if "agent_id" in values else before.agent_number is not None
            if role == "agent" and not has_agent:
                raise ValidationError("agent", "an agent user needs the agent number it acts for")
            if before.role == "admin" and (role != "admin" or values.get("enabled") is False):
                self._refuse_last_admin(conn, before.id)
            if values:
                conn.execute(sa.update(t.users).where(t.users.c.id == before.id).values(**values))
            if "password_hash" in values or values.get("enabled") is False or "role" in values:
                # a new password, a disabled account or another role ends the user's sessions
                conn.execute(sa.delete(t.web_sessions).where(t.web_sessions.c.user_id == before.id))
            return before, self._get_user(conn, username)

    def delete_user(self, username: str) -> User:
        with write_transaction(self._engine) as conn:
            before = self._get_user(conn, username)
            if before.role == "admin":
                self._refuse_last_admin(conn, before.id)
            conn.execute(sa.delete(t.web_sessions).where(t.web_sessions.c.user_id == before.id))
            conn.execute(sa.delete(t.users).where(t.users.c.id == before.id))
            return before

    def get_user(self, username: str) -> User:
        with read_transaction(self._engine) as conn:
            return self._get_user(conn, username)

    def user_with_hash(self, username: str) -> tuple[User, str] | None:
        """For the login check only: the user and its password hash, None when unknown."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(_USER_SELECT.where(t.users.c.username == username)).first()
            return None if row is None else (_user(row), row._mapping["password_hash"])

    def list_users(self, *, search: str | None = None, limit: int = 100, offset: int = 0) -> tuple[list[User], int]:
        query = _USER_SELECT
        count = sa.select(sa.func.count()).select_from(t.users)
        if search:
            like = f"%{search}%"
            cond = sa.or_(t.users.c.username.like(like), t.users.c.display_name.like(like))
            query = query.where(cond)
            count = count.where(cond)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query.order_by(t.users.c.username).limit(limit).offset(offset))
            return [_user(r) for r in rows], int(conn.execute(count).scalar_one())

    def count_users(self) -> int:
        with read_transaction(self._engine) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.users)).scalar_one())

    def record_login(self, user_id: int, at: datetime) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(sa.update(t.users).where(t.users.c.id == user_id).values(last_login_at=_to_db(at)))

    def _get_user(self, conn: Connection, username: str) -> User:
        row = conn.execute(_USER_SELECT.where(t.users.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"user {username!r} does not exist")
        return _user(row)

    @staticmethod
    def _agent_id(conn: Connection, agent: str | None) -> int | None:
        if agent is None:
            return None
        found = conn.execute(sa.select(t.agents.c.id).where(t.agents.c.number == agent)).scalar()
        if found is None:
            raise ValidationError("agent", f"agent {agent!r} does not exist")
        return int(found)

    @staticmethod
    def _refuse_last_admin(conn: Connection, user_id: int) -> None:
        others = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.users)
            .where(t.users.c.role == "admin", t.users.c.enabled == sa.true(), t.users.c.id != user_id)
        ).scalar_one()
        if not others:
            raise ConflictError("this is the last enabled admin: create another admin first")

    # ------------------------------------------------------------------ API keys
    def add_api_key(
        self,
        name: str,
        *,
        prefix: str,
        key_hash: str,
        scopes: object,
        created_by: str,
        expires_at: datetime | None = None,
    ) -> ApiKey:
        _token("name", name, r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", "1 to 64 letters, digits, '.', '_' or '-'")
        scope_set = check_scopes(scopes)
        with write_transaction(self._engine) as conn:
            _execute_insert(
                conn,
                sa.insert(t.api_keys).values(
                    name=name,
                    prefix=prefix,
                    key_hash=key_hash,
                    scopes=" ".join(sorted(scope_set)),
                    created_by=created_by[:64],
                    expires_at=_to_db(expires_at),
                ),
                f"API key {name!r} already exists",
            )
            return _api_key(conn.execute(sa.select(t.api_keys).where(t.api_keys.c.name == name)).one())

    def api_key_by_prefix(self, prefix: str) -> tuple[ApiKey, str] | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(t.api_keys).where(t.api_keys.c.prefix == prefix)).first()
            return None if row is None else (_api_key(row), row._mapping["key_hash"])

    def list_api_keys(self) -> builtins.list[ApiKey]:
        with read_transaction(self._engine) as conn:
            return [_api_key(r) for r in conn.execute(sa.select(t.api_keys).order_by(t.api_keys.c.name))]

    def get_api_key(self, name: str) -> ApiKey:
        with read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(t.api_keys).where(t.api_keys.c.name == name)).first()
            if row is None:
                raise NotFoundError(f"API key {name!r} does not exist")
            return _api_key(row)

    def set_api_key_enabled(self, name: str, enabled: bool) -> tuple[ApiKey, ApiKey]:
        with write_transaction(self._engine) as conn:
            row = conn.execute(sa.select(t.api_keys).where(t.api_keys.c.name == name)).first()
            if row is None:
                raise NotFoundError(f"API key {name!r} does not exist")
            conn.execute(sa.update(t.api_keys).where(t.api_keys.c.name == name).values(enabled=enabled))
            after = conn.execute(sa.select(t.api_keys).where(t.api_keys.c.name == name)).one()
            return _api_key(row), _api_key(after)

    def delete_api_key(self, name: str) -> ApiKey:
        with write_transaction(self._engine) as conn:
            row = conn.execute(sa.select(t.api_keys).where(t.api_keys.c.name == name)).first()
            if row is None:
                raise NotFoundError(f"API key {name!r} does not exist")
            conn.execute(sa.delete(t.api_keys).where(t.api_keys.c.name == name))
            return _api_key(row)

    def touch_api_key(self, key_id: int, at: datetime) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(sa.update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=_to_db(at)))

    # ------------------------------------------------------------------ web sessions
    def add_session(
        self,
        session_hash: str,
        user_id: int,
        *,
        csrf_token: str,
        now: datetime,
        expires_at: datetime,
        source_ip: str,
        user_agent: str,
    ) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(t.web_sessions).values(
                    id=session_hash,
                    user_id=user_id,
                    csrf_token=csrf_token,
                    created_at=_to_db(now),
                    expires_at=_to_db(expires_at),
                    last_seen_at=_to_db(now),
                    source_ip=source_ip[:64],
                    user_agent=user_agent[:255],
                )
            )
            conn.execute(sa.update(t.users).where(t.users.c.id == user_id).values(last_login_at=_to_db(now)))

    def session(self, session_hash: str, now: datetime) -> WebSession | None:
        """The live session with this hash (None when unknown, expired or its user disabled)."""
        sub = _USER_SELECT.subquery()
        query = (
            sa.select(t.web_sessions.c.csrf_token, t.web_sessions.c.expires_at, t.web_sessions.c.last_seen_at, sub)
            .join(sub, sub.c.id == t.web_sessions.c.user_id)
            .where(t.web_sessions.c.id == session_hash)
        )
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        m = row._mapping
        expires = _from_db(m["expires_at"])
        assert expires is not None
        user = _user(row)
        if expires <= now or not user.enabled:
            return None
        last_seen = _from_db(m["last_seen_at"])
        assert last_seen is not None
        return WebSession(session_hash, user, m["csrf_token"], expires, last_seen)

    def extend_session(self, session_hash: str, now: datetime, expires_at: datetime) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.update(t.web_sessions)
                .where(t.web_sessions.c.id == session_hash)
                .values(last_seen_at=_to_db(now), expires_at=_to_db(expires_at))
            )

    def delete_session(self, session_hash: str) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(sa.delete(t.web_sessions).where(t.web_sessions.c.id == session_hash))

    def purge_sessions(self, now: datetime) -> int:
        with write_transaction(self._engine) as conn:
            return conn.execute(sa.delete(t.web_sessions).where(t.web_sessions.c.expires_at <= _to_db(now))).rowcount

    # ------------------------------------------------------------------ audit log
    def audit(
        self,
        *,
        at: datetime,
        actor: str,
        actor_kind: str,
        action: str,
        resource: str,
        resource_key: str,
        before: object,
        after: object,
        source_ip: str,
        interface: str,
    ) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(t.audit_log).values(
                    at=_to_db(at),
                    actor=actor[:128],
                    actor_kind=actor_kind[:16],
                    action=action[:32],
                    resource=resource[:32],
                    resource_key=resource_key[:255],
                    before=_json(before),
                    after=_json(after),
                    source_ip=source_ip[:64],
                    interface=interface[:16],
                )
            )

    def purge_audit(self, before: datetime) -> int:
        """Retention: delete audit entries older than `before`."""
        with write_transaction(self._engine) as conn:
            return conn.execute(sa.delete(t.audit_log).where(t.audit_log.c.at < _to_db(before))).rowcount

    def audit_entries(
        self,
        *,
        resource: str | None = None,
        key: str | None = None,
        actor: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[builtins.list[AuditEntry], int]:
        conds = []
        if resource:
            conds.append(t.audit_log.c.resource == resource)
        if key:
            conds.append(t.audit_log.c.resource_key == key)
        if actor:
            conds.append(t.audit_log.c.actor == actor)
        query = sa.select(t.audit_log).where(*conds).order_by(t.audit_log.c.id.desc()).limit(limit).offset(offset)
        count = sa.select(sa.func.count()).select_from(t.audit_log).where(*conds)
        with read_transaction(self._engine) as conn:
            out = []
            for row in conn.execute(query):
                m = row._mapping
                at = _from_db(m["at"])
                assert at is not None
                out.append(
                    AuditEntry(
                        id=m["id"],
                        at=at,
                        actor=m["actor"],
                        actor_kind=m["actor_kind"],
                        action=m["action"],
                        resource=m["resource"],
                        resource_key=m["resource_key"],
                        before=None if m["before"] is None else json.loads(m["before"]),
                        after=None if m["after"] is None else json.loads(m["after"]),
                        source_ip=m["source_ip"],
                        interface=m["interface"],
                    )
                )
            return out, int(conn.execute(count).scalar_one())
