"""XML-RPC at /RPC2 through a real uvicorn server, called with Python's own xmlrpc.client (in a thread).

The methods are demo functions registered here; the catalogue of Hotline's functions has its own tests.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import logging
import xmlrpc.client
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from hotline.errors import (
    ConflictError,
    DatabaseUnavailableError,
    HotlineError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from hotline.protocols.xmlrpc import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR
from hotline.web.rpc import Param, RpcContext, RpcRegistry, fault_for, rpc_endpoint
from tests.features.events.support import serve

CLIENT_TIMEOUT_S = 10


@dataclass(frozen=True)
class User:
    name: str
    scopes: frozenset[str]
    agent_number: str | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


ALICE = User("alice", frozenset({"demo:read", "demo:write"}), agent_number="1001")
BOB = User("bob", frozenset({"demo:read"}))
PASSWORDS = {"alice": ("s3cret", ALICE), "bob": ("pw", BOB)}
API_KEYS = {"hlk_bob": BOB}


async def authenticate(request: Request) -> User | None:
    """What the application passes in: HTTP Basic user:password or a Bearer API key."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return API_KEYS.get(credentials.strip())
    if scheme.lower() == "basic":
        user, _, password = base64.b64decode(credentials).decode().partition(":")
        if user == "throttled":
            raise RateLimitedError("too many failed logins", retry_after=30)
        if user == "db-down":
            raise DatabaseUnavailableError("database unreachable")
        if user == "broken":
            raise RuntimeError("bug in authenticate")
        known = PASSWORDS.get(user)
        return known[1] if known is not None and known[0] == password else None
    return None


def demo_registry() -> RpcRegistry:
    registry = RpcRegistry(call_timeout=0.5)
    store: dict[str, str] = {"greeting": "hello"}
    never = asyncio.Event()

    @registry.method("demo.whoami", returns="struct", help="Who you are.", scope="demo:read")
    async def whoami(ctx: RpcContext) -> dict[str, Any]:
        return {"name": ctx.caller.name, "agent": ctx.caller.agent_number, "method": ctx.method}

    @registry.method("demo.add", returns="int", params=[("a", "int"), ("b", "int")], help="a + b.", scope="demo:read")
    async def add(ctx: RpcContext, a: int, b: int) -> int:
        return a + b

    @registry.method(
        "demo.scale",
        returns="double",
        params=[Param("x", "double"), Param("factor", "double", optional=True)],
        help="x * factor (2 if left out).",
        scope="demo:read",
    )
    async def scale(ctx: RpcContext, x: float, factor: float = 2.0) -> float:
        assert isinstance(x, float) and isinstance(factor, float)
        return x * factor

    @registry.method("demo.echo", returns="array", params=[("items", "array")], help="Echo.", scope="demo:read")
    async def echo(ctx: RpcContext, items: list[Any]) -> list[Any]:
        return items

    @registry.method(
        "demo.zone",
        returns="string",
        params=[("when", "dateTime.iso8601")],
        help="The zone a dateTime arrives in.",
        scope="demo:read",
    )
    async def zone(ctx: RpcContext, when: datetime) -> str:
        return f"{when.tzinfo} {when.isoformat()}"

    @registry.method("demo.get", returns="string", params=[("key", "string")], help="Read.", scope="demo:read")
    async def get(ctx: RpcContext, key: str) -> str:
        if key not in store:
            raise NotFoundError(f"no key {key!r}")
        return store[key]

    @registry.method(
        "demo.set",
        returns="nil",
        params=[("key", "string"), ("value", "string")],
        help="Write.",
        scope="demo:write",
    )
    async def set_(ctx: RpcContext, key: str, value: str) -> None:
        if not key:
            raise ValidationError("key", "must not be empty")
        if key in store:
            raise ConflictError(f"key {key!r} exists")
        store[key] = value

    @registry.method("demo.crash", returns="nil", help="A bug.", scope="demo:read")
    async def crash(ctx: RpcContext) -> None:
        raise RuntimeError("secret detail /etc/hotline")

    @registry.method("demo.refuse", returns="nil", help="On purpose.", scope="demo:read")
    async def refuse(ctx: RpcContext) -> None:
        raise HotlineError("cannot do that now")

    @registry.method("demo.big", returns="int", help="Too big for i4.", scope="demo:read")
    async def big(ctx: RpcContext) -> int:
        return 2**40

    @registry.method("demo.hang", returns="nil", help="Never answers.", scope="demo:read")
    async def hang(ctx: RpcContext) -> None:
        await never.wait()

    return registry


@pytest.fixture
async def rpc_url() -> AsyncIterator[str]:
    endpoint = rpc_endpoint(demo_registry(), authenticate, max_bytes=64 * 1024, body_timeout=0.5)
    async with serve(Starlette(routes=[Route("/RPC2", endpoint)])) as base:
        yield base.replace("http://", "") + "/RPC2"


