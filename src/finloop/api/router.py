"""All ``/v1`` routers in one place."""

from __future__ import annotations

from fastapi import APIRouter

from finloop.clearing.endpoints import router as clearing_router
from finloop.credit.collections.endpoints import router as credit_collections_router
from finloop.credit.endpoints import router as credit_router
from finloop.credit.outcomes_endpoints import router as credit_outcomes_router
from finloop.credit.portal.endpoints import router as credit_portal_router
from finloop.credit.portfolio.endpoints import router as credit_portfolio_router
from finloop.credit.repayment_channels.endpoints import router as credit_repayment_channels_router
from finloop.credit.servicing.endpoints import router as servicing_router
from finloop.ledger.endpoints import router as ledger_router
from finloop.onboarding.endpoints import router as onboarding_router
from finloop.payments.dispute_endpoints import router as disputes_router
from finloop.payments.endpoints import router as payments_router
from finloop.payments.routing.endpoints import router as routing_router
from finloop.payouts.endpoints import router as payouts_router
from finloop.reconciliation.endpoints import router as reconciliation_router
from finloop.reconciliation.match_endpoints import router as matching_router
from finloop.reports.endpoints import router as reports_router
from finloop.risk.aml.endpoints import router as aml_router
from finloop.risk.cases.endpoints import router as cases_router
from finloop.risk.endpoints import router as risk_router
from finloop.risk.ml.endpoints import router as ml_router
from finloop.risk.network.endpoints import router as network_router
from finloop.settlement.endpoints import router as settlement_router
from finloop.splits.endpoints import router as splits_router
from finloop.tenancy.endpoints import router as tenancy_router
from finloop.vault.endpoints import router as vault_router
from finloop.wealth.endpoints import router as wealth_router
from finloop.webhooks.endpoints import router as webhooks_router

api_router = APIRouter()
api_router.include_router(ledger_router)
api_router.include_router(tenancy_router)
api_router.include_router(payments_router)
api_router.include_router(disputes_router)
api_router.include_router(routing_router)
api_router.include_router(vault_router)
api_router.include_router(webhooks_router)
api_router.include_router(clearing_router)
api_router.include_router(splits_router)
api_router.include_router(settlement_router)
api_router.include_router(payouts_router)
api_router.include_router(reconciliation_router)
api_router.include_router(matching_router)
api_router.include_router(wealth_router)
api_router.include_router(risk_router)
api_router.include_router(cases_router)
api_router.include_router(aml_router)
api_router.include_router(ml_router)
api_router.include_router(network_router)
api_router.include_router(onboarding_router)
api_router.include_router(credit_router)
api_router.include_router(servicing_router)
api_router.include_router(credit_portfolio_router)
api_router.include_router(credit_outcomes_router)
api_router.include_router(credit_repayment_channels_router)
api_router.include_router(credit_collections_router)
api_router.include_router(reports_router)
api_router.include_router(credit_portal_router)
