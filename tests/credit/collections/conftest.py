"""Collections fixtures: the sandbox SMS and call connectors (fresh per test) and helpers that disburse a real loan,
put its account past due, record repayments and close a month.

The fixtures of ``tests/credit/conftest.py`` (the sandbox bureau, ...) apply here as well."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from finloop.credit import applications, contracts, disbursement, limits
from finloop.credit.collections import connectors
from finloop.credit.servicing.domain import bucket_for, day_number
from finloop.credit.servicing.models import EndOfDayRun, LoanAccount, LoanInstallment, LoanMonthEnd, Repayment
from finloop.db.uow import Database
from finloop.payouts import flows as payout_flows
from finloop.payouts.bank_sandbox import SandboxBank
from tests.credit.conftest import make_applicant
from tests.credit.test_funding import source
from tests.credit.test_limits import product, rated, reported

PRINCIPAL = 300_000
#: The sandbox SMS delivers to this number and its dialer answers it (last digit 5).
PHONE = "+86 138 0013 8005"


@dataclass
class Sandboxes:
    sms: connectors.SandboxSms
    calls: connectors.SandboxCalls


@pytest.fixture(autouse=True)
def sandboxes() -> Iterator[Sandboxes]:
    found = Sandboxes(connectors.SandboxSms(), connectors.SandboxCalls())
    connectors.use_sms(found.sms)
    connectors.use_calls(found.calls)
    yield found
    connectors.use_sms(None)
    connectors.use_calls(None)


@pytest.fixture
def bank(db: Database) -> Iterator[SandboxBank]:
    sandbox = SandboxBank(db.clock)
    with payout_flows.use_bank(sandbox):
        yield sandbox


def lending(db: Database, tenant_id: str) -> None:
    """A product and a funding source to lend from."""
    product(db, tenant_id, "consumer_installment")
    source(db, tenant_id, "bank_cheap", "0.04", 50_000_000)


def loan(db: Database, tenant_id: str, reference: str = "alice", *, phone: str | None = PHONE,
         national_id: str = "110101199003070011") -> str:
    """A disbursed 3-month loan of an applicant with this phone; returns the loan id."""
    party = make_applicant(db, tenant_id, reference, national_id=national_id, phone=phone)
    rated(db, tenant_id, party.applicant_id, "B")
    reported(db, tenant_id, party.applicant_id, debt=2_000_000, delinquencies=1, enquiries=2)
    with db.uow() as uow:
        limits.grant_line(uow, tenant_id, party.applicant_id, actor="test")
        row = applications.submit(uow, tenant_id, applicant_id=party.applicant_id,
                                  product_code="consumer_installment", principal_amount=PRINCIPAL, term=3,
                                  purpose="purchase", actor="test")
        assert row.status == "approved", row.reasons
        sha = contracts.get_contract(uow, tenant_id, row.id).sha256
        contracts.accept(uow, tenant_id, row.id, sha256=sha, channel="app", ip=None, actor="test")
        uow.commit()
    return disbursement.disburse(db, tenant_id, row.id, actor="test")


def first_due(db: Database, loan_id: str) -> date:
    with db.uow(read_only=True) as uow:
        found = uow.session.scalar(select(LoanInstallment.due_on).where(LoanInstallment.loan_id == loan_id,
                                                                        LoanInstallment.number == 1))
        assert found is not None
        return found


def set_account(db: Database, loan_id: str, *, dpd: int, state: str | None = None, billed: int = 10_000,
                **changes: Any) -> None:
    """Put the account ``dpd`` days past due (its first installment billed and unpaid), as the end of day would."""
    with db.uow() as uow:
        account = uow.session.get(LoanAccount, loan_id)
        assert account is not None
        due_on = uow.session.scalar(select(LoanInstallment.due_on).where(LoanInstallment.loan_id == loan_id,
                                                                         LoanInstallment.number == 1))
        assert due_on is not None
        account.dpd, account.bucket = dpd, bucket_for(dpd).value
        account.max_dpd = max(account.max_dpd, dpd)
        account.state = state or ("overdue" if dpd else "performing")
        account.principal_billed = billed if dpd else 0
        account.oldest_unpaid_due_day = day_number(due_on) if dpd else None
        for name, value in changes.items():
            setattr(account, name, value)
        uow.commit()


def repaid(db: Database, tenant_id: str, loan_id: str, amount: int, on: date, reference: str,
           source_: str = "manual") -> None:
    """A repayment row as the servicing service records it (the allocation is not what is tested here)."""
    with db.uow() as uow:
        uow.session.add(Repayment(
            id=uow.ids.new("repayment"), tenant_id=tenant_id, loan_id=loan_id, amount=amount, currency="CNY",
            kind="regular", source=source_, reference=reference, allocation={"principal": amount}, details={},
            business_date=on, entry_id=None, created_by="test", created_at=uow.clock.now()))
        uow.commit()


def month_closed(db: Database, tenant_id: str, loan_id: str, month: str, after: date, **figures: Any) -> None:
    """The month-end snapshot of a loan and a completed end of day after the month: what the bureau file reads."""
    with db.uow() as uow:
        account = uow.session.get(LoanAccount, loan_id)
        assert account is not None
        dpd = figures.get("dpd", 0)
        uow.session.add(LoanMonthEnd(
            loan_id=loan_id, month=month, tenant_id=tenant_id, product_id=account.product_id, kind=account.kind,
            currency=account.currency, origination_month=account.origination_month, months_on_book=1,
            state=figures.get("state", "overdue" if dpd else "performing"), bucket=bucket_for(dpd).value, dpd=dpd,
            max_dpd=figures.get("max_dpd", dpd),
            principal_outstanding=figures.get("principal_outstanding", account.principal_outstanding),
            provision_amount=0))
        if uow.session.get(EndOfDayRun, (tenant_id, after)) is None:
            now = uow.clock.now()
            uow.session.add(EndOfDayRun(tenant_id=tenant_id, business_date=after, status="completed", loans=1,
                                        chunks=1, totals={}, started_at=now, completed_at=now))
        uow.commit()


def days(n: int) -> timedelta:
    return timedelta(days=n)
