"""XML-RPC codec: requests as real clients send them, hostile bodies, the encoder's type rules, round trips.

`parse_request` takes a whole HTTP body (there is no incremental API to feed byte by byte); "trailing
bytes" are covered by junk after the root element.
"""

from __future__ import annotations

import re
import xmlrpc.client
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import ProtocolError
from hotline.protocols.xmlrpc import (
    I4_MAX,
    I4_MIN,
    INVALID_CHARACTER,
    INVALID_REQUEST,
    PARSE_ERROR,
    UNSUPPORTED_ENCODING,
    MethodCall,
    Value,
    XMLRPCEncodeError,
    XMLRPCRequestError,
    check_value,
    dump_fault,
    dump_response,
    parse_request,
)

FUZZ = settings(max_examples=300, deadline=None, database=None)
LIMITS = {"max_bytes": 1 << 20, "max_depth": 16, "max_items": 10_000}


def parse(body: bytes, **limits: int) -> MethodCall:
    return parse_request(body, **{**LIMITS, **limits})


def call_body(*values: str, method: str = "m") -> bytes:
    params = "".join(f"<param><value>{v}</value></param>" for v in values)
    return f"<methodCall><methodName>{method}</methodName><params>{params}</params></methodCall>".encode()


def refused(body: bytes, code: int, match: str, **limits: int) -> XMLRPCRequestError:
    with pytest.raises(XMLRPCRequestError, match=match) as info:
        parse(body, **limits)
    assert info.value.fault_code == code
    assert isinstance(info.value, ProtocolError)
    return info.value


# -- requests as clients send them ----------------------------------------------------------------------


def test_python_client_request_every_type() -> None:
    when = datetime(2025, 3, 4, 5, 6, 7)
    params = (
        1,
        -(2**31),
        "tête & <queue>",
        "",
        True,
        False,
        2.5,
        1e16,
        xmlrpc.client.Binary(b"\x00\xff"),
        when,
        None,
        [1, [2, "x"], {}],
        {"agent": "1001", "nested": {"list": []}},
    )
    body = xmlrpc.client.dumps(params, "agent.login", allow_none=True).encode()
    assert parse(body) == (
        "agent.login",
        (
            1,
            -(2**31),
            "tête & <queue>",
            "",
            True,
            False,
            2.5,
            1e16,
            b"\x00\xff",
            when.replace(tzinfo=UTC),
            None,
            [1, [2, "x"], {}],
            {"agent": "1001", "nested": {"list": []}},
        ),
    )


def test_no_params_element_and_empty_params() -> None:
    assert parse(b"<methodCall><methodName>system.listMethods</methodName></methodCall>") == (
        "system.listMethods",
        (),
    )
    assert parse(xmlrpc.client.dumps((), "a.b").encode()) == ("a.b", ())


def test_untyped_value_is_a_string_whitespace_kept() -> None:
    assert parse(call_body("  two words ", "<string> x </string>")).params == ("  two words ", " x ")


def test_pretty_printed_request_with_declaration_and_crlf() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n<methodCall>\r\n  <methodName>queue.list</methodName>\r\n'
        b"  <params>\r\n    <param>\r\n      <value>\r\n        <i4> 42 </i4>\r\n      </value>\r\n"
        b"    </param>\r\n  </params>\r\n</methodCall>\r\n"
    )
    assert parse(body) == ("queue.list", (42,))


def test_apache_extensions_i8_and_nil() -> None:
    body = (
        b'<methodCall xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"><methodName>x</methodName>'
        b"<params><param><value><ex:i8>9223372036854775807</ex:i8></value></param>"
        b"<param><value><ex:nil/></value></param><param><value><i8>-5</i8></value></param></params></methodCall>"
    )
    assert parse(body).params == (2**63 - 1, None, -5)


@pytest.mark.parametrize("encoding", ["iso-8859-1", "utf-16", "windows-1252", "us-ascii"])
def test_declared_encodings(encoding: str) -> None:
    text = "é" if encoding != "us-ascii" else "e"
    body = f'<?xml version="1.0" encoding="{encoding}"?>' + call_body(text).decode()
    assert parse(body.encode(encoding)).params == (text,)


