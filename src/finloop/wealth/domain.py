"""Pure rules of the money-market fund: yields, daily income, the accrual window. No I/O.

Units are minor units of the fund's currency: a money-market fund's net asset value is fixed at 1.00, so a
holding of 10000 units is worth 100.00 and income is paid as new units.

Rounding rules (named, see ``finloop.core.money.Rounding``):
- income: ``Rounding.DOWN`` to the minor unit (an amount owed to a holder never exceeds the exact value);
  the sub-minor remainder is carried forward per holder and fund and added to the next day's exact
  income, so the income posted over any run of days is ``floor(exact total)``: within one minor unit of
  the exact sum, and never more than it;
- seven-day annualised yield: stored exact when the operator gives it (checked against the formula
  within ``ANNUALISED_TOLERANCE``), otherwise computed and rounded ``HALF_EVEN`` to ``YIELD_PLACES``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction

from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import InvalidRequest
from finloop.core.money import Rounding, exact, round_minor

#: Units per which the daily income is quoted ("income per 10,000 units").
PER_UNITS = 10_000
#: Days of the seven-day annualised yield and the days of a year it is scaled to.
YIELD_DAYS = 7
DAYS_PER_YEAR = 365
#: Places of a computed annualised yield (0.000001 = 0.0001%).
YIELD_PLACES = Decimal("0.000001")
#: How far an operator's annualised yield may lie from the formula: half of the last digit of a yield
#: quoted as a percentage with two decimals (2.38% = 0.0238), the coarsest quote in use.
ANNUALISED_TOLERANCE = Decimal("0.00005")
#: Places and bound of a published income per 10,000 units (0.6523 is a typical day).
INCOME_PLACES = 6
MAX_INCOME_PER_10K = Decimal(100)

FUND_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{0,31}$")
HOLDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")


class HolderKind(StrEnum):
    CUSTOMER = "customer"
    MERCHANT = "merchant"


class FundStatus(StrEnum):
    OPEN = "open"            # subscriptions and redemptions
    SUSPENDED = "suspended"  # redemptions only


def check_fund_code(code: str) -> str:
    if not FUND_CODE.match(code):
        raise InvalidRequest("A fund code is 1 to 32 characters: upper-case letters, digits, '_' and '-'.",
                             code="invalid_fund_code", param="code")
    return code


def check_holder_id(holder_id: str) -> str:
    if not HOLDER_ID.match(holder_id):
        raise InvalidRequest("A holder id is 1 to 40 letters, digits, '_' or '-'.", code="invalid_holder_id",
                             param="holder_id")
    return holder_id


def check_income_per_10k(value: Decimal, param: str = "income_per_10k") -> Decimal:
    """A day's income per 10,000 units: finite, 0 to 100, at most six decimal places (no negative yields)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidRequest("The income per 10,000 units is a decimal number.", code="invalid_income", param=param)
    exponent = value.as_tuple().exponent
    if value < 0 or value > MAX_INCOME_PER_10K or (isinstance(exponent, int) and exponent < -INCOME_PLACES):
        raise InvalidRequest(f"The income per 10,000 units lies between 0 and {MAX_INCOME_PER_10K} with at most "
                             f"{INCOME_PLACES} decimal places.", code="invalid_income", param=param)
    return value


def seven_day_annualised(incomes_per_10k: Sequence[Decimal]) -> Fraction:
    """The standard money-market seven-day annualised yield, exact:
    ``(sum of the last 7 daily incomes per 10,000 / 10,000) * 365 / 7``.

    With fewer than seven days published (a new fund), the days there are annualise over their own count.
    """
    days = list(incomes_per_10k)[-YIELD_DAYS:]
    if not days:
        raise InvalidRequest("A yield needs at least one day's income.", code="invalid_income",
                             param="income_per_10k")
    total = sum((exact(d, "income_per_10k") for d in days), Fraction(0))
    return total / PER_UNITS * DAYS_PER_YEAR / len(days)


def to_decimal(value: Fraction, places: Decimal | None = None) -> Decimal:
    """A fraction as a Decimal: exact when its denominator has only the factors 2 and 5 (as every quantity
    here has), else rounded ``HALF_EVEN`` to ``places`` (required then)."""
    with localcontext() as context:
        context.prec = 80
        result = Decimal(value.numerator) / Decimal(value.denominator)
        if places is not None:
            return result.quantize(places, rounding=ROUND_HALF_EVEN)
        return result.normalize() if result else Decimal(0)


def resolve_annualised(given: Decimal | None, incomes_per_10k: Sequence[Decimal]) -> Decimal:
    """The annualised yield to store: the operator's when it agrees with the formula, else computed."""
    computed = seven_day_annualised(incomes_per_10k)
    if given is None:
        return to_decimal(computed, YIELD_PLACES)
    if not isinstance(given, Decimal) or not given.is_finite() or given < 0 or given > 1:
        raise InvalidRequest("The annualised yield is a decimal fraction between 0 and 1 (0.0238 = 2.38%).",
                             code="invalid_annualised_yield", param="annualised_7d")
    if abs(Fraction(given) - computed) > Fraction(ANNUALISED_TOLERANCE):
        expected = to_decimal(computed, YIELD_PLACES)
        raise InvalidRequest(
            f"The seven-day annualised yield {given} disagrees with the published incomes, which give {expected}.",
            code="annualised_yield_inconsistent", param="annualised_7d", details={"expected": str(expected)})
    return given


@dataclass(frozen=True, slots=True)
class Income:
    amount: int       # posted now, in minor units (units of the fund)
    exact: Fraction   # the exact income including the carried remainder
    carry: Fraction   # the remainder carried to the next day, 0 <= carry < 1


def daily_income(basis: int, income_per_10k: Decimal | Fraction, carry: Decimal | Fraction = Fraction(0)) -> Income:
    """Income of ``basis`` units at ``income_per_10k`` (summed over the window's days), plus the carried
    remainder: ``Rounding.DOWN`` to the minor unit, the rest carried forward."""
    if basis < 0:
        raise ValueError("a holding is never negative")
    rate = exact(income_per_10k, "income_per_10k")
    previous = exact(carry, "carry")
    if rate < 0 or not 0 <= previous < 1:
        raise ValueError("rates are non-negative and a carried remainder lies in [0, 1)")
    total = Fraction(basis) * rate / PER_UNITS + previous
    amount = round_minor(total, Rounding.DOWN)
    return Income(amount, total, total - amount)


def previous_business_day(calendar: BusinessCalendar, day: date) -> date:
    current = day - timedelta(days=1)
    for _ in range(3660):
        if calendar.is_business_day(current):
            return current
        current -= timedelta(days=1)
    raise InvalidRequest("Calendar has no business day within ten years.", code="calendar_exhausted")


def accrual_window(calendar: BusinessCalendar, business_date: date) -> list[date]:
    """The calendar days whose income the run of ``business_date`` accrues: every day after the previous
    business day up to ``business_date`` itself (a Monday's run accrues Saturday, Sunday and Monday)."""
    if not calendar.is_business_day(business_date):
        raise InvalidRequest(f"{business_date} is not a business day.", code="not_a_business_day",
                             param="business_date")
    start = previous_business_day(calendar, business_date) + timedelta(days=1)
    return [start + timedelta(days=n) for n in range((business_date - start).days + 1)]
