"""Call control: click-to-call, hang-up, transfers, hold and supervisor spy (docs/call-control.md)."""

from hotline.features.calls.actions import CONTROL_DIALPLAN, FEATUREMAP_ATXFER, LiveChannel, PermissionDeniedError
from hotline.features.calls.control import CallControlService, ControlResult

__all__ = [
    "CONTROL_DIALPLAN",
    "FEATUREMAP_ATXFER",
    "CallControlService",
    "ControlResult",
    "LiveChannel",
    "PermissionDeniedError",
]