def test_datetimes_are_utc() -> None:
    (value,) = parse(call_body("<dateTime.iso8601>19991231T23:59:58</dateTime.iso8601>")).params
    assert value == datetime(1999, 12, 31, 23, 59, 58, tzinfo=UTC)


# -- hostile and malformed bodies -----------------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode() for i in range(1, 10)
    )
    + b"]>\n<methodCall><methodName>&lol9;</methodName></methodCall>"
)


def test_billion_laughs_is_refused() -> None:
    refused(BILLION_LAUGHS, INVALID_REQUEST, "DTD")


def test_external_entity_is_refused() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<methodCall><methodName>x</methodName><params><param><value>&xxe;</value></param></params></methodCall>"
    )
    refused(body, INVALID_REQUEST, "DTD")


def test_external_dtd_and_parameter_entities_are_refused() -> None:
    refused(b'<!DOCTYPE m SYSTEM "http://127.0.0.1:9/evil.dtd"><methodCall/>', INVALID_REQUEST, "DTD")
    refused(b'<!DOCTYPE m [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><methodCall/>', INVALID_REQUEST, "DTD")


def test_undeclared_entity_is_a_parse_error() -> None:
    refused(call_body("&xxe;"), PARSE_ERROR, "undefined entity")


def test_predefined_entities_and_character_references_work() -> None:
    assert parse(call_body("&lt;&amp;&gt;&quot;&apos;&#233;&#x1F600;&#13;")).params == ("<&>\"'é\U0001f600\r",)


def test_body_over_max_bytes_is_refused_before_parsing() -> None:
    body = call_body("x" * 2000)
    refused(body, INVALID_REQUEST, "larger than 1000 bytes", max_bytes=1000)
    assert parse(body, max_bytes=len(body)).params == ("x" * 2000,)


def test_nesting_deeper_than_max_depth() -> None:
    def nested(levels: int) -> bytes:
        return call_body("<array><data><value>" * levels + "1" + "</value></data></array>" * levels)

    assert parse(nested(16)).params[0] is not None
    refused(nested(17), INVALID_REQUEST, "nested deeper than 16 levels")
    # a huge nesting attack stops at the limit (the rest of the body is never unmarshalled)
    refused(nested(20_000), INVALID_REQUEST, "nested deeper than 16 levels")
    structs = call_body("<struct><member><name>a</name><value>" * 5 + "</value></member></struct>" * 5)
    refused(structs, INVALID_REQUEST, "nested deeper than 4 levels", max_depth=4)


def test_more_values_than_max_items() -> None:
    body = call_body("<array><data>" + "<value><int>1</int></value>" * 100 + "</data></array>")
    assert len(parse(body, max_items=101).params[0]) == 100  # type: ignore[arg-type]
    refused(body, INVALID_REQUEST, "more than 100 values", max_items=100)


