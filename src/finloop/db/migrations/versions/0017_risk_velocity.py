"""risk_velocity: pre-bucketed velocity counters and distinct-member sets (blind-indexed keys)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_velocity_counters',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('dimension', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('granularity', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.BigInteger(), nullable=False),
    sa.Column('event_count', sa.BigInteger(), nullable=False),
    sa.Column('amount_sum', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('event_count >= 0', name=op.f('ck_risk_velocity_counters_count_non_negative')),
    sa.CheckConstraint('granularity > 0 AND bucket % granularity = 0',
                       name=op.f('ck_risk_velocity_counters_bucket_aligned')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_velocity_counters_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'dimension', 'key_hash', 'metric', 'granularity', 'bucket',
                            name=op.f('pk_risk_velocity_counters'))
    )
    with op.batch_alter_table('risk_velocity_counters', schema=None) as batch_op:
        batch_op.create_index('ix_risk_velocity_counters_prune', ['granularity', 'bucket'], unique=False)

    op.create_table('risk_velocity_members',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('dimension', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('granularity', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.BigInteger(), nullable=False),
    sa.Column('member_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('granularity > 0 AND bucket % granularity = 0',
                       name=op.f('ck_risk_velocity_members_bucket_aligned')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_velocity_members_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'dimension', 'key_hash', 'metric', 'granularity', 'bucket', 'member_hash',
                            name=op.f('pk_risk_velocity_members'))
    )
    with op.batch_alter_table('risk_velocity_members', schema=None) as batch_op:
        batch_op.create_index('ix_risk_velocity_members_prune', ['granularity', 'bucket'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_velocity_members', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_velocity_members_prune')
    op.drop_table('risk_velocity_members')
    with op.batch_alter_table('risk_velocity_counters', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_velocity_counters_prune')
    op.drop_table('risk_velocity_counters')
