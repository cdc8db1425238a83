"""The agent state machine: one table of (state, event) -> state, and the agent's status as a value.

States (domain/config.AGENT_STATES): logged_out, available, ringing, on_call, wrap_up, paused.
Events come from people (login, logoff, pause, unpause: by feature code, CLI, API or a supervisor) and
from Asterisk's queue events (ring = AgentCalled, ring_no_answer = AgentRingNoAnswer, connect =
AgentConnect, complete = AgentComplete) and from timers (wrapup_end, pause_expired).

Invariants:
- `next_state` is the only place transitions are decided; a pair missing from TRANSITIONS raises
  `IllegalTransition` (the caller journals and ignores it: Asterisk events can arrive for an agent who
  has just logged off);
- a paused agent stays paused through calls that still reach the phone directly (the pause concerns
  queue calls), so ring/connect/complete while paused keep `paused`;
- wrap-up after a call lasts the queue's wrap-up time; with 0 the agent is available at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from hotline.errors import HotlineError

LOGGED_OUT, AVAILABLE, RINGING, ON_CALL, WRAP_UP, PAUSED = (
    "logged_out",
    "available",
    "ringing",
    "on_call",
    "wrap_up",
    "paused",
)
EVENTS = (
    "login",
    "logoff",
    "ring",
    "ring_no_answer",
    "connect",
    "complete",
    "wrapup_end",
    "pause",
    "unpause",
    "pause_expired",
)
_ACTIVE = (AVAILABLE, RINGING, ON_CALL, WRAP_UP, PAUSED)

TRANSITIONS: dict[tuple[str, str], str] = {
    (LOGGED_OUT, "login"): AVAILABLE,
    # a second login (same or another phone) keeps the state; the service moves the phone
    **{(s, "login"): s for s in _ACTIVE},
    **{(s, "logoff"): LOGGED_OUT for s in _ACTIVE},
    (AVAILABLE, "ring"): RINGING,
    (RINGING, "ring"): RINGING,
    (WRAP_UP, "ring"): RINGING,  # another queue with a shorter wrap-up may ring the agent
    (PAUSED, "ring"): PAUSED,
    (RINGING, "ring_no_answer"): AVAILABLE,
    (AVAILABLE, "ring_no_answer"): AVAILABLE,  # a late event after another member answered
    (PAUSED, "ring_no_answer"): PAUSED,
    (RINGING, "connect"): ON_CALL,
    (AVAILABLE, "connect"): ON_CALL,
    (WRAP_UP, "connect"): ON_CALL,
    (PAUSED, "connect"): PAUSED,
    (ON_CALL, "complete"): WRAP_UP,
    (PAUSED, "complete"): PAUSED,
    (AVAILABLE, "complete"): AVAILABLE,
    (WRAP_UP, "complete"): WRAP_UP,
    (WRAP_UP, "wrapup_end"): AVAILABLE,
    **{(s, "pause"): PAUSED for s in _ACTIVE},
    (PAUSED, "unpause"): AVAILABLE,
    (AVAILABLE, "unpause"): AVAILABLE,
    (PAUSED, "pause_expired"): AVAILABLE,
}


class IllegalTransition(HotlineError):
    """An event that does not apply to the agent's current state."""

    def __init__(self, state: str, event: str) -> None:
        super().__init__(f"event {event!r} does not apply in state {state!r}")
        self.state = state
        self.event = event


def next_state(state: str, event: str) -> str:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """Where an agent is now; `phone` is the phone the agent is logged in on (None when logged out)."""

    agent_id: int
    phone: str | None
    state: str
    pause_reason: str
    state_since: datetime
    logged_in_at: datetime | None
    wrapup_until: datetime | None
    missed_in_row: int
    missed_total: int
    call_id: str | None

    @classmethod
    def logged_out(cls, agent_id: int, now: datetime) -> AgentStatus:
        return cls(agent_id, None, LOGGED_OUT, "", now, None, None, 0, 0, None)

    def moved(self, event: str, now: datetime, **changes: object) -> AgentStatus:
        """The status after `event` (IllegalTransition if it does not apply); `state_since` resets only
        when the state (or the pause reason) changes."""
        new = next_state(self.state, event)
        reason = changes.get("pause_reason", self.pause_reason if new == PAUSED else "")
        since = now if (new != self.state or reason != self.pause_reason) else self.state_since
        return replace(self, state=new, state_since=since, **{"pause_reason": reason, **changes})  # type: ignore[arg-type]
