"""Journal invariants: concurrent flushes lose nothing; a call coming back keeps its record."""

from __future__ import annotations

import asyncio

from hotline.db.engine import create_engine_for
from hotline.db.repositories import CallRepository
from hotline.features.journal.service import JournalService

CALL = "0190f000-0000-7000-8000-0000000000aa"


async def test_concurrent_flushes_write_every_event_once(sqlite_url: str) -> None:
    repo = CallRepository(create_engine_for(sqlite_url))
    journal = JournalService(repo, batch_size=100)
    journal.start_call(CALL, node="n", uniqueid="u1", caller_num="1", caller_name=None, did="5000")
    for i in range(301):
        journal.record(CALL, "Tick", {"i": str(i)})
    await asyncio.gather(journal.flush(), journal.flush())  # the loop's flush meets stop()'s flush
    events = repo.events_for(CALL)
    assert [e.data["i"] for e in events] == [str(i) for i in range(301)]
    assert journal.pending() == 0


async def test_a_call_routed_again_keeps_its_record(sqlite_url: str) -> None:
    repo = CallRepository(create_engine_for(sqlite_url))
    journal = JournalService(repo)
    journal.start_call(CALL, node="n", uniqueid="u1", caller_num="100", caller_name="A", did="5000", channel="c1")
    journal.record(CALL, "Routed", {"summary": "queue support"})
    first = journal.active_calls()[0]
    # a blind transfer sends the caller's channel through the router again, with its call id
    journal.start_call(
        CALL, node="n", uniqueid="u9", caller_num="2001", caller_name=None, did="5001", channel="c9", new=False
    )
    again = journal.active_calls()[0]
    assert (again.started_at, again.caller_num, again.did, again.destination) == (
        first.started_at,
        "100",
        "5000",
        "queue support",
    )
    await journal.flush()
    assert [e.seq for e in repo.events_for(CALL)] == [1]


async def test_a_call_id_seen_after_a_restart_continues_its_numbering(sqlite_url: str) -> None:
    repo = CallRepository(create_engine_for(sqlite_url))
    before = JournalService(repo)
    before.start_call(CALL, node="n", uniqueid="u1", caller_num="1", caller_name=None, did="5000")
    before.record(CALL, "A", {})
    before.record(CALL, "B", {})
    await before.flush()
    after = JournalService(repo)  # Hotline restarted; the call comes back through the router
    after.start_call(CALL, node="n", uniqueid="u2", caller_num="1", caller_name=None, did="5000", new=False)
    after.record(CALL, "C", {})
    await after.flush()
    assert [(e.seq, e.event) for e in repo.events_for(CALL)] == [(1, "A"), (2, "B"), (3, "C")]


async def test_after_a_restart_the_stored_record_is_continued(sqlite_url: str) -> None:
    repo = CallRepository(create_engine_for(sqlite_url))
    before = JournalService(repo)
    before.start_call(CALL, node="n", uniqueid="u1", caller_num="100", caller_name="A", did="5000", channel="c1")
    before.record(CALL, "Routed", {"summary": "queue support"})
    await before.flush()
    after = JournalService(repo)  # Hotline restarted mid-call
    assert not after.tracks(CALL)
    stored = await after.stored_call(CALL)
    after.start_call(
        CALL, node="n", uniqueid="u9", caller_num="2001", caller_name=None, did="7", new=False, previous=stored
    )
    rec = after.active_calls()[0]
    assert stored is not None and (rec.started_at, rec.caller_num, rec.did, rec.destination) == (
        stored.started_at,
        "100",
        "5000",
        "queue support",
    )
