"""Portfolio fixtures: a small book written straight into the servicing tables (accounts and month-end snapshots)
over real parents (applicant, product, funding source, application, loan), and the ledger entries that the
servicing would have posted for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from finloop.credit.models import Loan, LoanApplication
from finloop.credit.portfolio import domain
from finloop.credit.portfolio.endpoints import router
from finloop.credit.servicing.domain import bucket_for
from finloop.credit.servicing.models import LoanAccount, LoanMonthEnd
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, TransferSpec
from finloop.payments.postings import AccountSpec, ensure_account
from tests.credit.conftest import make_applicant
from tests.credit.test_funding import source
from tests.credit.test_limits import product

GROUP = "installment"


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The application with the portfolio router mounted (until ``finloop.api.router`` includes it)."""
    if not any(getattr(r, "path", "").startswith("/v1/credit/portfolio/") for r in app.routes):
        app.include_router(router, prefix="/v1")
    return app


@dataclass
class Parents:
    tenant_id: str
    applicant_ids: list[str]
    product_id: str
    product_code: str
    source_id: str


def parents(db: Database, tenant_id: str, applicants: int = 2, rate: str = "0.06") -> Parents:
    made = product(db, tenant_id, "consumer_installment")
    funded = source(db, tenant_id, "bank_a", rate, 10**12)
    ids = [make_applicant(db, tenant_id, f"borrower-{n}", national_id=f"11010119900307{n:04d}",
                          phone=None).applicant_id for n in range(applicants)]
    return Parents(tenant_id, ids, made.id, made.code, funded.id)


def book(db: Database, p: Parents, *, applicant: int = 0, principal: int = 1_000_000, disbursed_on: date,
         state: str = "performing", dpd: int = 0, max_dpd: int | None = None, outstanding: int | None = None,
         closed_on: date | None = None, totals: dict[str, int] | None = None, provision: int = 0,
         snapshots: list[dict[str, Any]] | None = None, outcome: str = "approve",
         decided_at: datetime | None = None) -> str:
    """One disbursed loan with its servicing account and month-end snapshots (each a dict with month, dpd and
    optionally state, max_dpd and outstanding); returns the loan id."""
    when = decided_at or datetime.combine(disbursed_on, datetime.min.time(), tzinfo=UTC)
    with db.uow() as uow:
        application = LoanApplication(
            id=uow.ids.new("loan_application"), tenant_id=p.tenant_id, applicant_id=p.applicant_ids[applicant],
            national_id_index="x" * 64, product_id=p.product_id, product_code=p.product_code,
            principal_amount=principal, currency="CNY", term=12, term_unit="month", purpose="purchase",
            status="contract_signed" if outcome == "approve" else "declined", auto_outcome=outcome,
            final_outcome=outcome, reasons=[], details={}, score_id=None, score=None, rating=None,
            risk_decision_id=None, case_id=None, reserved_amount=0, latency_us=1, submitted_at=when,
            decided_at=when, expires_at=None, closed_at=None, created_by="test", version=1)
        uow.session.add(application)
        uow.session.flush()
        if outcome != "approve":
            uow.commit()
            return application.id
        loan = Loan(id=uow.ids.new("loan"), tenant_id=p.tenant_id, application_id=application.id,
                    applicant_id=application.applicant_id, product_id=p.product_id, principal_amount=principal,
                    currency="CNY", schedule={}, funding_source_id=p.source_id, funding_choice={},
                    target="customer_account", merchant_id=None, merchant_fee_amount=0, status="active",
                    mode="manual", entry_ids=[], failure_code=None, created_by="test", created_at=when,
                    disbursed_at=when)
        uow.session.add(loan)
        uow.session.flush()
        left = principal if outstanding is None else outstanding
        if state in ("paid_off", "written_off"):
            left = 0
        amounts = {"interest_income": 0, "fee_income": 0, "penalty_income": 0, "paid_amount": 0,
                   "written_off_amount": 0, "recovered_amount": 0, **(totals or {})}
        uow.session.add(LoanAccount(
            loan_id=loan.id, tenant_id=p.tenant_id, applicant_id=loan.applicant_id, product_id=p.product_id,
            kind="installment", limit_group=GROUP, currency="CNY", state=state, disbursed_on=disbursed_on,
            origination_month=domain.month_of(disbursed_on), principal_amount=principal, principal_outstanding=left,
            principal_billed=0, interest_billed=0, fees_billed=0, penalty_outstanding=0, advance_amount=0,
            period_number=1, period_start_day=0, period_due_day=0, period_interest=0, period_accrued=0, dpd=dpd,
            bucket=bucket_for(dpd).value, max_dpd=max(dpd, max_dpd or 0), oldest_unpaid_due_day=None,
            provision_amount=provision, pd_ppm=20_000, accrued_today=0, penalty_today=0, provision_today=0,
            processed_day=0, penalty_day=0, closed_on=closed_on, version=1, created_at=when, updated_at=when,
            **amounts))
        worst = 0
        for snap in snapshots or []:
            worst = max(worst, snap.get("max_dpd", snap["dpd"]), snap["dpd"])
            uow.session.add(LoanMonthEnd(
                loan_id=loan.id, month=snap["month"], tenant_id=p.tenant_id, product_id=p.product_id,
                kind="installment", currency="CNY", origination_month=domain.month_of(disbursed_on),
                months_on_book=domain.months_between(domain.month_of(disbursed_on), snap["month"]),
                state=snap.get("state", "overdue" if snap["dpd"] else "performing"),
                bucket=bucket_for(snap["dpd"]).value, dpd=snap["dpd"], max_dpd=worst,
                principal_outstanding=snap.get("outstanding", principal), provision_amount=0))
        uow.commit()
        return loan.id


def post(db: Database, tenant_id: str, key: str, debit: tuple[str, AccountType], credit: tuple[str, AccountType],
         amount: int) -> None:
    """One balanced entry, as the servicing would post it."""
    with db.uow() as uow:
        left = ensure_account(uow, tenant_id, AccountSpec(*debit), "CNY")
        right = ensure_account(uow, tenant_id, AccountSpec(*credit), "CNY")
        ledger.post_transfer(uow, tenant_id, TransferSpec.simple(key, left, right, amount, "CNY"))
        uow.commit()
