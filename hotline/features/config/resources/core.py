"""Phones, agent groups, agents and their queues, queues, DID routes and nodes as resources.

Each write goes through the ConfigRepository / CallCenterRepository method that already does it (phone
digests, queue options and the overflow check, route destinations, agents' queues and their live
memberships) inside the catalogue's `WriteScope`; fields those methods do not take (an agent's recording
policy, a phone's `enabled`...) are written in the same transaction.  Rules written inline in a
repository method (no function to import) are restated once here, next to the field, with the method
named; tests/features/config/test_resources.py checks that both refuse the same values.
"""

from __future__ import annotations

import secrets
from typing import Any, cast

import sqlalchemy as sa

from hotline.db import tables as t
from hotline.db.repositories import (
    _ID,
    _QUEUE_OPTIONS,
    _choice,
    _flag,
    _int,
    _optional_int,
    _phone_name,
    _sound,
    _text,
    _token,
)
from hotline.db.repositories.callcenter import _GROUP_FIELDS
from hotline.domain.config import CALL_TYPES, DEST_TYPES, GROUP_ACTIONS, QUEUE_STRATEGIES, RECORDING_POLICIES
from hotline.errors import ConflictError, ValidationError
from hotline.features.config.resources.scope import WriteScope, refuse_if_destination, refuse_if_used
from hotline.features.config.resources.spec import NO_DEFAULT, Field, FieldType, Key, Resource
from hotline.passwords import SIP_PASSWORD_MAX, SIP_PASSWORD_MIN, hash_secret, validate_sip_password

_ID64 = _ID + "{1,64}"
_ID128 = _ID + "{1,128}"
_ID_RULE = "1 to 64 letters, digits, '.', '_' or '-'"
_EMPTY_RULE_HELP = "yes, no, strict, loose or a comma list of paused, penalty, inuse, ringing, unavailable, ..."


# ------------------------------------------------------------------------------------ shared fields
def created_at() -> Field:
    return Field("created_at", "datetime", "when it was created (UTC)")


def updated_at() -> Field:
    return Field("updated_at", "datetime", "when it was last changed (UTC)")


def _check_name64(f: str, v: object) -> str:
    return _token(f, v, _ID64, _ID_RULE)


def _agent_number(f: str, v: object) -> str:
    return _token(f, v, r"[0-9]{1,32}", "1 to 32 digits")  # ConfigRepository.add_agent


def _queue_name(f: str, v: object) -> str:
    return _token(f, v, _ID128, "1 to 128 letters, digits, '.', '_' or '-'")  # ConfigRepository.add_queue


def _group_name(f: str, v: object) -> str:
    return _text(f, v, 64, required=True)  # ConfigRepository.add_agent_group / add_agent


def _nullable(check: Any) -> Any:
    def run(f: str, v: object) -> object:
        return None if v is None else check(f, v)

    return run


def destination_fields(prefix: str, *, required: bool, what: str, empty_type: bool = False) -> tuple[Field, Field]:
    """`<prefix>_type` and `<prefix>_value` of a destination (`check_destination` checks them together)."""
    choices = ("", *DEST_TYPES) if empty_type else DEST_TYPES
    type_field = Field(
        f"{prefix}_type",
        "str",
        f"{what}: queue, agent, phone, external, hangup, ivr, time or redirect" + (" (empty: hang up)" * empty_type),
        check=lambda f, v: _choice(f, v, choices),
        required=required,
        choices=choices,
        max_length=16,
        default=NO_DEFAULT if required else "",
    )
    value_field = Field(
        f"{prefix}_value",
        "str",
        "the queue name, agent number, phone name, IVR menu, time condition, external number or sip: URI "
        "(empty for hangup)",
        check=lambda f, v: _text(f, v, 255),
        default="",
        max_length=255,
        references_by=f"{prefix}_type",
    )
    return type_field, value_field


def update_row(scope: WriteScope, table: sa.Table, column: str, key: object, values: dict[str, Any], what: str) -> None:
    if values:
        scope.execute(sa.update(table).where(table.c[column] == key).values(**values), what)


def pick(data: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: data[n] for n in names if n in data}


# ------------------------------------------------------------------------------------------ phones
def _password(f: str, v: object) -> str:
    validate_sip_password(cast(str, v))  # the one rule for SIP passwords (checks the type itself)
    return cast(str, v)


