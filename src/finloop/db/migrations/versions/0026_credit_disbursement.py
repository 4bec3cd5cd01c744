"""credit disbursement, funding sources and loans

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-26 03:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import ExactDecimal, UTCDateTime

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('credit_funding_sources',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('annual_rate', ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('quota_amount', sa.BigInteger(), nullable=False),
    sa.Column('used_amount', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('accrual_base', ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('accrued_amount', sa.BigInteger(), nullable=False),
    sa.Column('accrued_through', sa.Date(), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('own_reserve', 'partner_bank')", name=op.f('ck_credit_funding_sources_kind_known')),
    sa.CheckConstraint('annual_rate >= 0', name=op.f('ck_credit_funding_sources_rate_non_negative')),
    sa.CheckConstraint('quota_amount >= 0 AND used_amount >= 0 AND used_amount <= quota_amount',
                       name=op.f('ck_credit_funding_sources_quota_respected')),
    sa.CheckConstraint('accrued_amount >= 0', name=op.f('ck_credit_funding_sources_accrued_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_funding_sources_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_funding_sources')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_credit_funding_sources_tenant_id_code'))
    )
    op.create_table('credit_loans',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('application_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('principal_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('schedule', Json(), nullable=False),
    sa.Column('funding_source_id', sa.String(length=40), nullable=False),
    sa.Column('funding_choice', Json(), nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=True),
    sa.Column('merchant_fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('entry_ids', Json(), nullable=False),
    sa.Column('failure_code', sa.String(length=40), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('disbursed_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending_disbursement', 'disbursing', 'active', 'failed')",
                       name=op.f('ck_credit_loans_status_known')),
    sa.CheckConstraint("target IN ('customer_account', 'merchant')", name=op.f('ck_credit_loans_target_known')),
    sa.CheckConstraint('principal_amount >= 1 AND merchant_fee_amount >= 0',
                       name=op.f('ck_credit_loans_amounts_positive')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'],
                            name=op.f('fk_credit_loans_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['application_id'], ['credit_applications.id'],
                            name=op.f('fk_credit_loans_application_id_credit_applications')),
    sa.ForeignKeyConstraint(['funding_source_id'], ['credit_funding_sources.id'],
                            name=op.f('fk_credit_loans_funding_source_id_credit_funding_sources')),
    sa.ForeignKeyConstraint(['product_id'], ['credit_products.id'],
                            name=op.f('fk_credit_loans_product_id_credit_products')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_loans_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_loans')),
    sa.UniqueConstraint('tenant_id', 'application_id', name=op.f('uq_credit_loans_tenant_id_application_id'))
    )
    op.create_index('ix_credit_loans_source', 'credit_loans', ['tenant_id', 'funding_source_id', 'status'],
                    unique=False)
    op.create_table('credit_disbursements',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('bank_reference', sa.String(length=80), nullable=True),
    sa.Column('error_code', sa.String(length=60), nullable=True),
    sa.Column('queried', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('sending', 'succeeded', 'failed', 'unknown', 'booked')",
                       name=op.f('ck_credit_disbursements_status_known')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_disbursements_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_disbursements_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_disbursements'))
    )
    op.create_index('ix_credit_disbursements_loan', 'credit_disbursements', ['tenant_id', 'loan_id'], unique=False)
    op.create_table('credit_disbursement_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_credit_disbursement_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_disbursement_policies'))
    )


def downgrade() -> None:
    op.drop_table('credit_disbursement_policies')
    op.drop_index('ix_credit_disbursements_loan', table_name='credit_disbursements')
    op.drop_table('credit_disbursements')
    op.drop_index('ix_credit_loans_source', table_name='credit_loans')
    op.drop_table('credit_loans')
    op.drop_table('credit_funding_sources')
