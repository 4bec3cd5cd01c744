"""Repayment schedules, their APR and effective annual rate. Pure and exact: a schedule is a function of the
pricing terms, the principal, the term and the start (disbursement) date, and nothing else.

Invariants owned here:
- amounts are integers of minor units; every intermediate value is an exact ``Fraction``; each rounded
  figure (the annuity installment, each period's interest, each equal part, each fee) is rounded once by the
  pricing's named rule (``core.money.round_minor``);
- the principal parts sum exactly to the principal; no part is negative; the last installment absorbs the
  remainder (its principal is whatever is still owed, and for the flat method its interest is whatever is
  left of the flat total);
- due dates follow ``daycount.monthly_due_dates`` (the start's day, rolled to the month's last day when the
  month is shorter), strictly increasing; a day-term schedule has one installment, ``term`` days after the
  start;
- interest: without a day count, each monthly period is 1/12 of a year (``balance · annual rate / 12``);
  with one, a period's interest is ``balance · annual rate · year fraction`` (a daily rate:
  ``balance · daily rate · days``) by the convention, from the previous due date (or the start) to the due
  date;
- the annuity (``equal_installment``) pays one rounded installment ``P·i / (1 - (1+i)^-n)`` with ``i`` the
  nominal monthly rate (annual / 12; a daily rate times the convention's year of 365 or 360, / 12), also
  under a day count; each period's interest is then the day-count interest, the principal part the
  installment minus that interest (never below zero: when a long month's interest exceeds the installment
  the installment grows instead), and the last installment whatever remains;
- the flat (add-on) method charges ``P · annual rate · years`` once (years: ``n/12`` without a day count, the
  year fraction from start to maturity with one), rounded, split in equal parts like the principal:
  10,000 at 18% over 12 months repays 11,800;
- ``revolving`` accrues interest daily (a day count is required; actual/365 unless told otherwise) on the
  drawn balance, collected at each monthly due date, the balance due at the end of the term: the preview of
  one draw not repaid early. ``accrued_interest`` prices any other span;
- the APR is the nominal annual rate of the schedule's internal rate of return: the periodic IRR (each
  installment one period, the borrower receiving the principal less upfront fees at the start) times the
  periods per year (12 for monthly terms; 365/days for a day term); the effective annual rate is
  ``(1 + IRR)^periods - 1``. The IRR is solved in ``Decimal`` at 50 digits by Newton's method (monotone from 0,
  because the present value of the payments is convex and decreasing in the rate) to ``IRR_TOLERANCE`` (and
  reported to that quantum), with bisection as a fallback; both rates are reported rounded half-even to ``RATE_PLACES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from typing import Any

from finloop.core.errors import InvalidRequest
from finloop.core.money import MAX_AMOUNT, Money, Rounding, currency, round_minor
from finloop.credit.daycount import DayCount, add_months, days, year_days, year_fraction


class Method(StrEnum):
    EQUAL_INSTALLMENT = "equal_installment"
    EQUAL_PRINCIPAL = "equal_principal"
    INTEREST_ONLY = "interest_only"
    FLAT = "flat"
    REVOLVING = "revolving"


class TermUnit(StrEnum):
    MONTH = "month"
    DAY = "day"


class RateBasis(StrEnum):
    ANNUAL = "annual"
    DAILY = "daily"


MAX_MONTHS = 360
MAX_DAYS = 366
#: Nominal annual rates up to 1000%; daily rates up to 3% a day.
MAX_ANNUAL_RATE = Decimal(10)
MAX_DAILY_RATE = Decimal("0.03")
EARLIEST_START = date(2000, 1, 1)
LATEST_START = date(2999, 12, 31)
RATE_PLACES = Decimal("0.000001")
PERIODIC_PLACES = Decimal("0.000000000001")
IRR_TOLERANCE = Decimal("1e-30")
_PRECISION = 50
_MAX_NEWTON = 200
_MAX_BISECTION = 400


def _rate(value: Any, param: str, *, upper: Decimal, upper_inclusive: bool = True) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidRequest(f"{param} is a decimal rate (a string such as \"0.18\").", code="invalid_rate",
                             param=param)
    rate = Decimal(value)
    if not rate.is_finite() or rate < 0 or rate > upper or (not upper_inclusive and rate == upper):
        bound = f"at most {upper}" if upper_inclusive else f"below {upper}"
        raise InvalidRequest(f"{param} is a fraction from 0, {bound}.", code="invalid_rate", param=param)
    if rate.as_tuple().exponent < -12:  # type: ignore[operator]
        raise InvalidRequest(f"{param} has at most 12 decimal places.", code="invalid_rate", param=param)
    return rate


def _fee_amount(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
        raise InvalidRequest(f"{param} is a non-negative integer of minor units.", code="invalid_amount",
                             param=param)
    return value


@dataclass(frozen=True, slots=True)
class Pricing:
    """The terms a schedule depends on: what a product fixes, or a preview states."""

    method: Method
    rate: Decimal = Decimal(0)
    rate_basis: RateBasis = RateBasis.ANNUAL
    day_count: DayCount | None = None
    term_unit: TermUnit = TermUnit.MONTH
    rounding: Rounding = Rounding.HALF_UP
    upfront_fee_rate: Decimal = Decimal(0)
    upfront_fee_amount: int = 0
    installment_fee_rate: Decimal = Decimal(0)
    installment_fee_amount: int = 0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "method", Method(self.method))
        except ValueError:
            raise InvalidRequest(f"method is one of {', '.join(Method)}.", code="invalid_method",
                                 param="method") from None
        for name, kind in (("rate_basis", RateBasis), ("term_unit", TermUnit), ("rounding", Rounding)):
            try:
                object.__setattr__(self, name, kind(getattr(self, name)))
            except ValueError:
                raise InvalidRequest(f"{name} is one of {', '.join(kind)}.", code=f"invalid_{name}",
                                     param=name) from None
        if self.day_count is not None:
            try:
                object.__setattr__(self, "day_count", DayCount(self.day_count))
            except ValueError:
                raise InvalidRequest(f"day_count is one of {', '.join(DayCount)}.", code="invalid_day_count",
                                     param="day_count") from None
        upper = MAX_DAILY_RATE if self.rate_basis is RateBasis.DAILY else MAX_ANNUAL_RATE
        object.__setattr__(self, "rate", _rate(self.rate, "rate", upper=upper))
        for name in ("upfront_fee_rate", "installment_fee_rate"):
            object.__setattr__(self, name, _rate(getattr(self, name), name, upper=Decimal(1), upper_inclusive=False))
        for name in ("upfront_fee_amount", "installment_fee_amount"):
            _fee_amount(getattr(self, name), name)
        if self.term_unit is TermUnit.DAY and self.method is not Method.INTEREST_ONLY:
            raise InvalidRequest("A term in days is one bullet repayment: use method interest_only.",
                                 code="method_not_allowed", param="method")
        needs_days = (self.rate_basis is RateBasis.DAILY or self.term_unit is TermUnit.DAY
                      or self.method is Method.REVOLVING)
        if needs_days and self.day_count is None:
            object.__setattr__(self, "day_count", DayCount.ACTUAL_365)

    @property
    def nominal_annual_rate(self) -> Fraction:
        """The annual rate of the pricing: the rate itself, or a daily rate times the convention's year."""
        if self.rate_basis is RateBasis.DAILY:
            return Fraction(self.rate) * year_days(self.day_count or DayCount.ACTUAL_365)
        return Fraction(self.rate)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method.value, "rate": str(self.rate), "rate_basis": self.rate_basis.value,
                "day_count": self.day_count.value if self.day_count else None, "term_unit": self.term_unit.value,
                "rounding": self.rounding.value, "upfront_fee_rate": str(self.upfront_fee_rate),
                "upfront_fee_amount": self.upfront_fee_amount,
                "installment_fee_rate": str(self.installment_fee_rate),
                "installment_fee_amount": self.installment_fee_amount}


