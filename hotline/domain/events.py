"""Typed, frozen call events: what the call lifecycle acts on.

The AMI parser yields generic messages and the journal stores every event as it came (`JournalEvent`
with its fields).  The events Hotline *acts on* are converted here, once, into frozen dataclasses with
typed fields and units made explicit (seconds vs milliseconds, asterisk-reference.md trap 15).  Raw field
maps stop at `from_journal`; services and `CallTracker` see only these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hotline.domain.calls import JournalEvent


@dataclass(frozen=True, slots=True)
class CallEvent:
    ts: datetime
    uniqueid: str | None  # the channel the event is about (None for Hotline's own events)
    from_asterisk: bool


@dataclass(frozen=True, slots=True)
class ChannelActivity(CallEvent):
    """Any other AMI event about a channel of the call: proves the channel exists."""

    name: str


@dataclass(frozen=True, slots=True)
class Routed(CallEvent):
    summary: str


@dataclass(frozen=True, slots=True)
class RouteFailed(CallEvent):
    error: str


@dataclass(frozen=True, slots=True)
class FallbackTaken(CallEvent):
    reason: str


@dataclass(frozen=True, slots=True)
class QueueJoined(CallEvent):
    queue: str


@dataclass(frozen=True, slots=True)
class AgentConnected(CallEvent):
    queue: str | None
    member: str | None
    agent_channel: str | None
    hold_time_s: float | None  # AgentConnect.HoldTime is in seconds


@dataclass(frozen=True, slots=True)
class AgentCompleted(CallEvent):
    reason: str  # caller | agent | transfer


@dataclass(frozen=True, slots=True)
class QueueAbandoned(CallEvent):
    hold_time_s: float | None


@dataclass(frozen=True, slots=True)
class DialAnswered(CallEvent):
    dest_channel: str | None


@dataclass(frozen=True, slots=True)
class HangupRequested(CallEvent):
    """The far end asked to hang up this channel (SIP BYE / CANCEL): AMI HangupRequest."""


@dataclass(frozen=True, slots=True)
class ChannelHungUp(CallEvent):
    cause: int | None
    cause_text: str | None


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except ValueError:
        return None


def from_journal(ev: JournalEvent) -> CallEvent:
    """The typed view of one journal event (unknown events become ChannelActivity)."""
    d = ev.data
    base = (ev.ts, ev.uniqueid, ev.source == "ami")
    name = ev.event
    if ev.source != "ami":
        if name == "Routed":
            return Routed(*base, summary=d.get("summary", ""))
        if name == "RouteFailed":
            return RouteFailed(*base, error=d.get("error", ""))
        return ChannelActivity(*base, name=name)
    if name == "UserEvent" and d.get("UserEvent") == "HotlineFallback":
        return FallbackTaken(*base, reason=d.get("Reason", ""))
    if name == "QueueCallerJoin":
        return QueueJoined(*base, queue=d.get("Queue", ""))
    if name == "AgentConnect":
        return AgentConnected(
            *base,
            queue=d.get("Queue"),
            member=d.get("MemberName") or d.get("Interface"),
            agent_channel=d.get("DestChannel"),
            hold_time_s=_float(d.get("HoldTime")),
        )
    if name == "AgentComplete":
        return AgentCompleted(*base, reason=(d.get("Reason") or "").lower())
    if name == "QueueCallerAbandon":
        return QueueAbandoned(*base, hold_time_s=_float(d.get("HoldTime")))
    if name == "DialEnd" and (d.get("DialStatus") or "").upper() == "ANSWER":
        return DialAnswered(*base, dest_channel=d.get("DestChannel"))
    if name == "HangupRequest":
        return HangupRequested(*base)
    if name == "Hangup":
        return ChannelHungUp(*base, cause=_int(d.get("Cause")), cause_text=d.get("Cause-txt"))
    return ChannelActivity(*base, name=name)
