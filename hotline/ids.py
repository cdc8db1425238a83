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
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        _last_ms = ms
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def call_id_time(call_id: str) -> float:
    """Creation time (Unix seconds) encoded in a UUIDv7 call id."""
    return (uuid.UUID(call_id).int >> 80) / 1000.0
