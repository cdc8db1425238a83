"""The Asterisk nodes Hotline talks to: one supervised AMI client per node in the configuration.

`NodeService` follows the `nodes` table: a node added to the configuration gets an AMI client at once,
a removed one is disconnected.  Connection state changes are written to the node's row (state 'up' or
'down', last_seen_at) off the event loop.  AMI events go to the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from hotline.asterisk.ami_client import AMIClient
from hotline.db.repositories import ConfigRepository
from hotline.domain.config import ConfigSnapshot
from hotline.errors import NodeUnavailableError
from hotline.features.journal.service import JournalService
from hotline.settings import Settings

log = logging.getLogger(__name__)


class NodeService:
    def __init__(self, settings: Settings, repo: ConfigRepository, journal: JournalService) -> None:
        self._settings = settings
        self._repo = repo
        self._journal = journal
        self.clients: dict[str, AMIClient] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._state_tasks: set[asyncio.Task[None]] = set()

    def on_snapshot(self, snap: ConfigSnapshot) -> None:
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
                    on_event=self._journal.on_ami,
                    on_state=self._on_state,
                    keepalive=s.ami_keepalive,
                    action_timeout=s.ami_action_timeout,
                    reconnect_max=s.ami_reconnect_max,
                )
                self.clients[name] = client
                self._tasks[name] = asyncio.get_running_loop().create_task(client.run(), name=f"ami-{name}")

    def _stop(self, name: str) -> None:
        self.clients.pop(name, None)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def _on_state(self, name: str, up: bool) -> None:
        log.info("node %s is %s", name, "up" if up else "down")
        client = self.clients.get(name)
        version = (client.version or "") if client else ""
        task = asyncio.get_running_loop().create_task(self._write_state(name, up, version))
        self._state_tasks.add(task)
        task.add_done_callback(self._state_tasks.discard)

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
            }
            for c in self.clients.values()
        ]

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for name in list(self.clients):
            self._stop(name)
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
