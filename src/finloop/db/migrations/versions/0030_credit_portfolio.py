"""credit portfolio: operating cost policy

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-26 07:00:00

Each section below belongs to one feature and creates (and drops) only its own tables; a later section may be
appended for another feature without touching the ones above it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from finloop.db.types import UTCDateTime

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def Json() -> Any:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


# ---------------------------------------------------------------------------------------------- portfolio
# finloop.credit.portfolio.models.OperatingCostPolicy: the tenant's operating cost allocation for the P&L.


def _upgrade_portfolio() -> None:
    op.create_table('credit_operating_cost_policies',
    sa.Column('tenant_id', sa.String(length=40), nullable=False),
    sa.Column('policy', Json(), nullable=False),
    sa.Column('updated_by', sa.String(length=60), nullable=False),
    sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                            name=op.f('fk_credit_operating_cost_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_credit_operating_cost_policies'))
    )


def _downgrade_portfolio() -> None:
    op.drop_table('credit_operating_cost_policies')


# ---------------------------------------------------------------------------------------------- end of sections


def upgrade() -> None:
    _upgrade_portfolio()


def downgrade() -> None:
    _downgrade_portfolio()
