"""The pure fee rules: bounds, monotonicity, the rounding rule, bands, and refund fee allocation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.clearing.domain import (
    FeeKind,
    FeeRule,
    RefundFeePolicy,
    Tier,
    compute_fee,
    cumulative_fee_returned,
    refund_fee_returned,
    validate_rule,
)
from finloop.core.errors import InvalidRequest

rates = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("0.5"), places=8)
money = st.integers(min_value=0, max_value=10**9)
amounts = st.integers(min_value=1, max_value=10**12)


@st.composite
def bounds(draw: st.DrawFn) -> tuple[int | None, int | None]:
    low = draw(st.none() | money)
    high = draw(st.none() | money)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return low, high


@st.composite
def tiers(draw: st.DrawFn) -> tuple[Tier, ...]:
    edges = sorted(set(draw(st.lists(st.integers(min_value=0, max_value=10**12), min_size=0, max_size=4))))
    bands = [*edges, None]
    return tuple(Tier(up_to=edge, rate=draw(rates | st.just(Decimal(0))), fixed_amount=draw(money))
                 for edge in bands)


@st.composite
def percentage_rules(draw: st.DrawFn) -> FeeRule:
    kind = draw(st.sampled_from([FeeKind.PERCENTAGE, FeeKind.FIXED, FeeKind.PERCENTAGE_PLUS_FIXED]))
    rate = Decimal(0) if kind is FeeKind.FIXED else draw(rates)
    fixed = 0 if kind is FeeKind.PERCENTAGE else draw(st.integers(min_value=1, max_value=10**9))
    low, high = draw(bounds())
    rule = FeeRule(kind=kind, rate=rate, fixed_amount=fixed, minimum_amount=low, maximum_amount=high)
    validate_rule(rule)
    return rule


@st.composite
def any_rules(draw: st.DrawFn) -> FeeRule:
    if draw(st.booleans()):
        return draw(percentage_rules())
    kind = draw(st.sampled_from([FeeKind.TIERED_BY_AMOUNT, FeeKind.TIERED_BY_MONTHLY_VOLUME]))
    low, high = draw(bounds())
    rule = FeeRule(kind=kind, tiers=draw(tiers()), minimum_amount=low, maximum_amount=high)
    validate_rule(rule)
    return rule


@settings(max_examples=60, deadline=None)
@given(rule=any_rules(), amount=amounts, volume=st.integers(min_value=0, max_value=10**13))
def test_a_fee_is_never_negative_nor_above_the_amount(rule: FeeRule, amount: int, volume: int) -> None:
    fee = compute_fee(rule, amount, monthly_volume=volume).fee
    assert 0 <= fee <= amount
    if rule.maximum_amount is not None:
        assert fee <= rule.maximum_amount
    if rule.minimum_amount is not None:
        assert fee >= min(rule.minimum_amount, amount)


@settings(max_examples=60, deadline=None)
@given(rule=percentage_rules(), first=amounts, second=amounts)
def test_percentage_kinds_are_monotone_in_the_amount(rule: FeeRule, first: int, second: int) -> None:
    low, high = sorted((first, second))
    assert compute_fee(rule, low).fee <= compute_fee(rule, high).fee


@settings(max_examples=60, deadline=None)
@given(fee_share=st.integers(min_value=0, max_value=1000), captured=st.integers(min_value=1, max_value=10**9),
       cuts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=6),
       policy=st.sampled_from(list(RefundFeePolicy)), full=st.booleans())
def test_refund_fee_returns_never_exceed_the_fee_and_a_full_refund_returns_it_all(
        fee_share: int, captured: int, cuts: list[int], policy: RefundFeePolicy, full: bool) -> None:
    fee = captured * fee_share // 1000
    refunds, left = [], captured
    for cut in cuts:
        part = min(left, cut % captured + 1)
        if part:
            refunds.append(part)
            left -= part
    if full and left:
        refunds.append(left)
    returned, refunded = 0, 0
    for amount in refunds:
        back = refund_fee_returned(policy, fee=fee, captured=captured, refunded_before=refunded, amount=amount,
                                   returned_before=returned)
        assert back >= 0
        returned += back
        refunded += amount
    assert returned <= fee
    # The same total as one refund gives back exactly the same fee (order and split do not matter).
    assert returned == cumulative_fee_returned(policy, fee, captured, refunded)
    if policy is RefundFeePolicy.RETAINED:
        assert returned == 0
    elif refunded == captured:
        assert returned == fee


def test_the_rounding_rule_and_the_clamps() -> None:
    rule = FeeRule(FeeKind.PERCENTAGE_PLUS_FIXED, rate=Decimal("0.006"), fixed_amount=30, minimum_amount=50,
                   maximum_amount=500)
    assert compute_fee(rule, 10_075).fee == 60 + 30  # 60.45 → 60 (half up), + 30
    assert compute_fee(rule, 10_084).fee == 61 + 30  # 60.504 → 61
    assert compute_fee(rule, 100).fee == 50  # 1 + 30 raised to the minimum
    assert compute_fee(rule, 40).fee == 40  # the minimum, capped at the amount
    assert compute_fee(rule, 1_000_000).fee == 500  # lowered to the maximum
    result = compute_fee(rule, 100)
    assert "half up" in result.explanation and "minimum 50" in result.explanation


def test_bands_by_amount_and_by_monthly_volume() -> None:
    bands = (Tier(up_to=10_000, rate=Decimal("0.01")), Tier(up_to=100_000, rate=Decimal("0.005")),
             Tier(up_to=None, rate=Decimal("0.002"), fixed_amount=10))
    by_amount = FeeRule(FeeKind.TIERED_BY_AMOUNT, tiers=bands)
    assert compute_fee(by_amount, 10_000).fee == 100  # inclusive upper bound
    assert compute_fee(by_amount, 10_001).fee == 50
    assert compute_fee(by_amount, 200_000).fee == 410
    by_volume = FeeRule(FeeKind.TIERED_BY_MONTHLY_VOLUME, tiers=bands)
    assert compute_fee(by_volume, 5_000, monthly_volume=0).fee == 50
    assert compute_fee(by_volume, 5_000, monthly_volume=50_000).fee == 25
    assert compute_fee(by_volume, 5_000, monthly_volume=10**9).tier == 2


@pytest.mark.parametrize(("rule", "param"), [
    (FeeRule(FeeKind.PERCENTAGE, rate=Decimal(0)), "rate"),
    (FeeRule(FeeKind.PERCENTAGE, rate=Decimal("0.01"), fixed_amount=5), "rate"),
    (FeeRule(FeeKind.FIXED, rate=Decimal("0.01"), fixed_amount=5), "fixed_amount"),
    (FeeRule(FeeKind.PERCENTAGE_PLUS_FIXED, rate=Decimal("0.01")), "rate"),
    (FeeRule(FeeKind.PERCENTAGE, rate=Decimal("1")), "rate"),
    (FeeRule(FeeKind.PERCENTAGE, rate=Decimal("0.000000001")), "rate"),
    (FeeRule(FeeKind.PERCENTAGE, rate=Decimal("0.01"), minimum_amount=10, maximum_amount=5), "minimum_amount"),
    (FeeRule(FeeKind.FIXED, fixed_amount=5, tiers=(Tier(None),)), "tiers"),
    (FeeRule(FeeKind.TIERED_BY_AMOUNT), "tiers"),
    (FeeRule(FeeKind.TIERED_BY_AMOUNT, rate=Decimal("0.01"), tiers=(Tier(None),)), "rate"),
    (FeeRule(FeeKind.TIERED_BY_AMOUNT, tiers=(Tier(100), Tier(50), Tier(None))), "tiers[1].up_to"),
    (FeeRule(FeeKind.TIERED_BY_AMOUNT, tiers=(Tier(None), Tier(None))), "tiers[0].up_to"),
    (FeeRule(FeeKind.TIERED_BY_AMOUNT, tiers=(Tier(100),)), "tiers[0].up_to"),
    (FeeRule(FeeKind.TIERED_BY_AMOUNT, tiers=(Tier(None, rate=Decimal(2)),)), "tiers[0].rate"),
])
def test_a_rule_that_does_not_say_one_thing_is_refused(rule: FeeRule, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate_rule(rule)
    assert raised.value.param == param
