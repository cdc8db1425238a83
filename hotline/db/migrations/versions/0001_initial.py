"""Initial schema: configuration, cluster nodes, PJSIP contacts and the call journal.

Revision ID: 0001
Revises:
Create Date: 2025-11-25

Written by hand to mirror hotline/db/tables.py as of this revision (tests/db compares the result with
the metadata on SQLite, PostgreSQL and MariaDB).  Self-contained on purpose: it does not import
hotline.db.tables, which will keep changing after this revision.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _ts() -> sa.DateTime:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _int(name: str, default: int) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text(str(default)))


def _str(name: str, length: int, default: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False, server_default=default)


def _bool(name: str, default: bool) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.true() if default else sa.false())


def _stamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("digest_md5", sa.CHAR(32), nullable=False),
        sa.Column("digest_sha256", sa.CHAR(64), nullable=False),
        sa.Column("realm", sa.String(64), nullable=False),
        _str("context", 64, "hotline-phones"),
        _str("callerid", 128, ""),
        _str("codecs", 128, "ulaw,alaw"),
        _int("max_contacts", 1),
        _bool("enabled", True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_phones"),
        sa.UniqueConstraint("name", name="uq_phones_name"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "agent_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        _str("description", 255, ""),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_agent_groups"),
        sa.UniqueConstraint("name", name="uq_agent_groups_name"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("pin_hash", sa.String(255), nullable=True),
        sa.Column("phone_id", sa.Integer(), nullable=True),
        _bool("enabled", True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("number", name="uq_agents_number"),
        sa.ForeignKeyConstraint(
            ["group_id"], ["agent_groups.id"], name="fk_agents_group_id_agent_groups", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["phone_id"], ["phones.id"], name="fk_agents_phone_id_phones", ondelete="SET NULL"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
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
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_queues"),
        sa.UniqueConstraint("name", name="uq_queues_name"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "queue_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("interface", sa.String(128), nullable=False),
        _str("membername", 128, ""),
        _str("state_interface", 128, ""),
        _int("penalty", 0),
        _int("paused", 0),
        _str("reason_paused", 80, ""),
        sa.Column("wrapuptime", sa.Integer(), nullable=True),
        sa.Column("ringinuse", sa.Boolean(), nullable=True),
        sa.Column("uniqueid", sa.String(80), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_queue_members"),
        sa.UniqueConstraint("uniqueid", name="uq_queue_members_uniqueid"),
        sa.UniqueConstraint("queue_id", "interface", name="uq_queue_members_queue_id_interface"),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name="fk_queue_members_queue_id_queues", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name="fk_queue_members_agent_id_agents", ondelete="CASCADE"
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "did_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("did", sa.String(64), nullable=False),
        sa.Column("dest_type", sa.String(16), nullable=False),
        _str("dest_value", 255, ""),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        _str("description", 255, ""),
        _bool("enabled", True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_did_routes"),
        sa.UniqueConstraint("did", name="uq_did_routes_did"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("sip_port", sa.Integer(), nullable=False),
        sa.Column("ami_port", sa.Integer(), nullable=False),
        _str("state", 16, "unknown"),
        sa.Column("last_seen_at", _ts(), nullable=True),
        _int("active_calls", 0),
        sa.Column("load", sa.Double(), nullable=False, server_default=sa.text("0")),
        _str("version", 64, ""),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_nodes"),
        sa.UniqueConstraint("name", name="uq_nodes_name"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(40), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("caller_num", sa.String(64), nullable=True),
        sa.Column("caller_name", sa.String(255), nullable=True),
        sa.Column("did", sa.String(64), nullable=True),
        sa.Column("destination", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("answered_at", _ts(), nullable=True),
        sa.Column("queue_name", sa.String(128), nullable=True),
        sa.Column("queue_entered_at", _ts(), nullable=True),
        sa.Column("queue_wait_s", sa.Double(), nullable=True),
        sa.Column("agent_number", sa.String(32), nullable=True),
        sa.Column("agent_channel", sa.String(255), nullable=True),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("talk_s", sa.Double(), nullable=True),
        sa.Column("hangup_by", sa.String(16), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("hangup_cause_text", sa.String(128), nullable=True),
        sa.Column("route_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_caller_num", "calls", ["caller_num"])
    op.create_table(
        "call_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("uniqueid", sa.String(150), nullable=True),
        sa.Column("channel", sa.String(255), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_call_events"),
        sa.UniqueConstraint("call_id", "seq", name="uq_call_events_call_id_seq"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "ps_contacts",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("expiration_time", sa.BigInteger(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ps_contacts"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_ps_contacts_endpoint", "ps_contacts", ["endpoint"])
    config_version = op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_config_version"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.bulk_insert(config_version, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("config_version")
    op.drop_index("ix_ps_contacts_endpoint", table_name="ps_contacts")
    op.drop_table("ps_contacts")
    op.drop_table("call_events")
    op.drop_index("ix_calls_caller_num", table_name="calls")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_table("calls")
    op.drop_table("nodes")
    op.drop_table("did_routes")
    op.drop_table("queue_members")
    op.drop_table("queues")
    op.drop_table("agents")
    op.drop_table("agent_groups")
    op.drop_table("phones")
