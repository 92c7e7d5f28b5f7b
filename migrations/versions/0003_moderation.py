"""Moderation: an event's status and trust level, who backed it, and the staff audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mapsvc.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add status, trust and hold reason to events, the trusted flag to reports, and the audit log."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="published"))
        batch.add_column(sa.Column("trust", sa.String(16), nullable=False, server_default="unverified"))
        batch.add_column(sa.Column("held_reason", sa.String(16), nullable=True))
        batch.add_column(sa.Column("verified_by_staff", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Layers and heat read published events only: the status joins the end of the index they
    # read along, so that it still covers them (no table lookups); a small partial index finds
    # the moderation queue. An index led by the status would be chosen by SQLite's planner for
    # layer reads and scan every published event.
    op.drop_index("ix_events_category_bucket_lat_lon", "events")
    op.create_index(
        "ix_events_category_bucket_lat_lon_status", "events", ["category", "bucket_start", "lat", "lon", "status"]
    )
    op.create_index(
        "ix_events_pending",
        "events",
        ["id"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("trusted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at_hour", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("event_public_id", sa.String(24), nullable=True),
        sa.Column("detail", sa.String(200), nullable=True),
    )
    op.create_index("ix_audit_log_at_hour", "audit_log", ["at_hour"])


def downgrade() -> None:
    """Drop the audit log and the moderation columns."""
    op.drop_index("ix_audit_log_at_hour", "audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("trusted")
    op.drop_index("ix_events_pending", "events")
    op.drop_index("ix_events_category_bucket_lat_lon_status", "events")
    op.create_index("ix_events_category_bucket_lat_lon", "events", ["category", "bucket_start", "lat", "lon"])
    with op.batch_alter_table("events") as batch:
        batch.drop_column("verified_by_staff")
        batch.drop_column("held_reason")
        batch.drop_column("trust")
        batch.drop_column("status")
