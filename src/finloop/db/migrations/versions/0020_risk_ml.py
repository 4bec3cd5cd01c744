"""risk ml: the model registry

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 01:45:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import UTCDateTime

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('risk_models',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('algorithm', sa.String(length=20), nullable=False),
    sa.Column('model_text', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('features', Json(), nullable=False),
    sa.Column('encoding', Json(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('metrics', Json(), nullable=False),
    sa.Column('params', Json(), nullable=False),
    sa.Column('reference', Json(), nullable=False),
    sa.Column('data_from', UTCDateTime(timezone=True), nullable=False),
    sa.Column('data_to', UTCDateTime(timezone=True), nullable=False),
    sa.Column('split_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('drift', Json(), nullable=True),
    sa.Column('drift_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('promoted_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('retired_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('challenger', 'champion', 'retired')", name=op.f('ck_risk_models_status_known')),
    sa.CheckConstraint('threshold >= 0 AND threshold <= 1000', name=op.f('ck_risk_models_threshold_in_range')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_risk_models_version_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_models_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_models')),
    sa.UniqueConstraint('tenant_id', 'name', 'version', name=op.f('uq_risk_models_tenant_id_name_version'))
    )
    with op.batch_alter_table('risk_models', schema=None) as batch_op:
        batch_op.create_index('ix_risk_models_tenant_status', ['tenant_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_models', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_models_tenant_status')
    op.drop_table('risk_models')
