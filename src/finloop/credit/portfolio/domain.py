"""Portfolio arithmetic as pure code: unit economics of one loan, per-loan profit and loss, the allocation of cost
of funds by principal-days, the operating cost policy, vintage curves and roll-rate matrices. No I/O.

Invariants owned here:
- every amount is an integer of minor units; each rounding names its rule (``INTEREST_ROUNDING``,
  ``COST_OF_FUNDS_ROUNDING``, ``PROVISION_ROUNDING``, ``OPERATING_COST_ROUNDING``) and happens once, on the exact
  total; ratios are decimal strings rounded half-even to ``RATE_PLACES`` places;
- ``unit_economics`` reproduces the product material's worked example exactly (10,000 at 18% flat for 12 months:
  1,800 interest, 600 cost of funds on bullet funding at 6%, 200 provision at 2%, 100 operating cost, 900 net) and
  sets beside it the cost of funds that tracks an amortising balance (325 for that example);
- cost of funds is allocated to loans by largest remainder in proportion to their principal-days, so the parts sum
  to the amount allocated exactly; with no principal-days nothing is allocated and the whole stays unallocated;
- a vintage point counts the loans of the cohort whose worst days past due reached the threshold at or before that
  month on book: the curve never falls as months on book grow;
- a roll-rate row counts each loan open at the first month end once, in the column of where it stood at the next
  (a bucket, or paid_off / written_off, which absorb); its count and principal cells sum to its totals exactly, and
  its shares, in parts per million split by largest remainder, sum to exactly one million.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Any

import polars as pl

from finloop.core.errors import InvalidRequest
from finloop.core.money import MAX_AMOUNT, Rounding, allocate, currency, round_minor
from finloop.credit.servicing.domain import BUCKETS

#: Flat interest is the product's accrual rule: banker's rounding (as ``finloop.credit.servicing``).
INTEREST_ROUNDING = Rounding.HALF_EVEN
#: The funding accrual's rule (``finloop.credit.funding.ACCRUAL_ROUNDING``): cost of funds rounds the same way.
COST_OF_FUNDS_ROUNDING = Rounding.HALF_EVEN
#: Provisions round half up, as the servicing's ``provision_for`` does.
PROVISION_ROUNDING = Rounding.HALF_UP
#: An allocated overhead is a charge shown to people: commercial rounding.
OPERATING_COST_ROUNDING = Rounding.HALF_UP
RATE_PLACES = 4
PPM = 1_000_000
DAYS_PER_YEAR = 365
MONTHS_PER_YEAR = 12


def ratio(numerator: int, denominator: int) -> str | None:
    """``numerator / denominator`` as a decimal string, half-even to ``RATE_PLACES`` places; None over nothing."""
    if not denominator:
        return None
    exact = Decimal(numerator) / Decimal(denominator)
    return str(exact.quantize(Decimal(1).scaleb(-RATE_PLACES), rounding=ROUND_HALF_EVEN))


def ppm_text(parts: int) -> str:
    """Parts per million as an exact decimal string (six places)."""
    return str((Decimal(parts) / PPM).quantize(Decimal("0.000001")))


def shares_ppm(values: Sequence[int]) -> list[int] | None:
    """Each value's share of their sum in parts per million, by largest remainder: the shares sum to ``PPM``."""
    if sum(values) == 0:
        return None
    return allocate(PPM, list(values))


# ---------------------------------------------------------------------------------------------- month helpers


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


#: Reports cover business dates in these years: month arithmetic never leaves the calendar ``date`` can hold.
FIRST_YEAR, LAST_YEAR = 1900, 2999


def parse_month(value: Any, param: str) -> tuple[int, int]:
    if isinstance(value, str) and len(value) == 7 and value[4] == "-" and value[:4].isdigit() and \
            value[5:].isdigit() and 1 <= int(value[5:]) <= 12 and FIRST_YEAR <= int(value[:4]) <= LAST_YEAR:
        return int(value[:4]), int(value[5:])
    raise InvalidRequest(f"{param} is a month such as 2026-03, from {FIRST_YEAR} to {LAST_YEAR}.",
                         code="invalid_month", param=param)


def check_day(value: date, param: str) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidRequest(f"{param} is a date from {FIRST_YEAR} to {LAST_YEAR}.", code="invalid_date",
                             param=param)
    return value


def next_month(month: str) -> str:
    year, number = parse_month(month, "month")
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def month_start(month: str) -> date:
    year, number = parse_month(month, "month")
    return date(year, number, 1)


def month_end(month: str) -> date:
    return month_start(next_month(month)) - timedelta(days=1)


