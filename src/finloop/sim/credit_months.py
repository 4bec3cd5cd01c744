"""The credit months of ``finloop demo``: the credit day's three lending scenarios carried on for months on the
simulated clock, then their books read back through the portfolio service.

After the credit day, on the demo tenant and its simulated clock, one calendar day at a time through the rest of the
credit day's month and the given number of whole months after it:

1. 09:00 local: borrowers pay. Each borrower has a habit per scenario, dealt once from the scenario's shuffled deck
   of habits (``Behaviour``): most pay what is due on the due date, some pay it a few days late, some pay part on
   the due date and the rest later, a few never pay, and some pay the whole loan off before its first due date; the
   cash-loan app's borrowers behave worst. The money goes through ``servicing.repay`` (an early payoff for the
   amount ``payoff_quote`` gives).
2. On the origination day of each month after the credit day's: a round of applications per scenario through the
   credit day's own origination (``credit_day.run_scenario``): new shoppers and a few returning borrowers for
   buy-now-pay-later and the cash app; for the revolving line, the demo's merchants whose line has room, each asking
   for at most what the line has left. Each month is a vintage.
3. 23:30 local, after the cut-off: the loan book's end of day (``eod.run_through``: accrual, billing, days past due,
   penalties, late fees, write-off, allowance, the month-end snapshot on a month's last day) and the day's cost of
   funds (interest and the cost of funds both run on calendar days, so the cost accrues every day too).

Invariants owned here:
- deterministic given the seed: every draw comes from a generator seeded by it, loans and installments are visited
  in id order (ids sort by creation) and the clock only moves forward;
- every figure reported is read back from the database: applications from the stored applications; the book, the
  vintage curves, the roll rates and the profit and loss per product through ``credit.portfolio.service``; and
  ``eod.check_subledger`` after the last day (the end of day checks it after every day too and stops the run when
  the loan sub-ledger and the general ledger differ). Nothing printed is hard-coded.
"""

from __future__ import annotations

import calendar
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from finloop.core.calendar import zone
from finloop.core.money import Money, Rounding, round_minor
from finloop.credit import disbursement, limits, products
from finloop.credit import service as credit
from finloop.credit.models import LoanApplication, LoanProduct
from finloop.credit.portfolio import service as portfolio
from finloop.credit.portfolio.domain import ROLL_COLUMNS
from finloop.credit.servicing import eod
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.domain import BUCKETS, OPEN_STATES
from finloop.credit.servicing.models import LoanAccount, LoanInstallment, Repayment
from finloop.payments import service as payments
from finloop.sim.credit_day import SCENARIOS, CreditDay, Progress, Scenario, lending, run_scenario
from finloop.sim.payments_day import CURRENCY, TradingWorld
from finloop.tenancy.calendar import get_calendar

ACTOR = "demo"
PAY_AT = dtime(9, 0)
ORIGINATE_AT = dtime(10, 0)
#: After the tenant's 23:00 cut-off: the day is closed.
CLOSE_AT = dtime(23, 30)
#: Each month after the credit day's lends on this day of the month.
ORIGINATION_DAY = 5
#: Of a month's applicants to buy-now-pay-later and the cash app, one in this many is a returning borrower.
RETURNING_SHARE = 4
#: A loan is "bad" in the vintage curves once this many days past due.
VINTAGE_THRESHOLD_DPD = 30
PARTIAL_ROUNDING = Rounding.DOWN


