"""vault: wrapped data keys and tokenized cards

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import finloop.db.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('vault_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=False),
    sa.Column('master_key_id', sa.String(length=16), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vault_keys')),
    sa.UniqueConstraint('purpose', 'version', name=op.f('uq_vault_keys_purpose_version'))
    )
    with op.batch_alter_table('vault_keys', schema=None) as batch_op:
        batch_op.create_index('uq_vault_keys_one_active', ['purpose'], unique=True,
                              sqlite_where=sa.text("status = 'active'"),
                              postgresql_where=sa.text("status = 'active'"))

    op.create_table('cards',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=True),
    sa.Column('brand', sa.String(length=16), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=True),
    sa.Column('nonce', sa.LargeBinary(), nullable=True),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['key_id'], ['vault_keys.id'], name=op.f('fk_cards_key_id_vault_keys')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_cards_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cards'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_key_id'), ['key_id'], unique=False)
        batch_op.create_index('ix_cards_tenant_customer', ['tenant_id', 'customer_id'], unique=False)
        batch_op.create_index('ix_cards_tenant_fingerprint', ['tenant_id', 'fingerprint'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index('ix_cards_tenant_fingerprint')
        batch_op.drop_index('ix_cards_tenant_customer')
        batch_op.drop_index(batch_op.f('ix_cards_key_id'))

    op.drop_table('cards')
    with op.batch_alter_table('vault_keys', schema=None) as batch_op:
        batch_op.drop_index('uq_vault_keys_one_active')

    op.drop_table('vault_keys')
