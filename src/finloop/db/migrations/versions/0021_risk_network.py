"""risk association network and geo tables

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from finloop.db.types import UTCDateTime

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_network_customers',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=100), nullable=False),
    sa.Column('component_id', sa.String(length=40), nullable=False),
    sa.Column('is_fraud', sa.Boolean(), nullable=False),
    sa.Column('account_created_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('account_country', sa.String(length=2), nullable=True),
    sa.Column('last_country', sa.String(length=2), nullable=True),
    sa.Column('last_located_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_seen_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_network_customers_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id', name=op.f('pk_risk_network_customers'))
    )
    with op.batch_alter_table('risk_network_customers', schema=None) as batch_op:
        batch_op.create_index('ix_risk_network_customers_component', ['tenant_id', 'component_id'], unique=False)

    op.create_table('risk_network_identifiers',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('display', sa.String(length=200), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('first_customer_id', sa.String(length=100), nullable=False),
    sa.Column('first_seen_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('customers >= 0', name=op.f('ck_risk_network_identifiers_customers_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_risk_network_identifiers_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'kind', 'key_hash', name=op.f('pk_risk_network_identifiers'))
    )

    op.create_table('risk_network_links',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('rank >= 1', name=op.f('ck_risk_network_links_rank_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_network_links_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id', 'kind', 'key_hash', name=op.f('pk_risk_network_links'))
    )
    with op.batch_alter_table('risk_network_links', schema=None) as batch_op:
        batch_op.create_index('ix_risk_network_links_identifier', ['tenant_id', 'kind', 'key_hash', 'rank'],
                              unique=False)

    op.create_table('risk_network_components',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('fraud_members', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('size >= 0', name=op.f('ck_risk_network_components_size_non_negative')),
    sa.CheckConstraint('fraud_members >= 0 AND fraud_members <= size',
                       name=op.f('ck_risk_network_components_fraud_within_size')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_risk_network_components_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'id', name=op.f('pk_risk_network_components'))
    )

    op.create_table('risk_network_fraud_marks',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=60), nullable=False),
    sa.Column('marked_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_risk_network_fraud_marks_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_id', 'source', name=op.f('pk_risk_network_fraud_marks'))
    )


def downgrade() -> None:
    op.drop_table('risk_network_fraud_marks')
    op.drop_table('risk_network_components')
    with op.batch_alter_table('risk_network_links', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_network_links_identifier')
    op.drop_table('risk_network_links')
    op.drop_table('risk_network_identifiers')
    with op.batch_alter_table('risk_network_customers', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_network_customers_component')
    op.drop_table('risk_network_customers')
