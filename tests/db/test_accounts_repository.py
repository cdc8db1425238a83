"""Users, API keys, sessions and the audit log on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from hotline.db.repositories import ConfigRepository
from hotline.db.repositories.accounts import AccountRepository
from hotline.errors import ConflictError, NotFoundError, ValidationError
from hotline.passwords import verify_secret


@pytest.fixture
def accounts(engine: Engine) -> AccountRepository:
    return AccountRepository(engine)


def test_user_round_trip_keeps_only_a_hash(accounts: AccountRepository) -> None:
    user = accounts.add_user("alice", "correct horse battery", role="admin", display_name="Alice")
    assert user.role == "admin" and user.enabled and user.language == "en"
    found = accounts.user_with_hash("alice")
    assert found is not None
    assert found[1].startswith("$argon2id$") and verify_secret(found[1], "correct horse battery")
    assert "correct horse" not in str(user.as_dict())
    with pytest.raises(ConflictError, match="already exists"):
        accounts.add_user("alice", "another password", role="supervisor")


def test_validation_names_the_field(accounts: AccountRepository, config: ConfigRepository) -> None:
    with pytest.raises(ValidationError, match=r"^password"):
        accounts.add_user("bob", "short", role="admin")
    with pytest.raises(ValidationError, match=r"^role"):
        accounts.add_user("bob", "long enough pw", role="root")
    with pytest.raises(ValidationError, match=r"^agent"):
        accounts.add_user("bob", "long enough pw", role="agent")
    with pytest.raises(ValidationError, match=r"^agent.*'7001' does not exist"):
        accounts.add_user("bob", "long enough pw", role="agent", agent="7001")
    config.add_agent("7001", "Bob")
    bob = accounts.add_user("bob", "long enough pw", role="agent", agent="7001", language="ru")
    assert bob.agent_number == "7001" and bob.language == "ru"


def test_the_last_admin_cannot_be_removed_or_demoted(accounts: AccountRepository) -> None:
    accounts.add_user("root", "long enough pw", role="admin")
    with pytest.raises(ConflictError, match="last enabled admin"):
        accounts.delete_user("root")
    with pytest.raises(ConflictError, match="last enabled admin"):
        accounts.update_user("root", role="supervisor")
    with pytest.raises(ConflictError, match="last enabled admin"):
        accounts.update_user("root", enabled=False)
    accounts.add_user("root2", "long enough pw", role="admin")
    before, after = accounts.update_user("root", role="supervisor")
    assert (before.role, after.role) == ("admin", "supervisor")


def test_password_change_ends_sessions(accounts: AccountRepository) -> None:
    user = accounts.add_user("carol", "long enough pw", role="supervisor")
    now = datetime.now(UTC)
    accounts.add_session("a" * 64, user.id, csrf_token="c", now=now, expires_at=now + timedelta(hours=1),
                         source_ip="127.0.0.1", user_agent="t")  # fmt: skip
    assert accounts.session("a" * 64, now) is not None
    accounts.update_user("carol", password="a new long password")
    assert accounts.session("a" * 64, now) is None


def test_session_expires_and_disabled_user_has_none(accounts: AccountRepository) -> None:
    accounts.add_user("admin", "long enough pw", role="admin")
    user = accounts.add_user("dave", "long enough pw", role="supervisor")
    now = datetime.now(UTC)
    accounts.add_session("b" * 64, user.id, csrf_token="c", now=now, expires_at=now + timedelta(seconds=5),
                         source_ip="", user_agent="")  # fmt: skip
    live = accounts.session("b" * 64, now)
    assert live is not None and live.user.username == "dave" and live.csrf_token == "c"
    assert accounts.session("b" * 64, now + timedelta(seconds=6)) is None
    assert accounts.purge_sessions(now + timedelta(seconds=6)) == 1


def test_api_keys(accounts: AccountRepository) -> None:
    key = accounts.add_api_key("crm", prefix="abc123", key_hash="f" * 64, scopes=["calls:read"], created_by="user:a")
    assert key.scopes == {"calls:read"} and key.enabled
    found = accounts.api_key_by_prefix("abc123")
    assert found is not None and found[1] == "f" * 64
    _, after = accounts.set_api_key_enabled("crm", False)
    assert not after.enabled
    with pytest.raises(ValidationError, match=r"^scopes"):
        accounts.add_api_key("bad", prefix="x", key_hash="0" * 64, scopes=["nope"], created_by="")
    accounts.delete_api_key("crm")
    with pytest.raises(NotFoundError):
        accounts.get_api_key("crm")


def test_audit_log_is_filtered_and_newest_first(accounts: AccountRepository) -> None:
    now = datetime.now(UTC)
    for i in range(3):
        accounts.audit(at=now, actor="user:a", actor_kind="user", action="update", resource="queues",
                       resource_key=f"q{i}", before={"timeout": i}, after={"timeout": i + 1},
                       source_ip="127.0.0.1", interface="rest")  # fmt: skip
    accounts.audit(at=now, actor="key:k", actor_kind="api_key", action="create", resource="phones",
                   resource_key="2001", before=None, after={"name": "2001"}, source_ip="",
                   interface="xmlrpc")  # fmt: skip
    entries, total = accounts.audit_entries(resource="queues")
    assert total == 3 and [e.resource_key for e in entries] == ["q2", "q1", "q0"]
    assert entries[0].before == {"timeout": 2} and entries[0].after == {"timeout": 3}
    only_key, n = accounts.audit_entries(actor="key:k")
    assert n == 1 and only_key[0].interface == "xmlrpc"


def test_audit_retention_deletes_only_old_entries(accounts: AccountRepository) -> None:
    now = datetime.now(UTC)
    for age_days, key in ((400, "old"), (1, "new")):
        accounts.audit(at=now - timedelta(days=age_days), actor="user:a", actor_kind="user", action="update",
                       resource="queues", resource_key=key, before=None, after=None, source_ip="",
                       interface="rest")  # fmt: skip
    assert accounts.purge_audit(now - timedelta(days=365)) == 1
    entries, total = accounts.audit_entries()
    assert total == 1 and entries[0].resource_key == "new"
