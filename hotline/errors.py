"""Hotline's one exception tree.

Every error Hotline raises on purpose derives from `HotlineError`.  Each interface translates these in
one place: HTTP status in `hotline.web`, AGI fallback in `hotline.asterisk.agi_server`, CLI exit code in
`hotline.cli`.  Third-party errors are translated where they enter (adapters), with `raise ... from`.
"""

from __future__ import annotations


class HotlineError(Exception):
    """Base of every error Hotline raises on purpose."""


class ConfigError(HotlineError):
    """A setting or configuration file is missing or invalid."""


class ProtocolError(HotlineError):
    """A peer sent bytes that do not follow the protocol (AMI, AGI, realtime...)."""


class AMIProtocolError(ProtocolError):
    """Malformed or oversized AMI data."""


class AGIProtocolError(ProtocolError):
    """Malformed or oversized FastAGI data."""


class RealtimeProtocolError(ProtocolError):
    """A res_config_curl request Hotline cannot answer safely."""


class ValidationError(HotlineError):
    """A value given by a user or a client is invalid; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class AuthenticationError(HotlineError):
    """No valid credentials (unknown user, wrong password, expired session, revoked API key)."""


class RateLimitedError(HotlineError):
    """Too many attempts (login throttling); `retry_after` is in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDeniedError(HotlineError):
    """The user or the agent's group is not allowed this action (a limit, later a role)."""


class NotFoundError(HotlineError):
    """The object asked for does not exist."""


class ConflictError(HotlineError):
    """The change conflicts with existing data (duplicate name, object in use...)."""


class DatabaseUnavailableError(HotlineError):
    """The database cannot be reached or refused the connection; retrying later may succeed."""


class AsteriskError(HotlineError):
    """An Asterisk node refused or failed an action."""


class NodeUnavailableError(AsteriskError):
    """No connection to the node right now."""


class ActionTimeoutError(AsteriskError):
    """The node did not answer an action in time."""


class LabError(HotlineError):
    """Provisioning or running a lab Asterisk node failed."""
