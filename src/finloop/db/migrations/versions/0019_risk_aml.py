"""risk aml: monitoring alerts and configuration, watchlists and their blocking keys, screenings

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 01:45:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _time() -> Any:
    return finloop.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('risk_aml_alerts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('scenario', sa.String(length=30), nullable=False),
    sa.Column('subject_kind', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('window_key', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('window_start', _time(), nullable=False),
    sa.Column('window_end', _time(), nullable=False),
    sa.Column('total_amount', sa.BigInteger(), nullable=False),
    sa.Column('evidence', _json(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', _time(), nullable=False),
    sa.CheckConstraint("scenario IN ('large_transaction', 'structuring', 'rapid_movement', 'round_amounts', "
                       "'high_risk_geography', 'dormant_reactivated', 'funnelling')",
                       name=op.f('ck_risk_aml_alerts_scenario_known')),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_risk_aml_alerts_status_known')),
    sa.CheckConstraint('total_amount >= 0', name=op.f('ck_risk_aml_alerts_total_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_aml_alerts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_aml_alerts')),
    sa.UniqueConstraint('tenant_id', 'scenario', 'subject_kind', 'subject_id', 'window_key',
                        name='uq_risk_aml_alerts_window')
    )
    with op.batch_alter_table('risk_aml_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_risk_aml_alerts_tenant', ['tenant_id', 'id'], unique=False)

    op.create_table('risk_aml_configs',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('config', _json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', _time(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_aml_configs_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_risk_aml_configs'))
    )

    op.create_table('risk_watchlist_entries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('list_version', sa.String(length=40), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('normalized_name', sa.String(length=300), nullable=False),
    sa.Column('aliases', _json(), nullable=False),
    sa.Column('normalized_names', _json(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('program', sa.String(length=100), nullable=False),
    sa.Column('created_at', _time(), nullable=False),
    sa.CheckConstraint("kind IN ('individual', 'entity', 'vessel', 'aircraft')",
                       name=op.f('ck_risk_watchlist_entries_kind_known')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_watchlist_entries_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_watchlist_entries'))
    )
    with op.batch_alter_table('risk_watchlist_entries', schema=None) as batch_op:
        batch_op.create_index('ix_risk_watchlist_entries_source', ['tenant_id', 'source', 'ref'], unique=False)

    op.create_table('risk_watchlist_keys',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('block', sa.String(length=3), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['risk_watchlist_entries.id'],
                            name=op.f('fk_risk_watchlist_keys_entry_id_risk_watchlist_entries')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_watchlist_keys_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'block', 'entry_id', name=op.f('pk_risk_watchlist_keys'))
    )

    op.create_table('risk_screenings',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('subject_type', sa.String(length=20), nullable=False),
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name_sealed', sa.Text(), nullable=False),
    sa.Column('name_display', sa.String(length=40), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('hits', _json(), nullable=False),
    sa.Column('list_versions', _json(), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=True),
    sa.Column('reviewed_by', sa.String(length=60), nullable=True),
    sa.Column('reviewed_at', _time(), nullable=True),
    sa.Column('review_note', sa.String(length=1000), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', _time(), nullable=False),
    sa.CheckConstraint("kind IN ('individual', 'entity')", name=op.f('ck_risk_screenings_kind_known')),
    sa.CheckConstraint("status IN ('clear', 'potential_match', 'confirmed', 'dismissed')",
                       name=op.f('ck_risk_screenings_status_known')),
    sa.CheckConstraint('threshold >= 0 AND threshold <= 100', name=op.f('ck_risk_screenings_threshold_range')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_risk_screenings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_screenings'))
    )
    with op.batch_alter_table('risk_screenings', schema=None) as batch_op:
        batch_op.create_index('ix_risk_screenings_subject', ['tenant_id', 'subject_type', 'subject_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_screenings', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_screenings_subject')
    op.drop_table('risk_screenings')
    op.drop_table('risk_watchlist_keys')
    with op.batch_alter_table('risk_watchlist_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_watchlist_entries_source')
    op.drop_table('risk_watchlist_entries')
    op.drop_table('risk_aml_configs')
    with op.batch_alter_table('risk_aml_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_aml_alerts_tenant')
    op.drop_table('risk_aml_alerts')
