"""XML-RPC wire format, without I/O: parse a `<methodCall>` body, encode a `<methodResponse>` or a fault.

Responsibility: turn the bytes a client POSTs to `/RPC2` into a `MethodCall` (method name and parameter
values), and encode what a method returns (or a fault) as bytes.  The HTTP endpoint, authentication and
dispatch live in `hotline.web.rpc`; the wire rules for users are in docs/xmlrpc.md.

Parsing uses defusedxml's `DefusedExpatParser` (expat with DTDs, entity declarations and external
references refused) feeding the standard library's `xmlrpc.client.Unmarshaller`, wrapped in a target that
checks the XML-RPC grammar, every scalar's lexical form and the limits *before* the Unmarshaller sees an
event.  Nothing is monkey-patched: the parser is built per request.

Invariants:
- `parse_request` returns a `MethodCall` or raises `XMLRPCRequestError`, never anything else, for any
  bytes: a body over `max_bytes`, containers nested deeper than `max_depth`, more than `max_items` values,
  a DTD, an entity, bytes that are not well-formed XML in their declared encoding, an element XML-RPC does
  not define where it stands, text where none belongs, a scalar in a wrong lexical form or out of range.
  The error carries the XML-RPC fault code that describes it (`fault_code`) and a message naming the
  element (and line) at fault.
- The Unmarshaller is lenient (it ignores unknown elements and accepts `1_000` or Arabic digits as an
  int); the grammar table and the lexical checks here are what make the parser strict.
- Encoding writes only what every XML-RPC client reads: `int` within i4, finite `double`, `string`
  (with `&`, `<`, `>` and CR escaped so a CR survives XML's end-of-line normalisation), `boolean`,
  `dateTime.iso8601` in UTC, `base64`, `array`, `struct` with string keys, and `nil` (the common
  extension; Python's xmlrpc.client reads it).  Anything else raises `XMLRPCEncodeError` naming the path
  of the value (`result['calls'][3]`), so a method cannot leak an object's `__dict__` the way
  `xmlrpc.client.dumps` would.
- Integers outside i4 (-2**31 .. 2**31-1) are refused rather than silently turned into `<i8>` or a string:
  Python's own xmlrpc.client refuses to send them and many clients cannot read `<i8>`, and a field whose
  type depends on its magnitude breaks typed clients.  A method whose value may exceed i4 (an id, epoch
  milliseconds, a byte count) declares it as `string` (or `double`) and converts it itself.
- dateTime values carry no zone on the wire; Hotline sends and reads UTC.  An aware datetime is converted
  to UTC, a naive one is taken as UTC already; parsed dateTimes are aware (UTC).  Sub-seconds are dropped.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, NamedTuple, TypeAlias, cast
from xml.parsers import expat
from xmlrpc.client import ResponseError, Unmarshaller

from defusedxml.common import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.xmlrpc import DefusedExpatParser

from hotline.errors import HotlineError, ProtocolError

__all__ = [
    "I4_MAX",
    "I4_MIN",
    "INTERNAL_ERROR",
    "INVALID_CHARACTER",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "UNSUPPORTED_ENCODING",
    "MethodCall",
    "Value",
    "XMLRPCEncodeError",
    "XMLRPCRequestError",
    "check_value",
    "dump_fault",
    "dump_response",
    "parse_request",
]

# Fault codes of the "specification for fault code interoperability" (xmlrpc-epi), used by most servers.
PARSE_ERROR: Final = -32700  # not well-formed XML
UNSUPPORTED_ENCODING: Final = -32701
INVALID_CHARACTER: Final = -32702  # a character not allowed by the document's encoding or by XML
INVALID_REQUEST: Final = -32600  # well-formed XML but not a valid XML-RPC request (or over a limit)
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

I4_MIN: Final = -(2**31)
I4_MAX: Final = 2**31 - 1
_I8_MIN: Final = -(2**63)
_I8_MAX: Final = 2**63 - 1
_MAX_METHOD_NAME: Final = 128
_MAX_ENCODE_DEPTH: Final = 64

# A recursive alias: what a parameter or a result may be.
Value: TypeAlias = "bool | int | float | str | bytes | datetime | list[Value] | dict[str, Value] | None"


class XMLRPCRequestError(ProtocolError):
    """A request body that is not a valid, safe XML-RPC `<methodCall>`; `fault_code` says which kind."""

    def __init__(self, fault_code: int, message: str) -> None:
        super().__init__(message)
        self.fault_code = fault_code
        self.message = message


class XMLRPCEncodeError(HotlineError):
    """A value XML-RPC cannot carry (a bug in the method returning it); the message names its path."""


class MethodCall(NamedTuple):
    method: str
    params: tuple[Value, ...]


# -- parsing ---------------------------------------------------------------------------------------------

_SCALARS: Final = frozenset(["i4", "int", "i8", "boolean", "string", "double", "dateTime.iso8601", "base64", "nil"])
# Which children each element may have (the XML-RPC grammar); scalars, <name> and <methodName> have none.
_CHILDREN: Final[Mapping[str, frozenset[str]]] = {
    "methodCall": frozenset(["methodName", "params"]),
    "params": frozenset(["param"]),
    "param": frozenset(["value"]),
    "value": _SCALARS | {"array", "struct"},
    "array": frozenset(["data"]),
    "data": frozenset(["value"]),
    "struct": frozenset(["member"]),
    "member": frozenset(["name", "value"]),
}
# Elements whose text is data; elsewhere only whitespace may appear between elements.
_TEXT_ELEMENTS: Final = _SCALARS | {"value", "name", "methodName"}
# Apache XML-RPC sends its extensions with a namespace prefix (<ex:nil/>, <ex:i8>).
_PREFIXED: Final = frozenset(["nil", "i8"])
# The sequence of children an element must have when it closes.
_SHAPES: Final[Mapping[str, tuple[tuple[str, ...], ...]]] = {
    "methodCall": (("methodName",), ("methodName", "params")),
    "param": (("value",),),
    "member": (("name", "value"),),
    "array": (("data",),),
}

_WS: Final = "[ \t\r\n]*"
_INT = re.compile(f"{_WS}[+-]?[0-9]{{1,20}}{_WS}")
_DOUBLE = re.compile(rf"{_WS}[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{{1,4}})?{_WS}")
_DATETIME = re.compile("[0-9]{8}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_BASE64_WS = re.compile("[ \t\r\n]+")
_METHOD_NAME = re.compile("[A-Za-z0-9_.:/]+")

# expat.errors.XML_ERROR_* are the messages; `codes` maps them to the numbers ExpatError.code holds.
_ENCODING_ERRORS: Final = frozenset(
    expat.errors.codes[m] for m in (expat.errors.XML_ERROR_UNKNOWN_ENCODING, expat.errors.XML_ERROR_INCORRECT_ENCODING)
)
# (Bytes that are not valid in the document's encoding are expat's generic "invalid token": -32700.)
_CHARACTER_ERRORS: Final = frozenset(
    expat.errors.codes[m] for m in (expat.errors.XML_ERROR_BAD_CHAR_REF, expat.errors.XML_ERROR_PARTIAL_CHAR)
)


@dataclass
class _Open:
    tag: str
    children: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class _CheckedUnmarshaller(Unmarshaller):
    """Checks each event against the grammar and the limits, then lets the Unmarshaller convert it."""

    def __init__(self, max_depth: int, max_items: int) -> None:
        super().__init__(use_builtin_types=True)
        self._max_depth = max_depth
        self._max_items = max_items
        self._open: list[_Open] = []
        self._containers = 0
        self._values = 0
        self.expat: expat.XMLParserType | None = None  # set by parse_request; read for error positions

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        name = _local(tag)
        if not self._open:
            if name != "methodCall":
                raise _invalid(self, f"the root element must be <methodCall>, not <{tag}>")
        else:
            parent = self._open[-1]
            if name not in _CHILDREN.get(parent.tag, ()):
                raise _invalid(self, f"<{tag}> is not allowed inside <{parent.tag}>")
            if parent.tag == "value" and parent.children:
                raise _invalid(self, "a <value> holds one element")
            parent.children.append(name)
        if name == "value":
            self._values += 1
            if self._values > self._max_items:
                raise XMLRPCRequestError(INVALID_REQUEST, f"more than {self._max_items} values in the request")
        elif name in ("array", "struct"):
            self._containers += 1
            if self._containers > self._max_depth:
                raise XMLRPCRequestError(
                    INVALID_REQUEST, f"arrays and structs nested deeper than {self._max_depth} levels"
                )
        self._open.append(_Open(name))
        super().start(tag, attrs)

    def data(self, text: str) -> None:
        current = self._open[-1] if self._open else None
        if current is not None and current.tag in _TEXT_ELEMENTS:
            current.text.append(text)
        elif text.strip(" \t\r\n"):
            where = f"inside <{current.tag}>" if current else "outside the root element"
            raise _invalid(self, f"unexpected text {text.strip()[:20]!r} {where}")
        super().data(text)

    def end(self, tag: str) -> None:
        element = self._open.pop()
        name = element.tag
        text = "".join(element.text)
        shapes = _SHAPES.get(name)
        if shapes is not None and tuple(element.children) not in shapes:
            expected = " or ".join("".join(f"<{c}>" for c in shape) for shape in shapes)
            raise _invalid(self, f"<{name}> must contain {expected}")
        if name == "value" and element.children and text.strip(" \t\r\n"):
            raise _invalid(self, "a <value> holds either text or one element, not both")
        if name in _SCALARS or name == "methodName":
            _check_scalar(self, name, text)
        elif name in ("array", "struct"):
            self._containers -= 1
        super().end(tag)


def _local(tag: str) -> str:
    if ":" in tag:
        _prefix, _, local = tag.partition(":")
        if local in _PREFIXED:
            return local
    return tag


def _invalid(target: _CheckedUnmarshaller, message: str, code: int = INVALID_REQUEST) -> XMLRPCRequestError:
    if target.expat is None:
        return XMLRPCRequestError(code, message)
    line, column = target.expat.CurrentLineNumber, target.expat.CurrentColumnNumber
    return XMLRPCRequestError(code, f"{message} (line {line}, column {column + 1})")


def _check_scalar(target: _CheckedUnmarshaller, name: str, text: str) -> None:
    if name in ("i4", "int", "i8"):
        low, high = (_I8_MIN, _I8_MAX) if name == "i8" else (I4_MIN, I4_MAX)
        if not _INT.fullmatch(text):
            raise _invalid(target, f"<{name}> must be an optional sign and decimal digits, not {text[:30]!r}")
        if not low <= int(text) <= high:
            raise _invalid(target, f"<{name}> value {text.strip()} is out of range")
    elif name == "double":
        if not _DOUBLE.fullmatch(text):
            raise _invalid(target, f"<double> must be a decimal number, not {text[:30]!r}")
        if not math.isfinite(float(text)):
            raise _invalid(target, f"<double> value {text.strip()} is out of range")
    elif name == "boolean":
        if text not in ("0", "1"):
            raise _invalid(target, f"<boolean> must be 0 or 1, not {text[:30]!r}")
    elif name == "dateTime.iso8601":
        try:
            if not _DATETIME.fullmatch(text):
                raise ValueError
            datetime.strptime(text, "%Y%m%dT%H:%M:%S")
        except ValueError:
            raise _invalid(target, f"<dateTime.iso8601> must be a date YYYYMMDDTHH:MM:SS, not {text[:30]!r}") from None
    elif name == "base64":
        try:
            base64.b64decode(_BASE64_WS.sub("", text), validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(target, "<base64> is not valid base64") from None
    elif name == "nil":
        if text.strip(" \t\r\n"):
            raise _invalid(target, "<nil/> must be empty")
    elif name == "methodName" and (len(text) > _MAX_METHOD_NAME or not _METHOD_NAME.fullmatch(text)):
        raise _invalid(
            target,
            f"<methodName> must be 1 to {_MAX_METHOD_NAME} of A-Z a-z 0-9 _ . : /, not {text[:40]!r}",
        )


def parse_request(body: bytes, *, max_bytes: int, max_depth: int, max_items: int) -> MethodCall:
    """Parse a whole `<methodCall>` body; raise `XMLRPCRequestError` (with a fault code) if it is not one.

    `max_bytes` caps the body, `max_depth` how deeply arrays and structs nest, `max_items` the number of
    `<value>` elements (parameters, array items and struct members together).
    """
    if len(body) > max_bytes:
        raise XMLRPCRequestError(INVALID_REQUEST, f"request body larger than {max_bytes} bytes")
    target = _CheckedUnmarshaller(max_depth, max_items)
    parser = DefusedExpatParser(target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    # Messages name the line and column of the event at fault, which only the expat object knows.
    # ExpatParser keeps its expat object in `_parser` (CPython since 2.0; defusedxml relies on it too).
    target.expat = parser._parser  # type: ignore[attr-defined]
    try:
        parser.feed(body)
        parser.close()
        params = target.close()
        method = target.getmethodname()
    except XMLRPCRequestError:
        raise
    except DTDForbidden:
        raise XMLRPCRequestError(INVALID_REQUEST, "a DTD (<!DOCTYPE>) is not allowed in XML-RPC") from None
    except EntitiesForbidden as exc:
        raise XMLRPCRequestError(INVALID_REQUEST, f"entity declarations are not allowed ({exc.name!r})") from None
    except ExternalReferenceForbidden:
        raise XMLRPCRequestError(INVALID_REQUEST, "external entity references are not allowed") from None
    except DefusedXmlException as exc:  # a future defusedxml refusal
        raise XMLRPCRequestError(INVALID_REQUEST, f"forbidden XML construct: {exc}") from None
    except LookupError as exc:  # pyexpat asks Python's codecs for an encoding expat lacks
        raise XMLRPCRequestError(UNSUPPORTED_ENCODING, f"unsupported encoding: {exc}") from None
    except expat.ExpatError as exc:
        code = (
            UNSUPPORTED_ENCODING
            if exc.code in _ENCODING_ERRORS
            else INVALID_CHARACTER
            if exc.code in _CHARACTER_ERRORS
            else PARSE_ERROR
        )
        raise XMLRPCRequestError(code, f"not well-formed XML: {exc}") from None
    except (ResponseError, ValueError, TypeError, IndexError, KeyError) as exc:
        if isinstance(exc, ValueError) and "multi-byte encodings" in str(exc):
            # pyexpat's fallback for encodings expat lacks handles single-byte codecs only
            raise XMLRPCRequestError(UNSUPPORTED_ENCODING, f"unsupported encoding: {exc}") from None
        # The grammar checks above make these unreachable in practice; they stay errors of the request.
        raise XMLRPCRequestError(INVALID_REQUEST, f"invalid XML-RPC request: {exc!r}") from None
    if method is None:  # the grammar requires <methodName>; kept for the type checker
        raise XMLRPCRequestError(INVALID_REQUEST, "<methodName> is missing")
    return MethodCall(method, tuple(_utc(cast(Value, value)) for value in params))


def _utc(value: Value) -> Value:
    # The Unmarshaller gives naive datetimes; on Hotline's wire they are UTC.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC)
    if isinstance(value, list):
        return [_utc(item) for item in value]
    if isinstance(value, dict):
        return {key: _utc(item) for key, item in value.items()}
    return value


# -- encoding --------------------------------------------------------------------------------------------

# XML 1.0 cannot carry these code points at all (not even as character references).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_TO_ESCAPE = re.compile("[&<>\r]")


def _escape(text: str, path: str) -> str:
    bad = _NOT_XML.search(text)
    if bad is not None:
        raise XMLRPCEncodeError(
            f"{path}: the string holds U+{ord(bad.group()):04X}, which XML cannot carry; send such data as base64"
        )
    return _TO_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)


def _format_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value.year:04d}{value.month:02d}{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"


def _encode(value: object, path: str, out: list[str], seen: list[int]) -> None:
    if value is None:
        out.append("<value><nil/></value>")
    elif isinstance(value, bool):
        out.append(f"<value><boolean>{int(value)}</boolean></value>")
    elif isinstance(value, int):
        if not I4_MIN <= value <= I4_MAX:
            raise XMLRPCEncodeError(
                f"{path}: integer {value} is outside XML-RPC's i4 range; declare the value as a string (or double)"
            )
        out.append(f"<value><int>{int(value)}</int></value>")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise XMLRPCEncodeError(f"{path}: {value} is not a finite number; XML-RPC's double cannot carry it")
        out.append(f"<value><double>{float(value)!r}</double></value>")
    elif isinstance(value, str):
        out.append(f"<value><string>{_escape(value, path)}</string></value>")
    elif isinstance(value, bytes | bytearray | memoryview):
        out.append(f"<value><base64>{base64.b64encode(value).decode('ascii')}</base64></value>")
    elif isinstance(value, datetime):
        out.append(f"<value><dateTime.iso8601>{_format_datetime(value)}</dateTime.iso8601></value>")
    elif isinstance(value, Mapping | list | tuple):
        if len(seen) >= _MAX_ENCODE_DEPTH:
            raise XMLRPCEncodeError(f"{path}: nested deeper than {_MAX_ENCODE_DEPTH} levels")
        if id(value) in seen:
            raise XMLRPCEncodeError(f"{path}: the value contains itself")
        seen.append(id(value))
        if isinstance(value, Mapping):
            out.append("<value><struct>")
            for key, item in value.items():
                if not isinstance(key, str):
                    raise XMLRPCEncodeError(f"{path}: struct key {key!r} is not a string")
                out.append(f"<member><name>{_escape(key, path)}</name>")
                _encode(item, f"{path}[{key!r}]", out, seen)
                out.append("</member>")
            out.append("</struct></value>")
        else:
            out.append("<value><array><data>")
            for index, item in enumerate(value):
                _encode(item, f"{path}[{index}]", out, seen)
            out.append("</data></array></value>")
        seen.pop()
    else:
        raise XMLRPCEncodeError(f"{path}: XML-RPC cannot carry a {type(value).__name__}")


def check_value(value: object, path: str = "result") -> None:
    """Raise `XMLRPCEncodeError` if `value` cannot be encoded (what `dump_response` would refuse)."""
    _encode(value, path, [], [])


def dump_response(value: object) -> bytes:
    """Encode a successful `<methodResponse>` holding one value (see the module docstring for the types)."""
    out = ["<?xml version='1.0' encoding='UTF-8'?>\n<methodResponse><params><param>"]
    _encode(value, "result", out, [])
    out.append("</param></params></methodResponse>\n")
    return "".join(out).encode("utf-8")


def dump_fault(code: int, message: str) -> bytes:
    """Encode a fault.  Always succeeds: characters XML cannot carry become U+FFFD in the message."""
    if not I4_MIN <= code <= I4_MAX:
        raise XMLRPCEncodeError(f"fault code {code} is outside XML-RPC's i4 range")
    value = {"faultCode": code, "faultString": _NOT_XML.sub("\ufffd", message)}
    out = ["<?xml version='1.0' encoding='UTF-8'?>\n<methodResponse><fault>"]
    _encode(value, "fault", out, [])
    out.append("</fault></methodResponse>\n")
    return "".join(out).encode("utf-8")