def _codecs(f: str, v: object) -> str:  # ConfigRepository.add_phone
    _token(f, v, r"[a-z0-9_]+(,[a-z0-9_]+)*", "a comma list of codec names like 'ulaw,alaw'")
    if len(cast(str, v)) > 128:
        raise ValidationError(f, "must be at most 128 characters long")
    return cast(str, v)


def _phone_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    shown: dict[str, Any] = {}
    password = data.get("password")
    if password is None:  # generated like `hotline phone add --generate`, returned this once
        password = shown["password"] = secrets.token_urlsafe(12)
    options = pick(data, "context", "callerid", "codecs", "max_contacts")
    scope.config.add_phone(data["name"], password, realm=scope.realm, **options)
    update_row(scope, t.phones, "name", data["name"], pick(data, "enabled"), "")
    return (data["name"],), shown


def _phone_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    changes = dict(changes)
    password = changes.pop("password", None)
    if password is not None:
        scope.config.set_phone_password(key[0], password, realm=scope.realm)
    update_row(scope, t.phones, "name", key[0], changes, "")


def _phone_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    name = key[0]
    refuse_if_destination(scope, "phone", "phone", name)
    s, a = t.agent_status, t.agents
    refuse_if_used(
        scope,
        "phone",
        name,
        "the logged-in agent(s)",
        sa.select(a.c.number).join(s, s.c.agent_id == a.c.id).where(s.c.phone == name).order_by(a.c.number),
    )
    scope.config.delete_phone(name)  # agents with this fixed phone lose it (agents.phone_id SET NULL)


PHONES = Resource(
    name="phones",
    title="phone",
    description="SIP desk phones (PJSIP endpoint + AOR + auth); only password digests are stored.",
    table=t.phones,
    key_fields=("name",),
    fields=(
        Field(
            "name",
            "str",
            "endpoint id and SIP user name",
            check=lambda f, v: _phone_name(v),
            required=True,
            immutable=True,
            max_length=64,
            pattern=_ID64,
        ),
        Field(
            "password",
            "str",
            "SIP password (8 to 128 printable ASCII characters); generated and returned once when not given",
            check=_password,
            write_only=True,
            max_length=SIP_PASSWORD_MAX,
            minimum=SIP_PASSWORD_MIN,
        ),
        Field("has_password", "bool", "digests of a password are stored (always true)"),
        Field(
            "callerid",
            "str",
            "caller id, e.g. '\"Desk 2001\" <2001>'",
            check=lambda f, v: _text(f, v, 128),
            default="",
            max_length=128,
        ),
        Field(
            "context",
            "str",
            "dialplan context of the endpoint",
            check=_check_name64,
            default="hotline-phones",
            max_length=64,
            pattern=_ID64,
        ),
        Field(
            "codecs",
            "str",
            "allowed codecs in order",
            check=_codecs,
            default="ulaw,alaw",
            max_length=128,
            pattern=r"[a-z0-9_]+(,[a-z0-9_]+)*",
        ),
        Field(
            "max_contacts",
            "int",
            "registrations at once",
            check=lambda f, v: _int(f, v, minimum=1, maximum=100),
            default=1,
            minimum=1,
            maximum=100,
        ),
        Field("enabled", "bool", "a disabled phone cannot register", check=_flag, default=True),
        Field("realm", "str", "SIP digest realm the password was hashed with"),
        created_at(),
        updated_at(),
    ),
    column_exprs={
        "name": t.phones.c.name,
        "has_password": t.phones.c.digest_sha256.is_not(None),
        "callerid": t.phones.c.callerid,
        "context": t.phones.c.context,
        "codecs": t.phones.c.codecs,
        "max_contacts": t.phones.c.max_contacts,
        "enabled": t.phones.c.enabled,
        "realm": t.phones.c.realm,
        "created_at": t.phones.c.created_at,
        "updated_at": t.phones.c.updated_at,
    },
    create=_phone_create,
    update=_phone_update,
    delete=_phone_delete,
    search=("name", "callerid"),
)


# ------------------------------------------------------------------------------------ agent groups
def _group_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    scope.config.add_agent_group(data["name"], data.get("description", ""))
    limits = {k: v for k, v in data.items() if k not in ("name", "description")}
    if limits:
        scope.callcenter.update_agent_group(data["name"], **limits)
    return (data["name"],), {}


def _group_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    scope.callcenter.update_agent_group(key[0], **changes)


