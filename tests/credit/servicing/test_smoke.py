from __future__ import annotations

from datetime import date

from finloop.credit.servicing import eod
from finloop.credit.servicing import service as servicing
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.servicing.conftest import account, at, close_days


def test_smoke(db: Database, tenant: TenantHandle, loan: str) -> None:
    a = account(db, tenant.id, loan)
    print(a.period_interest, a.period_start_day, a.period_due_day, a.disbursed_on)
    close_days(db, tenant.id, date(2026, 3, 2), date(2026, 4, 10))
    a = account(db, tenant.id, loan)
    print(a.state, a.dpd, a.bucket, a.principal_billed, a.interest_billed, a.penalty_outstanding, a.fees_billed,
          a.provision_amount)
    at(db.clock, date(2026, 4, 11))
    with db.uow() as uow:
        r = servicing.repay(uow, tenant.id, loan, amount=200_000, reference="r1", actor="t")
        print(r.allocation)
        uow.commit()
    a = account(db, tenant.id, loan)
    print(a.state, a.dpd, a.advance_amount)
    with db.uow() as uow:
        r = servicing.repay(uow, tenant.id, loan, amount=2_000_000, reference="r2", prepayment="payoff", actor="t")
        print(r.allocation, r.kind, r.details)
        uow.commit()
    with db.uow() as uow:
        assert eod.check_subledger(uow, tenant.id) == []