@dataclass(frozen=True, slots=True)
class Installment:
    number: int
    due_on: date
    #: Days of the period by the day count (actual days without one).
    days: int
    principal: int
    interest: int
    fees: int
    total: int
    #: Principal still owed after this installment.
    balance: int


@dataclass(frozen=True, slots=True)
class Schedule:
    currency: str
    principal: int
    term: int
    start_on: date
    pricing: Pricing
    installments: tuple[Installment, ...]
    upfront_fee: int
    periodic_rate: Decimal
    periods_per_year: Fraction
    apr: Decimal
    effective_annual_rate: Decimal
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def maturity_on(self) -> date:
        return self.installments[-1].due_on

    @property
    def net_disbursed(self) -> int:
        return self.principal - self.upfront_fee

    @property
    def total_interest(self) -> int:
        return sum(i.interest for i in self.installments)


def check_term(term: Any, unit: TermUnit) -> int:
    upper = MAX_MONTHS if unit is TermUnit.MONTH else MAX_DAYS
    if isinstance(term, bool) or not isinstance(term, int) or not 1 <= term <= upper:
        raise InvalidRequest(f"term is a whole number of {unit.value}s from 1 to {upper}.", code="invalid_term",
                             param="term")
    return term


def check_start(start_on: Any) -> date:
    if not isinstance(start_on, date) or not EARLIEST_START <= start_on <= LATEST_START:
        raise InvalidRequest(f"start_date is a date from {EARLIEST_START} to {LATEST_START}.",
                             code="invalid_start_date", param="start_date")
    return start_on


