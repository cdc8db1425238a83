"""Configuration as data, kept in memory for the hot paths.

`ConfigService` holds the current `ConfigSnapshot` (phones, queues, members, routes, nodes...).  Hot paths
(realtime lookups, AGI routing) read `service.snapshot` and never wait on the database.  The snapshot is
replaced when configuration changes:
- at once after a write made through this service (the write returns after the new snapshot is live);
- within `poll_interval` after a write made elsewhere (the CLI, another Hotline instance): every write
  bumps `config_version` in the same transaction, and `watch_loop` polls that one integer.
Listeners (the realtime backend, the router) are called with each new snapshot, in registration order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from hotline.db.repositories import ConfigRepository
from hotline.domain.config import ConfigSnapshot

log = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[[ConfigSnapshot], None]


class ConfigService:
    def __init__(self, repo: ConfigRepository, *, poll_interval: float = 0.5) -> None:
        self._repo = repo
        self._poll = poll_interval
        self._snapshot: ConfigSnapshot | None = None
        self._listeners: list[Listener] = []
        self._reload_lock = asyncio.Lock()

    @property
    def snapshot(self) -> ConfigSnapshot:
        if self._snapshot is None:
            raise RuntimeError("ConfigService.start() was not awaited")
        return self._snapshot

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)
        if self._snapshot is not None:
            listener(self._snapshot)

    async def start(self) -> None:
        await self.reload()

    async def reload(self) -> bool:
        """Load the snapshot if the stored version differs; True if it changed."""
        async with self._reload_lock:
            version = await asyncio.to_thread(self._repo.version)
            if self._snapshot is not None and version == self._snapshot.version:
                return False
            snap = await asyncio.to_thread(self._repo.load_snapshot)
            self._snapshot = snap
            for listener in self._listeners:
                try:
                    listener(snap)
                except Exception:
                    log.exception("config listener %r failed on version %d", listener, snap.version)
            log.info("configuration version %d live", snap.version)
            return True

    async def watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database unreachable: keep serving the last snapshot
                log.warning("configuration poll failed (%s); serving version %s", exc, self.version)

    @property
    def version(self) -> int | None:
        return None if self._snapshot is None else self._snapshot.version

    async def write(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one repository write off the loop, then make the new snapshot live before returning."""
        result = await asyncio.to_thread(method, *args, **kwargs)
        await self.reload()
        return result

    @property
    def repo(self) -> ConfigRepository:
        return self._repo