def months_between(first: str, last: str) -> int:
    a, b = parse_month(first, "month"), parse_month(last, "month")
    return (b[0] - a[0]) * 12 + b[1] - a[1]


def month_ends_in(start: date, end: date) -> int:
    """How many month ends ``d`` satisfy ``start <= d < end``: the loan-months of a loan open over [start, end)."""
    count = 0
    cursor = month_end(month_of(start))
    while cursor < end:
        count += 1
        cursor = month_end(next_month(month_of(cursor)))
    return count


# ---------------------------------------------------------------------------------------------- profit and loss


@dataclass(frozen=True, slots=True)
class PnlLines:
    """One loan's (or a portfolio's) profit and loss in minor units of one currency."""

    currency: str
    principal_amount: int
    interest_income: int = 0
    fee_income: int = 0
    penalty_income: int = 0
    recoveries: int = 0
    cost_of_funds: int = 0
    provision: int = 0
    credit_loss: int = 0
    operating_cost: int = 0

    @property
    def income(self) -> int:
        return self.interest_income + self.fee_income + self.penalty_income + self.recoveries

    @property
    def net_profit(self) -> int:
        return self.income - self.cost_of_funds - self.provision - self.credit_loss - self.operating_cost

    @property
    def margin_rate(self) -> str | None:
        """Net profit over principal lent: the worked example's 9%."""
        return ratio(self.net_profit, self.principal_amount)

    @property
    def net_to_income_rate(self) -> str | None:
        return ratio(self.net_profit, self.income)

    def __add__(self, other: PnlLines) -> PnlLines:
        if other.currency != self.currency:
            raise InvalidRequest(f"Cannot add {other.currency} to {self.currency}.", code="currency_mismatch",
                                 param="currency")
        return PnlLines(self.currency, *(getattr(self, name) + getattr(other, name) for name in AMOUNT_FIELDS))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"currency": self.currency}
        out.update({name: getattr(self, name) for name in AMOUNT_FIELDS})
        out.update(income=self.income, net_profit=self.net_profit, margin_rate=self.margin_rate,
                   net_to_income_rate=self.net_to_income_rate)
        return out


AMOUNT_FIELDS = ("principal_amount", "interest_income", "fee_income", "penalty_income", "recoveries",
                 "cost_of_funds", "provision", "credit_loss", "operating_cost")


@dataclass(frozen=True, slots=True)
class UnitEconomics:
    """The worked example: the same loan with bullet funding (the material's figure) and amortising funding."""

    principal_amount: int
    currency: str
    annual_rate: Decimal
    term_months: int
    funding_rate: Decimal
    provision_rate: Decimal
    operating_cost_rate: Decimal
    bullet: PnlLines
    amortising: PnlLines
    #: The opening balance funded in each month when the principal is repaid in equal parts.
    amortising_balances: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"principal_amount": self.principal_amount, "currency": self.currency,
                "annual_rate": str(self.annual_rate), "term_months": self.term_months,
                "funding_rate": str(self.funding_rate), "provision_rate": str(self.provision_rate),
                "operating_cost_rate": str(self.operating_cost_rate), "bullet": self.bullet.to_json(),
                "amortising": self.amortising.to_json(), "amortising_balances": list(self.amortising_balances),
                "cost_of_funds_saved": self.bullet.cost_of_funds - self.amortising.cost_of_funds}


def _rate(value: Any, param: str, high: Decimal = Decimal(1)) -> Decimal:
    try:
        rate = Decimal(value) if isinstance(value, str | int | Decimal) and not isinstance(value, bool) else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or not Decimal(0) <= rate <= high:
        raise InvalidRequest(f"{param} is a decimal string from 0 to {high}, e.g. \"0.06\".", code="invalid_rate",
                             param=param)
    return rate


