"""routing: configurations, the insert-only outcome stream, stored decisions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('routing_configs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=True),
    sa.Column('body', JSON, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_routing_configs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_configs')),
    sa.UniqueConstraint('tenant_id', 'scope', name=op.f('uq_routing_configs_tenant_id_scope'))
    )
    op.create_table('routing_outcomes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=False),
    sa.Column('at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_routing_outcomes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_outcomes'))
    )
    with op.batch_alter_table('routing_outcomes', schema=None) as batch_op:
        batch_op.create_index('ix_routing_outcomes_scope', ['tenant_id', 'merchant_id', 'method', 'at'], unique=False)
        batch_op.create_index('ix_routing_outcomes_tenant_at', ['tenant_id', 'at'], unique=False)

    op.create_table('routing_decisions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('strategy', sa.String(length=32), nullable=False),
    sa.Column('ranked', JSON, nullable=False),
    sa.Column('scores', JSON, nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('explored', sa.Boolean(), nullable=False),
    sa.Column('rng_seed', sa.BigInteger(), nullable=False),
    sa.Column('config', JSON, nullable=False),
    sa.Column('config_version', sa.Integer(), nullable=False),
    sa.Column('config_scope', sa.String(length=40), nullable=False),
    sa.Column('inputs', JSON, nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_routing_decisions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_decisions'))
    )
    with op.batch_alter_table('routing_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_routing_decisions_tenant_payment', ['tenant_id', 'payment_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('routing_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_routing_decisions_tenant_payment')
    op.drop_table('routing_decisions')
    with op.batch_alter_table('routing_outcomes', schema=None) as batch_op:
        batch_op.drop_index('ix_routing_outcomes_tenant_at')
        batch_op.drop_index('ix_routing_outcomes_scope')
    op.drop_table('routing_outcomes')
    op.drop_table('routing_configs')
