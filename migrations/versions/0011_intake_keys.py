"""Idempotency keys of reports: a resend of a report whose answer was lost is answered, not stored again.

Each row holds a hash of the key, the receipt sealed with a key derived from the idempotency key
(which only the sender holds) and the day it expires; no time it was made, nothing of the report.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the table, with the index that finds expired rows."""
    op.create_table(
        "intake_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("sealed_receipt", sa.String(255), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
    )
    op.create_index("ix_intake_keys_expires_on", "intake_keys", ["expires_on"])


def downgrade() -> None:
    """Drop the table (resends are stored again, as before)."""
    op.drop_index("ix_intake_keys_expires_on", "intake_keys")
    op.drop_table("intake_keys")
