"""risk: rule sets and versions, decisions, list entries

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 01:20:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('risk_decisions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('event', _json(), nullable=False),
    sa.Column('features', _json(), nullable=False),
    sa.Column('lists', _json(), nullable=False),
    sa.Column('bypassed', _json(), nullable=False),
    sa.Column('model_scores', _json(), nullable=False),
    sa.Column('fired', _json(), nullable=False),
    sa.Column('score', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('reasons', _json(), nullable=False),
    sa.Column('rule_set_id', sa.String(length=40), nullable=True),
    sa.Column('rule_set_version_id', sa.String(length=40), nullable=True),
    sa.Column('model_versions', _json(), nullable=False),
    sa.Column('shadow_version_id', sa.String(length=40), nullable=True),
    sa.Column('shadow_outcome', sa.String(length=10), nullable=True),
    sa.Column('shadow_score', sa.BigInteger(), nullable=True),
    sa.Column('shadow_fired', _json(), nullable=False),
    sa.Column('object_ref', sa.String(length=100), nullable=True),
    sa.Column('label', sa.String(length=20), nullable=True),
    sa.Column('labelled_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("label IS NULL OR label IN ('fraud_confirmed', 'refunded', 'disputed', 'succeeded')", name=op.f('ck_risk_decisions_label_known')),
    sa.CheckConstraint("outcome IN ('approve', 'review', 'decline')", name=op.f('ck_risk_decisions_outcome_known')),
    sa.CheckConstraint("shadow_outcome IS NULL OR shadow_outcome IN ('approve', 'review', 'decline')", name=op.f('ck_risk_decisions_shadow_outcome_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_decisions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_decisions'))
    )
    with op.batch_alter_table('risk_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_risk_decisions_tenant_decided', ['tenant_id', 'decided_at'], unique=False)
        batch_op.create_index('ix_risk_decisions_tenant_object', ['tenant_id', 'object_ref'], unique=False)

    op.create_table('risk_list_entries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('display', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('bypass_rules', _json(), nullable=False),
    sa.Column('expires_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('removed_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('removed_by', sa.String(length=60), nullable=True),
    sa.CheckConstraint("kind IN ('black', 'white', 'grey')", name=op.f('ck_risk_list_entries_kind_known')),
    sa.CheckConstraint("level IN ('customer', 'ip', 'device', 'card', 'phone', 'email', 'payout_account')", name=op.f('ck_risk_list_entries_level_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_list_entries_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_list_entries'))
    )
    with op.batch_alter_table('risk_list_entries', schema=None) as batch_op:
        batch_op.create_index('ix_risk_list_entries_lookup', ['tenant_id', 'level', 'value'], unique=False)
        batch_op.create_index('ix_risk_list_entries_tenant', ['tenant_id', 'id'], unique=False)

    op.create_table('risk_rule_sets',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False),
    sa.Column('event_types', _json(), nullable=False),
    sa.Column('live_version_id', sa.String(length=40), nullable=True),
    sa.Column('shadow_version_id', sa.String(length=40), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_rule_sets_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_rule_sets')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_risk_rule_sets_tenant_id_name'))
    )
    op.create_table('risk_rule_set_versions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('rule_set_id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('rules', _json(), nullable=False),
    sa.Column('thresholds', _json(), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('based_on_version_id', sa.String(length=40), nullable=True),
    sa.Column('approval_id', sa.String(length=40), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=60), nullable=True),
    sa.Column('published_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('retired_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'pending_approval', 'published', 'retired', 'rolled_back')", name=op.f('ck_risk_rule_set_versions_status_known')),
    sa.CheckConstraint('number >= 1', name=op.f('ck_risk_rule_set_versions_number_positive')),
    sa.ForeignKeyConstraint(['rule_set_id'], ['risk_rule_sets.id'], name=op.f('fk_risk_rule_set_versions_rule_set_id_risk_rule_sets')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_rule_set_versions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_rule_set_versions')),
    sa.UniqueConstraint('rule_set_id', 'number', name=op.f('uq_risk_rule_set_versions_rule_set_id_number'))
    )
    with op.batch_alter_table('risk_rule_set_versions', schema=None) as batch_op:
        batch_op.create_index('ix_risk_rule_set_versions_tenant', ['tenant_id', 'rule_set_id', 'number'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table('risk_rule_set_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_rule_set_versions_tenant')

    op.drop_table('risk_rule_set_versions')
    op.drop_table('risk_rule_sets')
    with op.batch_alter_table('risk_list_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_list_entries_tenant')
        batch_op.drop_index('ix_risk_list_entries_lookup')

    op.drop_table('risk_list_entries')
    with op.batch_alter_table('risk_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_decisions_tenant_object')
        batch_op.drop_index('ix_risk_decisions_tenant_decided')

    op.drop_table('risk_decisions')
    # ### end Alembic commands ###
