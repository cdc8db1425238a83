"""The Asterisk nodes Hotline talks to: one supervised AMI client per node in the configuration.

`NodeService` follows the `nodes` table: a node added to the configuration gets an AMI client at once,
a removed one is disconnected.  Connection state changes are written to the node's row (state 'up' or
'down', last_seen_at) off the event loop.  AMI events go to the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from hotline.asterisk.ami_client import AMIClient
from hotline.asterisk.config_render import CACHE_LIFETIME_S, SORCERY_CACHES
from hotline.db.repositories import ConfigRepository
from hotline.domain.config import ConfigSnapshot
from hotline.errors import HotlineError, NodeUnavailableError
from hotline.features.journal.service import JournalService
from hotline.protocols.ami import Message
from hotline.settings import Settings

log = logging.getLogger(__name__)
CACHE_REFRESH_S = CACHE_LIFETIME_S / 3  # the nodes' PJSIP caches are refilled this often, even without changes
BOOT_WAIT_S = 60  # how long a node that has just accepted the AMI login may take to finish loading its modules


class NodeService:
    def __init__(
        self,
        settings: Settings,
        repo: ConfigRepository,
        journal: JournalService,
        listeners: Sequence[Callable[[str, Message], None]] = (),
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._journal = journal
        self._listeners = tuple(listeners)
        self.listener_errors = 0
        self.clients: dict[str, AMIClient] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._state_tasks: set[asyncio.Task[None]] = set()
        # node-side sorcery caches: which configuration version each node's caches reflect
        self._phones_key: tuple[object, ...] | None = None
        self._phones_version = 0  # the version at which the phone objects last changed
        self._version = 0
        self.cache_version: dict[str, int] = {}
        self._sync_locks: dict[str, asyncio.Lock] = {}
        # phones whose AOR each node's endpoint-state machinery is known to hold (see _sync_phone_states)
        self._phone_names: tuple[str, ...] = ()
        self._state_known: dict[str, set[str]] = {}
        self._refresh_task: asyncio.Task[None] | None = None

    def on_snapshot(self, snap: ConfigSnapshot) -> None:
        self._manage_clients(snap)
        if self._refresh_task is None:
            self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_loop(), name="node-caches")
        key = tuple((p.name, p.digest_md5, p.digest_sha256, p.realm, p.context, p.callerid, p.codecs,
                     p.max_contacts, p.enabled) for p in snap.phones)  # fmt: skip
        self._version = snap.version
        self._phone_names = tuple(p.name for p in snap.phones if p.enabled)
        if key != self._phones_key:
            self._phones_key = key
            self._phones_version = snap.version
            for name in self.clients:
                self._spawn(self._sync_caches(name))
        else:  # phones unchanged: nodes whose caches are current stay current at this version
            for name, v in self.cache_version.items():
                if v >= self._phones_version:
                    self.cache_version[name] = snap.version

    async def _sync_caches(self, name: str) -> None:
        """Repopulate the node's endpoint/auth/aor caches from Hotline (SorceryMemoryCachePopulate)."""
        lock = self._sync_locks.setdefault(name, asyncio.Lock())
        async with lock:
            client = self.clients.get(name)
            if client is None or not client.connected:
                return  # done again on (re)connect
            version = self._version
            try:
                for cache in SORCERY_CACHES:
                    await client.action("SorceryMemoryCachePopulate", {"Cache": cache})
            except HotlineError as exc:
                log.warning("node %s: cache refresh failed (%s); it expires within %d s", name, exc, CACHE_LIFETIME_S)
                return
            if not await self._sync_phone_states(name, client):
                return
            self.cache_version[name] = max(self.cache_version.get(name, 0), version)
            log.info("node %s: PJSIP caches refreshed at configuration version %d", name, version)

    async def _sync_caches_when_booted(self, name: str) -> None:
        """_sync_caches once the node has loaded all its modules: Hotline may connect to a node that is still
        starting, whose PJSIP CLI commands and cache actions do not exist yet ("No such command").  A node
        that says nothing for BOOT_WAIT_S is synced anyway, and again when it does say FullyBooted.  Each AMI
        connection has its own waiter; one that outlived its connection stops."""
        client = self.clients.get(name)
        if client is None:
            return
        connection = client.connects

        def same_connection() -> bool:  # else the node is gone, or a newer connection's waiter does it
            return self.clients.get(name) is client and client.connects == connection and client.connected

        booted = await client.wait_booted(BOOT_WAIT_S)
        if not same_connection():
            return
        if booted:
            await self._sync_caches(name)
            return
        log.warning("node %s: no FullyBooted after %d s; refreshing its PJSIP caches anyway", name, BOOT_WAIT_S)
        await self._sync_caches(name)
        await client.wait_booted(None)
        if same_connection():
            await self._sync_caches(name)

    async def _refresh_loop(self) -> None:
        """Refresh every node's caches well before they expire, and check again that it follows every phone.

        Without it the caches, filled at one moment, would all expire together CACHE_LIFETIME_S after the last
        change, and the next SIP request would refill them from realtime on the call path; and a node whose
        res_pjsip was reloaded by hand (dropping AORs it could not read then) would not be noticed."""
        while True:
            await asyncio.sleep(CACHE_REFRESH_S)
            for name in list(self.clients):
                self._state_known.pop(name, None)  # `pjsip show qualify aor` costs the node no realtime lookup
                await self._sync_caches(name)

    async def _sync_phone_states(self, name: str, client: AMIClient) -> bool:
        """Make the node follow the registrations of every phone, so its device state is right.

        PJSIP computes an endpoint's state (Unavailable / Not in use) from its AOR's contacts only for AORs it
        learnt when res_pjsip loaded (or through its sorcery observers, which realtime rows never trigger).  A
        phone added while the node runs, or present when the node started without Hotline answering, would
        register but stay Unavailable for ever, and no queue would ring it.  `pjsip reload qualify aor X`
        makes the node learn that AOR (and its registered contacts) without any reload of configuration;
        `pjsip show qualify aor X` tells, without a realtime lookup, whether it is needed.  Done for each
        phone on each AMI connection (the node may have restarted) and each refresh, and for each new phone."""
        known = self._state_known.setdefault(name, set())
        complete = True
        for phone in self._phone_names:
            if phone in known:
                continue
            try:
                known_here, out = await client.command(f"pjsip show qualify aor {phone}")
                if not known_here:
                    if any("No such command" in line for line in out):
                        log.warning("node %s: PJSIP's CLI is not loaded (%s); device states checked on the next "
                                    "refresh", name, " ".join(out))  # fmt: skip
                        return False
                    ok, out = await client.command(f"pjsip reload qualify aor {phone}")
                    if ok:
                        log.info("node %s: now following the registrations of phone %s", name, phone)
                    else:  # not served to this node (yet): checked again at the next change or refresh
                        log.warning("node %s: phone %s: %s", name, phone, " ".join(out) or "reload qualify failed")
                        complete = False
                        continue
            except HotlineError as exc:
                log.warning("node %s: could not check phone %s's device state (%s); retried on the next change",
                            name, phone, exc)  # fmt: skip
                return False
            known.add(phone)
        return complete

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._state_tasks.add(task)
        task.add_done_callback(self._state_tasks.discard)

    def _manage_clients(self, snap: ConfigSnapshot) -> None:
        wanted = {n.name: n for n in snap.nodes}
        for name in list(self.clients):
            n = wanted.get(name)
            c = self.clients[name]
            if n is None or (n.address, n.ami_port) != (c.host, c.port):
                self._stop(name)
        for name, n in wanted.items():
            if name not in self.clients:
                s = self._settings
                client = AMIClient(
                    name=name,
                    host=n.address,
                    port=n.ami_port,
                    username=s.ami_username,
                    secret=s.ami_secret,
                    on_event=self._on_event if self._listeners else self._journal.on_ami,
                    on_state=self._on_state,
                    keepalive=s.ami_keepalive,
                    action_timeout=s.ami_action_timeout,
                    reconnect_max=s.ami_reconnect_max,
                )
                self.clients[name] = client
                self._tasks[name] = asyncio.get_running_loop().create_task(client.run(), name=f"ami-{name}")

    def _on_event(self, node: str, msg: Message) -> None:
        """Every AMI event: the journal first, then each feature listening (agents, recordings...).
        Listeners never block; one that raises is counted and logged, the others still get the event."""
        self._journal.on_ami(node, msg)
        for listener in self._listeners:
            try:
                listener(node, msg)
            except Exception:
                self.listener_errors += 1
                log.exception("AMI listener %r failed on %s", listener, msg.name)

    async def queue_pause(self, interface: str, paused: bool, reason: str) -> None:
        """Pause or unpause `interface` in every queue of every connected node (AMI QueuePause).

        Raises NodeUnavailableError naming the nodes that did not confirm; the others are paused."""
        failed: list[str] = []
        fields = {"Interface": interface, "Paused": "true" if paused else "false"}
        if paused and reason:
            fields["Reason"] = reason
        for name, client in list(self.clients.items()):
            if not client.connected:
                failed.append(f"{name} (not connected)")
                continue
            try:
                await client.action("QueuePause", fields)
            except HotlineError as exc:
                # "Interface not found" when no queue of this node has loaded the member yet: app_queue
                # reads the pause from realtime when it loads the queue, so that node is fine.
                if "not found" not in str(exc).lower():
                    failed.append(f"{name} ({exc})")
        if failed:
            raise NodeUnavailableError(f"QueuePause {interface} not confirmed by {', '.join(failed)}")

    def _stop(self, name: str) -> None:
        self.clients.pop(name, None)
        self._state_known.pop(name, None)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def _on_state(self, name: str, up: bool) -> None:
        log.info("node %s is %s", name, "up" if up else "down")
        client = self.clients.get(name)
        version = (client.version or "") if client else ""
        self._spawn(self._write_state(name, up, version))
        if up:  # the node may have missed changes while it was away, or just started
            self._spawn(self._sync_caches_when_booted(name))
        else:
            self.cache_version.pop(name, None)
            self._state_known.pop(name, None)  # the node may come back restarted

    async def _write_state(self, name: str, up: bool, version: str) -> None:
        try:
            await asyncio.to_thread(
                self._repo.update_node_status,
                name,
                state="up" if up else "down",
                active_calls=0,
                load=0.0,
                version=version,
                seen_at=datetime.now(UTC),
            )
        except Exception as exc:
            log.warning("could not record state of node %s: %s", name, exc)

    def client(self, name: str) -> AMIClient:
        c = self.clients.get(name)
        if c is None:
            raise NodeUnavailableError(f"unknown node {name!r}")
        return c

    def status(self) -> list[dict[str, object]]:
        return [
            {
                "name": c.name,
                "address": c.host,
                "ami_port": c.port,
                "connected": c.connected,
                "events": c.events_received,
                "connects": c.connects,
                "cache_version": self.cache_version.get(c.name),
            }
            for c in self.clients.values()
        ]

    async def stop(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        for t in list(self._state_tasks):
            t.cancel()
        tasks = list(self._tasks.values())
        for name in list(self.clients):
            self._stop(name)
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a dead client must not stop shutdown
                await t