def _group_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    a, g = t.agents, t.agent_groups
    refuse_if_used(
        scope,
        "agent group",
        key[0],
        "agent(s)",
        sa.select(a.c.number).join(g, g.c.id == a.c.group_id).where(g.c.name == key[0]).order_by(a.c.number),
    )
    scope.execute(sa.delete(g).where(g.c.name == key[0]))


def _quota(name: str, what: str) -> Field:
    return Field(
        name,
        "int",
        f"{what} per agent of the group and UTC day (null: no quota)",
        check=_GROUP_FIELDS[name],
        nullable=True,
        default=None,
        minimum=0,
        maximum=100_000,
    )


AGENT_GROUPS = Resource(
    name="agent_groups",
    title="agent group",
    description="Agents sharing limits: call types and actions allowed, daily quotas, auto-pause, recording.",
    table=t.agent_groups,
    key_fields=("name",),
    fields=(
        Field("name", "str", "group name", check=_group_name, required=True, immutable=True, max_length=64),
        Field("description", "str", "free text", check=_GROUP_FIELDS["description"], default="", max_length=255),
        Field(
            "max_missed_in_row",
            "int",
            "auto-pause after this many missed calls in a row (0: never)",
            check=_GROUP_FIELDS["max_missed_in_row"],
            default=3,
            minimum=0,
            maximum=100,
        ),
        Field(
            "allowed_call_types",
            "str",
            "call types the group's agents may place (comma list)",
            check=_GROUP_FIELDS["allowed_call_types"],
            default="internal,local,mobile,long_distance",
            choices=CALL_TYPES,
            multiple=True,
            max_length=255,
        ),
        Field(
            "allowed_actions",
            "str",
            "call-control actions allowed (comma list)",
            check=_GROUP_FIELDS["allowed_actions"],
            default="originate,transfer_internal",
            choices=GROUP_ACTIONS,
            multiple=True,
            max_length=255,
        ),
        _quota("daily_call_quota", "calls"),
        _quota("daily_minute_quota", "talk minutes"),
        Field(
            "recording",
            "str",
            "recording policy (inherit: the queue's)",
            check=_GROUP_FIELDS["recording"],
            default="inherit",
            choices=RECORDING_POLICIES,
        ),
        created_at(),
        updated_at(),
    ),
    create=_group_create,
    update=_group_update,
    delete=_group_delete,
    search=("name", "description"),
)


# ------------------------------------------------------------------------------------------ agents
def _pin_hash(f: str, v: object) -> str | None:
    """The PIN rule of ConfigRepository.add_agent; the value kept is its argon2id hash, computed here,
    before any transaction opens (argon2 takes tens of milliseconds; locks must not wait on it)."""
    if v is None:
        return None
    return hash_secret(_token(f, v, r"[0-9]{4,12}", "4 to 12 digits"))


def _agent_refs(scope: WriteScope, data: dict[str, Any]) -> dict[str, Any]:
    """group/phone names -> group_id/phone_id, pin -> pin_hash (ValidationError naming a missing one)."""
    values = pick(data, "name", "enabled", "recording")
    if "group" in data:
        group = data["group"]
        values["group_id"] = (
            None if group is None else scope.id_of("group", t.agent_groups.c.name, group, "agent group")
        )
    if "phone" in data:
        phone = data["phone"]
        values["phone_id"] = None if phone is None else scope.id_of("phone", t.phones.c.name, phone, "phone")
    if "pin" in data:
        values["pin_hash"] = data["pin"]
    return values


def _agent_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    # references first: a missing group is ValidationError('group') rather than add_agent's NotFoundError
    values = _agent_refs(scope, data)
    scope.config.add_agent(data["number"], data["name"], group=data.get("group"), phone=data.get("phone"))
    update_row(scope, t.agents, "number", data["number"], pick(values, "pin_hash", "enabled", "recording"), "")
    return (data["number"],), {}


def _agent_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    update_row(scope, t.agents, "number", key[0], _agent_refs(scope, changes), "")


def _agent_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    number = key[0]
    refuse_if_destination(scope, "agent", "agent", number)
    a, s = t.agents, t.agent_status
    phone = scope.conn.execute(
        sa.select(s.c.phone).join(a, a.c.id == s.c.agent_id).where(a.c.number == number, s.c.state != "logged_out")
    ).first()
    if phone is not None:
        raise ConflictError(f"agent {number!r} is logged in (phone {phone.phone}); log the agent off first")
    # queues served, live memberships, status and quota rows go with the agent (FK cascades)
    scope.execute(sa.delete(a).where(a.c.number == number))


