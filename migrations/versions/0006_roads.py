"""Street networks for route planning (issue #6).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """One imported street network per mode: its nodes and its edges (segments of OSM ways)."""
    op.create_table(
        "road_networks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mode", sa.String(8), nullable=False, unique=True),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("node_count", sa.Integer(), nullable=False),
        sa.Column("edge_count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "road_nodes",
        sa.Column("network_id", sa.Integer(), sa.ForeignKey("road_networks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("node", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
    )
    op.create_table(
        "road_edges",
        sa.Column("network_id", sa.Integer(), sa.ForeignKey("road_networks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("edge", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("u", sa.Integer(), nullable=False),
        sa.Column("v", sa.Integer(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.Column("two_way", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("highway", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    """Drop the street networks."""
    op.drop_table("road_edges")
    op.drop_table("road_nodes")
    op.drop_table("road_networks")
