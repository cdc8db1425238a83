"""CallCenterRepository and the new configuration in snapshots, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine

from hotline.db.repositories import ConfigRepository
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.errors import ConflictError, NotFoundError, ValidationError


@pytest.fixture
def cc(engine: Engine) -> CallCenterRepository:
    return CallCenterRepository(engine)


@pytest.fixture
def base(config: ConfigRepository) -> ConfigRepository:
    config.add_phone("2101", "secret-password", realm="hotline")
    config.add_queue("support")
    config.add_queue("sales")
    config.add_agent_group("juniors")
    config.add_agent("1001", "Alice", group="juniors", pin="1234")
    return config


def test_everything_lands_in_the_snapshot(base: ConfigRepository, cc: CallCenterRepository) -> None:
    v0 = base.version()
    cc.set_agent_queue("1001", "support", 2)
    cc.set_agent_queue("1001", "support", 3)  # replaces the penalty
    cc.add_pause_reason("lunch", paid=False, max_duration_s=1800)
    cc.add_service_number("112", "emergency", "external", "112")
    cc.add_ivr("main", "demo-congrats", fail_type="queue", fail_value="support")
    cc.set_ivr_option("main", "1", "queue", "sales")
    cc.set_ivr_option("main", "1", "redirect", "sip:+4930@127.0.0.9:5060")  # replaces digit 1
    cc.add_time_condition("office", "mon-fri 09:00-18:00", open_type="queue", open_value="support",
                          closed_type="ivr", closed_value="main", timezone="Europe/Berlin")  # fmt: skip
    cc.add_holiday(date(2026, 12, 25), "Christmas")
    cc.add_call_type_rule("_8800X.", "premium", position=5)
    g = cc.update_agent_group("juniors", allowed_call_types="local,mobile", daily_call_quota=10, max_missed_in_row=2)
    assert g.call_types == frozenset({"local", "mobile"})
    snap = base.load_snapshot()
    assert snap.version > v0
    agent = snap.agent_by_number["1001"]
    assert [(s.queue_id, s.penalty) for s in snap.skills_by_agent[agent.id]] == [(snap.queue_by_name["support"].id, 3)]
    assert snap.pause_reason_by_name["lunch"].max_duration_s == 1800
    assert snap.service_by_number["112"].kind == "emergency"
    menu = snap.ivr_by_name["main"]
    assert dict(snap.ivr_options_by_menu[menu.id])["1"].dest_type == "redirect"
    assert snap.time_by_name["office"].timezone == "Europe/Berlin"
    assert snap.holiday_days == frozenset({date(2026, 12, 25)})
    assert [r.pattern for r in snap.call_type_rules] == ["_8800X."]
    assert snap.group_by_id[g.id].daily_call_quota == 10


def test_destinations_must_exist(base: ConfigRepository, cc: CallCenterRepository) -> None:
    with pytest.raises(ValidationError, match="dest_value: there is no queue 'nope'"):
        cc.add_service_number("100", "help", "queue", "nope")
    with pytest.raises(ValidationError, match="fail_value: there is no ivr 'other'"):
        cc.add_ivr("main", "demo-congrats", fail_type="ivr", fail_value="other")
    cc.add_ivr("main", "demo-congrats")
    with pytest.raises(ValidationError, match="cannot lead to its own menu"):
        cc.set_ivr_option("main", "1", "ivr", "main")
    with pytest.raises(ValidationError, match="dest_value: must be a SIP URI"):
        cc.set_ivr_option("main", "2", "redirect", "sip:x@host>;evil")
    with pytest.raises(ValidationError, match="open_value: there is no queue"):
        cc.add_time_condition("t", "* 00:00-24:00", open_type="queue", open_value="x", closed_type="hangup")
    with pytest.raises(ValidationError, match="overflow_value: there is no queue 'nope'"):
        base.update_queue("support", overflow_type="queue", overflow_value="nope")
    with pytest.raises(ValidationError, match="cannot overflow into itself"):
        base.update_queue("support", overflow_type="queue", overflow_value="support")
    assert base.update_queue("support", overflow_type="ivr", overflow_value="main").overflow_type == "ivr"
    with pytest.raises(ValidationError, match="dest_value: there is no time"):
        base.add_route("5000", "time", "nope")
    base.add_route("5001", "redirect", "sip:+4930@127.0.0.9:5060", message="")
    with pytest.raises(ValidationError, match="message"):
        base.add_route("5002", "hangup", message="../../etc/passwd ")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda cc: cc.add_time_condition("t", "mon 9-10", open_type="hangup", closed_type="hangup"), "hours"),
        (
            lambda cc: cc.add_time_condition(
                "t", "* 09:00-10:00", open_type="hangup", closed_type="hangup", timezone="Mars/Base"
            ),
            "timezone",
        ),
        (lambda cc: cc.add_call_type_rule("_[12", "premium"), "unclosed"),
        (lambda cc: cc.add_call_type_rule("_8X.", "expensive"), "call_type"),
        (lambda cc: cc.update_agent_group("juniors", allowed_call_types="local,moon"), "unknown value"),
        (lambda cc: cc.update_agent_group("juniors", colour="red"), "not an agent group field"),
        (lambda cc: cc.set_ivr_option("x", "12", "hangup"), "digit"),
        (lambda cc: cc.add_pause_reason("x" * 65), "name"),
        (lambda cc: cc.add_pause_reason("tea", max_duration_s=0), "max_duration_s"),
    ],
)
def test_invalid_values_name_the_field(base: ConfigRepository, cc: CallCenterRepository, call, message) -> None:  # type: ignore[no-untyped-def]
    before = base.version()
    with pytest.raises(ValidationError, match=message):
        call(cc)
    assert base.version() == before  # nothing written


def test_duplicates_and_missing(base: ConfigRepository, cc: CallCenterRepository) -> None:
    cc.add_pause_reason("lunch")
    with pytest.raises(ConflictError):
        cc.add_pause_reason("lunch")
    cc.add_holiday(date(2026, 1, 1))
    with pytest.raises(ConflictError):
        cc.add_holiday(date(2026, 1, 1))
    cc.delete_holiday(date(2026, 1, 1))
    with pytest.raises(NotFoundError):
        cc.delete_holiday(date(2026, 1, 1))
    with pytest.raises(NotFoundError):
        cc.set_agent_queue("9999", "support")
    with pytest.raises(NotFoundError):
        cc.remove_agent_queue("1001", "support")
    with pytest.raises(NotFoundError):
        cc.update_time_condition("nope", hours="* 10:00-11:00")
