"""The golden lifecycle's scenario, shared by its test and by `python -m tests.credit.servicing.golden` (which
prints each day's postings)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from finloop.credit.servicing import eod
from finloop.credit.servicing import service as servicing
from finloop.db.uow import Database
from finloop.ledger.models import Account, Entry, Posting
from tests.credit.servicing.conftest import at, make_loan

#: 12,400.00 over 12 months, equal principal, 12% a year without a day count: the first month's interest is
#: 124.00, 4.00 a day over its 31 days. Penalty interest 36.5% a year is 0.1% of the overdue principal a day.
PRODUCT = {"method": "equal_principal", "rate": "0.12", "terms": [12], "grace_days": 3, "late_fee_amount": 2_000,
           "penalty_rate": "0.365", "prepayment": "fee", "prepayment_fee_rate": "0.01", "write_off_after_days": 45}
PRINCIPAL = 1_240_000
START = date(2026, 3, 2)
LAST = date(2026, 7, 20)
SHORT = {"assets:loans:installment:": "loan.", "income:credit:installment:": "income.",
         "expenses:credit:installment:": "expense.", "assets:bank:credit_collections": "cash",
         "liabilities:credit:advances": "advances"}


def _short(code: str) -> str:
    for prefix, alias in SHORT.items():
        if code.startswith(prefix):
            return alias + code[len(prefix):]
    return code


def _new_entries(db: Database, tenant_id: str, seen: set[str]) -> list[str]:
    lines = []
    with db.uow(read_only=True) as uow:
        for entry in uow.session.scalars(select(Entry).where(Entry.tenant_id == tenant_id)
                                         .order_by(Entry.created_at, Entry.id)):
            if entry.id in seen:
                continue
            seen.add(entry.id)
            rows = uow.session.execute(select(Account.code, Posting.amount).join(
                Account, Account.id == Posting.account_id).where(Posting.entry_id == entry.id)).all()
            kind = entry.transfer_key.split(":")[1]
            if kind == "eod":
                kind = entry.transfer_key.split(":")[4]
            parts = " ".join(f"{_short(code)}{amount:+d}" for code, amount in sorted(rows, key=lambda r: r[1]))
            lines.append(f"{kind}: {parts}")
    return lines


def pay(db: Database, tenant_id: str, loan_id: str, day: date, amount: int, reference: str,
        prepayment: str | None = None, source: str = "manual") -> None:
    at(db.clock, day, 12)  # type: ignore[arg-type]
    with db.uow() as uow:
        servicing.repay(uow, tenant_id, loan_id, amount=amount, reference=reference, source=source,
                        prepayment=prepayment, actor="test")
        uow.commit()


def run(db: Database, tenant_id: str) -> tuple[str, dict[str, list[str]]]:
    """Disburse, then live every day from the disbursement through ``LAST``: returns the loan and each day's
    new entries (the repayments of the day, then its end of day)."""
    at(db.clock, START, 9)  # type: ignore[arg-type]
    loan_id = make_loan(db, tenant_id, amount=PRINCIPAL, **PRODUCT)
    seen: set[str] = set()
    _new_entries(db, tenant_id, seen)  # the disbursement: the disbursement tests' business
    days: dict[str, list[str]] = {}
    events = {
        # Early partial repayment, reducing the installment: 72.00 interest accrued over 18 days, a 1% fee on
        # the 3,000.00 of principal prepaid.
        date(2026, 3, 20): lambda: pay(db, tenant_id, loan_id, date(2026, 3, 20), 310_200, "early",
                                       prepayment="reduce_installment"),
        # The first installment paid on its due date.
        date(2026, 4, 2): lambda: pay(db, tenant_id, loan_id, date(2026, 4, 2), 82_351, "april"),
        # The second (due 2 May) and third (due 2 June) are missed; a collector brings in 500.00 on 10 June.
        date(2026, 6, 10): lambda: pay(db, tenant_id, loan_id, date(2026, 6, 10), 50_000, "collected",
                                       source="collection"),
        # Written off at 45 days past due (16 June); 300.00 recovered afterwards.
        date(2026, 7, 1): lambda: pay(db, tenant_id, loan_id, date(2026, 7, 1), 30_000, "recovered"),
    }
    day = START
    while day <= LAST:
        if day in events:
            events[day]()
        at(db.clock, day + timedelta(days=1), 0)  # type: ignore[arg-type]
        eod.run_day(eod.committing(db), tenant_id, day)
        days[day.isoformat()] = _new_entries(db, tenant_id, seen)
        day += timedelta(days=1)
    return loan_id, days
