"""Hotline call ids: UUIDv7 (RFC 9562), so ids sort by creation time across nodes and instances.

48 bits of Unix milliseconds, then 74 random bits; within one process a counter in `rand_a` keeps ids
strictly increasing even when many are made in the same millisecond.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
_pool = b""  # random bytes from the OS, taken 4 KiB at a time (one system call per ~400 ids, not two per id)


def _random(n: int) -> int:
    """n random bytes from the OS as an integer (callers hold `_lock`)."""
    global _pool
    if len(_pool) < n:
        _pool = os.urandom(4096)
    chunk, _pool = _pool[:n], _pool[n:]
    return int.from_bytes(chunk, "big")


def _forget_pool() -> None:
    global _pool
    _pool = b""  # a forked child must not hand out its parent's random bytes again


os.register_at_fork(after_in_child=_forget_pool)


def new_call_id() -> str:
    """A new UUIDv7 as a 36-character string."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms += 1
                _counter = 0
        else:
            _counter = _random(2) & 0x3FF  # leave room to count up
        _last_ms = ms
        rand_b = _random(8) & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def call_id_time(call_id: str) -> float:
    """Creation time (Unix seconds) encoded in a UUIDv7 call id."""
    return (uuid.UUID(call_id).int >> 80) / 1000.0
