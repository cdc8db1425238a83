"""`hotline call ...`: call control from the command line, as an operator or a supervisor uses it.

The CLI is not the running service.  Each command loads the configuration and the agents' states from
the database, opens its own short-lived AMI connection to every node (in parallel, bounded by the
`ami_action_timeout` setting), does one thing and closes them.

Journal entries travel through AMI: the CLI sends each one as a `UserEvent` carrying the call's
HOTLINE_CALL_ID (actions.user_event_fields) and the running service's journal files it under the call
like any other event of that call.  One writer per call keeps the journal's sequence numbers intact: a
second writer to the database could take a number the service is about to use, and the service would
then skip its own event (duplicate (call_id, seq) rows are ignored on insert).  When no Hotline is
connected to the node the entry is lost; the command says so on stderr.

Exit codes as in hotline/cli.py: 0 done, 2 refused or bad input (including a limit of the agent's
group), 1 a failure of the system (a node unreachable, Asterisk refused).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from hotline.errors import (
    HotlineError,
    NodeUnavailableError,
    ValidationError,
)

if TYPE_CHECKING:
    from hotline.asterisk.ami_client import AMIClient
    from hotline.features.calls.control import CallControlService
    from hotline.settings import Settings

log = logging.getLogger(__name__)

SPY_MODE_NAMES = ("listen", "whisper", "barge")


# ---------------------------------------------------------------------------------------------- journal
class UserEventJournal:
    """A `JournalSink` that delivers entries to the running service's journal as AMI UserEvents."""

    def __init__(self, clients: Mapping[str, AMIClient]) -> None:
        self._clients = clients
        self._pending: list[tuple[str, str, dict[str, str], str | None]] = []
        self.sent = 0
        self.failed = 0

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
    ) -> None:
        self._pending.append((call_id, node, dict(data), channel))

    async def flush(self) -> None:
        from hotline.features.calls.actions import user_event_fields

        while self._pending:
            call_id, node, data, channel = self._pending.pop(0)
            fields = user_event_fields(call_id, data, channel)
            # the call's node first (the entry then sits among the events of the action it describes)
            order = [node] if node in self._clients else []
            order += [n for n in self._clients if n != node]
            for name in order:
                client = self._clients[name]
                if not client.connected:
                    continue
                try:
                    await client.action("UserEvent", fields)
                except HotlineError as exc:
                    log.warning("journal entry for %s not sent through %s: %s", call_id, name, exc)
                    continue
                self.sent += 1
                break
            else:
                self.failed += 1


# ---------------------------------------------------------------------------------------------- session
def _settings(args: argparse.Namespace) -> Settings:
    from hotline.cli import _settings as settings_from_args  # the `hotline` command's one way to load them

    return settings_from_args(args)


async def _session(settings: Settings, work: Callable[[CallControlService], Awaitable[str]]) -> str:
    """Run `work` with a CallControlService wired to the database and fresh AMI connections; warn on
    stderr about journal entries that could not be delivered (also when `work` fails or is refused)."""
    from hotline.asterisk.ami_client import AMIClient
    from hotline.db.engine import create_engine_for
    from hotline.db.migrate import upgrade
    from hotline.db.repositories import ConfigRepository
    from hotline.db.repositories.agents import AgentStateRepository
    from hotline.features.agents.service import AgentService
    from hotline.features.calls.control import CallControlService

    engine = create_engine_for(settings.effective_database_url)
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.to_thread(upgrade, engine)
        snap = await asyncio.to_thread(ConfigRepository(engine).load_snapshot)
        agents = AgentService(AgentStateRepository(engine), lambda: snap)
        await agents.start()
        wait = settings.ami_action_timeout
        clients = {
            n.name: AMIClient(
                name=n.name,
                host=n.address,
                port=n.ami_port,
                username=settings.ami_username,
                secret=settings.ami_secret,
                on_event=lambda _node, _msg: None,  # this connection only sends actions
                action_timeout=settings.ami_action_timeout,
                reconnect_max=wait,
                connect_timeout=wait,
            )
            for n in snap.nodes
        }
        tasks = [asyncio.create_task(c.run(), name=f"cli-ami-{name}") for name, c in clients.items()]

        async def connect(client: AMIClient) -> None:
            with contextlib.suppress(NodeUnavailableError):  # the service names the nodes it could not use
                await client.wait_connected(wait)

        await asyncio.gather(*(connect(c) for c in clients.values()))

        def client(name: str) -> AMIClient:
            c = clients.get(name)
            if c is None:
                raise NodeUnavailableError(f"unknown node {name!r}")
            return c

        journal = UserEventJournal(clients)
        service = CallControlService(
            client,
            lambda: snap,
            agents,
            journal,
            originate_timeout=float(getattr(settings, "call_originate_timeout", 30.0)),
            list_timeout=settings.ami_action_timeout,
            journal_flush=journal.flush,
        )
        try:
            return await work(service)
        finally:
            await journal.flush()
            if journal.failed:
                n = journal.failed
                print(f"hotline: warning: {n} journal entr{'y' if n == 1 else 'ies'} not delivered "
                      "(is Hotline running and connected to the node?)", file=sys.stderr)  # fmt: skip
    finally:
        for t in tasks:
            t.cancel()
        if tasks:  # bounded: a client that does not stop must not hang the command
            _, stuck = await asyncio.wait(tasks, timeout=3)
            for t in stuck:
                log.warning("AMI client %s did not stop", t.get_name())
        engine.dispose()


