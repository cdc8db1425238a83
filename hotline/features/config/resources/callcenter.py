"""Pause reasons, service numbers, IVR menus and options, time conditions, holidays and call-type rules.

Writes go through CallCenterRepository (destinations checked by `check_destination`, hours parsed by
domain/schedule.py, patterns compiled by domain/limits.py) inside the catalogue's `WriteScope`.  The
repository has no update methods for most of these; updates write the row in the scope after the same
field rules, and re-check a changed destination on the merged row with the same `check_destination`.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa

from hotline.db import tables as t
from hotline.db.repositories import _choice, _flag, _int, _optional_int, _sound, _text, _token, check_destination
from hotline.db.repositories.callcenter import _NAME, _NAME_HELP
from hotline.domain.config import CALL_TYPES
from hotline.domain.limits import pattern_regex
from hotline.domain.schedule import parse_hours, zone
from hotline.errors import ConflictError, ValidationError
from hotline.features.config.resources.core import created_at, destination_fields, pick, update_row, updated_at
from hotline.features.config.resources.scope import WriteScope, refuse_if_destination, refuse_if_used
from hotline.features.config.resources.spec import Field, Key, Resource, to_date


def _menu_name(f: str, v: object) -> str:
    return _token(f, v, _NAME, _NAME_HELP)


def _check_merged_destination(
    scope: WriteScope, prefix: str, before: dict[str, Any], changes: dict[str, Any], *, self_type: str, self_name: str
) -> None:
    """When a destination changes, check the pair as it will be stored; refuse a loop to the object itself."""
    tf, vf = f"{prefix}_type", f"{prefix}_value"
    if tf not in changes and vf not in changes:
        return
    dest_type, dest_value = changes.get(tf, before[tf]), changes.get(vf, before[vf])
    if prefix == "fail" and dest_type == "":
        if dest_value:
            raise ValidationError(vf, "needs a fail_type")
        return
    check_destination(scope.conn, prefix, dest_type, dest_value)
    if dest_type == self_type and dest_value == self_name:
        raise ValidationError(vf, f"cannot lead to the {self_type} {self_name!r} itself")


# ----------------------------------------------------------------------------------- pause reasons
def _reason_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    scope.callcenter.add_pause_reason(data["name"], **pick(data, "paid", "max_duration_s"))
    update_row(scope, t.pause_reasons, "name", data["name"], pick(data, "enabled"), "")
    return (data["name"],), {}


def _reason_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    update_row(scope, t.pause_reasons, "name", key[0], changes, "")


def _reason_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    a, s = t.agents, t.agent_status
    refuse_if_used(
        scope,
        "pause reason",
        key[0],
        "the agent(s) paused with it",
        sa.select(a.c.number)
        .join(s, s.c.agent_id == a.c.id)
        .where(s.c.state == "paused", s.c.pause_reason == key[0])
        .order_by(a.c.number),
    )
    scope.execute(sa.delete(t.pause_reasons).where(t.pause_reasons.c.name == key[0]))


_REASON = r"[A-Za-z0-9 ._-]{1,64}"
PAUSE_REASONS = Resource(
    name="pause_reasons",
    title="pause reason",
    description="Why agents pause: paid or unpaid, optionally ending by themselves after a maximum duration.",
    table=t.pause_reasons,
    key_fields=("name",),
    fields=(
        Field(
            "name",
            "str",
            "reason name",
            required=True,
            immutable=True,
            max_length=64,
            pattern=_REASON,
            check=lambda f, v: _token(f, v, _REASON, "1 to 64 letters, digits, spaces, '.', '_' or '-'"),
        ),
        Field("paid", "bool", "paid pause", check=_flag, default=False),
        Field(
            "max_duration_s",
            "int",
            "the pause ends by itself after this many seconds (null: no limit)",
            check=lambda f, v: _optional_int(f, v, minimum=1, maximum=86_400),
            nullable=True,
            default=None,
            minimum=1,
            maximum=86_400,
        ),
        Field("enabled", "bool", "offered to agents", check=_flag, default=True),
        created_at(),
        updated_at(),
    ),
    create=_reason_create,
    update=_reason_update,
    delete=_reason_delete,
    search=("name",),
)


# --------------------------------------------------------------------------------- service numbers
def _service_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    scope.callcenter.add_service_number(
        data["number"], data["kind"], data["dest_type"], data.get("dest_value", ""), data.get("description", "")
    )
    return (data["number"],), {}


def _service_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    _check_merged_destination(scope, "dest", before, changes, self_type="", self_name="")
    update_row(scope, t.service_numbers, "number", key[0], changes, "")


def _service_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.execute(sa.delete(t.service_numbers).where(t.service_numbers.c.number == key[0]))


_SERVICE = r"\+?[0-9*#]{1,32}"
SERVICE_NUMBERS = Resource(
    name="service_numbers",
    title="service number",
    description="Numbers every phone may dial even with nobody logged in: the help desk and emergency numbers.",
    table=t.service_numbers,
    key_fields=("number",),
    fields=(
        Field(
            "number",
            "str",
            "the number dialled",
            check=lambda f, v: _token(f, v, _SERVICE, "a number"),
            required=True,
            immutable=True,
            max_length=32,
            pattern=_SERVICE,
        ),
        Field(
            "kind",
            "str",
            "help or emergency",
            check=lambda f, v: _choice(f, v, ("help", "emergency")),
            required=True,
            choices=("help", "emergency"),
        ),
        *destination_fields("dest", required=True, what="destination"),
        Field("description", "str", "free text", check=lambda f, v: _text(f, v, 255), default="", max_length=255),
    ),
    create=_service_create,
    update=_service_update,
    delete=_service_delete,
    search=("number", "description"),
)


# --------------------------------------------------------------------------------------- IVR menus
def _prompt(f: str, v: object) -> str:
    if not v:  # CallCenterRepository.add_ivr
        raise ValidationError(f, "is required")
    return _sound(f, v)


def _ivr_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    if not data.get("fail_type") and data.get("fail_value"):
        raise ValidationError("fail_value", "needs a fail_type")
    scope.callcenter.add_ivr(
        data["name"],
        data["prompt"],
        **pick(data, "timeout_s", "max_attempts", "invalid_prompt", "fail_type", "fail_value"),
    )
    return (data["name"],), {}


def _ivr_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    _check_merged_destination(scope, "fail", before, changes, self_type="ivr", self_name=key[0])
    update_row(scope, t.ivr_menus, "name", key[0], changes, "")


def _ivr_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    refuse_if_destination(scope, "IVR menu", "ivr", key[0], skip_menu=key[0])
    scope.execute(sa.delete(t.ivr_menus).where(t.ivr_menus.c.name == key[0]))  # its options go with it


IVR_MENUS = Resource(
    name="ivr_menus",
    title="IVR menu",
    description="Voice menus: a prompt, one digit read, the option's destination; after max_attempts the failure "
    "destination.",
    table=t.ivr_menus,
    key_fields=("name",),
    fields=(
        Field(
            "name", "str", "menu name", check=_menu_name, required=True, immutable=True, max_length=64, pattern=_NAME
        ),
        Field("prompt", "str", "sound or uploaded prompt played first", check=_prompt, required=True, max_length=128),
        Field(
            "invalid_prompt",
            "str",
            "played after an invalid or missing digit",
            check=_sound,
            default="pm-invalid-option",
            max_length=128,
        ),
        Field(
            "timeout_s",
            "int",
            "seconds to wait for a digit",
            check=lambda f, v: _int(f, v, minimum=1, maximum=60),
            default=5,
            minimum=1,
            maximum=60,
        ),
        Field(
            "max_attempts",
            "int",
            "attempts before the failure destination",
            check=lambda f, v: _int(f, v, minimum=1, maximum=10),
            default=3,
            minimum=1,
            maximum=10,
        ),
        *destination_fields("fail", required=False, what="after the last attempt", empty_type=True),
        created_at(),
        updated_at(),
    ),
    create=_ivr_create,
    update=_ivr_update,
    delete=_ivr_delete,
    search=("name", "prompt"),
)


# ------------------------------------------------------------------------------------- IVR options
def _option_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    menu, digit = data["menu"], data["digit"]
    menu_id = scope.id_of("menu", t.ivr_menus.c.name, menu, "IVR menu")
    o = t.ivr_options
    if scope.exists(sa.and_(o.c.menu_id == menu_id, o.c.digit == digit), o):
        raise ConflictError(f"IVR menu {menu!r} already has an option {digit!r}")
    scope.callcenter.set_ivr_option(menu, digit, data["dest_type"], data.get("dest_value", ""))
    return (menu, digit), {}


def _option_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    merged = {**before, **changes}
    scope.callcenter.set_ivr_option(key[0], key[1], merged["dest_type"], merged["dest_value"])


def _option_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    o, m = t.ivr_options, t.ivr_menus
    menu_id = sa.select(m.c.id).where(m.c.name == key[0]).scalar_subquery()
    scope.execute(sa.delete(o).where(o.c.menu_id == menu_id, o.c.digit == key[1]))


_O, _M = t.ivr_options, t.ivr_menus
IVR_OPTIONS = Resource(
    name="ivr_options",
    title="IVR option",
    description="The digits of an IVR menu and where each leads.",
    table=t.ivr_options,
    key_fields=("menu", "digit"),
    key_help="MENU:DIGIT (e.g. main:1)",
    fields=(
        Field("key", "str", "MENU:DIGIT", sortable=False, filterable=False),
        Field(
            "menu",
            "str",
            "IVR menu",
            check=_menu_name,
            required=True,
            immutable=True,
            references="ivr_menus",
            max_length=64,
        ),
        Field(
            "digit",
            "str",
            "0-9, * or #",
            required=True,
            immutable=True,
            pattern=r"[0-9*#]",
            max_length=1,
            check=lambda f, v: _token(f, v, r"[0-9*#]", "one of 0-9, * or #"),
        ),
        *destination_fields("dest", required=True, what="destination"),
    ),
    joined=_O.join(_M, _M.c.id == _O.c.menu_id),
    column_exprs={"menu": _M.c.name, "digit": _O.c.digit, "dest_type": _O.c.dest_type, "dest_value": _O.c.dest_value},
    computed={"key": lambda row: f"{row['menu']}:{row['digit']}"},
    create=_option_create,
    update=_option_update,
    delete=_option_delete,
    search=("menu", "dest_value"),
    sort=("menu", "digit"),
)


# --------------------------------------------------------------------------------- time conditions
def _hours(f: str, v: object) -> str:
    _text(f, v, 2000)  # CallCenterRepository.add_time_condition
    parse_hours(cast(str, v), f)
    return cast(str, v)


def _timezone(f: str, v: object) -> str:
    _text(f, v, 64)
    zone(cast(str, v), f)
    return cast(str, v)


def _time_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    scope.callcenter.add_time_condition(
        data["name"],
        data["hours"],
        open_type=data["open_type"],
        closed_type=data["closed_type"],
        **pick(data, "open_value", "closed_value", "timezone"),
    )
    return (data["name"],), {}


def _time_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    changes = dict(changes)
    schedule = {k: changes.pop(k) for k in ("hours", "timezone") if k in changes}
    if schedule:
        scope.callcenter.update_time_condition(key[0], **schedule)
    for prefix in ("open", "closed"):
        _check_merged_destination(scope, prefix, before, changes, self_type="time", self_name=key[0])
    update_row(scope, t.time_conditions, "name", key[0], changes, "")


def _time_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    refuse_if_destination(scope, "time condition", "time", key[0])
    scope.execute(sa.delete(t.time_conditions).where(t.time_conditions.c.name == key[0]))


TIME_CONDITIONS = Resource(
    name="time_conditions",
    title="time condition",
    description="Business hours: weekly hours in a time zone (holidays closed) and where calls go open or closed.",
    table=t.time_conditions,
    key_fields=("name",),
    fields=(
        Field(
            "name",
            "str",
            "condition name",
            check=_menu_name,
            required=True,
            immutable=True,
            max_length=64,
            pattern=_NAME,
        ),
        Field(
            "hours",
            "str",
            "weekly hours, e.g. 'mon-fri 09:00-13:00,14:00-18:00; sat 10:00-14:00'",
            check=_hours,
            required=True,
            max_length=2000,
        ),
        Field("timezone", "str", "IANA time zone of the hours", check=_timezone, default="UTC", max_length=64),
        *destination_fields("open", required=True, what="while open"),
        *destination_fields("closed", required=True, what="while closed (and on holidays)"),
        created_at(),
        updated_at(),
    ),
    create=_time_create,
    update=_time_update,
    delete=_time_delete,
    search=("name",),
)


# ---------------------------------------------------------------------------------------- holidays
def _holiday_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    scope.callcenter.add_holiday(data["day"], data.get("name", ""))
    return (data["day"],), {}


def _holiday_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    update_row(scope, t.holidays, "day", key[0], changes, "")


def _holiday_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.callcenter.delete_holiday(key[0])


HOLIDAYS = Resource(
    name="holidays",
    title="holiday",
    description="Days every time condition treats as closed.",
    table=t.holidays,
    key_fields=("day",),
    fields=(
        Field("day", "date", "YYYY-MM-DD", check=to_date, required=True, immutable=True),
        Field("name", "str", "e.g. Christmas", check=lambda f, v: _text(f, v, 128), default="", max_length=128),
    ),
    create=_holiday_create,
    update=_holiday_update,
    delete=_holiday_delete,
    search=("name",),
)


# --------------------------------------------------------------------------------- call-type rules
_PATTERN = r"_?[0-9A-Za-z*#+\[\]\-.!]{1,63}"


def _pattern(f: str, v: object) -> str:
    _token(f, v, _PATTERN, "a number pattern such as _8800X. or +7")  # CallCenterRepository.add_call_type_rule
    try:
        pattern_regex(cast(str, v))
    except ValueError as exc:
        raise ValidationError(f, str(exc)) from exc
    return cast(str, v)


def _rule_create(scope: WriteScope, data: dict[str, Any]) -> tuple[Key, dict[str, Any]]:
    scope.callcenter.add_call_type_rule(data["pattern"], data["call_type"], **pick(data, "position"))
    r = t.call_type_rules
    return (int(scope.conn.execute(sa.select(r.c.id).where(r.c.pattern == data["pattern"])).scalar_one()),), {}


def _rule_update(scope: WriteScope, key: Key, before: dict[str, Any], changes: dict[str, Any]) -> None:
    conflict = f"a rule for pattern {changes.get('pattern')!r} already exists"
    update_row(scope, t.call_type_rules, "id", key[0], changes, conflict)


def _rule_delete(scope: WriteScope, key: Key, before: dict[str, Any]) -> None:
    scope.execute(sa.delete(t.call_type_rules).where(t.call_type_rules.c.id == key[0]))


CALL_TYPE_RULES = Resource(
    name="call_type_rules",
    title="call-type rule",
    description="Number classification for group limits: the first rule (lowest position) whose pattern matches.",
    table=t.call_type_rules,
    key_fields=("id",),
    fields=(
        Field("id", "int", "rule id"),
        Field(
            "pattern",
            "str",
            "Asterisk pattern (_ X Z N [..] . !) or a plain prefix",
            check=_pattern,
            required=True,
            max_length=64,
            pattern=_PATTERN,
        ),
        Field(
            "call_type",
            "str",
            "the type of the numbers it matches",
            check=lambda f, v: _choice(f, v, CALL_TYPES),
            required=True,
            choices=CALL_TYPES,
        ),
        Field(
            "position",
            "int",
            "lower positions are tried first",
            check=lambda f, v: _int(f, v, maximum=1_000_000),
            default=100,
            minimum=0,
            maximum=1_000_000,
        ),
    ),
    create=_rule_create,
    update=_rule_update,
    delete=_rule_delete,
    search=("pattern", "call_type"),
    sort=("position", "id"),
)
