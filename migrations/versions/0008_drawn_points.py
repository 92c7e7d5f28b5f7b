"""Which events' points the server drew itself: the points that later reports of a place reuse.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``server_drawn`` to events, and the index that finds such points near a place."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("server_drawn", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Covering on both engines: SQLite reads a partial index's own condition column from the
    # table unless the index holds it too.
    op.create_index(
        "ix_events_drawn_points",
        "events",
        ["category", "lat", "lon", "id", "status", "server_drawn"],
        sqlite_where=sa.text("server_drawn = 1"),
        postgresql_where=sa.text("server_drawn"),
    )


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index("ix_events_drawn_points", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("server_drawn")
