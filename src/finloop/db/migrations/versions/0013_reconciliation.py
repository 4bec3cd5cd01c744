"""reconciliation tables: imported files and lines, CSV mappings, safeguarding checks

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('recon_mappings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('delimiter', sa.String(length=1), nullable=False),
    sa.Column('columns', _json(), nullable=False),
    sa.Column('date_format', sa.String(length=40), nullable=False),
    sa.Column('datetime_format', sa.String(length=40), nullable=False),
    sa.Column('amount_style', sa.String(length=8), nullable=False),
    sa.Column('sign', sa.String(length=12), nullable=False),
    sa.Column('credit_values', _json(), nullable=False),
    sa.Column('debit_values', _json(), nullable=False),
    sa.Column('default_currency', sa.String(length=3), nullable=True),
    sa.Column('default_kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recon_mappings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_mappings')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_recon_mappings_tenant_id_name'))
    )

    op.create_table('recon_files',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('source_kind', sa.String(length=8), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('line_count', sa.BigInteger(), nullable=False),
    sa.Column('account', sa.String(length=100), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('opening_balance', sa.BigInteger(), nullable=True),
    sa.Column('closing_balance', sa.BigInteger(), nullable=True),
    sa.Column('mapping_id', sa.String(length=40), nullable=True),
    sa.Column('imported_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('line_count >= 0', name=op.f('ck_recon_files_line_count_non_negative')),
    sa.CheckConstraint("source_kind IN ('channel', 'bank')", name=op.f('ck_recon_files_source_kind_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recon_files_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_files')),
    sa.UniqueConstraint('tenant_id', 'source', 'business_date', 'sha256', name=op.f('uq_recon_files_tenant_id_source_business_date_sha256'))
    )
    with op.batch_alter_table('recon_files', schema=None) as batch_op:
        batch_op.create_index('ix_recon_files_source_date', ['tenant_id', 'source', 'business_date'], unique=False)

    op.create_table('recon_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('file_id', sa.String(length=40), nullable=False),
    sa.Column('line_no', sa.BigInteger(), nullable=False),
    sa.Column('value_on', sa.Date(), nullable=False),
    sa.Column('occurred_at', finloop.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('our_reference', sa.String(length=500), nullable=True),
    sa.Column('channel_reference', sa.String(length=500), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('direction', sa.String(length=6), nullable=False),
    sa.Column('fee_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=500), nullable=True),
    sa.Column('counterparty', sa.String(length=500), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_recon_lines_amount_non_negative')),
    sa.CheckConstraint('fee_amount >= 0', name=op.f('ck_recon_lines_fee_non_negative')),
    sa.CheckConstraint("direction IN ('credit', 'debit')", name=op.f('ck_recon_lines_direction_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recon_lines'))
    )
    with op.batch_alter_table('recon_lines', schema=None) as batch_op:
        batch_op.create_index('ix_recon_lines_file', ['tenant_id', 'file_id'], unique=False)
        batch_op.create_index('ix_recon_lines_our_reference', ['tenant_id', 'our_reference'], unique=False)
        batch_op.create_index('ix_recon_lines_channel_reference', ['tenant_id', 'channel_reference'], unique=False)

    op.create_table('safeguarding_checks',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('checked_on', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('custody_source', sa.String(length=64), nullable=False),
    sa.Column('statement_file_id', sa.String(length=40), nullable=True),
    sa.Column('statement_on', sa.Date(), nullable=True),
    sa.Column('bank_balance', sa.BigInteger(), nullable=True),
    sa.Column('owed_amount', sa.BigInteger(), nullable=False),
    sa.Column('shortfall_amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('breakdown', _json(), nullable=False),
    sa.Column('created_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', finloop.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('shortfall_amount >= 0', name=op.f('ck_safeguarding_checks_shortfall_non_negative')),
    sa.CheckConstraint("status IN ('ok', 'shortfall', 'no_statement')",
                       name=op.f('ck_safeguarding_checks_status_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_safeguarding_checks_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_safeguarding_checks')),
    sa.UniqueConstraint('tenant_id', 'checked_on', 'currency', name=op.f('uq_safeguarding_checks_tenant_id_checked_on_currency'))
    )


def downgrade() -> None:
    op.drop_table('safeguarding_checks')
    with op.batch_alter_table('recon_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_lines_channel_reference')
        batch_op.drop_index('ix_recon_lines_our_reference')
        batch_op.drop_index('ix_recon_lines_file')
    op.drop_table('recon_lines')
    with op.batch_alter_table('recon_files', schema=None) as batch_op:
        batch_op.drop_index('ix_recon_files_source_date')
    op.drop_table('recon_files')
    op.drop_table('recon_mappings')
