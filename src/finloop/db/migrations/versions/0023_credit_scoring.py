"""credit scoring: applicants, consents, bureau reports, the credit model registry, scores and rating policies

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26 03:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import ExactDecimal, UTCDateTime

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('credit_applicants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('declared_income_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('employment', sa.String(length=20), nullable=False),
    sa.Column('national_id_sealed', sa.Text(), nullable=False),
    sa.Column('national_id_index', sa.String(length=64), nullable=False),
    sa.Column('national_id_last4', sa.String(length=4), nullable=False),
    sa.Column('phone_sealed', sa.Text(), nullable=True),
    sa.Column('phone_index', sa.String(length=64), nullable=True),
    sa.Column('phone_last4', sa.String(length=4), nullable=True),
    sa.Column('bank_account_sealed', sa.Text(), nullable=True),
    sa.Column('bank_account_index', sa.String(length=64), nullable=True),
    sa.Column('bank_account_last4', sa.String(length=4), nullable=True),
    sa.Column('flags', Json(), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("party_kind IN ('customer', 'merchant')", name=op.f('ck_credit_applicants_party_kind_known')),
    sa.CheckConstraint('declared_income_amount >= 0', name=op.f('ck_credit_applicants_income_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_applicants_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_applicants')),
    sa.UniqueConstraint('tenant_id', 'party_kind', 'party_id', name=op.f('uq_credit_applicants_tenant_id_party_kind_party_id'))
    )
    with op.batch_alter_table('credit_applicants', schema=None) as batch_op:
        batch_op.create_index('ix_credit_applicants_bank_account', ['tenant_id', 'bank_account_index'], unique=False)
        batch_op.create_index('ix_credit_applicants_national_id', ['tenant_id', 'national_id_index'], unique=False)
        batch_op.create_index('ix_credit_applicants_phone', ['tenant_id', 'phone_index'], unique=False)

    op.create_table('credit_models',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('dataset', sa.String(length=40), nullable=False),
    sa.Column('features', Json(), nullable=False),
    sa.Column('tables', Json(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('scaling', Json(), nullable=False),
    sa.Column('metrics', Json(), nullable=False),
    sa.Column('params', Json(), nullable=False),
    sa.Column('reference', Json(), nullable=False),
    sa.Column('data_from', UTCDateTime(timezone=True), nullable=True),
    sa.Column('data_to', UTCDateTime(timezone=True), nullable=True),
    sa.Column('drift', Json(), nullable=True),
    sa.Column('drift_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('promoted_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('retired_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('scorecard', 'gbm')", name=op.f('ck_credit_models_kind_known')),
    sa.CheckConstraint("status IN ('draft', 'challenger', 'champion', 'retired')", name=op.f('ck_credit_models_status_known')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_credit_models_version_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_models_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_models')),
    sa.UniqueConstraint('tenant_id', 'name', 'version', 'kind', name=op.f('uq_credit_models_tenant_id_name_version_kind'))
    )
    with op.batch_alter_table('credit_models', schema=None) as batch_op:
        batch_op.create_index('ix_credit_models_tenant_status', ['tenant_id', 'name', 'status'], unique=False)

    op.create_table('credit_rating_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('bands', Json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_rating_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_rating_policies'))
    )
    op.create_table('credit_consents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('scope', Json(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('evidence', sa.String(length=200), nullable=False),
    sa.Column('given_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('expires_at > given_at', name=op.f('ck_credit_consents_expires_after_given')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_consents_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_consents_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_consents'))
    )
    with op.batch_alter_table('credit_consents', schema=None) as batch_op:
        batch_op.create_index('ix_credit_consents_applicant', ['tenant_id', 'applicant_id', 'id'], unique=False)

    op.create_table('credit_scores',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('model_id', sa.String(length=40), nullable=False),
    sa.Column('model_name', sa.String(length=40), nullable=False),
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('model_kind', sa.String(length=12), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('probability', ExactDecimal(precision=38, scale=18), nullable=False),
    sa.Column('rating', sa.String(length=8), nullable=False),
    sa.Column('reasons', Json(), nullable=False),
    sa.Column('features', Json(), nullable=False),
    sa.Column('challenger', Json(), nullable=True),
    sa.Column('mode', sa.String(length=12), nullable=False),
    sa.Column('batch_month', sa.String(length=7), nullable=True),
    sa.Column('as_of', UTCDateTime(timezone=True), nullable=False),
    sa.Column('scored_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(mode = 'batch') = (batch_month IS NOT NULL)", name=op.f('ck_credit_scores_batch_has_month')),
    sa.CheckConstraint("mode IN ('real_time', 'batch')", name=op.f('ck_credit_scores_mode_known')),
    sa.CheckConstraint("rating IN ('A', 'B', 'C', 'D', 'reject')", name=op.f('ck_credit_scores_rating_known')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_scores_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['model_id'], ['credit_models.id'], name=op.f('fk_credit_scores_model_id_credit_models')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_scores_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_scores')),
    sa.UniqueConstraint('tenant_id', 'applicant_id', 'model_name', 'batch_month', name=op.f('uq_credit_scores_tenant_id_applicant_id_model_name_batch_month'))
    )
    with op.batch_alter_table('credit_scores', schema=None) as batch_op:
        batch_op.create_index('ix_credit_scores_applicant', ['tenant_id', 'applicant_id', 'scored_at'], unique=False)
        batch_op.create_index('ix_credit_scores_model', ['tenant_id', 'model_id', 'scored_at'], unique=False)

    op.create_table('credit_bureau_reports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('consent_id', sa.String(length=40), nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('requested_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('provider_reference', sa.String(length=100), nullable=True),
    sa.Column('bureau_score', sa.Integer(), nullable=True),
    sa.Column('is_thin_file', sa.Boolean(), nullable=True),
    sa.Column('open_loans', sa.Integer(), nullable=True),
    sa.Column('open_loan_balance_amount', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('enquiries_30d', sa.Integer(), nullable=True),
    sa.Column('enquiries_90d', sa.Integer(), nullable=True),
    sa.Column('delinquencies_24m', sa.Integer(), nullable=True),
    sa.Column('report', Json(), nullable=True),
    sa.Column('error_code', sa.String(length=100), nullable=True),
    sa.Column('error_message', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'completed', 'failed')", name=op.f('ck_credit_bureau_reports_status_known')),
    sa.CheckConstraint('open_loan_balance_amount IS NULL OR open_loan_balance_amount >= 0', name=op.f('ck_credit_bureau_reports_balance_non_negative')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_bureau_reports_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['consent_id'], ['credit_consents.id'], name=op.f('fk_credit_bureau_reports_consent_id_credit_consents')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_bureau_reports_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_bureau_reports'))
    )
    with op.batch_alter_table('credit_bureau_reports', schema=None) as batch_op:
        batch_op.create_index('ix_credit_bureau_reports_applicant', ['tenant_id', 'applicant_id', 'requested_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_bureau_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_bureau_reports_applicant')

    op.drop_table('credit_bureau_reports')
    with op.batch_alter_table('credit_scores', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_scores_model')
        batch_op.drop_index('ix_credit_scores_applicant')

    op.drop_table('credit_scores')
    with op.batch_alter_table('credit_consents', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_consents_applicant')

    op.drop_table('credit_consents')
    op.drop_table('credit_rating_policies')
    with op.batch_alter_table('credit_models', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_models_tenant_status')

    op.drop_table('credit_models')
    with op.batch_alter_table('credit_applicants', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_applicants_phone')
        batch_op.drop_index('ix_credit_applicants_national_id')
        batch_op.drop_index('ix_credit_applicants_bank_account')

    op.drop_table('credit_applicants')
