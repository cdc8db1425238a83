"""Routing decisions from a configuration snapshot and the agents' live state (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from hotline.domain.config import Agent, CallTypeRule, ConfigSnapshot, Holiday, ServiceNumber
from hotline.features.routing.router import (
    RouteContext,
    decide_inbound,
    decide_internal,
    decide_ivr,
    decide_overflow,
)

from .. import factories as f

# 2026-11-25 is a Wednesday.
WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WEDNESDAY_NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)


def _snap() -> ConfigSnapshot:
    support = f.queue(1, "support", max_wait=120, priority=5)
    sales = f.queue(2, "sales", overflow_type="queue", overflow_value="support")
    menu = f.ivr(1, "main", prompt="hotline/welcome", fail_type="queue", fail_value="support", max_attempts=2)
    limited = f.group(1, "juniors", allowed_call_types="local", daily_call_quota=2, daily_minute_quota=10)
    return ConfigSnapshot.build(
        7,
        phones=(f.phone(1, "2001"), f.phone(2, "2002", enabled=False), f.phone(3, "2003")),
        agent_groups=(limited,),
        agents=(
            f.agent(1, "1001", name="Alice", phone_id=1),
            f.agent(2, "1002", name="Boris"),
            f.agent(3, "1003", name="Chen", group_id=1),
        ),
        queues=(support, sales),
        ivr_menus=(menu,),
        ivr_options=(f.option(1, menu, "1", "queue", "sales"), f.option(2, menu, "9", "redirect", "sip:9@127.0.0.9")),
        time_conditions=(
            f.time_condition(1, "office", "mon-fri 09:00-18:00", closed_type="ivr", closed_value="main"),
            f.time_condition(2, "night", "* 20:00-06:00", open_type="redirect", open_value="sip:night@127.0.0.8"),
        ),
        holidays=(Holiday(1, date(2026, 12, 25), "Christmas"),),
        service_numbers=(ServiceNumber(1, "112", "emergency", "external", "112", ""),),
        call_type_rules=(
            CallTypeRule(1, 10, "_8800X.", "premium"),
            CallTypeRule(2, 20, "_9XXXXXXXXX", "mobile"),
            CallTypeRule(3, 30, "_[2-7]XXXXXX", "local"),
            CallTypeRule(4, 40, "+", "international"),
        ),
        did_routes=(
            f.route(1, "5000", "queue", "support"),
            f.route(2, "5001", "agent", "1001"),
            f.route(3, "5002", "external", "+4930123456"),
            f.route(4, "5003", "hangup", hangup_cause=21, message="ss-noservice"),
            f.route(5, "5004", "queue", "nope"),
            f.route(6, "5005", "queue", "support", enabled=False),
            f.route(7, "5006", "agent", "1002"),
            f.route(8, "5007", "phone", "2002"),
            f.route(9, "5008", "external", "12; Hangup"),
            f.route(10, "5009", "time", "office"),
            f.route(11, "5010", "redirect", "sip:+4930999@127.0.0.9:5060"),
            f.route(12, "5011", "ivr", "main"),
            f.route(13, "5012", "time", "night"),
        ),
    )


def ctx(now: datetime = WEDNESDAY_NOON, **kw: Any) -> RouteContext:
    snap = _snap()
    on_phone = kw.pop("on_phone", {"2001": "1001", "2003": "1003"})

    def agent_on_phone(phone: str) -> Agent | None:
        number = on_phone.get(phone)
        return snap.agent_by_number.get(number) if number else None

    def phone_of_agent(number: str) -> str | None:
        return next((p for p, n in on_phone.items() if n == number), None)

    usage = kw.pop("usage", (0, 0))
    return RouteContext(
        snap,
        now,
        sound=lambda name: f"/media/{name}" if name.startswith("hotline/") else name,
        agent_on_phone=agent_on_phone,
        phone_of_agent=phone_of_agent,
        usage_today=lambda _id: usage,
        **kw,
    )


def test_queue_route_sets_queue_max_wait_and_priority() -> None:
    d = decide_inbound(ctx(), "5000")
    assert d.action == "queue"
    assert dict(d.variables) == {
        "HOTLINE_QUEUE": "support",
        "HOTLINE_QUEUE_TIMEOUT": "120",
        "HOTLINE_QUEUE_PRIO": "5",
    }


def test_agent_route_dials_the_phone_the_agent_is_logged_in_on() -> None:
    d = decide_inbound(ctx(on_phone={"2003": "1001"}), "5001")
    assert d.action == "dial" and dict(d.variables)["HOTLINE_DIAL"] == "PJSIP/2003"


def test_agent_not_logged_in_is_absent_and_disabled_phone_unallocated() -> None:
    assert dict(decide_inbound(ctx(), "5006").variables)["HOTLINE_CAUSE"] == "20"
    assert dict(decide_inbound(ctx(), "5007").variables)["HOTLINE_CAUSE"] == "1"


def test_external_route_goes_to_the_carrier() -> None:
    assert dict(decide_inbound(ctx(), "5002").variables)["HOTLINE_DIAL"] == "PJSIP/+4930123456@carrier"


def test_hangup_route_plays_its_message_then_uses_its_cause() -> None:
    d = decide_inbound(ctx(), "5003")
    assert d.action == "hangup"
    assert dict(d.variables) == {"HOTLINE_CAUSE": "21", "HOTLINE_MESSAGE": "ss-noservice"}


def test_unknown_did_missing_queue_and_disabled_route_are_unallocated() -> None:
    for did in ("9999", "5004", "5005"):
        d = decide_inbound(ctx(), did)
        assert d.action == "hangup" and dict(d.variables)["HOTLINE_CAUSE"] == "1", did


def test_external_number_with_dialplan_syntax_is_refused() -> None:
    d = decide_inbound(ctx(), "5008")
    assert d.action == "hangup" and "not dialable" in d.summary


def test_redirect_route_gives_the_302_target() -> None:
    d = decide_inbound(ctx(), "5010")
    assert d.action == "redirect" and dict(d.variables) == {"HOTLINE_REDIRECT": "sip:+4930999@127.0.0.9:5060"}


def test_ivr_route_resolves_prompts_for_the_node() -> None:
    d = decide_inbound(ctx(), "5011")
    assert d.action == "ivr"
    v = dict(d.variables)
    assert v == {"HOTLINE_IVR": "main", "HOTLINE_IVR_ASK": "/media/hotline/welcome", "HOTLINE_IVR_TIMEOUT": "5"}


@pytest.mark.parametrize(
    ("now", "action"),
    [
        (WEDNESDAY_NOON, "queue"),  # open
        (WEDNESDAY_NIGHT, "ivr"),  # closed: to the menu
        (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), "ivr"),  # Saturday
        (datetime(2026, 12, 25, 12, 0, tzinfo=UTC), "ivr"),  # a Friday, but Christmas
    ],
)
def test_time_condition_follows_hours_and_holidays(now: datetime, action: str) -> None:
    d = decide_inbound(ctx(now), "5009")
    assert d.action == action, d.summary
    assert ("office open" if action == "queue" else "office closed") in d.summary


def test_time_condition_across_midnight() -> None:
    assert decide_inbound(ctx(datetime(2026, 11, 26, 3, 0, tzinfo=UTC)), "5012").action == "redirect"
    assert decide_inbound(ctx(datetime(2026, 11, 26, 7, 0, tzinfo=UTC)), "5012").action == "hangup"


def test_ivr_digits_retries_and_failure_path() -> None:
    c = ctx()
    assert decide_ivr(c, "main", "1", 1).action == "queue"
    assert dict(decide_ivr(c, "main", "1", 1).variables)["HOTLINE_QUEUE"] == "sales"
    assert decide_ivr(c, "main", "9", 1).action == "redirect"
    retry = decide_ivr(c, "main", "5", 1)  # invalid digit: "invalid" then the menu again
    assert retry.action == "ivr-retry"
    assert dict(retry.variables) == {"HOTLINE_IVR_ASK": "pm-invalid-option&/media/hotline/welcome"}
    assert decide_ivr(c, "main", "", 1).action == "ivr-retry"  # timeout
    failed = decide_ivr(c, "main", "", 2)  # max_attempts reached: the failure destination
    assert failed.action == "queue" and dict(failed.variables)["HOTLINE_QUEUE"] == "support"
    assert decide_ivr(c, "nope", "1", 1).action == "hangup"


def test_overflow_only_for_queue_statuses_that_mean_no_agent() -> None:
    c = ctx()
    d = decide_overflow(c, "sales", "TIMEOUT")
    assert d.action == "queue" and dict(d.variables)["HOTLINE_QUEUE"] == "support"
    assert decide_overflow(c, "sales", "JOINEMPTY").action == "queue"
    assert decide_overflow(c, "support", "TIMEOUT").action == "hangup"  # no overflow configured
    assert dict(decide_overflow(c, "support", "FULL").variables)["HOTLINE_CAUSE"] == "34"


def test_phone_without_agent_reaches_only_codes_and_service_numbers() -> None:
    c = ctx(on_phone={})
    refused = decide_internal(c, "2001", "2003")
    assert refused.action == "hangup" and dict(refused.variables)["HOTLINE_CAUSE"] == "52"
    assert "nobody logged in" in refused.summary
    assert decide_internal(c, "2001", "*11").action == "login"
    emergency = decide_internal(c, "2001", "112")
    assert emergency.action == "dial" and emergency.call_type == "emergency"


def test_feature_codes_follow_the_settings() -> None:
    c = ctx(login_code="*21", logoff_code="*22", pause_code="*23", unpause_code="*24")
    assert [decide_internal(c, "2001", code).action for code in ("*21", "*22", "*23", "*24")] == [
        "login",
        "logoff",
        "pause",
        "unpause",
    ]
    assert decide_internal(c, "2001", "*11").action == "dial"  # no longer a code: an outside number


def test_internal_calls_of_a_logged_in_agent() -> None:
    c = ctx()
    d = decide_internal(c, "2001", "2003")
    assert dict(d.variables)["HOTLINE_DIAL"] == "PJSIP/2003" and d.call_type == "internal" and d.agent == "1001"
    assert decide_internal(c, "2001", "5000").action == "queue"
    assert dict(decide_internal(c, "2001", "1003").variables)["HOTLINE_DIAL"] == "PJSIP/2003"
    out = decide_internal(c, "2001", "0049301234")
    assert dict(out.variables)["HOTLINE_DIAL"] == "PJSIP/0049301234@carrier"
    assert out.call_type == "international"  # agent 1001 has no group: no limits


def test_limits_refuse_call_types_outside_the_group() -> None:
    c = ctx()
    local = decide_internal(c, "2003", "2345678")
    assert local.action == "dial" and local.call_type == "local"
    for number, kind in (("88001234567", "premium"), ("9161234567", "mobile"), ("+4930123", "international")):
        d = decide_internal(c, "2003", number)
        assert d.action == "refused" and d.call_type == kind, number
        assert f"call type {kind} is not allowed for group juniors" in d.summary
        assert dict(d.variables) == {"HOTLINE_CAUSE": "52", "HOTLINE_MESSAGE": "ss-noservice"}


def test_quotas_refuse_once_reached_but_never_emergency_or_internal() -> None:
    assert decide_internal(ctx(usage=(1, 0)), "2003", "2345678").action == "dial"
    calls = decide_internal(ctx(usage=(2, 0)), "2003", "2345678")
    assert calls.action == "refused" and "daily call quota" in calls.summary
    minutes = decide_internal(ctx(usage=(0, 600)), "2003", "2345678")
    assert minutes.action == "refused" and "daily minute quota" in minutes.summary
    assert decide_internal(ctx(usage=(99, 99999)), "2003", "112").action == "dial"
    assert decide_internal(ctx(usage=(99, 99999)), "2003", "2001").action == "dial"
