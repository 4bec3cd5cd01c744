"""Portfolio arithmetic without a database: the worked example to the minor unit (bullet and amortising funding),
named roundings, the operating cost policy, principal-days, and invariants under hypothesis: cost allocations sum
to what was allocated, roll-rate rows sum to their totals and their shares to exactly one, vintage curves never
fall as months on book grow."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.core.money import Rounding
from finloop.credit import funding
from finloop.credit.portfolio import domain
from finloop.credit.portfolio.domain import (
    PPM,
    ROLL_COLUMNS,
    ROLL_ROWS,
    CohortLoan,
    OperatingCostMethod,
    Snapshot,
    Transition,
    VintageBasis,
)


def test_the_worked_example_is_reproduced_exactly_with_bullet_funding() -> None:
    found = domain.unit_economics()  # CNY 10,000.00 at 18% flat for 12 months
    bullet = found.bullet
    assert (bullet.principal_amount, bullet.interest_income, bullet.cost_of_funds, bullet.provision,
            bullet.operating_cost, bullet.net_profit) == (1_000_000, 180_000, 60_000, 20_000, 10_000, 90_000)
    assert bullet.margin_rate == "0.0900" and bullet.net_to_income_rate == "0.5000"


def test_amortising_funding_costs_what_the_falling_balance_costs() -> None:
    found = domain.unit_economics()
    # Twelve equal repayments: the balances average 13/24 of the principal, so 600 × 13/24 = 325.
    assert found.amortising.cost_of_funds == 32_500 and found.amortising.net_profit == 117_500
    assert found.amortising_balances[0] == 1_000_000 and len(found.amortising_balances) == 12
    assert found.to_json()["cost_of_funds_saved"] == 27_500
    assert found.amortising.interest_income == found.bullet.interest_income


def test_roundings_are_named_and_agree_with_the_rest_of_credit() -> None:
    assert domain.COST_OF_FUNDS_ROUNDING is funding.ACCRUAL_ROUNDING
    assert domain.PROVISION_ROUNDING is Rounding.HALF_UP and domain.INTEREST_ROUNDING is Rounding.HALF_EVEN
    # 1 minor unit × 0.5: half-up provision, half-even interest.
    assert domain.unit_economics(principal_amount=25, provision_rate="0.02", annual_rate="0.02",
                                 term_months=12).bullet.provision == 1
    assert domain.unit_economics(principal_amount=25, annual_rate="0.02", term_months=12).bullet.interest_income == 0


@pytest.mark.parametrize(("field", "value", "code"), [
    ("principal_amount", 0, "invalid_amount"), ("term_months", 0, "invalid_term"),
    ("funding_rate", "abc", "invalid_rate"), ("provision_rate", "1.5", "invalid_rate"),
    ("currency_code", "XXX", "unknown_currency")])
def test_bad_unit_economics_input_is_refused(field: str, value: object, code: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        domain.unit_economics(**{field: value})  # type: ignore[arg-type]
    assert error.value.code == code


def test_operating_cost_by_rate_and_per_loan_month() -> None:
    rate = domain.check_operating_cost_policy({})
    assert rate.method is OperatingCostMethod.PRINCIPAL_RATE and rate.annual_rate == Decimal("0.01")
    assert domain.operating_cost(rate, principal_amount=1_000_000, currency_code="CNY", start=date(2026, 1, 15),
                                 end=date(2027, 1, 15)) == 10_000  # the worked example's 100.00 over a year
    monthly = domain.check_operating_cost_policy({"method": "per_loan_month", "amounts": {"CNY": 800}})
    assert domain.operating_cost(monthly, principal_amount=1, currency_code="CNY", start=date(2026, 1, 15),
                                 end=date(2027, 1, 15)) == 12 * 800
    assert domain.operating_cost(monthly, principal_amount=1, currency_code="USD", start=date(2026, 1, 15),
                                 end=date(2027, 1, 15)) == 0
    assert domain.month_ends_in(date(2026, 1, 31), date(2026, 2, 1)) == 1
    assert domain.month_ends_in(date(2026, 1, 1), date(2026, 1, 31)) == 0


def test_principal_days_hold_each_known_balance_until_the_next() -> None:
    assert domain.principal_days(principal_amount=100, disbursed_on=date(2026, 1, 20), end=date(2026, 2, 10),
                                 month_ends=[(date(2026, 1, 31), 40), (date(2026, 2, 28), 0)]) == 100 * 12 + 40 * 9
    assert domain.principal_days(principal_amount=100, disbursed_on=date(2026, 1, 20), end=date(2026, 1, 20),
                                 month_ends=[]) == 0


def test_cost_with_nowhere_to_go_stays_unallocated() -> None:
    assert domain.allocate_cost(500, {"a": 0}) == domain.CostAllocation({"a": 0}, 500)
    assert domain.allocate_cost(0, {"a": 3}) == domain.CostAllocation({"a": 0}, 0)


@settings(max_examples=150, deadline=None)
@given(total=st.integers(0, 10**12), weights=st.dictionaries(st.text("abcdef", min_size=1, max_size=3),
                                                             st.integers(0, 10**15), max_size=12))
def test_allocated_cost_sums_to_the_whole(total: int, weights: dict[str, int]) -> None:
    found = domain.allocate_cost(total, weights)
    assert sum(found.parts.values()) + found.unallocated == total
    assert all(part >= 0 for part in found.parts.values()) and set(found.parts) == set(weights)
    assert all(found.parts[k] == 0 for k, w in weights.items() if w == 0)


transitions = st.lists(st.builds(Transition, st.sampled_from(["CNY", "USD"]), st.sampled_from(ROLL_ROWS),
                                 st.sampled_from(ROLL_COLUMNS), st.integers(0, 10**12)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(transitions)
def test_roll_rate_rows_sum_to_their_totals_and_shares_to_one(rolls: list[Transition]) -> None:
    matrices = domain.roll_matrices(rolls)
    assert [m.currency for m in matrices] == sorted({t.currency for t in rolls})
    for matrix in matrices:
        assert [r.bucket for r in matrix.rows] == list(ROLL_ROWS)
        for row in matrix.rows:
            mine = [t for t in rolls if t.currency == matrix.currency and t.source == row.bucket]
            assert row.loans == len(mine) == sum(row.counts.values())
            assert row.principal == sum(t.principal for t in mine) == sum(row.principals.values())
            if row.loans:
                assert row.count_shares_ppm is not None and sum(row.count_shares_ppm.values()) == PPM
                assert sum(Decimal(domain.ppm_text(v)) for v in row.count_shares_ppm.values()) == 1
            else:
                assert row.count_shares_ppm is None
            if row.principal:
                assert row.principal_shares_ppm is not None and sum(row.principal_shares_ppm.values()) == PPM


@st.composite
def books(draw: st.DrawFn) -> tuple[list[CohortLoan], list[Snapshot]]:
    count = draw(st.integers(1, 12))
    cohort = [CohortLoan(f"l{n}", draw(st.sampled_from(["CNY", "USD"])), draw(st.sampled_from(
        ["2026-01", "2026-02", "2026-03"])), draw(st.integers(1, 10**9))) for n in range(count)]
    snapshots = []
    for loan in cohort:
        worst = 0
        for mob in range(draw(st.integers(0, 6))):
            worst = max(worst, draw(st.integers(0, 120)))
            snapshots.append(Snapshot(loan.loan_id, mob, worst))
    return cohort, snapshots


@settings(max_examples=150, deadline=None)
@given(books(), st.integers(1, 90), st.sampled_from(list(VintageBasis)))
def test_vintage_curves_never_fall_as_months_on_book_grow(
        drawn: tuple[list[CohortLoan], list[Snapshot]], threshold: int, basis: VintageBasis) -> None:
    cohort, snapshots = drawn
    curves = domain.vintage_curves(cohort, snapshots, threshold_dpd=threshold, basis=basis)
    assert sum(c.loans for c in curves) == len(cohort)
    for curve in curves:
        mobs = [p.months_on_book for p in curve.points]
        assert mobs == sorted(set(mobs))
        bad = [p.loans_bad for p in curve.points]
        rates = [Decimal(p.rate or "0") for p in curve.points]
        assert bad == sorted(bad) and rates == sorted(rates)
        assert all(0 <= p.loans_bad <= curve.loans and 0 <= p.principal_bad <= curve.principal_amount
                   for p in curve.points)


def test_months_are_checked_and_counted() -> None:
    assert domain.next_month("2026-12") == "2027-01" and domain.months_between("2025-11", "2026-02") == 3
    assert domain.month_end("2028-02") == date(2028, 2, 29)
    assert domain.month_start("2026-03") - timedelta(days=1) == domain.month_end("2026-02")
    with pytest.raises(InvalidRequest) as error:
        domain.parse_month("2026-13", "month_from")
    assert (error.value.code, error.value.param) == ("invalid_month", "month_from")
