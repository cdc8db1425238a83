"""hotline.passwords (kept beside the repository tests, which depend on it)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.errors import ValidationError
from hotline.passwords import hash_secret, sip_digests, validate_sip_password, verify_secret


def test_sip_digests_are_ha1_in_lowercase_hex() -> None:
    md5, sha256 = sip_digests("2001", "hotline", "s3cret:pass")
    assert md5 == hashlib.md5(b"2001:hotline:s3cret:pass").hexdigest()
    assert sha256 == hashlib.sha256(b"2001:hotline:s3cret:pass").hexdigest()
    assert (len(md5), len(sha256)) == (32, 64)
    assert md5 == md5.lower() and sha256 == sha256.lower()


def test_hash_and_verify_secret() -> None:
    hashed = hash_secret("4321")
    assert hashed.startswith("$argon2id$")
    assert hashed != hash_secret("4321")  # salted
    assert verify_secret(hashed, "4321")
    assert not verify_secret(hashed, "4322")
    assert not verify_secret("not a hash", "4321")
    assert not verify_secret(hashed[:-4], "4321")


@pytest.mark.parametrize(
    "bad", ["", "1234567", "x" * 129, " " * 8, "pass\tword", "pässword", "password\n", "пароль-пароль"]
)
def test_invalid_sip_passwords(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_sip_password(bad)
    assert info.value.field == "password"


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=8, max_size=128))
def test_printable_ascii_passwords_are_valid_unless_only_spaces(password: str) -> None:
    if password.strip(" "):
        validate_sip_password(password)
    else:
        with pytest.raises(ValidationError):
            validate_sip_password(password)
