"""ResourceCatalog on SQLite, PostgreSQL and MariaDB: every resource's round trip, validation naming the field,
references by key, secrets never read back, conflicts, all-or-nothing bulk actions, config_version bumps."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.db import tables as t
from hotline.db.repositories import _QUEUE_OPTIONS, ConfigRepository
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.db.repositories.media import MediaRepository
from hotline.db.repositories.webhooks import WebhookRepository
from hotline.errors import ConflictError, NotFoundError, ValidationError
from hotline.features.config.resources import RESOURCES, ResourceCatalog
from hotline.passwords import sip_digests, verify_secret

SECRET_NAMES = {"password", "pin", "secret", "pin_hash", "digest_md5", "digest_sha256", "password_hash"}


@pytest.fixture
def world(config: ConfigRepository, engine: Engine) -> ConfigRepository:
    """A small call center built with the repositories (as the CLI builds it)."""
    cc = CallCenterRepository(engine)
    config.add_phone("2001", "desk-password-1", realm="hotline")
    config.add_phone("2002", "desk-password-2", realm="hotline")
    config.add_agent_group("sales")
    MediaRepository(engine).add_moh_class("calm")
    config.add_queue("support", musicclass="calm")
    config.add_queue("sales")
    config.add_agent("1001", "Alice", group="sales", pin="1234")
    cc.set_agent_queue("1001", "support", 2)
    cc.add_pause_reason("lunch")
    cc.add_ivr("main", "welcome")
    cc.set_ivr_option("main", "1", "queue", "support")
    cc.add_time_condition("office", "mon-fri 09:00-18:00", open_type="queue", open_value="support",
                          closed_type="ivr", closed_value="main")  # fmt: skip
    cc.add_service_number("112", "emergency", "external", "112")
    cc.add_holiday(datetime(2026, 12, 25, tzinfo=UTC).date(), "Christmas")
    cc.add_call_type_rule("_7XXX", "mobile", position=10)
    config.upsert_node("n1", "127.0.0.11", 5060, 5038)
    config.add_route("5000", "queue", "support")
    config.add_route("5001", "phone", "2001")
    config.add_route("5002", "time", "office")
    config.add_route("5003", "agent", "1001")
    return config


def _no_secrets(rows: object) -> None:
    for row in rows if isinstance(rows, list) else [rows]:
        assert isinstance(row, dict)
        assert not SECRET_NAMES & set(row), row


# ----------------------------------------------------------------------------------------- round trips
@dataclass
class Case:
    resource: str
    create: dict[str, Any]
    update: dict[str, Any]
    search: str
    stored: dict[str, Any] = field(default_factory=dict)  # values stored normalised


CASES = [
    Case("phones", {"name": "3001", "password": "s3cret-pass", "callerid": "Desk 3001"},
         {"callerid": "Front desk", "max_contacts": 2}, "DESK"),
    Case("agent_groups", {"name": "juniors", "description": "new hires"},
         {"daily_call_quota": 50, "allowed_call_types": "local,mobile"}, "hires"),
    Case("agents", {"number": "1002", "name": "Boris", "group": "sales", "phone": "2002", "pin": "4321"},
         {"name": "Boris B.", "group": None, "recording": "always"}, "bor"),
    Case("agent_queues", {"agent": "1001", "queue": "sales", "penalty": 1}, {"penalty": 5}, "sales"),
    Case("queues", {"name": "billing", "strategy": "rrmemory", "max_wait": 120},
         {"wrapuptime": 10, "overflow_type": "queue", "overflow_value": "support"}, "bill"),
    Case("did_routes", {"did": "5009", "dest_type": "queue", "dest_value": "support", "description": "hotline"},
         {"dest_type": "hangup", "dest_value": "", "hangup_cause": 17}, "5009"),
    Case("nodes", {"name": "node-9", "address": "127.0.0.19", "sip_port": 5060, "ami_port": 5038},
         {"address": "127.0.0.20"}, "node-9"),
    Case("pause_reasons", {"name": "coffee break", "paid": True}, {"max_duration_s": 600, "enabled": False}, "coffee"),
    Case("service_numbers", {"number": "100", "kind": "help", "dest_type": "queue", "dest_value": "support"},
         {"dest_type": "phone", "dest_value": "2001", "description": "help desk"}, "100"),
    Case("ivr_menus", {"name": "billing-menu", "prompt": "welcome"},
         {"timeout_s": 8, "fail_type": "queue", "fail_value": "support"}, "billing"),
    Case("ivr_options", {"menu": "main", "digit": "9", "dest_type": "queue", "dest_value": "support"},
         {"dest_type": "external", "dest_value": "+4930123"}, "main"),
    Case("time_conditions", {"name": "weekend", "hours": "sat-sun 10:00-14:00", "open_type": "queue",
                             "open_value": "support", "closed_type": "hangup"},
         {"timezone": "Europe/Berlin", "closed_type": "ivr", "closed_value": "main"}, "week"),
    Case("holidays", {"day": "2026-05-01", "name": "Labour day"}, {"name": "May Day"}, "labour"),
    Case("call_type_rules", {"pattern": "_8800X.", "call_type": "premium", "position": 5},
         {"call_type": "mobile", "pattern": "_8900X."}, "8800"),
    Case("moh_classes", {"name": "jazz"}, {"random": True}, "JAZ"),
    Case("customers", {"name": "ACME Ltd", "phone": "+49 30 123-456", "email": "ops@acme.example",
                       "data": {"tier": "gold"}},
         {"data": {"tier": "silver"}, "external_id": "C-7"}, "acme", stored={"phone": "+4930123456"}),
    Case("webhooks", {"url": "https://crm.example/hook", "events": "call.*, agent.login"},
         {"events": "*", "enabled": False}, "crm.example", stored={"events": "call.*,agent.login"}),
]  # fmt: skip


def test_cases_cover_every_resource() -> None:
    assert [c.resource for c in CASES] == [r.name for r in RESOURCES]


@pytest.mark.parametrize("case", CASES, ids=[c.resource for c in CASES])
def test_round_trip(world: ConfigRepository, catalog: ResourceCatalog, case: Case) -> None:
    res = catalog.resource(case.resource)
    secrets = {f.name for f in res.fields if f.write_only}
    version = world.version()

    created = catalog.create(case.resource, case.create)
    assert world.version() > version, "create bumps config_version"
    version = world.version()
    key = created[res.key]
    expected = {k: case.stored.get(k, v) for k, v in case.create.items() if k not in secrets}
    assert {k: created[k] for k in expected} == expected
    got = catalog.get(case.resource, key)
    assert got == {k: v for k, v in created.items() if k not in ("password", "secret")}
    _no_secrets(got)

    rows, total = catalog.list(case.resource, search=case.search)
    assert key in [r[res.key] for r in rows] and total == len(rows)
    _no_secrets(rows)
    rows, total = catalog.list(case.resource, search="no-such-thing-anywhere")
    assert (rows, total) == ([], 0)

    before, after = catalog.update(case.resource, key, case.update)
    assert world.version() > version, "update bumps config_version"
    version = world.version()
    assert before == got
    assert {k: after[k] for k in case.update} == case.update
    assert catalog.get(case.resource, key) == after
    _no_secrets([before, after])

    assert catalog.delete(case.resource, key) == after
    assert world.version() > version, "delete bumps config_version"
    with pytest.raises(NotFoundError, match="does not exist"):
        catalog.get(case.resource, key)
    with pytest.raises(NotFoundError):
        catalog.delete(case.resource, key)


def test_paging_sorting_and_filters(world: ConfigRepository, catalog: ResourceCatalog) -> None:
    for n in range(3001, 3006):
        catalog.create("phones", {"name": str(n), "enabled": n % 2 == 0})
    names = ["2001", "2002", "3001", "3002", "3003", "3004", "3005"]
    pages = [catalog.list("phones", limit=3, offset=o, sort="name") for o in (0, 3, 6)]
    assert [r["name"] for rows, _ in pages for r in rows] == names
    assert {total for _, total in pages} == {7}
    rows, total = catalog.list("phones", sort="-name", limit=2)
    assert [r["name"] for r in rows] == ["3005", "3004"] and total == 7
    rows, total = catalog.list("phones", filters={"enabled": False}, search="300")
    assert [r["name"] for r in rows] == ["3001", "3003", "3005"] and total == 3
    rows, total = catalog.list("agents", filters={"group": "sales"})
    assert [r["number"] for r in rows] == ["1001"]
    rows, total = catalog.list("agents", filters={"phone": None})
    assert total == 1
    rows, total = catalog.list("holidays", filters={"day": "2026-12-25"})
    assert rows == [{"day": "2026-12-25", "name": "Christmas"}]
    bad_requests = [({"sort": "password"}, "password"), ({"filters": {"colour": 1}}, "colour"),
                    ({"filters": {"enabled": "yes"}}, "enabled"), ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"),
                    ({"offset": -1}, "offset"), ({"search": "x" * 300}, "search")]  # fmt: skip
    for bad, name in bad_requests:
        with pytest.raises(ValidationError) as err:
            catalog.list("phones", **bad)
        assert err.value.field == name


# ------------------------------------------------------------------------------------ references by key
def test_references_are_shown_and_given_by_key(world: ConfigRepository, catalog: ResourceCatalog) -> None:
    agent = catalog.update("agents", "1001", {"phone": "2002"})[1]
    assert (agent["group"], agent["phone"]) == ("sales", "2002")
    assert catalog.get("agent_queues", "1001:support") == {
        "key": "1001:support", "agent": "1001", "queue": "support", "penalty": 2}  # fmt: skip
    assert catalog.get("ivr_options", "main:1")["dest_value"] == "support"
    # the snapshot Asterisk is served from sees the change at once: same ids, joined by key here
    snap = world.load_snapshot()
    assert snap.phone_by_id[snap.agent_by_number["1001"].phone_id].name == "2002"
    described = {r["name"]: r for r in catalog.resources()}
    fields = {f["name"]: f for f in described["agents"]["fields"]}
    assert fields["group"]["references"] == "agent_groups" and fields["phone"]["references"] == "phones"
    assert {f["name"]: f for f in described["did_routes"]["fields"]}["dest_value"]["references_by"]["field"] == (
        "dest_type"
    )


def test_describe_is_json_and_complete(catalog: ResourceCatalog) -> None:
    described = json.loads(json.dumps(catalog.resources()))
    assert [r["name"] for r in described] == [r.name for r in RESOURCES]
    for r in described:
        names = [f["name"] for f in r["fields"]]
        assert r["key"] in names
        assert r["bulk_actions"][0] == "delete"
    write_only = {(r["name"], f["name"]) for r in described for f in r["fields"] if f["write_only"]}
    assert write_only == {("phones", "password"), ("agents", "pin"), ("webhooks", "secret")}
    queue_fields = {f["name"] for f in described[[r["name"] for r in described].index("queues")]["fields"]}
    assert set(_QUEUE_OPTIONS) <= queue_fields, "every queue option the repository accepts is a field"


# ------------------------------------------------------------------------------------------ validation
CREATE_ERRORS = [
    ("phones", {"name": "bad name"}, "name", "letters, digits"),
    ("phones", {"name": "3001", "password": "short"}, "password", "8 to 128"),
    ("phones", {"name": "3001", "colour": "red"}, "colour", "is not a field of phones"),
    ("phones", {"name": "3001", "realm": "x"}, "realm", "read-only"),
    ("phones", {"name": "3001", "max_contacts": "2"}, "max_contacts", "must be an integer"),
    ("phones", {"name": "3001", "callerid": "x" * 129}, "callerid", "at most 128"),
    ("phones", {"password": "long-enough-pw"}, "name", "is required"),
    ("agents", {"number": "1002", "name": "B", "group": "nope"}, "group", "there is no agent group 'nope'"),
    ("agents", {"number": "1002", "name": "B", "phone": "9999"}, "phone", "there is no phone '9999'"),
    ("agents", {"number": "1002", "name": "B", "pin": "12ab"}, "pin", "4 to 12 digits"),
    ("agents", {"number": "1002", "name": "B", "enabled": "yes"}, "enabled", "true or false"),
    ("agents", {"number": "1002", "name": "B", "has_pin": True}, "has_pin", "read-only"),
    ("agent_queues", {"agent": "1001", "queue": "nope"}, "queue", "there is no queue 'nope'"),
    ("agent_queues", {"agent": "9999", "queue": "sales"}, "agent", "there is no agent '9999'"),
    ("agent_queues", {"agent": "1001", "queue": "sales", "penalty": 1001}, "penalty", "between 0 and 1000"),
    ("queues", {"name": "q2", "strategy": "loudest"}, "strategy", "must be one of"),
    ("queues", {"name": "q2", "overflow_type": "queue", "overflow_value": "nope"}, "overflow_value",
     "there is no queue 'nope'"),
    ("did_routes", {"did": "5010", "dest_type": "ivr", "dest_value": "nope"}, "dest_value", "there is no ivr 'nope'"),
    ("did_routes", {"did": "5010", "dest_type": "teleport"}, "dest_type", "must be one of"),
    ("ivr_options", {"menu": "nope", "digit": "1", "dest_type": "hangup"}, "menu", "there is no IVR menu 'nope'"),
    ("ivr_options", {"menu": "main", "digit": "12", "dest_type": "hangup"}, "digit", "0-9"),
    ("ivr_menus", {"name": "m2", "prompt": "x", "fail_value": "support"}, "fail_value", "needs a fail_type"),
    ("time_conditions", {"name": "t2", "hours": "mon 9-10", "open_type": "hangup", "closed_type": "hangup"},
     "hours", "not a time"),
    ("time_conditions", {"name": "t2", "hours": "mon 09:00-10:00", "timezone": "Mars/Base", "open_type": "hangup",
                         "closed_type": "hangup"}, "timezone", "not a known time zone"),
    ("holidays", {"day": "2026-13-01"}, "day", "YYYY-MM-DD"),
    ("call_type_rules", {"pattern": "_[12", "call_type": "premium"}, "pattern", "unclosed"),
    ("moh_classes", {"name": "default"}, "name", "built-in"),
    ("customers", {"name": "X", "phone": "call me"}, "phone", "must be a phone number"),
    ("customers", {"name": "X", "phone": "123", "data": {"k": 5}}, "data.k", "must be a string"),
    ("webhooks", {"url": "ftp://x.example/"}, "url", "http"),
    ("webhooks", {"url": "https://x.example", "secret": "short"}, "secret", "16 to 128"),
    ("nodes", {"name": "n", "address": "a b", "sip_port": 5060, "ami_port": 5038}, "address", "host name"),
    ("nodes", {"name": "n", "address": "h", "sip_port": 70000, "ami_port": 5038}, "sip_port", "between 1 and 65535"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "data", "field_name", "message"), CREATE_ERRORS)
def test_invalid_create_names_the_field_and_writes_nothing(
    world: ConfigRepository, catalog: ResourceCatalog, resource: str, data: dict[str, Any], field_name: str,
    message: str,
) -> None:  # fmt: skip
    version, (_, count) = world.version(), catalog.list(resource)
    with pytest.raises(ValidationError, match=message) as err:
        catalog.create(resource, data)
    assert err.value.field == field_name
    assert world.version() == version and catalog.list(resource)[1] == count


UPDATE_ERRORS = [
    ("phones", "2001", {"name": "2009"}, "name", "part of the key"),
    ("phones", "2001", {}, "data", "nothing to update"),
    ("phones", "2001", {"created_at": "2020-01-01"}, "created_at", "read-only"),
    ("agents", "1001", {"group": "nope"}, "group", "there is no agent group"),
    ("agents", "1001", {"name": ""}, "name", "must not be empty"),
    ("queues", "support", {"overflow_type": "queue", "overflow_value": "support"}, "overflow_value", "into itself"),
    ("queues", "support", {"max_wait": 0}, "max_wait", "between 1 and"),
    ("did_routes", "5000", {"dest_type": "queue", "dest_value": "nope"}, "dest_value", "there is no queue"),
    ("ivr_menus", "main", {"fail_type": "ivr", "fail_value": "main"}, "fail_value", "itself"),
    ("ivr_options", "main:1", {"dest_type": "ivr", "dest_value": "main"}, "dest_value", "its own menu"),
    ("time_conditions", "office", {"open_type": "time", "open_value": "office"}, "open_value", "itself"),
    ("time_conditions", "office", {"hours": "someday"}, "hours", "needs days and time ranges"),
    ("service_numbers", "112", {"dest_type": "queue", "dest_value": "nope"}, "dest_value", "there is no queue"),
    ("agent_queues", "1001:support", {"penalty": -1}, "penalty", "between"),
    ("holidays", "2026-12-25", {"day": "2026-12-26"}, "day", "part of the key"),
    ("nodes", "n1", {"state": "up"}, "state", "read-only"),
    ("call_type_rules", None, {"pattern": "_7XXX", "call_type": "teleport"}, "call_type", "must be one of"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "key", "data", "field_name", "message"), UPDATE_ERRORS)
def test_invalid_update_names_the_field_and_changes_nothing(
    world: ConfigRepository, catalog: ResourceCatalog, resource: str, key: str | None, data: dict[str, Any],
    field_name: str, message: str,
) -> None:  # fmt: skip
    if key is None:
        key = catalog.list(resource)[0][0][catalog.resource(resource).key]
    version, before = world.version(), catalog.get(resource, key)
    with pytest.raises(ValidationError, match=message) as err:
        catalog.update(resource, key, data)
    assert err.value.field == field_name
    assert world.version() == version and catalog.get(resource, key) == before


def test_bad_keys_and_resources(world: ConfigRepository, catalog: ResourceCatalog) -> None:
    for call, name in (
        (lambda: catalog.get("agent_queues", "1001"), "key"),
        (lambda: catalog.get("customers", "abc"), "id"),
        (lambda: catalog.get("customers", 10**20), "id"),
        (lambda: catalog.get("phones", None), "name"),
        (lambda: catalog.list("phones", filters={"name": "a\x00"}), "name"),
        (lambda: catalog.list("phones", search="a\x00"), "search"),
        (lambda: catalog.get("holidays", "christmas"), "day"),
        (lambda: catalog.get("teleporters", "x"), "resource"),
        (lambda: catalog.create("phones", ["name"]), "data"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.field == name
    with pytest.raises(NotFoundError, match="phone 'nope' does not exist"):
        catalog.get("phones", "nope")
    with pytest.raises(NotFoundError, match="agent queue '1001:sales' does not exist"):
        catalog.update("agent_queues", "1001:sales", {"penalty": 1})


# The rules the repositories write inline (no function to import) are restated next to the catalogue's
# fields; both must refuse the same values on the same field.
def _same_rule(engine: Engine) -> list[tuple[Callable[[], object], Callable[[ResourceCatalog], object]]]:
    config, cc = ConfigRepository(engine), CallCenterRepository(engine)
    pw = "long-enough-pw"
    return [
        (lambda: config.add_phone("3001", pw, realm="hotline", context="bad ctx"),
         lambda c: c.create("phones", {"name": "3001", "password": pw, "context": "bad ctx"})),
        (lambda: config.add_phone("3001", pw, realm="hotline", codecs="ULAW"),
         lambda c: c.create("phones", {"name": "3001", "password": pw, "codecs": "ULAW"})),
        (lambda: config.add_phone("3001", pw, realm="hotline", codecs="ulaw," * 30 + "alaw"),
         lambda c: c.create("phones", {"name": "3001", "password": pw, "codecs": "ulaw," * 30 + "alaw"})),
        (lambda: config.add_phone("3001", pw, realm="hotline", max_contacts=101),
         lambda c: c.create("phones", {"name": "3001", "password": pw, "max_contacts": 101})),
        (lambda: config.add_agent("1002", "B", pin="12"), lambda c: c.create("agents", {"number": "1002", "name": "B",
                                                                                          "pin": "12"})),
        (lambda: config.add_agent("10a", "B"), lambda c: c.create("agents", {"number": "10a", "name": "B"})),
        (lambda: config.add_agent("1002", " "), lambda c: c.create("agents", {"number": "1002", "name": " "})),
        (lambda: config.add_route("50 00", "hangup"), lambda c: c.create("did_routes", {"did": "50 00",
                                                                                         "dest_type": "hangup"})),
        (lambda: config.add_queue("a b"), lambda c: c.create("queues", {"name": "a b"})),
        (lambda: config.upsert_node("n2", "a b", 1, 1),
         lambda c: c.create("nodes", {"name": "n2", "address": "a b", "sip_port": 1, "ami_port": 1})),
        (lambda: cc.add_pause_reason("x" * 65), lambda c: c.create("pause_reasons", {"name": "x" * 65})),
        (lambda: cc.add_pause_reason("tea", max_duration_s=86_401),
         lambda c: c.create("pause_reasons", {"name": "tea", "max_duration_s": 86_401})),
        (lambda: cc.add_service_number("abc", "help", "hangup"),
         lambda c: c.create("service_numbers", {"number": "abc", "kind": "help", "dest_type": "hangup"})),
        (lambda: cc.add_ivr("m2", ""), lambda c: c.create("ivr_menus", {"name": "m2", "prompt": ""})),
        (lambda: cc.add_ivr("m2", "p", timeout_s=61),
         lambda c: c.create("ivr_menus", {"name": "m2", "prompt": "p", "timeout_s": 61})),
        (lambda: cc.add_ivr("m2", "p", max_attempts=0),
         lambda c: c.create("ivr_menus", {"name": "m2", "prompt": "p", "max_attempts": 0})),
        (lambda: cc.add_call_type_rule("a b", "mobile"),
         lambda c: c.create("call_type_rules", {"pattern": "a b", "call_type": "mobile"})),
        (lambda: cc.add_call_type_rule("_9X", "mobile", position=-1),
         lambda c: c.create("call_type_rules", {"pattern": "_9X", "call_type": "mobile", "position": -1})),
        (lambda: cc.add_holiday(datetime(2026, 1, 2).date(), "x" * 129),
         lambda c: c.create("holidays", {"day": "2026-01-02", "name": "x" * 129})),
        (lambda: cc.set_agent_queue("1001", "sales", 1001),
         lambda c: c.create("agent_queues", {"agent": "1001", "queue": "sales", "penalty": 1001})),
        (lambda: cc.add_time_condition("t", "mon 09:00-10:00", open_type="hangup", closed_type="hangup",
                                       timezone="x" * 70),
         lambda c: c.create("time_conditions", {"name": "t", "hours": "mon 09:00-10:00", "open_type": "hangup",
                                                "closed_type": "hangup", "timezone": "x" * 70})),
    ]  # fmt: skip


def test_restated_rules_match_the_repositories(
    world: ConfigRepository, catalog: ResourceCatalog, engine: Engine
) -> None:
    for i, (repo_call, catalog_call) in enumerate(_same_rule(engine)):
        with pytest.raises(ValidationError) as by_repo:
            repo_call()
        with pytest.raises(ValidationError) as by_catalog:
            catalog_call(catalog)
        assert by_catalog.value.field == by_repo.value.field, (i, by_repo.value, by_catalog.value)


# ------------------------------------------------------------------------------------ secrets
def test_secrets_are_written_never_read(world: ConfigRepository, catalog: ResourceCatalog, engine: Engine) -> None:
    created = catalog.create("phones", {"name": "3001", "enabled": False})
    generated = created.pop("password")
    assert len(generated) >= 16 and created["has_password"] and not created["enabled"]
    phone = world.load_snapshot().phone_by_name["3001"]
    assert (phone.digest_md5, phone.digest_sha256) == sip_digests("3001", "hotline", generated)
    catalog.update("phones", "3001", {"password": "a-new-password"})
    assert world.load_snapshot().phone_by_name["3001"].digest_sha256 == sip_digests(
        "3001", "hotline", "a-new-password")[1]  # fmt: skip

    catalog.create("agents", {"number": "1002", "name": "Boris", "pin": "98765"})
    stored = world.load_snapshot().agent_by_number["1002"].pin_hash
    assert stored is not None and verify_secret(stored, "98765")
    before, after = catalog.update("agents", "1002", {"pin": None})
    assert (before["has_pin"], after["has_pin"]) == (True, False)

    hook = catalog.create("webhooks", {"url": "https://crm.example/h"})
    secret = hook.pop("secret")
    assert [w.secret for w in WebhookRepository(engine).targets()] == [secret]
    assert "secret" not in catalog.get("webhooks", hook["id"])

    everything = json.dumps([catalog.list(r.name, limit=1000) for r in RESOURCES])
    for value in (generated, "a-new-password", "98765", secret, phone.digest_sha256, stored):
        assert value not in everything
    for r in RESOURCES:
        _no_secrets(catalog.list(r.name, limit=1000)[0])


# ------------------------------------------------------------------------------------ conflicts
DUPLICATES = [
    ("phones", {"name": "2001"}),
    ("agent_groups", {"name": "sales"}),
    ("agents", {"number": "1001", "name": "Another"}),
    ("agent_queues", {"agent": "1001", "queue": "support"}),
    ("queues", {"name": "support"}),
    ("did_routes", {"did": "5000", "dest_type": "hangup"}),
    ("nodes", {"name": "n1", "address": "127.0.0.12", "sip_port": 5060, "ami_port": 5038}),
    ("pause_reasons", {"name": "lunch"}),
    ("service_numbers", {"number": "112", "kind": "help", "dest_type": "hangup"}),
    ("ivr_menus", {"name": "main", "prompt": "x"}),
    ("ivr_options", {"menu": "main", "digit": "1", "dest_type": "hangup"}),
    ("time_conditions", {"name": "office", "hours": "* 00:00-24:00", "open_type": "hangup", "closed_type": "hangup"}),
    ("holidays", {"day": "2026-12-25"}),
    ("call_type_rules", {"pattern": "_7XXX", "call_type": "premium"}),
    ("moh_classes", {"name": "Calm"}),  # Asterisk compares class names ignoring case
]


@pytest.mark.parametrize(("resource", "data"), DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_duplicate_is_a_conflict(
    world: ConfigRepository, catalog: ResourceCatalog, resource: str, data: dict[str, Any]
) -> None:
    version, rows = world.version(), catalog.list(resource)
    with pytest.raises(ConflictError, match="already"):
        catalog.create(resource, data)
    assert world.version() == version and catalog.list(resource) == rows


IN_USE = [
    ("queues", "support", "DID route(s) 5000; IVR option(s) main:1; time condition(s) office"),
    ("phones", "2001", "DID route(s) 5001"),
    ("agents", "1001", "DID route(s) 5003"),
    ("agent_groups", "sales", "agent(s) 1001"),
    ("time_conditions", "office", "DID route(s) 5002"),
    ("ivr_menus", "main", "time condition(s) office"),
    ("moh_classes", "calm", "queue(s) support"),
]


@pytest.mark.parametrize(("resource", "key", "users"), IN_USE, ids=[u[0] for u in IN_USE])
def test_deleting_something_in_use_says_what_uses_it(
    world: ConfigRepository, catalog: ResourceCatalog, resource: str, key: str, users: str
) -> None:
    version, before = world.version(), catalog.get(resource, key)
    with pytest.raises(ConflictError) as err:
        catalog.delete(resource, key)
    assert users in str(err.value)
    assert world.version() == version and catalog.get(resource, key) == before


def test_live_state_blocks_deletes(world: ConfigRepository, catalog: ResourceCatalog, engine: Engine) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    agent_id = world.load_snapshot().agent_by_number["1001"].id
    with engine.begin() as conn:
        status = {"phone": "2002", "state": "paused", "pause_reason": "lunch", "state_since": now, "logged_in_at": now}
        conn.execute(sa.insert(t.agent_status).values(agent_id=agent_id, **status))
    catalog.delete("did_routes", "5003")  # the agent is no longer a destination...
    with pytest.raises(ConflictError, match="logged in"):  # ...but logged in
        catalog.delete("agents", "1001")
    with pytest.raises(ConflictError, match="logged-in agent"):
        catalog.delete("phones", "2002")
    with pytest.raises(ConflictError, match="paused with it 1001"):
        catalog.delete("pause_reasons", "lunch")


def test_freed_objects_can_be_deleted(world: ConfigRepository, catalog: ResourceCatalog) -> None:
    catalog.update("agents", "1001", {"phone": "2001"})
    catalog.delete("did_routes", "5001")
    catalog.delete("phones", "2001")
    assert catalog.get("agents", "1001")["phone"] is None  # the agent lost its fixed phone
    catalog.bulk("did_routes", "delete", ["5000", "5002"])
    catalog.delete("ivr_options", "main:1")
    catalog.update("time_conditions", "office", {"open_type": "hangup", "open_value": ""})
    assert catalog.delete("queues", "support")["name"] == "support"
    assert catalog.list("agent_queues")[1] == 0  # the agent's skill went with the queue


def test_a_failed_create_leaves_no_row(world: ConfigRepository, catalog: ResourceCatalog) -> None:
    # add_queue inserts, then checks the overflow on the stored row: the insert is rolled back
    with pytest.raises(ValidationError, match="overflow_value"):
        catalog.create("queues", {"name": "q9", "overflow_type": "ivr", "overflow_value": "nope"})
    with pytest.raises(NotFoundError):
        catalog.get("queues", "q9")
    # two statements in one transaction: the row and its extra field commit together
    assert catalog.create("did_routes", {"did": "5100", "dest_type": "hangup", "enabled": False})["enabled"] is False


# ----------------------------------------------------------------------------------------- bulk
def test_bulk_is_all_or_nothing(world: ConfigRepository, catalog: ResourceCatalog) -> None:
    for n in ("3001", "3002", "3003"):
        catalog.create("phones", {"name": n})
    catalog.create("queues", {"name": "billing"})
    version = world.version()

    with pytest.raises(NotFoundError, match="phone 'nope'"):
        catalog.bulk("phones", "disable", ["3001", "3002", "nope"])
    with pytest.raises(NotFoundError):
        catalog.bulk("phones", "delete", ["3001", "nope", "3002"])
    with pytest.raises(ConflictError, match="DID route"):
        catalog.bulk("queues", "delete", ["billing", "support"])  # billing goes first, then support refuses
    with pytest.raises(ValidationError, match="there is no agent group") as err:
        catalog.bulk("agents", "update", ["1001"], {"group": "nope"})
    assert err.value.field == "group" and "agent '1001'" in err.value.message
    assert world.version() == version
    assert all(r["enabled"] for r in catalog.list("phones")[0])
    assert catalog.get("queues", "billing")["name"] == "billing"

    done = catalog.bulk("phones", "disable", ["3001", "3002"])
    assert [(d["key"], d["before"]["enabled"], d["after"]["enabled"]) for d in done] == [
        ("3001", True, False), ("3002", True, False)]  # fmt: skip
    assert world.version() > version
    catalog.create("agent_queues", {"agent": "1001", "queue": "sales"})
    done = catalog.bulk("agent_queues", "update", ["1001:support", "1001:sales"], {"penalty": 7})
    assert [d["after"]["penalty"] for d in done] == [7, 7]
    deleted = catalog.bulk("phones", "delete", ["3001", "3003"])
    assert [(d["key"], d["after"]) for d in deleted] == [("3001", None), ("3003", None)]
    assert [r["name"] for r in catalog.list("phones")[0]] == ["2001", "2002", "3002"]


@pytest.mark.parametrize(
    ("resource", "action", "keys", "data", "field_name"),
    [
        ("queues", "enable", ["support"], None, "action"),
        ("phones", "explode", ["2001"], None, "action"),
        ("phones", "update", ["2001"], {"enabled": False, "callerid": "x"}, "data"),
        ("phones", "update", ["2001"], {"password": "long-enough-pw"}, "password"),
        ("phones", "update", ["2001"], {"name": "x"}, "name"),
        ("phones", "delete", ["2001", "2001"], None, "keys"),
        ("phones", "delete", [], None, "keys"),
        ("phones", "delete", "2001", None, "keys"),
        ("phones", "delete", ["2001"], {"enabled": False}, "data"),
    ],
)
def test_bulk_refuses_bad_requests(
    world: ConfigRepository, catalog: ResourceCatalog, resource: str, action: str, keys: Any, data: Any,
    field_name: str,
) -> None:  # fmt: skip
    version = world.version()
    with pytest.raises(ValidationError) as err:
        catalog.bulk(resource, action, keys, data)
    assert err.value.field == field_name
    assert world.version() == version


# ------------------------------------------------------------------------------------ documentation
DOCS = Path(__file__).resolve().parents[3] / "docs" / "resources.md"


def test_every_resource_and_field_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for r in RESOURCES:
        assert f"### {r.name}\n" in text, f"docs/resources.md has no section for {r.name}"
        section = text.split(f"### {r.name}\n", 1)[1].split("\n### ", 1)[0]
        assert f"Key: `{r.key}`" in section
        missing = [f.name for f in r.fields if f"| `{f.name}` |" not in section]
        assert not missing, f"docs/resources.md, {r.name}: document {missing}"
