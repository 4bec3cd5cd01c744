"""disputes: chargebacks notified by channels

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 19:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disputes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=True),
    sa.Column('attempt_id', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('channel_dispute_id', sa.String(length=100), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('resolution', sa.String(length=20), nullable=True),
    sa.Column('evidence_due_by', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('evidence_text', sa.Text(), nullable=True),
    sa.Column('evidence_files', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
              nullable=False),
    sa.Column('evidence_submitted_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('from_pending_amount', sa.BigInteger(), nullable=False),
    sa.Column('from_reserve_amount', sa.BigInteger(), nullable=False),
    sa.Column('receivable_amount', sa.BigInteger(), nullable=False),
    sa.Column('fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('opened_entry_id', sa.String(length=40), nullable=True),
    sa.Column('closed_entry_id', sa.String(length=40), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_disputes_amount_positive')),
    sa.CheckConstraint('fee_amount >= 0', name=op.f('ck_disputes_fee_non_negative')),
    sa.CheckConstraint('from_pending_amount >= 0 AND from_reserve_amount >= 0 AND receivable_amount >= 0 '
                       'AND from_pending_amount + from_reserve_amount + receivable_amount = amount',
                       name=op.f('ck_disputes_sources_sum_to_amount')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_disputes_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_disputes_payment_id_payments')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_disputes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
    sa.UniqueConstraint('tenant_id', 'channel', 'channel_dispute_id',
                        name=op.f('uq_disputes_tenant_id_channel_channel_dispute_id'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_due', ['status', 'evidence_due_by'], unique=False)
        batch_op.create_index('ix_disputes_tenant_created', ['tenant_id', 'id'], unique=False)
        batch_op.create_index('ix_disputes_tenant_payment', ['tenant_id', 'payment_id', 'id'], unique=False)
        batch_op.create_index('ix_disputes_tenant_status', ['tenant_id', 'status', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_disputes_tenant_status')
        batch_op.drop_index('ix_disputes_tenant_payment')
        batch_op.drop_index('ix_disputes_tenant_created')
        batch_op.drop_index('ix_disputes_due')

    op.drop_table('disputes')
