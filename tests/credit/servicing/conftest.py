"""Servicing fixtures: a disbursed loan (consumer installment, 12 months at 18%, disbursed on 2026-03-02) and
helpers that run the end of day and read the account and the general ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict
from finloop.credit import disbursement
from finloop.credit.servicing import eod
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.models import LoanAccount
from finloop.db.uow import Database
from finloop.payouts import flows as payout_flows
from finloop.payouts.bank_sandbox import SandboxBank
from tests.conftest import TenantHandle
from tests.credit.test_disbursement import borrower, signed
from tests.credit.test_funding import source
from tests.credit.test_limits import product

PRINCIPAL = 1_000_000


@pytest.fixture
def bank(db: Database) -> Iterator[SandboxBank]:
    sandbox = SandboxBank(db.clock)
    with payout_flows.use_bank(sandbox):
        yield sandbox


def make_loan(db: Database, tenant_id: str, *, code: str = "consumer_installment", amount: int = PRINCIPAL,
              term: int = 12, reference: str = "alice", national_id: str = "110101199003070011",
              **overrides: Any) -> str:
    with suppress(Conflict):  # another loan of the same product
        product(db, tenant_id, code, **overrides)
    source(db, tenant_id, f"bank_{reference}", "0.06", 50_000_000)
    applicant_id, _ = borrower(db, tenant_id, reference, national_id=national_id)
    return disbursement.disburse(db, tenant_id, signed(db, tenant_id, applicant_id, code, amount, term),
                                 actor="test")


@pytest.fixture
def loan(db: Database, tenant: TenantHandle, bank: SandboxBank) -> str:
    return make_loan(db, tenant.id)


def at(clock: FrozenClock, day: date, hour: int = 12) -> None:
    clock.set(datetime.combine(day, time(hour)).replace(tzinfo=clock.now().tzinfo))


def close_days(db: Database, tenant_id: str, first: date, last: date) -> None:
    """Run the end of day for every calendar day from ``first`` through ``last``, the clock just after each."""
    day = first
    while day <= last:
        at(db.clock, day + timedelta(days=1), 0)  # type: ignore[arg-type]
        eod.run_day(eod.committing(db), tenant_id, day)
        day += timedelta(days=1)


def account(db: Database, tenant_id: str, loan_id: str) -> LoanAccount:
    with db.uow(read_only=True) as uow:
        row = servicing.get_account(uow, tenant_id, loan_id)
        uow.session.expunge(row)
        return row
