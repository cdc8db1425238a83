"""Call-center core (issue 3): agents' queues and runtime state, pause reasons, service numbers, IVR,
time conditions and holidays, call-type rules and quotas, media, recordings, customers, webhooks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 00:42:02.309382

Generated with `alembic revision --autogenerate` against tables.py, then reviewed: boolean defaults
written as sa.true()/sa.false() (PostgreSQL refuses integer defaults on booleans).  Self-contained: it
does not import hotline.db.tables.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    op.create_table(
        "agent_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column(
            "ts",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=128), server_default="", nullable=False),
        sa.Column("phone", sa.String(length=64), server_default="", nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=64), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_events")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_index(op.f("ix_agent_events_agent_id_ts"), "agent_events", ["agent_id", "ts"], unique=False)
    op.create_table(
        "call_type_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("pattern", sa.String(length=64), nullable=False),
        sa.Column("call_type", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_type_rules")),
        sa.UniqueConstraint("pattern", name=op.f("uq_call_type_rules_pattern")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=255), server_default="", nullable=False),
        sa.Column("external_id", sa.String(length=128), server_default="", nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_index(op.f("ix_customers_phone"), "customers", ["phone"], unique=False)
    op.create_table(
        "holidays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=128), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holidays")),
        sa.UniqueConstraint("day", name=op.f("uq_holidays_day")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "ivr_menus",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.String(length=128), nullable=False),
        sa.Column("invalid_prompt", sa.String(length=128), server_default="pm-invalid-option", nullable=False),
        sa.Column("timeout_s", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("fail_type", sa.String(length=16), server_default="", nullable=False),
        sa.Column("fail_value", sa.String(length=255), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_menus")),
        sa.UniqueConstraint("name", name=op.f("uq_ivr_menus_name")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "media_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("moh_class", sa.String(length=64), server_default="", nullable=False),
        sa.Column("original_name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("sha256", sa.CHAR(length=64), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_files")),
        sa.UniqueConstraint("kind", "moh_class", "name", name=op.f("uq_media_files_kind_moh_class_name")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "moh_classes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("random", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moh_classes")),
        sa.UniqueConstraint("name", name=op.f("uq_moh_classes_name")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "pause_reasons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("paid", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("max_duration_s", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pause_reasons")),
        sa.UniqueConstraint("name", name=op.f("uq_pause_reasons_name")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "next_attempt_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "stored_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "deleted_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("source", name=op.f("uq_recordings_source")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_index(op.f("ix_recordings_call_id"), "recordings", ["call_id"], unique=False)
    op.create_index(
        op.f("ix_recordings_state_next_attempt_at"), "recordings", ["state", "next_attempt_at"], unique=False
    )
    op.create_table(
        "service_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("dest_type", sa.String(length=16), nullable=False),
        sa.Column("dest_value", sa.String(length=255), server_default="", nullable=False),
        sa.Column("description", sa.String(length=255), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_numbers")),
        sa.UniqueConstraint("number", name=op.f("uq_service_numbers_number")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "time_conditions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("hours", sa.Text(), nullable=False),
        sa.Column("open_type", sa.String(length=16), nullable=False),
        sa.Column("open_value", sa.String(length=255), server_default="", nullable=False),
        sa.Column("closed_type", sa.String(length=16), nullable=False),
        sa.Column("closed_value", sa.String(length=255), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_time_conditions")),
        sa.UniqueConstraint("name", name=op.f("uq_time_conditions_name")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("events", sa.String(length=1024), server_default="*", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "ivr_options",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("menu_id", sa.Integer(), nullable=False),
        sa.Column("digit", sa.String(length=1), nullable=False),
        sa.Column("dest_type", sa.String(length=16), nullable=False),
        sa.Column("dest_value", sa.String(length=255), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["menu_id"], ["ivr_menus.id"], name=op.f("fk_ivr_options_menu_id_ivr_menus"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_options")),
        sa.UniqueConstraint("menu_id", "digit", name=op.f("uq_ivr_options_menu_id_digit")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "next_attempt_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "delivered_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.id"], name=op.f("fk_webhook_deliveries_webhook_id_webhooks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_index(
        op.f("ix_webhook_deliveries_state_next_attempt_at"),
        "webhook_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "agent_queues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("penalty", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_queues_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_agent_queues_queue_id_queues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_queues")),
        sa.UniqueConstraint("agent_id", "queue_id", name=op.f("uq_agent_queues_agent_id_queue_id")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "agent_status",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pause_reason", sa.String(length=64), server_default="", nullable=False),
        sa.Column(
            "state_since",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "logged_in_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "wrapup_until",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=True,
        ),
        sa.Column("missed_in_row", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("missed_total", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("call_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_status_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_status")),
        sa.UniqueConstraint("phone", name=op.f("uq_agent_status_phone")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.create_table(
        "quota_usage",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("calls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_quota_usage_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "day", name=op.f("pk_quota_usage")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
        mysql_engine="InnoDB",
    )
    op.add_column(
        "agent_groups", sa.Column("max_missed_in_row", sa.Integer(), server_default=sa.text("3"), nullable=False)
    )
    op.add_column(
        "agent_groups",
        sa.Column(
            "allowed_call_types",
            sa.String(length=255),
            server_default="internal,local,mobile,long_distance",
            nullable=False,
        ),
    )
    op.add_column(
        "agent_groups",
        sa.Column(
            "allowed_actions", sa.String(length=255), server_default="originate,transfer_internal", nullable=False
        ),
    )
    op.add_column("agent_groups", sa.Column("daily_call_quota", sa.Integer(), nullable=True))
    op.add_column("agent_groups", sa.Column("daily_minute_quota", sa.Integer(), nullable=True))
    op.add_column(
        "agent_groups", sa.Column("recording", sa.String(length=16), server_default="inherit", nullable=False)
    )
    op.add_column("agents", sa.Column("recording", sa.String(length=16), server_default="inherit", nullable=False))
    op.add_column("calls", sa.Column("call_type", sa.String(length=16), nullable=True))
    op.add_column("calls", sa.Column("placed_by_agent", sa.String(length=32), nullable=True))
    op.add_column("did_routes", sa.Column("message", sa.String(length=128), server_default="", nullable=False))
    op.add_column("queues", sa.Column("announce_position", sa.String(length=8), server_default="no", nullable=False))
    op.add_column(
        "queues", sa.Column("announce_position_limit", sa.Integer(), server_default=sa.text("5"), nullable=False)
    )
    op.add_column("queues", sa.Column("periodic_announce", sa.String(length=128), server_default="", nullable=False))
    op.add_column(
        "queues", sa.Column("periodic_announce_frequency", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("queues", sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("queues", sa.Column("overflow_type", sa.String(length=16), server_default="", nullable=False))
    op.add_column("queues", sa.Column("overflow_value", sa.String(length=255), server_default="", nullable=False))
    op.add_column("queues", sa.Column("recording", sa.String(length=16), server_default="never", nullable=False))


def downgrade() -> None:
    op.drop_column("queues", "recording")
    op.drop_column("queues", "overflow_value")
    op.drop_column("queues", "overflow_type")
    op.drop_column("queues", "priority")
    op.drop_column("queues", "periodic_announce_frequency")
    op.drop_column("queues", "periodic_announce")
    op.drop_column("queues", "announce_position_limit")
    op.drop_column("queues", "announce_position")
    op.drop_column("did_routes", "message")
    op.drop_column("calls", "placed_by_agent")
    op.drop_column("calls", "call_type")
    op.drop_column("agents", "recording")
    op.drop_column("agent_groups", "recording")
    op.drop_column("agent_groups", "daily_minute_quota")
    op.drop_column("agent_groups", "daily_call_quota")
    op.drop_column("agent_groups", "allowed_actions")
    op.drop_column("agent_groups", "allowed_call_types")
    op.drop_column("agent_groups", "max_missed_in_row")
    op.drop_table("quota_usage")
    op.drop_table("agent_status")
    op.drop_table("agent_queues")
    op.drop_index(op.f("ix_webhook_deliveries_state_next_attempt_at"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("ivr_options")
    op.drop_table("webhooks")
    op.drop_table("time_conditions")
    op.drop_table("service_numbers")
    op.drop_index(op.f("ix_recordings_state_next_attempt_at"), table_name="recordings")
    op.drop_index(op.f("ix_recordings_call_id"), table_name="recordings")
    op.drop_table("recordings")
    op.drop_table("pause_reasons")
    op.drop_table("moh_classes")
    op.drop_table("media_files")
    op.drop_table("ivr_menus")
    op.drop_table("holidays")
    op.drop_index(op.f("ix_customers_phone"), table_name="customers")
    op.drop_table("customers")
    op.drop_table("call_type_rules")
    op.drop_index(op.f("ix_agent_events_agent_id_ts"), table_name="agent_events")
    op.drop_table("agent_events")
