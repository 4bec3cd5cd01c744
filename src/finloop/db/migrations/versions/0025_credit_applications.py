"""credit applications, automatic review and contracts

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-26 03:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import UTCDateTime

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('credit_application_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('policy', Json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_credit_application_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_application_policies'))
    )
    op.create_table('credit_applications',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('national_id_index', sa.String(length=64), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('product_code', sa.String(length=40), nullable=False),
    sa.Column('principal_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('term', sa.Integer(), nullable=False),
    sa.Column('term_unit', sa.String(length=8), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('auto_outcome', sa.String(length=8), nullable=False),
    sa.Column('final_outcome', sa.String(length=8), nullable=True),
    sa.Column('reasons', Json(), nullable=False),
    sa.Column('details', Json(), nullable=False),
    sa.Column('score_id', sa.String(length=40), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('rating', sa.String(length=8), nullable=True),
    sa.Column('risk_decision_id', sa.String(length=40), nullable=True),
    sa.Column('case_id', sa.String(length=40), nullable=True),
    sa.Column('reserved_amount', sa.BigInteger(), nullable=False),
    sa.Column('latency_us', sa.BigInteger(), nullable=False),
    sa.Column('submitted_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('submitted', 'in_review', 'approved', 'declined', 'contract_signed', "
                       "'cancelled', 'expired')", name=op.f('ck_credit_applications_status_known')),
    sa.CheckConstraint("auto_outcome IN ('approve', 'decline', 'review')",
                       name=op.f('ck_credit_applications_auto_outcome_known')),
    sa.CheckConstraint("final_outcome IS NULL OR final_outcome IN ('approve', 'decline')",
                       name=op.f('ck_credit_applications_final_outcome_known')),
    sa.CheckConstraint('principal_amount >= 1 AND reserved_amount >= 0 AND term >= 1',
                       name=op.f('ck_credit_applications_amounts_positive')),
    sa.CheckConstraint('latency_us >= 0', name=op.f('ck_credit_applications_latency_non_negative')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'],
                            name=op.f('fk_credit_applications_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['product_id'], ['credit_products.id'],
                            name=op.f('fk_credit_applications_product_id_credit_products')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_applications_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_applications'))
    )
    op.create_index('ix_credit_applications_applicant', 'credit_applications',
                    ['tenant_id', 'applicant_id', 'submitted_at'], unique=False)
    op.create_index('ix_credit_applications_national_id', 'credit_applications',
                    ['tenant_id', 'national_id_index', 'submitted_at'], unique=False)
    op.create_index('ix_credit_applications_submitted', 'credit_applications', ['tenant_id', 'submitted_at'],
                    unique=False)
    op.create_table('credit_contracts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('application_id', sa.String(length=40), nullable=False),
    sa.Column('template', sa.String(length=60), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('start_on', sa.Date(), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_sha256', sa.String(length=64), nullable=True),
    sa.Column('accepted_channel', sa.String(length=12), nullable=True),
    sa.Column('accepted_ip', sa.String(length=45), nullable=True),
    sa.CheckConstraint("status IN ('issued', 'signed', 'void')", name=op.f('ck_credit_contracts_status_known')),
    sa.CheckConstraint("(status = 'signed') = (accepted_at IS NOT NULL)",
                       name=op.f('ck_credit_contracts_signed_has_acceptance')),
    sa.ForeignKeyConstraint(['application_id'], ['credit_applications.id'],
                            name=op.f('fk_credit_contracts_application_id_credit_applications')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_contracts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_contracts')),
    sa.UniqueConstraint('tenant_id', 'application_id',
                        name=op.f('uq_credit_contracts_tenant_id_application_id'))
    )


def downgrade() -> None:
    op.drop_table('credit_contracts')
    op.drop_index('ix_credit_applications_submitted', table_name='credit_applications')
    op.drop_index('ix_credit_applications_national_id', table_name='credit_applications')
    op.drop_index('ix_credit_applications_applicant', table_name='credit_applications')
    op.drop_table('credit_applications')
    op.drop_table('credit_application_policies')
