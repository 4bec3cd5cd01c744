"""credit servicing

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-26 06:50:24
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import UTCDateTime

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('credit_eod_runs',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('loans', sa.Integer(), nullable=False),
    sa.Column('chunks', sa.Integer(), nullable=False),
    sa.Column('totals', Json(), nullable=False),
    sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('running', 'completed')", name=op.f('ck_credit_eod_runs_status_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_eod_runs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'business_date', name=op.f('pk_credit_eod_runs'))
    )
    op.create_table('credit_provision_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('policy', Json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_provision_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_provision_policies'))
    )
    op.create_table('credit_installments',
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('start_day', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('due_day', sa.Integer(), nullable=False),
    sa.Column('principal_due', sa.BigInteger(), nullable=False),
    sa.Column('interest_due', sa.BigInteger(), nullable=False),
    sa.Column('fees_due', sa.BigInteger(), nullable=False),
    sa.Column('principal_paid', sa.BigInteger(), nullable=False),
    sa.Column('interest_paid', sa.BigInteger(), nullable=False),
    sa.Column('fees_paid', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('late_fee_charged', sa.Boolean(), nullable=False),
    sa.Column('billed_day', sa.Integer(), nullable=True),
    sa.Column('paid_on', sa.Date(), nullable=True),
    sa.CheckConstraint("status IN ('scheduled', 'billed', 'paid', 'cancelled', 'written_off')", name=op.f('ck_credit_installments_status_known')),
    sa.CheckConstraint('principal_due >= 0 AND interest_due >= 0 AND fees_due >= 0 AND principal_paid >= 0 AND interest_paid >= 0 AND fees_paid >= 0', name=op.f('ck_credit_installments_amounts_non_negative')),
    sa.CheckConstraint('principal_paid <= principal_due AND interest_paid <= interest_due AND fees_paid <= fees_due', name=op.f('ck_credit_installments_paid_within_due')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_installments_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_installments_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('loan_id', 'number', name=op.f('pk_credit_installments'))
    )
    with op.batch_alter_table('credit_installments', schema=None) as batch_op:
        batch_op.create_index('ix_credit_installments_due', ['tenant_id', 'status', 'due_day'], unique=False)

    op.create_table('credit_loan_accounts',
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('limit_group', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('disbursed_on', sa.Date(), nullable=False),
    sa.Column('origination_month', sa.String(length=7), nullable=False),
    sa.Column('principal_amount', sa.BigInteger(), nullable=False),
    sa.Column('principal_outstanding', sa.BigInteger(), nullable=False),
    sa.Column('principal_billed', sa.BigInteger(), nullable=False),
    sa.Column('interest_billed', sa.BigInteger(), nullable=False),
    sa.Column('fees_billed', sa.BigInteger(), nullable=False),
    sa.Column('penalty_outstanding', sa.BigInteger(), nullable=False),
    sa.Column('advance_amount', sa.BigInteger(), nullable=False),
    sa.Column('period_number', sa.Integer(), nullable=False),
    sa.Column('period_start_day', sa.Integer(), nullable=False),
    sa.Column('period_due_day', sa.Integer(), nullable=False),
    sa.Column('period_interest', sa.BigInteger(), nullable=False),
    sa.Column('period_accrued', sa.BigInteger(), nullable=False),
    sa.Column('dpd', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.String(length=2), nullable=False),
    sa.Column('max_dpd', sa.Integer(), nullable=False),
    sa.Column('oldest_unpaid_due_day', sa.Integer(), nullable=True),
    sa.Column('provision_amount', sa.BigInteger(), nullable=False),
    sa.Column('pd_ppm', sa.Integer(), nullable=False),
    sa.Column('interest_income', sa.BigInteger(), nullable=False),
    sa.Column('fee_income', sa.BigInteger(), nullable=False),
    sa.Column('penalty_income', sa.BigInteger(), nullable=False),
    sa.Column('paid_amount', sa.BigInteger(), nullable=False),
    sa.Column('written_off_amount', sa.BigInteger(), nullable=False),
    sa.Column('recovered_amount', sa.BigInteger(), nullable=False),
    sa.Column('accrued_today', sa.BigInteger(), nullable=False),
    sa.Column('penalty_today', sa.BigInteger(), nullable=False),
    sa.Column('provision_today', sa.BigInteger(), nullable=False),
    sa.Column('processed_day', sa.Integer(), nullable=False),
    sa.Column('penalty_day', sa.Integer(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("bucket IN ('M0', 'M1', 'M2', 'M3', 'M4')", name=op.f('ck_credit_loan_accounts_bucket_known')),
    sa.CheckConstraint("state IN ('performing', 'overdue', 'paid_off', 'written_off')", name=op.f('ck_credit_loan_accounts_state_known')),
    sa.CheckConstraint('dpd >= 0 AND max_dpd >= dpd', name=op.f('ck_credit_loan_accounts_dpd_ordered')),
    sa.CheckConstraint('period_accrued <= period_interest', name=op.f('ck_credit_loan_accounts_accrued_within_period')),
    sa.CheckConstraint('principal_outstanding >= 0 AND principal_billed >= 0 AND principal_billed <= principal_outstanding AND interest_billed >= 0 AND period_accrued >= 0 AND fees_billed >= 0 AND penalty_outstanding >= 0 AND advance_amount >= 0 AND provision_amount >= 0', name=op.f('ck_credit_loan_accounts_amounts_non_negative')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_loan_accounts_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_loan_accounts_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['product_id'], ['credit_products.id'], name=op.f('fk_credit_loan_accounts_product_id_credit_products')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_loan_accounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('loan_id', name=op.f('pk_credit_loan_accounts'))
    )
    with op.batch_alter_table('credit_loan_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_credit_loan_accounts_applicant', ['tenant_id', 'applicant_id'], unique=False)
        batch_op.create_index('ix_credit_loan_accounts_day', ['tenant_id', 'processed_day', 'loan_id'], unique=False)
        batch_op.create_index('ix_credit_loan_accounts_state', ['tenant_id', 'state', 'bucket'], unique=False)

    op.create_table('credit_loan_month_ends',
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('origination_month', sa.String(length=7), nullable=False),
    sa.Column('months_on_book', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('bucket', sa.String(length=2), nullable=False),
    sa.Column('dpd', sa.Integer(), nullable=False),
    sa.Column('max_dpd', sa.Integer(), nullable=False),
    sa.Column('principal_outstanding', sa.BigInteger(), nullable=False),
    sa.Column('provision_amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_loan_month_ends_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_loan_month_ends_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('loan_id', 'month', name=op.f('pk_credit_loan_month_ends'))
    )
    with op.batch_alter_table('credit_loan_month_ends', schema=None) as batch_op:
        batch_op.create_index('ix_credit_loan_month_ends_month', ['tenant_id', 'month'], unique=False)
        batch_op.create_index('ix_credit_loan_month_ends_vintage', ['tenant_id', 'origination_month', 'month'], unique=False)

    op.create_table('credit_repayments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('allocation', Json(), nullable=False),
    sa.Column('details', Json(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('regular', 'prepayment', 'payoff', 'recovery', 'advance')", name=op.f('ck_credit_repayments_kind_known')),
    sa.CheckConstraint('amount >= 1', name=op.f('ck_credit_repayments_amount_positive')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_repayments_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_repayments_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_repayments')),
    sa.UniqueConstraint('tenant_id', 'loan_id', 'reference', name=op.f('uq_credit_repayments_tenant_id_loan_id_reference'))
    )
    with op.batch_alter_table('credit_repayments', schema=None) as batch_op:
        batch_op.create_index('ix_credit_repayments_date', ['tenant_id', 'business_date'], unique=False)
        batch_op.create_index('ix_credit_repayments_loan', ['tenant_id', 'loan_id', 'id'], unique=False)

    op.create_table('credit_schedule_changes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('repayment_id', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('before', Json(), nullable=False),
    sa.Column('after', Json(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_schedule_changes_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_schedule_changes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_schedule_changes'))
    )
    with op.batch_alter_table('credit_schedule_changes', schema=None) as batch_op:
        batch_op.create_index('ix_credit_schedule_changes_loan', ['tenant_id', 'loan_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('credit_schedule_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_schedule_changes_loan')

    op.drop_table('credit_schedule_changes')
    with op.batch_alter_table('credit_repayments', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_repayments_loan')
        batch_op.drop_index('ix_credit_repayments_date')

    op.drop_table('credit_repayments')
    with op.batch_alter_table('credit_loan_month_ends', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_loan_month_ends_vintage')
        batch_op.drop_index('ix_credit_loan_month_ends_month')

    op.drop_table('credit_loan_month_ends')
    with op.batch_alter_table('credit_loan_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_loan_accounts_state')
        batch_op.drop_index('ix_credit_loan_accounts_day')
        batch_op.drop_index('ix_credit_loan_accounts_applicant')

    op.drop_table('credit_loan_accounts')
    with op.batch_alter_table('credit_installments', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_installments_due')

    op.drop_table('credit_installments')
    op.drop_table('credit_provision_policies')
    op.drop_table('credit_eod_runs')