def unit_economics(*, principal_amount: int = 1_000_000, currency_code: str = "CNY",
                   annual_rate: Decimal | str = Decimal("0.18"), term_months: int = 12,
                   funding_rate: Decimal | str = Decimal("0.06"), provision_rate: Decimal | str = Decimal("0.02"),
                   operating_cost_rate: Decimal | str = Decimal("0.01")) -> UnitEconomics:
    """One loan's economics over its term (defaults: the worked example, CNY 10,000.00).

    Interest is flat: principal × annual rate × term / 12. Bullet funding borrows the whole principal for the
    whole term (principal × funding rate × term / 12). Amortising funding borrows only what is still owed: the
    principal is repaid in ``term_months`` equal parts (split by largest remainder), and each month costs its
    opening balance × funding rate / 12; the months' exact costs are summed and rounded once. The provision is a
    rate of the principal; the operating cost an annual rate of the principal over the term."""
    if isinstance(principal_amount, bool) or not isinstance(principal_amount, int) or \
            not 1 <= principal_amount <= MAX_AMOUNT:
        raise InvalidRequest("principal_amount is a positive integer of minor units.", code="invalid_amount",
                             param="principal_amount")
    if isinstance(term_months, bool) or not isinstance(term_months, int) or not 1 <= term_months <= 600:
        raise InvalidRequest("term_months is from 1 to 600.", code="invalid_term", param="term_months")
    currency(currency_code)
    rate = _rate(annual_rate, "annual_rate", Decimal(10))
    cof_rate = _rate(funding_rate, "funding_rate")
    provision_rate_ = _rate(provision_rate, "provision_rate")
    opex_rate = _rate(operating_cost_rate, "operating_cost_rate")
    years = Fraction(term_months, MONTHS_PER_YEAR)
    interest = round_minor(principal_amount * Fraction(rate) * years, INTEREST_ROUNDING)
    provision = round_minor(principal_amount * Fraction(provision_rate_), PROVISION_ROUNDING)
    operating = round_minor(principal_amount * Fraction(opex_rate) * years, OPERATING_COST_ROUNDING)
    bullet_cof = round_minor(principal_amount * Fraction(cof_rate) * years, COST_OF_FUNDS_ROUNDING)
    repaid = allocate(principal_amount, [1] * term_months)
    balances = []
    owed = principal_amount
    for part in repaid:
        balances.append(owed)
        owed -= part
    amortising_cof = round_minor(sum(balances) * Fraction(cof_rate) / MONTHS_PER_YEAR, COST_OF_FUNDS_ROUNDING)
    def lines(cost_of_funds: int) -> PnlLines:
        return PnlLines(currency_code, principal_amount, interest_income=interest, cost_of_funds=cost_of_funds,
                        provision=provision, operating_cost=operating)

    return UnitEconomics(principal_amount, currency_code, rate, term_months, cof_rate, provision_rate_, opex_rate,
                         lines(bullet_cof), lines(amortising_cof), tuple(balances))


# ---------------------------------------------------------------------------------------------- operating cost


class OperatingCostMethod(StrEnum):
    #: An annual rate of the principal lent, over the days the loan is on the book.
    PRINCIPAL_RATE = "principal_rate"
    #: A fixed amount (per currency) for each month end at which the loan is open.
    PER_LOAN_MONTH = "per_loan_month"


@dataclass(frozen=True, slots=True)
class OperatingCostPolicy:
    method: OperatingCostMethod = OperatingCostMethod.PRINCIPAL_RATE
    annual_rate: Decimal = Decimal("0.01")
    #: Minor units per loan-month, per currency (``per_loan_month``); a currency not listed costs nothing.
    amounts: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        if self.method is OperatingCostMethod.PRINCIPAL_RATE:
            return {"method": self.method.value, "annual_rate": str(self.annual_rate)}
        return {"method": self.method.value, "amounts": dict(sorted(self.amounts.items()))}


def check_operating_cost_policy(data: Mapping[str, Any]) -> OperatingCostPolicy:
    """A policy from its JSON form; every field is checked (400 with the field at fault)."""
    if not isinstance(data, Mapping):
        raise InvalidRequest("The policy is an object.", code="invalid_policy", param=None)
    for name in data:
        if name not in {"method", "annual_rate", "amounts"}:
            raise InvalidRequest(f"Unknown field: {str(name)[:40]}.", code="unknown_field", param=str(name)[:40])
    try:
        method = OperatingCostMethod(data.get("method", OperatingCostMethod.PRINCIPAL_RATE.value))
    except ValueError:
        raise InvalidRequest("method is \"principal_rate\" or \"per_loan_month\".",
                             code="invalid_operating_cost_method", param="method") from None
    if method is OperatingCostMethod.PRINCIPAL_RATE:
        if "amounts" in data:
            raise InvalidRequest("amounts belong to the per_loan_month method.", code="invalid_policy",
                                 param="amounts")
        return OperatingCostPolicy(method, _rate(data.get("annual_rate", "0.01"), "annual_rate"))
    if "annual_rate" in data:
        raise InvalidRequest("annual_rate belongs to the principal_rate method.", code="invalid_policy",
                             param="annual_rate")
    amounts = data.get("amounts")
    if not isinstance(amounts, Mapping) or not amounts:
        raise InvalidRequest("amounts gives a cost per loan-month for each currency, e.g. {\"CNY\": 800}.",
                             code="invalid_policy", param="amounts")
    checked: dict[str, int] = {}
    for code, amount in amounts.items():
        try:
            currency(code)
        except InvalidRequest:
            raise InvalidRequest("amounts are keyed by ISO 4217 code.", code="invalid_currency",
                                 param=f"amounts.{str(code)[:3]}") from None
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT:
            raise InvalidRequest("An amount is a non-negative integer of minor units.", code="invalid_amount",
                                 param=f"amounts.{code}")
        checked[code] = amount
    return OperatingCostPolicy(method, Decimal(0), checked)


