"""settlement tables: profiles, batches, reserves and freezes, FX rates

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import finloop.db.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fx_rates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('base', sa.String(length=3), nullable=False),
    sa.Column('quote', sa.String(length=3), nullable=False),
    sa.Column('rate', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('as_of', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('base <> quote', name=op.f('ck_fx_rates_distinct_currencies')),
    sa.CheckConstraint('rate > 0', name=op.f('ck_fx_rates_rate_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_fx_rates_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fx_rates')),
    sa.UniqueConstraint('tenant_id', 'base', 'quote', 'as_of', 'source',
                        name=op.f('uq_fx_rates_tenant_id_base_quote_as_of_source'))
    )
    op.create_index('ix_fx_rates_lookup', 'fx_rates', ['tenant_id', 'base', 'quote', 'as_of'], unique=False)
    op.create_table('settlement_batches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('cohort_date', sa.Date(), nullable=False),
    sa.Column('settle_date', sa.Date(), nullable=False),
    sa.Column('settled_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('settlement_currency', sa.String(length=3), nullable=False),
    sa.Column('settled_amount', sa.BigInteger(), nullable=False),
    sa.Column('reserve_amount', sa.BigInteger(), nullable=False),
    sa.Column('frozen_amount', sa.BigInteger(), nullable=False),
    sa.Column('available_amount', sa.BigInteger(), nullable=False),
    sa.Column('fx_rate', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=True),
    sa.Column('fx_source', sa.String(length=100), nullable=True),
    sa.Column('fx_as_of', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('reserve_amount + frozen_amount + available_amount = settled_amount',
                       name=op.f('ck_settlement_batches_parts_sum_to_settled')),
    sa.CheckConstraint('reserve_amount >= 0 AND frozen_amount >= 0',
                       name=op.f('ck_settlement_batches_held_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_settlement_batches_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_batches')),
    sa.UniqueConstraint('tenant_id', 'party_kind', 'party_id', 'currency', 'cohort_date',
                        name=op.f('uq_settlement_batches_tenant_id_party_kind_party_id_currency_cohort_date'))
    )
    op.create_index(op.f('ix_settlement_batches_entry_id'), 'settlement_batches', ['entry_id'], unique=False)
    op.create_index('ix_settlement_batches_tenant_settled', 'settlement_batches', ['tenant_id', 'settled_on', 'id'], unique=False)
    op.create_table('settlement_profiles',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('cycle', sa.String(length=16), nullable=False),
    sa.Column('offset_days', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=True),
    sa.Column('day_of_month', sa.Integer(), nullable=True),
    sa.Column('freeze_days', sa.Integer(), nullable=False),
    sa.Column('reserve_rate', finloop.db.types.ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('reserve_days', sa.Integer(), nullable=False),
    sa.Column('settlement_currency', sa.String(length=3), nullable=True),
    sa.Column('min_settlement_amount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("cycle IN ('t_plus_n', 'weekly', 'monthly')", name=op.f('ck_settlement_profiles_cycle_known')),
    sa.CheckConstraint('day_of_month IS NULL OR (day_of_month >= 1 AND day_of_month <= 31)',
                       name=op.f('ck_settlement_profiles_day_of_month_range')),
    sa.CheckConstraint('freeze_days >= 0 AND reserve_days >= 0',
                       name=op.f('ck_settlement_profiles_days_non_negative')),
    sa.CheckConstraint('min_settlement_amount >= 0', name=op.f('ck_settlement_profiles_minimum_non_negative')),
    sa.CheckConstraint('offset_days >= 0 AND offset_days <= 30', name=op.f('ck_settlement_profiles_offset_range')),
    sa.CheckConstraint('reserve_rate >= 0 AND reserve_rate < 1',
                       name=op.f('ck_settlement_profiles_reserve_rate_range')),
    sa.CheckConstraint('weekday IS NULL OR (weekday >= 0 AND weekday <= 6)',
                       name=op.f('ck_settlement_profiles_weekday_range')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_settlement_profiles_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_profiles')),
    sa.UniqueConstraint('tenant_id', 'party_kind', 'party_id',
                        name=op.f('uq_settlement_profiles_tenant_id_party_kind_party_id'))
    )
    op.create_table('settlement_reserves',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=False),
    sa.Column('release_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('released_amount', sa.BigInteger(), nullable=False),
    sa.Column('released_on', sa.Date(), nullable=True),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('release_entry_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('reserve', 'freeze')", name=op.f('ck_settlement_reserves_kind_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_settlement_reserves_amount_positive')),
    sa.CheckConstraint('release_on >= held_on', name=op.f('ck_settlement_reserves_ordered')),
    sa.CheckConstraint('released_amount >= 0 AND released_amount <= amount',
                       name=op.f('ck_settlement_reserves_released_within_amount')),
    sa.ForeignKeyConstraint(['batch_id'], ['settlement_batches.id'], name=op.f('fk_settlement_reserves_batch_id_settlement_batches')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_settlement_reserves_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_reserves')),
    sa.UniqueConstraint('batch_id', 'kind', name=op.f('uq_settlement_reserves_batch_id_kind'))
    )
    op.create_index('ix_settlement_reserves_due', 'settlement_reserves', ['tenant_id', 'status', 'release_on'], unique=False)
    op.create_index('ix_settlement_reserves_party', 'settlement_reserves', ['tenant_id', 'party_kind', 'party_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_settlement_reserves_party', table_name='settlement_reserves')
    op.drop_index('ix_settlement_reserves_due', table_name='settlement_reserves')
    op.drop_table('settlement_reserves')
    op.drop_table('settlement_profiles')
    op.drop_index('ix_settlement_batches_tenant_settled', table_name='settlement_batches')
    op.drop_index(op.f('ix_settlement_batches_entry_id'), table_name='settlement_batches')
    op.drop_table('settlement_batches')
    op.drop_index('ix_fx_rates_lookup', table_name='fx_rates')
    op.drop_table('fx_rates')
