"""Accounts: users, roles, API keys, web sessions, login throttling and the audit log."""

from hotline.features.accounts.service import AccountService, LoginThrottle, NewSession, SessionInfo, parse_basic

__all__ = ["AccountService", "LoginThrottle", "NewSession", "SessionInfo", "parse_basic"]
