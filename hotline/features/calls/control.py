"""Call control: click-to-call, hang-up, blind and attended transfer, hold, supervisor listen/whisper/barge.

Responsibility: check what the acting agent's group allows (`allowed_actions`), find the call's channels,
send the AMI actions `actions.py` builds, and journal every attempt under the call id.

Where a call's channels are found: each node's `CoreShowChannels`, filtered by the HOTLINE_CALL_ID
channel variable (manager.conf `channelvars`, inherited by every channel of the call).  That is the node's
own, current answer: channel names, bridges and dialplan positions are exactly what Redirect/BlindTransfer
need, and it works in any process (the CLI has no journal in memory) and after a Hotline restart.  The
journal's view is built from events and can lag behind a transfer by the time of one flush; it does not
keep channel names at all.  Every node is asked at once, so a call is found wherever it lives.

Hold keeps a queue call inside the queue's bridge (an attended transfer to a silent leg) and moves any
other call out and back (Redirect, then Bridge): actions.py says why.

Journal: one `CallControl` entry per attempt (source 'hotline': domain/calls.EVENT_SOURCES has no
'control'; the `control` field names the action): outcome 'requested' before the AMI
action (so it precedes the events it causes), 'refused' with the reason when a limit forbids it (nothing
is sent to Asterisk), 'failed' with the error when Asterisk refuses.  Hotline's JournalService is the sink
in the service; the CLI passes a sink that writes through AMI (cli.py) and `journal_flush` to send it.

Invariants: no action is sent for a refused request; every AMI call is bounded by the client's action
timeout (and `list_timeout` for the channel lists); errors are HotlineErrors (NotFoundError: no such
call/agent/phone; ConflictError: not logged in, not on a call, ambiguous; PermissionDeniedError: a limit;
AsteriskError: the node refused or failed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from hotline.asterisk.config_render import QUEUE_HOLD_EXTEN
from hotline.domain.config import Agent, ConfigSnapshot, Phone
from hotline.errors import (
    AsteriskError,
    ConflictError,
    HotlineError,
    NodeUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from hotline.features.calls import actions as a
from hotline.features.calls.actions import LiveChannel
from hotline.features.routing.router import Decision, RouteContext
from hotline.ids import new_call_id
from hotline.protocols.ami import Message

log = logging.getLogger(__name__)

JOURNAL_EVENT = "CallControl"


class AMIClientLike(Protocol):
    async def action(
        self,
        action: str,
        fields: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        *,
        timeout: float | None = None,
    ) -> Message: ...

    async def action_list(
        self,
        action: str,
        fields: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        *,
        timeout: float | None = None,
    ) -> list[Message]: ...


class AgentLookups(Protocol):
    def agent_on_phone(self, phone: str) -> Agent | None: ...

    def phone_of_agent(self, number: str) -> str | None: ...


class JournalSink(Protocol):
    def record(
        self,
        call_id: str,
        event: str,
        data: Mapping[str, str],
        *,
        node: str = "",
        source: str = "hotline",
        uniqueid: str | None = None,
        channel: str | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class ControlResult:
    """What an action did: the call it acted on, where, and one line for people."""

    call_id: str
    node: str
    summary: str
    channels: tuple[str, ...] = ()


class CallControlService:
    def __init__(
        self,
        nodes_client: Callable[[str], AMIClientLike],
        snapshot: Callable[[], ConfigSnapshot],
        agents: AgentLookups,
        journal: JournalSink,
        *,
        originate_timeout: float = 30.0,
        list_timeout: float = 5.0,
        route_context: Callable[[str], RouteContext] | None = None,
        journal_flush: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if originate_timeout <= 0:
            raise ValidationError("originate_timeout", "must be positive")
        self._client = nodes_client
        self._snapshot = snapshot
        self._agents = agents
        self._journal = journal
        self._originate_timeout = originate_timeout
        self._list_timeout = list_timeout
        self._route_context = route_context
        self._journal_flush = journal_flush

    # ------------------------------------------------------------------ finding channels
    async def live_channels(self) -> tuple[list[LiveChannel], dict[str, str]]:
        """Every channel of every node now, and the nodes that did not answer (name -> error)."""
        nodes = [n.name for n in self._snapshot().nodes]
        if not nodes:
            raise NodeUnavailableError("no Asterisk node is configured")
        results = await asyncio.gather(*(self._node_channels(n) for n in nodes))
        channels: list[LiveChannel] = []
        errors: dict[str, str] = {}
        for node, (found, error) in zip(nodes, results, strict=True):
            channels += found
            if error is not None:
                errors[node] = error
        return channels, errors

    async def _node_channels(self, node: str) -> tuple[list[LiveChannel], str | None]:
        try:
            items = await self._client(node).action_list("CoreShowChannels", timeout=self._list_timeout)
        except HotlineError as exc:  # one node down must not hide the calls of the others
            return [], str(exc)
        return [LiveChannel.from_message(node, m) for m in items if m.name == "CoreShowChannel"], None

    async def call_channels(self, call_id: str) -> list[LiveChannel]:
        """The live channels of a call; NotFoundError when it has none on any node."""
        call_id = a.check_call_id(call_id)
        channels, errors = await self.live_channels()
        mine = [c for c in channels if c.call_id == call_id]
        if not mine:
            if errors:
                down = "; ".join(f"{n}: {e}" for n, e in errors.items())
                raise NodeUnavailableError(f"call {call_id} is on none of the reachable nodes (unreachable: {down})")
            raise NotFoundError(f"call {call_id} has no live channel (ended, or not a Hotline call id)")
        return mine

    def _agents_by_phone(self, channels: Iterable[LiveChannel]) -> dict[str, Agent]:
        out: dict[str, Agent] = {}
        for c in channels:
            if c.endpoint and c.endpoint not in out and (agent := self._agents.agent_on_phone(c.endpoint)):
                out[c.endpoint] = agent
        return out

    def _context(self, node: str) -> RouteContext:
        if self._route_context is not None:
            return self._route_context(node)
        return RouteContext(
            snap=self._snapshot(),
            now=datetime.now(UTC),
            agent_on_phone=self._agents.agent_on_phone,
            phone_of_agent=self._agents.phone_of_agent,
        )

    # ------------------------------------------------------------------ journal and AMI
    async def _note(self, call_id: str, node: str, control: str, outcome: str, data: Mapping[str, str]) -> None:
        if not call_id:
            log.info("call control %s %s (no call id): %s", control, outcome, dict(data))
            return
        entry = {"control": control, "outcome": outcome, **data}
        self._journal.record(call_id, JOURNAL_EVENT, entry, node=node, source="hotline")
        if self._journal_flush is not None:
            await self._journal_flush()

    async def _refuse(self, call_id: str, node: str, control: str, why: str, data: Mapping[str, str]) -> None:
        await self._note(call_id, node, control, "refused", {**data, "reason": why})
        raise PermissionDeniedError(f"{why}; refused, journaled under call {call_id}" if call_id else why)

    async def _run(
        self,
        call_id: str,
        node: str,
        control: str,
        data: Mapping[str, str],
        steps: Sequence[tuple[str, a.Fields]],
    ) -> None:
        """Journal the request, then send the actions in order; a failure is journaled and re-raised."""
        await self._note(call_id, node, control, "requested", data)
        try:
            for action, fields in steps:
                await self._client(node).action(action, fields)
        except HotlineError as exc:
            await self._note(call_id, node, control, "failed", {**data, "error": str(exc)})
            raise

    # ------------------------------------------------------------------ click-to-call
    async def originate(self, agent_number: str, number: str, *, actor: str, node: str | None = None) -> ControlResult:
        """Ring the phone agent `agent_number` is logged in on; when answered, dial `number` through the
        router (context hotline-phones), which applies the agent's limits as if the agent had keyed it."""
        number = a.check_number(number)
        snap = self._snapshot()
        agent = _agent(snap, agent_number)
        phone_name = self._agents.phone_of_agent(agent.number)
        if phone_name is None:
            raise ConflictError(f"agent {agent.number} is not logged in")
        phone = _phone(snap, phone_name)
        call_id = new_call_id()
        data = {"agent": agent.number, "phone": phone.name, "number": number, "actor": actor}
        why = a.refusal(snap, agent, a.ORIGINATE) or a.call_type_refusal(snap, agent, number)
        if why:  # refused before anything else, even with no node to reach
            await self._refuse(call_id, next((n.name for n in snap.nodes), ""), "originate", why, data)
        candidates = _nodes_to_try(snap, node)
        fields = a.originate_fields(
            phone=phone.name,
            callerid=phone.callerid,
            number=number,
            call_id=call_id,
            actor=actor,
            timeout_s=self._originate_timeout,
        )
        errors: list[str] = []
        for name in candidates:  # the phone's contact is shared (realtime): any node can ring it
            try:
                await self._run(call_id, name, "originate", data, [("Originate", fields)])
            except NodeUnavailableError as exc:
                errors.append(str(exc))
                continue
            return ControlResult(call_id, name, f"ringing phone {phone.name} of agent {agent.number}, then {number}")
        raise NodeUnavailableError("no node could originate: " + "; ".join(errors))

    # ------------------------------------------------------------------ hang-up
    async def hangup(self, target: str, *, actor: str) -> ControlResult:
        """Hang up every channel of a call (by call id), or one channel (by name: it contains '/')."""
        if "/" in target:
            name = a.check_channel(target)
            channels, errors = await self.live_channels()
            victims = [c for c in channels if c.name == name]
            if not victims:
                where = f" (unreachable: {', '.join(errors)})" if errors else ""
                raise NotFoundError(f"no channel {name} on the reachable nodes{where}")
            call_id = victims[0].call_id
        else:
            victims = await self.call_channels(target)
            call_id = victims[0].call_id
        names = tuple(c.name for c in victims)
        await self._note(call_id, victims[0].node, "hangup", "requested", {"channels": " ".join(names), "actor": actor})
        failed: list[str] = []
        for c in victims:
            try:
                await self._client(c.node).action("Hangup", a.hangup_fields(c.name))
            except AsteriskError as exc:
                # hanging up one party ends its bridge, so its peers may be gone before their turn
                if "no such channel" not in str(exc).lower():
                    failed.append(f"{c.name}: {exc}")
        if failed:
            error = "; ".join(failed)
            await self._note(call_id, victims[0].node, "hangup", "failed", {"error": error, "actor": actor})
            raise AsteriskError(f"hang-up failed for {error}")
        return ControlResult(call_id, victims[0].node, f"hung up {', '.join(names)}", names)

    # ------------------------------------------------------------------ transfers
    async def _transfer_prelude(
        self, call_id: str, target: str, agent: str | None, control: str, actor: str
    ) -> tuple[LiveChannel, list[LiveChannel], Decision, dict[str, str]]:
        snap = self._snapshot()
        tgt = a.classify_target(snap, target)
        channels = await self.call_channels(call_id)
        _not_busy(channels, call_id)
        leg, who = a.pick_agent_leg(channels, self._agents_by_phone(channels), call_id, agent)
        peers = a.bridged_with(channels, leg)
        if not peers:
            raise ConflictError(f"call {call_id}: agent {who.number} is not talking to anyone (not answered yet?)")
        data = {"agent": who.number, "target": str(tgt), "actor": actor}
        why = a.refusal(snap, who, tgt.permission)
        if why is None and not tgt.internal:
            why = a.call_type_refusal(snap, who, tgt.value)
        if why:
            await self._refuse(leg.call_id, leg.node, control, why, data)
        decision = a.target_decision(self._context(leg.node), tgt)
        data["decision"] = decision.summary
        return leg, peers, decision, data

    async def blind_transfer(self, call_id: str, target: str, *, actor: str, agent: str | None = None) -> ControlResult:
        """Send the agent's party (everyone bridged with the agent) to `target`; the agent's leg ends.

        `target` is classified against the configuration (a phone, agent, DID, queue or service number is
        internal, anything else dialable is external) and routed as the router would route it; the
        agent's group must allow transfer_internal or transfer_external (and, outside, the call type)."""
        leg, peers, decision, data = await self._transfer_prelude(call_id, target, agent, "blind_transfer", actor)
        steps = [
            ("Setvar", a.setvar_fields(p.name, name, value))
            for p in peers
            for name, value in a.transfer_variables(decision, inherit=False)
        ]
        steps.append(("BlindTransfer", a.blind_transfer_fields(leg.name, decision)))
        await self._run(leg.call_id, leg.node, "blind_transfer", data, steps)
        return ControlResult(leg.call_id, leg.node, f"transferred to {decision.summary}", tuple(p.name for p in peers))

    async def attended_transfer(
        self, call_id: str, target: str, *, actor: str, agent: str | None = None
    ) -> ControlResult:
        """Start an attended transfer (AMI Atxfer): the party is held, the agent talks to `target`; when
        the agent hangs up, the party and the target are connected.  Needs the node's features.conf
        `atxfer` code and the `hotline-control` dialplan (docs/call-control.md) and an agent who got
        transfer rights from the queue (Queue option t)."""
        leg, _peers, decision, data = await self._transfer_prelude(call_id, target, agent, "attended_transfer", actor)
        steps = [
            ("Setvar", a.setvar_fields(leg.name, name, value))
            for name, value in a.transfer_variables(decision, inherit=True)
        ]
        steps.append(("Atxfer", a.atxfer_fields(leg.name)))
        await self._run(leg.call_id, leg.node, "attended_transfer", data, steps)
        return ControlResult(leg.call_id, leg.node, f"consulting {decision.summary}", (leg.name,))

    # ------------------------------------------------------------------ hold
    async def hold(self, call_id: str, *, actor: str, agent: str | None = None, moh_class: str = "") -> ControlResult:
        """Music on hold for the agent's party, silence for the agent, until `unhold`.

        A queue call stays in its bridge: an attended transfer to a silent leg (AMI Atxfer) makes the bridge
        play music on hold to the caller, so app_queue keeps following the call.  Any other call leaves
        its bridge: both parties move together (AMI Redirect with ExtraChannel)."""
        channels = await self.call_channels(call_id)
        _not_busy(channels, call_id)
        leg, who = a.pick_agent_leg(channels, self._agents_by_phone(channels), call_id, agent)
        peers = a.bridged_with(channels, leg)
        if len(peers) != 1:
            raise ConflictError(
                f"call {call_id}: hold needs the agent in a two-party conversation ({len(peers) + 1} parties)"
            )
        held = peers[0]
        by_transfer = a.hold_by_transfer(leg)
        data = {
            "agent": who.number,
            "held": held.name,
            "how": "transfer" if by_transfer else "redirect",
            "actor": actor,
        }
        steps: list[tuple[str, a.Fields]] = []
        if moh_class:
            if moh_class != a.safe(moh_class, 80):
                raise ValidationError("moh_class", f"{moh_class!r} is not a music class name")
            steps.append(("Setvar", a.setvar_fields(held.name, "CHANNEL(musicclass)", moh_class)))
        if by_transfer:
            steps.append(("Atxfer", a.atxfer_fields(leg.name, QUEUE_HOLD_EXTEN)))
        else:
            steps.append(("Redirect", a.hold_fields(held.name, leg.name)))
        await self._run(leg.call_id, leg.node, "hold", data, steps)
        return ControlResult(leg.call_id, leg.node, f"{held.name} on hold", (held.name, leg.name))

    async def unhold(self, call_id: str, *, actor: str, agent: str | None = None) -> ControlResult:
        channels = await self.call_channels(call_id)
        if a.on_hold_by_transfer(channels):
            leg, who = a.pick_agent_leg(channels, self._agents_by_phone(channels), call_id, agent)
            data = {"agent": who.number, "how": "transfer", "actor": actor}
            await self._run(leg.call_id, leg.node, "unhold", data, [("CancelAtxfer", [("Channel", leg.name)])])
            return ControlResult(leg.call_id, leg.node, f"{leg.name} back with its caller", (leg.name,))
        held, holding = a.held_legs(channels)
        data = {"held": held.name, "agent_channel": holding.name, "how": "redirect", "actor": actor}
        await self._run(held.call_id, held.node, "unhold", data, [("Bridge", a.unhold_fields(holding.name, held.name))])
        summary = f"{held.name} back with {holding.name}"
        return ControlResult(held.call_id, held.node, summary, (held.name, holding.name))

    # ------------------------------------------------------------------ supervision
    async def spy(self, supervisor_phone: str, agent_number: str, mode: str = "listen", *, actor: str) -> ControlResult:
        """Ring `supervisor_phone`; when answered, ChanSpy on the agent's current call channel: listen
        (the supervisor hears both sides), whisper (the agent also hears the supervisor) or barge (both
        sides hear the supervisor).  When an agent is logged in on the supervisor's phone, its group must
        allow the mode (listen, whisper, barge)."""
        a.spy_options(mode)  # validates the mode before anything else
        snap = self._snapshot()
        sup = _phone(snap, supervisor_phone)
        agent = _agent(snap, agent_number)
        agent_phone = self._agents.phone_of_agent(agent.number)
        if agent_phone is None:
            raise ConflictError(f"agent {agent.number} is not logged in")
        if agent_phone == sup.name:
            raise ValidationError("supervisor_phone", f"phone {sup.name} is the agent's own phone")
        channels, errors = await self.live_channels()
        legs = [c for c in channels if c.endpoint == agent_phone]
        if not legs:
            if errors:
                raise NodeUnavailableError(f"agent {agent.number}'s call not found (unreachable: {', '.join(errors)})")
            raise ConflictError(f"agent {agent.number} is not on a call")
        leg = sorted(legs, key=lambda c: (not c.bridge_id, not c.call_id))[0]
        supervisor = self._agents.agent_on_phone(sup.name)
        data = {
            "mode": mode,
            "supervisor_phone": sup.name,
            "supervisor": supervisor.number if supervisor else "",
            "agent": agent.number,
            "spied_channel": leg.name,
            "actor": actor,
        }
        why = a.refusal(snap, supervisor, mode)
        if why:
            await self._refuse(leg.call_id, leg.node, "spy", why, data)
        fields = a.spy_fields(
            supervisor_phone=sup.name,
            channel=leg.name,
            mode=mode,
            agent=agent.number,
            call_id=leg.call_id,
            actor=actor,
            timeout_s=self._originate_timeout,
        )
        # ChanSpy sees only its own node's channels: the supervisor's leg must start where the agent's is
        await self._run(leg.call_id, leg.node, "spy", data, [("Originate", fields)])
        return ControlResult(leg.call_id, leg.node, f"phone {sup.name} rings to {mode} on {leg.name}", (leg.name,))


