"""credit collections: strategy, cases, actions, notes, promises to pay, reminders and bureau exports

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-26 07:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import UTCDateTime

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('credit_bureau_exports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('cycle', sa.String(length=7), nullable=False),
    sa.Column('layout_version', sa.String(length=12), nullable=False),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.Column('totals', Json(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('record_count >= 0', name=op.f('ck_credit_bureau_exports_count_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_bureau_exports_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_bureau_exports')),
    sa.UniqueConstraint('tenant_id', 'cycle', name=op.f('uq_credit_bureau_exports_tenant_id_cycle'))
    )
    with op.batch_alter_table('credit_bureau_exports', schema=None) as batch_op:
        batch_op.create_index('ix_credit_bureau_exports_tenant', ['tenant_id', 'id'], unique=False)

    op.create_table('credit_collection_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('policy', Json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_collection_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_collection_policies'))
    )
    op.create_table('credit_collection_cases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('queue', sa.String(length=12), nullable=False),
    sa.Column('bucket', sa.String(length=2), nullable=False),
    sa.Column('dpd', sa.Integer(), nullable=False),
    sa.Column('max_dpd', sa.Integer(), nullable=False),
    sa.Column('actioned_dpd', sa.Integer(), nullable=False),
    sa.Column('overdue_amount', sa.BigInteger(), nullable=False),
    sa.Column('assignee_id', sa.String(length=40), nullable=True),
    sa.Column('assigned_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalated_on', sa.Date(), nullable=True),
    sa.Column('escalation_reason', sa.String(length=40), nullable=True),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("bucket IN ('M0', 'M1', 'M2', 'M3', 'M4')", name=op.f('ck_credit_collection_cases_bucket_known')),
    sa.CheckConstraint("queue IN ('automatic', 'manual')", name=op.f('ck_credit_collection_cases_queue_known')),
    sa.CheckConstraint("status IN ('open', 'cured', 'written_off')", name=op.f('ck_credit_collection_cases_status_known')),
    sa.CheckConstraint('dpd >= 0 AND max_dpd >= dpd AND actioned_dpd >= 0', name=op.f('ck_credit_collection_cases_dpd_ordered')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_collection_cases_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_collection_cases_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_collection_cases_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_collection_cases'))
    )
    with op.batch_alter_table('credit_collection_cases', schema=None) as batch_op:
        batch_op.create_index('ix_credit_collection_cases_loan', ['tenant_id', 'loan_id'], unique=False)
        batch_op.create_index('ix_credit_collection_cases_status', ['tenant_id', 'status', 'queue', 'id'], unique=False)
        batch_op.create_index('uq_credit_collection_cases_open_loan', ['tenant_id', 'loan_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))

    op.create_table('credit_reminders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('installment_number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('amount_due', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('sms_status', sa.String(length=12), nullable=False),
    sa.Column('sms_reference', sa.String(length=100), nullable=True),
    sa.Column('error_code', sa.String(length=60), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('upcoming', 'due')", name=op.f('ck_credit_reminders_kind_known')),
    sa.CheckConstraint("sms_status IN ('pending', 'sent', 'failed', 'skipped')", name=op.f('ck_credit_reminders_sms_status_known')),
    sa.CheckConstraint('amount_due >= 0', name=op.f('ck_credit_reminders_amount_non_negative')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_reminders_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_reminders_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_reminders')),
    sa.UniqueConstraint('loan_id', 'installment_number', 'kind', name=op.f('uq_credit_reminders_loan_id_installment_number_kind'))
    )
    with op.batch_alter_table('credit_reminders', schema=None) as batch_op:
        batch_op.create_index('ix_credit_reminders_pending', ['tenant_id', 'sms_status'], unique=False)
        batch_op.create_index('ix_credit_reminders_tenant', ['tenant_id', 'id'], unique=False)

    op.create_table('credit_collection_actions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('dpd', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.String(length=2), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('provider_reference', sa.String(length=100), nullable=True),
    sa.Column('error_code', sa.String(length=60), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('sms', 'call', 'escalate')", name=op.f('ck_credit_collection_actions_kind_known')),
    sa.CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped', 'done')", name=op.f('ck_credit_collection_actions_status_known')),
    sa.ForeignKeyConstraint(['case_id'], ['credit_collection_cases.id'], name=op.f('fk_credit_collection_actions_case_id_credit_collection_cases')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_collection_actions_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_collection_actions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_collection_actions')),
    sa.UniqueConstraint('case_id', 'kind', 'business_date', name=op.f('uq_credit_collection_actions_case_id_kind_business_date'))
    )
    with op.batch_alter_table('credit_collection_actions', schema=None) as batch_op:
        batch_op.create_index('ix_credit_collection_actions_case', ['tenant_id', 'case_id', 'id'], unique=False)
        batch_op.create_index('ix_credit_collection_actions_pending', ['tenant_id', 'status'], unique=False)

    op.create_table('credit_collection_notes',
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('author', sa.String(length=60), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['credit_collection_cases.id'], name=op.f('fk_credit_collection_notes_case_id_credit_collection_cases')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_collection_notes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('case_id', 'seq', name=op.f('pk_credit_collection_notes'))
    )
    op.create_table('credit_collection_promises',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('promised_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('paid_amount', sa.BigInteger(), nullable=False),
    sa.Column('evaluated_on', sa.Date(), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'kept', 'broken', 'cancelled')", name=op.f('ck_credit_collection_promises_status_known')),
    sa.CheckConstraint('amount >= 1 AND paid_amount >= 0', name=op.f('ck_credit_collection_promises_amounts_valid')),
    sa.ForeignKeyConstraint(['case_id'], ['credit_collection_cases.id'], name=op.f('fk_credit_collection_promises_case_id_credit_collection_cases')),
    sa.ForeignKeyConstraint(['loan_id'], ['credit_loans.id'], name=op.f('fk_credit_collection_promises_loan_id_credit_loans')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_collection_promises_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_collection_promises'))
    )
    with op.batch_alter_table('credit_collection_promises', schema=None) as batch_op:
        batch_op.create_index('ix_credit_collection_promises_case', ['tenant_id', 'case_id', 'id'], unique=False)
        batch_op.create_index('ix_credit_collection_promises_status', ['tenant_id', 'status', 'promised_on'], unique=False)
        batch_op.create_index('uq_credit_collection_promises_pending', ['case_id'], unique=True, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    with op.batch_alter_table('credit_collection_promises', schema=None) as batch_op:
        batch_op.drop_index('uq_credit_collection_promises_pending', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_credit_collection_promises_status')
        batch_op.drop_index('ix_credit_collection_promises_case')

    op.drop_table('credit_collection_promises')
    op.drop_table('credit_collection_notes')
    with op.batch_alter_table('credit_collection_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_collection_actions_pending')
        batch_op.drop_index('ix_credit_collection_actions_case')

    op.drop_table('credit_collection_actions')
    with op.batch_alter_table('credit_reminders', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_reminders_tenant')
        batch_op.drop_index('ix_credit_reminders_pending')

    op.drop_table('credit_reminders')
    with op.batch_alter_table('credit_collection_cases', schema=None) as batch_op:
        batch_op.drop_index('uq_credit_collection_cases_open_loan', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_credit_collection_cases_status')
        batch_op.drop_index('ix_credit_collection_cases_loan')

    op.drop_table('credit_collection_cases')
    op.drop_table('credit_collection_policies')
    with op.batch_alter_table('credit_bureau_exports', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_bureau_exports_tenant')

    op.drop_table('credit_bureau_exports')
