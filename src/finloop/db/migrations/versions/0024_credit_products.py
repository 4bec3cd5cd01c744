"""credit products, limits and credit lines

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-26 04:10:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import ExactDecimal, UTCDateTime

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('credit_limit_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('policy', Json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_limit_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_limit_policies'))
    )
    op.create_table('credit_products',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('rate', ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('rate_basis', sa.String(length=8), nullable=False),
    sa.Column('day_count', sa.String(length=16), nullable=True),
    sa.Column('term_unit', sa.String(length=8), nullable=False),
    sa.Column('terms', Json(), nullable=True),
    sa.Column('min_term', sa.Integer(), nullable=False),
    sa.Column('max_term', sa.Integer(), nullable=False),
    sa.Column('min_principal_amount', sa.BigInteger(), nullable=False),
    sa.Column('max_principal_amount', sa.BigInteger(), nullable=False),
    sa.Column('rounding', sa.String(length=12), nullable=False),
    sa.Column('upfront_fee_rate', ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('upfront_fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('installment_fee_rate', ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('installment_fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('late_fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('penalty_rate', ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('allocation_order', Json(), nullable=False),
    sa.Column('prepayment', sa.String(length=12), nullable=False),
    sa.Column('prepayment_fee_rate', ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('write_off_after_days', sa.Integer(), nullable=False),
    sa.Column('write_off_below_amount', sa.BigInteger(), nullable=False),
    sa.Column('subsidy_payer', sa.String(length=12), nullable=True),
    sa.Column('merchant_fee_rate', ExactDecimal(precision=38, scale=18), nullable=True),
    sa.Column('limit_group', sa.String(length=40), nullable=False),
    sa.Column('restores_limit', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('superseded_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('retired_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('installment', 'bnpl', 'cash', 'revolving')", name=op.f('ck_credit_products_kind_known')),
    sa.CheckConstraint("status IN ('active', 'superseded', 'retired')", name=op.f('ck_credit_products_status_known')),
    sa.CheckConstraint('grace_days >= 0', name=op.f('ck_credit_products_grace_days_non_negative')),
    sa.CheckConstraint('min_principal_amount >= 1 AND max_principal_amount >= min_principal_amount', name=op.f('ck_credit_products_principal_ordered')),
    sa.CheckConstraint('min_term >= 1 AND max_term >= min_term', name=op.f('ck_credit_products_terms_ordered')),
    sa.CheckConstraint('rate >= 0 AND penalty_rate >= 0', name=op.f('ck_credit_products_rates_non_negative')),
    sa.CheckConstraint('upfront_fee_amount >= 0 AND installment_fee_amount >= 0 AND late_fee_amount >= 0 AND write_off_below_amount >= 0', name=op.f('ck_credit_products_fees_non_negative')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_credit_products_version_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_products_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_products')),
    sa.UniqueConstraint('tenant_id', 'code', 'version', name=op.f('uq_credit_products_tenant_id_code_version'))
    )
    with op.batch_alter_table('credit_products', schema=None) as batch_op:
        batch_op.create_index('ix_credit_products_code', ['tenant_id', 'code', 'status'], unique=False)

    op.create_table('credit_lines',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('frozen_reason', sa.String(length=12), nullable=True),
    sa.Column('limit_amount', sa.BigInteger(), nullable=False),
    sa.Column('reserved_amount', sa.BigInteger(), nullable=False),
    sa.Column('used_amount', sa.BigInteger(), nullable=False),
    sa.Column('requested_amount', sa.BigInteger(), nullable=True),
    sa.Column('on_time_repayments', sa.Integer(), nullable=False),
    sa.Column('overdue_days', sa.Integer(), nullable=False),
    sa.Column('calculation', Json(), nullable=False),
    sa.Column('reviewed_on', sa.Date(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'frozen', 'closed')", name=op.f('ck_credit_lines_status_known')),
    sa.CheckConstraint('limit_amount >= 0 AND reserved_amount >= 0 AND used_amount >= 0', name=op.f('ck_credit_lines_amounts_non_negative')),
    sa.CheckConstraint('on_time_repayments >= 0 AND overdue_days >= 0', name=op.f('ck_credit_lines_counters_non_negative')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_lines_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_lines_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_lines')),
    sa.UniqueConstraint('tenant_id', 'applicant_id', name=op.f('uq_credit_lines_tenant_id_applicant_id'))
    )
    with op.batch_alter_table('credit_lines', schema=None) as batch_op:
        batch_op.create_index('ix_credit_lines_review', ['tenant_id', 'reviewed_on'], unique=False)

    op.create_table('credit_limit_changes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('line_id', sa.String(length=40), nullable=False),
    sa.Column('limit_group', sa.String(length=40), nullable=True),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('before_amount', sa.BigInteger(), nullable=True),
    sa.Column('after_amount', sa.BigInteger(), nullable=False),
    sa.Column('before_status', sa.String(length=12), nullable=True),
    sa.Column('after_status', sa.String(length=12), nullable=False),
    sa.Column('details', Json(), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=True),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('granted', 'raised', 'lowered', 'frozen', 'unfrozen')", name=op.f('ck_credit_limit_changes_kind_known')),
    sa.ForeignKeyConstraint(['line_id'], ['credit_lines.id'], name=op.f('fk_credit_limit_changes_line_id_credit_lines')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_limit_changes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_limit_changes'))
    )
    with op.batch_alter_table('credit_limit_changes', schema=None) as batch_op:
        batch_op.create_index('ix_credit_limit_changes_line', ['tenant_id', 'line_id', 'id'], unique=False)

    op.create_table('credit_line_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('line_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('limit_group', sa.String(length=40), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('days_past_due', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('reserve', 'consume', 'release', 'restore', 'on_time', 'late', 'overdue')", name=op.f('ck_credit_line_events_kind_known')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_credit_line_events_amount_non_negative')),
    sa.ForeignKeyConstraint(['line_id'], ['credit_lines.id'], name=op.f('fk_credit_line_events_line_id_credit_lines')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_line_events_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_line_events')),
    sa.UniqueConstraint('tenant_id', 'line_id', 'kind', 'reference', name=op.f('uq_credit_line_events_tenant_id_line_id_kind_reference'))
    )
    op.create_table('credit_sub_limits',
    sa.Column('line_id', sa.String(length=40), nullable=False),
    sa.Column('limit_group', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('limit_amount', sa.BigInteger(), nullable=False),
    sa.Column('reserved_amount', sa.BigInteger(), nullable=False),
    sa.Column('used_amount', sa.BigInteger(), nullable=False),
    sa.Column('is_revolving', sa.Boolean(), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'frozen')", name=op.f('ck_credit_sub_limits_status_known')),
    sa.CheckConstraint('limit_amount >= 0 AND reserved_amount >= 0 AND used_amount >= 0', name=op.f('ck_credit_sub_limits_amounts_non_negative')),
    sa.ForeignKeyConstraint(['line_id'], ['credit_lines.id'], name=op.f('fk_credit_sub_limits_line_id_credit_lines')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_sub_limits_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('line_id', 'limit_group', name=op.f('pk_credit_sub_limits'))
    )


def downgrade() -> None:
    op.drop_table('credit_sub_limits')
    op.drop_table('credit_line_events')
    with op.batch_alter_table('credit_limit_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_limit_changes_line')

    op.drop_table('credit_limit_changes')
    with op.batch_alter_table('credit_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_lines_review')

    op.drop_table('credit_lines')
    with op.batch_alter_table('credit_products', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_products_code')

    op.drop_table('credit_products')
    op.drop_table('credit_limit_policies')