DEFAULT_OPERATING_COST_POLICY = OperatingCostPolicy()


def operating_cost(policy: OperatingCostPolicy, *, principal_amount: int, currency_code: str, start: date,
                   end: date) -> int:
    """The overhead a loan bears for being on the book over [start, end) (see ``OperatingCostMethod``)."""
    if end <= start:
        return 0
    if policy.method is OperatingCostMethod.PRINCIPAL_RATE:
        days = (end - start).days
        return round_minor(principal_amount * Fraction(policy.annual_rate) * days / DAYS_PER_YEAR,
                           OPERATING_COST_ROUNDING)
    return policy.amounts.get(currency_code, 0) * month_ends_in(start, end)


# ---------------------------------------------------------------------------------------------- cost of funds


def principal_days(*, principal_amount: int, disbursed_on: date, end: date,
                   month_ends: Iterable[tuple[date, int]]) -> int:
    """The sum over the days in [disbursed_on, end) of the principal outstanding that day.

    The balance is known at the disbursement (the principal) and at the close of each month end (the snapshot's
    outstanding principal, which holds from the next day): each known balance is taken to hold until the next one
    is known."""
    points = [(disbursed_on, principal_amount)]
    points += sorted((day + timedelta(days=1), amount) for day, amount in month_ends
                     if disbursed_on <= day and day + timedelta(days=1) < end)
    total = 0
    for index, (day, amount) in enumerate(points):
        until = points[index + 1][0] if index + 1 < len(points) else end
        total += max(0, (until - day).days) * amount
    return total


@dataclass(frozen=True, slots=True)
class CostAllocation:
    parts: dict[str, int]
    unallocated: int


def allocate_cost(total: int, weights: Mapping[str, int]) -> CostAllocation:
    """Split ``total`` over the keys in proportion to their weights (largest remainder; ties to the smaller
    key), so the parts sum to ``total``; with no weight, nothing is allocated."""
    keys = sorted(k for k, w in weights.items() if w > 0)
    if not keys or total == 0:
        return CostAllocation(dict.fromkeys(weights, 0), total)
    parts = dict.fromkeys(weights, 0)
    parts.update(zip(keys, allocate(total, [weights[k] for k in keys]), strict=True))
    return CostAllocation(parts, 0)


# ---------------------------------------------------------------------------------------------- vintage


class VintageBasis(StrEnum):
    COUNT = "count"
    PRINCIPAL = "principal"


@dataclass(frozen=True, slots=True)
class CohortLoan:
    loan_id: str
    currency: str
    origination_month: str
    principal_amount: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    loan_id: str
    months_on_book: int
    max_dpd: int


@dataclass(frozen=True, slots=True)
class VintagePoint:
    months_on_book: int
    loans_bad: int
    principal_bad: int
    rate: str | None


@dataclass(frozen=True, slots=True)
class VintageCurve:
    currency: str
    origination_month: str
    loans: int
    principal_amount: int
    points: tuple[VintagePoint, ...]


