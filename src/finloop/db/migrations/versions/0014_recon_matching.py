"""recon matching tables: runs, matches, discrepancies and their notes

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 00:20:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _at() -> finloop.db.types.UTCDateTime:
    return finloop.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('recon_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('lines_count', sa.Integer(), nullable=False),
    sa.Column('records_count', sa.Integer(), nullable=False),
    sa.Column('matched_count', sa.Integer(), nullable=False),
    sa.Column('late_matched_count', sa.Integer(), nullable=False),
    sa.Column('counts', _json(), nullable=False),
    sa.Column('started_at', _at(), nullable=False),
    sa.Column('finished_at', _at(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recon_runs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_runs')),
    sa.UniqueConstraint('tenant_id', 'source', 'business_date', 'fingerprint', name='uq_recon_runs_fingerprint')
    )
    with op.batch_alter_table('recon_runs', schema=None) as batch_op:
        batch_op.create_index('ix_recon_runs_tenant_day', ['tenant_id', 'source', 'business_date'], unique=False)

    op.create_table('recon_matches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('line_id', sa.BigInteger(), nullable=False),
    sa.Column('record_id', sa.String(length=100), nullable=False),
    sa.Column('record_kind', sa.String(length=20), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['recon_runs.id'], name=op.f('fk_recon_matches_run_id_recon_runs')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recon_matches_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_matches'))
    )
    with op.batch_alter_table('recon_matches', schema=None) as batch_op:
        batch_op.create_index('ix_recon_matches_run', ['run_id', 'id'], unique=False)

    op.create_table('recon_discrepancies',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('natural_key', sa.String(length=400), nullable=False),
    sa.Column('class', sa.String(length=30), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('line_id', sa.BigInteger(), nullable=True),
    sa.Column('record_id', sa.String(length=100), nullable=True),
    sa.Column('payment_id', sa.String(length=100), nullable=True),
    sa.Column('our_reference', sa.String(length=500), nullable=True),
    sa.Column('channel_reference', sa.String(length=500), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('line_amount', sa.BigInteger(), nullable=True),
    sa.Column('record_amount', sa.BigInteger(), nullable=True),
    sa.Column('line_fee', sa.BigInteger(), nullable=True),
    sa.Column('record_fee', sa.BigInteger(), nullable=True),
    sa.Column('difference', sa.BigInteger(), nullable=False),
    sa.Column('line_status', sa.String(length=40), nullable=True),
    sa.Column('record_status', sa.String(length=40), nullable=True),
    sa.Column('record', _json(), nullable=False),
    sa.Column('first_run_id', sa.String(length=40), nullable=False),
    sa.Column('last_run_id', sa.String(length=40), nullable=False),
    sa.Column('resolution', sa.String(length=30), nullable=True),
    sa.Column('resolution_reason', sa.String(length=1000), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('adjusting_entry_id', sa.String(length=40), nullable=True),
    sa.Column('resolved_at', _at(), nullable=True),
    sa.Column('created_at', _at(), nullable=False),
    sa.Column('updated_at', _at(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'investigating', 'resolved')",
                       name=op.f('ck_recon_discrepancies_status_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recon_discrepancies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_discrepancies')),
    sa.UniqueConstraint('tenant_id', 'source', 'business_date', 'natural_key',
                        name='uq_recon_discrepancies_natural_key')
    )
    with op.batch_alter_table('recon_discrepancies', schema=None) as batch_op:
        batch_op.create_index('ix_recon_discrepancies_tenant_day', ['tenant_id', 'source', 'business_date'],
                              unique=False)
        batch_op.create_index('ix_recon_discrepancies_tenant_status', ['tenant_id', 'status', 'id'], unique=False)

    op.create_table('recon_discrepancy_notes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('discrepancy_id', sa.String(length=40), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', _at(), nullable=False),
    sa.ForeignKeyConstraint(['discrepancy_id'], ['recon_discrepancies.id'],
                            name=op.f('fk_recon_discrepancy_notes_discrepancy_id_recon_discrepancies')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recon_discrepancy_notes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_discrepancy_notes'))
    )
    with op.batch_alter_table('recon_discrepancy_notes', schema=None) as batch_op:
        batch_op.create_index('ix_recon_discrepancy_notes_discrepancy', ['discrepancy_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recon_discrepancy_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_discrepancy_notes_discrepancy')
    op.drop_table('recon_discrepancy_notes')
    with op.batch_alter_table('recon_discrepancies', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_discrepancies_tenant_status')
        batch_op.drop_index('ix_recon_discrepancies_tenant_day')
    op.drop_table('recon_discrepancies')
    with op.batch_alter_table('recon_matches', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_matches_run')
    op.drop_table('recon_matches')
    with op.batch_alter_table('recon_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_runs_tenant_day')
    op.drop_table('recon_runs')
