"""Password handling: SIP digests for Asterisk, argon2id for everything Hotline verifies itself.

Responsibility and invariants:
- SIP passwords are never stored.  `sip_digests` gives the two HA1 values PJSIP accepts in
  `password_digest=MD5:<hex>` and `password_digest=SHA-256:<hex>` (RFC 7616): H(username:realm:password),
  lowercase hex.  They depend on the realm, so changing the realm means re-entering the password.
- PINs and user passwords are stored only as argon2id hashes (argon2-cffi's `PasswordHasher`, whose
  defaults follow RFC 9106's recommendations); `verify_secret` never raises for a wrong secret or a
  damaged hash, it answers False.
- `validate_sip_password` is the one rule for SIP passwords; it raises `ValidationError('password', ...)`.
"""

from __future__ import annotations

import hashlib
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hotline.errors import ValidationError

SIP_PASSWORD_MIN = 8
SIP_PASSWORD_MAX = 128


def sip_digests(username: str, realm: str, password: str) -> tuple[str, str]:
    """(MD5, SHA-256) of `username:realm:password`, lowercase hex."""
    material = f"{username}:{realm}:{password}".encode()
    return hashlib.md5(material).hexdigest(), hashlib.sha256(material).hexdigest()


@cache
def _hasher() -> PasswordHasher:
    # Built on first use rather than at import; it holds only its (immutable) parameters.
    return PasswordHasher()


def hash_secret(secret: str) -> str:
    """An argon2id hash of `secret` (PHC string, salt and parameters included)."""
    return _hasher().hash(secret)


def verify_secret(hashed: str, secret: str) -> bool:
    """True when `secret` matches `hashed`; False for a mismatch or a malformed hash."""
    try:
        return _hasher().verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        # VerifyMismatchError is a VerificationError; InvalidHashError covers a damaged stored value.
        return False


def validate_sip_password(password: str) -> None:
    """Accept 8..128 printable ASCII characters that are not all spaces; else ValidationError."""
    if not isinstance(password, str):
        raise ValidationError("password", "must be a string")
    if not SIP_PASSWORD_MIN <= len(password) <= SIP_PASSWORD_MAX:
        raise ValidationError("password", f"must be {SIP_PASSWORD_MIN} to {SIP_PASSWORD_MAX} characters long")
    if not all(" " <= ch <= "~" for ch in password):
        raise ValidationError("password", "must contain only printable ASCII characters")
    if not password.strip(" "):
        raise ValidationError("password", "must not be only spaces")