@pytest.mark.parametrize(
    ("body", "code", "match"),
    [
        (b"", PARSE_ERROR, "no element found"),
        (b"   \n", PARSE_ERROR, "no element found"),
        (b'{"method": "x"}', PARSE_ERROR, "invalid token"),
        (b"\x00\x01\x02garbage", PARSE_ERROR, "invalid token"),
        (b"<methodCall", PARSE_ERROR, "unclosed token"),
        (b"<methodCall><methodName>x</methodName></methodCall><junk/>", PARSE_ERROR, "junk after document"),
        (b"<methodCall><methodName>x</methodName></methodCall>trailing", PARSE_ERROR, "junk after document"),
        (b"<methodCall><methodName>x</methodName>", PARSE_ERROR, "no element found"),
        (b"<methodCall><methodName>x</methodName></methodcall>", PARSE_ERROR, "mismatched tag"),
        (b"<methodCall><methodName>\xff</methodName></methodCall>", PARSE_ERROR, "invalid token"),
        (b"<methodCall><methodName>\xc3", INVALID_CHARACTER, "partial character"),
        (b"<methodCall><methodName>&#0;</methodName></methodCall>", INVALID_CHARACTER, "invalid character number"),
        (b'<?xml version="1.0" encoding="klingon"?><methodCall/>', UNSUPPORTED_ENCODING, "klingon"),
        (b'<?xml version="1.0" encoding="shift_jis"?><methodCall/>', UNSUPPORTED_ENCODING, "multi-byte"),
        (b'<?xml version="1.0" encoding="utf-16"?><methodCall/>', UNSUPPORTED_ENCODING, "encoding"),
    ],
)
def test_not_xml(body: bytes, code: int, match: str) -> None:
    refused(body, code, match)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<methodResponse><params/></methodResponse>", "root element must be <methodCall>, not <methodResponse>"),
        (b"<methodCall><params/></methodCall>", r"<methodCall> must contain <methodName>"),
        (b"<methodCall><methodName>x</methodName><foo/></methodCall>", "<foo> is not allowed inside <methodCall>"),
        (b"<methodCall><params/><methodName>x</methodName></methodCall>", "must contain <methodName>"),
        (b"<methodCall><methodName></methodName></methodCall>", "<methodName> must be 1 to 128"),
        (b"<methodCall><methodName>a b</methodName></methodCall>", "<methodName> must be"),
        (b"<methodCall><methodName>" + b"a" * 129 + b"</methodName></methodCall>", "<methodName> must be"),
        (call_body("<int>1</int><int>2</int>"), "a <value> holds one element"),
        (call_body("one<int>1</int>"), "either text or one element"),
        (call_body("<struct>text</struct>"), "unexpected text 'text' inside <struct>"),
        (call_body("<struct><member><value>1</value></member></struct>"), "<member> must contain <name><value>"),
        (call_body("<struct><member><name>a</name></member></struct>"), "<member> must contain <name><value>"),
        (call_body("<array><value>1</value></array>"), "<value> is not allowed inside <array>"),
        (call_body("<array></array>"), "<array> must contain <data>"),
        (call_body("<int><int>1</int></int>"), "<int> is not allowed inside <int>"),
        (call_body("<value>1</value>"), "<value> is not allowed inside <value>"),
        (call_body("<bigdecimal>1.5</bigdecimal>"), "<bigdecimal> is not allowed inside <value>"),
        (call_body("<ex:struct/>"), "<ex:struct> is not allowed inside <value>"),
        (call_body("<int>1_000</int>"), "<int> must be an optional sign and decimal digits, not '1_000'"),
        (call_body("<int>\u0661</int>"), "<int> must be an optional sign and decimal digits"),
        (call_body("<int></int>"), "<int> must be"),
        (call_body("<int>2147483648</int>"), "<int> value 2147483648 is out of range"),
        (call_body("<i4>-2147483649</i4>"), "<i4> value -2147483649 is out of range"),
        (call_body("<i8>9223372036854775808</i8>"), "<i8> value 9223372036854775808 is out of range"),
        (call_body("<i4>" + "9" * 5000 + "</i4>"), "<i4> must be an optional sign"),
        (call_body("<double>nan</double>"), "<double> must be a decimal number, not 'nan'"),
        (call_body("<double>1e999</double>"), "<double> value 1e999 is out of range"),
        (call_body("<double>0x10</double>"), "<double> must be a decimal number"),
        (call_body("<boolean>true</boolean>"), "<boolean> must be 0 or 1, not 'true'"),
        (call_body("<boolean> 1</boolean>"), "<boolean> must be 0 or 1"),
        (call_body("<dateTime.iso8601>2024-01-02T03:04:05</dateTime.iso8601>"), "YYYYMMDDTHH:MM:SS"),
        (call_body("<dateTime.iso8601>20241302T03:04:05</dateTime.iso8601>"), "not '20241302T03:04:05'"),
        (call_body("<base64>not base64!</base64>"), "<base64> is not valid base64"),
        (call_body("<base64>QQ</base64>"), "<base64> is not valid base64"),
        (call_body("<nil>x</nil>"), "<nil/> must be empty"),
    ],
)
def test_invalid_xmlrpc(body: bytes, match: str) -> None:
    refused(body, INVALID_REQUEST, match)


