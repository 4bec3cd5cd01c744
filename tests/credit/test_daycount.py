"""Day-count conventions against hand-computed cases (leap day, month ends, a year boundary), and the monthly
due-date rule with its month-end roll."""

from __future__ import annotations

import calendar
import itertools
from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.credit.daycount import (
    DayCount,
    add_months,
    check_day_count,
    days,
    monthly_due_dates,
    year_days,
    year_fraction,
)

A365, AA, US, EU = DayCount.ACTUAL_365, DayCount.ACTUAL_ACTUAL, DayCount.THIRTY_360, DayCount.THIRTY_E_360


def test_actual_365_counts_calendar_days_over_365_even_in_a_leap_year() -> None:
    assert year_fraction(date(2028, 1, 1), date(2029, 1, 1), A365) == Fraction(366, 365)
    assert year_fraction(date(2028, 2, 28), date(2028, 3, 1), A365) == Fraction(2, 365)  # the leap day counts
    assert year_fraction(date(2026, 5, 5), date(2026, 5, 5), A365) == 0


def test_actual_actual_isda_splits_a_period_at_the_year_boundary() -> None:
    # 15 Dec 2027 to 15 Jan 2028: 17 days in 2027 (the 15th to the 31st) over 365, 14 days in 2028 over 366.
    assert year_fraction(date(2027, 12, 15), date(2028, 1, 15), AA) == Fraction(17, 365) + Fraction(14, 366)
    # A whole leap year is one year; so is a whole common year.
    assert year_fraction(date(2028, 1, 1), date(2029, 1, 1), AA) == 1
    assert year_fraction(date(2026, 1, 1), date(2027, 1, 1), AA) == 1
    # February 2028 has 29 days, all in a leap year.
    assert year_fraction(date(2028, 2, 1), date(2028, 3, 1), AA) == Fraction(29, 366)
    # Two year boundaries: 10 days of 2027, all of 2028, 5 days of 2029.
    assert year_fraction(date(2027, 12, 22), date(2029, 1, 6), AA) == Fraction(10, 365) + 1 + Fraction(5, 365)


@pytest.mark.parametrize(("start", "end", "us", "eu"), [
    (date(2028, 1, 31), date(2028, 2, 29), 29, 29),  # a 31st start becomes the 30th
    (date(2028, 2, 29), date(2028, 3, 31), 30, 31),  # US: the last of February counts as the 30th, and so the 31st
    (date(2028, 3, 31), date(2028, 4, 30), 30, 30),
    (date(2026, 1, 31), date(2026, 2, 28), 28, 28),
    (date(2026, 2, 28), date(2026, 3, 31), 30, 32),
    (date(2026, 2, 28), date(2027, 2, 28), 360, 360),  # US: both ends the last of February
    (date(2026, 1, 15), date(2026, 2, 15), 30, 30),
    (date(2026, 12, 31), date(2027, 1, 31), 30, 30),  # a year boundary
    (date(2026, 1, 30), date(2026, 3, 31), 60, 60),  # the end's 31st becomes the 30th after a 30th start
    (date(2026, 1, 29), date(2026, 3, 31), 62, 61),  # ... but not after a 29th, in the US rule
])
def test_thirty_360_conventions_by_hand(start: date, end: date, us: int, eu: int) -> None:
    assert days(start, end, US) == us
    assert days(start, end, EU) == eu
    assert year_fraction(start, end, US) == Fraction(us, 360)
    assert year_fraction(start, end, EU) == Fraction(eu, 360)


def test_the_actual_conventions_count_calendar_days() -> None:
    assert days(date(2028, 1, 31), date(2028, 2, 29), A365) == 29
    assert days(date(2028, 2, 29), date(2028, 3, 31), AA) == 31
    assert year_days(A365) == year_days(AA) == 365 and year_days(US) == year_days(EU) == 360


def test_a_year_fraction_runs_forward() -> None:
    with pytest.raises(ValueError, match="forward"):
        year_fraction(date(2026, 2, 1), date(2026, 1, 1), A365)


def test_due_dates_keep_the_start_day_and_roll_to_short_month_ends() -> None:
    assert monthly_due_dates(date(2028, 1, 31), 4) == [date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30),
                                                        date(2028, 5, 31)]
    assert monthly_due_dates(date(2026, 1, 31), 2) == [date(2026, 2, 28), date(2026, 3, 31)]
    assert monthly_due_dates(date(2026, 11, 30), 3) == [date(2026, 12, 30), date(2027, 1, 30), date(2027, 2, 28)]
    assert add_months(date(2028, 2, 29), 12) == date(2029, 2, 28)
    assert add_months(date(2026, 1, 1), 12) == date(2027, 1, 1)


def test_an_unknown_day_count_is_refused_naming_the_field() -> None:
    assert check_day_count("30e_360") is EU
    with pytest.raises(InvalidRequest) as caught:
        check_day_count("act/360")
    assert (caught.value.code, caught.value.param) == ("invalid_day_count", "day_count")


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 12, 31)), st.integers(1, 360))
def test_due_dates_are_strictly_increasing_on_the_start_day_or_the_month_end(start: date, count: int) -> None:
    dues = monthly_due_dates(start, count)
    assert all(a < b for a, b in itertools.pairwise([start, *dues]))
    for due in dues:
        last = calendar.monthrange(due.year, due.month)[1]
        assert due.day == min(start.day, last)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 1, 1)), st.integers(0, 800),
       st.integers(0, 800))
def test_actual_year_fractions_add_up_over_a_split_period(start: date, first: int, second: int) -> None:
    middle, end = start + timedelta(days=first), start + timedelta(days=first + second)
    for convention in (A365, AA):
        assert year_fraction(start, middle, convention) + year_fraction(middle, end, convention) \
            == year_fraction(start, end, convention)
    assert year_fraction(start, end, AA) * 365 <= (end - start).days
    assert year_fraction(start, end, AA) * 366 >= (end - start).days