def check_principal(principal: Any) -> int:
    if isinstance(principal, bool) or not isinstance(principal, int) or not 1 <= principal <= MAX_AMOUNT:
        raise InvalidRequest(f"principal is a positive integer of minor units, at most {MAX_AMOUNT}.",
                             code="invalid_amount", param="principal")
    return principal


def _period_interest(balance: int, pricing: Pricing, start: date, end: date) -> Fraction:
    if pricing.day_count is None:
        return balance * Fraction(pricing.rate) / 12
    if pricing.rate_basis is RateBasis.DAILY:
        return balance * Fraction(pricing.rate) * days(start, end, pricing.day_count)
    return balance * Fraction(pricing.rate) * year_fraction(start, end, pricing.day_count)


def accrued_interest(balance: int, pricing: Pricing, start: date, end: date) -> int:
    """The interest ``balance`` accrues from ``start`` to ``end`` by the pricing's day count (actual/365 when it
    has none), rounded by its rule: a revolving draw repaid early, a broken period."""
    dated = pricing if pricing.day_count is not None else Pricing(
        pricing.method, pricing.rate, pricing.rate_basis, DayCount.ACTUAL_365, pricing.term_unit, pricing.rounding)
    return round_minor(_period_interest(balance, dated, start, end), pricing.rounding)


def _annuity(principal: int, monthly_rate: Fraction, count: int) -> Fraction:
    if monthly_rate == 0:
        return Fraction(principal, count)
    return principal * monthly_rate / (1 - (1 + monthly_rate) ** -count)


def _due_dates(pricing: Pricing, start: date, term: int) -> list[date]:
    if pricing.term_unit is TermUnit.DAY:
        return [start + timedelta(days=term)]
    return [add_months(start, n) for n in range(1, term + 1)]


def _equal_parts(whole: int, count: int, rounding: Rounding) -> list[int]:
    """``count`` parts of ``whole``: each the rounded equal share while something is left, the last the rest."""
    share = round_minor(Fraction(whole, count), rounding)
    parts: list[int] = []
    left = whole
    for _ in range(count - 1):
        part = min(max(share, 0), left)
        parts.append(part)
        left -= part
    parts.append(left)
    return parts


