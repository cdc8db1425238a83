"""XML-RPC at `/RPC2`: the method registry, the dispatcher (introspection, multicall) and the ASGI endpoint.

Responsibility: check who calls (through the `authenticate` function the application passes in), read the
body with a size cap and a timeout, parse it with the codec (`hotline.protocols.xmlrpc`), find the method,
check the caller's scope, the arity and the types of the parameters against the method's declared
signature, run it with a timeout, and encode its result or a fault.  The methods themselves (the
catalogue) are registered by the features; this module knows none of them.

Invariants:
- `RpcRegistry.dispatch` always returns a response body; only cancellation escapes it.  Every exception
  becomes a fault through `fault_for`, the one place where Hotline's exception tree meets fault codes.
  An exception outside that table is a bug: it is logged with its traceback and the caller gets
  `-32603 internal error` with no detail.
- A method runs only after its scope was granted and its parameters matched its signature.
- `system.multicall` runs its calls in order, each authorised and failing on its own (a fault struct in
  its slot), and cannot be nested.
- HTTP-level refusals (not POST, not authenticated, not text/xml, too large, too slow) are HTTP statuses,
  decided before the body is parsed; everything after that is an XML-RPC response (HTTP 200).

Fault codes (docs/xmlrpc.md has the user's version):

| code | meaning |
| --- | --- |
| -32700 | parse error: not well-formed XML |
| -32701 | unsupported encoding |
| -32702 | invalid character for the encoding |
| -32600 | invalid XML-RPC request (grammar, DTD/entities, limits, a malformed multicall entry) |
| -32601 | method not found |
| -32602 | invalid parameters: wrong count or type; the message names the parameter |
| -32603 | internal error (logged on the server with its traceback) |
| 400 | any other `HotlineError`: the request cannot be carried out; the message says why |
| 401 | `AuthenticationError` raised by a method (a wrong agent PIN, say) |
| 403 | permission denied: the caller lacks the method's scope, or `PermissionDeniedError` |
| 404 | `NotFoundError` |
| 409 | `ConflictError` |
| 422 | `ValidationError`; the message starts with the field |
| 429 | `RateLimitedError`: too many attempts |
| 502 | `AsteriskError`: a node refused or failed the action |
| 503 | `DatabaseUnavailableError`, `NodeUnavailableError`: retry later |
| 504 | the method (or a node action, `ActionTimeoutError`) did not finish in time |

Not authenticated is HTTP 401 with `WWW-Authenticate: Basic` (and a throttled login HTTP 429), decided by
`authenticate` before the body is read, never a fault.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from hotline.errors import (
    ActionTimeoutError,
    AsteriskError,
    AuthenticationError,
    ConflictError,
    DatabaseUnavailableError,
    HotlineError,
    NodeUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)
from hotline.protocols import xmlrpc
from hotline.protocols.xmlrpc import MethodCall, Value, XMLRPCEncodeError, XMLRPCRequestError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_ITEMS",
    "Authenticate",
    "Param",
    "RpcCaller",
    "RpcContext",
    "RpcEndpoint",
    "RpcFault",
    "RpcMethod",
    "RpcRegistry",
    "fault_for",
    "rpc_endpoint",
]

log = logging.getLogger(__name__)

BAD_REQUEST: Final = 400
NOT_AUTHENTICATED: Final = 401
NOT_PERMITTED: Final = 403
NOT_FOUND: Final = 404
CONFLICT: Final = 409
INVALID_VALUE: Final = 422
RATE_LIMITED: Final = 429
NODE_ERROR: Final = 502
UNAVAILABLE: Final = 503
TIMED_OUT: Final = 504

DEFAULT_MAX_BYTES: Final = 1 << 20  # 1 MiB
DEFAULT_MAX_DEPTH: Final = 16
DEFAULT_MAX_ITEMS: Final = 10_000
DEFAULT_CALL_TIMEOUT: Final = 30.0
DEFAULT_BODY_TIMEOUT: Final = 30.0

# Signature types (the introspection spec's names; "int" and "i4" are the same type).
TYPES: Final = frozenset(
    ["int", "i4", "boolean", "string", "double", "dateTime.iso8601", "base64", "struct", "array", "nil"]
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class RpcCaller(Protocol):
    """Who is calling: what the application's `authenticate` returns (an account, an API key...)."""

    @property
    def name(self) -> str: ...

    @property
    def agent_number(self) -> str | None: ...

    def has_scope(self, scope: str) -> bool: ...


