"""Business hours as text, parsed once and checked without I/O.

Format (one rule per `;`): `<days> <from>-<to>[, <from>-<to>...]`, days as `mon`, `mon-fri`, `sat,sun` or
`*`; times 24-hour `HH:MM`, `24:00` allowed as an end.  Example: `mon-fri 09:00-13:00,14:00-18:00; sat
10:00-14:00`.  An empty text means "never open".  A range that ends before it starts crosses midnight
(`fri 22:00-02:00` is open Friday night until 02:00 Saturday).

`is_open(hours, tz, holidays, now)` answers in the condition's own time zone (zoneinfo names); holidays
(dates in that zone) are closed all day.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotline.errors import ValidationError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


@dataclass(frozen=True, slots=True)
class Window:
    weekday: int  # 0 = Monday
    start: int  # minutes since midnight
    end: int  # minutes since midnight, may be > 1440 when the window crosses midnight


def _minutes(text: str, field: str) -> int:
    m = _TIME.match(text)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValidationError(field, f"{text!r} is not a time HH:MM")
    return int(m.group(1)) * 60 + int(m.group(2))


def _days(text: str, field: str) -> list[int]:
    if text == "*":
        return list(range(7))
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        if a not in DAYS or (b and b not in DAYS):
            raise ValidationError(field, f"{part!r} is not a day or day range (mon..sun)")
        i, j = DAYS.index(a), DAYS.index(b or a)
        out += list(range(i, j + 1)) if i <= j else [*range(i, 7), *range(0, j + 1)]
    return out


@lru_cache(maxsize=256)
def parse_hours(text: str, field: str = "hours") -> tuple[Window, ...]:
    if len(text) > 2000:
        raise ValidationError(field, "is longer than 2000 characters")
    windows: list[Window] = []
    for rule in (r.strip().lower() for r in text.split(";")):
        if not rule:
            continue
        days, _, ranges = rule.partition(" ")
        if not ranges.strip():
            raise ValidationError(field, f"rule {rule!r} needs days and time ranges, e.g. 'mon-fri 09:00-18:00'")
        for rng in ranges.replace(" ", "").split(","):
            a, sep, b = rng.partition("-")
            if not sep:
                raise ValidationError(field, f"{rng!r} is not a time range HH:MM-HH:MM")
            start, end = _minutes(a, field), _minutes(b, field)
            if start == end:
                raise ValidationError(field, f"{rng!r} is an empty range")
            if end < start:
                end += 24 * 60
            windows += [Window(d, start, end) for d in _days(days, field)]
    return tuple(windows)


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(field, f"{name!r} is not a known time zone") from exc


def is_open(hours: str, tz: str, holidays: Collection[date], now: datetime) -> bool:
    """True when `now` (aware) falls in one of the windows and its local date is not a holiday."""
    local = now.astimezone(zone(tz))
    if local.date() in holidays:
        return False
    minute = local.hour * 60 + local.minute
    windows = parse_hours(hours)
    for w in windows:
        if w.weekday == local.weekday() and w.start <= minute < w.end:
            return True
        # yesterday's window that crosses midnight into today (unless today is a holiday: handled above)
        if w.end > 1440 and w.weekday == (local.weekday() - 1) % 7 and minute < w.end - 1440:
            yesterday = (local - timedelta(days=1)).date()
            if yesterday not in holidays:
                return True
    return False
