"""Onboarding's pure rules: the state table, the risk tier and its explanation, the policy, limits, dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.errors import Conflict
from finloop.onboarding import domain
from finloop.onboarding.domain import Policy, TierInputs
from finloop.onboarding.state import TRANSITIONS, VERIFIED, ProfileStatus, can_move, check_move


def test_the_state_table_allows_only_its_moves() -> None:
    assert can_move("pending", ProfileStatus.VERIFYING)
    assert can_move("approved", ProfileStatus.REVIEW_DUE) and can_move("review_due", ProfileStatus.VERIFYING)
    assert not can_move("rejected", ProfileStatus.APPROVED)
    assert not can_move("verifying", ProfileStatus.PENDING)
    with pytest.raises(Conflict) as caught:
        check_move("in_review", ProfileStatus.VERIFYING, "kyc_1")
    assert caught.value.code == "profile_state_conflict"
    # Every status is reachable from pending, and only approved / review_due count as verified.
    seen, frontier = {ProfileStatus.PENDING}, [ProfileStatus.PENDING]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(ProfileStatus)
    assert {ProfileStatus.APPROVED, ProfileStatus.REVIEW_DUE} == VERIFIED


def _tier(**changes: object) -> domain.Tier:
    return domain.risk_tier(TierInputs(**{"profile_type": "individual", "country": "CN", **changes}),  # type: ignore[arg-type]
                            Policy())


def test_a_plain_party_is_low_with_nothing_to_explain() -> None:
    tier = _tier()
    assert (tier.tier, tier.points, tier.factors) == ("low", 0, ())


@pytest.mark.parametrize(("changes", "tier", "factor"), [
    ({"country": "KP"}, "high", "country"),
    ({"country": "VN"}, "medium", "country"),
    ({"is_pep": True}, "high", "pep"),
    ({"profile_type": "business", "business_type": "money_services"}, "high", "business_type"),
    ({"profile_type": "business", "business_type": "jewellery"}, "medium", "business_type"),
    ({"cleared_screening_hits": 1}, "medium", "screening"),
    ({"cleared_duplicates": 1}, "medium", "duplicate"),
    ({"decision_outcome": "review", "decision_score": 4}, "medium", "decision"),
    ({"decision_outcome": "approve", "decision_score": 1}, "medium", "decision"),
    ({"profile_type": "business", "business_type": "retail", "owner_countries": ("IR",)}, "high", "owner_country"),
])
def test_each_factor_raises_the_tier_and_says_why(changes: dict[str, object], tier: str, factor: str) -> None:
    result = _tier(**changes)
    assert result.tier == tier
    assert [f["factor"] for f in result.reasons()] == [factor]
    assert all(f["reason"] for f in result.reasons())


def test_points_add_up_to_high() -> None:
    result = _tier(country="VN", cleared_screening_hits=1, cleared_duplicates=1)
    assert (result.tier, result.points) == ("high", 3)


def test_the_tenant_lists_decide() -> None:
    policy = Policy.from_json({"high_risk_countries": ["VN"], "medium_risk_countries": []})
    assert domain.risk_tier(TierInputs(profile_type="individual", country="VN"), policy).tier == "high"
    assert domain.risk_tier(TierInputs(profile_type="individual", country="KP"), policy).tier == "low"


@given(st.booleans(), st.integers(0, 3), st.integers(0, 3), st.sampled_from(["CN", "VN", "KP"]),
       st.sampled_from([None, "approve", "review"]), st.integers(0, 50))
def test_more_risk_never_lowers_the_tier(pep: bool, hits: int, duplicates: int, country: str,
                                         outcome: str | None, score: int) -> None:
    order = {"low": 0, "medium": 1, "high": 2}
    base = TierInputs(profile_type="individual", country=country, is_pep=pep, cleared_screening_hits=hits,
                      cleared_duplicates=duplicates, decision_outcome=outcome, decision_score=score)
    worse = TierInputs(profile_type="individual", country=country, is_pep=True, cleared_screening_hits=hits + 1,
                       cleared_duplicates=duplicates, decision_outcome=outcome, decision_score=score)
    tier, worse_tier = domain.risk_tier(base, Policy()), domain.risk_tier(worse, Policy())
    assert order[worse_tier.tier] >= order[tier.tier]
    assert tier.points == sum(f.points for f in tier.factors)


def test_limits_and_review_dates_by_tier() -> None:
    policy = Policy()
    assert policy.limit("low", "CNY") == (None, None)
    assert policy.limit("high", "CNY") == (5_000_000, 10_000_000)
    assert policy.limit(None, "CNY") == (None, None)
    assert Policy.from_json({"limits": {"CNY": {"low": {"per_payout": 100}}}}).limit("low", "CNY") == (100, None)
    at = datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert policy.next_review("high", at) == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert policy.next_review("low", at) == datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert Policy.from_json({"review_months": {"high": 6}}).next_review("high", at) == datetime(2024, 8, 29, 12,
                                                                                               tzinfo=UTC)


@pytest.mark.parametrize(("changes", "param"), [
    ({"payout_gate": "maybe"}, "payout_gate"),
    ({"screen_beneficiaries": "yes"}, "screen_beneficiaries"),
    ({"review_months": {"high": 0}}, "review_months"),
    ({"review_months": {"extreme": 12}}, "review_months"),
    ({"high_risk_countries": ["kp"]}, "high_risk_countries"),
    ({"high_risk_business_types": ["Money Services"]}, "high_risk_business_types"),
    ({"limits": {"CNY": {"high": {"per_payout": 1.5}}}}, "limits"),
    ({"limits": {"CNY": {"high": {"weekly": 100}}}}, "limits"),
    ({"decision_score_points_from": 0}, "decision_score_points_from"),
])
def test_bad_policy_changes_are_named(changes: dict[str, object], param: str) -> None:
    assert [p for p, _ in domain.check_policy(changes)] == [param]


def test_masks_reveal_little() -> None:
    assert domain.mask_name("Li Wei") == "L***"
    assert domain.mask_identifier("e-1234 5675") == "****5675"
    assert domain.mask_identifier("AB12") == "****"
    assert domain.normalize_identifier(" ab-12.34/5 ") == "AB12345"