_A, _G, _P = t.agents, t.agent_groups, t.phones
AGENTS = Resource(
    name="agents",
    title="agent",
    description="People who answer calls; they log in on any phone (hot-desking) with their number and PIN.",
    table=t.agents,
    key_fields=("number",),
    fields=(
        Field(
            "number",
            "str",
            "agent number (dialled at login)",
            check=_agent_number,
            required=True,
            immutable=True,
            max_length=32,
            pattern=r"[0-9]{1,32}",
        ),
        Field(
            "name",
            "str",
            "display name",
            check=lambda f, v: _text(f, v, 128, required=True),
            required=True,
            max_length=128,
        ),
        Field(
            "group",
            "str",
            "agent group (its limits apply)",
            check=_nullable(_group_name),
            nullable=True,
            default=None,
            references="agent_groups",
            max_length=64,
        ),
        Field(
            "phone",
            "str",
            "a fixed phone, or null (the agent logs in anywhere)",
            check=_nullable(_check_name64),
            nullable=True,
            default=None,
            references="phones",
            max_length=64,
        ),
        Field(
            "pin",
            "str",
            "login PIN, 4 to 12 digits (stored argon2id-hashed; null: no PIN login)",
            check=_pin_hash,
            nullable=True,
            write_only=True,
            pattern=r"[0-9]{4,12}",
            max_length=12,
        ),
        Field("has_pin", "bool", "a PIN is set"),
        Field("enabled", "bool", "a disabled agent cannot log in", check=_flag, default=True),
        Field(
            "recording",
            "str",
            "recording policy (inherit: the group's, then the queue's)",
            check=lambda f, v: _choice(f, v, RECORDING_POLICIES),
            default="inherit",
            choices=RECORDING_POLICIES,
        ),
        created_at(),
        updated_at(),
    ),
    joined=_A.outerjoin(_G, _G.c.id == _A.c.group_id).outerjoin(_P, _P.c.id == _A.c.phone_id),
    column_exprs={
        "number": _A.c.number,
        "name": _A.c.name,
        "group": _G.c.name,
        "phone": _P.c.name,
        "has_pin": _A.c.pin_hash.is_not(None),
        "enabled": _A.c.enabled,
        "recording": _A.c.recording,
        "created_at": _A.c.created_at,
        "updated_at": _A.c.updated_at,
    },
    create=_agent_create,
    update=_agent_update,
    delete=_agent_delete,
    search=("number", "name"),
)


# ------------------------------------------------------------------------------ agents' queues
def _skill_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    agent, queue = data["agent"], data["queue"]
    agent_id = scope.id_of("agent", t.agents.c.number, agent, "agent")
    queue_id = scope.id_of("queue", t.queues.c.name, queue, "queue")
    aq = t.agent_queues
    if scope.exists(sa.and_(aq.c.agent_id == agent_id, aq.c.queue_id == queue_id), aq):
        raise ConflictError(f"agent {agent!r} already serves queue {queue!r}")
    scope.callcenter.set_agent_queue(agent, queue, data.get("penalty", 0))
    return (agent, queue), {}


def _skill_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    scope.callcenter.set_agent_queue(key[0], key[1], changes["penalty"])  # also the live membership


def _skill_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.callcenter.remove_agent_queue(key[0], key[1])


_AQ, _Q = t.agent_queues, t.queues
AGENT_QUEUES = Resource(
    name="agent_queues",
    title="agent queue",
    description="The queues an agent serves (skills) with a penalty; they ring the agent's phone while logged in.",
    table=t.agent_queues,
    key_fields=("agent", "queue"),
    key_help="AGENT:QUEUE (e.g. 1001:support)",
    fields=(
        Field("key", "str", "AGENT:QUEUE", sortable=False, filterable=False),
        Field(
            "agent",
            "str",
            "agent number",
            check=_agent_number,
            required=True,
            immutable=True,
            references="agents",
            max_length=32,
        ),
        Field(
            "queue",
            "str",
            "queue name",
            check=_queue_name,
            required=True,
            immutable=True,
            references="queues",
            max_length=128,
        ),
        Field(
            "penalty",
            "int",
            "skill level: lower rings first",
            check=lambda f, v: _int(f, v, maximum=1000),  # CallCenterRepository.set_agent_queue
            default=0,
            minimum=0,
            maximum=1000,
        ),
    ),
    joined=_AQ.join(_A, _A.c.id == _AQ.c.agent_id).join(_Q, _Q.c.id == _AQ.c.queue_id),
    column_exprs={"agent": _A.c.number, "queue": _Q.c.name, "penalty": _AQ.c.penalty},
    computed={"key": lambda row: f"{row['agent']}:{row['queue']}"},
    create=_skill_create,
    update=_skill_update,
    delete=_skill_delete,
    search=("agent", "queue"),
    sort=("agent", "queue"),
)


