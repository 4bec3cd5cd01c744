"""refund approvals: a per-merchant threshold above which refunds wait for approval

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 18:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refund_approval_amount', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('merchants', schema=None) as batch_op:
        batch_op.drop_column('refund_approval_amount')
