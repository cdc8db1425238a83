"""Caller lookup and CRM: earlier calls, customer records and an HTTP CRM, behind one deadline."""

from hotline.features.crm.lookup import (
    SCREEN_POP_EVENT,
    CallerInfo,
    CallerLookupService,
    CrmAnswer,
    parse_crm_answer,
    sanitize_caller_name,
    screen_pop_payload,
)

__all__ = [
    "SCREEN_POP_EVENT",
    "CallerInfo",
    "CallerLookupService",
    "CrmAnswer",
    "parse_crm_answer",
    "sanitize_caller_name",
    "screen_pop_payload",
]
