"""console: staff second factor and idle session expiry

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from finloop.db.types import UTCDateTime

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('totp_secret', sa.Text(), nullable=True))
        batch.add_column(sa.Column('totp_confirmed_at', UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('user_sessions') as batch:
        batch.add_column(sa.Column('last_seen_at', UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('channel', sa.String(length=16), server_default='api', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('user_sessions') as batch:
        batch.drop_column('channel')
        batch.drop_column('last_seen_at')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('totp_last_step')
        batch.drop_column('totp_confirmed_at')
        batch.drop_column('totp_secret')
