"""The journal on a real AMI recording (tests/fixtures/ami/queue_call.ami, from scripts/record-fixtures):
one queue call on Asterisk 22 where the agent hung up first."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import create_engine

from hotline.db.engine import create_engine_for
from hotline.db.repositories import CallRepository
from hotline.features.journal.service import JournalService
from hotline.protocols.ami import AMIParser

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ami" / "queue_call.ami"


def _messages(chunk: int = 65536):  # type: ignore[no-untyped-def]
    data = FIXTURE.read_bytes()
    parser = AMIParser()
    out = []
    for i in range(0, len(data), chunk):
        out += parser.feed(data[i : i + chunk])
    return out


def _call_id() -> str:
    m = re.search(rb"HOTLINE_CALL_ID=([0-9a-f-]{36})", FIXTURE.read_bytes())
    assert m
    return m.group(1).decode()


def _caller_uniqueid() -> str:
    m = re.search(rb"Channel: PJSIP/carrier-\S+\r\n(?:.*\r\n)*?Uniqueid: (\S+)\r\n", FIXTURE.read_bytes())
    assert m
    return m.group(1).decode()


def _journal(sqlite_url: str) -> tuple[JournalService, CallRepository]:
    repo = CallRepository(create_engine_for(sqlite_url))
    return JournalService(repo, batch_size=7), repo


async def test_replayed_queue_call_gives_the_right_record(sqlite_url: str) -> None:
    journal, repo = _journal(sqlite_url)
    call_id = _call_id()
    for msg in _messages():
        if msg.name == "Newchannel" and msg.get("Uniqueid") == _caller_uniqueid():
            # what the AGI router does once the caller's channel reaches Hotline
            journal.start_call(
                call_id,
                node="node1",
                uniqueid=msg.get("Uniqueid"),
                caller_num="74951234567",
                caller_name="Test Caller",
                did="5100",
                channel=msg.get("Channel"),
            )
        journal.on_ami("node1", msg)
    await journal.flush()
    rec = repo.get_call(call_id)
    assert rec is not None
    assert rec.status == "completed" and rec.hangup_by == "agent" and rec.hangup_cause == 16
    assert rec.queue_name == "support" and rec.agent_number == "agent-2101"
    assert rec.agent_channel and rec.agent_channel.startswith("PJSIP/2101-")
    assert rec.answered_at and rec.ended_at and rec.started_at <= rec.answered_at < rec.ended_at
    events = repo.events_for(call_id)
    names = [e.event for e in events]
    assert names[0] == "Newchannel"  # the caller's Newchannel came before the call id and was held, not lost
    for housekeeping in ("QueueMemberStatus", "PeerStatus", "ContactStatus", "SuccessfulAuth"):
        assert housekeeping not in names
    assert names.count("Hangup") == 2
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_events_are_the_same_whatever_the_chunking(sqlite_url: str) -> None:
    whole = [(m.name, m.headers) for m in _messages(1 << 20)]
    bytewise = [(m.name, m.headers) for m in _messages(1)]
    assert whole == bytewise and len(whole) > 30


async def test_events_of_unknown_channels_are_not_journaled(sqlite_url: str) -> None:
    journal, repo = _journal(sqlite_url)
    for msg in _messages():
        if "HOTLINE_CALL_ID" not in msg.chan_variables:
            journal.on_ami("node1", msg)
    assert await journal.flush() == 0


async def test_database_failure_keeps_the_batch(tmp_path: Path) -> None:
    journal, repo = _journal(f"sqlite:///{tmp_path / 'nodir' / 'gone' / 'x.db'}")
    journal.start_call(
        "0190f000-0000-7000-8000-000000000001",
        node="n",
        uniqueid="u1",
        caller_num="1",
        caller_name=None,
        did="5100",
    )
    journal.record("0190f000-0000-7000-8000-000000000001", "Routed", {"summary": "x"})
    # break the database under the journal: the write fails and nothing is lost
    repo._engine = create_engine("sqlite:////proc/forbidden/x.db")  # type: ignore[attr-defined]
    try:
        await journal.flush()
        raise AssertionError("the flush should have failed")
    except Exception as exc:
        assert "unable to open" in str(exc).lower() or "operational" in type(exc).__name__.lower()
    assert journal.pending() >= 1
