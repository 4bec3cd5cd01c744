"""wealth: money-market funds, published yields, fund orders, holders' fund accounts, daily income, sweeps

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import finloop.db.types

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('funds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('fast_redemption_daily_limit', sa.BigInteger(), nullable=False),
    sa.Column('min_subscription_amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('fast_redemption_daily_limit >= 0', name=op.f('ck_funds_fast_limit_non_negative')),
    sa.CheckConstraint('min_subscription_amount >= 1', name=op.f('ck_funds_min_subscription_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_funds_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funds')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_funds_tenant_id_code'))
    )
    op.create_table('fund_accounts',
    sa.Column('fund_id', sa.String(length=40), nullable=False),
    sa.Column('holder_kind', sa.String(length=16), nullable=False),
    sa.Column('holder_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_fund_accounts_account_id_accounts')),
    sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_fund_accounts_fund_id_funds')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_fund_accounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('fund_id', 'holder_kind', 'holder_id', name=op.f('pk_fund_accounts'))
    )
    with op.batch_alter_table('fund_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_fund_accounts_holder', ['tenant_id', 'holder_kind', 'holder_id'], unique=False)

    op.create_table('fund_accruals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('fund_id', sa.String(length=40), nullable=False),
    sa.Column('holder_kind', sa.String(length=16), nullable=False),
    sa.Column('holder_id', sa.String(length=40), nullable=False),
    sa.Column('income_on', sa.Date(), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('basis_amount', sa.BigInteger(), nullable=False),
    sa.Column('income_per_10k', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('exact_amount', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('carry', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount >= 0 AND basis_amount >= 0 AND days >= 1', name=op.f('ck_fund_accruals_amounts_non_negative')),
    sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_fund_accruals_fund_id_funds')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_fund_accruals_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_accruals')),
    sa.UniqueConstraint('fund_id', 'holder_kind', 'holder_id', 'income_on', name=op.f('uq_fund_accruals_fund_id_holder_kind_holder_id_income_on'))
    )
    with op.batch_alter_table('fund_accruals', schema=None) as batch_op:
        batch_op.create_index('ix_fund_accruals_holder', ['tenant_id', 'holder_kind', 'holder_id', 'income_on'], unique=False)

    op.create_table('fund_orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('fund_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('holder_kind', sa.String(length=16), nullable=False),
    sa.Column('holder_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('trade_date', sa.Date(), nullable=False),
    sa.Column('settle_on', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_key', sa.String(length=100), nullable=True),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('settle_entry_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_fund_orders_amount_positive')),
    sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_fund_orders_fund_id_funds')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_fund_orders_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_orders')),
    sa.UniqueConstraint('tenant_id', 'source_key', name=op.f('uq_fund_orders_tenant_id_source_key'))
    )
    with op.batch_alter_table('fund_orders', schema=None) as batch_op:
        batch_op.create_index('ix_fund_orders_due', ['tenant_id', 'status', 'settle_on'], unique=False)
        batch_op.create_index('ix_fund_orders_holder', ['tenant_id', 'holder_kind', 'holder_id', 'fund_id', 'trade_date'], unique=False)
        batch_op.create_index('ix_fund_orders_tenant_created', ['tenant_id', 'id'], unique=False)

    op.create_table('fund_prices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('fund_id', sa.String(length=40), nullable=False),
    sa.Column('price_on', sa.Date(), nullable=False),
    sa.Column('income_per_10k', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('annualised_7d', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('published_by', sa.String(length=100), nullable=False),
    sa.Column('published_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_fund_prices_fund_id_funds')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_fund_prices_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_prices')),
    sa.UniqueConstraint('fund_id', 'price_on', name=op.f('uq_fund_prices_fund_id_price_on'))
    )
    with op.batch_alter_table('fund_prices', schema=None) as batch_op:
        batch_op.create_index('ix_fund_prices_tenant_fund', ['tenant_id', 'fund_id', 'price_on'], unique=False)

    op.create_table('fund_sweeps',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('holder_kind', sa.String(length=16), nullable=False),
    sa.Column('holder_id', sa.String(length=40), nullable=False),
    sa.Column('fund_id', sa.String(length=40), nullable=False),
    sa.Column('keep_amount', sa.BigInteger(), nullable=False),
    sa.Column('min_sweep_amount', sa.BigInteger(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('keep_amount >= 0', name=op.f('ck_fund_sweeps_keep_non_negative')),
    sa.CheckConstraint('min_sweep_amount >= 1', name=op.f('ck_fund_sweeps_min_sweep_positive')),
    sa.ForeignKeyConstraint(['fund_id'], ['funds.id'], name=op.f('fk_fund_sweeps_fund_id_funds')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_fund_sweeps_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fund_sweeps')),
    sa.UniqueConstraint('tenant_id', 'holder_kind', 'holder_id', name=op.f('uq_fund_sweeps_tenant_id_holder_kind_holder_id'))
    )


def downgrade() -> None:
    op.drop_table('fund_sweeps')
    with op.batch_alter_table('fund_prices', schema=None) as batch_op:
        batch_op.drop_index('ix_fund_prices_tenant_fund')

    op.drop_table('fund_prices')
    with op.batch_alter_table('fund_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_fund_orders_tenant_created')
        batch_op.drop_index('ix_fund_orders_holder')
        batch_op.drop_index('ix_fund_orders_due')

    op.drop_table('fund_orders')
    with op.batch_alter_table('fund_accruals', schema=None) as batch_op:
        batch_op.drop_index('ix_fund_accruals_holder')

    op.drop_table('fund_accruals')
    with op.batch_alter_table('fund_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_fund_accounts_holder')

    op.drop_table('fund_accounts')
    op.drop_table('funds')