def schedule(pricing: Pricing, *, principal: int, currency_code: str, term: int, start_on: date) -> Schedule:
    """The repayment schedule of ``principal`` (minor units of ``currency_code``) over ``term`` months (or days)
    disbursed on ``start_on``, with its totals, APR and effective annual rate."""
    currency(currency_code)
    principal = check_principal(principal)
    term = check_term(term, pricing.term_unit)
    start_on = check_start(start_on)
    rounding = pricing.rounding
    upfront_fee = round_minor(principal * Fraction(pricing.upfront_fee_rate), rounding) + pricing.upfront_fee_amount
    if upfront_fee >= principal:
        raise InvalidRequest("The upfront fee would take the whole principal.", code="fee_exceeds_principal",
                             param="principal")
    fee = round_minor(principal * Fraction(pricing.installment_fee_rate), rounding) + pricing.installment_fee_amount
    dues = _due_dates(pricing, start_on, term)
    count = len(dues)
    starts = [start_on, *dues[:-1]]
    method = pricing.method
    principal_parts: list[int] | None = None
    interest_parts: list[int] | None = None
    installment = 0
    if method is Method.EQUAL_PRINCIPAL:
        principal_parts = _equal_parts(principal, count, rounding)
    elif method is Method.FLAT:
        if pricing.day_count is None:
            flat_interest = principal * Fraction(pricing.rate) * Fraction(term, 12)
        else:
            flat_interest = _period_interest(principal, pricing, start_on, dues[-1])
        principal_parts = _equal_parts(principal, count, rounding)
        interest_parts = _equal_parts(round_minor(flat_interest, rounding), count, rounding)
    elif method is Method.EQUAL_INSTALLMENT:
        installment = round_minor(_annuity(principal, pricing.nominal_annual_rate / 12, count), rounding)
    rows: list[Installment] = []
    balance = principal
    for index, (begin, due) in enumerate(zip(starts, dues, strict=True)):
        last = index == count - 1
        if interest_parts is not None:
            interest = interest_parts[index]
        else:
            interest = round_minor(_period_interest(balance, pricing, begin, due), rounding)
        if last:
            part = balance
        elif principal_parts is not None:
            part = principal_parts[index]
        elif method is Method.EQUAL_INSTALLMENT:
            part = min(max(installment - interest, 0), balance)
        else:  # interest only, revolving: the principal at the end
            part = 0
        balance -= part
        elapsed = days(begin, due, pricing.day_count) if pricing.day_count else (due - begin).days
        rows.append(Installment(index + 1, due, elapsed, part, interest, fee, part + interest + fee, balance))
    periods_per_year = Fraction(12) if pricing.term_unit is TermUnit.MONTH else Fraction(365, term)
    net = principal - upfront_fee
    periodic = periodic_irr(net, [r.total for r in rows])
    apr, effective = annualise(periodic, periods_per_year)
    totals = {"principal": sum(r.principal for r in rows), "interest": sum(r.interest for r in rows),
              "fees": sum(r.fees for r in rows) + upfront_fee, "installment_fees": sum(r.fees for r in rows),
              "upfront_fee": upfront_fee, "repaid": sum(r.total for r in rows)}
    return Schedule(currency_code, principal, term, start_on, pricing, tuple(rows), upfront_fee, periodic,
                    periods_per_year, apr, effective, totals)


class Shorten(StrEnum):
    """What a partial prepayment changes: the installment (same count) or the term (same installment)."""

    REDUCE_INSTALLMENT = "reduce_installment"
    REDUCE_TERM = "reduce_term"