def vintage_curves(cohort: Sequence[CohortLoan], snapshots: Sequence[Snapshot], *, threshold_dpd: int,
                   basis: VintageBasis = VintageBasis.COUNT) -> list[VintageCurve]:
    """For each currency and origination month, the share of its loans (or of its principal) that were ever at
    least ``threshold_dpd`` days past due by each month on book its snapshots reach."""
    if not cohort:
        return []
    loans = pl.DataFrame({"loan_id": [c.loan_id for c in cohort], "currency": [c.currency for c in cohort],
                          "vintage": [c.origination_month for c in cohort],
                          "principal": [c.principal_amount for c in cohort]},
                         schema={"loan_id": pl.String, "currency": pl.String, "vintage": pl.String,
                                 "principal": pl.Int64})
    snaps = pl.DataFrame({"loan_id": [s.loan_id for s in snapshots], "mob": [s.months_on_book for s in snapshots],
                          "max_dpd": [s.max_dpd for s in snapshots]},
                         schema={"loan_id": pl.String, "mob": pl.Int64, "max_dpd": pl.Int64})
    snaps = snaps.join(loans, on="loan_id", how="inner")
    sizes = loans.group_by("currency", "vintage").agg(pl.len().alias("loans"), pl.col("principal").sum())
    # The first month on book at which each loan was seen at or past the threshold.
    first_bad = (snaps.filter(pl.col("max_dpd") >= threshold_dpd).group_by("loan_id", "currency", "vintage",
                                                                          "principal")
                 .agg(pl.col("mob").min().alias("first_bad")))
    mobs = snaps.select("currency", "vintage", "mob").unique()
    reached = (mobs.join(first_bad, on=["currency", "vintage"], how="left")
               .with_columns(bad=(pl.col("first_bad") <= pl.col("mob")).fill_null(False))
               .group_by("currency", "vintage", "mob")
               .agg(pl.col("bad").sum().alias("loans_bad"),
                    pl.when(pl.col("bad")).then(pl.col("principal")).otherwise(0).sum().alias("principal_bad")))
    by_key: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
    for row in reached.sort("currency", "vintage", "mob").iter_rows(named=True):
        by_key.setdefault((row["currency"], row["vintage"]), []).append(
            (int(row["mob"]), int(row["loans_bad"]), int(row["principal_bad"])))
    curves = []
    for row in sizes.sort("currency", "vintage").iter_rows(named=True):
        count, principal = int(row["loans"]), int(row["principal"])
        points = tuple(VintagePoint(mob, bad, bad_principal,
                                    ratio(bad, count) if basis is VintageBasis.COUNT else ratio(bad_principal,
                                                                                                principal))
                       for mob, bad, bad_principal in by_key.get((row["currency"], row["vintage"]), []))
        curves.append(VintageCurve(row["currency"], row["vintage"], count, principal, points))
    return curves


# ---------------------------------------------------------------------------------------------- roll rates


PAID_OFF = "paid_off"
WRITTEN_OFF = "written_off"
ROLL_ROWS = tuple(b.value for b in BUCKETS)
ROLL_COLUMNS = (*ROLL_ROWS, PAID_OFF, WRITTEN_OFF)


@dataclass(frozen=True, slots=True)
class Transition:
    currency: str
    source: str
    target: str
    principal: int


@dataclass(frozen=True, slots=True)
class RollRow:
    bucket: str
    loans: int
    principal: int
    counts: dict[str, int]
    principals: dict[str, int]
    count_shares_ppm: dict[str, int] | None
    principal_shares_ppm: dict[str, int] | None


@dataclass(frozen=True, slots=True)
class RollMatrix:
    currency: str
    rows: tuple[RollRow, ...]


def roll_matrices(transitions: Sequence[Transition]) -> list[RollMatrix]:
    """One matrix per currency: every bucket a row (empty rows too), every bucket and absorbing state a column."""
    for t in transitions:
        if t.source not in ROLL_ROWS or t.target not in ROLL_COLUMNS:
            raise ValueError(f"an unknown roll {t.source} -> {t.target}")
    frame = pl.DataFrame({"currency": [t.currency for t in transitions], "source": [t.source for t in transitions],
                          "target": [t.target for t in transitions], "principal": [t.principal for t in transitions]},
                         schema={"currency": pl.String, "source": pl.String, "target": pl.String,
                                 "principal": pl.Int64})
    cells = frame.group_by("currency", "source", "target").agg(pl.len().alias("loans"), pl.col("principal").sum())
    found: dict[tuple[str, str, str], tuple[int, int]] = {
        (r["currency"], r["source"], r["target"]): (int(r["loans"]), int(r["principal"]))
        for r in cells.iter_rows(named=True)}
    matrices = []
    for code in sorted({t.currency for t in transitions}):
        rows = []
        for source in ROLL_ROWS:
            counts = {target: found.get((code, source, target), (0, 0))[0] for target in ROLL_COLUMNS}
            principals = {target: found.get((code, source, target), (0, 0))[1] for target in ROLL_COLUMNS}
            count_shares = shares_ppm(list(counts.values()))
            principal_shares = shares_ppm(list(principals.values()))
            rows.append(RollRow(source, sum(counts.values()), sum(principals.values()), counts, principals,
                                None if count_shares is None else dict(zip(ROLL_COLUMNS, count_shares, strict=True)),
                                None if principal_shares is None else dict(zip(ROLL_COLUMNS, principal_shares,
                                                                               strict=True))))
        matrices.append(RollMatrix(code, tuple(rows)))
    return matrices
