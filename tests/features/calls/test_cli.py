"""`hotline call ...` without an Asterisk node: the parser, the journal entries sent as AMI UserEvents, and
the whole command against a real database with a node that is not there (tests/e2e/test_call_control.py
drives every command against a real node)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from hotline.cli import build_parser, main
from hotline.db.engine import create_engine_for
from hotline.db.repositories import ConfigRepository
from hotline.db.repositories.agents import AgentStateRepository
from hotline.db.repositories.callcenter import CallCenterRepository
from hotline.errors import AsteriskError
from hotline.features.agents.service import AgentService
from hotline.features.calls.cli import UserEventJournal, cmd_call
from hotline.protocols.ami import Message

CALL_ID = "01a2158c-fbd8-712c-9ebd-f8a86f4a3a62"


def test_the_call_commands_hang_off_the_hotline_parser() -> None:
    args = build_parser().parse_args(["call", "transfer", CALL_ID, "2304", "--attended", "--agent", "1001"])
    assert args.func is cmd_call
    assert (args.call_cmd, args.call_id, args.target, args.attended, args.agent) == (
        "transfer", CALL_ID, "2304", True, "1001",
    )  # fmt: skip
    args = build_parser().parse_args(["call", "spy", "2303", "1001", "--mode", "whisper"])
    assert (args.supervisor_phone, args.agent, args.mode) == ("2303", "1001", "whisper")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["call", "spy", "2303", "1001", "--mode", "shout"])


class Client:
    """What UserEventJournal needs of an AMI client: `connected` and `action`."""

    def __init__(self, connected: bool = True, error: str = "") -> None:
        self.connected = connected
        self.error = error
        self.sent: list[list[tuple[str, str]]] = []

    async def action(
        self, action: str, fields: Mapping[str, str] | Iterable[tuple[str, str]] = (), *, timeout: float | None = None
    ) -> Message:
        assert action == "UserEvent"
        if self.error:
            raise AsteriskError(self.error)
        self.sent.append(list(fields.items() if isinstance(fields, Mapping) else fields))
        return Message([("Response", "Success")])


async def test_journal_entries_go_to_the_calls_node_first_then_any_other() -> None:
    node1, node2, node3 = Client(), Client(), Client(connected=False)
    journal = UserEventJournal({"node1": node1, "node2": node2, "node3": node3})  # type: ignore[dict-item]
    journal.record(CALL_ID, "CallControl", {"control": "hangup", "outcome": "requested"}, node="node2")
    await journal.flush()
    assert node2.sent == [[("UserEvent", "HotlineControl"), ("ChanVariable", f"HOTLINE_CALL_ID={CALL_ID}"),
                           ("control", "hangup"), ("outcome", "requested")]]  # fmt: skip
    node2.error = "node2: UserEvent failed: boom"
    journal.record(CALL_ID, "CallControl", {"control": "hangup", "outcome": "failed"}, node="node2")
    await journal.flush()
    assert len(node1.sent) == 1 and (journal.sent, journal.failed) == (2, 0)
    node1.connected = False
    journal.record(CALL_ID, "CallControl", {"control": "spy", "outcome": "refused"}, node="node1")
    await journal.flush()
    assert (journal.sent, journal.failed) == (2, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def configured(sqlite_url: str, tmp_path: Path) -> Path:
    """A database with agents logged in and a node nobody answers for; the settings file pointing at it."""
    engine = create_engine_for(sqlite_url)
    config = ConfigRepository(engine)
    cc = CallCenterRepository(engine)
    config.add_phone("2301", "secret-2301", realm="hotline")
    config.add_phone("2302", "secret-2302", realm="hotline")
    config.add_agent_group("restricted")
    cc.update_agent_group("restricted", allowed_actions="transfer_internal")
    config.add_agent("1001", "Alice")
    config.add_agent("1002", "Boris", group="restricted")
    config.upsert_node("node1", "127.0.0.1", 5060, _free_port())
    snap = config.load_snapshot()

    async def login() -> None:
        agents = AgentService(AgentStateRepository(engine), lambda: snap)
        await agents.start()
        await agents.login("1002", None, "2302", actor="test", check_pin=False)
        await agents.flush()

    asyncio.run(login())
    engine.dispose()
    path = tmp_path / "hotline.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\ndatabase_url = "{sqlite_url}"\nami_action_timeout = 0.5\n'
        'realtime_token = "t"\nami_secret = "s"\n'
    )
    return path


def test_a_refusal_is_a_clear_error_even_without_a_node(configured: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(configured), "call", "originate", "1002", "2345678"])
    err = capsys.readouterr().err
    assert code == 2
    assert "hotline: action originate is not allowed for agent 1002 (group restricted" in err
    # nobody could take the journal entry: the operator is told
    assert "warning: 1 journal entry not delivered" in err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["call", "originate", "1001", "2345678"], 2, "agent 1001 is not logged in"),
        (["call", "originate", "1002", "12ab"], 2, "number: '12ab' is not dialable"),
        (["call", "hangup"], 2, "give a call id or --channel"),
        (["call", "hangup", CALL_ID], 1, "is on none of the reachable nodes (unreachable: node1"),
        (["call", "spy", "2301", "1002"], 1, "agent 1002's call not found (unreachable: node1)"),
    ],
)
def test_cli_errors(
    configured: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert main(["--config", str(configured), *argv]) == code
    assert message in capsys.readouterr().err


def test_a_missing_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "call", "channels"]) == 2
    assert "does not exist" in capsys.readouterr().err
