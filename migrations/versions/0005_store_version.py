"""A counter of committed writes, so that answers to reads can be cached until the data changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the one-row ``store_version`` table."""
    table = op.create_table(
        "store_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("writes", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "writes": 0}])


def downgrade() -> None:
    """Drop the counter."""
    op.drop_table("store_version")
