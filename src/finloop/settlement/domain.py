"""Pure settlement rules: cycles on the business calendar, the reserve/freeze split, FX conversion. No I/O.

Invariants owned here:
- a settle date is a business day and never before its cohort date;
- the parts of a settled amount (reserve + frozen + available) sum to it exactly;
- a conversion between currencies rounds once, by a named rule.
"""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import InvalidRequest
from finloop.core.money import Rounding, currency, round_minor

MAX_OFFSET_DAYS = 30
MAX_HOLD_DAYS = 366
#: Unsettled cohorts older than this are not looked at any more (see docs/settlement.md, limits).
LOOKBACK_DAYS = 400


class Cycle(StrEnum):
    T_PLUS_N = "t_plus_n"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class BatchStatus(StrEnum):
    SETTLED = "settled"
    EMPTY = "empty"  # the cohort netted to zero: nothing posted


class HoldKind(StrEnum):
    RESERVE = "reserve"
    FREEZE = "freeze"


class HoldStatus(StrEnum):
    HELD = "held"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class CycleRule:
    cycle: Cycle = Cycle.T_PLUS_N
    offset_days: int = 1
    weekday: int | None = None
    day_of_month: int | None = None

    def check(self) -> CycleRule:
        if self.cycle is Cycle.T_PLUS_N:
            if not 0 <= self.offset_days <= MAX_OFFSET_DAYS:
                raise InvalidRequest(f"T+n takes n from 0 to {MAX_OFFSET_DAYS} business days.",
                                     code="invalid_offset", param="offset_days")
        elif self.cycle is Cycle.WEEKLY:
            if self.weekday is None or not 0 <= self.weekday <= 6:
                raise InvalidRequest("A weekly cycle needs a weekday from 0 (Monday) to 6 (Sunday).",
                                     code="invalid_weekday", param="weekday")
        elif self.day_of_month is None or not 1 <= self.day_of_month <= 31:
            raise InvalidRequest("A monthly cycle needs a day of month from 1 to 31.",
                                 code="invalid_day_of_month", param="day_of_month")
        return self


def settle_date(rule: CycleRule, calendar: BusinessCalendar, cohort: date) -> date:
    """The business date on which a cohort of ``cohort`` settles.

    - ``t_plus_n``: the n-th business day after the cohort date (T+0: the cohort date itself, rolled
      forward to a business day);
    - ``weekly``: the first ``weekday`` strictly after the cohort date, rolled forward to a business day;
    - ``monthly``: the first ``day_of_month`` strictly after the cohort date (the month's last day in a
      shorter month), rolled forward to a business day.
    """
    if rule.cycle is Cycle.T_PLUS_N:
        return calendar.add_business_days(cohort, rule.offset_days)
    if rule.cycle is Cycle.WEEKLY:
        assert rule.weekday is not None
        ahead = (rule.weekday - cohort.weekday()) % 7 or 7
        return calendar.next_business_day(cohort + timedelta(days=ahead))
    assert rule.day_of_month is not None
    year, month = cohort.year, cohort.month
    for _ in range(2):
        last = _calendar.monthrange(year, month)[1]
        candidate = date(year, month, min(rule.day_of_month, last))
        if candidate > cohort:
            return calendar.next_business_day(candidate)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("a later month always has the day")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Split:
    """How a positive settled amount is divided among the party's buckets."""

    reserve: int
    frozen: int
    available: int


def split_settlement(amount: int, *, reserve_rate: Decimal, frozen: bool) -> Split:
    """Divide a settled amount: the reserve share rounded DOWN (toward zero: the party is never held
    more than the exact rate), then everything else to ``frozen`` during a freeze, else ``available``.
    A negative amount (a claw-back) holds nothing back: all of it comes from ``available``."""
    if amount <= 0:
        return Split(0, 0, amount)
    reserve = round_minor(Fraction(reserve_rate) * amount, Rounding.DOWN)
    rest = amount - reserve
    return Split(reserve, rest, 0) if frozen else Split(reserve, 0, rest)


def convert(amount: int, rate: Fraction, *, from_currency: str, to_currency: str) -> int:
    """Minor units of ``from_currency`` in ``to_currency`` at ``rate`` (quote units per base unit, both
    major), rounded HALF_EVEN (banker's rounding, the platform's FX rule), symmetric in sign."""
    scale = Fraction(currency(to_currency).minor_per_major, currency(from_currency).minor_per_major)
    magnitude = round_minor(abs(amount) * rate * scale, Rounding.HALF_EVEN)
    return magnitude if amount >= 0 else -magnitude


def check_reserve_rate(value: Decimal) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or not Decimal(0) <= value < Decimal(1):
        raise InvalidRequest("A reserve rate is a decimal from 0 up to (not including) 1.",
                             code="invalid_reserve_rate", param="reserve_rate")
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        raise InvalidRequest("A reserve rate has at most 6 decimal places.", code="invalid_reserve_rate",
                             param="reserve_rate")
    return value


def check_days(value: int, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_HOLD_DAYS:
        raise InvalidRequest(f"{param} is a whole number of days from 0 to {MAX_HOLD_DAYS}.",
                             code="invalid_days", param=param)
    return value


def release_date(calendar: BusinessCalendar, start: date, days: int) -> date:
    """A hold of ``days`` calendar days from ``start`` is released on the first business day on or after
    ``start + days``."""
    return calendar.next_business_day(start + timedelta(days=days))
