"""Day-count conventions and the monthly due-date rule of loan schedules. Pure, exact (``Fraction``), no I/O.

Invariants owned here:
- a year fraction is exact: a ``Fraction`` of days over the convention's year, never a float;
- ``actual_365``: actual days / 365 (2006 ISDA Definitions, section 4.16(d), "Actual/365 (Fixed)");
- ``actual_actual``: the days falling in a leap year / 366 plus the days falling in a common year / 365
  (section 4.16(b), "Actual/Actual (ISDA)"); the start day counts, the end day does not;
- ``30_360``: the US (SIA) rule: the 2006 ISDA "30/360" of section 4.16(f) (a 31st start becomes the 30th; a
  31st end becomes the 30th when the start is the 30th or 31st) plus the last-day-of-February rules of the SIA
  Standard Securities Calculation Methods (a start on the last day of February becomes the 30th; an end on
  the last day of February becomes the 30th when the start is also one), as QuantLib's ``Thirty360(US)``;
- ``30e_360``: both a 31st start and a 31st end become the 30th (section 4.16(g), "30E/360", Eurobond basis);
- the 30/360 conventions count ``360·ΔY + 30·ΔM + ΔD`` days over a year of 360;
- due date ``n`` of a monthly schedule is ``n`` months after the start, on the start's day of the month, or on
  the month's last day when the month is shorter: always counted from the start (31 January → 29 February
  2028 → 31 March), never from the previous due date, so a short month does not pull later dates in.
"""

from __future__ import annotations

import calendar
from datetime import date
from enum import StrEnum
from fractions import Fraction

from finloop.core.errors import InvalidRequest


class DayCount(StrEnum):
    ACTUAL_365 = "actual_365"
    ACTUAL_ACTUAL = "actual_actual"
    THIRTY_360 = "30_360"
    THIRTY_E_360 = "30e_360"


def check_day_count(value: object, param: str = "day_count") -> DayCount:
    try:
        return DayCount(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidRequest(f"{param} is one of {', '.join(DayCount)}.", code="invalid_day_count",
                             param=param) from None


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _is_last_of_february(day: date) -> bool:
    return day.month == 2 and day.day == _last_day(day.year, 2)


def days_30_360(start: date, end: date) -> int:
    """Days between two dates by 30/360 (US, SIA)."""
    d1, d2 = start.day, end.day
    if _is_last_of_february(start) and _is_last_of_february(end):
        d2 = 30
    if _is_last_of_february(start):
        d1 = 30
    if d2 == 31 and d1 >= 30:
        d2 = 30
    if d1 == 31:
        d1 = 30
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def days_30e_360(start: date, end: date) -> int:
    """Days between two dates by 30E/360 (Eurobond basis)."""
    d1, d2 = min(start.day, 30), min(end.day, 30)
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def days(start: date, end: date, convention: DayCount) -> int:
    """The days the convention counts from ``start`` to ``end`` (actual days for the actual conventions)."""
    if convention is DayCount.THIRTY_360:
        return days_30_360(start, end)
    if convention is DayCount.THIRTY_E_360:
        return days_30e_360(start, end)
    return (end - start).days


def _actual_actual(start: date, end: date) -> Fraction:
    fraction = Fraction(0)
    cursor = start
    while cursor < end:
        next_year = date(cursor.year + 1, 1, 1) if cursor.year < 9999 else end
        upto = min(end, next_year)
        basis = 366 if calendar.isleap(cursor.year) else 365
        fraction += Fraction((upto - cursor).days, basis)
        cursor = upto
    return fraction


def year_fraction(start: date, end: date, convention: DayCount) -> Fraction:
    """The exact fraction of a year from ``start`` to ``end`` (``end`` not before ``start``)."""
    if end < start:
        raise ValueError("a year fraction runs forward: end is before start")
    if convention is DayCount.ACTUAL_365:
        return Fraction((end - start).days, 365)
    if convention is DayCount.ACTUAL_ACTUAL:
        return _actual_actual(start, end)
    return Fraction(days(start, end, convention), 360)


def year_days(convention: DayCount) -> int:
    """The days of a year a daily rate is multiplied by to give the nominal annual rate (365 or 360)."""
    return 360 if convention in (DayCount.THIRTY_360, DayCount.THIRTY_E_360) else 365


def add_months(start: date, months: int) -> date:
    """``months`` months after ``start`` on the start's day, or the month's last day when it is shorter."""
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(start.day, _last_day(year, month)))


def monthly_due_dates(start: date, count: int) -> list[date]:
    """The ``count`` monthly due dates after ``start`` (the disbursement date)."""
    return [add_months(start, n) for n in range(1, count + 1)]
