"""Business hours (domain/schedule.py) and number classification and limits (domain/limits.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from hotline.domain.config import CallTypeRule
from hotline.domain.limits import check, classify, pattern_regex
from hotline.domain.schedule import is_open, parse_hours
from hotline.errors import ValidationError

from .. import factories as f

HOURS = "mon-fri 09:00-13:00,14:00-18:00; sat 10:00-14:00"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 11, 23, 8, 59, tzinfo=UTC), False),  # Monday before opening
        (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 23, 13, 30, tzinfo=UTC), False),  # lunch
        (datetime(2026, 11, 27, 17, 59, tzinfo=UTC), True),  # Friday
        (datetime(2026, 11, 27, 18, 0, tzinfo=UTC), False),  # end is exclusive
        (datetime(2026, 11, 28, 11, 0, tzinfo=UTC), True),  # Saturday
        (datetime(2026, 11, 29, 11, 0, tzinfo=UTC), False),  # Sunday
    ],
)
def test_weekly_hours(when: datetime, expected: bool) -> None:
    assert is_open(HOURS, "UTC", frozenset(), when) is expected


def test_time_zone_and_holidays_use_local_dates() -> None:
    # 08:30 UTC is 09:30 in Berlin (winter): open there, closed in UTC
    when = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert is_open(HOURS, "Europe/Berlin", frozenset(), when)
    assert not is_open(HOURS, "UTC", frozenset(), when)
    assert not is_open(HOURS, "Europe/Berlin", {date(2026, 11, 23)}, when)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mon-fri", "needs days and time ranges"),
        ("someday 09:00-10:00", "is not a day"),
        ("mon 9-10", "is not a time"),
        ("mon 25:00-26:00", "is not a time"),
        ("mon 10:00-10:00", "empty range"),
        ("mon 10:00", "not a time range"),
        ("x" * 2001, "longer than 2000"),
    ],
)
def test_bad_hours_are_named(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_hours(text)


def test_patterns() -> None:
    assert pattern_regex("_8800X.").fullmatch("88001234")
    assert not pattern_regex("_8800X.").fullmatch("8800")
    assert pattern_regex("_[2-7]XXXXXX").fullmatch("2345678")
    assert not pattern_regex("_[2-7]XXXXXX").fullmatch("1345678")
    assert pattern_regex("_NXX!").fullmatch("200")
    assert pattern_regex("+7").fullmatch("+79161234567")  # a literal prefix
    assert pattern_regex("_1.X").pattern == "1.+[0-9]"
    with pytest.raises(ValueError, match="unclosed"):
        pattern_regex("_[12")


def test_classify_first_rule_wins_and_unknown_numbers_are_restrictive() -> None:
    rules = [CallTypeRule(1, 1, "_8800X.", "premium"), CallTypeRule(2, 2, "_8X.", "long_distance")]
    assert classify("880012", rules, internal=False) == "premium"
    assert classify("8123", rules, internal=False) == "long_distance"
    assert classify("+44123", rules, internal=False) == "international"
    assert classify("0044123", rules, internal=False) == "international"
    assert classify("5555", rules, internal=False) == "long_distance"
    assert classify("88001", rules, internal=True) == "internal"


def test_check() -> None:
    g = f.group(1, "g", allowed_call_types="local,mobile", daily_call_quota=3, daily_minute_quota=1)
    assert check(g, "local", calls_today=2, seconds_today=59) is None
    assert check(g, "premium", calls_today=0, seconds_today=0) == "call type premium is not allowed for group g"
    assert "call quota" in (check(g, "local", calls_today=3, seconds_today=0) or "")
    assert "minute quota" in (check(g, "local", calls_today=0, seconds_today=60) or "")
    assert check(g, "emergency", calls_today=9, seconds_today=999) is None
    assert check(None, "premium", calls_today=9, seconds_today=999) is None
