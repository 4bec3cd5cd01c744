"""The demo's credit months on a small world: the three scenarios lend every month and are serviced every day; the
figures reported are the stored loans, repayments and ledger's; vintage curves never fall, roll-rate rows add up,
the P&L nets out, and the loan sub-ledger equals the general ledger. Both backends."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from types import SimpleNamespace

from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.credit.models import LoanApplication, LoanProduct
from finloop.credit.portfolio.domain import ROLL_COLUMNS
from finloop.credit.servicing.models import EndOfDayRun, LoanAccount, LoanMonthEnd, Repayment
from finloop.db.uow import Database
from finloop.ledger import reports
from finloop.sim import credit_day, credit_months
from finloop.sim.payments_day import run_day, trading_world
from tests.conftest import make_tenant

#: Friday 23:10 in Shanghai: the week's last cut-off has passed.
AFTER_THE_DAY = datetime(2026, 3, 6, 15, 10, tzinfo=UTC)
PER_SCENARIO = 8
MONTHLY = 4
#: The rest of March and four months: through July, when a cash loan of the credit day left unpaid has reached the
#: write-off threshold (90 days past due).
MONTHS = 4
Habit = credit_months.Habit
#: Every block of five borrowers has each habit once, so a few borrowers show them all; the test's one trading
#: merchant pays (a merchant that never paid would leave the revolving line without a repayment to check).
EVERY_HABIT = credit_months.Behaviour(tuple((habit, 1) for habit in Habit), (2, 10), (40, 80))
PAYING = credit_months.Behaviour(((Habit.ON_TIME, 1), (Habit.LATE, 1)), (2, 10), (40, 80))
BEHAVIOURS = {"bnpl_electronics": EVERY_HABIT, "cash_app": EVERY_HABIT, "merchant_revolving": PAYING}
COSTS = ("cost_of_funds", "provision", "credit_loss", "operating_cost")
INCOME = ("interest_income", "fee_income", "penalty_income", "recoveries")
ACCOUNT_COLUMNS = ("loan_id", "product_id", "origination_month", "principal_amount", "principal_outstanding",
                   "state", "bucket", "max_dpd", "written_off_amount")


def test_the_credit_months_lend_service_and_report_from_the_books(db: Database, clock: FrozenClock) -> None:
    tenant = make_tenant(db, "Credit Months Shop", timezone="Asia/Shanghai", cutoff="23:00")
    with trading_world(db, clock, tenant.id, seed=7) as world:
        run_day(world, payments=20, seed=7)
        clock.set(AFTER_THE_DAY)
        day = credit_day.run_credit_day(world, seed=7, applications_per_scenario=PER_SCENARIO)
        months = credit_months.run_credit_months(world, day, seed=7, months=MONTHS, monthly_applications=MONTHLY,
                                                 behaviours=BEHAVIOURS)

    # The credit day's night through the end of its month and four more: every calendar day closed once.
    assert months.first_day == date(2026, 3, 7) and months.last_day == date(2026, 7, 31)
    assert months.months == ["2026-03", "2026-04", "2026-05", "2026-06", "2026-07"]
    with db.uow(read_only=True) as uow:
        closed = list(uow.session.scalars(select(EndOfDayRun.business_date).where(
            EndOfDayRun.tenant_id == tenant.id, EndOfDayRun.status == "completed")
            .order_by(EndOfDayRun.business_date)))
        assert closed[-1] == months.last_day and len(closed) == len(set(closed))
        assert uow.session.scalar(select(func.count(func.distinct(LoanMonthEnd.month))).where(
            LoanMonthEnd.tenant_id == tenant.id)) == MONTHS + 1
        products = {p.id: p.code for p in uow.session.scalars(select(LoanProduct).where(
            LoanProduct.tenant_id == tenant.id))}
        # Plain copies: the rows are read after the unit of work ends.
        accounts = [SimpleNamespace(**{c: getattr(a, c) for c in ACCOUNT_COLUMNS}) for a in uow.session.scalars(
            select(LoanAccount).where(LoanAccount.tenant_id == tenant.id))]
        repayments = Counter(products[product_id] for product_id in uow.session.scalars(
            select(LoanAccount.product_id).join(Repayment, Repayment.loan_id == LoanAccount.loan_id).where(
                LoanAccount.tenant_id == tenant.id)))
        applications = Counter(uow.session.scalars(select(LoanApplication.product_code).where(
            LoanApplication.tenant_id == tenant.id)))
        trial = reports.trial_balance(uow, tenant.id)
    assert trial and all(t.balanced for t in trial)

    by_product = {s.product: s for s in months.scenarios}
    assert set(by_product) == {"bnpl_3", "merchant_revolving", "cash_30"}
    for product, book in by_product.items():
        mine = [a for a in accounts if products[a.product_id] == product]
        figures = book.as_dict()
        # Every scenario lent in more than one month (each month is a vintage) and was repaid.
        assert figures["loans"] == len(mine) > 0
        assert len({a.origination_month for a in mine}) >= 2
        assert figures["disbursed_amount"] == sum(a.principal_amount for a in mine)
        assert figures["repayments"] == repayments[product] > 0
        assert figures["applications"] == applications[product] >= figures["loans"]
        assert figures["written_off_amount"] == sum(a.written_off_amount for a in mine)
        open_loans = [a for a in mine if a.state in ("performing", "overdue")]
        assert figures["open_loans"] == len(open_loans)
        assert figures["principal_outstanding"] == sum(a.principal_outstanding for a in open_loans)
        overdue = sum(a.principal_outstanding for a in open_loans if a.bucket != "M0")
        assert book.book["overdue_principal"] == overdue

        # Vintage: the share ever 30+ days past due never falls as loans age, and counts the loans that were.
        for curve in book.vintage:
            rates = [p["rate"] for p in sorted(curve["points"], key=lambda p: p["months_on_book"])]
            bad = [p["loans_bad"] for p in sorted(curve["points"], key=lambda p: p["months_on_book"])]
            assert bad == sorted(bad) and rates == sorted(rates, key=float)
            cohort = [a for a in mine if a.origination_month == curve["origination_month"]]
            assert curve["loans"] == len(cohort) and bad[-1] <= sum(a.max_dpd >= 30 for a in cohort)
        # Roll rates: every row's cells sum to its totals; every column is a bucket or an absorbing state.
        assert [r["bucket"] for r in book.rolls] == ["M0", "M1", "M2", "M3", "M4"]
        for row in book.rolls:
            assert set(row["counts"]) == set(ROLL_COLUMNS)
            assert sum(row["counts"].values()) == row["loans"]
            assert sum(row["principals"].values()) == row["principal"]
        assert sum(r["loans"] for r in book.rolls) > 0
        # P&L: net is income less costs.
        pnl = book.pnl
        assert pnl["income"] == sum(pnl[k] for k in INCOME)
        assert pnl["net_profit"] == pnl["income"] - sum(pnl[k] for k in COSTS)
        assert pnl["interest_income"] + pnl["fee_income"] > 0

    # Borrowers fall behind: loans went overdue in every scenario's worst case, the cash app's never-payers were
    # written off at 90 days past due, and its bad debt rate is the written-off amount over what it lent.
    cash = [a for a in accounts if products[a.product_id] == "cash_30"]
    assert any(a.max_dpd > 0 for a in accounts if products[a.product_id] != "cash_30")
    written_off = [a for a in cash if a.state == "written_off"]
    assert written_off and all(a.max_dpd >= 90 for a in written_off)
    cash_figures = by_product["cash_30"].as_dict()
    assert cash_figures["bad_debt_rate"] is not None and float(cash_figures["bad_debt_rate"]) > 0
    assert by_product["cash_30"].pnl["credit_loss"] + by_product["cash_30"].pnl["provision"] > 0
    # Some borrowers paid their loan off early, some paid in part.
    with db.uow(read_only=True) as uow:
        kinds = Counter(uow.session.scalars(select(Repayment.kind).where(Repayment.tenant_id == tenant.id)))
    assert kinds["payoff"] > 0 and kinds["regular"] > 0

    # The books: the sub-ledger equals the general ledger, and the whole book's P&L matches it line by line.
    assert months.subledger_problems == []
    assert months.reconciliation and all(r["matches"] for r in months.reconciliation)
    whole = months.pnl
    assert whole["net_profit"] == whole["income"] - sum(whole[k] for k in COSTS)
    assert months.as_dict()["credit_months_subledger_ok"] and months.as_dict()["credit_months_pnl_reconciled"]