# ------------------------------------------------------------------------------------------ queues
def _queue_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    options = {k: v for k, v in data.items() if k != "name"}
    scope.config.add_queue(data["name"], **options)  # options, then the overflow check on the stored row
    return (data["name"],), {}


def _queue_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    scope.config.update_queue(key[0], **changes)


def _queue_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    refuse_if_destination(scope, "queue", "queue", key[0])
    # agents' skills and members go with the queue (FK cascades)
    scope.execute(sa.delete(t.queues).where(t.queues.c.name == key[0]))


def _opt(name: str, type_: Any, description: str, default: Any, **kw: Any) -> Field:
    return Field(name, type_, description, check=_QUEUE_OPTIONS[name], default=default, **kw)


def _secs(name: str, description: str, default: int) -> Field:
    return _opt(name, "int", description, default, minimum=0)


def _queues(*, fields: tuple[Field, ...], other_options: bool, **kw: Any) -> Resource:
    """The queues resource; a queue option added to the repository's `_QUEUE_OPTIONS` later is a field too
    (described from its column) until it gets its own description here."""
    named = {f.name for f in fields}
    extra: list[Field] = []
    for name, check in _QUEUE_OPTIONS.items():
        if other_options and name not in named:
            column = t.queues.c[name]
            kind: FieldType = "str"
            if isinstance(column.type, sa.Boolean):
                kind = "bool"
            elif isinstance(column.type, sa.Integer):
                kind = "int"
            extra.append(Field(name, kind, f"queue option {name}", check=check, nullable=column.nullable is True))
    return Resource(fields=(*fields[:-2], *extra, *fields[-2:]), **kw)


QUEUES = _queues(
    name="queues",
    title="queue",
    description="app_queue queues, served live to Asterisk over realtime; Hotline adds max_wait, priority, "
    "overflow and recording.",
    table=t.queues,
    key_fields=("name",),
    fields=(
        Field(
            "name",
            "str",
            "queue name",
            check=_queue_name,
            required=True,
            immutable=True,
            max_length=128,
            pattern=_ID128,
        ),
        _opt("strategy", "str", "ring strategy", "ringall", choices=QUEUE_STRATEGIES),
        _secs("timeout", "seconds an agent's phone rings", 15),
        _secs("retry", "seconds before ringing again", 5),
        _secs("wrapuptime", "seconds after a call before the agent rings again", 0),
        _opt("maxlen", "int", "callers waiting at most (0: no limit)", 0, minimum=0),
        _secs("servicelevel", "service-level threshold in seconds", 60),
        _opt("musicclass", "str", "music on hold class", "default", max_length=128, pattern=_ID128),
        _opt("joinempty", "str", f"join with no available agent: {_EMPTY_RULE_HELP}", "yes", max_length=128),
        _opt("leavewhenempty", "str", f"leave with no available agent: {_EMPTY_RULE_HELP}", "no", max_length=128),
        _opt("ringinuse", "bool", "ring agents already on a call", False),
        _opt("weight", "int", "queue weight when agents serve several queues", 0, minimum=0),
        _opt(
            "max_wait",
            "int",
            "seconds a caller may wait, then the overflow (null: no limit)",
            None,
            minimum=1,
            nullable=True,
        ),
        _secs("announce_frequency", "seconds between position/hold-time announcements (0: never)", 0),
        _opt("announce_holdtime", "str", "announce the hold time", "no", choices=("yes", "no", "once")),
        _opt("announce_position", "str", "announce the position", "no", choices=("yes", "no", "more", "limit")),
        _opt("announce_position_limit", "int", "positions announced with announce_position=limit", 5, minimum=0),
        _opt("periodic_announce", "str", "sound or prompt played periodically (empty: none)", "", max_length=128),
        _secs("periodic_announce_frequency", "seconds between periodic announcements", 0),
        _opt("priority", "int", "callers' priority (higher is served first)", 0, minimum=0, maximum=1000),
        *destination_fields(
            "overflow", required=False, what="where callers go when the queue gives up", empty_type=True
        ),
        _opt("recording", "str", "record calls of this queue", "never", choices=("always", "never")),
        created_at(),
        updated_at(),
    ),
    other_options=True,
    create=_queue_create,
    update=_queue_update,
    delete=_queue_delete,
    search=("name",),
)


