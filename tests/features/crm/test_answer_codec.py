"""The pure parts of the caller lookup: the CRM answer codec and the caller-name sanitiser."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.errors import ProtocolError
from hotline.features.crm import CrmAnswer, parse_crm_answer, sanitize_caller_name


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Ivan Petrov", "Ivan Petrov"),
        ('Ivan "The Boss" Petrov', "Ivan The Boss Petrov"),
        ("O'Brien", "O\u2019Brien"),
        ("back\\slash`tick", "backslashtick"),
        ("line\nbreak\ttab\r\x00nul\x7fdel", "line break tab nul del"),
        ("  lots   of\u00a0 space  ", "lots of space"),
        ("bidi\u202eoverride\u200bzero-width", "bidioverridezero-width"),
        ("para\u2029graph", "para graph"),
        ("Оператор Иванов 🎧", "Оператор Иванов 🎧"),
        ("x" * 100, "x" * 80),
        ("x" * 79 + " y", "x" * 79),
        ("", None),
        ('""\n\t', None),
        (None, None),
        (42, None),
    ],
)
def test_sanitize_caller_name(raw: object, clean: str | None) -> None:
    assert sanitize_caller_name(raw) == clean


@given(st.text())
def test_sanitized_names_are_always_safe(raw: str) -> None:
    name = sanitize_caller_name(raw)
    if name is not None:
        assert 0 < len(name) <= 80
        assert name == name.strip()
        assert not any(c in name for c in "\"\\'`")
        assert all(c.isprintable() for c in name)


def test_a_full_answer() -> None:
    body = {
        "found": True,
        "name": "Acme",
        "fields": {"account": "A-1", "open_tickets": 3, "balance": -1.5, "vip": True, "manager": None},
        "url": "https://crm.example/accounts/A-1",
        "ignored": {"unknown": "keys are fine"},
    }
    answer = parse_crm_answer(json.dumps(body).encode())
    assert (answer.found, answer.name, dict(answer.fields), answer.url) == (
        True,
        "Acme",
        body["fields"],
        "https://crm.example/accounts/A-1",
    )


@pytest.mark.parametrize(
    ("body", "found"),
    [({}, False), ({"name": None}, False), ({"fields": {"a": 1}}, True), ({"name": "x", "found": False}, False)],
)
def test_found_defaults_to_having_data(body: dict[str, object], found: bool) -> None:
    assert parse_crm_answer(json.dumps(body).encode()).found is found


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_protocol_error(data: bytes) -> None:
    try:
        answer = parse_crm_answer(data)
    except ProtocolError:
        return
    assert_well_formed(answer)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_any_json_parses_or_raises_protocol_error(value: object) -> None:
    try:
        answer = parse_crm_answer(json.dumps(value).encode())
    except ProtocolError:
        return
    assert_well_formed(answer)


def assert_well_formed(answer: CrmAnswer) -> None:
    assert answer.name is None or isinstance(answer.name, str)
    assert len(answer.fields) <= 50
    for key, value in answer.fields.items():
        assert isinstance(key, str) and 0 < len(key) <= 64
        assert value is None or isinstance(value, str | int | float | bool)
        assert not isinstance(value, float) or math.isfinite(value)
