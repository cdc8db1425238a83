"""Hotline call ids: UUIDv7, strictly increasing within a process, unique, distinct after a fork."""

from __future__ import annotations

import os
import time
import uuid

from hotline.ids import call_id_time, new_call_id


def test_ids_are_uuid7_with_the_creation_time_and_strictly_increasing() -> None:
    before = time.time()
    ids = [new_call_id() for _ in range(20_000)]  # many within one millisecond: the counter keeps the order
    after = time.time()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    u = uuid.UUID(ids[0])
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert before - 0.001 <= call_id_time(ids[0]) <= call_id_time(ids[-1]) <= after + 0.002


def test_a_forked_child_does_not_repeat_its_parents_random_bits() -> None:
    new_call_id()  # the pool of random bytes is filled in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, ",".join(new_call_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    parent = [new_call_id() for _ in range(50)]
    # the random tail (the last 62 bits) never repeats between the two processes
    assert not {c[-12:] for c in child} & {p[-12:] for p in parent}
