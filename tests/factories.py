"""Builders of configuration values for pure tests: every field has a sensible default, keywords override."""

from __future__ import annotations

from typing import Any

from hotline.domain.config import (
    Agent,
    AgentGroup,
    AgentQueue,
    CallTypeRule,
    DidRoute,
    Holiday,
    IvrMenu,
    IvrOption,
    PauseReason,
    Phone,
    Queue,
    QueueMember,
    ServiceNumber,
    TimeCondition,
)


def phone(id: int, name: str, **kw: Any) -> Phone:
    base: dict[str, Any] = dict(
        digest_md5="0" * 32, digest_sha256="0" * 64, realm="hotline", context="hotline-phones", callerid="",
        codecs="ulaw", max_contacts=1, enabled=True,
    )  # fmt: skip
    return Phone(id=id, name=name, **{**base, **kw})


def queue(id: int, name: str, **kw: Any) -> Queue:
    base: dict[str, Any] = dict(
        strategy="ringall", timeout=15, retry=5, wrapuptime=0, maxlen=0, servicelevel=60, musicclass="default",
        joinempty="yes", leavewhenempty="no", ringinuse=False, weight=0, max_wait=None, announce_frequency=0,
        announce_holdtime="no", announce_position="no", announce_position_limit=5, periodic_announce="",
        periodic_announce_frequency=0, priority=0, overflow_type="", overflow_value="", recording="never",
    )  # fmt: skip
    return Queue(id=id, name=name, **{**base, **kw})


def member(id: int, q: Queue, interface: str, **kw: Any) -> QueueMember:
    base: dict[str, Any] = dict(
        membername="", state_interface="", penalty=0, paused=0, reason_paused="", wrapuptime=None, ringinuse=None,
        uniqueid=f"qm-{id}", agent_id=None,
    )  # fmt: skip
    return QueueMember(id=id, queue_id=q.id, queue_name=q.name, interface=interface, **{**base, **kw})


def group(id: int, name: str, **kw: Any) -> AgentGroup:
    base: dict[str, Any] = dict(
        description="", max_missed_in_row=3, allowed_call_types="internal,local,mobile,long_distance",
        allowed_actions="originate,transfer_internal", daily_call_quota=None, daily_minute_quota=None,
        recording="inherit",
    )  # fmt: skip
    return AgentGroup(id=id, name=name, **{**base, **kw})


def agent(id: int, number: str, **kw: Any) -> Agent:
    base: dict[str, Any] = dict(
        name=f"Agent {number}", group_id=None, pin_hash=None, phone_id=None, enabled=True, recording="inherit"
    )
    return Agent(id=id, number=number, **{**base, **kw})


def route(id: int, did: str, dest_type: str, dest_value: str = "", **kw: Any) -> DidRoute:
    base: dict[str, Any] = dict(hangup_cause=None, message="", description="", enabled=True)
    return DidRoute(id=id, did=did, dest_type=dest_type, dest_value=dest_value, **{**base, **kw})


def ivr(id: int, name: str, **kw: Any) -> IvrMenu:
    base: dict[str, Any] = dict(
        prompt="welcome", invalid_prompt="pm-invalid-option", timeout_s=5, max_attempts=3, fail_type="", fail_value=""
    )
    return IvrMenu(id=id, name=name, **{**base, **kw})


def option(id: int, menu: IvrMenu, digit: str, dest_type: str, dest_value: str = "") -> IvrOption:
    return IvrOption(id=id, menu_id=menu.id, digit=digit, dest_type=dest_type, dest_value=dest_value)


def time_condition(id: int, name: str, hours: str, **kw: Any) -> TimeCondition:
    base: dict[str, Any] = dict(
        timezone="UTC", open_type="queue", open_value="support", closed_type="hangup", closed_value=""
    )
    return TimeCondition(id=id, name=name, hours=hours, **{**base, **kw})


__all__ = [
    "AgentQueue", "CallTypeRule", "Holiday", "PauseReason", "ServiceNumber",
    "agent", "group", "ivr", "member", "option", "phone", "queue", "route", "time_condition",
]  # fmt: skip
