"""FastAGI entry points of a call: give it a Hotline call id, decide where it goes, tell the channel.

Scripts (the path of `agi://host:port/<script>` in the rendered dialplan, config_render.py):
- `inbound` (calls from the carrier, context hotline-inbound) and `outbound` (dialled on a phone,
  context hotline-phones) open the call:
  1. SET VARIABLE __HOTLINE_CALL_ID (double underscore: inherited by every channel the call creates) and
     open the call in the journal, which links the caller's channel to the id;
  2. decide, bounded by `decision_timeout`; any failure (timeout, error) is journaled as RouteFailed and
     the handler returns without setting HOTLINE_ACTION, so the dialplan runs the fallback;
  3. set the decision's variables, all in one HOTLINE_VARS that the dialplan applies with MSet()
     (config_render.mset_arguments), then HOTLINE_ACTION (the dialplan branches on it): a new call
     costs three AGI commands whatever the decision.
  A call that already has a call id (it came from another node or back through a transfer) keeps it.
- `ivr` (args: call id, menu, digit, attempt) and `overflow` (args: call id, queue, QUEUESTATUS) are later
  hops of a call that has its id: they only decide.
- `login`, `logoff`, `pause`, `unpause`: agents' feature codes on a phone; they set HOTLINE_PROMPT (what the
  phone hears) and journal the outcome.  The PIN is read with GET VARIABLE, never passed as an AGI
  argument (arguments appear in Asterisk's verbose log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hotline.asterisk.agi_server import AGISession
from hotline.asterisk.config_render import DECISION_VARS, mset_arguments
from hotline.domain.calls import pjsip_endpoint
from hotline.errors import ConflictError, HotlineError, NotFoundError
from hotline.features.agents.service import AgentService, AuthenticationError
from hotline.features.journal.service import JournalService
from hotline.features.routing.router import (
    Decision,
    RouteContext,
    decide_inbound,
    decide_internal,
    decide_ivr,
    decide_overflow,
)
from hotline.ids import new_call_id

log = logging.getLogger(__name__)

Decider = Callable[[AGISession, RouteContext], Awaitable[Decision]]
#: Enriches an inbound call before routing (caller lookup); returns variables to set (e.g. CALLERID(name)).
Enricher = Callable[[str, AGISession], Awaitable[dict[str, str]]]

# Caller-id "numbers" Asterisk uses when there is none.
_UNKNOWN = ("", "unknown", "anonymous")


class RoutingHandlers:
    def __init__(
        self,
        context: Callable[[str], RouteContext],
        journal: JournalService,
        agents: AgentService,
        *,
        decision_timeout: float = 1.0,
        enrich: Enricher | None = None,
        pause_code_reason: str = "",
    ) -> None:
        self._context = context
        self._journal = journal
        self._agents = agents
        self._timeout = decision_timeout
        self._enrich = enrich
        self._pause_reason = pause_code_reason
        self.decided = 0
        self.failed = 0

    def routes(self) -> dict[str, Callable[[AGISession], Awaitable[None]]]:
        return {
            "inbound": self.inbound,
            "outbound": self.outbound,
            "ivr": self.ivr,
            "overflow": self.overflow,
            "login": self.login,
            "logoff": self.logoff,
            "pause": self.pause,
            "unpause": self.unpause,
        }

    # ------------------------------------------------------------------ first contact
    async def inbound(self, session: AGISession) -> None:
        await self._route(session, self._decide_inbound)

    async def outbound(self, session: AGISession) -> None:
        await self._route(session, self._decide_internal)

    async def _decide_inbound(self, session: AGISession, ctx: RouteContext) -> Decision:
        return decide_inbound(ctx, session.env.extension)

    async def _decide_internal(self, session: AGISession, ctx: RouteContext) -> Decision:
        phone = pjsip_endpoint(session.env.channel)
        agent = self._agents.agent_on_phone(phone)
        if agent is not None:  # quota usage survives restarts: read once per agent and day
            await self._agents.load_usage(agent.id)
        return decide_internal(ctx, phone, session.env.extension)

    async def _route(self, session: AGISession, decide: Decider) -> None:
        env = session.env
        node = env.query.get("node", "")
        # The dialplan passes ${HOTLINE_CALL_ID} as the first argument (empty for a new call); without
        # arguments (an older dialplan) ask for it.
        args = env.args
        existing = args[0] if args else await session.get_variable("HOTLINE_CALL_ID")
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
        await self._decide_and_apply(session, call_id, node, decide, enrich=env.script == "inbound")

    async def _decide_and_apply(
        self, session: AGISession, call_id: str, node: str, decide: Decider, *, enrich: bool = False
    ) -> None:
        env = session.env
        extra: dict[str, str] = {}
        try:
            async with asyncio.timeout(self._timeout):  # no extra task per call, unlike wait_for
                decision = await decide(session, self._context(node))
                if enrich and self._enrich is not None and decision.action in ("queue", "dial", "ivr"):
                    extra = await self._enrich(call_id, session)
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
        # Two round trips whatever the decision: its variables in one (the dialplan applies them with
        # MSet once HOTLINE_ACTION is set), then the action the dialplan branches on.
        await session.set_variable(DECISION_VARS, mset_arguments((*decision.variables, *extra.items())))
        await session.set_variable("HOTLINE_ACTION", decision.action)
        if decision.action == "dial" and decision.call_type not in ("", "internal", "emergency", "help"):
            agent = self._context(node).snap.agent_by_number.get(decision.agent)
            if agent is not None:  # counts against the agent's daily quotas (calls now, minutes at the end)
                self._agents.placed_call(call_id, agent.id)
        self.decided += 1
        data = decision.as_dict()
        if decision.agent:
            data["agent"] = decision.agent
        self._journal.record(
            call_id, "Routed", data, node=node, source="agi", uniqueid=env.uniqueid, channel=env.channel
        )

    # ------------------------------------------------------------------ later hops
    async def ivr(self, session: AGISession) -> None:
        call_id, menu, digit, attempt = (*session.env.args, "", "", "", "")[:4]

        async def decide(_: AGISession, ctx: RouteContext) -> Decision:
            try:
                n = int(attempt)
            except ValueError:
                n = 1
            return decide_ivr(ctx, menu, digit if len(digit) == 1 else "", n)

        await self._hop(session, call_id, decide)

    async def overflow(self, session: AGISession) -> None:
        call_id, queue, status = (*session.env.args, "", "", "")[:3]

        async def decide(_: AGISession, ctx: RouteContext) -> Decision:
            return decide_overflow(ctx, queue, status)

        await self._hop(session, call_id, decide)

    async def _hop(self, session: AGISession, call_id: str, decide: Decider) -> None:
        node = session.env.query.get("node", "")
        if not call_id:
            call_id = await session.get_variable("HOTLINE_CALL_ID") or new_call_id()
        await session.set_variable("HOTLINE_ACTION", "")
        await self._decide_and_apply(session, call_id, node, decide)

    # ------------------------------------------------------------------ agents' feature codes
    async def login(self, session: AGISession) -> None:
        phone = pjsip_endpoint(session.env.channel)
        number = await session.get_variable("HOTLINE_AGENT_NUM") or ""
        pin = await session.get_variable("HOTLINE_AGENT_PIN") or ""
        try:
            await self._agents.login(number, pin, phone, actor=f"phone {phone}")
            prompt, outcome = "agent-loginok", "ok"
        except AuthenticationError:
            prompt, outcome = "agent-incorrect", "wrong number or PIN"
        except HotlineError as exc:
            prompt, outcome = "agent-incorrect", str(exc)
        await self._code_done(session, "AgentLoginCode", prompt, {"agent": number, "phone": phone, "outcome": outcome})

    async def logoff(self, session: AGISession) -> None:
        phone = pjsip_endpoint(session.env.channel)
        try:
            status = await self._agents.logoff_phone(phone, actor=f"phone {phone}", reason="logoff code")
            outcome = "ok" if status is not None else "nobody logged in"
        except HotlineError as exc:
            outcome = str(exc)
        await self._code_done(session, "AgentLogoffCode", "agent-loggedoff", {"phone": phone, "outcome": outcome})

    async def pause(self, session: AGISession) -> None:
        await self._pause_code(session, True)

    async def unpause(self, session: AGISession) -> None:
        await self._pause_code(session, False)

    async def _pause_code(self, session: AGISession, paused: bool) -> None:
        phone = pjsip_endpoint(session.env.channel)
        agent = self._agents.agent_on_phone(phone)
        prompt, outcome = "beeperr", "nobody logged in"
        if agent is not None:
            try:
                if paused:
                    await self._agents.pause(agent.number, self._pause_reason, actor=f"phone {phone}")
                else:
                    await self._agents.unpause(agent.number, actor=f"phone {phone}")
                prompt, outcome = "beep", "ok"
            except (ConflictError, NotFoundError, HotlineError) as exc:
                outcome = str(exc)
        event = "AgentPauseCode" if paused else "AgentUnpauseCode"
        await self._code_done(session, event, prompt, {"phone": phone, "outcome": outcome})

    async def _code_done(self, session: AGISession, event: str, prompt: str, data: dict[str, str]) -> None:
        env = session.env
        call_id = await session.get_variable("HOTLINE_CALL_ID")
        if call_id:
            self._journal.record(
                call_id, event, data, node=env.query.get("node", ""), source="agi", uniqueid=env.uniqueid,
                channel=env.channel,
            )  # fmt: skip
        await session.set_variable("HOTLINE_PROMPT", prompt)


def _known(v: str) -> str | None:
    return None if v in _UNKNOWN else v
