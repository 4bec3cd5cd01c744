"""credit repayment channels: repayment payments, debit mandates, direct debits and their policy

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-26 07:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import UTCDateTime

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('credit_direct_debit_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('retry_offsets_hours', Json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('max_attempts >= 1 AND max_attempts <= 10',
                       name=op.f('ck_credit_direct_debit_policies_max_attempts_range')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_credit_direct_debit_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_direct_debit_policies'))
    )
    op.create_table('credit_debit_mandates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=True),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('card_id', sa.String(length=40), nullable=False),
    sa.Column('card_last4', sa.String(length=4), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=True),
    sa.Column('max_amount', sa.BigInteger(), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('active_key', sa.String(length=100), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_by', sa.String(length=60), nullable=True),
    sa.Column('revoked_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("method IN ('card')", name=op.f('ck_credit_debit_mandates_method_known')),
    sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f('ck_credit_debit_mandates_status_known')),
    sa.CheckConstraint('max_amount IS NULL OR max_amount >= 1',
                       name=op.f('ck_credit_debit_mandates_max_amount_positive')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'],
                            name=op.f('fk_credit_debit_mandates_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'],
                            name=op.f('fk_credit_debit_mandates_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_debit_mandates_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_debit_mandates')),
    sa.UniqueConstraint('active_key', name=op.f('uq_credit_debit_mandates_active_key'))
    )
    with op.batch_alter_table('credit_debit_mandates', schema=None) as batch_op:
        batch_op.create_index('ix_credit_debit_mandates_applicant', ['tenant_id', 'applicant_id', 'status'],
                              unique=False)

    op.create_table('credit_repayment_payments',
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('direct_debit_id', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('repayment_id', sa.String(length=40), nullable=True),
    sa.Column('error_code', sa.String(length=100), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("source IN ('payment', 'autodebit')", name=op.f('ck_credit_repayment_payments_source_known')),
    sa.CheckConstraint("status IN ('pending', 'applied', 'unapplied', 'failed')",
                       name=op.f('ck_credit_repayment_payments_status_known')),
    sa.CheckConstraint('amount >= 1', name=op.f('ck_credit_repayment_payments_amount_positive')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'],
                            name=op.f('fk_credit_repayment_payments_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'],
                            name=op.f('fk_credit_repayment_payments_payment_id_payments')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_credit_repayment_payments_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('payment_id', name=op.f('pk_credit_repayment_payments'))
    )
    with op.batch_alter_table('credit_repayment_payments', schema=None) as batch_op:
        batch_op.create_index('ix_credit_repayment_payments_loan', ['tenant_id', 'loan_id', 'created_at'],
                              unique=False)
        batch_op.create_index('ix_credit_repayment_payments_status', ['status', 'created_at'], unique=False)

    op.create_table('credit_direct_debits',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('mandate_id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('attempt_number', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('failure_code', sa.String(length=100), nullable=True),
    sa.Column('next_retry_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('cycle_started_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'processing', 'succeeded', 'failed')",
                       name=op.f('ck_credit_direct_debits_status_known')),
    sa.CheckConstraint('amount >= 1', name=op.f('ck_credit_direct_debits_amount_positive')),
    sa.CheckConstraint('attempt_number >= 1', name=op.f('ck_credit_direct_debits_attempt_number_positive')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_direct_debits_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['mandate_id'], ['credit_debit_mandates.id'],
                            name=op.f('fk_credit_direct_debits_mandate_id_credit_debit_mandates')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_credit_direct_debits_payment_id_payments')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_direct_debits_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_direct_debits')),
    sa.UniqueConstraint('payment_id', name=op.f('uq_credit_direct_debits_payment_id')),
    sa.UniqueConstraint('tenant_id', 'loan_id', 'due_on', 'attempt_number',
                        name=op.f('uq_credit_direct_debits_tenant_id_loan_id_due_on_attempt_number'))
    )
    with op.batch_alter_table('credit_direct_debits', schema=None) as batch_op:
        batch_op.create_index('ix_credit_direct_debits_open', ['status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_direct_debits', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_direct_debits_open')

    op.drop_table('credit_direct_debits')
    with op.batch_alter_table('credit_repayment_payments', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_repayment_payments_status')
        batch_op.drop_index('ix_credit_repayment_payments_loan')

    op.drop_table('credit_repayment_payments')
    with op.batch_alter_table('credit_debit_mandates', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_debit_mandates_applicant')

    op.drop_table('credit_debit_mandates')
    op.drop_table('credit_direct_debit_policies')
