"""Who may do what: roles, scopes and the principal every interface hands to the services.

One table decides it.  A user has a role; a role is a fixed set of scopes.  An API key carries the scopes it
was given (at most an admin's).  Every REST route, XML-RPC function, WebSocket subscription and page names
the scope it needs; nothing else grants access.

- ``admin``: everything, including users, API keys and the audit log.
- ``supervisor``: reads all configuration and history, controls agents and calls (pause, log off, hang up,
  transfer, listen / whisper / barge), sees every queue and statistic, the live monitor and the wallboard.
- ``agent``: only what concerns that agent (scope ``self``): its own state, calls, screen pops, statistics
  and click-to-call from its own phone.  An agent user is bound to one agent number.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from hotline.errors import PermissionDeniedError, ValidationError

#: scope -> what it allows (shown in docs and in the API key form)
SCOPES: Final[dict[str, str]] = {
    "config:read": "read configuration (phones, agents, queues, routes, IVR, limits, media, nodes, webhooks)",
    "config:write": "change configuration",
    "users:admin": "manage users and API keys, read the audit log",
    "agents:read": "read every agent's state and history",
    "agents:control": "log agents in and off, pause and unpause them",
    "calls:read": "read calls in progress, call history and the trace of any call",
    "calls:control": "originate, transfer, hold, hang up and redirect calls",
    "calls:spy": "listen to, whisper to and barge into calls",
    "recordings:read": "list and download recordings",
    "stats:read": "queue and agent statistics, wallboard and live monitor data",
    "events:read": "the event stream of all calls, queues and agents",
    "security": "security actions: block addresses, log agents off phones",
    "self": "an agent's own state, calls, screen pops, statistics and click-to-call",
}

ROLES: Final[dict[str, frozenset[str]]] = {
    "admin": frozenset(SCOPES),
    "supervisor": frozenset(
        {
            "config:read",
            "agents:read",
            "agents:control",
            "calls:read",
            "calls:control",
            "calls:spy",
            "recordings:read",
            "stats:read",
            "events:read",
            "security",
        }
    ),
    "agent": frozenset({"self"}),
}

LANGUAGES: Final[tuple[str, ...]] = ("en", "ru")


def check_role(role: object) -> str:
    if not isinstance(role, str) or role not in ROLES:
        raise ValidationError("role", f"must be one of {', '.join(ROLES)} (got {role!r})")
    return role


def check_scopes(scopes: object) -> frozenset[str]:
    """A list of scope names (or one space-separated string) -> frozenset; ValidationError names the bad one."""
    if isinstance(scopes, str):
        items = scopes.split()
    elif isinstance(scopes, list | tuple | set | frozenset):
        items = list(scopes)
    else:
        raise ValidationError("scopes", "must be a list of scope names")
    out = set()
    for item in items:
        if not isinstance(item, str) or item not in SCOPES:
            raise ValidationError("scopes", f"unknown scope {item!r}; known: {', '.join(SCOPES)}")
        out.add(item)
    if not out:
        raise ValidationError("scopes", "give at least one scope")
    return frozenset(out)


def check_language(language: object) -> str:
    if not isinstance(language, str) or language not in LANGUAGES:
        raise ValidationError("language", f"must be one of {', '.join(LANGUAGES)} (got {language!r})")
    return language


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of an interface: a user (by role) or an API key (by its scopes)."""

    kind: str  # "user" | "api_key" | "node"
    name: str
    scopes: frozenset[str]
    role: str = ""
    user_id: int | None = None
    agent_number: str | None = None
    language: str = "en"
    session_id: str | None = field(default=None, repr=False)

    @classmethod
    def for_user(
        cls,
        *,
        user_id: int,
        username: str,
        role: str,
        agent_number: str | None,
        language: str,
        session_id: str | None = None,
    ) -> Principal:
        return cls(
            kind="user",
            name=username,
            scopes=ROLES[role],
            role=role,
            user_id=user_id,
            agent_number=agent_number,
            language=language,
            session_id=session_id,
        )

    @property
    def actor(self) -> str:
        """How the audit log names this principal: ``user:alice`` or ``key:crm-sync``."""
        return f"{'key' if self.kind == 'api_key' else self.kind}:{self.name}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDeniedError(f"{self.actor} lacks the permission {scope!r}")

    def may_see_agent(self, number: str) -> bool:
        """Agents' data: any agent with agents:read, else only one's own (scope self)."""
        return "agents:read" in self.scopes or ("self" in self.scopes and self.agent_number == number)

    def may_control_agent(self, number: str) -> bool:
        return "agents:control" in self.scopes or ("self" in self.scopes and self.agent_number == number)

    def require_agent(self, number: str, *, control: bool = False) -> None:
        ok = self.may_control_agent(number) if control else self.may_see_agent(number)
        if not ok:
            raise PermissionDeniedError(f"{self.actor} may not {'control' if control else 'see'} agent {number}")
