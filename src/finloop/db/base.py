"""Declarative base and the shared metadata every migration is generated from."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def load_all_models() -> None:
    """Import every domain's models so ``Base.metadata`` knows all tables."""
    import finloop.audit.models
    import finloop.clearing.models
    import finloop.credit.collections.models
    import finloop.credit.models
    import finloop.credit.outcomes.models
    import finloop.credit.portal.models
    import finloop.credit.portfolio.models
    import finloop.credit.repayment_channels.models
    import finloop.credit.servicing.models
    import finloop.db.models
    import finloop.ledger.models
    import finloop.onboarding.models
    import finloop.payments.dispute_models
    import finloop.payments.models
    import finloop.payments.routing.models
    import finloop.payouts.models
    import finloop.reconciliation.match_models
    import finloop.reconciliation.models
    import finloop.risk.aml.models
    import finloop.risk.cases.models
    import finloop.risk.ml.models
    import finloop.risk.models
    import finloop.risk.network.models
    import finloop.risk.velocity_models
    import finloop.settlement.models
    import finloop.splits.models
    import finloop.tenancy.models
    import finloop.vault.models
    import finloop.wealth.models
    import finloop.webhooks.models  # noqa: F401
