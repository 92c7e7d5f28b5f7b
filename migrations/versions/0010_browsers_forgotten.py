"""Accounts count how often every browser they signed in from was forgotten ("sign out everywhere").

The count is part of the device cookies' entries (``mapsvc.web.auth.devices``), with the password's
hash: signing out everywhere, like a new password, voids the entries of every browser, a seized
phone's too. Existing entries were made without it and are void after the upgrade in any case
(they carry no issue day either): each owner's next sign-in, from the shared budget of her name,
gives her browser a new one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the count, 0 for every account."""
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("browsers_forgotten", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Drop the count (entries made since then become void)."""
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("browsers_forgotten")