def _not_busy(channels: Sequence[LiveChannel], call_id: str) -> None:
    busy = a.busy_with(channels)
    if busy is not None:
        raise ConflictError(f"call {call_id} is {busy}: end that first")


def _agent(snap: ConfigSnapshot, number: str) -> Agent:
    agent = snap.agent_by_number.get(number)
    if agent is None or not agent.enabled:
        raise NotFoundError(f"agent {number!r} does not exist or is disabled")
    return agent


def _phone(snap: ConfigSnapshot, name: str) -> Phone:
    phone = snap.phone_by_name.get(name)
    if phone is None or not phone.enabled:
        raise NotFoundError(f"phone {name!r} does not exist or is disabled")
    return phone


def _nodes_to_try(snap: ConfigSnapshot, node: str | None) -> list[str]:
    names = [n.name for n in snap.nodes]
    if node is not None:
        if node not in names:
            raise NotFoundError(f"node {node!r} is not configured")
        return [node]
    if not names:
        raise NodeUnavailableError("no Asterisk node is configured")
    # nodes last seen up first; the order of the configuration otherwise
    return [n.name for n in sorted(snap.nodes, key=lambda n: n.state != "up")]


__all__ = [
    "AMIClientLike",
    "AgentLookups",
    "CallControlService",
    "ControlResult",
    "JournalSink",
    "LiveChannel",
    "PermissionDeniedError",
]
