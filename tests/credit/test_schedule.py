"""Repayment schedules: equal-period cases against numpy-financial, day-count cases against hand-computed ones,
APR and effective annual rate, and the invariants of every method as hypothesis properties."""

from __future__ import annotations

import calendar
import itertools
from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.core.money import Rounding, round_minor
from finloop.credit.daycount import DayCount
from finloop.credit.schedule import (
    Method,
    Pricing,
    RateBasis,
    TermUnit,
    accrued_interest,
    annualise,
    periodic_irr,
    schedule,
    schedule_json,
)

JAN_1 = date(2026, 1, 1)


def run(method: Method, rate: str, principal: int, term: int, start: date = JAN_1, **kwargs) -> object:  # type: ignore[no-untyped-def]
    return schedule(Pricing(method, Decimal(rate), **kwargs), principal=principal, currency_code="CNY", term=term,
                    start_on=start)


def oracle_irr(net: int, totals: list[int]) -> float:
    return float(npf.irr([-net, *totals]))


# ---------------------------------------------------------------------------------------------- the example


def test_flat_18_percent_over_12_months_repays_11800_at_about_31_7_apr_and_36_8_effective() -> None:
    result = run(Method.FLAT, "0.18", 1_000_000, 12)
    assert result.totals["repaid"] == 1_180_000  # 10,000 × (1 + 18%)
    assert [i.total for i in result.installments] == [98_333] * 11 + [98_337]
    assert [i.interest for i in result.installments] == [15_000] * 12
    assert [i.principal for i in result.installments] == [83_333] * 11 + [83_337]
    assert result.apr == Decimal("0.317163") and result.effective_annual_rate == Decimal("0.367582")
    monthly = oracle_irr(1_000_000, [i.total for i in result.installments])
    assert abs(float(result.apr) - 12 * monthly) < 1e-6
    assert abs(float(result.effective_annual_rate) - ((1 + monthly) ** 12 - 1)) < 1e-6
    shown = schedule_json(result)
    assert shown["totals"]["repaid"] == "11800.00" and shown["installments"][0]["total"] == "983.33"
    assert shown["installments"][-1]["total"] == "983.37" and shown["apr"] == "0.317163"


# ------------------------------------------------------------------------------------ equal periods vs numpy-financial


@pytest.mark.parametrize(("rate", "principal", "term"), [
    ("0.18", 1_000_000, 12), ("0.12", 500_000, 3), ("0.0799", 12_345_678, 24), ("0.36", 99_999, 6),
    ("0.24", 100_000_000, 36)])
def test_equal_installments_match_numpy_financial(rate: str, principal: int, term: int) -> None:
    result = run(Method.EQUAL_INSTALLMENT, rate, principal, term)
    i = float(rate) / 12
    payment = -npf.pmt(i, term, principal)
    rows = result.installments
    assert all(r.total == round(payment) for r in rows[:-1])
    for r in rows[:-1]:
        assert abs(r.interest - (-npf.ipmt(i, r.number, term, principal))) <= 1
        assert abs(r.principal - (-npf.ppmt(i, r.number, term, principal))) <= 1
    # The last installment absorbs the rounding: within a few minor units of the exact payment.
    assert abs(rows[-1].total - payment) <= term
    assert sum(r.principal for r in rows) == principal
    monthly = oracle_irr(principal, [r.total for r in rows])
    assert abs(float(result.periodic_rate) - monthly) < 1e-10
    assert abs(float(result.apr) - 12 * monthly) < 1e-6
    assert abs(result.apr - Decimal(rate)) < Decimal("0.0001")  # an annuity's APR is its nominal rate


def test_equal_principal_by_hand_and_against_numpy_financial() -> None:
    # 12,000.00 at 12% over 12 months: 1,000.00 of principal a month, interest 1% of what is still owed.
    result = run(Method.EQUAL_PRINCIPAL, "0.12", 1_200_000, 12)
    assert [r.principal for r in result.installments] == [100_000] * 12
    assert [r.interest for r in result.installments] == [12_000 - 1_000 * k for k in range(12)]
    assert result.totals["interest"] == 78_000
    assert abs(float(result.periodic_rate) - oracle_irr(1_200_000, [r.total for r in result.installments])) < 1e-10
    assert abs(result.apr - Decimal("0.12")) < Decimal("0.000001")


