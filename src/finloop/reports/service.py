"""Every report as a table: named, typed columns and rows of plain values (money in minor units beside its
currency, rates as decimal strings), computed from the tenant's data in one read-only unit of work.

The same table feeds the JSON answer, the CSV download, the console page and ``finloop reports show``, so the
four never disagree. Where a domain already computes a figure (the ledger's statements, the credit portfolio's
summary, vintage, roll rates and P&L) the report reuses it rather than counting again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select

from finloop.core.errors import InvalidRequest, NotFound
from finloop.core.money import is_currency
from finloop.credit.models import FundingSource, Loan, LoanProduct
from finloop.credit.portfolio import service as portfolio
from finloop.credit.servicing.domain import OPEN_STATES
from finloop.credit.servicing.models import LoanAccount, LoanInstallment
from finloop.db.uow import UnitOfWork
from finloop.ledger import reports as statements
from finloop.payments.dispute_models import Dispute
from finloop.payments.models import Payment, Refund
from finloop.payouts.models import Payout
from finloop.reports import projection
from finloop.risk.aml.models import AmlAlert
from finloop.risk.cases.models import RiskCase
from finloop.risk.domain import Label, Outcome
from finloop.risk.domain import rate as ratio
from finloop.risk.models import RiskDecision
from finloop.settlement.models import SettlementBatch

#: The longest period a report covers, so that one request cannot read years of payments.
MAX_DAYS = 366
MAX_FORECAST_MONTHS = 60
DEFAULT_DAYS = 30
#: Payments at or above this (in minor units) are listed as large unless the request says otherwise.
DEFAULT_LARGE_AMOUNT = 5_000_000
#: Rows a listing report returns at most; more belongs to ``finloop export parquet``.
LISTING_LIMIT = 10_000
#: Days past due at which a loan counts as defaulted in the default curves the forecast reads.
DEFAULT_DPD = 90
RATE_PLACES = Decimal("0.000001")


class Kind:
    TEXT = "text"
    INTEGER = "integer"
    MONEY = "money"  # minor units; the row's ``currency`` says which
    RATE = "rate"  # a decimal string, 0.1234 = 12.34 %
    DATE = "date"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    label: str
    kind: str = Kind.TEXT


@dataclass(frozen=True, slots=True)
class Chart:
    """How the console draws a report: ``bar`` of ``y`` per ``x``, or ``line`` of ``y`` over ``x`` with one line
    per value of ``series``. ``where`` keeps only the rows whose column has the value."""

    kind: str
    x: str
    y: str
    title: str
    series: str | None = None
    where: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Params:
    start: date
    end: date
    currency: str | None = None
    threshold_amount: int = DEFAULT_LARGE_AMOUNT
    months: int = 12

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        """The instant after the last day: periods are [start_at, end_at)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


@dataclass
class Table:
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    title: str
    group: str
    description: str
    columns: tuple[Column, ...]
    compute: Callable[[UnitOfWork, str, Params], Table]
    chart: Chart | None = None
    #: The request parameters the report reads besides ``from`` and ``to``.
    uses: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------------ parameters


def _day(text: str | None, param: str) -> date | None:
    if text is None or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest("A date is YYYY-MM-DD.", code="invalid_date", param=param) from None


def _whole(text: str | None, param: str, *, lowest: int, highest: int, code: str) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidRequest(f"{param} is a whole number.", code=code, param=param) from None
    if not lowest <= value <= highest:
        raise InvalidRequest(f"{param} is from {lowest} to {highest}.", code=code, param=param)
    return value


def parse_params(values: Mapping[str, str | None], today: date) -> Params:
    """The parameters as a request gives them (text), checked: a bad one raises ``InvalidRequest`` naming it."""
    end = _day(values.get("to"), "to") or today
    start = _day(values.get("from"), "from") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidRequest("from is on or before to.", code="invalid_range", param="from")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"A report covers at most {MAX_DAYS} days.", code="invalid_range", param="from")
    code = (values.get("currency") or "").strip().upper() or None
    if code is not None and not is_currency(code):
        raise InvalidRequest(f"{code!r} is not an ISO 4217 currency.", code="invalid_currency", param="currency")
    threshold = _whole(values.get("threshold_amount"), "threshold_amount", lowest=1, highest=10**15,
                       code="invalid_threshold")
    months = _whole(values.get("months"), "months", lowest=1, highest=MAX_FORECAST_MONTHS, code="invalid_months")
    return Params(start, end, code, threshold or DEFAULT_LARGE_AMOUNT, months or 12)


# ------------------------------------------------------------------------------------------------ helpers


def _in_period(column: Any, p: Params) -> tuple[Any, Any]:
    return column >= p.start_at, column < p.end_at


