"""Roles and scopes: the one table that decides who may do what."""

from __future__ import annotations

import pytest

from hotline.domain.permissions import ROLES, SCOPES, Principal, check_scopes
from hotline.errors import PermissionDeniedError, ValidationError


def _user(role: str, agent: str | None = None) -> Principal:
    return Principal.for_user(user_id=1, username="u", role=role, agent_number=agent, language="en")


def test_admin_has_every_scope_and_supervisor_no_user_admin() -> None:
    assert ROLES["admin"] == frozenset(SCOPES)
    sup = _user("supervisor")
    assert sup.has_scope("calls:spy") and sup.has_scope("agents:control")
    assert not sup.has_scope("users:admin") and not sup.has_scope("config:write")
    with pytest.raises(PermissionDeniedError, match="config:write"):
        sup.require("config:write")


def test_agent_sees_and_controls_only_itself() -> None:
    agent = _user("agent", "7001")
    assert agent.may_see_agent("7001") and agent.may_control_agent("7001")
    assert not agent.may_see_agent("7002") and not agent.may_control_agent("7002")
    with pytest.raises(PermissionDeniedError, match="7002"):
        agent.require_agent("7002", control=True)
    assert _user("supervisor").may_control_agent("7002")


def test_api_key_principal_names_itself_in_the_audit_log() -> None:
    key = Principal(kind="api_key", name="crm-sync", scopes=frozenset({"calls:read"}))
    assert key.actor == "key:crm-sync"
    assert _user("admin").actor == "user:u"


def test_check_scopes_names_the_unknown_scope() -> None:
    assert check_scopes("calls:read stats:read") == {"calls:read", "stats:read"}
    with pytest.raises(ValidationError, match="'calls:write'"):
        check_scopes(["calls:read", "calls:write"])
    with pytest.raises(ValidationError, match="at least one"):
        check_scopes([])
