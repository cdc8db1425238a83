"""What every area of the XML-RPC catalogue shares: the caller, scopes, wire shapes, struct checks, audit.

- `RpcUser` is what `authenticate` hands the dispatcher: the web layer's `Caller` (principal, session,
  address) behind the `RpcCaller` face the dispatcher needs.  A method's scope may name alternatives,
  ``"agents:control|self"`` (the REST API's ``need(any_of=...)``), or ``"authenticated"`` (REST's
  ``need()``: any signed-in caller); `has_scope` reads both, so introspection lists exactly what a caller
  may call.
- `wire` turns what the REST helpers build (ISO strings for times, ints for ids) into XML-RPC's types:
  times become `dateTime.iso8601` (UTC), every ``id`` / ``*_id`` and ``size`` becomes a decimal string
  (docs/xmlrpc.md: a value that can exceed i4 is always a string, whatever its value).
- `members` checks a struct parameter's members like the dispatcher checks parameters (-32602 naming the
  parameter and member); `bounded` checks a limit or offset (422 naming the field).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

from hotline.domain.permissions import Principal
from hotline.errors import ValidationError
from hotline.protocols import xmlrpc
from hotline.protocols.xmlrpc import Value
from hotline.web.api.deps import audit as rest_audit
from hotline.web.auth import Caller
from hotline.web.context import WebServices
from hotline.web.rpc import Param, RpcContext, RpcFault, RpcFunction, RpcMethod, RpcRegistry, type_name

#: the pseudo-scope of methods any authenticated caller may call (REST: `need()` without a scope)
AUTHENTICATED: Final = "authenticated"
#: at most this many rows in one answer (as the REST API's `limit`)
MAX_LIMIT: Final = 1000

_I4_MIN, _I4_MAX = -(2**31), 2**31 - 1
_STRING_INTS: Final = frozenset({"id", "size"})
_TIMES: Final = frozenset({"at", "ts", "since", "until", "wrapup_until"})


@dataclass(frozen=True, slots=True)
class RpcUser:
    """The authenticated caller of /RPC2 (`hotline.web.rpc.RpcCaller`)."""

    caller: Caller

    @property
    def principal(self) -> Principal:
        return self.caller.principal

    @property
    def name(self) -> str:
        return self.caller.principal.actor

    @property
    def agent_number(self) -> str | None:
        return self.caller.principal.agent_number

    def has_scope(self, scope: str) -> bool:
        """`scope` is one scope, alternatives joined by '|', or `AUTHENTICATED`."""
        if scope == AUTHENTICATED:
            return True
        return any(self.caller.principal.has_scope(s) for s in scope.split("|"))


@dataclass
class Catalogue:
    """The registry being filled, remembering each method as registered (for the documentation table)."""

    registry: RpcRegistry
    entries: list[RpcMethod] = field(default_factory=list)

    def register(
        self,
        name: str,
        fn: RpcFunction,
        *,
        returns: str,
        params: Sequence[Param] = (),
        help: str,
        scope: str,
    ) -> None:
        self.registry.register(name, fn, returns=returns, params=params, help=help, scope=scope)
        self.entries.append(RpcMethod(name, fn, returns, tuple(params), help, scope))

    def method(
        self, name: str, *, returns: str, params: Sequence[Param] = (), help: str, scope: str
    ) -> Callable[[RpcFunction], RpcFunction]:
        def decorate(fn: RpcFunction) -> RpcFunction:
            self.register(name, fn, returns=returns, params=params, help=help, scope=scope)
            return fn

        return decorate


def who(ctx: RpcContext) -> RpcUser:
    user = ctx.caller
    assert isinstance(user, RpcUser), "the catalogue runs behind rpc_methods.authenticate"
    return user


def principal(ctx: RpcContext) -> Principal:
    return who(ctx).principal


def any_of(*scopes: str) -> str:
    return "|".join(scopes)


async def audit(
    svc: WebServices,
    ctx: RpcContext,
    action: str,
    resource: str,
    key: str = "",
    *,
    before: object = None,
    after: object = None,
) -> None:
    """One audit entry for a change made through XML-RPC (the REST API's helper, interface 'xmlrpc')."""
    await rest_audit(svc, who(ctx).caller, action, resource, key, before=before, after=after, interface="xmlrpc")


# ------------------------------------------------------------------------------------------ shapes
def wire(value: Any, key: str = "") -> Value:
    """A JSON-like value (as the REST helpers build it) in XML-RPC's types; `key` is the member it sits in."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if key in _STRING_INTS or key.endswith("_id") or not _I4_MIN <= value <= _I4_MAX:
            return str(value)
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if key in _TIMES or key.endswith("_at"):
            return _time(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): wire(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [wire(v, key) for v in value]
    raise TypeError(f"{type(value).__name__} has no XML-RPC shape")


def _time(text: str) -> Value:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text  # not a time after all (free text under a time-like name)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def items(rows: list[Any], total: int | None = None) -> dict[str, Value]:
    """The list shape every list function returns: {items, total}."""
    return {"items": [wire(r) for r in rows], "total": len(rows) if total is None else total}


# ------------------------------------------------------------------------------------------ checks
def members(ctx: RpcContext, param: str, value: Mapping[str, Value], spec: Mapping[str, str]) -> dict[str, Any]:
    """The members of struct parameter `param`, each of the type `spec` names; nil means "not given"."""
    out: dict[str, Any] = {}
    for name, item in value.items():
        expected = spec.get(name)
        if expected is None:
            raise RpcFault(
                xmlrpc.INVALID_PARAMS,
                f"{ctx.method}: parameter '{param}' has no member {name!r} (known: {', '.join(spec)})",
            )
        if item is None:
            continue
        got = type_name(item)
        if got != expected and not (expected == "double" and got == "int"):
            raise RpcFault(
                xmlrpc.INVALID_PARAMS,
                f"{ctx.method}: parameter '{param}' member '{name}' must be {expected}, got {got}",
            )
        out[name] = item
    return out


def bounded(name: str, value: Value, low: int, high: int) -> int:
    assert isinstance(value, int)
    if not low <= value <= high:
        raise ValidationError(name, f"must be between {low} and {high} (got {value})")
    return value


def utc(name: str, value: Value) -> datetime | None:
    """A dateTime member (None when not given); the codec already made it aware (UTC)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(name, "must be a dateTime.iso8601 (UTC)")
    return value
