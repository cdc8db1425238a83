"""FastAGI entry points of a call: give it a Hotline call id, decide where it goes, tell the channel.

`inbound` (calls from the carrier, dialplan context hotline-inbound) and `outbound` (calls dialled by a
phone, context hotline-phones).  Sequence per call:
1. SET VARIABLE __HOTLINE_CALL_ID (double underscore: inherited by every channel the call creates) and
   open the call in the journal, which links the caller's channel to the id;
2. decide, bounded by `decision_timeout`; any failure (timeout, error) is journaled as RouteFailed and
   the handler returns without setting HOTLINE_ACTION, so the dialplan runs the fallback;
3. set the decision's variables, HOTLINE_ACTION last (the dialplan branches on it).
A call that already has a call id (it came from another node or back through a transfer) keeps it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hotline.asterisk.agi_server import AGISession
from hotline.domain.config import ConfigSnapshot
from hotline.features.journal.service import JournalService
from hotline.features.routing.router import Decision, decide_inbound, decide_internal
from hotline.ids import new_call_id

log = logging.getLogger(__name__)

Decider = Callable[[AGISession, ConfigSnapshot], Awaitable[Decision]]


class RoutingHandlers:
    def __init__(
        self,
        snapshot: Callable[[], ConfigSnapshot],
        journal: JournalService,
        *,
        decision_timeout: float = 1.0,
    ) -> None:
        self._snapshot = snapshot
        self._journal = journal
        self._timeout = decision_timeout
        self.decided = 0
        self.failed = 0

    async def inbound(self, session: AGISession) -> None:
        await self._route(session, self._decide_inbound)

    async def outbound(self, session: AGISession) -> None:
        await self._route(session, self._decide_internal)

    async def _decide_inbound(self, session: AGISession, snap: ConfigSnapshot) -> Decision:
        return decide_inbound(snap, session.env.extension)

    async def _decide_internal(self, session: AGISession, snap: ConfigSnapshot) -> Decision:
        caller = session.env.variables.get("callerid", "")
        return decide_internal(snap, caller, session.env.extension)

    async def _route(self, session: AGISession, decide: Decider) -> None:
        env = session.env
        node = env.query.get("node", "")
        existing = await session.get_variable("HOTLINE_CALL_ID")
        call_id = existing or new_call_id()
        previous = None
        if existing and not self._journal.tracks(existing):
            # a call this instance did not see start (Hotline restarted mid-call, or it began elsewhere):
            # continue its stored record rather than start a new one (one read, only in this rare case)
            try:
                async with asyncio.timeout(self._timeout):
                    previous = await self._journal.stored_call(existing)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an enrichment only: the call goes on with a fresh record
                log.warning("call %s: stored record not read (%s)", existing, exc or type(exc).__name__)
        # Open the call before the channel carries the id: AMI events with the id (even the caller's
        # Hangup, if they hang up right now) then always find the call's tracker.
        self._journal.start_call(
            call_id,
            node=node,
            uniqueid=env.uniqueid or None,
            caller_num=_known(env.callerid),
            caller_name=_known(env.calleridname),
            did=env.extension,
            channel=env.channel,
            new=not existing,
            previous=previous,
        )
        if not existing:
            await session.set_variable("__HOTLINE_CALL_ID", call_id)
        self._journal.record(
            call_id,
            "CallIdAssigned",
            {
                "script": env.script,
                "reused": "yes" if existing else "no",
                "did": env.extension,
                "caller": env.callerid,
            },
            node=node,
            source="agi",
            uniqueid=env.uniqueid,
            channel=env.channel,
        )
        try:
            async with asyncio.timeout(self._timeout):  # no extra task per call, unlike wait_for
                decision = await decide(session, self._snapshot())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # TimeoutError included: Hotline cannot decide, the fallback takes over
            self.failed += 1
            reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            log.warning("routing %s failed (%s); fallback", call_id, reason)
            self._journal.record(
                call_id,
                "RouteFailed",
                {"error": f"{reason}: {exc}" if str(exc) else reason},
                node=node,
                source="agi",
                uniqueid=env.uniqueid,
                channel=env.channel,
            )
            await session.set_variable("HOTLINE_FALLBACK_REASON", f"hotline-{reason}")
            return
        for name, value in decision.variables:
            await session.set_variable(name, value)
        await session.set_variable("HOTLINE_ACTION", decision.action)
        self.decided += 1
        self._journal.record(
            call_id,
            "Routed",
            decision.as_dict(),
            node=node,
            source="agi",
            uniqueid=env.uniqueid,
            channel=env.channel,
        )


def _known(v: str) -> str | None:
    return None if v in ("", "unknown") else v
