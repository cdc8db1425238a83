"""ConfigRepository round trips on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hotline.db.repositories import ConfigRepository
from hotline.domain.config import Queue
from hotline.errors import ConflictError, NotFoundError, ValidationError
from hotline.passwords import verify_secret

REALM = "hotline"


def ha1(name: str, realm: str, password: str) -> tuple[str, str]:
    material = f"{name}:{realm}:{password}".encode()
    return hashlib.md5(material).hexdigest(), hashlib.sha256(material).hexdigest()


# ------------------------------------------------------------------------------------------ phones


def test_add_phone_stores_only_digests(config: ConfigRepository) -> None:
    phone = config.add_phone("2001", "s3cret-pass", realm=REALM, callerid='"Оператор Иванов" <2001>')
    assert (phone.digest_md5, phone.digest_sha256) == ha1("2001", REALM, "s3cret-pass")
    assert phone.name == "2001"
    assert phone.realm == REALM
    assert phone.callerid == '"Оператор Иванов" <2001>'
    assert (phone.context, phone.codecs, phone.max_contacts, phone.enabled) == (
        "hotline-phones",
        "ulaw,alaw",
        1,
        True,
    )
    assert config.load_snapshot().phone_by_name["2001"] == phone


def test_add_phone_options(config: ConfigRepository) -> None:
    phone = config.add_phone(
        "desk.7_a-b", "another-pass", realm="pbx.example", context="ctx", codecs="opus,g722", max_contacts=3
    )
    assert (phone.realm, phone.context, phone.codecs, phone.max_contacts) == (
        "pbx.example",
        "ctx",
        "opus,g722",
        3,
    )


def test_phone_names_are_case_sensitive_everywhere(config: ConfigRepository) -> None:
    # MariaDB's default utf8mb4_general_ci would call these duplicates; the tables use utf8mb4_bin.
    config.add_phone("Alice", "password-1", realm=REALM)
    config.add_phone("alice", "password-2", realm=REALM)
    assert set(config.load_snapshot().phone_by_name) == {"Alice", "alice"}


def test_duplicate_phone_is_a_conflict(config: ConfigRepository) -> None:
    config.add_phone("2001", "password-1", realm=REALM)
    version = config.version()
    with pytest.raises(ConflictError, match="2001"):
        config.add_phone("2001", "password-2", realm=REALM)
    assert config.version() == version  # the failed write's bump was rolled back


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "2001\n"}, "name"),
        ({"password": "short"}, "password"),
        ({"password": "ünïcode-pass"}, "password"),
        ({"realm": "has space"}, "realm"),
        ({"context": "a,b"}, "context"),
        ({"callerid": "line\nbreak"}, "callerid"),
        ({"codecs": "ulaw, alaw"}, "codecs"),
        ({"max_contacts": 0}, "max_contacts"),
    ],
)
def test_add_phone_validation_names_the_field(config: ConfigRepository, kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"name": "2001", "password": "good-password", "realm": REALM, **kwargs}
    with pytest.raises(ValidationError) as info:
        config.add_phone(**args)  # type: ignore[arg-type]
    assert info.value.field == field
    assert config.version() == 0


def test_set_phone_password_changes_digests(config: ConfigRepository) -> None:
    before = config.add_phone("2001", "first-password", realm=REALM)
    config.set_phone_password("2001", "second-password", realm="newrealm")
    after = config.load_snapshot().phone_by_name["2001"]
    assert (after.digest_md5, after.digest_sha256) == ha1("2001", "newrealm", "second-password")
    assert after.digest_md5 != before.digest_md5
    assert after.realm == "newrealm"
    with pytest.raises(NotFoundError):
        config.set_phone_password("nobody", "second-password", realm=REALM)
    with pytest.raises(ValidationError) as info:
        config.set_phone_password("2001", "       ", realm=REALM)
    assert info.value.field == "password"


def test_delete_phone(config: ConfigRepository) -> None:
    config.add_phone("2001", "password-1", realm=REALM)
    config.add_agent("1001", "Alice", phone="2001")
    config.delete_phone("2001")
    snap = config.load_snapshot()
    assert snap.phones == ()
    assert snap.agent_by_number["1001"].phone_id is None  # ON DELETE SET NULL
    with pytest.raises(NotFoundError):
        config.delete_phone("2001")


def test_phone_used_by_a_route_cannot_be_deleted(config: ConfigRepository) -> None:
    config.add_phone("2001", "password-1", realm=REALM)
    config.add_route("5000", "phone", "2001")
    with pytest.raises(ConflictError, match="5000"):
        config.delete_phone("2001")
    assert "2001" in config.load_snapshot().phone_by_name


# ------------------------------------------------------------------------------------------ agents


def test_agents_and_groups_round_trip_unicode(config: ConfigRepository) -> None:
    group = config.add_agent_group("Отдел продаж", "Продажи 🎧")
    phone = config.add_phone("2001", "password-1", realm=REALM)
    agent = config.add_agent("1001", "Оператор Иванов", group="Отдел продаж", pin="4321", phone="2001")
    assert (group.name, group.description) == ("Отдел продаж", "Продажи 🎧")
    assert (agent.number, agent.name, agent.group_id, agent.phone_id, agent.enabled) == (
        "1001",
        "Оператор Иванов",
        group.id,
        phone.id,
        True,
    )
    assert agent.pin_hash is not None and agent.pin_hash.startswith("$argon2id$")
    assert verify_secret(agent.pin_hash, "4321")
    assert not verify_secret(agent.pin_hash, "1234")
    snap = config.load_snapshot()
    assert snap.agent_by_number["1001"] == agent
    assert snap.agent_groups == (group,)


def test_agent_without_pin_group_or_phone(config: ConfigRepository) -> None:
    agent = config.add_agent("7", "Bob")
    assert (agent.group_id, agent.pin_hash, agent.phone_id) == (None, None, None)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"number": "12a"}, "number"),
        ({"name": "   "}, "name"),
        ({"pin": "123"}, "pin"),
        ({"pin": "1234567890123"}, "pin"),
        ({"pin": "12 34"}, "pin"),
        ({"pin": "١٢٣٤"}, "pin"),  # Arabic-Indic digits are digits to \d, not to a keypad
    ],
)
def test_add_agent_validation(config: ConfigRepository, kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"number": "1001", "name": "Alice", **kwargs}
    with pytest.raises(ValidationError) as info:
        config.add_agent(**args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_add_agent_missing_references_and_duplicates(config: ConfigRepository) -> None:
    with pytest.raises(NotFoundError, match="group"):
        config.add_agent("1001", "Alice", group="nope")
    with pytest.raises(NotFoundError, match="phone"):
        config.add_agent("1001", "Alice", phone="nope")
    config.add_agent("1001", "Alice")
    with pytest.raises(ConflictError):
        config.add_agent("1001", "Alice again")
    config.add_agent_group("g")
    with pytest.raises(ConflictError):
        config.add_agent_group("g")


# ------------------------------------------------------------------------------------------ queues


def test_add_queue_takes_database_defaults(config: ConfigRepository) -> None:
    queue = config.add_queue("support")
    assert queue == Queue(
        id=queue.id,
        name="support",
        strategy="ringall",
        timeout=15,
        retry=5,
        wrapuptime=0,
        maxlen=0,
        servicelevel=60,
        musicclass="default",
        joinempty="yes",
        leavewhenempty="no",
        ringinuse=False,
        weight=0,
        max_wait=None,
        announce_frequency=0,
        announce_holdtime="no",
        announce_position="no",
        announce_position_limit=5,
        periodic_announce="",
        periodic_announce_frequency=0,
        priority=0,
        overflow_type="",
        overflow_value="",
        recording="never",
    )


def test_add_and_update_queue_options(config: ConfigRepository) -> None:
    queue = config.add_queue(
        "sales",
        strategy="rrmemory",
        timeout=20,
        ringinuse=True,
        max_wait=300,
        joinempty="paused,unavailable",
        announce_holdtime="once",
    )
    assert (queue.strategy, queue.timeout, queue.ringinuse, queue.max_wait, queue.joinempty) == (
        "rrmemory",
        20,
        True,
        300,
        "paused,unavailable",
    )
    updated = config.update_queue("sales", timeout=30, max_wait=None, weight=2)
    assert (updated.id, updated.timeout, updated.max_wait, updated.weight, updated.strategy) == (
        queue.id,
        30,
        None,
        2,
        "rrmemory",
    )
    assert config.load_snapshot().queue_by_name["sales"] == updated


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"strategy": "roundrobin"}, "strategy"),
        ({"timeout": -1}, "timeout"),
        ({"retry": "5"}, "retry"),
        ({"weight": True}, "weight"),
        ({"max_wait": 0}, "max_wait"),
        ({"joinempty": "sometimes"}, "joinempty"),
        ({"announce_holdtime": "always"}, "announce_holdtime"),
        ({"musicclass": "a b"}, "musicclass"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_queue_validation_names_the_field(config: ConfigRepository, options: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        config.add_queue("q", **options)
    assert info.value.field == field
    config.add_queue("q")
    with pytest.raises(ValidationError) as info:
        config.update_queue("q", **options)
    assert info.value.field == field


def test_queue_errors(config: ConfigRepository) -> None:
    with pytest.raises(ValidationError) as info:
        config.add_queue("has space")
    assert info.value.field == "name"
    with pytest.raises(NotFoundError):
        config.update_queue("nope", timeout=1)
    config.add_queue("q")
    with pytest.raises(ConflictError):
        config.add_queue("q")
    with pytest.raises(ValidationError):
        config.update_queue("q")


def test_queue_members(config: ConfigRepository) -> None:
    config.add_queue("support")
    config.add_queue("other")
    config.add_phone("2001", "password-1", realm=REALM)
    config.add_agent("1001", "Оператор Иванов", phone="2001")
    plain = config.add_queue_member("support", "PJSIP/2002", membername="desk", penalty=2)
    via_agent = config.add_queue_member("support", "Local/1001@hotline-agents/n", agent="1001")
    config.add_queue_member("other", "PJSIP/2002")

    assert plain.uniqueid.startswith("qm-") and len(plain.uniqueid) == 19
    assert (plain.queue_name, plain.membername, plain.penalty, plain.paused, plain.agent_id) == (
        "support",
        "desk",
        2,
        0,
        None,
    )
    assert (plain.wrapuptime, plain.ringinuse, plain.state_interface, plain.reason_paused) == (
        None,
        None,
        "",
        "",
    )
    assert via_agent.membername == "Оператор Иванов"
    assert via_agent.state_interface == "PJSIP/2001"
    assert via_agent.agent_id == config.load_snapshot().agent_by_number["1001"].id

    snap = config.load_snapshot()
    assert [m.interface for m in snap.members_by_queue["support"]] == [
        "PJSIP/2002",
        "Local/1001@hotline-agents/n",
    ]
    assert [m.interface for m in snap.members_by_queue["other"]] == ["PJSIP/2002"]

    with pytest.raises(ConflictError):
        config.add_queue_member("support", "PJSIP/2002")
    with pytest.raises(NotFoundError):
        config.add_queue_member("nope", "PJSIP/2003")
    with pytest.raises(NotFoundError):
        config.add_queue_member("support", "PJSIP/2003", agent="999")
    with pytest.raises(ValidationError) as info:
        config.add_queue_member("support", "PJSIP 2003")
    assert info.value.field == "interface"

    config.remove_queue_member("support", "PJSIP/2002")
    assert [m.interface for m in config.load_snapshot().members_by_queue["support"]] == ["Local/1001@hotline-agents/n"]
    with pytest.raises(NotFoundError):
        config.remove_queue_member("support", "PJSIP/2002")


def test_set_member_paused(config: ConfigRepository) -> None:
    config.add_queue("support")
    member = config.add_queue_member("support", "PJSIP/2001")
    version = config.version()
    assert config.set_member_paused(member.uniqueid, True, "lunch") == 1
    assert config.version() == version + 1
    paused = config.load_snapshot().members_by_queue["support"][0]
    assert (paused.paused, paused.reason_paused) == (1, "lunch")
    # Same values again: still one matched row (MariaDB would say 0 changed rows without CLIENT_FOUND_ROWS).
    assert config.set_member_paused(member.uniqueid, True, "lunch") == 1
    assert config.set_member_paused(member.uniqueid, False, "") == 1
    assert config.load_snapshot().members_by_queue["support"][0].paused == 0
    version = config.version()
    assert config.set_member_paused("qm-unknown", True, "") == 0
    assert config.version() == version
    with pytest.raises(ValidationError) as info:
        config.set_member_paused(member.uniqueid, True, "x" * 81)
    assert info.value.field == "reason"


# ------------------------------------------------------------------------------------------ routes


def test_routes_of_every_type(config: ConfigRepository) -> None:
    config.add_queue("support")
    config.add_agent("1001", "Alice")
    config.add_phone("2001", "password-1", realm=REALM)
    config.add_route("5000", "queue", "support", description="Линия поддержки")
    config.add_route("5001", "agent", "1001")
    config.add_route("5002", "phone", "2001")
    config.add_route("+74951234567", "external", "+74957654321")
    closed = config.add_route("5004", "hangup", hangup_cause=21)
    assert (closed.dest_type, closed.dest_value, closed.hangup_cause, closed.enabled) == (
        "hangup",
        "",
        21,
        True,
    )
    snap = config.load_snapshot()
    assert snap.route_by_did["5000"].description == "Линия поддержки"
    assert {d: (r.dest_type, r.dest_value) for d, r in snap.route_by_did.items()} == {
        "5000": ("queue", "support"),
        "5001": ("agent", "1001"),
        "5002": ("phone", "2001"),
        "+74951234567": ("external", "+74957654321"),
        "5004": ("hangup", ""),
    }


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("bad did", "hangup"), {}, "did"),
        (("5000", "voicemail"), {}, "dest_type"),
        (("5000", "queue", "missing"), {}, "dest_value"),
        (("5000", "agent", "404"), {}, "dest_value"),
        (("5000", "phone", "404"), {}, "dest_value"),
        (("5000", "external", "not-a-number"), {}, "dest_value"),
        (("5000", "hangup", "something"), {}, "dest_value"),
        (("5000", "hangup"), {"hangup_cause": 300}, "hangup_cause"),
        (("5000", "external", "123"), {"hangup_cause": 16}, "hangup_cause"),
        (("5000", "hangup"), {"description": "x" * 256}, "description"),
    ],
)
def test_route_validation_names_the_field(
    config: ConfigRepository, args: tuple[str, ...], kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        config.add_route(*args, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert config.load_snapshot().did_routes == ()


def test_update_and_delete_route(config: ConfigRepository) -> None:
    config.add_queue("support")
    route = config.add_route("5000", "hangup", hangup_cause=17)
    with pytest.raises(ConflictError):
        config.add_route("5000", "hangup")
    with pytest.raises(ValidationError) as info:
        config.update_route("5000", dest_type="queue", dest_value="support")  # cause still set
    assert info.value.field == "hangup_cause"
    updated = config.update_route("5000", dest_type="queue", dest_value="support", hangup_cause=None, enabled=False)
    assert (updated.id, updated.dest_type, updated.dest_value, updated.hangup_cause, updated.enabled) == (
        route.id,
        "queue",
        "support",
        None,
        False,
    )
    with pytest.raises(ValidationError) as info:
        config.update_route("5000", priority=1)
    assert info.value.field == "priority"
    with pytest.raises(NotFoundError):
        config.update_route("6000", enabled=True)
    config.delete_route("5000")
    assert config.load_snapshot().route_by_did == {}
    with pytest.raises(NotFoundError):
        config.delete_route("5000")


# ------------------------------------------------------------------------------------------- nodes


def test_nodes(config: ConfigRepository) -> None:
    node = config.upsert_node("node1", "127.0.0.11", 5060, 5038)
    assert (node.state, node.last_seen_at, node.active_calls, node.load, node.version) == (
        "unknown",
        None,
        0,
        0.0,
        "",
    )
    moved = config.upsert_node("node1", "127.0.0.12", 5062, 5039)
    assert (moved.id, moved.address, moved.sip_port, moved.ami_port) == (node.id, "127.0.0.12", 5062, 5039)

    seen = datetime(2025, 11, 25, 22, 15, 1, 123456, tzinfo=timezone(timedelta(hours=3)))
    config.update_node_status("node1", state="up", active_calls=12, load=0.375, version="22.5.2", seen_at=seen)
    status = config.load_snapshot().nodes[0]
    assert (status.state, status.active_calls, status.load, status.version) == ("up", 12, 0.375, "22.5.2")
    assert status.last_seen_at == seen  # microseconds survive, on MariaDB too
    assert status.last_seen_at is not None and status.last_seen_at.tzinfo is UTC

    # A second upsert keeps the recorded status.
    assert config.upsert_node("node1", "127.0.0.12", 5062, 5039).state == "up"

    with pytest.raises(NotFoundError):
        config.update_node_status("nope", state="up", active_calls=0, load=0, version="", seen_at=seen)
    bad_status: list[tuple[dict[str, object], str]] = [
        ({"state": "Up!"}, "state"),
        ({"active_calls": -1}, "active_calls"),
        ({"load": float("nan")}, "load"),
        ({"seen_at": datetime(2025, 1, 1)}, "seen_at"),
    ]
    for kwargs, field in bad_status:
        args: dict[str, object] = {
            "state": "up",
            "active_calls": 0,
            "load": 0.0,
            "version": "",
            "seen_at": seen,
        }
        with pytest.raises(ValidationError) as info:
            config.update_node_status("node1", **{**args, **kwargs})  # type: ignore[arg-type]
        assert info.value.field == field
    with pytest.raises(ValidationError) as info:
        config.upsert_node("node1", "127.0.0.1", 0, 5038)
    assert info.value.field == "sip_port"


# -------------------------------------------------------------------------------- version, snapshot


def test_every_write_bumps_the_version(config: ConfigRepository) -> None:
    seen = datetime.now(UTC)
    writes: list[Callable[[], object]] = [
        lambda: config.add_phone("2001", "password-1", realm=REALM),
        lambda: config.set_phone_password("2001", "password-2", realm=REALM),
        lambda: config.add_agent_group("g"),
        lambda: config.add_agent("1001", "Alice", group="g"),
        lambda: config.add_queue("q"),
        lambda: config.update_queue("q", timeout=3),
        lambda: config.add_queue_member("q", "PJSIP/2001"),
        lambda: config.set_member_paused(config.load_snapshot().queue_members[0].uniqueid, True, "x"),
        lambda: config.remove_queue_member("q", "PJSIP/2001"),
        lambda: config.add_route("5000", "queue", "q"),
        lambda: config.update_route("5000", description="d"),
        lambda: config.delete_route("5000"),
        lambda: config.upsert_node("n1", "127.0.0.11", 5060, 5038),
        lambda: config.delete_phone("2001"),
    ]
    assert config.version() == 0
    for expected, write in enumerate(writes, start=1):
        write()
        assert config.version() == expected
        assert config.load_snapshot().version == expected
    # live node status is not configuration: no snapshot reload on every heartbeat
    config.update_node_status("n1", state="up", active_calls=0, load=0.0, version="", seen_at=seen)
    assert config.version() == len(writes)
    assert config.load_snapshot().nodes[0].state == "up"


def test_snapshot_holds_everything_with_indexes(config: ConfigRepository) -> None:
    config.add_agent_group("g")
    p1 = config.add_phone("2001", "password-1", realm=REALM)
    p2 = config.add_phone("2002", "password-2", realm=REALM)
    a1 = config.add_agent("1001", "Alice", group="g", phone="2001")
    q1 = config.add_queue("q1")
    q2 = config.add_queue("q2")
    m1 = config.add_queue_member("q1", "PJSIP/2001", agent="1001")
    m2 = config.add_queue_member("q1", "PJSIP/2002")
    r1 = config.add_route("5000", "queue", "q1")
    n1 = config.upsert_node("n1", "127.0.0.11", 5060, 5038)

    snap = config.load_snapshot()
    assert snap.version == config.version() == 10
    assert snap.phones == (p1, p2)
    assert snap.agents == (a1,)
    assert snap.queues == (q1, q2)
    assert snap.queue_members == (m1, m2)
    assert snap.did_routes == (r1,)
    assert snap.nodes == (n1,)
    assert dict(snap.phone_by_name) == {"2001": p1, "2002": p2}
    assert dict(snap.queue_by_name) == {"q1": q1, "q2": q2}
    assert dict(snap.agent_by_number) == {"1001": a1}
    assert dict(snap.route_by_did) == {"5000": r1}
    assert dict(snap.members_by_queue) == {"q1": (m1, m2), "q2": ()}
    assert config.load_snapshot() == snap