def test_interest_only_pays_the_principal_at_the_end() -> None:
    result = run(Method.INTEREST_ONLY, "0.12", 1_000_000, 6)
    assert [r.interest for r in result.installments] == [10_000] * 6
    assert [r.principal for r in result.installments] == [0] * 5 + [1_000_000]
    assert [r.balance for r in result.installments] == [1_000_000] * 5 + [0]
    assert result.apr == Decimal("0.120000")
    assert result.effective_annual_rate == Decimal("0.126825")  # 1.01^12 - 1


def test_a_zero_rate_schedule_has_no_interest_and_a_zero_apr() -> None:
    result = run(Method.EQUAL_PRINCIPAL, "0", 10_000, 3)
    assert [r.principal for r in result.installments] == [3_333, 3_333, 3_334]  # the last absorbs the remainder
    assert result.totals["interest"] == 0 and result.apr == 0 and result.effective_annual_rate == 0


def test_installment_fees_and_an_upfront_fee_raise_the_apr() -> None:
    plain = run(Method.EQUAL_INSTALLMENT, "0.12", 1_000_000, 12)
    charged = run(Method.EQUAL_INSTALLMENT, "0.12", 1_000_000, 12, installment_fee_rate=Decimal("0.002"),
                  upfront_fee_amount=10_000)
    assert all(r.fees == 2_000 and r.total == r.principal + r.interest + 2_000 for r in charged.installments)
    assert charged.upfront_fee == 10_000 and charged.net_disbursed == 990_000
    assert charged.totals["fees"] == 12 * 2_000 + 10_000
    monthly = oracle_irr(990_000, [r.total for r in charged.installments])
    assert abs(float(charged.periodic_rate) - monthly) < 1e-10
    assert charged.apr > plain.apr


# ---------------------------------------------------------------------------------------------- day counts by hand


def test_interest_only_by_actual_365_over_the_leap_day_and_month_ends() -> None:
    # 100,000.00 at 10% from 31 January 2028: 29, 31 and 30 days; 1,000,000 minor units of interest a year.
    result = run(Method.INTEREST_ONLY, "0.10", 10_000_000, 3, date(2028, 1, 31), day_count=DayCount.ACTUAL_365)
    rows = result.installments
    assert [r.due_on for r in rows] == [date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)]
    assert [r.days for r in rows] == [29, 31, 30]
    assert [r.interest for r in rows] == [79_452, 84_932, 82_192]  # 1,000,000 × 29/365 = 79,452.05 ...


def test_actual_actual_across_a_year_boundary() -> None:
    result = run(Method.INTEREST_ONLY, "0.10", 10_000_000, 2, date(2027, 12, 15), day_count=DayCount.ACTUAL_ACTUAL)
    first, second = result.installments
    # 17 days of 2027 over 365 and 14 days of 2028 over 366: 46,575.34 + 38,251.37 = 84,826.71.
    assert (first.due_on, first.interest) == (date(2028, 1, 15), 84_827)
    # 15 January to 15 February 2028: 31 days over 366 = 84,699.45.
    assert (second.due_on, second.interest) == (date(2028, 2, 15), 84_699)


@pytest.mark.parametrize(("convention", "interests", "days"), [
    (DayCount.THIRTY_360, [80_556, 83_333, 83_333], [29, 30, 30]),  # 1,000,000 × 29/360 = 80,555.56
    (DayCount.THIRTY_E_360, [80_556, 86_111, 83_333], [29, 31, 30]),  # 29 Feb → 31 Mar is 31 days in 30E/360
])
def test_thirty_360_interest_by_hand(convention: DayCount, interests: list[int], days: list[int]) -> None:
    result = run(Method.INTEREST_ONLY, "0.10", 10_000_000, 3, date(2028, 1, 31), day_count=convention)
    assert [r.interest for r in result.installments] == interests
    assert [r.days for r in result.installments] == days


def test_an_annuity_with_a_day_count_follows_the_documented_convention() -> None:
    # 1,200.00 at 12%, 3 months, actual/365, from 31 January 2026. The installment comes from the nominal
    # monthly rate 1%: 120,000 × 0.01 / (1 - 1.01^-3) = 40,802.65 → 40,803. Interest by the day count:
    # 120,000 × 0.12 × 28/365 = 1,104.66 → 1,105; principal 39,698, 80,302 left;
    # 80,302 × 0.12 × 31/365 = 818.43 → 818; principal 39,985, 40,317 left;
    # 40,317 × 0.12 × 30/365 = 397.65 → 398; the last installment repays the 40,317 left.
    result = run(Method.EQUAL_INSTALLMENT, "0.12", 120_000, 3, date(2026, 1, 31), day_count=DayCount.ACTUAL_365)
    assert [(r.principal, r.interest, r.total) for r in result.installments] == [
        (39_698, 1_105, 40_803), (39_985, 818, 40_803), (40_317, 398, 40_715)]


