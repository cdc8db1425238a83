"""The AMI client against a scripted AMI server on real TCP, speaking bytes recorded from Asterisk 22."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.asterisk.ami_client import AMIClient
from hotline.errors import ActionTimeoutError, AsteriskError, NodeUnavailableError
from hotline.protocols.ami import AMIParser, Message

RECORDED = (Path(__file__).parents[1] / "fixtures" / "ami" / "queue_call.ami").read_bytes()
EVENTS = RECORDED.split(b"\r\n\r\n", 1)[1]  # everything after the login response


class FakeAMI:
    """Accepts logins (secret 'good'), answers Ping/CoreStatus/QueueStatus, replays recorded events."""

    def __init__(self) -> None:
        self.connections = 0
        self.actions: list[Message] = []
        self.silent = False
        self.booting = False  # the node is still loading its modules: no FullyBooted after the login
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        parser = AMIParser(expect_banner=False)
        try:
            while data := await reader.read(4096):
                for msg in parser.feed(data):
                    self.actions.append(msg)
                    await self.answer(msg, writer)
        finally:
            writer.close()

    async def answer(self, msg: Message, w: asyncio.StreamWriter) -> None:
        aid = msg.action_id or ""
        name = (msg.get("Action") or "").lower()
        if self.silent and name != "login":
            return
        if name == "login":
            if msg.get("Secret") != "good":
                w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Authentication failed\r\n\r\n".encode())
                w.close()
                return
            w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n".encode())
            w.write(_without_fully_booted(EVENTS) if self.booting else EVENTS)
        elif name == "sorcerymemorycachepopulate":
            w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Cache populated\r\n\r\n".encode())
        elif name == "ping":
            w.write(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n".encode())
        elif name == "queuestatus":
            w.write(f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n".encode())
            w.write(f"Event: QueueParams\r\nQueue: support\r\nActionID: {aid}\r\n\r\n".encode())
            w.write(f"Event: QueueMember\r\nQueue: support\r\nName: agent-2101\r\nActionID: {aid}\r\n\r\n".encode())
            w.write(
                f"Event: QueueStatusComplete\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 2\r\n\r\n".encode()
            )
        elif name == "command":  # as main/manager.c action_command: Error when the CLI command failed
            cmd = msg.get("Command") or ""
            if cmd.startswith("pjsip show qualify aor "):
                aor = cmd.rsplit(" ", 1)[1]
                ok = aor == "2001"
                out = (" * AOR '2001'\r\nOutput:   Qualify frequency    : 0 sec" if ok
                       else f"Unable to retrieve aor '{aor}' qualify options")  # fmt: skip
                w.write(
                    f"Response: {'Success' if ok else 'Error'}\r\nActionID: {aid}\r\n"
                    f"Message: Command output follows\r\nOutput: {out}\r\n\r\n".encode()
                )
            else:
                w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Command blacklisted\r\n\r\n".encode())
        else:
            w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Invalid/unknown command\r\n\r\n".encode())


def _without_fully_booted(stream: bytes) -> bytes:
    messages = [m for m in stream.split(b"\r\n\r\n") if m]
    return b"".join(m + b"\r\n\r\n" for m in messages if not m.startswith(b"Event: FullyBooted"))


@pytest.fixture()
async def ami() -> AsyncIterator[tuple[FakeAMI, int]]:
    fake = FakeAMI()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    yield fake, server.sockets[0].getsockname()[1]
    server.close()
    for w in fake.writers:
        w.close()


@contextlib.asynccontextmanager
async def running(port: int, secret: str = "good", **kw: float) -> AsyncIterator[tuple[AMIClient, list[Message]]]:
    events: list[Message] = []
    states: list[bool] = []
    client = AMIClient(
        name="node1",
        host="127.0.0.1",
        port=port,
        username="hotline",
        secret=secret,
        on_event=lambda node, m: events.append(m),
        on_state=lambda n, up: states.append(up),
        reconnect_max=0.2,
        **kw,
    )
    task = asyncio.create_task(client.run())
    try:
        yield client, events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_login_events_and_actions(ami: tuple[FakeAMI, int]) -> None:
    fake, port = ami
    async with running(port) as (client, events):
        await client.wait_connected(5)
        reply = await client.action("Ping")
        assert reply.get("Ping") == "Pong"
        items = await client.action_list("QueueStatus", {"Queue": "support"})
        assert [m.name for m in items] == ["QueueParams", "QueueMember"]
        with pytest.raises(AsteriskError, match="Invalid/unknown command"):
            await client.action("NoSuchAction")
    names = [m.name for m in events]
    assert "AgentConnect" in names and "Hangup" in names
    assert all(m.action_id is None or not m.action_id.startswith("hl-") for m in events)
    login = fake.actions[0]
    assert login.get("Action") == "Login" and login.get("Username") == "hotline"


async def test_reconnects_after_the_node_drops_the_connection(ami: tuple[FakeAMI, int]) -> None:
    fake, port = ami
    async with running(port) as (client, events):
        await client.wait_connected(5)
        fake.writers[0].close()  # Asterisk restarts
        while fake.connections < 2:
            await asyncio.sleep(0.01)  # polling the server's accept counter
        await client.wait_connected(5)
        assert (await client.action("Ping")).get("Ping") == "Pong"
        assert client.connects == 2


async def test_refused_login_is_not_connected(ami: tuple[FakeAMI, int]) -> None:
    fake, port = ami
    async with running(port, secret="bad") as (client, events):
        with pytest.raises(NodeUnavailableError):
            await client.wait_connected(0.5)
        with pytest.raises(NodeUnavailableError):
            await client.action("Ping")
    assert events == []


async def test_unanswered_action_times_out(ami: tuple[FakeAMI, int]) -> None:
    fake, port = ami
    async with running(port, action_timeout=0.3) as (client, events):
        await client.wait_connected(5)
        fake.silent = True
        with pytest.raises(ActionTimeoutError):
            await client.action("Ping")


async def test_keepalive_pings_while_idle(ami: tuple[FakeAMI, int]) -> None:
    fake, port = ami
    async with running(port, keepalive=0.05) as (client, events):
        await client.wait_connected(5)
        while sum(1 for a in fake.actions if a.get("Action") == "Ping") < 3:
            await asyncio.sleep(0.02)  # polling the server's record of pings
    assert client.connects == 1


async def test_command_returns_the_outcome_and_output_of_a_cli_command(ami: tuple[FakeAMI, int]) -> None:
    """A CLI command that fails answers Response: Error with its output: returned, not raised."""
    fake, port = ami
    async with running(port) as (client, _):
        await client.wait_connected(5)
        assert await client.command("pjsip show qualify aor 2001") == (
            True,
            [" * AOR '2001'", "  Qualify frequency    : 0 sec"],
        )
        assert await client.command("pjsip show qualify aor 2209") == (
            False,
            ["Unable to retrieve aor '2209' qualify options"],
        )
        assert await client.command("core stop now") == (False, [])
    assert [m.get("Command") for m in fake.actions if m.get("Action") == "Command"] == [
        "pjsip show qualify aor 2001",
        "pjsip show qualify aor 2209",
        "core stop now",
    ]


async def test_wait_booted_follows_the_nodes_fully_booted_event(ami: tuple[FakeAMI, int]) -> None:
    """Asterisk sends FullyBooted right after the login once its modules are loaded, else when they are;
    until then a module's CLI commands answer "No such command"."""
    fake, port = ami
    fake.booting = True
    async with running(port) as (client, events):
        await client.wait_connected(5)
        await client.action("Ping")  # the replayed events are in before the answer
        assert "Hangup" in [m.name for m in events] and "FullyBooted" not in [m.name for m in events]
        assert await client.wait_booted(0.1) is False
        fake.writers[-1].write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
        assert await client.wait_booted(5) is True
        fake.writers[-1].close()  # the node restarts: not booted until it says so again
        while fake.connections < 2:
            await asyncio.sleep(0.01)  # polling the server's accept counter
        await client.wait_connected(5)
        await client.action("Ping")
        assert await client.wait_booted(0.1) is False
    fake.booting = False
    async with running(port) as (client, _):
        await client.wait_connected(5)
        assert await client.wait_booted(5) is True
