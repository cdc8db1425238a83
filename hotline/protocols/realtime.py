"""res_config_curl wire format, without I/O: parse Asterisk's realtime requests, encode the answers.

Responsibility: turn the body (and URL query) Asterisk POSTs to `<base>/<op>` into a `RealtimeRequest`,
encode rows and counts the way Asterisk decodes them, and evaluate the lookup conditions Asterisk sends
(`=`, `!=`, `LIKE`, `<=`, ...) against a row held in memory.  The HTTP server and the tables live
elsewhere (asterisk-reference.md §1.2-1.4, `res/res_config_curl.c`).

Wire rules this module relies on:
- Asterisk %-encodes every byte but `A-Za-z0-9-_.!~*'()` (`ast_uri_encode` with `ast_uri_http`) and
  decodes `%XX` only: a space is `%20` both ways and `+` is a literal `+`.  Python's `urlencode` and
  `parse_qsl` use `+` for spaces, so they are not used here.
- An operator travels inside the field name after a space: `id LIKE`, `expiration_time <=`.
- `destroy` bodies end with a stray `&` (`id=foo&`); `update` puts its lookup in the URL query, and
  the broken `update2` adds a leading `&`: empty segments are ignored everywhere.

Invariants:
- Parsing is strict and bounded: a body over `max_body` bytes, more than `max_fields` fields, a bad
  %-escape, bytes that are not UTF-8, a NUL, an unknown operator or an invalid column name raise
  `RealtimeProtocolError` with a message naming the field.  Nothing half-decoded is ever stored.
- Encoding never uses `+` for a space, and a row is always one line (CR and LF are %-encoded).
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import quote, unquote_to_bytes

from hotline.errors import RealtimeProtocolError

__all__ = [
    "OPERATORS",
    "OPS",
    "REQUIRE_TYPES",
    "Condition",
    "Op",
    "RealtimeRequest",
    "encode_count",
    "encode_row",
    "encode_rows",
    "encode_static",
    "match_like",
    "parse_request",
    "row_matches",
]

Op = Literal["single", "multi", "store", "update", "destroy", "require", "static"]
OPS: Final[tuple[Op, ...]] = ("single", "multi", "store", "update", "destroy", "require", "static")
OPERATORS: Final = ("=", "!=", "LIKE", "NOT LIKE", "<", "<=", ">", ">=")
# The types require_curl() names (res_config_curl.c).
REQUIRE_TYPES: Final = frozenset(
    ["char", "date", "datetime", "float"] + [f"{sign}integer{n}" for sign in ("", "u") for n in (1, 2, 3, 4, 8)]
)


class Condition(NamedTuple):
    column: str
    op: str
    value: str


@dataclass(frozen=True)
class RealtimeRequest:
    op: str
    conditions: tuple[Condition, ...] = ()
    values: tuple[tuple[str, str], ...] = ()
    requirements: tuple[tuple[str, str, int], ...] = ()
    file: str | None = None


_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_OPERATOR_SET: Final = frozenset(OPERATORS)
_SIZE = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# What quote(safe="") leaves as is (RFC 3986 unreserved).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


# -- parsing ---------------------------------------------------------------------------------------


def parse_request(
    op: str,
    body: bytes,
    query: str = "",
    *,
    max_body: int = 65536,
    max_fields: int = 256,
) -> RealtimeRequest:
    """Parse one res_config_curl request: `op` is the last URL path segment, `query` the URL query."""
    if op not in OPS:
        raise RealtimeProtocolError(f"unknown realtime operation {op!r}")
    if len(body) > max_body:
        raise RealtimeProtocolError(f"realtime {op} body is {len(body)} bytes; the limit is {max_body}")
    if len(query) > max_body:
        raise RealtimeProtocolError(f"realtime {op} query is {len(query)} bytes; the limit is {max_body}")
    pairs = _decode_form(body, op, "body", max_fields)
    if op == "single" or op == "multi":
        conditions = tuple(_condition(name, value) for name, value in pairs)
        if op == "single" and not conditions:
            raise RealtimeProtocolError("realtime single: no lookup field in the body")
        return RealtimeRequest(op, conditions=conditions)
    if op == "store":
        if not pairs:
            raise RealtimeProtocolError("realtime store: empty body")
        return RealtimeRequest(op, values=tuple((_plain_column(n, op), v) for n, v in pairs))
    if op == "update":
        lookup = _decode_form(_query_bytes(query, op), op, "URL query", max_fields)
        if not lookup:
            raise RealtimeProtocolError("realtime update: no lookup field in the URL query (?id=...)")
        if not pairs:
            raise RealtimeProtocolError("realtime update: no field to set in the body")
        return RealtimeRequest(
            op,
            conditions=tuple(_condition(n, v) for n, v in lookup),
            values=tuple((_plain_column(n, op), v) for n, v in pairs),
        )
    if op == "destroy":
        # The first pair is the key field, further pairs are extra conditions.
        if not pairs:
            raise RealtimeProtocolError("realtime destroy: no key field in the body")
        return RealtimeRequest(op, conditions=tuple(_condition(n, v) for n, v in pairs))
    if op == "require":
        return RealtimeRequest(op, requirements=tuple(_requirement(n, v) for n, v in pairs))
    # static: GET <url>/static?file=<name>
    params = _decode_form(_query_bytes(query, op), op, "URL query", max_fields)
    files = [v for n, v in params if n == "file"]
    if len(files) != 1 or not files[0]:
        raise RealtimeProtocolError("realtime static: the URL query must hold exactly one non-empty file=")
    return RealtimeRequest(op, file=files[0])


def _query_bytes(query: str, op: str) -> bytes:
    try:
        return query.encode("ascii")
    except UnicodeEncodeError:
        raise RealtimeProtocolError(f"realtime {op}: URL query is not ASCII") from None


def _decode_form(data: bytes, op: str, where: str, max_fields: int) -> list[tuple[str, str]]:
    bad = _BAD_ESCAPE.search(data)
    if bad is not None:
        shown = data[bad.start() : bad.start() + 3]
        raise RealtimeProtocolError(f"realtime {op}: invalid %-escape {shown!r} in the {where}")
    # Empty segments come from destroy's trailing '&' and update2's leading '&'.
    segments = [s for s in data.split(b"&") if s]
    if len(segments) > max_fields:
        raise RealtimeProtocolError(f"realtime {op}: more than {max_fields} fields in the {where}")
    pairs: list[tuple[str, str]] = []
    for number, segment in enumerate(segments, 1):
        raw_name, sep, raw_value = segment.partition(b"=")
        if not sep:
            raise RealtimeProtocolError(f"realtime {op}: field {number} of the {where} has no '='")
        name = _text(raw_name, op, f"name of field {number}")
        pairs.append((name, _text(raw_value, op, f"value of field {name!r}")))
    return pairs


def _text(raw: bytes, op: str, what: str) -> str:
    data = unquote_to_bytes(raw) if b"%" in raw else raw
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RealtimeProtocolError(f"realtime {op}: {what} is not valid UTF-8") from None
    if "\x00" in text:
        # Asterisk builds these strings in C: a NUL can only be forged, and no database column takes it.
        raise RealtimeProtocolError(f"realtime {op}: {what} contains a NUL byte")
    return text


@functools.lru_cache(maxsize=1024)
def _split_name(name: str) -> tuple[str, str]:
    """`"id LIKE"` -> `("id", "LIKE")`; `"id"` -> `("id", "=")`.  Raises ValueError with the reason."""
    column, _, operator = name.partition(" ")
    if not _COLUMN.fullmatch(column):
        raise ValueError(f"invalid column name {column!r}")
    if not _:
        return column, "="
    normalized = operator.upper()
    if normalized not in _OPERATOR_SET:
        raise ValueError(f"unknown operator {operator!r} on column {column!r}")
    return column, normalized


def _condition(name: str, value: str) -> Condition:
    try:
        column, operator = _split_name(name)
    except ValueError as exc:
        raise RealtimeProtocolError(f"realtime lookup: {exc}") from None
    return Condition(column, operator, value)


def _plain_column(name: str, op: str) -> str:
    if _COLUMN.fullmatch(name):
        return name
    try:
        _split_name(name)
    except ValueError:
        raise RealtimeProtocolError(f"realtime {op}: invalid column name {name!r}") from None
    raise RealtimeProtocolError(f"realtime {op}: field {name!r} carries an operator")


def _requirement(name: str, value: str) -> tuple[str, str, int]:
    column = _plain_column(name, "require")
    kind, sep, size = value.partition(":")
    if not sep or kind not in REQUIRE_TYPES or not _SIZE.fullmatch(size):
        raise RealtimeProtocolError(
            f"realtime require: column {column!r} wants {value!r}, expected <type>:<size> "
            f"with type one of {', '.join(sorted(REQUIRE_TYPES))}"
        )
    return column, kind, int(size)


# -- encoding --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _quote_key(key: str) -> str:
    return _quote(key)


def _quote(text: str) -> str:
    if _UNRESERVED.fullmatch(text):
        return text  # nothing to escape (most values: ids, yes/no, numbers)
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:
        raise RealtimeProtocolError(f"realtime: cannot encode {text[:40]!r} as UTF-8") from None


def encode_row(pairs: Iterable[tuple[str, str]]) -> str:
    """One record line `k=v&k=v`, %-encoded with `%20` for spaces (never `+`) and no raw CR/LF."""
    return "&".join(f"{_quote_key(k)}={_quote(v)}" for k, v in pairs)


def encode_rows(rows: Iterable[Iterable[tuple[str, str]]]) -> str:
    """The body of a `multi` answer: one record per line."""
    return "\n".join(encode_row(row) for row in rows)


def encode_count(n: int) -> str:
    """The body of a store/update/destroy/require answer (Asterisk reads it with sscanf/atoi)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"count must be an int, not {type(n).__name__}")
    return str(n)