def test_a_cash_loan_with_a_daily_rate_is_one_bullet() -> None:
    # 1,000.00 at 0.05% a day for 30 days: 15.00 of interest, one repayment of 1,015.00 on day 30.
    pricing = Pricing(Method.INTEREST_ONLY, Decimal("0.0005"), RateBasis.DAILY, term_unit=TermUnit.DAY)
    result = schedule(pricing, principal=100_000, currency_code="CNY", term=30, start_on=date(2026, 12, 20))
    [only] = result.installments
    assert (only.due_on, only.days, only.interest, only.total) == (date(2027, 1, 19), 30, 1_500, 101_500)
    assert pricing.day_count is DayCount.ACTUAL_365
    assert result.periodic_rate == Decimal("0.015") and result.apr == Decimal("0.182500")  # 1.5% × 365/30
    assert abs(float(result.effective_annual_rate) - (1.015 ** (365 / 30) - 1)) < 1e-6


def test_revolving_accrues_daily_interest_and_repays_at_the_end() -> None:
    result = run(Method.REVOLVING, "0.1825", 1_000_000, 2, date(2026, 1, 31))
    assert [r.interest for r in result.installments] == [14_000, 15_500]  # 0.05% a day × 28, then × 31 days
    assert [r.principal for r in result.installments] == [0, 1_000_000]
    pricing = Pricing(Method.REVOLVING, Decimal("0.0005"), RateBasis.DAILY)
    assert accrued_interest(1_000_000, pricing, date(2026, 3, 1), date(2026, 3, 11)) == 5_000  # repaid after 10 days


def test_flat_with_a_day_count_charges_the_year_fraction_to_maturity() -> None:
    result = run(Method.FLAT, "0.18", 1_000_000, 12, date(2028, 1, 1), day_count=DayCount.ACTUAL_365)
    assert result.totals["interest"] == round_minor(Fraction(1_000_000 * 18 * 366, 100 * 365), Rounding.HALF_UP)


# ---------------------------------------------------------------------------------------------- rates


def test_periodic_irr_and_annualising() -> None:
    assert periodic_irr(100, [100]) == 0
    assert periodic_irr(100, [110]) == Decimal("0.1")
    assert annualise(Decimal("0.01"), Fraction(12)) == (Decimal("0.120000"), Decimal("0.126825"))
    with pytest.raises(ValueError):
        periodic_irr(100, [50])


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("kwargs", "code", "param"), [
    ({"method": "balloon"}, "invalid_method", "method"),
    ({"rate": Decimal("-0.01")}, "invalid_rate", "rate"),
    ({"rate": Decimal("10.5")}, "invalid_rate", "rate"),
    ({"rate": 0.18}, "invalid_rate", "rate"),
    ({"rate": Decimal("NaN")}, "invalid_rate", "rate"),
    ({"rate_basis": RateBasis.DAILY, "rate": Decimal("0.05")}, "invalid_rate", "rate"),
    ({"day_count": "act/360"}, "invalid_day_count", "day_count"),
    ({"rounding": "banker"}, "invalid_rounding", "rounding"),
    ({"upfront_fee_rate": Decimal(1)}, "invalid_rate", "upfront_fee_rate"),
    ({"installment_fee_amount": -1}, "invalid_amount", "installment_fee_amount"),
    ({"term_unit": TermUnit.DAY}, "method_not_allowed", "method"),
])
def test_bad_pricing_is_refused_naming_the_field(kwargs: dict, code: str, param: str) -> None:
    values = {"method": Method.EQUAL_INSTALLMENT, "rate": Decimal("0.18"), **kwargs}
    with pytest.raises(InvalidRequest) as caught:
        Pricing(**values)
    assert (caught.value.code, caught.value.param) == (code, param)