@dataclass(frozen=True)
class RpcContext:
    """The first argument of every method: the authenticated caller and the method name it called."""

    caller: RpcCaller
    method: str


RpcFunction = Callable[..., Awaitable[Any]]
Authenticate = Callable[[Request], Awaitable[RpcCaller | None]]


class RpcFault(HotlineError):
    """A fault the dispatcher itself decides (method not found, bad parameters, scope missing)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Hotline's exception tree -> fault codes; the first matching row wins, so children come before parents.
_FAULTS: Final[tuple[tuple[type[HotlineError], int], ...]] = (
    (ValidationError, INVALID_VALUE),
    (AuthenticationError, NOT_AUTHENTICATED),
    (RateLimitedError, RATE_LIMITED),
    (PermissionDeniedError, NOT_PERMITTED),
    (NotFoundError, NOT_FOUND),
    (ConflictError, CONFLICT),
    (DatabaseUnavailableError, UNAVAILABLE),
    (NodeUnavailableError, UNAVAILABLE),
    (ActionTimeoutError, TIMED_OUT),
    (AsteriskError, NODE_ERROR),
    (HotlineError, BAD_REQUEST),  # raised on purpose, so its message is meant for the caller
)


def fault_for(exc: BaseException) -> tuple[int, str] | None:
    """The fault (code, message) an exception becomes, or None for a bug (-32603, logged).

    Exception types are matched, never names: a feature's own error class maps through the hotline.errors
    class it derives from (agents' `AuthenticationError` should derive from hotline.errors' one).
    """
    if isinstance(exc, RpcFault):
        return exc.code, exc.message
    if isinstance(exc, XMLRPCRequestError):
        return exc.fault_code, exc.message
    if isinstance(exc, XMLRPCEncodeError):  # a method returned what XML-RPC cannot carry: a bug
        return None
    for kind, code in _FAULTS:
        if isinstance(exc, kind):
            return code, str(exc)
    return None


@dataclass(frozen=True)
class Param:
    """One declared parameter; optional ones come last and may be left out by the caller."""

    name: str
    type: str
    optional: bool = False


@dataclass(frozen=True)
class RpcMethod:
    name: str
    fn: RpcFunction
    returns: str
    params: tuple[Param, ...]
    help: str
    scope: str | None  # None: any authenticated caller (the system.* methods)

    def signatures(self) -> list[list[str]]:
        """One signature per accepted arity, in the introspection format [return type, param types...]."""
        required = sum(1 for p in self.params if not p.optional)
        return [[self.returns, *(p.type for p in self.params[:n])] for n in range(required, len(self.params) + 1)]

    def check(self, params: Sequence[Value]) -> tuple[Value, ...]:
        """Match the parameters to the signature; raise RpcFault(-32602) naming the first one that is wrong."""
        required = sum(1 for p in self.params if not p.optional)
        if len(params) < required:
            missing = self.params[len(params)]
            raise RpcFault(
                xmlrpc.INVALID_PARAMS,
                f"{self.name}: missing parameter {len(params) + 1} '{missing.name}' ({missing.type}); "
                f"signature: {self.describe()}",
            )
        if len(params) > len(self.params):
            raise RpcFault(
                xmlrpc.INVALID_PARAMS,
                f"{self.name} takes at most {len(self.params)} parameter(s), got {len(params)}; "
                f"signature: {self.describe()}",
            )
        checked: list[Value] = []
        for index, (param, value) in enumerate(zip(self.params, params, strict=False), 1):
            if param.type == "double" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)  # dynamic clients send 5 for 5.0
            if _canonical(param.type) != type_name(value):
                raise RpcFault(
                    xmlrpc.INVALID_PARAMS,
                    f"{self.name}: parameter {index} '{param.name}' must be {param.type}, got {type_name(value)}",
                )
            checked.append(value)
        return tuple(checked)

    def describe(self) -> str:
        inner = ", ".join(f"{p.name}: {p.type}" + ("?" if p.optional else "") for p in self.params)
        return f"{self.name}({inner}) -> {self.returns}"


def _canonical(type_: str) -> str:
    return "int" if type_ == "i4" else type_


def type_name(value: object) -> str:
    """The XML-RPC type a parsed value arrived as."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "base64"
    if isinstance(value, datetime):
        return "dateTime.iso8601"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "struct"
    return type(value).__name__


