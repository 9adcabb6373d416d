"""Initial schema: users, sessions, alarm events, actions, trends.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the first schema."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_utc", TZ, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("expires_utc", TZ, nullable=False),
    )
    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_key", sa.String(64), nullable=False, unique=True),
        sa.Column("alarm_id", sa.String(64), nullable=False, index=True),
        sa.Column("unit", sa.String(32), nullable=False, index=True),
        sa.Column("bed", sa.String(32), nullable=False, index=True),
        sa.Column("lifecycle", sa.String(16), nullable=False),
        sa.Column("condition", sa.String(32), nullable=False, index=True),
        sa.Column("priority", sa.String(8), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ts_utc", TZ, nullable=False, index=True),
        sa.Column("received_utc", TZ, nullable=False),
        sa.Column("onset_utc", TZ, nullable=False),
        sa.Column("onset_s", sa.Float, nullable=False),
        sa.Column("raised_s", sa.Float, nullable=False),
        sa.Column("cleared_s", sa.Float, nullable=True),
        sa.Column("hr_bpm", sa.Float, nullable=True),
        sa.Column("acknowledged", sa.Boolean, nullable=False),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("strip", sa.JSON, nullable=True),
    )
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts_utc", TZ, nullable=False, index=True),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("bed", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("alarm_id", sa.String(64), nullable=True, index=True),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_table(
        "trends",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("bed", sa.String(32), nullable=False),
        sa.Column("ts_utc", TZ, nullable=False, index=True),
        sa.Column("hr_bpm", sa.Float, nullable=True),
        sa.Column("spo2_pct", sa.Float, nullable=True),
        sa.Column("respiration_rate_per_min", sa.Float, nullable=True),
        sa.Column("temperature_c", sa.Float, nullable=True),
        sa.Column("news2_total", sa.Integer, nullable=True),
    )
    op.create_index("ix_trends_bed_ts", "trends", ["unit", "bed", "ts_utc"])


def downgrade() -> None:
    """Drop every table."""
    op.drop_index("ix_trends_bed_ts", "trends")
    for name in ("trends", "actions", "alarm_events", "sessions", "users"):
        op.drop_table(name)
