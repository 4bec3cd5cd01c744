"""Pure rules: income rounding and carry, the seven-day yield, the accrual window, the order machine."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import Conflict, InvalidRequest
from finloop.wealth.domain import (
    accrual_window,
    check_income_per_10k,
    daily_income,
    resolve_annualised,
    seven_day_annualised,
)
from finloop.wealth.state import OrderStatus, check_transition

rates = st.decimals(min_value=Decimal(0), max_value=Decimal(5), places=4)
holdings = st.integers(min_value=0, max_value=10**13)


@settings(max_examples=60, deadline=None)
@given(holdings, rates, st.fractions(min_value=0, max_value=Fraction(999, 1000)))
def test_income_is_never_negative_and_rounds_down(basis: int, rate: Decimal, carry: Fraction) -> None:
    income = daily_income(basis, rate, carry)
    assert income.amount >= 0
    assert 0 <= income.carry < 1
    assert income.amount + income.carry == Fraction(basis) * Fraction(rate) / 10_000 + carry


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(holdings, rates), min_size=1, max_size=40))
def test_carried_remainders_keep_the_total_within_one_minor_unit(days: list[tuple[int, Decimal]]) -> None:
    carry = Fraction(0)
    posted = 0
    exact_sum = Fraction(0)
    for basis, rate in days:
        income = daily_income(basis, rate, carry)
        posted += income.amount
        carry = income.carry
        exact_sum += Fraction(basis) * Fraction(rate) / 10_000
    assert 0 <= exact_sum - posted < 1


def test_without_carry_small_holdings_would_earn_nothing_but_carry_pays_eventually() -> None:
    carry, posted = Fraction(0), 0
    for _ in range(10):  # 1,000 units at 0.6523 per 10,000: 0.06523 a day
        income = daily_income(1_000, Decimal("0.6523"), carry)
        posted, carry = posted + income.amount, income.carry
    assert posted == 0 and carry == Fraction(6523, 10_000)
    for _ in range(6):
        income = daily_income(1_000, Decimal("0.6523"), carry)
        posted, carry = posted + income.amount, income.carry
    assert posted == 1  # 16 days * 0.06523 = 1.04


def test_seven_day_yield_formula() -> None:
    assert seven_day_annualised([Decimal("0.6523")] * 7) == Fraction(65230, 10**9) * 365
    week = [Decimal(x) for x in ("0.60", "0.61", "0.62", "0.63", "0.64", "0.65", "0.66")]
    # Only the last seven count; an older day changes nothing.
    assert seven_day_annualised([Decimal("9"), *week]) == seven_day_annualised(week)
    assert seven_day_annualised(week) == Fraction(sum(Fraction(x) for x in week)) / 10_000 * 365 / 7
    assert resolve_annualised(None, [Decimal("0.6523")] * 7) == Decimal("0.023809")
    assert resolve_annualised(Decimal("0.0238"), [Decimal("0.6523")] * 7) == Decimal("0.0238")
    with pytest.raises(InvalidRequest) as refused:
        resolve_annualised(Decimal("0.0300"), [Decimal("0.6523")] * 7)
    assert refused.value.code == "annualised_yield_inconsistent" and refused.value.param == "annualised_7d"


@settings(max_examples=60, deadline=None)
@given(st.lists(rates, min_size=1, max_size=10))
def test_computed_yield_is_accepted_back_and_a_wrong_one_refused(days: list[Decimal]) -> None:
    computed = resolve_annualised(None, days)
    assert resolve_annualised(computed, days) == computed
    assert abs(Fraction(computed) - seven_day_annualised(days)) <= Fraction(1, 2_000_000)
    with pytest.raises(InvalidRequest):
        resolve_annualised(computed + Decimal("0.0001"), days)


@pytest.mark.parametrize("value", [Decimal("-0.1"), Decimal("101"), Decimal("0.1234567"), Decimal("NaN")])
def test_bad_income_is_refused(value: Decimal) -> None:
    with pytest.raises(InvalidRequest):
        check_income_per_10k(value)


def test_accrual_window_covers_weekends_and_holidays() -> None:
    calendar = BusinessCalendar.build("UTC", BusinessCalendar().cutoff, holidays=[date(2026, 3, 10)])
    assert accrual_window(calendar, date(2026, 3, 3)) == [date(2026, 3, 3)]
    assert accrual_window(calendar, date(2026, 3, 9)) == [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]
    assert accrual_window(calendar, date(2026, 3, 11)) == [date(2026, 3, 10), date(2026, 3, 11)]
    with pytest.raises(InvalidRequest) as refused:
        accrual_window(calendar, date(2026, 3, 7))
    assert refused.value.code == "not_a_business_day"


def test_order_transitions() -> None:
    assert check_transition("pending", OrderStatus.COMPLETED) is OrderStatus.COMPLETED
    with pytest.raises(Conflict):
        check_transition("completed", OrderStatus.PENDING)
    with pytest.raises(Conflict):
        check_transition("completed", OrderStatus.COMPLETED)
