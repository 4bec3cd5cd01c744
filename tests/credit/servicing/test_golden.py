"""The golden lifecycle: one loan from disbursement through an early partial repayment, an installment paid on
its due date, two missed installments, late fees and penalty interest across a month end, a collection, the
write-off at 45 days past due and a recovery; every day's postings are listed below and compared exactly, on
SQLite and PostgreSQL.

How the figures come about (12,400.00 at 12% a year, equal principal, 12 months, disbursed 2 March 2026):
- 2 to 19 March: 124.00 of March's interest accrues at 4.00 a day; the allowance is 1% of the exposure (M0).
- 20 March: 3,102.00 paid with "reduce_installment": 72.00 of interest accrued over 18 days, 30.00 of fee (1%) on
  3,000.00 of principal prepaid. The 9,400.00 left is rescheduled from 20 March over the same 12 due dates by
  actual/365 (a broken first period): 783.33 of principal a month, 40.18 of interest for the 13 days to 2 April.
- 2 April: the first installment (783.33 + 40.18) paid on its due date.
- 2 May and 2 June: the next two installments (84.99 and 79.84 of interest) are missed. From 3 May the loan is
  M1 (10% allowance); past the 3 days of grace a 20.00 late fee per installment and 0.1% a day of the overdue
  principal as penalty interest (0.78, then 1.57 a day once two installments are overdue), across the end of May.
- 10 June: a collector brings 500.00: the penalty first, then the two late fees, the interest of both installments
  (oldest first), and 260.76 of principal; the penalty falls to 1.31 a day.
- 16 June, 45 days past due: the day's allowance first (M2: 30% of the exposure with the day's interest), then
  written off against it, the rest to credit losses.
- 1 July: 300.00 recovered, all of it income.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from finloop.credit.servicing import eod
from finloop.credit.servicing.models import LoanInstallment
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.credit.servicing import golden
from tests.credit.servicing.conftest import account

EXPECTED: dict[str, tuple[str, ...]] = {
    "2026-03-02": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-12404 expense.provisions+12404",
    ),
    "2026-03-03": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-04": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-05": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-06": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-07": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-08": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-09": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-10": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-11": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-12": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-13": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-14": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-15": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-16": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-17": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-18": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-19": (
        "interest: income.interest-400 loan.interest+400",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-20": (
        "repayment: loan.principal-300000 loan.interest-7200 income.fees-3000 cash+310200",
        "interest: income.interest-309 loan.interest+309",
        "provision: expense.provisions-3069 loan.allowance+3069",
    ),
    "2026-03-21": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-22": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-23": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-24": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-25": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-4 expense.provisions+4",
    ),
    "2026-03-26": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-27": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-28": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-29": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-30": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-03-31": (
        "interest: income.interest-309 loan.interest+309",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-01": (
        "interest: income.interest-310 loan.interest+310",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-02": (
        "repayment: loan.principal-78333 loan.interest-4018 cash+82351",
        "interest: income.interest-283 loan.interest+283",
        "provision: expense.provisions-820 loan.allowance+820",
    ),
    "2026-04-03": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-2 expense.provisions+2",
    ),
    "2026-04-04": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-05": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-06": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-07": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-08": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-09": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-2 expense.provisions+2",
    ),
    "2026-04-10": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-11": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-12": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-13": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-14": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-2 expense.provisions+2",
    ),
    "2026-04-15": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-16": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-17": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-18": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-19": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-20": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-2 expense.provisions+2",
    ),
    "2026-04-21": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-22": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-23": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-24": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-25": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-26": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-2 expense.provisions+2",
    ),
    "2026-04-27": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-28": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-29": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-04-30": (
        "interest: income.interest-283 loan.interest+283",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-05-01": (
        "interest: income.interest-284 loan.interest+284",
        "provision: loan.allowance-3 expense.provisions+3",
    ),
    "2026-05-02": (
        "interest: income.interest-257 loan.interest+257",
        "provision: loan.allowance-2 expense.provisions+2",
    ),
    "2026-05-03": (
        "interest: income.interest-258 loan.interest+258",
        "provision: loan.allowance-78364 expense.provisions+78364",
    ),
    "2026-05-04": (
        "interest: income.interest-257 loan.interest+257",
        "provision: loan.allowance-26 expense.provisions+26",
    ),
    "2026-05-05": (
        "interest: income.interest-258 loan.interest+258",
        "provision: loan.allowance-26 expense.provisions+26",
    ),
    "2026-05-06": (
        "interest: income.interest-257 loan.interest+257",
        "fees: income.fees-2000 loan.fees+2000",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-233 expense.provisions+233",
    ),
    "2026-05-07": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-08": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-09": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-10": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-11": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-12": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-13": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-14": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-15": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-16": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-17": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-18": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-19": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-20": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-21": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-22": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-23": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-24": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-25": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-26": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-27": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-28": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-29": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-05-30": (
        "interest: income.interest-257 loan.interest+257",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-33 expense.provisions+33",
    ),
    "2026-05-31": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-78 loan.penalty+78",
        "provision: loan.allowance-34 expense.provisions+34",
    ),
    "2026-06-01": (
        "interest: income.interest-258 loan.interest+258",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-42 expense.provisions+42",
    ),
    "2026-06-02": (
        "interest: income.interest-231 loan.interest+231",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-176583 expense.provisions+176583",
    ),
    "2026-06-03": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-117 expense.provisions+117",
    ),
    "2026-06-04": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-116 expense.provisions+116",
    ),
    "2026-06-05": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-117 expense.provisions+117",
    ),
    "2026-06-06": (
        "interest: income.interest-231 loan.interest+231",
        "fees: income.fees-2000 loan.fees+2000",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-716 expense.provisions+716",
    ),
    "2026-06-07": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-117 expense.provisions+117",
    ),
    "2026-06-08": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-117 expense.provisions+117",
    ),
    "2026-06-09": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-157 loan.penalty+157",
        "provision: loan.allowance-117 expense.provisions+117",
    ),
    "2026-06-10": (
        "repayment: loan.principal-26076 loan.interest-16483 loan.fees-4000 loan.penalty-3441 cash+50000",
        "interest: income.interest-231 loan.interest+231",
        "penalty: income.penalty-131 loan.penalty+131",
        "provision: expense.provisions-14892 loan.allowance+14892",
    ),
    "2026-06-11": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-131 loan.penalty+131",
        "provision: loan.allowance-109 expense.provisions+109",
    ),
    "2026-06-12": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-131 loan.penalty+131",
        "provision: loan.allowance-109 expense.provisions+109",
    ),
    "2026-06-13": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-131 loan.penalty+131",
        "provision: loan.allowance-109 expense.provisions+109",
    ),
    "2026-06-14": (
        "interest: income.interest-231 loan.interest+231",
        "penalty: income.penalty-131 loan.penalty+131",
        "provision: loan.allowance-108 expense.provisions+108",
    ),
    "2026-06-15": (
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-131 loan.penalty+131",
        "provision: loan.allowance-109 expense.provisions+109",
    ),
    "2026-06-16": (
        "write_off: loan.principal-835591 loan.interest-3476 loan.penalty-917 loan.allowance+251956 "
        "expense.losses+588028",
        "interest: income.interest-232 loan.interest+232",
        "penalty: income.penalty-131 loan.penalty+131",
        "provision: loan.allowance-70 expense.provisions+70",
    ),
    "2026-07-01": ("recovery: income.recoveries-30000 cash+30000",),
}


def _interest(days: dict[str, tuple[str, ...]], first: date, last: date) -> int:
    total = 0
    for day, entries in days.items():
        if first.isoformat() <= day <= last.isoformat():
            for entry in entries:
                if entry.startswith("interest: "):
                    total += int(entry.split("loan.interest+")[1])
    return total


def test_one_loan_through_its_whole_life(db: Database, tenant: TenantHandle, bank: object) -> None:
    loan_id, lived = golden.run(db, tenant.id)
    days = {day: tuple(entries) for day, entries in lived.items() if entries}
    assert days == EXPECTED
    # The accruals of each period sum exactly to the interest its installment bills.
    with db.uow(read_only=True) as uow:
        billed = {row.number: row.interest_due for row in uow.session.scalars(select(LoanInstallment).where(
            LoanInstallment.loan_id == loan_id))}
        assert eod.check_subledger(uow, tenant.id) == []
    assert _interest(days, date(2026, 3, 20), date(2026, 4, 1)) == billed[1] == 4_018
    assert _interest(days, date(2026, 4, 2), date(2026, 5, 1)) == billed[2] == 8_499
    assert _interest(days, date(2026, 5, 2), date(2026, 6, 1)) == billed[3] == 7_984
    row = account(db, tenant.id, loan_id)
    assert (row.state, row.written_off_amount, row.recovered_amount) == ("written_off", 839_984, 30_000)
    assert (row.interest_income, row.fee_income, row.penalty_income) == (7_200 + 4_018 + 8_499 + 7_984 + 3_476,
                                                                          3_000 + 4_000, 3_441 + 917)