def reschedule(pricing: Pricing, *, principal: int, start_on: date, due_dates: Sequence[date], fee: int,
               shorten: Shorten, keep: int = 0) -> tuple[Installment, ...]:
    """The installments that repay ``principal`` from ``start_on`` (a prepayment's day, inside the current
    period) at the remaining ``due_dates``: what a partial prepayment leaves. Interest runs by the pricing's day
    count (actual/365 when it has none, since the first period is broken) on each period's balance. With
    ``REDUCE_INSTALLMENT`` the count stays and the installment is recalculated (annuity over the count, equal
    parts, or flat interest from ``start_on`` to the last due date in equal parts); with ``REDUCE_TERM`` the
    installment (annuity) or principal part (equal principal, flat) ``keep`` stays and the fewest due dates that
    repay the principal are used. Interest-only and revolving repay the principal at the end: only
    ``REDUCE_INSTALLMENT`` applies. ``fee`` is each installment's fee, as before."""
    if not due_dates or due_dates[0] <= start_on:
        raise ValueError("a reschedule needs due dates after its start")
    dated = pricing if pricing.day_count is not None else Pricing(
        pricing.method, pricing.rate, pricing.rate_basis, DayCount.ACTUAL_365, pricing.term_unit, pricing.rounding)
    method, rounding = pricing.method, pricing.rounding
    dues = list(due_dates)
    if shorten is Shorten.REDUCE_TERM:
        if method in (Method.INTEREST_ONLY, Method.REVOLVING) or keep <= 0:
            raise InvalidRequest("Only an amortising loan can be shortened; reduce the installment instead.",
                                 code="reduce_term_not_applicable", param="prepayment")
        dues = dues[:_count_for(principal, keep, dated, start_on, dues)]
    count = len(dues)
    starts = [start_on, *dues[:-1]]
    parts: list[int] | None = None
    interests: list[int] | None = None
    installment = 0
    if method is Method.EQUAL_PRINCIPAL or method is Method.FLAT:
        parts = ([min(keep, principal)] * (count - 1) + [0] if shorten is Shorten.REDUCE_TERM
                 else _equal_parts(principal, count, rounding))
        if shorten is Shorten.REDUCE_TERM:
            parts[-1] = principal - sum(parts[:-1])
        if method is Method.FLAT:
            flat = round_minor(_period_interest(principal, dated, start_on, dues[-1]), rounding)
            interests = _equal_parts(flat, count, rounding)
    elif method is Method.EQUAL_INSTALLMENT:
        installment = keep if shorten is Shorten.REDUCE_TERM else round_minor(
            _annuity(principal, pricing.nominal_annual_rate / 12, count), rounding)
    rows: list[Installment] = []
    balance = principal
    for index, (begin, due) in enumerate(zip(starts, dues, strict=True)):
        interest = interests[index] if interests is not None else round_minor(
            _period_interest(balance, dated, begin, due), rounding)
        if index == count - 1:
            part = balance
        elif parts is not None:
            part = parts[index]
        elif method is Method.EQUAL_INSTALLMENT:
            part = min(max(installment - interest, 0), balance)
        else:
            part = 0
        balance -= part
        rows.append(Installment(index + 1, due, days(begin, due, dated.day_count or DayCount.ACTUAL_365), part,
                                interest, fee, part + interest + fee, balance))
    return tuple(rows)


def _count_for(principal: int, keep: int, pricing: Pricing, start_on: date, dues: Sequence[date]) -> int:
    """The fewest of ``dues`` over which ``keep`` a period (annuity installment or principal part) repays
    ``principal``; all of them when even that is not enough (the last installment takes the rest)."""
    if pricing.method is Method.EQUAL_INSTALLMENT:
        balance = Fraction(principal)
        begin = start_on
        for index, due in enumerate(dues):
            balance -= keep - _period_interest(int(balance), pricing, begin, due)
            if balance <= 0:
                return index + 1
            begin = due
        return len(dues)
    return min(len(dues), -(-principal // keep))


# ---------------------------------------------------------------------------------------------- rates


def periodic_irr(net: int, payments: Sequence[int]) -> Decimal:
    """The rate ``i`` per period at which the payments (one per period, from period 1) are worth ``net`` today:
    ``net = Σ payment_k / (1 + i)^k``. Zero when they sum to ``net``; the payments never sum to less (no
    negative rates here)."""
    total = sum(payments)
    if net <= 0 or total < net:
        raise ValueError("the payments must repay at least the amount received")
    if total == net:
        return Decimal(0)
    with localcontext() as context:
        context.prec = _PRECISION
        received = Decimal(net)
        flows = [Decimal(p) for p in payments]

        def value_and_slope(rate: Decimal) -> tuple[Decimal, Decimal]:
            discount = 1 / (1 + rate)
            factor = Decimal(1)
            present = Decimal(0)
            slope = Decimal(0)
            for k, payment in enumerate(flows, start=1):
                factor *= discount
                present += payment * factor
                slope -= k * payment * factor * discount
            return present - received, slope

        rate = Decimal(0)
        for _ in range(_MAX_NEWTON):
            value, slope = value_and_slope(rate)
            if slope == 0:
                break
            step = value / slope
            rate -= step
            if abs(step) <= IRR_TOLERANCE:
                return rate.quantize(IRR_TOLERANCE, rounding=ROUND_HALF_EVEN)
        low, high = Decimal(0), Decimal(1)
        while value_and_slope(high)[0] > 0:
            high *= 2
        for _ in range(_MAX_BISECTION):
            middle = (low + high) / 2
            if value_and_slope(middle)[0] > 0:
                low = middle
            else:
                high = middle
            if high - low <= IRR_TOLERANCE:
                break
        return ((low + high) / 2).quantize(IRR_TOLERANCE, rounding=ROUND_HALF_EVEN)


def annualise(periodic: Decimal, periods_per_year: Fraction) -> tuple[Decimal, Decimal]:
    """(APR, effective annual rate) of a periodic rate, each rounded half-even to ``RATE_PLACES``."""
    with localcontext() as context:
        context.prec = _PRECISION
        per_year = Decimal(periods_per_year.numerator) / Decimal(periods_per_year.denominator)
        apr = periodic * per_year
        effective = (1 + periodic) ** per_year - 1
        return (apr.quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN),
                effective.quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN))


