"""Servicing rules as pure code: the accrual of a period sums exactly to its interest, an allocation follows its
order and never pays more than is owed, buckets, penalty interest, provisioning (the SQL arithmetic agrees with
Python to the minor unit) and rescheduling after a prepayment."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.credit.daycount import DayCount
from finloop.credit.schedule import Method, Pricing, RateBasis, Shorten, reschedule, schedule
from finloop.credit.servicing.domain import (
    PPM,
    BilledInstallment,
    Bucket,
    ProvisionMethod,
    accrued_through,
    allocate,
    bucket_for,
    check_provision_policy,
    daily_penalty,
    day_number,
    day_of,
    days_past_due,
    loss_rate_ppm,
    provision_for,
)


@given(st.integers(0, 10**12), st.integers(0, 40_000), st.integers(1, 400))
def test_the_days_of_a_period_accrue_exactly_its_interest(interest: int, start: int, length: int) -> None:
    due = start + length
    daily = [accrued_through(interest, start, due, day) - accrued_through(interest, start, due, day - 1)
             for day in range(start, due)]
    assert sum(daily) == interest
    assert all(amount >= 0 for amount in daily)
    # Even days apart by at most one minor unit: the truncation never piles up.
    assert max(daily) - min(daily) <= 1
    assert accrued_through(interest, start, due, start - 1) == 0
    assert accrued_through(interest, start, due, due + 5) == interest


def test_day_numbers_round_trip() -> None:
    assert day_number(date(1970, 1, 1)) == 0
    assert day_of(day_number(date(2026, 3, 31))) == date(2026, 3, 31)


@pytest.mark.parametrize(("dpd", "bucket"), [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"),
                                             (61, "M3"), (90, "M3"), (91, "M4"), (400, "M4")])
def test_buckets(dpd: int, bucket: str) -> None:
    assert bucket_for(dpd) == Bucket(bucket)


def test_days_past_due_count_from_the_oldest_unpaid_due_day() -> None:
    assert days_past_due(100, None) == 0
    assert days_past_due(100, 100) == 0
    assert days_past_due(100, 90) == 10


owed_rows = st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**5)),
                     min_size=0, max_size=6)


@given(st.integers(0, 3 * 10**7), st.permutations(["penalty", "fees", "interest", "principal"]),
       st.integers(0, 10**6), owed_rows)
def test_an_allocation_follows_its_order_and_never_pays_more_than_is_owed(
        amount: int, order: list[str], penalty: int, rows: list[tuple[int, int, int]]) -> None:
    installments = [BilledInstallment(n + 1, 1000 + 30 * n, p, i, f) for n, (p, i, f) in enumerate(rows)]
    owed = {"penalty": penalty, "principal": sum(r[0] for r in rows), "interest": sum(r[1] for r in rows),
            "fees": sum(r[2] for r in rows)}
    result = allocate(amount, order, penalty, installments)
    paid = {"penalty": result.penalty, "fees": result.fees, "interest": result.interest,
            "principal": result.principal}
    assert result.total == min(amount, sum(owed.values()))
    for name in paid:
        assert 0 <= paid[name] <= owed[name]
    # A component is paid only once every component before it in the order is paid in full.
    for index, name in enumerate(order):
        if paid[name]:
            assert all(paid[before] == owed[before] for before in order[:index])
    # Per installment, what was paid sums to the components' totals and never exceeds what it owed.
    for component in ("principal", "interest", "fees"):
        assert sum(per[component] for per in result.installments.values()) == paid[component]
    for installment in installments:
        assert min(installment.principal, installment.interest, installment.fees) >= 0


def test_the_oldest_installment_is_paid_first_within_a_component() -> None:
    rows = [BilledInstallment(2, 2000, 100, 10, 0), BilledInstallment(1, 1000, 100, 10, 0)]
    result = allocate(115, ["penalty", "fees", "interest", "principal"], 0, rows)
    assert result.interest == 20 and result.principal == 95
    assert result.installments == {1: {"principal": 95, "interest": 10, "fees": 0},
                                   2: {"principal": 0, "interest": 10, "fees": 0}}


def test_penalty_interest_is_daily_and_rounded_half_up() -> None:
    # 100,000.00 overdue at 27% a year: 2,700,000 / 365 = 73.97 a day -> 7,397 minor units.
    assert daily_penalty(10_000_000, Decimal("0.27"), "annual") == 7397
    # A daily rate applies as it is: 0.075% of 1,000.00 is 0.75.
    assert daily_penalty(100_000, Decimal("0.00075"), "daily") == 75
    assert daily_penalty(0, Decimal("0.27"), "annual") == 0


@given(st.integers(0, 10**15), st.sampled_from(list(Bucket)), st.integers(0, PPM),
       st.sampled_from(["bucket", "expected_loss"]))
def test_the_sql_allowance_arithmetic_equals_python(exposure: int, bucket: Bucket, pd_ppm: int, method: str) -> None:
    policy = check_provision_policy({"method": method})
    rate = loss_rate_ppm(policy, bucket.value, pd_ppm)
    # The end of day's integer expression, split so that it cannot overflow 64 bits.
    sql = (exposure // PPM) * rate + ((exposure % PPM) * rate + PPM // 2) // PPM
    assert provision_for(policy, exposure, bucket.value, pd_ppm) == sql
    assert sql <= exposure


def test_provision_policies_are_checked() -> None:
    assert check_provision_policy({}).method is ProvisionMethod.BUCKET
    expected = check_provision_policy({"method": "expected_loss", "lgd": "0.45"})
    assert expected.lgd_ppm == 450_000 and loss_rate_ppm(expected, "M0", 40_000) == 18_000
    for bad, param in [({"method": "magic"}, "method"),
                       ({"bucket_rates": {"M0": "0.5", "M1": "0.1", "M2": "0.3", "M3": "0.5", "M4": "1"}},
                        "bucket_rates"),
                       ({"bucket_rates": {"M0": "0.01"}}, "bucket_rates"),
                       ({"bucket_rates": {"M0": "1.5", "M1": "1.5", "M2": "1.5", "M3": "1.5", "M4": "1.5"}},
                        "bucket_rates.M0"),
                       ({"method": "expected_loss", "lgd": "0.1234567"}, "lgd")]:
        with pytest.raises(InvalidRequest) as error:
            check_provision_policy(bad)
        assert error.value.param == param


ANNUITY = Pricing(Method.EQUAL_INSTALLMENT, Decimal("0.18"))
DUES = [date(2026, m, 2) for m in range(4, 13)]


@given(st.integers(1_000, 10**9), st.sampled_from([Method.EQUAL_INSTALLMENT, Method.EQUAL_PRINCIPAL, Method.FLAT,
                                                   Method.INTEREST_ONLY]))
def test_a_reschedule_repays_exactly_the_principal_left(principal: int, method: Method) -> None:
    rows = reschedule(Pricing(method, Decimal("0.18")), principal=principal, start_on=date(2026, 3, 20),
                      due_dates=DUES, fee=0, shorten=Shorten.REDUCE_INSTALLMENT)
    assert len(rows) == len(DUES)
    assert sum(r.principal for r in rows) == principal and rows[-1].balance == 0
    assert all(r.principal >= 0 and r.interest >= 0 for r in rows)


def test_reducing_the_term_keeps_the_installment_and_uses_fewer_due_dates() -> None:
    original = schedule(ANNUITY, principal=1_000_000, currency_code="CNY", term=10, start_on=date(2026, 3, 2))
    installment = original.installments[0].total
    rows = reschedule(ANNUITY, principal=500_000, start_on=date(2026, 3, 20), due_dates=DUES, fee=0,
                      shorten=Shorten.REDUCE_TERM, keep=installment)
    assert len(rows) < len(DUES) and sum(r.principal for r in rows) == 500_000
    assert all(r.total == installment for r in rows[:-1]) and rows[-1].total <= installment
    lower = reschedule(ANNUITY, principal=500_000, start_on=date(2026, 3, 20), due_dates=DUES, fee=0,
                       shorten=Shorten.REDUCE_INSTALLMENT)
    assert len(lower) == len(DUES) and lower[1].total < installment
    # The first period is broken (from the prepayment's day): its interest runs by actual days.
    assert lower[0].interest == round(500_000 * Decimal("0.18") * 13 / 365)


def test_an_interest_only_loan_cannot_be_shortened() -> None:
    pricing = Pricing(Method.INTEREST_ONLY, Decimal("0.0005"), RateBasis.DAILY, DayCount.ACTUAL_365)
    with pytest.raises(InvalidRequest) as error:
        reschedule(pricing, principal=1000, start_on=date(2026, 3, 20), due_dates=DUES[:1], fee=0,
                   shorten=Shorten.REDUCE_TERM, keep=1000)
    assert error.value.code == "reduce_term_not_applicable"
