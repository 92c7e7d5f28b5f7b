"""Two-factor codes get their own wait, TOTP secrets room to be stored sealed, sessions a fresh sign-in time.

Wrong passwords are no longer counted on the account (they are slowed down per source, in the
rate limiter's store), so the account's shared failure count and lock go. A TOTP secret left
in plain text by an earlier version is sealed by ``mapsvc accounts encrypt-secrets``, which needs
the key from the configuration that a migration does not have; ``mapsvc serve`` refuses to start
until it has run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mapsvc.store.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the code counter and wait, widen the secret, drop the shared lock; add the session's fresh time."""
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(64), type_=sa.String(255), existing_nullable=True)
        batch.add_column(sa.Column("totp_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("totp_wait_until", UTCDateTime(), nullable=True))
        batch.drop_column("failed_logins")
        batch.drop_column("locked_until")
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("fresh_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Put the shared count and lock back (empty) and drop the new columns.

    Sealed secrets stay sealed (a migration has no key), so the column stays wide; an earlier
    version cannot use them: turn two-factor off on every account before going back.
    """
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("fresh_until")
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", UTCDateTime(), nullable=True))
        batch.drop_column("totp_wait_until")
        batch.drop_column("totp_failures")
