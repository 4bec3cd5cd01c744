"""clearing tables: fee schedules and daily clearing batches

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('fee_schedules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('channel_code', sa.String(length=40), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('rate', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('fixed_amount', sa.BigInteger(), nullable=False),
    sa.Column('tiers', _json(), nullable=False),
    sa.Column('minimum_amount', sa.BigInteger(), nullable=True),
    sa.Column('maximum_amount', sa.BigInteger(), nullable=True),
    sa.Column('bearer', sa.String(length=20), nullable=False),
    sa.Column('refund_fee_policy', sa.String(length=16), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('fixed_amount >= 0', name=op.f('ck_fee_schedules_fixed_non_negative')),
    sa.CheckConstraint('minimum_amount IS NULL OR minimum_amount >= 0',
                       name=op.f('ck_fee_schedules_minimum_non_negative')),
    sa.CheckConstraint('maximum_amount IS NULL OR minimum_amount IS NULL OR maximum_amount >= minimum_amount',
                       name=op.f('ck_fee_schedules_maximum_above_minimum')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_fee_schedules_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_schedules'))
    )
    with op.batch_alter_table('fee_schedules', schema=None) as batch_op:
        batch_op.create_index('ix_fee_schedules_lookup', ['tenant_id', 'channel_code', 'status'], unique=False)

    op.create_table('clearing_batches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('channel_code', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payments_count', sa.Integer(), nullable=False),
    sa.Column('payments_gross_amount', sa.BigInteger(), nullable=False),
    sa.Column('payment_fees_amount', sa.BigInteger(), nullable=False),
    sa.Column('refunds_count', sa.Integer(), nullable=False),
    sa.Column('refunds_gross_amount', sa.BigInteger(), nullable=False),
    sa.Column('refund_fee_returns_amount', sa.BigInteger(), nullable=False),
    sa.Column('chargebacks_count', sa.Integer(), nullable=False),
    sa.Column('chargebacks_amount', sa.BigInteger(), nullable=False),
    sa.Column('adjustments_count', sa.Integer(), nullable=False),
    sa.Column('adjustments_amount', sa.BigInteger(), nullable=False),
    sa.Column('expected_net_amount', sa.BigInteger(), nullable=False),
    sa.Column('shard_amounts', _json(), nullable=False),
    sa.Column('settled_amount', sa.BigInteger(), nullable=True),
    sa.Column('difference_amount', sa.BigInteger(), nullable=True),
    sa.Column('settlement_reference', sa.String(length=100), nullable=True),
    sa.Column('received_on', sa.Date(), nullable=True),
    sa.Column('bank_account', sa.String(length=60), nullable=True),
    sa.Column('settlement_entry_id', sa.String(length=40), nullable=True),
    sa.Column('computed_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('payments_count >= 0 AND refunds_count >= 0 AND chargebacks_count >= 0 '
                       'AND adjustments_count >= 0', name=op.f('ck_clearing_batches_counts_non_negative')),
    sa.CheckConstraint('payments_gross_amount >= 0 AND payment_fees_amount >= 0 AND refunds_gross_amount >= 0 '
                       'AND refund_fee_returns_amount >= 0', name=op.f('ck_clearing_batches_amounts_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_clearing_batches_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clearing_batches')),
    sa.UniqueConstraint('tenant_id', 'channel_code', 'currency', 'business_date',
                        name=op.f('uq_clearing_batches_tenant_id_channel_code_currency_business_date'))
    )
    with op.batch_alter_table('clearing_batches', schema=None) as batch_op:
        batch_op.create_index('ix_clearing_batches_tenant_date', ['tenant_id', 'business_date', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('clearing_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_clearing_batches_tenant_date')
    op.drop_table('clearing_batches')
    with op.batch_alter_table('fee_schedules', schema=None) as batch_op:
        batch_op.drop_index('ix_fee_schedules_lookup')
    op.drop_table('fee_schedules')
