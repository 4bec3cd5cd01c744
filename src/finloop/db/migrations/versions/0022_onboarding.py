"""onboarding (KYC/KYB) tables

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 03:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import finloop.db.types

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def _json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _time() -> Any:
    return finloop.db.types.UTCDateTime(timezone=True)


def _big_id() -> Any:
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('kyc_profiles',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('profile_type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('business_type', sa.String(length=40), nullable=True),
    sa.Column('is_pep', sa.Boolean(), nullable=False),
    sa.Column('data_sealed', sa.Text(), nullable=False),
    sa.Column('name_display', sa.String(length=40), nullable=False),
    sa.Column('identifier_display', sa.String(length=40), nullable=False),
    sa.Column('owners_count', sa.Integer(), nullable=False),
    sa.Column('risk_tier', sa.String(length=10), nullable=True),
    sa.Column('tier_reasons', _json(), nullable=False),
    sa.Column('review_reasons', _json(), nullable=False),
    sa.Column('checks', _json(), nullable=False),
    sa.Column('screening_ids', _json(), nullable=False),
    sa.Column('decision_id', sa.String(length=40), nullable=True),
    sa.Column('decision_score', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.String(length=40), nullable=True),
    sa.Column('verified_at', _time(), nullable=True),
    sa.Column('next_review_at', _time(), nullable=True),
    sa.Column('last_review_on', sa.Date(), nullable=True),
    sa.Column('submitted_by', sa.String(length=60), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', _time(), nullable=False),
    sa.Column('updated_at', _time(), nullable=False),
    sa.CheckConstraint("party_kind IN ('customer', 'merchant', 'promoter')",
                       name=op.f('ck_kyc_profiles_party_kind_known')),
    sa.CheckConstraint("profile_type IN ('individual', 'business')", name=op.f('ck_kyc_profiles_profile_type_known')),
    sa.CheckConstraint("status IN ('pending', 'verifying', 'in_review', 'approved', 'rejected', 'review_due')",
                       name=op.f('ck_kyc_profiles_status_known')),
    sa.CheckConstraint("risk_tier IS NULL OR risk_tier IN ('low', 'medium', 'high')",
                       name=op.f('ck_kyc_profiles_tier_known')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_kyc_profiles_version_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kyc_profiles_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kyc_profiles')),
    sa.UniqueConstraint('tenant_id', 'party_kind', 'party_id', name=op.f('uq_kyc_profiles_tenant_id_party_kind_party_id'))
    )
    with op.batch_alter_table('kyc_profiles', schema=None) as batch_op:
        batch_op.create_index('ix_kyc_profiles_review', ['status', 'next_review_at'], unique=False)
        batch_op.create_index('ix_kyc_profiles_tenant_status', ['tenant_id', 'status', 'id'], unique=False)

    op.create_table('kyc_profile_keys',
    sa.Column('profile_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('blind_index', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.CheckConstraint("kind IN ('national_id', 'document', 'registration')",
                       name=op.f('ck_kyc_profile_keys_kind_known')),
    sa.ForeignKeyConstraint(['profile_id'], ['kyc_profiles.id'],
                            name=op.f('fk_kyc_profile_keys_profile_id_kyc_profiles')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kyc_profile_keys_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('profile_id', 'kind', 'blind_index', name=op.f('pk_kyc_profile_keys'))
    )
    with op.batch_alter_table('kyc_profile_keys', schema=None) as batch_op:
        batch_op.create_index('ix_kyc_profile_keys_lookup', ['tenant_id', 'kind', 'blind_index'], unique=False)

    op.create_table('kyc_profile_transitions',
    sa.Column('id', _big_id(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('profile_id', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=60), nullable=False),
    sa.Column('at', _time(), nullable=False),
    sa.CheckConstraint('seq >= 1', name=op.f('ck_kyc_profile_transitions_seq_positive')),
    sa.ForeignKeyConstraint(['profile_id'], ['kyc_profiles.id'],
                            name=op.f('fk_kyc_profile_transitions_profile_id_kyc_profiles')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kyc_profile_transitions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kyc_profile_transitions')),
    sa.UniqueConstraint('profile_id', 'seq', name=op.f('uq_kyc_profile_transitions_profile_id_seq'))
    )
    with op.batch_alter_table('kyc_profile_transitions', schema=None) as batch_op:
        batch_op.create_index('ix_kyc_profile_transitions_tenant', ['tenant_id', 'profile_id', 'seq'], unique=False)

    op.create_table('kyc_verifications',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('profile_id', sa.String(length=40), nullable=False),
    sa.Column('check_kind', sa.String(length=20), nullable=False),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason_code', sa.String(length=60), nullable=True),
    sa.Column('provider_ref', sa.String(length=100), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_query_at', _time(), nullable=True),
    sa.Column('requested_at', _time(), nullable=False),
    sa.Column('completed_at', _time(), nullable=True),
    sa.CheckConstraint("check_kind IN ('document', 'liveness', 'registry')",
                       name=op.f('ck_kyc_verifications_check_known')),
    sa.CheckConstraint("status IN ('pending', 'passed', 'failed', 'unknown')",
                       name=op.f('ck_kyc_verifications_status_known')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_kyc_verifications_attempts_non_negative')),
    sa.ForeignKeyConstraint(['profile_id'], ['kyc_profiles.id'],
                            name=op.f('fk_kyc_verifications_profile_id_kyc_profiles')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kyc_verifications_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kyc_verifications'))
    )
    with op.batch_alter_table('kyc_verifications', schema=None) as batch_op:
        batch_op.create_index('ix_kyc_verifications_due', ['status', 'next_query_at'], unique=False)
        batch_op.create_index('ix_kyc_verifications_profile', ['tenant_id', 'profile_id', 'id'], unique=False)

    op.create_table('onboarding_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('config', _json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', _time(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_onboarding_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_onboarding_policies'))
    )

    # Payouts: the gate's records (skipped automatic payouts, beneficiary screenings) and the screening a
    # payout waits for.
    op.create_table('payout_skips',
    sa.Column('id', _big_id(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('automatic_key', sa.String(length=100), nullable=False),
    sa.Column('schedule_id', sa.String(length=40), nullable=False),
    sa.Column('party_kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=60), nullable=False),
    sa.Column('decision_id', sa.String(length=40), nullable=True),
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('created_at', _time(), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_payout_skips_amount_non_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payout_skips_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_skips')),
    sa.UniqueConstraint('tenant_id', 'automatic_key', name=op.f('uq_payout_skips_tenant_id_automatic_key'))
    )
    with op.batch_alter_table('payout_skips', schema=None) as batch_op:
        batch_op.create_index('ix_payout_skips_tenant', ['tenant_id', 'id'], unique=False)

    op.create_table('payout_beneficiary_screenings',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('payout_account_id', sa.String(length=40), nullable=False),
    sa.Column('list_version', sa.String(length=64), nullable=False),
    sa.Column('screening_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', _time(), nullable=False),
    sa.ForeignKeyConstraint(['payout_account_id'], ['payout_accounts.id'],
                            name=op.f('fk_payout_beneficiary_screenings_payout_account_id_payout_accounts')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_payout_beneficiary_screenings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'payout_account_id', 'list_version',
                            name=op.f('pk_payout_beneficiary_screenings'))
    )

    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('screening_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_column('screening_id')
    op.drop_table('payout_beneficiary_screenings')
    with op.batch_alter_table('payout_skips', schema=None) as batch_op:
        batch_op.drop_index('ix_payout_skips_tenant')
    op.drop_table('payout_skips')
    op.drop_table('onboarding_policies')
    with op.batch_alter_table('kyc_verifications', schema=None) as batch_op:
        batch_op.drop_index('ix_kyc_verifications_profile')
        batch_op.drop_index('ix_kyc_verifications_due')
    op.drop_table('kyc_verifications')
    with op.batch_alter_table('kyc_profile_transitions', schema=None) as batch_op:
        batch_op.drop_index('ix_kyc_profile_transitions_tenant')
    op.drop_table('kyc_profile_transitions')
    with op.batch_alter_table('kyc_profile_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_kyc_profile_keys_lookup')
    op.drop_table('kyc_profile_keys')
    with op.batch_alter_table('kyc_profiles', schema=None) as batch_op:
        batch_op.drop_index('ix_kyc_profiles_tenant_status')
        batch_op.drop_index('ix_kyc_profiles_review')
    op.drop_table('kyc_profiles')