# -------------------------------------------------------------------------------------- DID routes
def _route_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    scope.config.add_route(
        data["did"],
        data["dest_type"],
        data.get("dest_value", ""),
        **pick(data, "hangup_cause", "description", "message"),
    )
    if "enabled" in data:
        scope.config.update_route(data["did"], enabled=data["enabled"])
    return (data["did"],), {}


def _route_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    scope.config.update_route(key[0], **changes)  # the merged destination is checked against its rows


def _route_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.config.delete_route(key[0])


_DID = r"\+?[0-9A-Za-z*#]{1,63}"
DID_ROUTES = Resource(
    name="did_routes",
    title="DID route",
    description="Where inbound calls to a number (DID) go.",
    table=t.did_routes,
    key_fields=("did",),
    fields=(
        Field(
            "did",
            "str",
            "the dialled number",
            required=True,
            immutable=True,
            max_length=64,
            pattern=_DID,
            check=lambda f, v: _token(f, v, _DID, "a number: digits (or letters, '*', '#'), optional '+'"),
        ),
        *destination_fields("dest", required=True, what="destination"),
        Field(
            "hangup_cause",
            "int",
            "Q.850 cause of a hangup destination (null: normal clearing)",
            check=lambda f, v: _optional_int(f, v, minimum=1, maximum=127),
            nullable=True,
            default=None,
            minimum=1,
            maximum=127,
        ),
        Field(
            "message",
            "str",
            "sound or prompt played before a hangup destination",
            check=_sound,
            default="",
            max_length=128,
        ),
        Field("description", "str", "free text", check=lambda f, v: _text(f, v, 255), default="", max_length=255),
        Field("enabled", "bool", "a disabled route takes no calls", check=_flag, default=True),
        created_at(),
        updated_at(),
    ),
    create=_route_create,
    update=_route_update,
    delete=_route_delete,
    search=("did", "dest_value", "description"),
)


# ------------------------------------------------------------------------------------------- nodes
def _node_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    if scope.exists(t.nodes.c.name == data["name"], t.nodes):  # upsert_node would change it
        raise ConflictError(f"node {data['name']!r} already exists")
    scope.config.upsert_node(data["name"], data["address"], data["sip_port"], data["ami_port"])
    return (data["name"],), {}


def _node_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    merged = {**before, **changes}
    scope.config.upsert_node(key[0], merged["address"], merged["sip_port"], merged["ami_port"])


def _node_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.execute(sa.delete(t.nodes).where(t.nodes.c.name == key[0]))


def _port(name: str, what: str) -> Field:
    return Field(
        name,
        "int",
        what,
        check=lambda f, v: _int(f, v, minimum=1, maximum=65535),
        required=True,
        minimum=1,
        maximum=65535,
    )


NODES = Resource(
    name="nodes",
    title="node",
    description="Asterisk nodes of the cluster; state, load and version are reported by the nodes (read-only).",
    table=t.nodes,
    key_fields=("name",),
    fields=(
        Field(
            "name", "str", "node name", check=_check_name64, required=True, immutable=True, max_length=64, pattern=_ID64
        ),
        Field(
            "address",
            "str",
            "IP address or host name (SIP and AMI)",
            required=True,
            max_length=64,
            check=lambda f, v: _token(f, v, r"[A-Za-z0-9.:_-]{1,64}", "an IP address or host name"),
        ),
        _port("sip_port", "SIP port"),
        _port("ami_port", "AMI port"),
        Field("state", "str", "up, down or unknown, as last seen"),
        Field("last_seen_at", "datetime", "last status report (UTC)"),
        Field("active_calls", "int", "calls at the last report"),
        Field("load", "float", "load at the last report"),
        Field("version", "str", "Asterisk version"),
        created_at(),
        updated_at(),
    ),
    create=_node_create,
    update=_node_update,
    delete=_node_delete,
    search=("name", "address"),
)