def test_messages_name_the_line() -> None:
    body = b"<methodCall>\n<methodName>x</methodName>\n<params><param><value><int>x</int>"
    body += b"</value></param></params>\n</methodCall>"
    error = refused(body, INVALID_REQUEST, r"\(line 3, column")
    assert "<int>" in str(error)


# -- encoding ------------------------------------------------------------------------------------------


def test_response_read_by_python_client() -> None:
    value = {
        "calls": [1, I4_MAX, I4_MIN, 0.1, True, None, "a\r\nb <&> é \U0001f600", b"\x00\x01"],
        "when": datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=timezone(timedelta(hours=2))),
        "naive": datetime(2025, 1, 2, 3, 4, 5),
        "tuple": (1, 2),
    }
    (result,), method = xmlrpc.client.loads(dump_response(value), use_builtin_types=True)
    assert method is None
    assert result == {
        "calls": [1, I4_MAX, I4_MIN, 0.1, True, None, "a\r\nb <&> é \U0001f600", b"\x00\x01"],
        "when": datetime(2025, 1, 2, 1, 4, 5),  # converted to UTC, sub-seconds dropped
        "naive": datetime(2025, 1, 2, 3, 4, 5),
        "tuple": [1, 2],
    }


def test_fault_read_by_python_client() -> None:
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(dump_fault(-32602, "m: parameter 1 'agent' must be string, got int <&>"))
    assert info.value.faultCode == -32602
    assert info.value.faultString == "m: parameter 1 'agent' must be string, got int <&>"


def test_fault_message_with_characters_xml_cannot_carry() -> None:
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(dump_fault(1, "bad\x00byte\x1b"))
    assert info.value.faultString == "bad\ufffdbyte\ufffd"
    with pytest.raises(XMLRPCEncodeError, match="outside XML-RPC's i4 range"):
        dump_fault(2**31, "x")


class _Opaque:
    def __init__(self) -> None:
        self.secret = "not for the wire"


def _loop() -> list[object]:
    items: list[object] = []
    items.append(items)
    return items


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (2**31, r"result: integer 2147483648 is outside XML-RPC's i4 range; declare the value as a string"),
        ({"epoch_ms": 1_700_000_000_000}, r"result\['epoch_ms'\]: integer 1700000000000 is outside"),
        ([1, -(2**31) - 1], r"result\[1\]: integer -2147483649"),
        (float("nan"), "not a finite number"),
        (float("-inf"), "not a finite number"),
        ({1: "a"}, "struct key 1 is not a string"),
        (_Opaque(), "XML-RPC cannot carry a _Opaque"),
        ({1, 2}, "cannot carry a set"),
        (datetime(2025, 1, 1).date(), "cannot carry a date"),
        ("nul\x00", r"result: the string holds U\+0000, which XML cannot carry; send such data as base64"),
        ({"a\x01": 1}, r"U\+0001"),
        ("\ufffe", r"U\+FFFE"),
        ("\ud800", r"U\+D800"),
        (_loop(), r"result\[0\]: the value contains itself"),
    ],
)
def test_values_xmlrpc_cannot_carry(value: object, match: str) -> None:
    with pytest.raises(XMLRPCEncodeError, match=match):
        dump_response(value)
    with pytest.raises(XMLRPCEncodeError, match=match.replace("result", "out", 1)):
        check_value(value, "out")


def test_too_deep_result() -> None:
    value: list[object] = []
    for _ in range(100):
        value = [value]
    with pytest.raises(XMLRPCEncodeError, match="nested deeper than 64 levels"):
        dump_response(value)


def test_same_list_twice_is_not_a_cycle() -> None:
    shared = [1]
    assert xmlrpc.client.loads(dump_response([shared, shared]))[0] == ([[1], [1]],)


# -- properties ----------------------------------------------------------------------------------------

