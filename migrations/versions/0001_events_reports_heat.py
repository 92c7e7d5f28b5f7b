"""Events, reports and heat series.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mapsvc.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the events, reports and heat tables."""
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(24), nullable=False, unique=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("perpetrator", sa.String(32), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("bucket_start", UTCDateTime(), nullable=False),
        sa.Column("heat_cell", sa.String(16), nullable=False),
        sa.Column("corroborations", sa.Integer(), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
    )
    op.create_index("ix_events_category_bucket_lat_lon", "events", ["category", "bucket_start", "lat", "lon"])
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(24), nullable=False, unique=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("withdrawal_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_reports_event_id", "reports", ["event_id"])
    op.create_table(
        "heat_series",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cell", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("half_life_s", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("last_bucket", UTCDateTime(), nullable=False),
        sa.Column("last_total", sa.Integer(), nullable=False),
        sa.Column("last_sum", sa.Float(), nullable=False),
        sa.Column("last_landmark_s", sa.Float(), nullable=False),
        sa.UniqueConstraint("cell", "category", name="uq_heat_series_cell_category"),
    )
    op.create_index("ix_heat_series_category_lat_lon", "heat_series", ["category", "lat", "lon"])
    op.create_table(
        "heat_steps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("series_id", sa.Integer(), sa.ForeignKey("heat_series.id", ondelete="CASCADE"), nullable=False),
        sa.Column("bucket_start", UTCDateTime(), nullable=False),
        sa.Column("events_total", sa.Integer(), nullable=False),
        sa.Column("decayed_sum", sa.Float(), nullable=False),
        sa.Column("landmark_s", sa.Float(), nullable=False),
        sa.UniqueConstraint("series_id", "bucket_start", name="uq_heat_steps_series_bucket"),
    )
    op.create_index("ix_heat_steps_series_bucket_total", "heat_steps", ["series_id", "bucket_start", "events_total"])


def downgrade() -> None:
    """Drop the tables."""
    op.drop_index("ix_heat_steps_series_bucket_total", "heat_steps")
    op.drop_table("heat_steps")
    op.drop_index("ix_heat_series_category_lat_lon", "heat_series")
    op.drop_table("heat_series")
    op.drop_index("ix_reports_event_id", "reports")
    op.drop_table("reports")
    op.drop_index("ix_events_category_bucket_lat_lon", "events")
    op.drop_table("events")