def encode_static(lines: Iterable[tuple[str, int, str, str]]) -> str:
    """The body of a `static` answer from (category, cat_metric, var_name, var_val), in file order."""
    return "\n".join(
        encode_row((("category", c), ("cat_metric", str(m)), ("var_name", n), ("var_val", v))) for c, m, n, v in lines
    )


# -- matching --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _like_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def match_like(value: str, pattern: str) -> bool:
    """SQL `value LIKE pattern`: `%` any run, `_` one character, `\\` escapes; case-sensitive."""
    if "%" not in pattern and "_" not in pattern and "\\" not in pattern:
        return value == pattern
    return _like_regex(pattern).fullmatch(value) is not None


def _number(text: str) -> int | float | None:
    # (int() refuses more than 4300 digits; such a number is compared as a float)
    if len(text) <= 300 and _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        return float(text)
    return None


_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare(left: str, op: str, right: str) -> bool:
    """Numbers compare as numbers (`expiration_time <= 1764000000`), anything else as strings."""
    a = _number(left)
    b = _number(right) if a is not None else None
    if a is not None and b is not None:
        return _ORDER[op](a, b)
    return _ORDER[op](left, right)


def row_matches(row: Mapping[str, str], conditions: Iterable[Condition]) -> bool:
    """True when `row` meets every condition.  A missing column is SQL NULL: no condition matches it."""
    for column, op, value in conditions:
        have = row.get(column)
        if have is None:
            return False
        if op == "=":
            ok = have == value
        elif op == "!=":
            ok = have != value
        elif op == "LIKE":
            ok = match_like(have, value)
        elif op == "NOT LIKE":
            ok = not match_like(have, value)
        elif op in _ORDER:
            ok = _compare(have, op, value)
        else:
            raise RealtimeProtocolError(f"unknown realtime operator {op!r}")
        if not ok:
            return False
    return True
