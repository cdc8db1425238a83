"""Limits per agent group: what kind of number is dialled, and whether the group may dial it.

`classify(number, rules, internal)` gives the call type: 'internal' for numbers of our own (phones,
agents, DIDs, service numbers), else the first `CallTypeRule` (by position) whose pattern matches.
Patterns follow Asterisk's extension syntax when they start with `_` (X = 0-9, Z = 1-9, N = 2-9,
[15-7] a set, `.` one or more of anything, `!` zero or more) and are plain prefixes otherwise.
A number no rule matches is 'international' when it starts with + or 00, else 'long_distance':
unknown numbers fall on the restrictive side.

`check(...)` returns None when the call may be placed, else the refusal reason (journaled and spoken).
Pure: no I/O, no clock; quota usage comes in as numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from hotline.domain.config import AgentGroup, CallTypeRule

_SET = re.compile(r"\[([0-9*#+-]+)\]")


@lru_cache(maxsize=1024)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The compiled form of an Asterisk-style pattern or a literal prefix."""
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern) + ".*")
    out: list[str] = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "[":
            end = body.find("]", i)
            if end < 0:
                raise ValueError(f"unclosed [ in pattern {pattern!r}")
            out.append("[" + re.sub(r"[^0-9*#+-]", "", body[i + 1 : end]) + "]")
            i = end + 1
            continue
        out.append({"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(ch.upper(), re.escape(ch)))
        i += 1
    return re.compile("".join(out))


def classify(number: str, rules: Iterable[CallTypeRule], internal: bool) -> str:
    if internal:
        return "internal"
    for rule in rules:
        if pattern_regex(rule.pattern).fullmatch(number):
            return rule.call_type
    return "international" if number.startswith(("+", "00")) else "long_distance"


def check(
    group: AgentGroup | None,
    call_type: str,
    *,
    calls_today: int,
    seconds_today: int,
) -> str | None:
    """None = allowed; else why not.  Agents without a group have no limits but emergency is always open."""
    if call_type in ("emergency", "internal") or group is None:
        return None
    if call_type not in group.call_types:
        return f"call type {call_type} is not allowed for group {group.name}"
    if group.daily_call_quota is not None and calls_today >= group.daily_call_quota:
        return f"daily call quota of group {group.name} reached ({calls_today}/{group.daily_call_quota})"
    if group.daily_minute_quota is not None and seconds_today >= group.daily_minute_quota * 60:
        used, quota = seconds_today // 60, group.daily_minute_quota
        return f"daily minute quota of group {group.name} reached ({used}/{quota} min)"
    return None
