"""payments by day: an index for the console's overview and the reports

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-26 11:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_payments_tenant_created_at', 'payments', ['tenant_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_payments_tenant_created_at', table_name='payments')
