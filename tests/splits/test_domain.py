"""Pure split allocation and claw-back: the worked examples and the invariants under random rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.core.errors import InvalidRequest
from finloop.splits.domain import (
    Bearer,
    PartyRole,
    PlatformKind,
    RefundPolicy,
    RuleTerms,
    SplitContext,
    Tier,
    TierBasis,
    allocate_split,
    clawback,
    dhondt,
    draw,
    validate_terms,
)

TEN = Decimal("0.1")


def test_the_issue_example_100_gives_10_5_85() -> None:
    terms = RuleTerms(platform_kind=PlatformKind.RATIO, platform_ratio=TEN, promoter_ratios=(Decimal("0.05"),))
    parts = allocate_split(10_000, 60, Bearer.PLATFORM, terms, SplitContext("m1", promoters=("p1",))).parts
    assert [(p.role, p.party_id, p.amount, p.fee) for p in parts] == [
        (PartyRole.PLATFORM, "platform", 1_000, 60), (PartyRole.PROMOTER, "p1", 500, 0),
        (PartyRole.MERCHANT, "m1", 8_500, 0)]


def test_multi_level_promoters_hierarchy_tiers_categories_and_fee_bearers() -> None:
    terms = RuleTerms(platform_kind=PlatformKind.RATIO, platform_ratio=TEN,
                      promoter_ratios=(Decimal("0.08"), Decimal("0.03")))
    context = SplitContext("shop", promoters=("p1", "p0", "ignored"),
                           hierarchy=(("branch", Decimal("0.02")), ("hq", Decimal("0.01"))))
    parts = allocate_split(9_999, 0, Bearer.PLATFORM, terms, context).parts
    # Every non-merchant share rounds down; the leaf merchant takes the remainder.
    assert [p.amount for p in parts] == [999, 799, 299, 199, 99, 9_999 - 999 - 799 - 299 - 199 - 99]
    assert [p.party_id for p in parts] == ["platform", "p1", "p0", "branch", "hq", "shop"]
    tiered = RuleTerms(platform_kind=PlatformKind.TIERED, tier_basis=TierBasis.MONTHLY_VOLUME,
                       tiers=(Tier(0, Decimal("0.05")), Tier(1_000_000, Decimal("0.03"))),
                       category_ratios=(("books", Decimal("0.01")),))
    assert allocate_split(10_000, 0, "platform", tiered, SplitContext("m")).platform.amount == 500
    big = SplitContext("m", monthly_volume=2_000_000)
    assert allocate_split(10_000, 0, "platform", tiered, big).platform.amount == 300
    assert allocate_split(10_000, 0, "platform", tiered, SplitContext("m", category="books")).platform.amount == 100
    fixed = RuleTerms(platform_kind=PlatformKind.FIXED, platform_amount=300)
    assert [p.amount for p in allocate_split(200, 0, "platform", fixed, SplitContext("m")).parts] == [200, 0]
    merchant_pays = allocate_split(10_000, 60, Bearer.MERCHANT, terms, SplitContext("m")).parts
    assert [(p.amount, p.fee) for p in merchant_pays] == [(1_000, 0), (9_000, 60)]
    pro_rata = allocate_split(10_000, 61, Bearer.PRO_RATA, terms, SplitContext("m", promoters=("p",))).parts
    assert [p.fee for p in pro_rata] == [6, 5, 50] and sum(p.fee for p in pro_rata) == 61
    assert [p.amount for p in allocate_split(10_000, 0, "platform", None, SplitContext("m")).parts] == [0, 10_000]


@pytest.mark.parametrize(("terms", "param"), [
    (RuleTerms(platform_kind=PlatformKind.RATIO, platform_ratio=Decimal("1.5")), "platform.ratio"),
    (RuleTerms(platform_kind=PlatformKind.RATIO, platform_ratio=Decimal("0")), "platform.ratio"),
    (RuleTerms(platform_kind=PlatformKind.RATIO, platform_ratio=Decimal("0.0000001")), "platform.ratio"),
    (RuleTerms(platform_kind=PlatformKind.FIXED, platform_amount=0), "platform.amount"),
    (RuleTerms(platform_kind=PlatformKind.TIERED, tiers=(Tier(5, TEN),)), "platform.tiers"),
    (RuleTerms(platform_kind=PlatformKind.TIERED, tiers=(Tier(0, TEN), Tier(0, TEN))), "platform.tiers"),
    (RuleTerms(platform_kind=PlatformKind.RATIO, platform_ratio=Decimal("0.6"),
               promoter_ratios=(Decimal("0.3"), Decimal("0.2"))), "promoter_ratios"),
])
def test_bad_rules_are_refused_with_the_field(terms: RuleTerms, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_terms(terms)
    assert caught.value.param == param


def test_dhondt_and_draw() -> None:
    assert dhondt([1_000, 500, 8_500], 10_000) == [1_000, 500, 8_500]
    assert dhondt([40, 40, 20], 5) == [2, 2, 1]
    assert draw(100, 30, 50) == draw(100, 30, 50) and (draw(100, 30, 50).to_receivable == 20)


ratios = st.decimals(min_value=0, max_value=Decimal("0.3"), places=4)
small_ratios = st.decimals(min_value=0, max_value=Decimal("0.1"), places=4)


@st.composite
def splits(draw_: st.DrawFn) -> tuple[int, int, str, RuleTerms, SplitContext]:
    kind = draw_(st.sampled_from(list(PlatformKind)))
    terms = RuleTerms(
        platform_kind=kind,
        platform_ratio=draw_(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.3"), places=4))
        if kind is PlatformKind.RATIO else Decimal(0),
        platform_amount=draw_(st.integers(1, 50_000)) if kind is PlatformKind.FIXED else 0,
        tiers=(Tier(0, draw_(ratios)), Tier(draw_(st.integers(1, 10**6)), draw_(ratios)))
        if kind is PlatformKind.TIERED else (),
        category_ratios=(("c", draw_(ratios)),),
        promoter_ratios=tuple(draw_(st.lists(small_ratios, max_size=3))),  # with the platform's 0.3, at most 0.6
        refund_policy=draw_(st.sampled_from(list(RefundPolicy))))
    context = SplitContext("m", category=draw_(st.sampled_from([None, "c"])),
                           promoters=tuple(f"p{i}" for i in range(draw_(st.integers(0, 3)))),
                           hierarchy=tuple((f"h{i}", d) for i, d in enumerate(draw_(st.lists(ratios, max_size=2)))))
    amount = draw_(st.integers(1, 10**9))
    return amount, draw_(st.integers(0, amount * 2)), draw_(st.sampled_from(list(Bearer))), terms, context


@settings(max_examples=60, deadline=None)
@given(splits(), st.lists(st.integers(1, 10**9), max_size=6))
def test_parts_sum_none_negative_and_cumulative_clawbacks_equal_a_full_refund(
        split: tuple[int, int, str, RuleTerms, SplitContext], refunds: list[int]) -> None:
    amount, fee, bearer, terms, context = split
    validate_terms(terms)
    parts = allocate_split(amount, fee, bearer, terms, context).parts
    amounts = [p.amount for p in parts]
    assert sum(amounts) == amount and min(amounts) >= 0
    assert sum(p.fee for p in parts) == fee and all(p.fee >= 0 for p in parts)
    assert all(p.fee <= p.amount for p in parts[1:])
    clawed, refunded = [0] * len(parts), 0
    for want in refunds:
        piece = min(want, amount - refunded)
        if piece <= 0:
            break
        taken = clawback(amounts, refunded, piece, terms.refund_policy)
        assert sum(taken) == piece and min(taken) >= 0
        clawed = [c + t for c, t in zip(clawed, taken, strict=True)]
        assert all(c <= a for c, a in zip(clawed, amounts, strict=True))
        refunded += piece
    if refunded < amount:
        taken = clawback(amounts, refunded, amount - refunded, terms.refund_policy)
        clawed = [c + t for c, t in zip(clawed, taken, strict=True)]
    assert clawed == amounts == clawback(amounts, 0, amount, terms.refund_policy)