class Habit(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    PARTIAL = "partial"
    NEVER = "never"
    EARLY = "early"


@dataclass(frozen=True)
class Behaviour:
    #: A scenario's mix of habits as a deck of cards: each new borrower is dealt the next card of a shuffled deck,
    #: and a new deck is shuffled when one runs out, so every block of borrowers has the mix exactly, in a seeded
    #: order (a small demo's few borrowers would stray far from a mix drawn independently).
    deck: tuple[tuple[Habit, int], ...]
    #: How many days after the due date a late payer pays (and a partial payer the rest): lowest, highest.
    late_days: tuple[int, int]
    #: The part of what is due a partial payer pays on the due date, in percent: lowest, highest.
    partial_percent: tuple[int, int]


BEHAVIOURS = {
    "bnpl_electronics": Behaviour(((Habit.ON_TIME, 20), (Habit.LATE, 2), (Habit.PARTIAL, 1), (Habit.NEVER, 1),
                                   (Habit.EARLY, 1)), (2, 10), (40, 80)),
    "merchant_revolving": Behaviour(((Habit.ON_TIME, 9), (Habit.LATE, 2), (Habit.PARTIAL, 1), (Habit.NEVER, 1),
                                     (Habit.EARLY, 1)), (2, 15), (50, 90)),
    "cash_app": Behaviour(((Habit.ON_TIME, 11), (Habit.LATE, 3), (Habit.PARTIAL, 2), (Habit.NEVER, 3),
                           (Habit.EARLY, 1)), (3, 25), (30, 70)),
}


@dataclass
class ScenarioBook:
    """One scenario's lending over the months, as the database and the portfolio service give it."""

    key: str
    title: str
    product: str
    applications: int
    pending_review: int
    repayments: int
    #: ``portfolio_summary``'s block for the demo's currency, and its application figures.
    book: dict[str, Any]
    approvals: dict[str, Any]
    vintage: list[dict[str, Any]]
    #: ``roll_rates``' rows for the demo's currency (empty with fewer than two month ends).
    rolls: list[dict[str, Any]]
    pnl: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        book = self.book
        return {
            "title": self.title, "product": self.product, "applications": self.applications,
            "approved": self.approvals["approved"], "declined": self.approvals["declined"],
            "pending_review": self.pending_review, "approval_rate": self.approvals["approval_rate"],
            "loans": book.get("disbursed_loans", 0), "disbursed_amount": book.get("disbursed_principal", 0),
            "repayments": self.repayments, "open_loans": book.get("open_loans", 0),
            "principal_outstanding": book.get("principal_outstanding", 0),
            "overdue_rate": book.get("overdue_rate"),
            "bucket_rates": {b["bucket"]: b["rate"] for b in book.get("buckets", [])},
            "written_off_amount": book.get("written_off_amount", 0), "bad_debt_rate": book.get("bad_debt_rate"),
            "vintage": {c["origination_month"]: {p["months_on_book"]: p["rate"] for p in c["points"]}
                        for c in self.vintage},
            "roll_rates": {r["bucket"]: {"loans": r["loans"], **r["counts"]} for r in self.rolls},
            "pnl": self.pnl}


@dataclass
class CreditMonths:
    first_day: date
    last_day: date
    months: list[str]
    scenarios: list[ScenarioBook]
    #: The whole book's lifetime P&L in the demo's currency and its line-by-line check against the general ledger.
    pnl: dict[str, Any]
    reconciliation: list[dict[str, Any]]
    subledger_problems: list[str]

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def as_dict(self) -> dict[str, Any]:
        return {"credit_months": {s.key: s.as_dict() for s in self.scenarios},
                "credit_months_period": [self.first_day.isoformat(), self.last_day.isoformat()],
                "credit_months_pnl": self.pnl,
                "credit_months_pnl_reconciled": all(r["matches"] for r in self.reconciliation),
                "credit_months_subledger_ok": not self.subledger_problems}


def _quiet(stage: str, done: int, total: int) -> None:
    return None


def last_day_of(day: date, months_later: int) -> date:
    """The last day of the month ``months_later`` months after ``day``'s."""
    index = day.year * 12 + day.month - 1 + months_later
    year, month = divmod(index, 12)
    return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


# ---------------------------------------------------------------------------------------------- the simulation


@dataclass
class _Months:
    world: TradingWorld
    credit: CreditDay
    monthly_applications: int
    progress: Progress
    rng: random.Random
    timezone: str
    #: Each product id's scenario.
    scenario_of: dict[str, Scenario]
    behaviours: dict[str, Behaviour] = field(default_factory=lambda: dict(BEHAVIOURS))
    #: (scenario key, applicant id) -> habit, dealt the first time the borrower's loan is seen.
    habits: dict[tuple[str, str], Habit] = field(default_factory=dict)
    decks: dict[str, list[Habit]] = field(default_factory=dict)
    #: Each loan seen: its scenario and borrower.
    loans: dict[str, tuple[Scenario, str]] = field(default_factory=dict)
    last_loan_id: str = ""
    #: Payments planned for a later day: (loan id, "due" for what is due then, "payoff" for all of it).
    plans: dict[date, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    #: Each scenario's parties so far (who may come back).
    parties: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def at(self, day: date, local: dtime) -> None:
        """Move the simulated clock to a local time of ``day`` (never backwards)."""
        instant = datetime.combine(day, local, tzinfo=zone(self.timezone))
        self.world.clock.set(max(self.world.clock.now(), instant))

    # -------------------------------------------------------------------------------------- borrowers

    def habit(self, scenario: Scenario, applicant_id: str) -> Habit:
        key = (scenario.key, applicant_id)
        if key not in self.habits:
            deck = self.decks.get(scenario.key)
            if not deck:
                deck = [habit for habit, cards in self.behaviours[scenario.key].deck for _ in range(cards)]
                self.rng.shuffle(deck)
                self.decks[scenario.key] = deck
            self.habits[key] = deck.pop()
        return self.habits[key]

    def see_new_loans(self, today: date) -> None:
        """Meet the loans disbursed since the last look; plan the early payoffs."""
        world = self.world
        first_due = (select(LoanInstallment.loan_id, func.min(LoanInstallment.due_on).label("due_on"))
                     .where(LoanInstallment.tenant_id == world.tenant_id).group_by(LoanInstallment.loan_id).subquery())
        with world.db.uow(read_only=True) as uow:
            rows = uow.session.execute(
                select(LoanAccount.loan_id, LoanAccount.applicant_id, LoanAccount.product_id,
                       LoanAccount.disbursed_on, first_due.c.due_on)
                .join(first_due, first_due.c.loan_id == LoanAccount.loan_id)
                .where(LoanAccount.tenant_id == world.tenant_id, LoanAccount.loan_id > self.last_loan_id)
                .order_by(LoanAccount.loan_id)).all()
        for loan_id, applicant_id, product_id, disbursed_on, due_on in rows:
            scenario = self.scenario_of[product_id]
            self.loans[loan_id] = (scenario, applicant_id)
            self.last_loan_id = loan_id
            if self.habit(scenario, applicant_id) is Habit.EARLY:
                latest = max(2, (due_on - disbursed_on).days - 2)
                self.plans[max(today, disbursed_on + timedelta(days=self.rng.randint(2, latest)))].append(
                    (loan_id, "payoff"))

    def pay(self, today: date) -> int:
        """The day's payments: what falls due today by each borrower's habit, then what was planned for today."""
        world = self.world
        with world.db.uow(read_only=True) as uow:
            due = sorted({row.loan_id for row in servicing.due_on(uow, world.tenant_id, today)})
        paid = 0
        for loan_id in due:
            scenario, applicant_id = self.loans[loan_id]
            behaviour = self.behaviours[scenario.key]
            habit = self.habit(scenario, applicant_id)
            if habit in (Habit.LATE, Habit.PARTIAL):
                self.plans[today + timedelta(days=self.rng.randint(*behaviour.late_days))].append((loan_id, "due"))
            if habit in (Habit.ON_TIME, Habit.EARLY):
                paid += self.repay(loan_id, today, "due", share=100)
            elif habit is Habit.PARTIAL:
                paid += self.repay(loan_id, today, "part", share=self.rng.randint(*behaviour.partial_percent))
        # Once per loan and kind: two plans for one day pay what is due then once.
        for loan_id, kind in dict.fromkeys(self.plans.pop(today, [])):
            paid += self.repay(loan_id, today, kind, share=100)
        return paid

    def repay(self, loan_id: str, today: date, kind: str, *, share: int) -> int:
        """Pay ``share`` percent of what is due now (all the loan owes for a payoff); 1 if money moved."""
        world = self.world
        with world.db.uow() as uow:
            if servicing.get_account(uow, world.tenant_id, loan_id).state not in OPEN_STATES:
                return 0
            if kind == "payoff":
                amount, prepayment = servicing.payoff_quote(uow, world.tenant_id, loan_id).total, "payoff"
            else:
                # A borrower paying part of the bill pays whole minor units, never more than the share.
                amount = round_minor(Fraction(servicing.amount_due(uow, world.tenant_id, loan_id) * share, 100),
                                     PARTIAL_ROUNDING)
                prepayment = None
            if amount <= 0:
                return 0
            servicing.repay(uow, world.tenant_id, loan_id, amount=amount, reference=f"demo:{today.isoformat()}:{kind}",
                            source="autodebit" if kind == "due" and share == 100 else "payment",
                            prepayment=prepayment, actor=ACTOR)
            uow.commit()
        return 1

    # -------------------------------------------------------------------------------------- lending

    def new_customers(self, today: date, scenario: Scenario, count: int) -> list[str]:
        with self.world.db.uow() as uow:
            ids = [payments.create_customer(uow, self.world.tenant_id,
                                            reference=f"demo-credit-{today:%Y%m}-{scenario.key}-{i:03d}").id
                   for i in range(count)]
            uow.commit()
        return ids

    def originate(self, today: date) -> None:
        """A round of applications per scenario, an hour apart, as on the credit day."""
        self.at(today, ORIGINATE_AT)
        for scenario in SCENARIOS:
            known = self.parties.setdefault(scenario.key, list(self.credit.parties.get(scenario.key, [])))
            if scenario.party_kind == "merchant":
                round_ = self.merchants_with_room(scenario, known)
            else:
                returning = self.rng.sample(known, min(len(known), self.monthly_applications // RETURNING_SHARE))
                fresh = [(c, 0) for c in self.new_customers(today, scenario,
                                                            self.monthly_applications - len(returning))]
                known.extend(fresh)
                round_ = scenario, returning + fresh
            if round_ is not None:
                run_scenario(self.world, round_[0], round_[1], self.credit.store_id, self.rng, self.progress)
            self.world.clock.advance(timedelta(hours=1))

    def merchants_with_room(self, scenario: Scenario,
                            known: list[tuple[str, int]]) -> tuple[Scenario, list[tuple[str, int]]] | None:
        """The merchants whose line has room for the product's smallest loan draw again, each at most what the
        tightest of them has left (the credit day showed the ones without trading data declined)."""
        world = self.world
        room: dict[str, int] = {}
        with world.db.uow(read_only=True) as uow:
            product = products.offered_product(uow, world.tenant_id, scenario.product)
            for party_id, _ in known:
                found = credit.list_applicants(uow, world.tenant_id, party_kind=scenario.party_kind,
                                               party_id=party_id)
                if found:
                    room[party_id] = limits.available_for(uow, world.tenant_id, found[0].id, product).available
        low, high = scenario.amounts
        parties = [party for party in known if room.get(party[0], 0) >= low]
        if not parties:
            return None
        return replace(scenario, amounts=(low, min(high, *(room[p] for p, _ in parties)))), parties

    def close(self, today: date) -> None:
        """The end of day of the loan book and the day's cost of funds, after the cut-off."""
        self.at(today, CLOSE_AT)
        world = self.world
        eod.run_through(eod.committing(world.db), world.tenant_id, today)
        with world.db.uow() as uow:
            disbursement.accrue_funding_cost(uow, world.tenant_id, today)
            uow.commit()


def run_credit_months(world: TradingWorld, day: CreditDay, *, seed: int = 7, months: int = 4,
                      monthly_applications: int = 12, behaviours: dict[str, Behaviour] | None = None,
                      progress: Progress = _quiet) -> CreditMonths:
    """Service and lend on, day by day, from the credit day through the end of its month and ``months`` more; the
    figures read back from storage. ``behaviours`` replaces the borrowers' habits of some scenarios."""
    if months < 1:
        raise ValueError("months is at least 1")
    with world.db.uow(read_only=True) as uow:
        timezone = get_calendar(uow, world.tenant_id).timezone
        codes = {s.product: s for s in SCENARIOS}
        scenario_of = {product_id: codes[code] for product_id, code in uow.session.execute(
            select(LoanProduct.id, LoanProduct.code).where(LoanProduct.tenant_id == world.tenant_id,
                                                           LoanProduct.code.in_(codes)))}
    sim = _Months(world, day, monthly_applications, progress, random.Random(f"{seed}:credit-months"), timezone,
                  scenario_of, behaviours={**BEHAVIOURS, **(behaviours or {})})
    first = world.clock.now().astimezone(zone(timezone)).date()
    last = last_day_of(first, months)
    originate_on = {last_day_of(first, n).replace(day=ORIGINATION_DAY) for n in range(1, months + 1)}
    total = (last - first).days + 1
    with lending(world, seed=seed):
        for n in range(total):
            today = first + timedelta(days=n)
            if today != first:
                sim.at(today, PAY_AT)
                sim.see_new_loans(today)
                sim.pay(today)
                if today in originate_on:
                    sim.originate(today)
            sim.close(today)
            progress("credit months: days", n + 1, total)
    month_list = sorted({_month(first + timedelta(days=n)) for n in range(total)})
    return read_back(world, first, last, month_list)


# ---------------------------------------------------------------------------------------------- reading back


def _currency_block(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return next((b for b in blocks if b["currency"] == CURRENCY), {})


def read_back(world: TradingWorld, first: date, last: date, months: list[str]) -> CreditMonths:
    """Each scenario's figures from the stored applications and repayments and the portfolio service."""
    tenant_id = world.tenant_id
    books = []
    with world.db.uow(read_only=True) as uow:
        for scenario in SCENARIOS:
            product_ids = select(LoanProduct.id).where(LoanProduct.tenant_id == tenant_id,
                                                       LoanProduct.code == scenario.product)
            stored = dict(uow.session.execute(
                select(LoanApplication.final_outcome.is_(None), func.count()).where(
                    LoanApplication.tenant_id == tenant_id, LoanApplication.product_code == scenario.product)
                .group_by(LoanApplication.final_outcome.is_(None))).all())
            repaid = uow.session.scalar(select(func.count()).select_from(Repayment).join(
                LoanAccount, LoanAccount.loan_id == Repayment.loan_id).where(
                Repayment.tenant_id == tenant_id, LoanAccount.product_id.in_(product_ids)))
            summary = portfolio.portfolio_summary(uow, tenant_id, as_of=last, product_code=scenario.product)
            curves = portfolio.vintage(uow, tenant_id, threshold_dpd=VINTAGE_THRESHOLD_DPD,
                                       product_code=scenario.product, currency_code=CURRENCY)["curves"]
            rolls: list[dict[str, Any]] = []
            if len(months) >= 2:
                matrices = portfolio.roll_rates(uow, tenant_id, month_from=months[0], month_to=months[-1],
                                                product_code=scenario.product, currency_code=CURRENCY)["matrices"]
                rolls = _currency_block(matrices).get("rows", [])
            lines = _currency_block(portfolio.pnl(uow, tenant_id, product_code=scenario.product, limit=0)["portfolio"])
            books.append(ScenarioBook(
                scenario.key, scenario.title, scenario.product, sum(stored.values()), stored.get(True, 0),
                int(repaid or 0), _currency_block(summary["currencies"]), summary["applications"], curves, rolls,
                lines))
        whole = portfolio.pnl(uow, tenant_id, limit=0)
        problems = eod.check_subledger(uow, tenant_id)
    return CreditMonths(first, last, months, books, _currency_block(whole["portfolio"]),
                        [r for r in whole["reconciliation"] or [] if r["currency"] == CURRENCY], problems)


# ---------------------------------------------------------------------------------------------- printing


def _major(minor: int | None) -> str:
    return "-" if minor is None else f"{Money(minor, CURRENCY).to_major():,}"


def _pct(rate: str | None) -> str:
    return "-" if rate is None else f"{Decimal(rate) * 100:.1f}%"


#: Short names, so the tables fit a terminal of 80 columns.
LABELS = {"bnpl_electronics": "BNPL", "merchant_revolving": "merchant line", "cash_app": "cash app"}


def print_credit_months(console: Console, months: CreditMonths) -> None:
    labels = [LABELS.get(s.key, s.key) for s in months.scenarios]
    console.print(f"Credit months, {months.first_day} to {months.last_day} ({months.days} days): "
                  + "; ".join(f"{LABELS.get(s.key, s.key)} = {s.title}" for s in months.scenarios))
    table = Table("", *labels, title=f"The book per scenario on {months.last_day} (CNY)")
    rows: list[tuple[str, list[str]]] = [
        ("applications", [str(s.applications) for s in months.scenarios]),
        ("approval rate (of decided)", [_pct(s.approvals["approval_rate"]) for s in months.scenarios]),
        ("loans disbursed", [str(s.book.get("disbursed_loans", 0)) for s in months.scenarios]),
        ("amount disbursed", [_major(s.book.get("disbursed_principal", 0)) for s in months.scenarios]),
        ("repayments", [str(s.repayments) for s in months.scenarios]),
        ("open loans", [str(s.book.get("open_loans", 0)) for s in months.scenarios]),
        ("principal outstanding", [_major(s.book.get("principal_outstanding", 0)) for s in months.scenarios]),
        ("overdue (M1+) of outstanding", [_pct(s.book.get("overdue_rate")) for s in months.scenarios])]
    for bucket in BUCKETS[1:]:
        rows.append((f"  {bucket.value}", [_pct({b["bucket"]: b["rate"] for b in s.book.get("buckets", [])}.get(
            bucket.value)) for s in months.scenarios]))
    rows += [("written off", [_major(s.book.get("written_off_amount", 0)) for s in months.scenarios]),
             ("bad debt (written off / lent)", [_pct(s.book.get("bad_debt_rate")) for s in months.scenarios])]
    for name, cells in rows:
        table.add_row(name, *cells)
    console.print(table)
    for s, label in zip(months.scenarios, labels, strict=True):
        _print_vintage(console, s, label)
        _print_rolls(console, s, label, months.months)
    _print_pnl(console, months, labels)
    verdict = "[green]yes[/green]" if not months.subledger_problems else \
        "[red]NO: " + "; ".join(months.subledger_problems[:3]) + "[/red]"
    console.print(f"loan sub-ledger = general ledger (per currency, limit group and component): {verdict}")


def _print_vintage(console: Console, s: ScenarioBook, label: str) -> None:
    horizon = max((p["months_on_book"] for c in s.vintage for p in c["points"]), default=0)
    table = Table("originated", "loans", *(f"MOB {n}" for n in range(horizon + 1)),
                  title=f"{label}: vintage, loans ever {VINTAGE_THRESHOLD_DPD}+ days past due by months on book")
    for curve in s.vintage:
        points = {p["months_on_book"]: p["rate"] for p in curve["points"]}
        table.add_row(curve["origination_month"], str(curve["loans"]),
                      *(_pct(points[n]) if n in points else "" for n in range(horizon + 1)))
    console.print(table)


#: The roll-rate columns as printed: the buckets, then the two absorbing states.
ROLL_HEADERS = {"paid_off": "paid", "written_off": "w/off"}


def _print_rolls(console: Console, s: ScenarioBook, label: str, months: list[str]) -> None:
    if not s.rolls:
        return
    table = Table("from", "loans", *(ROLL_HEADERS.get(c, c) for c in ROLL_COLUMNS),
                  title=f"{label}: roll rates, where loans stood a month end later ({months[0]} to {months[-1]})")
    for row in s.rolls:
        shares = row["count_shares"] or {}
        table.add_row(row["bucket"], str(row["loans"]), *(
            f"{Decimal(shares[c]) * 100:.0f}%" if row["counts"][c] else "-" for c in ROLL_COLUMNS))
    console.print(table)


PNL_LINES = (("interest", "interest_income"), ("fees", "fee_income"), ("penalty interest", "penalty_income"),
             ("recoveries", "recoveries"), ("income", "income"), ("cost of funds", "cost_of_funds"),
             ("provisions", "provision"), ("credit losses", "credit_loss"), ("operating cost", "operating_cost"),
             ("net", "net_profit"))


def _print_pnl(console: Console, months: CreditMonths, labels: list[str]) -> None:
    columns = [*(s.pnl for s in months.scenarios), months.pnl]
    table = Table("", *labels, "whole book", title=f"Profit and loss to {months.last_day} (CNY)")
    for name, key in PNL_LINES:
        table.add_row(name, *(_major(lines.get(key)) for lines in columns))
    table.add_row("margin (net / lent)", *(_pct(lines.get("margin_rate")) for lines in columns))
    console.print(table)
    reconciled = "[green]yes[/green]" if all(r["matches"] for r in months.reconciliation) else "[red]NO[/red]"
    console.print(f"   the whole book's P&L equals the general ledger line by line: {reconciled}; a scenario's cost "
                  f"of funds is its loans' share (what no loan could take: "
                  f"{_major(months.pnl.get('unallocated_cost_of_funds'))})")
