"""Repayment channel fixtures: a disbursed loan (tests.credit.servicing's), its borrower as a payments customer,
two generic sandbox channels taking cards, and helpers to read balances and repayments."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.credit import disbursement
from finloop.credit import service as credit
from finloop.credit.repayment_channels import service
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.models import LoanInstallment, Repayment
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.payments import gateway, postings
from finloop.payments import service as payments
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.models import Payment
from finloop.vault import service as vault
from tests.conftest import TenantHandle
from tests.credit.servicing.conftest import bank, make_loan  # noqa: F401 - the bank fixture disburses the loan

CHANNELS = {"unionpay": "generic", "paypal": "generic"}
#: Sandbox test cards that force an outcome whatever the channel's profile.
SUCCEEDS = "4000000000000077"
DECLINED = "4000000000000002"


@pytest.fixture
def sandbox(clock: FrozenClock) -> Iterator[InProcessSandbox]:
    box = InProcessSandbox(clock, seed=7, channels=CHANNELS)
    with gateway.use_http_client(box.client):
        yield box


def reliable(sandbox: InProcessSandbox, **changes: object) -> None:
    for code in CHANNELS:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20),
                                                      **changes))  # type: ignore[arg-type]


@dataclass
class Borrower:
    tenant_id: str
    loan_id: str
    applicant_id: str
    customer_id: str
    currency: str


def register_channels(db: Database, tenant_id: str, sandbox: InProcessSandbox) -> None:
    with db.uow() as uow:
        for code in CHANNELS:
            config = sandbox.config(code)
            payments.create_channel(uow, tenant_id, code=code, provider=config.provider, base_url=config.base_url,
                                    methods=["card", "qr"], currencies=["CNY"], fee_rate=Decimal("0.006"),
                                    settings={k: str(v) for k, v in config.settings.items()},
                                    credentials=dict(config.credentials))
        uow.commit()


def borrower_of(db: Database, tenant_id: str, loan_id: str) -> Borrower:
    with db.uow(read_only=True) as uow:
        loan = disbursement.get_loan(uow, tenant_id, loan_id)
        applicant = credit.get_applicant(uow, tenant_id, loan.applicant_id)
        return Borrower(tenant_id, loan_id, applicant.id, applicant.party_id, loan.currency)


@pytest.fixture
def borrower(db: Database, tenant: TenantHandle, sandbox: InProcessSandbox, bank: object) -> Borrower:  # noqa: F811
    reliable(sandbox)
    register_channels(db, tenant.id, sandbox)
    return borrower_of(db, tenant.id, make_loan(db, tenant.id))


def card(db: Database, who: Borrower, number: str = SUCCEEDS) -> str:
    with db.uow() as uow:
        record = vault.tokenize_card(uow, who.tenant_id, number=number, exp_month=12, exp_year=2030,
                                     customer_id=who.customer_id)
        uow.commit()
        return record.id


def first_due_on(db: Database, who: Borrower) -> date:
    with db.uow(read_only=True) as uow:
        due = uow.session.scalar(select(LoanInstallment.due_on).where(
            LoanInstallment.loan_id == who.loan_id, LoanInstallment.number == 1))
        assert due is not None
        return due


def installment_total(db: Database, who: Borrower, number: int = 1) -> int:
    with db.uow(read_only=True) as uow:
        row = uow.session.get(LoanInstallment, (who.loan_id, number))
        assert row is not None
        return row.principal_due + row.interest_due + row.fees_due


def wallet_balance(db: Database, who: Borrower) -> int:
    with db.uow() as uow:
        account_id = postings.wallet_account(uow, who.tenant_id, who.customer_id, who.currency)
        account = ledger.get_account(uow, who.tenant_id, account_id)
        balance = account.credits_posted - account.debits_posted
        uow.commit()
        return balance


def repayments(db: Database, who: Borrower) -> list[Repayment]:
    with db.uow(read_only=True) as uow:
        rows = servicing.repayments(uow, who.tenant_id, who.loan_id)
        for row in rows:
            uow.session.expunge(row)
        return rows


def payments_of(db: Database, who: Borrower) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Payment).where(
            Payment.tenant_id == who.tenant_id, Payment.order_reference == who.loan_id)) or 0)


def link(db: Database, who: Borrower, payment_id: str) -> tuple[str, str | None, str | None]:
    with db.uow(read_only=True) as uow:
        row = service.get_repayment_payment(uow, who.tenant_id, payment_id)
        return row.status, row.repayment_id, row.error_code
