"""Call control: click-to-call, hang-up, transfers, hold and supervisor spy (docs/call-control.md)."""

from hotline.errors import PermissionDeniedError
from hotline.features.calls.actions import LiveChannel
from hotline.features.calls.control import CallControlService, ControlResult

__all__ = [
    "CallControlService",
    "ControlResult",
    "LiveChannel",
    "PermissionDeniedError",
]
