"""splits: promoters, merchant hierarchy links, versioned split rules, party receivable limits, and each
payment's split with its parts and claw-backs

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('promoters',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('parent_id', sa.String(length=40), nullable=True),
    sa.Column('receivable_limit', sa.BigInteger(), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('receivable_limit >= 0', name=op.f('ck_promoters_receivable_limit_non_negative')),
    sa.ForeignKeyConstraint(['parent_id'], ['promoters.id'], name=op.f('fk_promoters_parent_id_promoters')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_promoters_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promoters')),
    sa.UniqueConstraint('tenant_id', 'reference', name=op.f('uq_promoters_tenant_id_reference'))
    )
    op.create_table('split_party_limits',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('receivable_limit', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('receivable_limit >= 0', name=op.f('ck_split_party_limits_receivable_limit_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_split_party_limits_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_split_party_limits')),
    sa.UniqueConstraint('tenant_id', 'party_kind', 'party_id', name=op.f('uq_split_party_limits_tenant_id_party_kind_party_id'))
    )
    op.create_table('merchant_links',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('parent_merchant_id', sa.String(length=40), nullable=False),
    sa.Column('share_ratio', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_merchant_links_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['parent_merchant_id'], ['merchants.id'], name=op.f('fk_merchant_links_parent_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_merchant_links_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchant_links')),
    sa.UniqueConstraint('tenant_id', 'merchant_id', name=op.f('uq_merchant_links_tenant_id_merchant_id'))
    )
    op.create_table('promoter_bindings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('promoter_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_promoter_bindings_customer_id_customers')),
    sa.ForeignKeyConstraint(['promoter_id'], ['promoters.id'], name=op.f('fk_promoter_bindings_promoter_id_promoters')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_promoter_bindings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promoter_bindings')),
    sa.UniqueConstraint('tenant_id', 'customer_id', name=op.f('uq_promoter_bindings_tenant_id_customer_id'))
    )
    op.create_table('split_rules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('scope_key', sa.String(length=200), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=True),
    sa.Column('category', sa.String(length=100), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('supersedes_id', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('terms', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('version >= 1', name=op.f('ck_split_rules_version_positive')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_split_rules_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_split_rules_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_split_rules')),
    sa.UniqueConstraint('tenant_id', 'scope_key', 'version', name=op.f('uq_split_rules_tenant_id_scope_key_version'))
    )
    op.create_index('ix_split_rules_tenant_scope_status', 'split_rules', ['tenant_id', 'scope_key', 'status'], unique=False)
    op.create_table('payment_splits',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('capture_key', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('rule_id', sa.String(length=40), nullable=True),
    sa.Column('rule_version', sa.Integer(), nullable=True),
    sa.Column('refund_policy', sa.String(length=20), nullable=False),
    sa.Column('fee_bearer', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('refunded_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payment_splits_amount_positive')),
    sa.CheckConstraint('fee_amount >= 0', name=op.f('ck_payment_splits_fee_non_negative')),
    sa.CheckConstraint('refunded_amount >= 0 AND refunded_amount <= amount', name=op.f('ck_payment_splits_refunded_within_amount')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payment_splits_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_splits_payment_id_payments')),
    sa.ForeignKeyConstraint(['rule_id'], ['split_rules.id'], name=op.f('fk_payment_splits_rule_id_split_rules')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payment_splits_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_splits')),
    sa.UniqueConstraint('tenant_id', 'payment_id', 'capture_key', name=op.f('uq_payment_splits_tenant_id_payment_id_capture_key'))
    )
    op.create_index('ix_payment_splits_tenant_merchant_date', 'payment_splits', ['tenant_id', 'merchant_id', 'business_date'], unique=False)
    op.create_table('payment_split_parts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('split_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('recovered_amount', sa.BigInteger(), nullable=False),
    sa.Column('clawed_amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount >= 0 AND fee_amount >= 0', name=op.f('ck_payment_split_parts_amounts_non_negative')),
    sa.CheckConstraint('clawed_amount >= 0 AND clawed_amount <= amount', name=op.f('ck_payment_split_parts_clawed_within_amount')),
    sa.ForeignKeyConstraint(['split_id'], ['payment_splits.id'], name=op.f('fk_payment_split_parts_split_id_payment_splits')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payment_split_parts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_split_parts')),
    sa.UniqueConstraint('split_id', 'seq', name=op.f('uq_payment_split_parts_split_id_seq'))
    )
    op.create_index('ix_payment_split_parts_tenant_party', 'payment_split_parts', ['tenant_id', 'party_kind', 'party_id'], unique=False)
    op.create_table('split_clawbacks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('split_id', sa.String(length=40), nullable=False),
    sa.Column('refund_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('pieces', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_split_clawbacks_amount_positive')),
    sa.ForeignKeyConstraint(['split_id'], ['payment_splits.id'], name=op.f('fk_split_clawbacks_split_id_payment_splits')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_split_clawbacks_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_split_clawbacks')),
    sa.UniqueConstraint('tenant_id', 'refund_id', name=op.f('uq_split_clawbacks_tenant_id_refund_id'))
    )


def downgrade() -> None:
    op.drop_index('ix_split_rules_tenant_scope_status', table_name='split_rules')
    op.drop_index('ix_payment_splits_tenant_merchant_date', table_name='payment_splits')
    op.drop_index('ix_payment_split_parts_tenant_party', table_name='payment_split_parts')
    op.drop_table('split_clawbacks')
    op.drop_table('payment_split_parts')
    op.drop_table('payment_splits')
    op.drop_table('split_rules')
    op.drop_table('promoter_bindings')
    op.drop_table('merchant_links')
    op.drop_table('split_party_limits')
    op.drop_table('promoters')

