"""The call journal's values: one event as observed, and the summary record of one call.

Responsibility: the shapes the journal writes and the reports read.  No I/O here;
`hotline.db.repositories.CallRepository` stores them.

Invariants (checked in __post_init__, so a bad value fails where it is made, not in a batch later):
- every datetime is timezone-aware and normalised to UTC;
- `JournalEvent.data` is a read-only copy: later changes to the caller's dict do not leak in;
- `JournalEvent.source`, `CallRecord.status` and `CallRecord.hangup_by` take only the listed values;
- `(call_id, seq)` identifies an event; `seq` counts from 1 within a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

EVENT_SOURCES: tuple[str, ...] = ("ami", "agi", "hotline")
CALL_STATUSES: tuple[str, ...] = ("active", "completed", "abandoned", "failed", "fallback")
HANGUP_BY: tuple[str, ...] = ("caller", "agent", "system")


def _utc(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {value.isoformat()})")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One thing that happened to a call, as Hotline saw it (an AMI event, an AGI step...)."""

    call_id: str
    seq: int
    ts: datetime
    source: str
    node: str
    event: str
    uniqueid: str | None
    channel: str | None
    data: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.source not in EVENT_SOURCES:
            raise ValueError(f"source must be one of {EVENT_SOURCES} (got {self.source!r})")
        object.__setattr__(self, "ts", _utc("ts", self.ts))
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))


@dataclass(frozen=True, slots=True)
class CallRecord:
    """The summary of one call, rewritten as the call progresses (upserted by `call_id`)."""

    call_id: str
    node: str
    caller_num: str | None
    caller_name: str | None
    did: str | None
    destination: str | None
    status: str
    started_at: datetime
    answered_at: datetime | None = None
    queue_name: str | None = None
    queue_entered_at: datetime | None = None
    queue_wait_s: float | None = None
    agent_number: str | None = None
    agent_channel: str | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    talk_s: float | None = None
    hangup_by: str | None = None
    hangup_cause: int | None = None
    hangup_cause_text: str | None = None
    route_error: str | None = None

    def __post_init__(self) -> None:
        if self.status not in CALL_STATUSES:
            raise ValueError(f"status must be one of {CALL_STATUSES} (got {self.status!r})")
        if self.hangup_by is not None and self.hangup_by not in HANGUP_BY:
            raise ValueError(f"hangup_by must be one of {HANGUP_BY} or None (got {self.hangup_by!r})")
        for name in ("started_at", "answered_at", "queue_entered_at", "ended_at"):
            object.__setattr__(self, name, _utc(name, getattr(self, name)))


def pjsip_endpoint(channel: str) -> str:
    """The PJSIP endpoint of a channel name: 'PJSIP/2101-0000000a' -> '2101' ('' for other technologies)."""
    tech, _, rest = channel.partition("/")
    return rest.rpartition("-")[0] if tech == "PJSIP" and "-" in rest else ""
