"""credit loan outcomes

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-26 07:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import UTCDateTime

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('credit_outcome_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('policy', Json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_outcome_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_outcome_policies'))
    )
    op.create_table('credit_loan_outcomes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('application_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('score_id', sa.String(length=40), nullable=True),
    sa.Column('label', sa.String(length=12), nullable=False),
    sa.Column('bad', sa.Boolean(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('principal_amount', sa.BigInteger(), nullable=False),
    sa.Column('disbursed_on', sa.Date(), nullable=False),
    sa.Column('origination_month', sa.String(length=7), nullable=False),
    sa.Column('window_ends_on', sa.Date(), nullable=False),
    sa.Column('labelled_on', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('recovered_on', sa.Date(), nullable=True),
    sa.Column('max_dpd', sa.Integer(), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('default_dpd', sa.Integer(), nullable=False),
    sa.Column('written_off_amount', sa.BigInteger(), nullable=False),
    sa.Column('recovered_amount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(label = 'default') = bad", name=op.f('ck_credit_loan_outcomes_bad_is_default')),
    sa.CheckConstraint("label IN ('on_time', 'late', 'default', 'recovered')", name=op.f('ck_credit_loan_outcomes_label_known')),
    sa.CheckConstraint("recovered_on IS NULL OR label = 'recovered'", name=op.f('ck_credit_loan_outcomes_recovered_on_recovered')),
    sa.CheckConstraint('principal_amount >= 0 AND written_off_amount >= 0 AND recovered_amount >= 0 AND max_dpd >= 0 AND grace_days >= 0', name=op.f('ck_credit_loan_outcomes_amounts_non_negative')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_loan_outcomes_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['application_id'], ['credit_applications.id'], name=op.f('fk_credit_loan_outcomes_application_id_credit_applications')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_loan_outcomes_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['product_id'], ['credit_products.id'], name=op.f('fk_credit_loan_outcomes_product_id_credit_products')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_loan_outcomes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_loan_outcomes')),
    sa.UniqueConstraint('tenant_id', 'loan_id', name=op.f('uq_credit_loan_outcomes_tenant_id_loan_id'))
    )
    with op.batch_alter_table('credit_loan_outcomes', schema=None) as batch_op:
        batch_op.create_index('ix_credit_loan_outcomes_disbursed', ['tenant_id', 'disbursed_on'], unique=False)
        batch_op.create_index('ix_credit_loan_outcomes_label', ['tenant_id', 'label'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_loan_outcomes', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_loan_outcomes_label')
        batch_op.drop_index('ix_credit_loan_outcomes_disbursed')

    op.drop_table('credit_loan_outcomes')
    op.drop_table('credit_outcome_policies')
