"""borrower portal

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-26 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from finloop.db.types import UTCDateTime

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_portal_links',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('session_digest', sa.String(length=64), nullable=True),
    sa.Column('session_expires_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('signed_out_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(used_at IS NULL) = (session_digest IS NULL) AND (used_at IS NULL) = (session_expires_at IS NULL)', name=op.f('ck_credit_portal_links_session_only_when_used')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_portal_links_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_portal_links_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_portal_links')),
    sa.UniqueConstraint('session_digest', name=op.f('uq_credit_portal_links_session_digest')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_credit_portal_links_token_digest'))
    )
    op.create_index('ix_credit_portal_links_applicant', 'credit_portal_links', ['tenant_id', 'applicant_id'], unique=False)
    op.create_table('credit_portal_messages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('applicant_id', sa.String(length=40), nullable=False),
    sa.Column('sender', sa.String(length=8), nullable=False),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("sender IN ('borrower', 'staff')", name=op.f('ck_credit_portal_messages_sender_known')),
    sa.CheckConstraint('length(body) > 0', name=op.f('ck_credit_portal_messages_body_not_empty')),
    sa.ForeignKeyConstraint(['applicant_id'], ['credit_applicants.id'], name=op.f('fk_credit_portal_messages_applicant_id_credit_applicants')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_portal_messages_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_portal_messages'))
    )
    op.create_index('ix_credit_portal_messages_applicant', 'credit_portal_messages', ['tenant_id', 'applicant_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_credit_portal_messages_applicant', table_name='credit_portal_messages')
    op.drop_table('credit_portal_messages')
    op.drop_index('ix_credit_portal_links_applicant', table_name='credit_portal_links')
    op.drop_table('credit_portal_links')