class RpcRegistry:
    """The methods callable at /RPC2, and the dispatcher that runs one request against them."""

    def __init__(self, *, call_timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.call_timeout = call_timeout
        self._methods: dict[str, RpcMethod] = {}
        self._add_system()

    # -- registration ---------------------------------------------------------------------------------------

    def register(
        self,
        name: str,
        fn: RpcFunction,
        *,
        returns: str,
        params: Sequence[Param | tuple[str, str]] = (),
        help: str,
        scope: str,
    ) -> None:
        """Make `fn(ctx, *params)` callable as `name` by callers granted `scope`.

        Raises ValueError/TypeError at wiring time for a bad name, type, parameter list or function.
        """
        if not _NAME.fullmatch(name) or name.startswith("system."):
            raise ValueError(f"RPC method name {name!r} must be dotted identifiers outside 'system.'")
        if not scope:
            raise ValueError(f"RPC method {name}: a permission scope is required")
        self._add(RpcMethod(name, fn, returns, tuple(_param(p) for p in params), help, scope))

    def method(
        self, name: str, *, returns: str, params: Sequence[Param | tuple[str, str]] = (), help: str, scope: str
    ) -> Callable[[RpcFunction], RpcFunction]:
        """Decorator form of `register`."""

        def decorate(fn: RpcFunction) -> RpcFunction:
            self.register(name, fn, returns=returns, params=params, help=help, scope=scope)
            return fn

        return decorate

    def _add(self, method: RpcMethod) -> None:
        if method.name in self._methods:
            raise ValueError(f"RPC method {method.name} is registered twice")
        if not inspect.iscoroutinefunction(method.fn):
            raise TypeError(f"RPC method {method.name}: {method.fn!r} is not an async function")
        for type_ in (method.returns, *(p.type for p in method.params)):
            if type_ not in TYPES:
                raise ValueError(f"RPC method {method.name}: unknown type {type_!r} (one of {sorted(TYPES)})")
        names = [p.name for p in method.params]
        if len(set(names)) != len(names):
            raise ValueError(f"RPC method {method.name}: parameter names repeat")
        optional = [p.optional for p in method.params]
        if optional != sorted(optional):
            raise ValueError(f"RPC method {method.name}: optional parameters must come last")
        self._methods[method.name] = method

    def names(self) -> list[str]:
        return sorted(self._methods)

    # -- dispatch -------------------------------------------------------------------------------------------

    async def dispatch(self, caller: RpcCaller, call: MethodCall) -> bytes:
        """Run one parsed request and encode its response or fault.  Only cancellation escapes."""
        try:
            result = await self.call(caller, call.method, call.params)
            return xmlrpc.dump_response(result)
        except Exception as exc:
            return xmlrpc.dump_fault(*self._fault(exc, caller, call.method))

    async def call(self, caller: RpcCaller, name: str, params: Sequence[Value]) -> Any:
        """Authorise, check and run one method; raise what it raises (see `fault_for`)."""
        method = self._methods.get(name)
        if method is None:
            raise RpcFault(xmlrpc.METHOD_NOT_FOUND, f"no method {name!r}; system.listMethods lists them")
        self._authorise(caller, method)
        args = method.check(params)
        timeout = asyncio.timeout(self.call_timeout)
        try:
            async with timeout:
                return await method.fn(RpcContext(caller, name), *args)
        except TimeoutError:
            if timeout.expired():
                raise RpcFault(TIMED_OUT, f"{name} did not finish within {self.call_timeout:g} s") from None
            raise

    def _authorise(self, caller: RpcCaller, method: RpcMethod) -> None:
        if method.scope is not None and not caller.has_scope(method.scope):
            raise RpcFault(NOT_PERMITTED, f"{caller.name} may not call {method.name} (needs scope {method.scope!r})")

    def _fault(self, exc: Exception, caller: RpcCaller, name: str) -> tuple[int, str]:
        fault = fault_for(exc)
        if fault is None:
            log.error("XML-RPC %s called by %s failed", name, caller.name, exc_info=exc)
            return xmlrpc.INTERNAL_ERROR, "internal error (logged on the server)"
        return fault

    # -- system.* (introspection and multicall) -------------------------------------------------------------

    def _add_system(self) -> None:
        system: list[tuple[str, RpcFunction, str, tuple[Param, ...], str]] = [
            ("system.listMethods", self._list_methods, "array", (), "The methods you may call, sorted."),
            (
                "system.methodHelp",
                self._method_help,
                "string",
                (Param("method", "string"),),
                "The help text of a method.",
            ),
            (
                "system.methodSignature",
                self._method_signature,
                "array",
                (Param("method", "string"),),
                "The signatures of a method: arrays of [return type, parameter types...], one per accepted arity.",
            ),
            (
                "system.multicall",
                self._multicall,
                "array",
                (Param("calls", "array"),),
                "Run several calls in order: each item is a struct {methodName, params}; each result is "
                "[value] or a fault struct {faultCode, faultString}.",
            ),
        ]
        for name, fn, returns, params, text in system:
            self._add(RpcMethod(name, fn, returns, params, text, None))

    def _visible(self, caller: RpcCaller, name: str) -> RpcMethod:
        method = self._methods.get(name)
        if method is None:
            raise RpcFault(xmlrpc.METHOD_NOT_FOUND, f"no method {name!r}; system.listMethods lists them")
        self._authorise(caller, method)
        return method

    async def _list_methods(self, ctx: RpcContext) -> list[str]:
        return [m.name for m in self._methods.values() if m.scope is None or ctx.caller.has_scope(m.scope)]

    async def _method_help(self, ctx: RpcContext, name: str) -> str:
        return self._visible(ctx.caller, name).help

    async def _method_signature(self, ctx: RpcContext, name: str) -> list[list[str]]:
        return self._visible(ctx.caller, name).signatures()

    async def _multicall(self, ctx: RpcContext, calls: list[Value]) -> list[Value]:
        results: list[Value] = []
        for index, entry in enumerate(calls):
            name = "?"
            try:
                name, params = _multicall_entry(index, entry)
                result = await self.call(ctx.caller, name, params)
                xmlrpc.check_value(result, f"result of {name}")
                results.append([result])
            except Exception as exc:
                code, message = self._fault(exc, ctx.caller, name)
                results.append({"faultCode": code, "faultString": message})
        return results


def _multicall_entry(index: int, entry: Value) -> tuple[str, list[Value]]:
    where = f"system.multicall item {index}"
    if not isinstance(entry, dict):
        raise RpcFault(xmlrpc.INVALID_REQUEST, f"{where}: must be a struct {{methodName, params}}")
    name = entry.get("methodName")
    params = entry.get("params", [])
    if not isinstance(name, str):
        raise RpcFault(xmlrpc.INVALID_REQUEST, f"{where}: 'methodName' must be a string")
    if not isinstance(params, list):
        raise RpcFault(xmlrpc.INVALID_REQUEST, f"{where}: 'params' must be an array")
    if name == "system.multicall":
        raise RpcFault(xmlrpc.INVALID_REQUEST, f"{where}: system.multicall cannot be nested")
    return name, params


def _param(spec: Param | tuple[str, str]) -> Param:
    return spec if isinstance(spec, Param) else Param(*spec)


# -- the HTTP endpoint --------------------------------------------------------------------------------------


class RpcEndpoint:
    """The ASGI app for /RPC2 (mount it with `Route("/RPC2", endpoint)`; it answers every HTTP method)."""

    def __init__(
        self,
        registry: RpcRegistry,
        authenticate: Authenticate,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_items: int = DEFAULT_MAX_ITEMS,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        realm: str = "hotline",
    ) -> None:
        self.registry = registry
        self.authenticate = authenticate
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.max_items = max_items
        self.body_timeout = body_timeout
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return PlainTextResponse(
                "XML-RPC: POST a <methodCall> as text/xml\n", status_code=405, headers={"Allow": "POST"}
            )
        try:
            caller = await self.authenticate(request)
        except AuthenticationError:
            caller = None
        except RateLimitedError as exc:
            retry = str(int(exc.retry_after) + 1)
            return PlainTextResponse(f"{exc}\n", status_code=429, headers={"Retry-After": retry})
        except DatabaseUnavailableError:
            return PlainTextResponse(
                "accounts unavailable, retry later\n", status_code=503, headers={"Retry-After": "5"}
            )
        except Exception:
            log.exception("XML-RPC authentication failed with an error")
            return PlainTextResponse("internal error\n", status_code=500)
        if caller is None:
            return PlainTextResponse(
                "authentication required: HTTP Basic user:password, or Authorization: Bearer <api key>\n",
                status_code=401,
                headers={"WWW-Authenticate": f'Basic realm="{self.realm}", charset="UTF-8"'},
            )
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "text/xml":
            return PlainTextResponse(f"Content-Type must be text/xml, not {media_type or 'none'!r}\n", status_code=415)
        if request.headers.get("content-encoding", "identity").strip().lower() != "identity":
            return PlainTextResponse("Content-Encoding must be identity\n", status_code=415)
        body = await self._read_body(request)
        if isinstance(body, Response):
            return body
        try:
            call = xmlrpc.parse_request(
                body, max_bytes=self.max_bytes, max_depth=self.max_depth, max_items=self.max_items
            )
        except XMLRPCRequestError as exc:
            return _xml(xmlrpc.dump_fault(exc.fault_code, exc.message))
        return _xml(await self.registry.dispatch(caller, call))

    async def _read_body(self, request: Request) -> bytes | Response:
        too_large = PlainTextResponse(f"request body larger than {self.max_bytes} bytes\n", status_code=413)
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return PlainTextResponse("invalid Content-Length\n", status_code=400)
            if int(declared) > self.max_bytes:
                return too_large
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.max_bytes:
                        return too_large
                    chunks.append(chunk)
        except TimeoutError:
            return PlainTextResponse(f"request body not received within {self.body_timeout:g} s\n", status_code=408)
        except ClientDisconnect:
            return PlainTextResponse("client disconnected\n", status_code=400)
        return b"".join(chunks)


def _xml(body: bytes) -> Response:
    return Response(body, media_type="text/xml")


def rpc_endpoint(
    registry: RpcRegistry,
    authenticate: Authenticate,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_items: int = DEFAULT_MAX_ITEMS,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> RpcEndpoint:
    """The /RPC2 ASGI app: `Starlette(routes=[Route("/RPC2", rpc_endpoint(registry, authenticate))])`.

    `authenticate(request)` returns the caller or None (-> HTTP 401); it is awaited before the body is read.
    """
    return RpcEndpoint(
        registry, authenticate, max_bytes=max_bytes, max_depth=max_depth, max_items=max_items, body_timeout=body_timeout
    )