@pytest.mark.parametrize(("principal", "term", "start", "code", "param"), [
    (0, 12, JAN_1, "invalid_amount", "principal"), (10**16, 12, JAN_1, "invalid_amount", "principal"),
    (True, 12, JAN_1, "invalid_amount", "principal"), (100, 0, JAN_1, "invalid_term", "term"),
    (100, 361, JAN_1, "invalid_term", "term"), (100, 12, date(1999, 12, 31), "invalid_start_date", "start_date"),
    (100, 12, date(9999, 1, 1), "invalid_start_date", "start_date")])
def test_bad_schedule_input_is_refused(principal: int, term: int, start: date, code: str, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        run(Method.EQUAL_INSTALLMENT, "0.1", principal, term, start)
    assert (caught.value.code, caught.value.param) == (code, param)


def test_an_upfront_fee_cannot_take_the_whole_principal() -> None:
    with pytest.raises(InvalidRequest) as caught:
        run(Method.FLAT, "0.1", 1_000, 3, upfront_fee_amount=1_000)
    assert caught.value.code == "fee_exceeds_principal"


# ---------------------------------------------------------------------------------------------- properties

methods = st.sampled_from(list(Method))
day_counts = st.sampled_from([None, *DayCount])
roundings = st.sampled_from(list(Rounding))
rates = st.decimals(min_value=0, max_value=3, places=4, allow_nan=False, allow_infinity=False)
starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 12, 31))


@settings(max_examples=200, deadline=None)
@given(methods, rates, st.integers(1, 10**12), st.integers(1, 48), starts, day_counts, roundings)
def test_every_schedule_repays_exactly_the_principal_in_non_negative_parts(
        method: Method, rate: Decimal, principal: int, term: int, start: date, day_count: DayCount | None,
        rounding: Rounding) -> None:
    result = schedule(Pricing(method, rate, day_count=day_count, rounding=rounding), principal=principal,
                      currency_code="CNY", term=term, start_on=start)
    rows = result.installments
    assert len(rows) == term
    assert sum(r.principal for r in rows) == principal
    assert all(r.principal >= 0 and r.interest >= 0 and r.fees >= 0 for r in rows)
    assert all(r.total == r.principal + r.interest + r.fees for r in rows)
    assert rows[-1].balance == 0 and rows[-1].principal == principal - sum(r.principal for r in rows[:-1])
    balances = [principal - sum(r.principal for r in rows[:k + 1]) for k in range(term)]
    assert [r.balance for r in rows] == balances
    dues = [start, *(r.due_on for r in rows)]
    assert all(a < b for a, b in itertools.pairwise(dues))
    assert all(r.due_on.day == min(start.day, calendar.monthrange(r.due_on.year, r.due_on.month)[1]) for r in rows)
    assert result.apr >= 0 and result.effective_annual_rate >= result.apr - Decimal("0.000001")


@settings(max_examples=100, deadline=None)
@given(methods, st.integers(1, 10**12), st.integers(1, 48), starts, day_counts)
def test_a_zero_rate_schedule_has_a_zero_apr(method: Method, principal: int, term: int, start: date,
                                             day_count: DayCount | None) -> None:
    result = schedule(Pricing(method, Decimal(0), day_count=day_count), principal=principal, currency_code="CNY",
                      term=term, start_on=start)
    assert result.totals["interest"] == 0 and result.apr == 0 and result.effective_annual_rate == 0


@settings(max_examples=150, deadline=None)
@given(rates, st.integers(1, 10**12), st.integers(1, 60), roundings)
def test_flat_totals_are_principal_times_one_plus_rate_times_years(rate: Decimal, principal: int, term: int,
                                                                   rounding: Rounding) -> None:
    result = schedule(Pricing(Method.FLAT, rate, rounding=rounding), principal=principal, currency_code="CNY",
                      term=term, start_on=JAN_1)
    exact = principal * (1 + Fraction(rate) * Fraction(term, 12))
    assert result.totals["repaid"] == principal + round_minor(exact - principal, rounding)
    assert abs(result.totals["repaid"] - exact) < 1


@settings(max_examples=40, deadline=None)
@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.6"), places=4), st.integers(10_000, 10**10),
       st.integers(2, 36), st.sampled_from([Method.EQUAL_INSTALLMENT, Method.EQUAL_PRINCIPAL, Method.FLAT]))
def test_the_periodic_rate_matches_numpy_financials_irr(rate: Decimal, principal: int, term: int,
                                                        method: Method) -> None:
    result = run(method, str(rate), principal, term)
    assert abs(float(result.periodic_rate) - oracle_irr(principal, [r.total for r in result.installments])) < 1e-9
