"""The life of one call, as a pure reducer over its typed events (`hotline.domain.events`).

`CallTracker.apply(event)` folds AMI events (and Hotline's own) into a `CallRecord`: when it started,
was answered, waited in which queue, which agent took it, who hung up first and why.  No I/O.

Lifecycle table (status transitions; anything else leaves the status unchanged):

    event                          from            to
    Routed                         active          active     (destination recorded)
    UserEvent HotlineFallback      active          fallback
    QueueCallerJoin                active          active     (queue, queue_entered_at)
    AgentConnect / DialEnd ANSWER  active          active     (answered_at, agent)
    QueueCallerAbandon             active          abandoned
    final Hangup                   active          completed if answered, else abandoned/failed

Who hung up first, in order of authority (asterisk-reference.md §3.4):
1. AgentComplete `Reason` (caller | agent | transfer) from app_queue;
2. the first `HangupRequest` (a hang-up requested by the far end, e.g. a SIP BYE): the caller's channel
   means 'caller', any other channel of the call means 'agent';
3. otherwise Asterisk ended the call ('system': Hangup() in the dialplan, a timeout, the fallback).
Time units: AgentConnect.HoldTime is seconds; AgentRingNoAnswer.RingTime is milliseconds.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from hotline.domain.calls import CallRecord
from hotline.domain.events import (
    AgentCompleted,
    AgentConnected,
    CallEvent,
    ChannelHungUp,
    DialAnswered,
    FallbackTaken,
    HangupRequested,
    QueueAbandoned,
    QueueJoined,
    Routed,
    RouteFailed,
)


class CallTracker:
    __slots__ = ("caller_uniqueid", "done", "live", "record", "seen")

    def __init__(self, record: CallRecord, caller_uniqueid: str | None) -> None:
        self.record = record
        self.caller_uniqueid = caller_uniqueid
        self.live: set[str] = set()
        self.seen: set[str] = set()
        self.done = False

    def _set(self, **changes: object) -> None:
        self.record = dataclasses.replace(self.record, **changes)  # type: ignore[arg-type]

    def apply(self, ev: CallEvent) -> bool:
        """Fold one typed event in; return True when the call has just ended."""
        if self.done:
            return False
        r = self.record
        uid = ev.uniqueid
        if ev.from_asterisk and uid:
            if isinstance(ev, ChannelHungUp):
                self.live.discard(uid)
            elif uid not in self.seen:
                self.live.add(uid)
            self.seen.add(uid)
            if self.caller_uniqueid is None:
                self.caller_uniqueid = uid
            if uid == self.caller_uniqueid and ev.ts < r.started_at:
                self._set(started_at=ev.ts)  # the caller's channel existed before Hotline saw the call
        match ev:
            case Routed(summary=summary):
                self._set(destination=summary)
            case RouteFailed(error=error):
                self._set(route_error=error, status="fallback")
            case FallbackTaken(reason=reason):
                self._set(status="fallback", route_error=r.route_error or reason)
            case QueueJoined(queue=queue) if r.queue_entered_at is None:
                self._set(queue_name=queue, queue_entered_at=ev.ts)
            case AgentConnected():
                self._set(
                    answered_at=r.answered_at or ev.ts,
                    agent_number=ev.member,
                    agent_channel=ev.agent_channel,
                    queue_name=ev.queue or r.queue_name,
                    queue_wait_s=ev.hold_time_s if ev.hold_time_s is not None else r.queue_wait_s,
                )
            case AgentCompleted(reason=reason) if r.hangup_by is None and reason in ("caller", "agent", "transfer"):
                self._set(hangup_by="caller" if reason == "caller" else "agent")
            case QueueAbandoned(hold_time_s=hold):
                self._set(status="abandoned", queue_wait_s=hold if hold is not None else r.queue_wait_s)
            case DialAnswered(dest_channel=dest) if r.answered_at is None:
                self._set(answered_at=ev.ts, agent_channel=dest)
            case HangupRequested() if r.hangup_by is None:
                if r.answered_at is not None:
                    self._set(hangup_by="caller" if uid == self.caller_uniqueid else "agent")
                elif uid == self.caller_uniqueid:
                    self._set(hangup_by="caller")
            case ChannelHungUp(cause=cause, cause_text=text):
                if uid == self.caller_uniqueid:
                    self._set(hangup_cause=cause, hangup_cause_text=text, ended_at=ev.ts)
                if not self.live and (
                    self.caller_uniqueid is None or uid == self.caller_uniqueid or self.record.ended_at is not None
                ):
                    self._finish(ev.ts)
                    return True
        return False

    def _finish(self, ts: datetime) -> None:
        r = self.record
        ended = r.ended_at or ts
        status = r.status
        if status == "active":
            if r.answered_at is not None:
                status = "completed"
            elif r.queue_entered_at is not None or r.hangup_by == "caller":
                status = "abandoned"
            else:
                status = "failed"
        hangup_by = r.hangup_by or "system"
        talk = (ended - r.answered_at).total_seconds() if r.answered_at else None
        self._set(
            status=status,
            ended_at=ended,
            hangup_by=hangup_by,
            duration_s=(ended - r.started_at).total_seconds() if r.started_at else None,
            talk_s=talk,
        )
        self.done = True

    def close_idle(self, now: datetime) -> None:
        """Close a call whose end was never seen (node lost, events dropped)."""
        if not self.done:
            self._set(route_error=self.record.route_error or "closed by idle timeout")
            self._finish(now)
