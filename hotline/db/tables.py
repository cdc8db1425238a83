"""Hotline's database schema, declared once in SQLAlchemy Core for SQLite, PostgreSQL and MariaDB.

Invariants:
- the Alembic migrations (hotline/db/migrations/versions) create exactly this schema; a test compares
  the migrated database with `metadata` on all three databases.  Change both together.
- constraint and index names come from `NAMING_CONVENTION`, so migrations can name them portably;
- every string column has a length (MariaDB needs one) and MariaDB tables are InnoDB, utf8mb4 with the
  binary collation `utf8mb4_bin`: unique names then compare exactly as on PostgreSQL and SQLite
  (the server default utf8mb4_general_ci would make 'Alice' and 'alice', or 'e' and 'é', duplicates);
- datetimes are stored as naive UTC (`Timestamp`: microseconds on every database; MariaDB's plain
  DATETIME would drop them).  The repositories convert to and from aware UTC at the boundary;
- `config_version` holds one row (id 1); every configuration write increments it in its transaction;
- defaults live in the database (`server_default`), so the repositories insert only what they are given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Table options for MariaDB/MySQL (ignored by the other databases).
MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def Timestamp() -> sa.DateTime:
    """Naive-UTC datetime with microseconds on every database."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def utcnow_naive() -> datetime:
    """The current time as the database stores it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def _created_at() -> sa.Column[datetime]:
    return sa.Column("created_at", Timestamp(), nullable=False, default=utcnow_naive)


def _updated_at() -> sa.Column[datetime]:
    return sa.Column("updated_at", Timestamp(), nullable=False, default=utcnow_naive, onupdate=utcnow_naive)


def _int(name: str, default: int, **kw: Any) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text(str(default)), **kw)


def _str(name: str, length: int, default: str, **kw: Any) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False, server_default=default, **kw)


def _bool(name: str, default: bool) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.true() if default else sa.false())


phones = sa.Table(
    "phones",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    # The PJSIP endpoint/auth/AOR id: [A-Za-z0-9._-]{1,64}.
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("digest_md5", sa.CHAR(32), nullable=False),
    sa.Column("digest_sha256", sa.CHAR(64), nullable=False),
    sa.Column("realm", sa.String(64), nullable=False),
    _str("context", 64, "hotline-phones"),
    _str("callerid", 128, ""),
    _str("codecs", 128, "ulaw,alaw"),
    _int("max_contacts", 1),
    _bool("enabled", True),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

agent_groups = sa.Table(
    "agent_groups",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    _str("description", 255, ""),
    # auto-pause with reason "missed calls" after this many ring-no-answers in a row (0 = never)
    _int("max_missed_in_row", 3),
    # comma-separated call types the group may place (see call_type_rules), and actions it may use
    _str("allowed_call_types", 255, "internal,local,mobile,long_distance"),
    _str("allowed_actions", 255, "originate,transfer_internal"),
    # per agent of the group and per day (None = no quota)
    sa.Column("daily_call_quota", sa.Integer(), nullable=True),
    sa.Column("daily_minute_quota", sa.Integer(), nullable=True),
    _str("recording", 16, "inherit"),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("number", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("group_id", sa.Integer(), sa.ForeignKey("agent_groups.id", ondelete="SET NULL"), nullable=True),
    sa.Column("pin_hash", sa.String(255), nullable=True),
    sa.Column("phone_id", sa.Integer(), sa.ForeignKey("phones.id", ondelete="SET NULL"), nullable=True),
    _bool("enabled", True),
    _str("recording", 16, "inherit"),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

queues = sa.Table(
    "queues",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    _str("strategy", 32, "ringall"),
    _int("timeout", 15),
    _int("retry", 5),
    _int("wrapuptime", 0),
    _int("maxlen", 0),
    _int("servicelevel", 60),
    _str("musicclass", 128, "default"),
    _str("joinempty", 128, "yes"),
    _str("leavewhenempty", 128, "no"),
    _bool("ringinuse", False),
    _int("weight", 0),
    sa.Column("max_wait", sa.Integer(), nullable=True),
    _int("announce_frequency", 0),
    _str("announce_holdtime", 8, "no"),
    _str("announce_position", 8, "no"),
    _int("announce_position_limit", 5),
    _str("periodic_announce", 128, ""),
    _int("periodic_announce_frequency", 0),
    _int("priority", 0),
    # where a caller goes when max_wait passes, the queue is full or has no agents (empty = hang up)
    _str("overflow_type", 16, ""),
    _str("overflow_value", 255, ""),
    _str("recording", 16, "never"),
    # wallboard alarms: a tile turns amber / red at this many waiting callers or this longest wait (0 = off)
    _int("alarm_waiting_amber", 3),
    _int("alarm_waiting_red", 6),
    _int("alarm_wait_amber_s", 60),
    _int("alarm_wait_red_s", 180),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

queue_members = sa.Table(
    "queue_members",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("queue_id", sa.Integer(), sa.ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
    sa.Column("interface", sa.String(128), nullable=False),
    _str("membername", 128, ""),
    _str("state_interface", 128, ""),
    _int("penalty", 0),
    _int("paused", 0),
    _str("reason_paused", 80, ""),
    sa.Column("wrapuptime", sa.Integer(), nullable=True),
    sa.Column("ringinuse", sa.Boolean(), nullable=True),
    sa.Column("uniqueid", sa.String(80), nullable=False, unique=True),
    sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=True),
    _created_at(),
    _updated_at(),
    sa.UniqueConstraint("queue_id", "interface"),
    **MYSQL_TABLE_OPTIONS,
)

did_routes = sa.Table(
    "did_routes",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("did", sa.String(64), nullable=False, unique=True),
    sa.Column("dest_type", sa.String(16), nullable=False),
    _str("dest_value", 255, ""),
    sa.Column("hangup_cause", sa.Integer(), nullable=True),
    # a prompt played before a hang-up destination ("we are closed"), or empty
    _str("message", 128, ""),
    _str("description", 255, ""),
    _bool("enabled", True),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("sip_port", sa.Integer(), nullable=False),
    sa.Column("ami_port", sa.Integer(), nullable=False),
    _str("state", 16, "unknown"),
    sa.Column("last_seen_at", Timestamp(), nullable=True),
    _int("active_calls", 0),
    sa.Column("load", sa.Double(), nullable=False, server_default=sa.text("0")),
    _str("version", 64, ""),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("call_id", sa.String(40), primary_key=True),
    sa.Column("node", sa.String(64), nullable=False),
    sa.Column("caller_num", sa.String(64), nullable=True),
    sa.Column("caller_name", sa.String(255), nullable=True),
    sa.Column("did", sa.String(64), nullable=True),
    sa.Column("destination", sa.String(255), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", Timestamp(), nullable=False, index=True),
    sa.Column("answered_at", Timestamp(), nullable=True),
    sa.Column("queue_name", sa.String(128), nullable=True),
    sa.Column("queue_entered_at", Timestamp(), nullable=True),
    sa.Column("queue_wait_s", sa.Double(), nullable=True),
    sa.Column("agent_number", sa.String(32), nullable=True),
    sa.Column("agent_channel", sa.String(255), nullable=True),
    sa.Column("ended_at", Timestamp(), nullable=True),
    sa.Column("duration_s", sa.Double(), nullable=True),
    sa.Column("talk_s", sa.Double(), nullable=True),
    sa.Column("hangup_by", sa.String(16), nullable=True),
    sa.Column("hangup_cause", sa.Integer(), nullable=True),
    sa.Column("hangup_cause_text", sa.String(128), nullable=True),
    sa.Column("route_error", sa.Text(), nullable=True),
    sa.Column("call_type", sa.String(16), nullable=True),
    sa.Column("placed_by_agent", sa.String(32), nullable=True),
    sa.Index(None, "caller_num"),
    **MYSQL_TABLE_OPTIONS,
)

call_events = sa.Table(
    "call_events",
    metadata,
    # BIGINT does not alias ROWID in SQLite, so SQLite gets INTEGER to autoincrement.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    # No separate index on call_id: the unique (call_id, seq) index below serves every lookup by call_id,
    # and one index less is one write less per journal event.
    sa.Column("call_id", sa.String(40), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("ts", Timestamp(), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("node", sa.String(64), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("uniqueid", sa.String(150), nullable=True),
    sa.Column("channel", sa.String(255), nullable=True),
    # JSON object of strings; Text rather than JSON so the three databases store it the same way.
    sa.Column("data", sa.Text(), nullable=False),
    sa.UniqueConstraint("call_id", "seq"),
    **MYSQL_TABLE_OPTIONS,
)

ps_contacts = sa.Table(
    "ps_contacts",
    metadata,
    # The contact id Asterisk chooses (e.g. "1001^3B@<hash>"), kept verbatim.
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("endpoint", sa.String(64), nullable=False, index=True),
    sa.Column("expiration_time", sa.BigInteger(), nullable=False),
    # JSON object of every column Asterisk stored for the contact.
    sa.Column("fields", sa.Text(), nullable=False),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

# ------------------------------------------------------------------------------------ call center (issue 3)
agent_queues = sa.Table(
    "agent_queues",
    metadata,
    # the queues an agent serves (skills): they become queue_members rows while the agent is logged in
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("queue_id", sa.Integer(), sa.ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
    _int("penalty", 0),
    sa.UniqueConstraint("agent_id", "queue_id"),
    **MYSQL_TABLE_OPTIONS,
)

pause_reasons = sa.Table(
    "pause_reasons",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    _bool("paid", False),
    sa.Column("max_duration_s", sa.Integer(), nullable=True),
    _bool("enabled", True),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

agent_status = sa.Table(
    "agent_status",
    metadata,
    # the runtime state of each agent (domain/agent_state.py); one row per agent that ever logged in
    sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("phone", sa.String(64), nullable=True, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    _str("pause_reason", 64, ""),
    sa.Column("state_since", Timestamp(), nullable=False),
    sa.Column("logged_in_at", Timestamp(), nullable=True),
    sa.Column("wrapup_until", Timestamp(), nullable=True),
    _int("missed_in_row", 0),
    _int("missed_total", 0),
    sa.Column("call_id", sa.String(40), nullable=True),
    **MYSQL_TABLE_OPTIONS,
)

agent_events = sa.Table(
    "agent_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("agent_id", sa.Integer(), nullable=False),
    sa.Column("ts", Timestamp(), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("from_state", sa.String(16), nullable=False),
    sa.Column("to_state", sa.String(16), nullable=False),
    _str("reason", 128, ""),
    _str("phone", 64, ""),
    sa.Column("call_id", sa.String(40), nullable=True),
    _str("actor", 64, ""),
    sa.Index(None, "agent_id", "ts"),
    **MYSQL_TABLE_OPTIONS,
)

service_numbers = sa.Table(
    "service_numbers",
    metadata,
    # numbers a phone may dial with nobody logged in: 'help' (internal help desk) or 'emergency'
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("number", sa.String(32), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("dest_type", sa.String(16), nullable=False),
    _str("dest_value", 255, ""),
    _str("description", 255, ""),
    **MYSQL_TABLE_OPTIONS,
)

ivr_menus = sa.Table(
    "ivr_menus",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("prompt", sa.String(128), nullable=False),
    _str("invalid_prompt", 128, "pm-invalid-option"),
    _int("timeout_s", 5),
    _int("max_attempts", 3),
    # where the caller goes after max_attempts without a valid digit (empty = hang up)
    _str("fail_type", 16, ""),
    _str("fail_value", 255, ""),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

ivr_options = sa.Table(
    "ivr_options",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("menu_id", sa.Integer(), sa.ForeignKey("ivr_menus.id", ondelete="CASCADE"), nullable=False),
    sa.Column("digit", sa.String(1), nullable=False),
    sa.Column("dest_type", sa.String(16), nullable=False),
    _str("dest_value", 255, ""),
    sa.UniqueConstraint("menu_id", "digit"),
    **MYSQL_TABLE_OPTIONS,
)

time_conditions = sa.Table(
    "time_conditions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    _str("timezone", 64, "UTC"),
    # weekly hours as text "mon-fri 09:00-18:00; sat 10:00-14:00" (domain/schedule.py parses it)
    sa.Column("hours", sa.Text(), nullable=False),
    sa.Column("open_type", sa.String(16), nullable=False),
    _str("open_value", 255, ""),
    sa.Column("closed_type", sa.String(16), nullable=False),
    _str("closed_value", 255, ""),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

holidays = sa.Table(
    "holidays",
    metadata,
    # days every time condition treats as closed
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("day", sa.Date(), nullable=False, unique=True),
    _str("name", 128, ""),
    **MYSQL_TABLE_OPTIONS,
)

call_type_rules = sa.Table(
    "call_type_rules",
    metadata,
    # number classification for limits: the first rule (lowest position) whose pattern matches wins
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("pattern", sa.String(64), nullable=False),
    sa.Column("call_type", sa.String(16), nullable=False),
    sa.UniqueConstraint("pattern"),
    **MYSQL_TABLE_OPTIONS,
)

quota_usage = sa.Table(
    "quota_usage",
    metadata,
    sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    _int("calls", 0),
    _int("seconds", 0),
    **MYSQL_TABLE_OPTIONS,
)

media_files = sa.Table(
    "media_files",
    metadata,
    # uploaded prompts and music-on-hold files, converted to 8 kHz mono WAV (features/media)
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # 'prompt' | 'moh'
    _str("moh_class", 64, ""),
    _str("original_name", 255, ""),
    sa.Column("sha256", sa.CHAR(64), nullable=False),
    sa.Column("duration_s", sa.Double(), nullable=False),
    sa.Column("size", sa.Integer(), nullable=False),
    _created_at(),
    sa.UniqueConstraint("kind", "moh_class", "name"),
    **MYSQL_TABLE_OPTIONS,
)

moh_classes = sa.Table(
    "moh_classes",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    _bool("random", False),
    _created_at(),
    **MYSQL_TABLE_OPTIONS,
)

recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("call_id", sa.String(40), nullable=False, index=True),
    sa.Column("node", sa.String(64), nullable=False),
    # the file MixMonitor wrote (path as the node sees it), unique so a report is taken once
    sa.Column("source", sa.String(255), nullable=False, unique=True),
    # recording | pending | stored | failed | deleted
    sa.Column("state", sa.String(16), nullable=False),
    _int("attempts", 0),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("next_attempt_at", Timestamp(), nullable=True),
    sa.Column("storage_key", sa.String(255), nullable=True),
    sa.Column("size", sa.BigInteger(), nullable=True),
    sa.Column("duration_s", sa.Double(), nullable=True),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("stored_at", Timestamp(), nullable=True),
    sa.Column("deleted_at", Timestamp(), nullable=True),
    sa.Index(None, "state", "next_attempt_at"),
    **MYSQL_TABLE_OPTIONS,
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    # E.164-ish digits, the key a caller is found by
    sa.Column("phone", sa.String(64), nullable=False, index=True),
    _str("email", 255, ""),
    _str("external_id", 128, ""),
    # JSON object of strings shown in the screen pop
    sa.Column("data", sa.Text(), nullable=False),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("url", sa.String(1024), nullable=False),
    # the HMAC key; kept readable because Hotline signs with it (it is generated, shown once on creation)
    sa.Column("secret", sa.String(128), nullable=False),
    # comma-separated event names or '*'
    _str("events", 1024, "*"),
    _bool("enabled", True),
    _created_at(),
    **MYSQL_TABLE_OPTIONS,
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.Integer(), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_id", sa.String(40), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    # pending | delivered | failed
    sa.Column("state", sa.String(16), nullable=False),
    _int("attempts", 0),
    sa.Column("last_status", sa.Integer(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("next_attempt_at", Timestamp(), nullable=True),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("delivered_at", Timestamp(), nullable=True),
    sa.Index(None, "state", "next_attempt_at"),
    **MYSQL_TABLE_OPTIONS,
)

# ------------------------------------------------------------------------------------ accounts (issue 4)
users = sa.Table(
    "users",
    metadata,
    # people who sign in to the web pages and the APIs: admin | supervisor | agent (domain/permissions.py)
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    _str("display_name", 128, ""),
    sa.Column("role", sa.String(16), nullable=False),
    # argon2id (passwords.hash_secret)
    sa.Column("password_hash", sa.String(255), nullable=False),
    _str("language", 8, "en"),
    # an agent user sees only what concerns this agent
    sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    _bool("enabled", True),
    sa.Column("last_login_at", Timestamp(), nullable=True),
    _created_at(),
    _updated_at(),
    **MYSQL_TABLE_OPTIONS,
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    # keys of other systems: "hlk_<prefix>_<secret>", only the SHA-256 of the whole key is stored
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.CHAR(64), nullable=False),
    # space-separated scopes (domain/permissions.py)
    sa.Column("scopes", sa.String(1024), nullable=False),
    _bool("enabled", True),
    _str("created_by", 64, ""),
    sa.Column("expires_at", Timestamp(), nullable=True),
    sa.Column("last_used_at", Timestamp(), nullable=True),
    _created_at(),
    **MYSQL_TABLE_OPTIONS,
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    # browser sessions: the cookie holds a random token, the table its SHA-256 (a leaked table logs nobody in)
    sa.Column("id", sa.CHAR(64), primary_key=True),
    sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("expires_at", Timestamp(), nullable=False, index=True),
    sa.Column("last_seen_at", Timestamp(), nullable=False),
    _str("source_ip", 64, ""),
    _str("user_agent", 255, ""),
    **MYSQL_TABLE_OPTIONS,
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # every change made through an interface: who, what, before and after (JSON, secrets masked)
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp(), nullable=False, index=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("actor_kind", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("resource", sa.String(32), nullable=False),
    _str("resource_key", 255, ""),
    sa.Column("before", sa.Text(), nullable=True),
    sa.Column("after", sa.Text(), nullable=True),
    _str("source_ip", 64, ""),
    _str("interface", 16, ""),
    sa.Index(None, "resource", "resource_key"),
    **MYSQL_TABLE_OPTIONS,
)

call_tags = sa.Table(
    "call_tags",
    metadata,
    # what an agent or a system attached to a call: a discount id, a customer id, an order number...
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("call_id", sa.String(40), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("value", sa.String(255), nullable=False),
    _str("created_by", 128, ""),
    _created_at(),
    sa.UniqueConstraint("call_id", "name"),
    **MYSQL_TABLE_OPTIONS,
)

config_version = sa.Table(
    "config_version",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
    **MYSQL_TABLE_OPTIONS,
)

#: The single row of `config_version`.
CONFIG_VERSION_ID = 1
