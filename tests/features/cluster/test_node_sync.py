"""NodeService against a scripted AMI server on real TCP: the node's PJSIP caches and phone states are
synced once the node has said FullyBooted, not while it still loads its modules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.db.engine import create_engine_for
from hotline.db.migrate import upgrade
from hotline.db.repositories import CallRepository, ConfigRepository
from hotline.features.cluster.service import NodeService
from hotline.features.journal.service import JournalService
from hotline.settings import load_settings

from ...asterisk.test_ami_client import FakeAMI

FULLY_BOOTED = b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"


@pytest.fixture()
async def ami() -> AsyncIterator[tuple[FakeAMI, int]]:
    fake = FakeAMI()
    fake.booting = True  # the node accepts the login while it still loads its modules
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    yield fake, server.sockets[0].getsockname()[1]
    server.close()
    for w in fake.writers:
        w.close()


def _sent(fake: FakeAMI, action: str) -> list[str]:
    return [m.get("Cache") or m.get("Command") or "" for m in fake.actions if m.get("Action") == action]


async def test_caches_and_phone_states_wait_for_fully_booted(ami: tuple[FakeAMI, int], tmp_path: Path) -> None:
    fake, port = ami
    settings = load_settings(environ={}, overrides={"data_dir": tmp_path, "ami_secret": "good"})
    engine = create_engine_for(f"sqlite:///{tmp_path / 'hl.db'}")
    upgrade(engine)
    config = ConfigRepository(engine)
    config.upsert_node("node1", "127.0.0.1", 5060, port)
    config.add_phone("2001", "desk-2001-secret", realm=settings.sip_realm)
    nodes = NodeService(settings, config, JournalService(CallRepository(engine)))
    nodes.on_snapshot(config.load_snapshot())
    try:
        client = nodes.clients["node1"]
        await client.wait_connected(5)
        await client.action("Ping")  # the login and everything the node sent after it have been read
        assert _sent(fake, "SorceryMemoryCachePopulate") == [] and _sent(fake, "Command") == []
        fake.writers[-1].write(FULLY_BOOTED)

        async def synced() -> None:
            while not _sent(fake, "Command"):
                await asyncio.sleep(0.01)  # polling the server's record of actions

        await asyncio.wait_for(synced(), 5)
        assert _sent(fake, "SorceryMemoryCachePopulate") == ["res_pjsip/endpoint", "res_pjsip/auth", "res_pjsip/aor"]
        assert _sent(fake, "Command") == ["pjsip show qualify aor 2001"]  # the fake knows 2001: nothing to reload
    finally:
        await nodes.stop()
        engine.dispose()
