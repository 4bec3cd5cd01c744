"""Pure settlement rules: settle dates on the business calendar, the reserve split, FX conversion."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import InvalidRequest
from finloop.settlement.domain import (
    Cycle,
    CycleRule,
    Split,
    check_reserve_rate,
    convert,
    release_date,
    settle_date,
    split_settlement,
)

# Good Friday and Easter Monday 2026 are holidays; 2026-03-02 is a Monday.
CAL = BusinessCalendar.build("UTC", time(0, 0), [date(2026, 4, 3), date(2026, 4, 6)])
T_PLUS = lambda n: CycleRule(Cycle.T_PLUS_N, n)  # noqa: E731


@pytest.mark.parametrize(("rule", "cohort", "expected"), [
    (T_PLUS(0), date(2026, 3, 2), date(2026, 3, 2)),     # T+0 on a business day: the same day
    (T_PLUS(0), date(2026, 3, 7), date(2026, 3, 9)),     # Saturday rolls to Monday
    (T_PLUS(1), date(2026, 3, 6), date(2026, 3, 9)),     # Friday T+1: Monday
    (T_PLUS(1), date(2026, 4, 2), date(2026, 4, 7)),     # Thursday before Easter: over Fri, weekend, Mon
    (T_PLUS(3), date(2026, 4, 1), date(2026, 4, 8)),     # Wed + 3 business days, two holidays in between
    (T_PLUS(3), date(2026, 3, 7), date(2026, 3, 12)),    # a weekend cohort counts from Monday
    (CycleRule(Cycle.WEEKLY, weekday=0), date(2026, 3, 2), date(2026, 3, 9)),    # Monday -> next Monday
    (CycleRule(Cycle.WEEKLY, weekday=0), date(2026, 3, 8), date(2026, 3, 9)),    # Sunday -> next day
    (CycleRule(Cycle.WEEKLY, weekday=4), date(2026, 3, 30), date(2026, 4, 7)),   # Good Friday -> Tue
    (CycleRule(Cycle.WEEKLY, weekday=5), date(2026, 3, 2), date(2026, 3, 9)),    # a Saturday rolls on
    (CycleRule(Cycle.MONTHLY, day_of_month=1), date(2026, 3, 2), date(2026, 4, 1)),
    (CycleRule(Cycle.MONTHLY, day_of_month=31), date(2026, 2, 10), date(2026, 3, 2)),  # Feb 28 is a Sat
    (CycleRule(Cycle.MONTHLY, day_of_month=6), date(2026, 3, 20), date(2026, 4, 7)),  # Easter Monday
    (CycleRule(Cycle.MONTHLY, day_of_month=15), date(2026, 12, 20), date(2027, 1, 15)),
])
def test_settle_dates(rule: CycleRule, cohort: date, expected: date) -> None:
    assert settle_date(rule.check(), CAL, cohort) == expected


RULES = st.one_of(
    st.integers(0, 30).map(T_PLUS),
    st.integers(0, 6).map(lambda d: CycleRule(Cycle.WEEKLY, weekday=d)),
    st.integers(1, 31).map(lambda d: CycleRule(Cycle.MONTHLY, day_of_month=d)),
)
HOLIDAYS = st.frozensets(st.dates(date(2026, 1, 1), date(2027, 6, 30)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(rule=RULES, cohort=st.dates(date(2026, 1, 1), date(2026, 12, 31)), holidays=HOLIDAYS)
def test_settle_date_is_a_business_day_never_before_the_cohort(rule: CycleRule, cohort: date,
                                                                holidays: frozenset[date]) -> None:
    calendar = BusinessCalendar(holidays=holidays)
    day = settle_date(rule, calendar, cohort)
    assert calendar.is_business_day(day)
    assert day >= cohort
    if rule.cycle is not Cycle.T_PLUS_N:
        assert day > cohort  # weekly and monthly settle strictly later
    later = settle_date(rule, calendar, cohort + timedelta(days=1))
    assert later >= day  # a later cohort never settles earlier


def test_bad_cycles_are_refused() -> None:
    for rule, param in ((T_PLUS(31), "offset_days"), (CycleRule(Cycle.WEEKLY), "weekday"),
                        (CycleRule(Cycle.WEEKLY, weekday=7), "weekday"),
                        (CycleRule(Cycle.MONTHLY, day_of_month=0), "day_of_month")):
        with pytest.raises(InvalidRequest) as error:
            rule.check()
        assert error.value.param == param
    for rate in (Decimal("1"), Decimal("-0.1"), Decimal("NaN"), Decimal("0.1234567")):
        with pytest.raises(InvalidRequest):
            check_reserve_rate(rate)


@settings(max_examples=60, deadline=None)
@given(amount=st.integers(-10**15, 10**15), rate=st.decimals(0, Decimal("0.999999"), places=6),
       frozen=st.booleans())
def test_split_parts_sum_and_reserve_rounds_down(amount: int, rate: Decimal, frozen: bool) -> None:
    split = split_settlement(amount, reserve_rate=rate, frozen=frozen)
    assert split.reserve + split.frozen + split.available == amount
    if amount > 0:
        assert 0 <= split.reserve <= Fraction(rate) * amount < split.reserve + 1
        assert (split.available == 0) if frozen else (split.frozen == 0)
    else:
        assert split.reserve == split.frozen == 0


def test_split_examples() -> None:
    assert split_settlement(10_005, reserve_rate=Decimal("0.1"), frozen=False) == Split(1000, 0, 9005)
    assert split_settlement(10_005, reserve_rate=Decimal("0.1"), frozen=True) == Split(1000, 9005, 0)
    assert split_settlement(-300, reserve_rate=Decimal("0.1"), frozen=True) == Split(0, 0, -300)


def test_conversion_rounds_half_even_across_exponents() -> None:
    assert convert(10_001, Fraction("7.12345"), from_currency="USD", to_currency="CNY") == 71_242
    assert convert(-10_001, Fraction("7.12345"), from_currency="USD", to_currency="CNY") == -71_242
    assert convert(150, Fraction("0.01"), from_currency="JPY", to_currency="USD") == 150  # 1.50 USD
    assert convert(1, Fraction("0.5"), from_currency="JPY", to_currency="KRW") == 0  # 0.5 -> even 0
    assert convert(3, Fraction("0.5"), from_currency="JPY", to_currency="KRW") == 2  # 1.5 -> even 2
    assert convert(1_000, Fraction("1.2345"), from_currency="USD", to_currency="KWD") == 12_345  # 3 decimals


def test_release_date_rolls_to_a_business_day() -> None:
    assert release_date(CAL, date(2026, 3, 2), 5) == date(2026, 3, 9)  # Saturday -> Monday
    assert release_date(CAL, date(2026, 3, 30), 4) == date(2026, 4, 7)  # Good Friday -> after Easter Monday
