"""payouts tables

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import finloop.db.types

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payout_accounts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('holder_name_sealed', sa.Text(), nullable=False),
    sa.Column('account_number_sealed', sa.Text(), nullable=False),
    sa.Column('account_last4', sa.String(length=4), nullable=False),
    sa.Column('bank_code', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payout_accounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_accounts'))
    )
    with op.batch_alter_table('payout_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_payout_accounts_party', ['tenant_id', 'party_kind', 'party_id', 'currency'],
                              unique=False)

    op.create_table('payout_settings',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('approval_amount', sa.BigInteger(), nullable=True),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('approval_amount IS NULL OR approval_amount >= 0',
                       name=op.f('ck_payout_settings_approval_amount_non_negative')),
    sa.CheckConstraint('max_attempts >= 1', name=op.f('ck_payout_settings_max_attempts_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payout_settings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_payout_settings'))
    )

    op.create_table('payout_schedules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('interval', sa.String(length=16), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=True),
    sa.Column('threshold_amount', sa.BigInteger(), nullable=True),
    sa.Column('minimum_balance', sa.BigInteger(), nullable=False),
    sa.Column('approval_amount', sa.BigInteger(), nullable=True),
    sa.Column('payout_account_id', sa.String(length=40), nullable=True),
    sa.Column('last_run_on', sa.Date(), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('minimum_balance >= 0', name=op.f('ck_payout_schedules_minimum_balance_non_negative')),
    sa.CheckConstraint('threshold_amount IS NULL OR threshold_amount > 0',
                       name=op.f('ck_payout_schedules_threshold_positive')),
    sa.CheckConstraint('weekday IS NULL OR (weekday >= 0 AND weekday <= 6)',
                       name=op.f('ck_payout_schedules_weekday_range')),
    sa.ForeignKeyConstraint(['payout_account_id'], ['payout_accounts.id'],
                            name=op.f('fk_payout_schedules_payout_account_id_payout_accounts')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payout_schedules_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_schedules')),
    sa.UniqueConstraint('tenant_id', 'party_kind', 'party_id',
                        name=op.f('uq_payout_schedules_tenant_id_party_kind_party_id'))
    )

    op.create_table('payouts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('payout_account_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('is_automatic', sa.Boolean(), nullable=False),
    sa.Column('automatic_key', sa.String(length=100), nullable=True),
    sa.Column('hold_id', sa.String(length=40), nullable=False),
    sa.Column('approval_id', sa.String(length=40), nullable=True),
    sa.Column('requested_by', sa.String(length=60), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('bank_reference', sa.String(length=100), nullable=True),
    sa.Column('error_code', sa.String(length=100), nullable=True),
    sa.Column('error_message', sa.String(length=500), nullable=True),
    sa.Column('executed_on', sa.Date(), nullable=True),
    sa.Column('returned_on', sa.Date(), nullable=True),
    sa.Column('post_entry_id', sa.String(length=40), nullable=True),
    sa.Column('return_entry_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payouts_amount_positive')),
    sa.ForeignKeyConstraint(['payout_account_id'], ['payout_accounts.id'],
                            name=op.f('fk_payouts_payout_account_id_payout_accounts')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payouts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts')),
    sa.UniqueConstraint('tenant_id', 'automatic_key', name=op.f('uq_payouts_tenant_id_automatic_key'))
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index('ix_payouts_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_payouts_executed', ['tenant_id', 'executed_on'], unique=False)
        batch_op.create_index('ix_payouts_tenant_party', ['tenant_id', 'party_kind', 'party_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index('ix_payouts_tenant_party')
        batch_op.drop_index('ix_payouts_executed')
        batch_op.drop_index('ix_payouts_due')
    op.drop_table('payouts')
    op.drop_table('payout_schedules')
    op.drop_table('payout_settings')
    with op.batch_alter_table('payout_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_payout_accounts_party')
    op.drop_table('payout_accounts')
