"""Call-center configuration: agents' queues (skills), group limits, pause reasons, service numbers,
IVR menus and options, time conditions and holidays, call-type rules.

Same rules as the core ConfigRepository (package docstring): validate first, one transaction per method,
bump config_version first in every write, destinations checked against the rows they name
(`check_destination`), duplicates -> ConflictError, missing -> NotFoundError.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hotline.db import tables as t
from hotline.db.engine import write_transaction
from hotline.db.repositories import (
    _ID,
    _agent_group,
    _bump_version,
    _choice,
    _execute_insert,
    _flag,
    _id_of,
    _int,
    _optional_int,
    _sound,
    _text,
    _token,
    check_destination,
)
from hotline.domain.config import CALL_TYPES, GROUP_ACTIONS, RECORDING_POLICIES, AgentGroup
from hotline.domain.limits import pattern_regex
from hotline.domain.schedule import parse_hours, zone
from hotline.errors import NotFoundError, ValidationError

_NAME = _ID + "{1,64}"
_NAME_HELP = "1 to 64 letters, digits, '.', '_' or '-'"


def _csv(field: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a comma-separated list")
    items = [x.strip() for x in value.split(",") if x.strip()]
    bad = [x for x in items if x not in choices]
    if bad:
        raise ValidationError(field, f"unknown value(s) {', '.join(bad)} (known: {', '.join(choices)})")
    return ",".join(dict.fromkeys(items))


_GROUP_FIELDS: dict[str, Callable[[str, object], object]] = {
    "description": lambda f, v: _text(f, v, 255),
    "max_missed_in_row": lambda f, v: _int(f, v, maximum=100),
    "allowed_call_types": lambda f, v: _csv(f, v, CALL_TYPES),
    "allowed_actions": lambda f, v: _csv(f, v, GROUP_ACTIONS),
    "daily_call_quota": lambda f, v: _optional_int(f, v, maximum=100_000),
    "daily_minute_quota": lambda f, v: _optional_int(f, v, maximum=100_000),
    "recording": lambda f, v: _choice(f, v, RECORDING_POLICIES),
}


class CallCenterRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # ---- agent groups (limits) and agents' queues
    def update_agent_group(self, name: str, **fields: object) -> AgentGroup:
        if not fields:
            raise ValidationError("fields", "nothing to update")
        values = {}
        for key, value in fields.items():
            check = _GROUP_FIELDS.get(key)
            if check is None:
                raise ValidationError(key, f"is not an agent group field (known: {', '.join(_GROUP_FIELDS)})")
            values[key] = check(key, value)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            done = conn.execute(sa.update(t.agent_groups).where(t.agent_groups.c.name == name).values(**values))
            if done.rowcount == 0:
                raise NotFoundError(f"agent group {name!r} does not exist")
            return _agent_group(conn.execute(sa.select(t.agent_groups).where(t.agent_groups.c.name == name)).one())

    def set_agent_queue(self, agent: str, queue: str, penalty: int = 0) -> None:
        """The agent serves `queue` with `penalty` (lower rings first); replaces an earlier penalty."""
        _int("penalty", penalty, maximum=1000)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            agent_id = _id_of(conn, t.agents.c.number, agent, "agent")
            queue_id = _id_of(conn, t.queues.c.name, queue, "queue")
            done = conn.execute(
                sa.update(t.agent_queues)
                .where(t.agent_queues.c.agent_id == agent_id, t.agent_queues.c.queue_id == queue_id)
                .values(penalty=penalty)
            )
            if done.rowcount == 0:
                conn.execute(sa.insert(t.agent_queues).values(agent_id=agent_id, queue_id=queue_id, penalty=penalty))
            # a logged-in agent's live membership follows at once
            conn.execute(
                sa.update(t.queue_members)
                .where(t.queue_members.c.agent_id == agent_id, t.queue_members.c.queue_id == queue_id)
                .values(penalty=penalty)
            )

    def remove_agent_queue(self, agent: str, queue: str) -> None:
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            agent_id = _id_of(conn, t.agents.c.number, agent, "agent")
            queue_id = _id_of(conn, t.queues.c.name, queue, "queue")
            done = conn.execute(
                sa.delete(t.agent_queues).where(
                    t.agent_queues.c.agent_id == agent_id, t.agent_queues.c.queue_id == queue_id
                )
            )
            if done.rowcount == 0:
                raise NotFoundError(f"agent {agent!r} does not serve queue {queue!r}")
            conn.execute(
                sa.delete(t.queue_members).where(
                    t.queue_members.c.agent_id == agent_id, t.queue_members.c.queue_id == queue_id
                )
            )

    # ---- pause reasons
    def add_pause_reason(self, name: str, *, paid: bool = False, max_duration_s: int | None = None) -> None:
        _token("name", name, r"[A-Za-z0-9 ._-]{1,64}", "1 to 64 letters, digits, spaces, '.', '_' or '-'")
        _flag("paid", paid)
        _optional_int("max_duration_s", max_duration_s, minimum=1, maximum=86_400)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _execute_insert(
                conn,
                sa.insert(t.pause_reasons).values(name=name, paid=paid, max_duration_s=max_duration_s),
                f"pause reason {name!r} already exists",
            )

    # ---- service numbers
    def add_service_number(
        self, number: str, kind: str, dest_type: str, dest_value: str = "", description: str = ""
    ) -> None:
        _token("number", number, r"\+?[0-9*#]{1,32}", "a number")
        _choice("kind", kind, ("help", "emergency"))
        _text("description", description, 255)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            check_destination(conn, "dest", dest_type, dest_value)
            _execute_insert(
                conn,
                sa.insert(t.service_numbers).values(
                    number=number, kind=kind, dest_type=dest_type, dest_value=dest_value, description=description
                ),
                f"service number {number!r} already exists",
            )

    # ---- IVR
    def add_ivr(
        self,
        name: str,
        prompt: str,
        *,
        timeout_s: int = 5,
        max_attempts: int = 3,
        invalid_prompt: str = "pm-invalid-option",
        fail_type: str = "",
        fail_value: str = "",
    ) -> None:
        _token("name", name, _NAME, _NAME_HELP)
        if not prompt:
            raise ValidationError("prompt", "is required")
        _sound("prompt", prompt)
        _sound("invalid_prompt", invalid_prompt)
        _int("timeout_s", timeout_s, minimum=1, maximum=60)
        _int("max_attempts", max_attempts, minimum=1, maximum=10)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            if fail_type:
                check_destination(conn, "fail", fail_type, fail_value)
            _execute_insert(
                conn,
                sa.insert(t.ivr_menus).values(
                    name=name,
                    prompt=prompt,
                    invalid_prompt=invalid_prompt,
                    timeout_s=timeout_s,
                    max_attempts=max_attempts,
                    fail_type=fail_type,
                    fail_value=fail_value,
                ),
                f"IVR menu {name!r} already exists",
            )

    def set_ivr_option(self, menu: str, digit: str, dest_type: str, dest_value: str = "") -> None:
        _token("digit", digit, r"[0-9*#]", "one of 0-9, * or #")
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            menu_id = _id_of(conn, t.ivr_menus.c.name, menu, "IVR menu")
            check_destination(conn, "dest", dest_type, dest_value)
            if dest_type == "ivr" and dest_value == menu:
                raise ValidationError("dest_value", "an option cannot lead to its own menu (use the repeat count)")
            conn.execute(
                sa.delete(t.ivr_options).where(t.ivr_options.c.menu_id == menu_id, t.ivr_options.c.digit == digit)
            )
            conn.execute(
                sa.insert(t.ivr_options).values(
                    menu_id=menu_id, digit=digit, dest_type=dest_type, dest_value=dest_value
                )
            )

    # ---- time conditions and holidays
    def add_time_condition(
        self,
        name: str,
        hours: str,
        *,
        open_type: str,
        open_value: str = "",
        closed_type: str,
        closed_value: str = "",
        timezone: str = "UTC",
    ) -> None:
        _token("name", name, _NAME, _NAME_HELP)
        _text("hours", hours, 2000)
        parse_hours(hours)
        zone(timezone)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            check_destination(conn, "open", open_type, open_value)
            check_destination(conn, "closed", closed_type, closed_value)
            _execute_insert(
                conn,
                sa.insert(t.time_conditions).values(
                    name=name,
                    hours=hours,
                    timezone=timezone,
                    open_type=open_type,
                    open_value=open_value,
                    closed_type=closed_type,
                    closed_value=closed_value,
                ),
                f"time condition {name!r} already exists",
            )

    def update_time_condition(self, name: str, *, hours: str | None = None, timezone: str | None = None) -> None:
        values: dict[str, object] = {}
        if hours is not None:
            _text("hours", hours, 2000)
            parse_hours(hours)
            values["hours"] = hours
        if timezone is not None:
            zone(timezone)
            values["timezone"] = timezone
        if not values:
            raise ValidationError("fields", "nothing to update")
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            done = conn.execute(sa.update(t.time_conditions).where(t.time_conditions.c.name == name).values(**values))
            if done.rowcount == 0:
                raise NotFoundError(f"time condition {name!r} does not exist")

    def add_holiday(self, day: date, name: str = "") -> None:
        if not isinstance(day, date):
            raise ValidationError("day", "must be a date (YYYY-MM-DD)")
        _text("name", name, 128)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _execute_insert(conn, sa.insert(t.holidays).values(day=day, name=name), f"{day} is already a holiday")

    def delete_holiday(self, day: date) -> None:
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            if conn.execute(sa.delete(t.holidays).where(t.holidays.c.day == day)).rowcount == 0:
                raise NotFoundError(f"{day} is not a holiday")

    # ---- call-type rules
    def add_call_type_rule(self, pattern: str, call_type: str, *, position: int = 100) -> None:
        _token("pattern", pattern, r"_?[0-9A-Za-z*#+\[\]\-.!]{1,63}", "a number pattern such as _8800X. or +7")
        try:
            pattern_regex(pattern)
        except ValueError as exc:
            raise ValidationError("pattern", str(exc)) from exc
        _choice("call_type", call_type, CALL_TYPES)
        _int("position", position, maximum=1_000_000)
        with write_transaction(self._engine) as conn:
            _bump_version(conn)
            _execute_insert(
                conn,
                sa.insert(t.call_type_rules).values(pattern=pattern, call_type=call_type, position=position),
                f"a rule for pattern {pattern!r} already exists",
            )