def _currency_filter(query: Any, column: Any, p: Params) -> Any:
    return query.where(column == p.currency) if p.currency else query


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _decimal_rate(numerator: Decimal, denominator: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    if denominator == 0:
        return Decimal(0)
    return (numerator / denominator).quantize(RATE_PLACES, rounding=rounding)


# ------------------------------------------------------------------------------------------------ financial


def _statement_window(p: Params) -> tuple[datetime, datetime]:
    # The ledger's statement covers (start, end]: one microsecond before each bound makes it [start_at, end_at).
    tick = timedelta(microseconds=1)
    return p.start_at - tick, p.end_at - tick


def income_statement(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    start, end = _statement_window(p)
    rows = []
    for found in statements.income_statement(uow, tenant_id, start=start, end=end):
        if p.currency and found.currency != p.currency:
            continue
        for section, part in (("income", found.income), ("expenses", found.expenses)):
            for line in part.lines:
                if line.balance:
                    rows.append({"currency": found.currency, "section": section, "account_code": line.code,
                                 "account_name": line.name, "amount": line.balance})
            rows.append({"currency": found.currency, "section": f"total_{section}", "account_code": "",
                         "account_name": "", "amount": part.total})
        rows.append({"currency": found.currency, "section": "net_income", "account_code": "", "account_name": "",
                     "amount": found.net_income})
    return Table(rows, ["Postings effective from the first day 00:00 UTC to the end of the last day."])


def balance_sheet(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    _, as_of = _statement_window(p)
    rows, notes = [], [f"As of the end of {p.end.isoformat()} (UTC)."]
    for sheet in statements.balance_sheet(uow, tenant_id, as_of=as_of):
        if p.currency and sheet.currency != p.currency:
            continue
        for section, part in (("assets", sheet.assets), ("liabilities", sheet.liabilities),
                              ("equity", sheet.equity)):
            for line in part.lines:
                if line.balance:
                    rows.append({"currency": sheet.currency, "section": section, "account_code": line.code,
                                 "account_name": line.name, "amount": line.balance})
            rows.append({"currency": sheet.currency, "section": f"total_{section}", "account_code": "",
                         "account_name": "", "amount": part.total})
        rows.append({"currency": sheet.currency, "section": "retained_earnings", "account_code": "",
                     "account_name": "Income less expenses to date", "amount": sheet.retained_earnings})
        if not sheet.balanced:
            notes.append(f"{sheet.currency}: assets differ from liabilities + equity + retained earnings.")
    return Table(rows, notes)


#: Revenue sources by ledger income account code: the first prefix that matches names the source.
REVENUE_SOURCES: tuple[tuple[str, str], ...] = (
    ("income:commission:", "commission"),
    ("income:fee_recovery:", "platform_fees"),
    ("income:fx_gains", "fx_gains"),
    ("income:wealth:", "wealth_spread"),
    ("income:fund:", "wealth_spread"),
)
_CREDIT_INCOME = {"interest": "credit_interest", "subsidy": "credit_interest", "fees": "credit_fees",
                  "penalty": "credit_fees", "recoveries": "credit_recoveries"}
SOURCES = ("commission", "platform_fees", "credit_interest", "credit_fees", "credit_recoveries", "wealth_spread",
           "fx_gains", "other")


def revenue_source(account_code: str) -> str:
    """``income:credit:<group>:interest`` is credit interest, ``income:commission:<shard>`` commission..."""
    parts = account_code.split(":")
    if len(parts) == 4 and parts[:2] == ["income", "credit"]:
        return _CREDIT_INCOME.get(parts[3], "other")
    return next((name for prefix, name in REVENUE_SOURCES if account_code.startswith(prefix)), "other")


def revenue_by_source(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    start, end = _statement_window(p)
    rows = []
    for found in statements.income_statement(uow, tenant_id, start=start, end=end):
        if p.currency and found.currency != p.currency:
            continue
        amounts: Counter[str] = Counter()
        for line in found.income.lines:
            amounts[revenue_source(line.code)] += line.balance
        total = sum(amounts.values())
        for source in SOURCES:
            rows.append({"currency": found.currency, "source": source, "amount": amounts[source],
                         "share_rate": ratio(amounts[source], total)})
        rows.append({"currency": found.currency, "source": "total", "amount": total,
                     "share_rate": ratio(total, total)})
    return Table(rows, ["Wealth has no income account of its own yet (a fund's income is the holders'), so "
                        "wealth_spread is zero until one (income:wealth:...) is booked."])


def channel_statements(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    days: dict[tuple[date, str, str], dict[str, int]] = defaultdict(Counter)
    paid = _currency_filter(select(Payment.succeeded_at, Payment.channel, Payment.currency, Payment.captured_amount,
                                   Payment.fee_amount)
                            .where(Payment.tenant_id == tenant_id, *_in_period(Payment.succeeded_at, p)),
                            Payment.currency, p)
    for at, channel, code, captured, fee in uow.session.execute(paid):
        figures = days[(_utc(at).date(), channel or "none", code)]
        figures["payments"] += 1
        figures["payment_amount"] += int(captured)
        figures["fee_amount"] += int(fee)
    # A refund has no completion time of its own: its last update is when it succeeded.
    refunded = _currency_filter(select(Refund.updated_at, Refund.channel, Refund.currency, Refund.amount,
                                       Refund.fee_returned_amount)
                                .where(Refund.tenant_id == tenant_id, Refund.status == "succeeded",
                                       *_in_period(Refund.updated_at, p)), Refund.currency, p)
    for at, channel, code, amount, fee_back in uow.session.execute(refunded):
        figures = days[(_utc(at).date(), channel, code)]
        figures["refunds"] += 1
        figures["refund_amount"] += int(amount)
        figures["fee_amount"] -= int(fee_back)
    rows = []
    for (day, channel, code), f in sorted(days.items()):
        rows.append({"day": day.isoformat(), "channel": channel, "currency": code, "payments": f["payments"],
                     "payment_amount": f["payment_amount"], "refunds": f["refunds"],
                     "refund_amount": f["refund_amount"], "fee_amount": f["fee_amount"],
                     "net_amount": f["payment_amount"] - f["refund_amount"] - f["fee_amount"]})
    return Table(rows, ["Payments by the day they succeeded, refunds by the day they succeeded; fees are the "
                        "channel's, less what refunds returned; net = payments - refunds - fees."])


# ------------------------------------------------------------------------------------------------ operations


def payment_success(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    query = _currency_filter(select(Payment.created_at, Payment.channel, Payment.method, Payment.status,
                                    Payment.succeeded_at)
                             .where(Payment.tenant_id == tenant_id, *_in_period(Payment.created_at, p)),
                             Payment.currency, p)
    for created_at, channel, method, status, succeeded_at in uow.session.execute(query):
        for key in (("channel", channel or "none"), ("method", method or "none"),
                    ("hour", f"{_utc(created_at).hour:02d}")):
            figures = counts[key]
            figures[0] += 1
            figures[1] += succeeded_at is not None
            figures[2] += status == "failed"
    order = {"channel": 0, "method": 1, "hour": 2}
    rows = [{"dimension": dimension, "value": value, "payments": n, "succeeded": ok, "failed": failed,
             "success_rate": ratio(ok, n)}
            for (dimension, value), (n, ok, failed) in sorted(counts.items(), key=lambda i: (order[i[0][0]], i[0][1]))]
    return Table(rows, ["Payments created in the period; success = it succeeded (whenever), hour in UTC."])


def refund_rate(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    figures: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    query = _currency_filter(select(Payment.channel, Payment.currency, Payment.captured_amount,
                                    Payment.refunded_amount)
                             .where(Payment.tenant_id == tenant_id, *_in_period(Payment.succeeded_at, p)),
                             Payment.currency, p)
    for channel, code, captured, refunded in uow.session.execute(query):
        f = figures[(channel or "none", code)]
        f[0] += 1
        f[1] += int(captured)
        f[2] += refunded > 0
        f[3] += int(refunded)
    rows = [{"channel": channel, "currency": code, "payments": n, "captured_amount": captured,
             "refunded_payments": refunded_n, "refunded_amount": refunded,
             "count_rate": ratio(refunded_n, n), "amount_rate": ratio(refunded, captured)}
            for (channel, code), (n, captured, refunded_n, refunded) in sorted(figures.items())]
    return Table(rows, ["Payments that succeeded in the period and what of them has been refunded to date."])


def timeliness(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])

    def count(kind: str, code: str, due: date, done: date) -> None:
        late = max((done - due).days, 0)
        g = groups[(kind, code)]
        g[0] += 1
        g[1] += late == 0
        g[2] = max(g[2], late)
        g[3] += late

    batches = _currency_filter(select(SettlementBatch.currency, SettlementBatch.settle_date,
                                      SettlementBatch.settled_on)
                               .where(SettlementBatch.tenant_id == tenant_id, SettlementBatch.status == "settled",
                                      SettlementBatch.settled_on >= p.start, SettlementBatch.settled_on <= p.end),
                               SettlementBatch.currency, p)
    for code, due, done in uow.session.execute(batches):
        count("settlement", code, due, done)
    payouts = _currency_filter(select(Payout.currency, Payout.created_at, Payout.executed_on)
                               .where(Payout.tenant_id == tenant_id, Payout.executed_on.is_not(None),
                                      Payout.executed_on >= p.start, Payout.executed_on <= p.end),
                               Payout.currency, p)
    for code, created_at, done in uow.session.execute(payouts):
        count("payout", code, _utc(created_at).date(), done)
    rows = [{"kind": kind, "currency": code, "items": n, "on_time": on_time, "late": n - on_time,
             "max_days_late": worst, "total_days_late": days, "on_time_rate": ratio(on_time, n)}
            for (kind, code), (n, on_time, worst, days) in sorted(groups.items())]
    return Table(rows, ["Settlement: the day the cycle made it due against the day it was settled. Payout: the "
                        "day it was requested (an automatic one is requested on its scheduled day) against the "
                        "day the bank executed it. Both by the day they were done."])


# ------------------------------------------------------------------------------------------------ risk


def rule_performance(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    figures: dict[str, Counter[str]] = defaultdict(Counter)
    query = select(RiskDecision.fired, RiskDecision.outcome, RiskDecision.label).where(
        RiskDecision.tenant_id == tenant_id, *_in_period(RiskDecision.decided_at, p))
    for fired, outcome, label in uow.session.execute(query):
        for rule_id in {f["rule_id"] for f in fired}:
            f = figures[rule_id]
            f["hits"] += 1
            f["declines"] += outcome == Outcome.DECLINE.value
            f["reviews"] += outcome == Outcome.REVIEW.value
            f["labelled"] += label is not None
            f["fraud"] += label == Label.FRAUD_CONFIRMED.value
    rows = [{"rule_id": rule_id, "hits": f["hits"], "declines": f["declines"], "reviews": f["reviews"],
             "labelled": f["labelled"], "fraud": f["fraud"], "precision_rate": ratio(f["fraud"], f["hits"])}
            for rule_id, f in sorted(figures.items())]
    return Table(rows, ["Decisions made in the period. A hit is a decision the rule fired in; its declines and "
                        "reviews are the decision's outcome; precision = hits labelled fraud_confirmed / hits "
                        "(unlabelled hits count as not fraud)."])


def fraud_losses(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    figures: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    query = _currency_filter(select(Dispute.currency, Dispute.reason, Dispute.status, Dispute.amount,
                                    Dispute.fee_amount)
                             .where(Dispute.tenant_id == tenant_id, *_in_period(Dispute.created_at, p)),
                             Dispute.currency, p)
    for code, reason, status, amount, fee in uow.session.execute(query):
        f = figures[(code, reason)]
        f["disputes"] += 1
        f["disputed_amount"] += int(amount)
        f["won"] += status == "won"
        f["open"] += status in ("needs_response", "under_review")
        if status == "lost":
            f["lost"] += 1
            f["lost_amount"] += int(amount)
            f["fee_amount"] += int(fee)
    rows = [{"currency": code, "reason": reason, "disputes": f["disputes"], "disputed_amount": f["disputed_amount"],
             "open": f["open"], "won": f["won"], "lost": f["lost"], "lost_amount": f["lost_amount"],
             "fee_amount": f["fee_amount"], "loss_amount": f["lost_amount"] + f["fee_amount"]}
            for (code, reason), f in sorted(figures.items())]
    return Table(rows, ["Disputes (chargebacks) opened in the period; the loss is what lost disputes took back "
                        "plus the channel's chargeback fee."])


def aml_alerts(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    figures: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    outcomes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    query = _currency_filter(select(AmlAlert.scenario, AmlAlert.currency, AmlAlert.status, AmlAlert.total_amount,
                                    RiskCase.status, RiskCase.outcome)
                             .outerjoin(RiskCase, (RiskCase.id == AmlAlert.case_id)
                                        & (RiskCase.tenant_id == AmlAlert.tenant_id))
                             .where(AmlAlert.tenant_id == tenant_id, *_in_period(AmlAlert.created_at, p)),
                             AmlAlert.currency, p)
    for scenario, code, status, amount, case_status, case_outcome in uow.session.execute(query):
        f = figures[(scenario, code)]
        f["alerts"] += 1
        f["total_amount"] += int(amount)
        f["open"] += status == "open"
        f["closed"] += status == "closed"
        if case_status is not None:
            f["escalated"] += 1
            outcomes[(scenario, code)][case_outcome or case_status] += 1
    rows = [{"scenario": scenario, "currency": code, "alerts": f["alerts"], "total_amount": f["total_amount"],
             "open": f["open"], "closed": f["closed"], "escalated": f["escalated"],
             "case_outcomes": ", ".join(f"{k}: {v}" for k, v in sorted(outcomes[(scenario, code)].items()))}
            for (scenario, code), f in sorted(figures.items())]
    return Table(rows, ["Alerts raised in the period; escalated = put in a case; a case's outcome once closed, "
                        "its status while open."])


# ------------------------------------------------------------------------------------------------ credit


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def credit_portfolio(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    found = portfolio.portfolio_summary(uow, tenant_id, as_of=p.end, since=p.start)
    rows = [{**row, "value": None if row["value"] is None else str(row["value"])}
            for row in portfolio.summary_rows(found)
            if not p.currency or row["currency"] in ("", p.currency)]
    return Table(rows, [f"The book on {p.end.isoformat()} ({found['source']}); applications and re-borrowing "
                        f"from {p.start.isoformat()}. Definitions: docs/credit-portfolio.md."])


def credit_vintage(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    found = portfolio.vintage(uow, tenant_id, threshold_dpd=30, basis="principal", currency_code=p.currency,
                              from_month=_month(p.start), to_month=_month(p.end))
    return Table(portfolio.vintage_rows(found), ["Loans originated in the period's months; bad = ever 30+ days "
                                                 "past due by that month on book; rate by principal."])


def credit_roll_rates(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    # From the month end before the period, so that every month end in it is a "to".
    before = _month(p.start.replace(day=1) - timedelta(days=1))
    found = portfolio.roll_rates(uow, tenant_id, month_from=before, month_to=_month(p.end), currency_code=p.currency)
    return Table(portfolio.roll_rows(found), [f"Month ends {before} to {_month(p.end)}, each against the next; "
                                              f"{found['unmatched_loans']} loan-months without a next month end."])


def credit_pnl(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    found = portfolio.pnl(uow, tenant_id)
    rows = [{k: v for k, v in row.items() if k not in ("level", "loan_id")} for row in portfolio.pnl_rows(found)
            if row["level"] == "portfolio" and (not p.currency or row["currency"] == p.currency)]
    return Table(rows, ["Each loan's lifetime to date, summed per currency (definitions: docs/credit-portfolio.md)."])


def _books(uow: UnitOfWork, tenant_id: str, p: Params) -> list[projection.Book]:
    """The open book per currency on ``to``: outstanding, its weighted rate, the schedules ahead, the default
    rate of the vintage curves and the weighted funding rate."""
    query = _currency_filter(
        select(LoanAccount.loan_id, LoanAccount.currency, LoanAccount.principal_outstanding, LoanProduct.rate,
               LoanProduct.rate_basis)
        .join(LoanProduct, LoanProduct.id == LoanAccount.product_id)
        .where(LoanAccount.tenant_id == tenant_id, LoanAccount.state.in_(OPEN_STATES),
               LoanAccount.disbursed_on <= p.end), LoanAccount.currency, p)
    outstanding: Counter[str] = Counter()
    weighted: dict[str, Decimal] = defaultdict(Decimal)
    for _, code, amount, rate, basis in uow.session.execute(query):
        annual = Decimal(rate) * (365 if basis == "daily" else 1)
        outstanding[code] += int(amount)
        weighted[code] += Decimal(int(amount)) * annual / projection.MONTHS_PER_YEAR
    base_month = p.end.year * 12 + p.end.month
    scheduled: dict[str, Counter[int]] = defaultdict(Counter)
    due = select(LoanAccount.currency, LoanInstallment.due_on, LoanInstallment.principal_due,
                 LoanInstallment.principal_paid).join(
        LoanAccount, (LoanAccount.loan_id == LoanInstallment.loan_id)).where(
        LoanInstallment.tenant_id == tenant_id, LoanAccount.state.in_(OPEN_STATES), LoanInstallment.due_on > p.end)
    for code, due_on, principal_due, principal_paid in uow.session.execute(_currency_filter(due, LoanAccount.currency,
                                                                                            p)):
        ahead = max(due_on.year * 12 + due_on.month - base_month, 1)
        scheduled[code][ahead] += int(principal_due) - int(principal_paid)
    defaults = _default_rates(uow, tenant_id, p)
    funding = _funding_rates(uow, tenant_id)
    books = []
    for code in sorted(outstanding):
        months = max(scheduled[code], default=0)
        books.append(projection.Book(
            currency=code, outstanding_amount=outstanding[code],
            monthly_rate=_decimal_rate(weighted[code], Decimal(outstanding[code])),
            monthly_default_rate=defaults.get(code, Decimal(0)), funding_rate=funding.get(code, Decimal(0)),
            scheduled_principal=tuple(scheduled[code][m] for m in range(1, months + 1))))
    return books


def _default_rates(uow: UnitOfWork, tenant_id: str, p: Params) -> dict[str, Decimal]:
    """Per currency: principal that reached 90 days past due / principal-months on book, over every vintage's
    latest point (the average share of the book that defaults in a month)."""
    found = portfolio.vintage(uow, tenant_id, threshold_dpd=DEFAULT_DPD, basis="principal",
                              currency_code=p.currency, to_month=_month(p.end))
    bad: Counter[str] = Counter()
    exposure: Counter[str] = Counter()
    for curve in found["curves"]:
        if curve["points"]:
            last = curve["points"][-1]
            bad[curve["currency"]] += last["principal_bad"]
            exposure[curve["currency"]] += curve["principal_amount"] * max(last["months_on_book"], 1)
    return {code: _decimal_rate(Decimal(bad[code]), Decimal(exposure[code]), ROUND_HALF_UP) for code in exposure}


def _funding_rates(uow: UnitOfWork, tenant_id: str) -> dict[str, Decimal]:
    """Per currency: the sources' annual rates weighted by what each has lent out (a plain average of the active
    sources while none has lent anything)."""
    sources: dict[str, list[tuple[Decimal, int, bool]]] = defaultdict(list)
    for code, rate, amount, is_live in uow.session.execute(
            select(FundingSource.currency, FundingSource.annual_rate, FundingSource.used_amount, FundingSource.active)
            .where(FundingSource.tenant_id == tenant_id)):
        sources[code].append((Decimal(rate), int(amount), bool(is_live)))
    rates = {}
    for code, found in sources.items():
        used = sum(amount for _, amount, _ in found)
        if used:
            rates[code] = _decimal_rate(sum((rate * amount for rate, amount, _ in found), Decimal(0)), Decimal(used))
        else:
            live = [rate for rate, _, is_active in found if is_active]
            rates[code] = _decimal_rate(sum(live, Decimal(0)), Decimal(len(live)))
    return rates


def revenue_forecast(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    rows, notes = [], []
    for book in _books(uow, tenant_id, p):
        notes.append(f"{book.currency}: monthly rate {book.monthly_rate}, monthly default rate "
                     f"{book.monthly_default_rate}, funding rate {book.funding_rate} a year.")
        for m in projection.project(book, p.months):
            rows.append({"currency": book.currency, "month": m.index, "opening_amount": m.opening_amount,
                         "interest_amount": m.interest_amount, "loss_amount": m.loss_amount,
                         "repaid_amount": m.repaid_amount, "closing_amount": m.closing_amount,
                         "net_amount": m.interest_amount - m.loss_amount})
    return Table(rows, [projection.METHOD, *notes])


def _capital(uow: UnitOfWork, tenant_id: str, p: Params) -> dict[str, int]:
    _, as_of = _statement_window(p)
    return {s.currency: s.equity.total + s.retained_earnings
            for s in statements.balance_sheet(uow, tenant_id, as_of=as_of)}


def stress_test(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    capital = _capital(uow, tenant_id, p)
    rows = []
    for book in _books(uow, tenant_id, p):
        for stress in projection.SCENARIOS:
            interest, losses, funding = projection.totals(projection.project(book, p.months, stress))
            net = interest - losses - funding
            before = capital.get(book.currency, 0)
            rows.append({"scenario": stress.name, "currency": book.currency, "interest_amount": interest,
                         "loss_amount": losses, "funding_cost_amount": funding, "net_profit_amount": net,
                         "capital_amount": before, "capital_after_amount": before + net,
                         "description": stress.description})
    return Table(rows, [f"Over the next {p.months} months from the book on {p.end.isoformat()}; capital = equity "
                        "plus retained earnings on the ledger, after = capital + the period's net profit.",
                        "Net profit = interest income - credit losses (whole principal, no recovery) - funding "
                        "cost; fees and operating costs are left out."])


# ------------------------------------------------------------------------------------------------ regulatory


def large_transactions(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    query = _currency_filter(select(Payment.id, Payment.created_at, Payment.merchant_id, Payment.customer_id,
                                    Payment.channel, Payment.method, Payment.amount, Payment.currency,
                                    Payment.status)
                             .where(Payment.tenant_id == tenant_id, Payment.amount >= p.threshold_amount,
                                    *_in_period(Payment.created_at, p)), Payment.currency, p)
    rows = [{"payment_id": r[0], "created_at": _utc(r[1]).isoformat(), "merchant_id": r[2], "customer_id": r[3],
             "channel": r[4], "method": r[5], "amount": int(r[6]), "currency": r[7], "status": r[8]}
            for r in uow.session.execute(query.order_by(Payment.created_at, Payment.id).limit(LISTING_LIMIT))]
    return Table(rows, [f"Payments created in the period of {p.threshold_amount} minor units or more"
                        f"{' in ' + p.currency if p.currency else ' (in each currency)'}; at most "
                        f"{LISTING_LIMIT} rows."])


def suspicious_activity(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    query = _currency_filter(select(AmlAlert.id, AmlAlert.created_at, AmlAlert.scenario, AmlAlert.subject_kind,
                                    AmlAlert.subject_id, AmlAlert.total_amount, AmlAlert.currency,
                                    AmlAlert.description, RiskCase.id, RiskCase.status, RiskCase.outcome)
                             .join(RiskCase, (RiskCase.id == AmlAlert.case_id)
                                   & (RiskCase.tenant_id == AmlAlert.tenant_id))
                             .where(AmlAlert.tenant_id == tenant_id, *_in_period(AmlAlert.created_at, p)),
                             AmlAlert.currency, p)
    rows = [{"alert_id": r[0], "created_at": _utc(r[1]).isoformat(), "scenario": r[2], "subject_kind": r[3],
             "subject_id": r[4], "total_amount": int(r[5]), "currency": r[6], "description": r[7], "case_id": r[8],
             "case_status": r[9], "case_outcome": r[10]}
            for r in uow.session.execute(query.order_by(AmlAlert.created_at, AmlAlert.id).limit(LISTING_LIMIT))]
    return Table(rows, ["AML alerts raised in the period that were escalated to a case."])


DPD_CLASSES = ((0, "current"), (30, "1-30"), (60, "31-60"), (90, "61-90"))


def dpd_class(dpd: int) -> str:
    return next((name for upper, name in DPD_CLASSES if dpd <= upper), "90+")


def loan_level(uow: UnitOfWork, tenant_id: str, p: Params) -> Table:
    query = _currency_filter(select(LoanAccount.loan_id, Loan.application_id, LoanAccount.product_id,
                                    LoanAccount.currency, LoanAccount.disbursed_on, LoanAccount.principal_amount,
                                    LoanAccount.principal_outstanding, LoanAccount.dpd, LoanAccount.bucket,
                                    LoanAccount.state, LoanAccount.provision_amount, LoanAccount.written_off_amount)
                             .join(Loan, Loan.id == LoanAccount.loan_id)
                             .where(LoanAccount.tenant_id == tenant_id, LoanAccount.disbursed_on <= p.end),
                             LoanAccount.currency, p)
    rows = [{"loan_id": r[0], "application_id": r[1], "product_id": r[2], "currency": r[3],
             "disbursed_on": r[4].isoformat(), "principal_amount": int(r[5]), "principal_outstanding": int(r[6]),
             "dpd": int(r[7]), "dpd_class": dpd_class(int(r[7])), "bucket": r[8], "state": r[9],
             "provision_amount": int(r[10]), "written_off_amount": int(r[11])}
            for r in uow.session.execute(query.order_by(LoanAccount.loan_id).limit(LISTING_LIMIT))]
    return Table(rows, ["Every loan disbursed by the end of the period as it stands now; days past due classed "
                        "current, 1-30, 31-60, 61-90, 90+ (the servicing buckets M0-M4)."])


# ------------------------------------------------------------------------------------------------ the catalogue


def _cols(*spec: tuple[str, str] | str) -> tuple[Column, ...]:
    columns = []
    for item in spec:
        name, kind = item if isinstance(item, tuple) else (item, Kind.TEXT)
        columns.append(Column(name, name.replace("_", " ").capitalize(), kind))
    return tuple(columns)


M, N, R = Kind.MONEY, Kind.INTEGER, Kind.RATE

REPORTS: tuple[Report, ...] = (
    Report("financial-income-statement", "Income statement", "financial",
           "Income and expenses per account from the ledger, for whole days.",
           _cols("currency", "section", "account_code", "account_name", ("amount", M)), income_statement,
           Chart("bar", "account_code", "amount", "Income by account", where=("section", "income")), ("currency",)),
    Report("financial-balance-sheet", "Balance sheet", "financial",
           "Assets, liabilities and equity at the end of the period.",
           _cols("currency", "section", "account_code", "account_name", ("amount", M)), balance_sheet,
           None, ("currency",)),
    Report("revenue-by-source", "Revenue by source", "financial",
           "Commission, platform fees, credit interest and fees, wealth spread, from the ledger's income accounts.",
           _cols("currency", "source", ("amount", M), ("share_rate", R)), revenue_by_source,
           Chart("bar", "source", "amount", "Revenue by source"), ("currency",)),
    Report("channel-statements", "Channel statements", "financial",
           "Per channel and day: payments, refunds, fees and net.",
           _cols("day", "channel", "currency", ("payments", N), ("payment_amount", M), ("refunds", N),
                 ("refund_amount", M), ("fee_amount", M), ("net_amount", M)), channel_statements,
           Chart("line", "day", "net_amount", "Net per channel and day", series="channel"), ("currency",)),
    Report("payment-success", "Payment success rate", "operations", "Success rate by channel, method and hour.",
           _cols("dimension", "value", ("payments", N), ("succeeded", N), ("failed", N), ("success_rate", R)),
           payment_success, Chart("bar", "value", "success_rate", "Success rate by hour", where=("dimension", "hour")),
           ("currency",)),
    Report("refund-rate", "Refund rate", "operations", "Refunded share of the period's payments, per channel.",
           _cols("channel", "currency", ("payments", N), ("captured_amount", M), ("refunded_payments", N),
                 ("refunded_amount", M), ("count_rate", R), ("amount_rate", R)), refund_rate,
           Chart("bar", "channel", "amount_rate", "Refunded share of the amount"), ("currency",)),
    Report("timeliness", "Settlement and payout timeliness", "operations",
           "Settlements and payouts made on time against their due day.",
           _cols("kind", "currency", ("items", N), ("on_time", N), ("late", N), ("max_days_late", N),
                 ("total_days_late", N), ("on_time_rate", R)), timeliness,
           Chart("bar", "kind", "on_time_rate", "On-time rate"), ("currency",)),
    Report("rule-performance", "Rule performance", "risk", "Per rule: hits, declines and precision against labels.",
           _cols("rule_id", ("hits", N), ("declines", N), ("reviews", N), ("labelled", N), ("fraud", N),
                 ("precision_rate", R)), rule_performance, Chart("bar", "rule_id", "hits", "Hits per rule")),
    Report("fraud-losses", "Fraud losses", "risk", "Chargebacks: disputed, won, lost and what they cost.",
           _cols("currency", "reason", ("disputes", N), ("disputed_amount", M), ("open", N), ("won", N), ("lost", N),
                 ("lost_amount", M), ("fee_amount", M), ("loss_amount", M)), fraud_losses,
           Chart("bar", "reason", "loss_amount", "Loss per reason"), ("currency",)),
    Report("aml-alerts", "AML alerts", "risk", "Alerts per scenario and what became of them.",
           _cols("scenario", "currency", ("alerts", N), ("total_amount", M), ("open", N), ("closed", N),
                 ("escalated", N), "case_outcomes"), aml_alerts, Chart("bar", "scenario", "alerts", "Alerts"),
           ("currency",)),
    Report("credit-portfolio", "Credit portfolio", "credit", "The book by bucket, approvals and re-borrowing.",
           _cols("currency", "figure", "bucket", "value"), credit_portfolio, None, ("currency",)),
    Report("credit-vintage", "Vintage curves", "credit", "Share of each month's loans gone 30+ days past due.",
           _cols("currency", "origination_month", ("loans", N), ("principal_amount", M), ("months_on_book", N),
                 ("loans_bad", N), ("principal_bad", M), ("rate", R)), credit_vintage,
           Chart("line", "months_on_book", "rate", "Vintage curves", series="origination_month"), ("currency",)),
    Report("credit-roll-rates", "Roll rates", "credit", "Where each bucket's loans stood a month later.",
           _cols("currency", "from_bucket", "to", ("loans", N), ("principal", M), ("count_share", R),
                 ("principal_share", R)), credit_roll_rates, None, ("currency",)),
    Report("credit-pnl", "Credit P&L", "credit", "Lifetime profit and loss of the book per currency.",
           _cols("currency", *((c, R if c.endswith("_rate") else M) for c in portfolio.PNL_COLUMNS)), credit_pnl,
           None, ("currency",)),
    Report("revenue-forecast", "Revenue forecast", "credit",
           "Projected interest income and credit losses of the current book, month by month.",
           _cols("currency", ("month", N), ("opening_amount", M), ("interest_amount", M), ("loss_amount", M),
                 ("repaid_amount", M), ("closing_amount", M), ("net_amount", M)), revenue_forecast,
           Chart("line", "month", "interest_amount", "Interest income per month", series="currency"),
           ("currency", "months")),
    Report("stress-test", "Stress test", "credit",
           "Net profit and capital under doubled defaults, funding cost +2 points and approvals +50%.",
           _cols("scenario", "currency", ("interest_amount", M), ("loss_amount", M), ("funding_cost_amount", M),
                 ("net_profit_amount", M), ("capital_amount", M), ("capital_after_amount", M), "description"),
           stress_test, Chart("bar", "scenario", "net_profit_amount", "Net profit per scenario"),
           ("currency", "months")),
    Report("large-transactions", "Large transactions", "regulatory",
           "Payments at or above a threshold (threshold_amount, minor units).",
           _cols("payment_id", ("created_at", Kind.DATE), "merchant_id", "customer_id", "channel", "method",
                 ("amount", M), "currency", "status"), large_transactions, None, ("currency", "threshold_amount")),
    Report("suspicious-activity", "Suspicious activity", "regulatory", "AML alerts escalated to cases.",
           _cols("alert_id", ("created_at", Kind.DATE), "scenario", "subject_kind", "subject_id",
                 ("total_amount", M), "currency", "description", "case_id", "case_status", "case_outcome"),
           suspicious_activity, None, ("currency",)),
    Report("loan-level", "Loan-level data", "regulatory", "Every loan with its days-past-due class.",
           _cols("loan_id", "application_id", "product_id", "currency", ("disbursed_on", Kind.DATE),
                 ("principal_amount", M), ("principal_outstanding", M), ("dpd", N), "dpd_class", "bucket", "state",
                 ("provision_amount", M), ("written_off_amount", M)), loan_level,
           Chart("bar", "dpd_class", "principal_outstanding", "Outstanding by class"), ("currency",)),
)
BY_NAME = {report.name: report for report in REPORTS}
GROUPS = ("financial", "operations", "risk", "credit", "regulatory")


def get_report(name: str) -> Report:
    try:
        return BY_NAME[name]
    except KeyError:
        raise NotFound(f"No such report: {name}.", code="report_not_found", param="name") from None


def run(uow: UnitOfWork, tenant_id: str, name: str, params: Params) -> Table:
    return get_report(name).compute(uow, tenant_id, params)


def cells(report: Report, rows: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """The rows as lists in the report's column order (for CSV and text tables)."""
    return [[row.get(c.name) for c in report.columns] for row in rows]