# ---------------------------------------------------------------------------------------------- output


def minor_from_text(text: str, currency_code: str, param: str = "principal") -> int:
    """A decimal string of major units ("10000.00") as minor units, exactly: more decimal places than the
    currency has (CNY 2, JPY 0, BHD 3) is an error, never a rounding."""
    exponent = currency(currency_code).exponent
    value = text.strip() if isinstance(text, str) else ""
    whole, dot, fraction = value.partition(".")
    if not whole.isdigit() or not whole.isascii() or (dot and (not fraction.isdigit() or not fraction.isascii())):
        raise InvalidRequest(f"{param} is a decimal amount such as 10000.00.", code="invalid_amount", param=param)
    if len(fraction) > exponent:
        raise InvalidRequest(f"{currency_code} has {exponent} decimal places; {param} has {len(fraction)}.",
                             code="too_many_decimals", param=param)
    minor: int = int(whole) * 10**exponent + (int(fraction.ljust(exponent, "0")) if exponent else 0)
    if minor > MAX_AMOUNT:
        raise InvalidRequest(f"{param} is at most {MAX_AMOUNT} minor units.", code="amount_too_large", param=param)
    return minor


def major(amount: int, currency_code: str) -> str:
    """An amount of minor units as a decimal string of major units with the currency's places ("983.33")."""
    return str(Money(amount, currency_code).to_major())


def schedule_json(result: Schedule) -> dict[str, Any]:
    """The schedule with amounts as decimal strings of major units: what ``finloop credit schedule`` prints."""
    code = result.currency
    return {
        "currency": code, "principal": major(result.principal, code), "term": result.term,
        "term_unit": result.pricing.term_unit.value, "method": result.pricing.method.value,
        "annual_rate": str(result.pricing.rate) if result.pricing.rate_basis is RateBasis.ANNUAL else None,
        "daily_rate": str(result.pricing.rate) if result.pricing.rate_basis is RateBasis.DAILY else None,
        "day_count": result.pricing.day_count.value if result.pricing.day_count else None,
        "rounding": result.pricing.rounding.value, "start_date": result.start_on.isoformat(),
        "maturity_date": result.maturity_on.isoformat(),
        "installments": [{"number": i.number, "due_date": i.due_on.isoformat(), "days": i.days,
                          "principal": major(i.principal, code), "interest": major(i.interest, code),
                          "fees": major(i.fees, code), "total": major(i.total, code),
                          "balance": major(i.balance, code)} for i in result.installments],
        "totals": {name: major(value, code) for name, value in result.totals.items()},
        "net_disbursed": major(result.net_disbursed, code),
        "periodic_rate": str(result.periodic_rate.quantize(PERIODIC_PLACES, rounding=ROUND_HALF_EVEN)),
        "periods_per_year": str(Decimal(result.periods_per_year.numerator) / result.periods_per_year.denominator),
        "apr": str(result.apr), "effective_annual_rate": str(result.effective_annual_rate),
    }