# ---------------------------------------------------------------------------------------------- commands
def cmd_call(args: argparse.Namespace) -> int:
    settings = _settings(args)
    actor = f"cli {getpass.getuser()}"
    sub = args.call_cmd

    async def work(svc: CallControlService) -> str:
        if sub == "originate":
            r = await svc.originate(args.agent, args.number, actor=actor, node=args.node)
        elif sub == "hangup":
            if bool(args.call_id) == bool(args.channel):
                raise ValidationError("call_id", "give a call id or --channel, not both")
            r = await svc.hangup(args.call_id or args.channel, actor=actor)
        elif sub == "transfer":
            if args.attended:
                r = await svc.attended_transfer(args.call_id, args.target, actor=actor, agent=args.agent)
            else:
                r = await svc.blind_transfer(args.call_id, args.target, actor=actor, agent=args.agent)
        elif sub == "hold":
            r = await svc.hold(args.call_id, actor=actor, agent=args.agent, moh_class=args.moh_class or "")
        elif sub == "unhold":
            r = await svc.unhold(args.call_id, actor=actor, agent=args.agent)
        elif sub == "spy":
            r = await svc.spy(args.supervisor_phone, args.agent, args.mode, actor=actor)
        else:  # channels
            channels, errors = await svc.live_channels()
            lines = [
                f"{c.node}\t{c.name}\t{c.call_id or '-'}\t{c.state}\t{c.application or '-'}\t"
                f"{c.context},{c.exten}\t{c.bridge_id or '-'}"
                for c in channels
                if not args.call_id or c.call_id == args.call_id
            ]
            lines += [f"warning: node {n} not reachable: {e}" for n, e in errors.items()]
            return "\n".join(lines) or "no channels"
        return f"call {r.call_id} on {r.node}: {r.summary}"

    print(asyncio.run(_session(settings, work)))
    return 0


# ---------------------------------------------------------------------------------------------- parser
def add_call_parser(sub: Any) -> None:
    """`hotline call ...` subcommands; `sub` is the subparsers object of the `hotline` parser."""
    c = sub.add_parser("call", help="call control: click-to-call, hang-up, transfer, hold, supervisor spy")
    cs = c.add_subparsers(dest="call_cmd", required=True)
    o = cs.add_parser("originate", help="click-to-call: ring the agent's phone, then dial NUMBER")
    o.add_argument("agent", help="agent number (logged in on a phone)")
    o.add_argument("number", help="the number to call, routed as if the agent had dialled it")
    o.add_argument("--node", help="the node to originate on (default: the first node up)")
    h = cs.add_parser("hangup", help="hang up every channel of a call, or one channel")
    h.add_argument("call_id", nargs="?")
    h.add_argument("--channel", help="one channel, e.g. PJSIP/2101-0000000a")
    t = cs.add_parser("transfer", help="transfer the agent's party to TARGET (blind unless --attended)")
    t.add_argument("call_id")
    t.add_argument("target", help="phone, agent number, DID, queue, service number or outside number (or KIND:VALUE)")
    t.add_argument("--attended", action="store_true", help="consult the target first (AMI Atxfer)")
    t.add_argument("--agent", help="the transferring agent when several agents are on the call")
    ho = cs.add_parser("hold", help="music on hold for the agent's party")
    ho.add_argument("call_id")
    ho.add_argument("--agent", help="the agent holding when several agents are on the call")
    ho.add_argument("--moh-class", help="music class (default: the node's default class)")
    uh = cs.add_parser("unhold", help="connect a held party and its agent again")
    uh.add_argument("call_id")
    uh.add_argument("--agent", help="the agent who put the call on hold when several agents are on the call")
    sp = cs.add_parser("spy", help="ring SUPERVISOR_PHONE and listen to, whisper to or barge into AGENT's call")
    sp.add_argument("supervisor_phone")
    sp.add_argument("agent")
    sp.add_argument("--mode", choices=SPY_MODE_NAMES, default="listen")
    cs.add_parser("channels", help="live channels on every node (of one call)").add_argument("call_id", nargs="?")
    c.set_defaults(func=cmd_call)
