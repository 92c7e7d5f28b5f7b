"""Districts for advocacy counts (issue #7).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Districts: a name and a GeoJSON polygon in EPSG:4326 (text on every engine)."""
    op.create_table(
        "districts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("geojson", sa.Text(), nullable=False),
        sa.Column("imported_hour", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the districts."""
    op.drop_table("districts")
