"""risk cases: the review queue and its notes

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 01:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import finloop.db.types

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_cases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.String(length=100), nullable=False),
    sa.Column('decision_id', sa.String(length=40), nullable=True),
    sa.Column('alert_id', sa.String(length=40), nullable=True),
    sa.Column('open_key', sa.String(length=220), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('assignee', sa.String(length=60), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=20), nullable=True),
    sa.Column('closed_by', sa.String(length=60), nullable=True),
    sa.Column('closed_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('decision', 'aml_alert', 'screening')", name=op.f('ck_risk_cases_source_known')),
    sa.CheckConstraint("status IN ('open', 'investigating', 'closed')", name=op.f('ck_risk_cases_status_known')),
    sa.CheckConstraint("outcome IS NULL OR outcome IN ('confirmed_fraud', 'false_positive', 'valuable_alert')",
                       name=op.f('ck_risk_cases_outcome_known')),
    sa.CheckConstraint("action IS NULL OR action IN ('approve', 'decline', 'add_to_list', 'none')",
                       name=op.f('ck_risk_cases_action_known')),
    sa.CheckConstraint("(status = 'closed') = (outcome IS NOT NULL AND action IS NOT NULL AND closed_at IS NOT NULL "
                       "AND open_key IS NULL)", name=op.f('ck_risk_cases_closed_consistent')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_cases_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_cases')),
    sa.UniqueConstraint('tenant_id', 'open_key', name=op.f('uq_risk_cases_tenant_id_open_key'))
    )
    with op.batch_alter_table('risk_cases', schema=None) as batch_op:
        batch_op.create_index('ix_risk_cases_tenant_status', ['tenant_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_risk_cases_tenant_object', ['tenant_id', 'object_type', 'object_id'], unique=False)

    op.create_table('risk_case_notes',
    sa.Column('id', sa.String(length=60), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=60), nullable=False),
    sa.Column('body', sa.String(length=4000), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('seq >= 1', name=op.f('ck_risk_case_notes_seq_positive')),
    sa.ForeignKeyConstraint(['case_id'], ['risk_cases.id'], name=op.f('fk_risk_case_notes_case_id_risk_cases')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_case_notes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_case_notes')),
    sa.UniqueConstraint('case_id', 'seq', name=op.f('uq_risk_case_notes_case_id_seq'))
    )
    with op.batch_alter_table('risk_case_notes', schema=None) as batch_op:
        batch_op.create_index('ix_risk_case_notes_tenant_case', ['tenant_id', 'case_id', 'seq'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_case_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_case_notes_tenant_case')
    op.drop_table('risk_case_notes')
    with op.batch_alter_table('risk_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_cases_tenant_object')
        batch_op.drop_index('ix_risk_cases_tenant_status')
    op.drop_table('risk_cases')
