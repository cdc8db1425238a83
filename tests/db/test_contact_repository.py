"""ContactRepository: what Asterisk stores through realtime survives verbatim."""

from __future__ import annotations

import pytest

from hotline.db.repositories import ContactRepository
from hotline.errors import ValidationError

CONTACT_ID = "2001^3B@8ac2a0ea96b5fa3b1f2ed6a0cbef7f5e"
FIELDS = {
    "id": CONTACT_ID,
    "endpoint": "2001",
    "uri": "sip:2001@127.0.0.1:5072;transport=udp",
    "expiration_time": "1764110000",
    "user_agent": 'Телефон 🎧 "quoted" \\ back',
    "path": "",
}


def test_upsert_then_update(contacts: ContactRepository) -> None:
    contacts.upsert(CONTACT_ID, "2001", 1764110000, FIELDS)
    assert contacts.load_all() == [(CONTACT_ID, "2001", 1764110000, FIELDS)]
    renewed = {**FIELDS, "expiration_time": "1764113600", "via_addr": "127.0.0.1"}
    contacts.upsert(CONTACT_ID, "2001", 1764113600, renewed)
    assert contacts.load_all() == [(CONTACT_ID, "2001", 1764113600, renewed)]


def test_delete_and_delete_expired(contacts: ContactRepository) -> None:
    contacts.upsert("a", "2001", 100, {})
    contacts.upsert("b", "2002", 200, {})
    contacts.upsert("c", "2003", 300, {})
    assert contacts.delete("a") == 1
    assert contacts.delete("a") == 0
    assert contacts.delete_expired(200) == 1  # expiration_time <= now is expired
    assert [row[0] for row in contacts.load_all()] == ["c"]


def test_contact_validation(contacts: ContactRepository) -> None:
    with pytest.raises(ValidationError) as info:
        contacts.upsert("x" * 256, "2001", 1, {})
    assert info.value.field == "id"
    with pytest.raises(ValidationError) as info:
        contacts.upsert("a", "2001", -1, {})
    assert info.value.field == "expiration_time"


def test_apply_writes_a_batch_in_one_go(contacts: ContactRepository) -> None:
    contacts.upsert("gone;@1", "2001", 10, {"uri": "sip:old"})
    contacts.apply(
        [("a;@1", "2001", 100, {"uri": "sip:a"}), ("b;@2", "2002", 200, {"uri": "sip:b"})],
        ["gone;@1"],
    )
    assert [(c[0], c[2], c[3]["uri"]) for c in contacts.load_all()] == [("a;@1", 100, "sip:a"), ("b;@2", 200, "sip:b")]
    with pytest.raises(ValidationError):
        contacts.apply([("", "x", 1, {})], [])
    assert len(contacts.load_all()) == 2  # nothing of the refused batch was written