_XML_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff") | st.sampled_from("\t\n\r")
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(I4_MIN, I4_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _XML_TEXT
    | st.binary(max_size=64)
    | st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0))
)
VALUES: st.SearchStrategy[Value] = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_XML_TEXT, children, max_size=5),
    max_leaves=20,
)


def _as_request(response: bytes, method: str = "m") -> bytes:
    # A response's <params> is a request's: only the envelope differs.
    text = response.decode()
    prefix = "<?xml version='1.0' encoding='UTF-8'?>\n<methodResponse>"
    assert text.startswith(prefix) and text.endswith("</methodResponse>\n")
    inner = text[len(prefix) : -len("</methodResponse>\n")]
    return f"<methodCall><methodName>{method}</methodName>{inner}</methodCall>".encode()


@FUZZ
@given(VALUES)
def test_dump_then_parse_round_trips(value: Value) -> None:
    assert parse(_as_request(dump_response(value))) == ("m", (value,))


@FUZZ
@given(VALUES)
def test_python_client_reads_what_we_dump(value: Value) -> None:
    (result,), _ = xmlrpc.client.loads(dump_response(value), use_builtin_types=True)
    assert result == _naive(value)


def _naive(value: Value) -> object:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, list):
        return [_naive(v) for v in value]
    if isinstance(value, dict):
        return {k: _naive(v) for k, v in value.items()}
    return value


def _parse_or_refuse(body: bytes) -> None:
    try:
        result = parse(body, max_bytes=4096, max_depth=4, max_items=50)
    except XMLRPCRequestError as exc:
        assert exc.fault_code in (INVALID_REQUEST, PARSE_ERROR, UNSUPPORTED_ENCODING, INVALID_CHARACTER)
        assert str(exc)
    else:
        assert isinstance(result, MethodCall)
        assert re.fullmatch("[A-Za-z0-9_.:/]+", result.method)


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_parse_or_raise_the_codec_error(body: bytes) -> None:
    _parse_or_refuse(body)


_TOKENS = [
    b"<methodCall>",
    b"</methodCall>",
    b"<methodName>m</methodName>",
    b"<methodName>",
    b"</methodName>",
    b"<params>",
    b"</params>",
    b"<param>",
    b"</param>",
    b"<value>",
    b"</value>",
    b"<array>",
    b"</array>",
    b"<data>",
    b"</data>",
    b"<struct>",
    b"</struct>",
    b"<member>",
    b"</member>",
    b"<name>k</name>",
    b"<name>",
    b"</name>",
    b"<int>7</int>",
    b"<i4>",
    b"</i4>",
    b"<i8>-1</i8>",
    b"<boolean>1</boolean>",
    b"<boolean>",
    b"</boolean>",
    b"<double>-1.5e3</double>",
    b"<double>",
    b"</double>",
    b"<string>s</string>",
    b"<base64>AAE=</base64>",
    b"<base64>",
    b"</base64>",
    b"<dateTime.iso8601>20250101T00:00:00</dateTime.iso8601>",
    b"<dateTime.iso8601>",
    b"</dateTime.iso8601>",
    b"<nil/>",
    b"<ex:nil/>",
    b"<ex:i8>1</ex:i8>",
    b"<fault>",
    b"</fault>",
    b"<bigdecimal>1</bigdecimal>",
    b"text",
    b"7",
    b" ",
    b"&amp;",
    b"&#65;",
    b"<!DOCTYPE x>",
    b'<!ENTITY a "b">',
    b"<?xml version='1.0'?>",
    b"<![CDATA[c]]>",
    b"<!-- c -->",
]


@FUZZ
@given(st.lists(st.sampled_from(_TOKENS), max_size=60))
def test_token_soup_parses_or_raises_the_codec_error(tokens: list[bytes]) -> None:
    _parse_or_refuse(b"".join(tokens))


@FUZZ
@given(VALUES, st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_corrupted_requests_parse_or_raise_the_codec_error(value: Value, where: int, junk: bytes) -> None:
    body = _as_request(dump_response(value))
    where %= len(body)
    _parse_or_refuse(body[:where] + junk + body[where:])