class _Transport(xmlrpc.client.Transport):
    """xmlrpc.client without a timeout would let a broken server hang the test."""

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = CLIENT_TIMEOUT_S
        return connection


@pytest.fixture
def proxy(rpc_url: str) -> Iterator[Callable[..., xmlrpc.client.ServerProxy]]:
    opened: list[xmlrpc.client.ServerProxy] = []

    def make(credentials: str | None = "alice:s3cret", **transport: Any) -> xmlrpc.client.ServerProxy:
        auth = f"{credentials}@" if credentials else ""
        p = xmlrpc.client.ServerProxy(f"http://{auth}{rpc_url}", transport=_Transport(**transport), allow_none=True)
        opened.append(p)
        return p

    yield make
    for p in opened:
        p("close")()


async def call(proxy: xmlrpc.client.ServerProxy, method: str, *params: Any) -> Any:
    return await asyncio.to_thread(getattr(proxy, method), *params)


async def fault(proxy: xmlrpc.client.ServerProxy, method: str, *params: Any) -> xmlrpc.client.Fault:
    with pytest.raises(xmlrpc.client.Fault) as info:
        await call(proxy, method, *params)
    return info.value


# -- calls and introspection -----------------------------------------------------------------------------


async def test_calls_with_basic_auth_from_the_url(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    alice = proxy()
    assert await call(alice, "demo.add", 2, 3) == 5
    assert await call(alice, "demo.whoami") == {"name": "alice", "agent": "1001", "method": "demo.whoami"}
    assert await call(alice, "demo.scale", 3) == 6.0  # an int where a double is declared is accepted
    assert await call(alice, "demo.scale", 1.5, 3) == 4.5
    assert await call(alice, "demo.get", "greeting") == "hello"
    assert await call(alice, "demo.set", "k", "v") is None
    # dateTime carries no zone: methods get UTC
    assert await call(alice, "demo.zone", datetime(2025, 6, 1, 12, 0, 0)) == "UTC 2025-06-01T12:00:00+00:00"


async def test_values_round_trip_through_python_client(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    items = [
        None,
        True,
        -(2**31),
        0.25,
        "tête <&> \n",  # (xmlrpc.client sends a CR unescaped, so XML turns it into LF before we see it)
        b"\x00\xff",
        datetime(2025, 6, 1, 12, 0, 0),
        {"nested": [{}]},
    ]
    assert await call(proxy(use_builtin_types=True), "demo.echo", items) == items


async def test_bearer_api_key(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    bob = proxy(None, headers=[("Authorization", "Bearer hlk_bob")])
    assert (await call(bob, "demo.whoami"))["name"] == "bob"


async def test_introspection(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    alice, bob = proxy(), proxy("bob:pw")
    everything = await call(alice, "system.listMethods")
    assert {"system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall"} <= set(everything)
    assert {"demo.add", "demo.set"} <= set(everything)
    # a caller only sees what its scopes allow
    assert "demo.set" not in await call(bob, "system.listMethods")
    assert await call(alice, "system.methodHelp", "demo.scale") == "x * factor (2 if left out)."
    assert await call(alice, "system.methodSignature", "demo.scale") == [
        ["double", "double"],
        ["double", "double", "double"],
    ]
    assert await call(alice, "system.methodSignature", "demo.whoami") == [["struct"]]
    assert await call(alice, "system.methodSignature", "system.methodHelp") == [["string", "string"]]
    assert (await fault(bob, "system.methodHelp", "demo.set")).faultCode == 403
    assert (await fault(alice, "system.methodSignature", "nope")).faultCode == METHOD_NOT_FOUND


# -- faults --------------------------------------------------------------------------------------------


async def test_unknown_method(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    error = await fault(proxy(), "demo.nope", 1)
    assert error.faultCode == METHOD_NOT_FOUND
    assert "'demo.nope'" in error.faultString


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("demo.add", (1,), "demo.add: missing parameter 2 'b' (int); signature: demo.add(a: int, b: int) -> int"),
        ("demo.add", (), "missing parameter 1 'a' (int)"),
        ("demo.add", (1, 2, 3), "demo.add takes at most 2 parameter(s), got 3"),
        ("demo.add", ("1", 2), "demo.add: parameter 1 'a' must be int, got string"),
        ("demo.add", (1, True), "parameter 2 'b' must be int, got boolean"),
        ("demo.add", (1, 2.0), "parameter 2 'b' must be int, got double"),
        ("demo.scale", (1.0, None), "parameter 2 'factor' must be double, got nil"),
        ("demo.echo", ({"a": 1},), "parameter 1 'items' must be array, got struct"),
        ("system.methodHelp", (1,), "parameter 1 'method' must be string, got int"),
    ],
)
async def test_invalid_params_name_the_parameter(
    proxy: Callable[..., xmlrpc.client.ServerProxy], method: str, params: tuple[Any, ...], message: str
) -> None:
    error = await fault(proxy(), method, *params)
    assert error.faultCode == INVALID_PARAMS
    assert message in error.faultString


async def test_exception_tree_maps_to_faults(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    alice = proxy()
    assert (await fault(alice, "demo.get", "missing")).faultCode == 404
    error = await fault(alice, "demo.set", "", "v")
    assert (error.faultCode, error.faultString) == (422, "key: must not be empty")
    assert (await fault(alice, "demo.set", "greeting", "v")).faultCode == 409
    error = await fault(alice, "demo.refuse")
    assert (error.faultCode, error.faultString) == (400, "cannot do that now")
    error = await fault(alice, "demo.hang")
    assert (error.faultCode, error.faultString) == (504, "demo.hang did not finish within 0.5 s")


async def test_permission_denied(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    error = await fault(proxy("bob:pw"), "demo.set", "k", "v")
    assert error.faultCode == 403
    assert error.faultString == "bob may not call demo.set (needs scope 'demo:write')"
    # scope is checked before the parameters: no signature probing without the scope
    assert (await fault(proxy("bob:pw"), "demo.set")).faultCode == 403


async def test_bug_in_a_method_is_logged_not_sent(
    proxy: Callable[..., xmlrpc.client.ServerProxy], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hotline.web.rpc"):
        error = await fault(proxy(), "demo.crash")
    assert error.faultCode == INTERNAL_ERROR
    assert "secret" not in error.faultString
    assert error.faultString == "internal error (logged on the server)"
    (record,) = [r for r in caplog.records if r.name == "hotline.web.rpc"]
    assert "demo.crash called by alice failed" in record.getMessage()
    assert record.exc_info is not None and "secret detail" in str(record.exc_info[1])


async def test_result_xmlrpc_cannot_carry_is_an_internal_error(
    proxy: Callable[..., xmlrpc.client.ServerProxy], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="hotline.web.rpc"):
        error = await fault(proxy(), "demo.big")
    assert error.faultCode == INTERNAL_ERROR
    assert any("outside XML-RPC's i4 range" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_fault_table() -> None:
    assert fault_for(RuntimeError("x")) is None
    assert fault_for(ValidationError("name", "too long")) == (422, "name: too long")
    assert fault_for(RateLimitedError("slow down", 3)) == (429, "slow down")


# -- multicall -----------------------------------------------------------------------------------------


async def test_multicall_each_call_authorised_and_failing_alone(
    proxy: Callable[..., xmlrpc.client.ServerProxy],
) -> None:
    bob = proxy("bob:pw")
    multi = xmlrpc.client.MultiCall(bob)
    multi.demo.add(1, 2)
    multi.demo.set("k", "v")  # bob lacks demo:write
    multi.demo.nope()
    multi.demo.add("x", 1)
    multi.demo.crash()
    multi.demo.whoami()
    results = await asyncio.to_thread(lambda: multi().results)
    assert results[0] == [3]
    assert results[1] == {"faultCode": 403, "faultString": "bob may not call demo.set (needs scope 'demo:write')"}
    assert results[2]["faultCode"] == METHOD_NOT_FOUND
    assert results[3]["faultCode"] == INVALID_PARAMS
    assert results[4] == {"faultCode": INTERNAL_ERROR, "faultString": "internal error (logged on the server)"}
    assert results[5] == [{"name": "bob", "agent": None, "method": "demo.whoami"}]


async def test_malformed_multicall_entries(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    results = await call(
        proxy(),
        "system.multicall",
        [
            "not a struct",
            {"params": []},
            {"methodName": "demo.add", "params": "1, 2"},
            {"methodName": "system.multicall", "params": [[]]},
            {"methodName": "demo.add", "params": [20, 22]},
            {"methodName": "demo.big", "params": []},
        ],
    )
    assert [r.get("faultCode") if isinstance(r, dict) else r for r in results] == [
        INVALID_REQUEST,
        INVALID_REQUEST,
        INVALID_REQUEST,
        INVALID_REQUEST,
        [42],
        INTERNAL_ERROR,
    ]
    assert results[3]["faultString"] == "system.multicall item 3: system.multicall cannot be nested"


# -- HTTP --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [None, "alice:wrong", "nobody:x"])
async def test_not_authenticated_is_http_401(
    proxy: Callable[..., xmlrpc.client.ServerProxy], credentials: str | None
) -> None:
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        await call(proxy(credentials), "system.listMethods")
    assert info.value.errcode == 401
    assert info.value.headers["www-authenticate"] == 'Basic realm="hotline", charset="UTF-8"'


async def test_wrong_api_key_is_http_401(proxy: Callable[..., xmlrpc.client.ServerProxy]) -> None:
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        await call(proxy(None, headers=[("Authorization", "Bearer hlk_wrong")]), "system.listMethods")
    assert info.value.errcode == 401


ALICE_AUTH = ("alice", "s3cret")
LIST = xmlrpc.client.dumps((), "system.listMethods").encode()
XML = {"Content-Type": "text/xml"}


@pytest.fixture
async def http(rpc_url: str) -> AsyncIterator[httpx.AsyncClient]:
    base = rpc_url.removesuffix("/RPC2")
    async with httpx.AsyncClient(base_url=f"http://{base}", timeout=CLIENT_TIMEOUT_S) as client:
        yield client


async def test_http_refusals(http: httpx.AsyncClient) -> None:
    response = await http.get("/RPC2")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    response = await http.post(
        "/RPC2", content=b'{"a": 1}', headers={"Content-Type": "application/json"}, auth=ALICE_AUTH
    )
    assert response.status_code == 415
    assert "text/xml" in response.text
    gzip = {**XML, "Content-Encoding": "gzip"}
    assert (await http.post("/RPC2", content=LIST, headers=gzip, auth=ALICE_AUTH)).status_code == 415
    # unauthenticated: refused before the body is looked at
    assert (await http.post("/RPC2", content=b"x" * 200_000, headers=XML)).status_code == 401


async def test_authenticate_errors(http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    response = await http.post("/RPC2", content=LIST, headers=XML, auth=("throttled", "x"))
    assert (response.status_code, response.headers["retry-after"]) == (429, "31")
    assert (await http.post("/RPC2", content=LIST, headers=XML, auth=("db-down", "x"))).status_code == 503
    with caplog.at_level(logging.ERROR, logger="hotline.web.rpc"):
        response = await http.post("/RPC2", content=LIST, headers=XML, auth=("broken", "x"))
    assert (response.status_code, response.text) == (500, "internal error\n")
    assert any("authentication failed" in r.getMessage() for r in caplog.records)


async def test_body_size_cap(http: httpx.AsyncClient) -> None:
    big = xmlrpc.client.dumps(("x" * 70_000,), "demo.echo").encode()
    response = await http.post("/RPC2", content=big, headers=XML, auth=ALICE_AUTH)
    assert response.status_code == 413
    assert response.text == "request body larger than 65536 bytes\n"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the cap applies while reading
        for _ in range(100):
            yield b"<" * 1000

    response = await http.post("/RPC2", content=chunked(), headers=XML, auth=ALICE_AUTH)
    assert response.status_code == 413


async def test_malformed_xml_is_a_fault(http: httpx.AsyncClient) -> None:
    response = await http.post("/RPC2", content=b"<methodCall><methodName>x", headers=XML, auth=ALICE_AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(response.content)
    assert info.value.faultCode == PARSE_ERROR
    doctype = b'<!DOCTYPE m [<!ENTITY a "b">]><methodCall><methodName>&a;</methodName></methodCall>'
    response = await http.post("/RPC2", content=doctype, headers=XML, auth=ALICE_AUTH)
    with pytest.raises(xmlrpc.client.Fault, match="DTD"):
        xmlrpc.client.loads(response.content)


async def test_slow_body_times_out(rpc_url: str) -> None:
    host, _, rest = rpc_url.partition(":")
    port = int(rest.split("/")[0])
    reader, writer = await asyncio.open_connection(host, port)
    auth = base64.b64encode(b"alice:s3cret").decode()
    writer.write(
        f"POST /RPC2 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nContent-Type: text/xml\r\n"
        "Content-Length: 100\r\n\r\n<methodCall>".encode()
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), CLIENT_TIMEOUT_S)
    assert status.startswith(b"HTTP/1.1 408")
    writer.close()
    await writer.wait_closed()


# -- registration --------------------------------------------------------------------------------------


async def _noop(ctx: RpcContext) -> None:
    return None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "system.mine"}, ValueError, "outside 'system.'"),
        ({"name": "bad name"}, ValueError, "must be dotted identifiers"),
        ({"name": "demo.add"}, ValueError, "registered twice"),
        ({"scope": ""}, ValueError, "scope is required"),
        ({"returns": "integer"}, ValueError, "unknown type 'integer'"),
        ({"params": [("a", "int"), ("a", "int")]}, ValueError, "parameter names repeat"),
        ({"params": [Param("a", "int", optional=True), Param("b", "int")]}, ValueError, "optional parameters"),
        ({"fn": lambda ctx: None}, TypeError, "not an async function"),
    ],
)
def test_registration_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    registry = demo_registry()
    args: dict[str, Any] = {"name": "demo.new", "fn": _noop, "returns": "nil", "help": "", "scope": "demo:read"}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        registry.register(args.pop("name"), args.pop("fn"), **args)
