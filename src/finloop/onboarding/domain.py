"""Onboarding's pure rules: the tenant policy with its shipped defaults, the risk tier and its explanation,
payout limits per tier, review intervals, identifier normalisation and masking. No I/O here.

The risk tier is a sum of points, each with its reason (``TierFactor``): 3 or more is ``high``, 1 or 2 is
``medium``, 0 is ``low``; a country on the tenant's high-risk list makes the tier ``high`` whatever the sum.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from finloop.onboarding.state import RiskTier

#: FATF "call for action" jurisdictions (illustrative, the same default as AML monitoring; configure your own).
DEFAULT_HIGH_RISK_COUNTRIES = ("KP", "IR", "MM")
#: Jurisdictions under increased monitoring (illustrative: part of a FATF list of early 2024; configure your own).
DEFAULT_MEDIUM_RISK_COUNTRIES = ("BG", "CM", "CD", "HT", "KE", "ML", "MZ", "NG", "PH", "SN", "SS", "SY", "TZ",
                                 "VE", "VN", "YE", "ZA")
DEFAULT_HIGH_RISK_BUSINESS_TYPES = ("money_services", "gambling", "crypto_assets", "precious_metals", "arms")
DEFAULT_MEDIUM_RISK_BUSINESS_TYPES = ("jewellery", "real_estate", "travel", "electronics", "cash_intensive",
                                      "charity")
#: Months between periodic reviews, by tier.
DEFAULT_REVIEW_MONTHS: dict[str, int] = {"low": 36, "medium": 24, "high": 12}
#: Payout limits by currency and tier, minor units: {"per_payout": n | None, "daily": n | None} (a rolling 24
#: hours). A tier or currency not named has no limit.
DEFAULT_LIMITS: dict[str, dict[str, dict[str, int | None]]] = {
    "CNY": {"medium": {"per_payout": 20_000_000, "daily": 50_000_000},
            "high": {"per_payout": 5_000_000, "daily": 10_000_000}},
    "USD": {"medium": {"per_payout": 3_000_000, "daily": 7_500_000},
            "high": {"per_payout": 1_000_000, "daily": 2_000_000}},
}
GATES = ("required", "off")
HIGH_POINTS = 3
COUNTRY = re.compile(r"^[A-Z]{2}$")
BUSINESS_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True, slots=True)
class Policy:
    """A tenant's onboarding policy: the shipped defaults overridden by its stored changes."""

    #: ``required``: a payout to a party that is not verified is refused (automatic ones are skipped).
    payout_gate: str = "required"
    #: ``required``: a wallet withdrawal of a customer who is not verified is refused.
    withdrawal_gate: str = "required"
    #: Screen the payout account's holder against the watchlists before paying out (once per list version).
    screen_beneficiaries: bool = True
    provider: str = "sandbox"
    review_months: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_REVIEW_MONTHS))
    high_risk_countries: tuple[str, ...] = DEFAULT_HIGH_RISK_COUNTRIES
    medium_risk_countries: tuple[str, ...] = DEFAULT_MEDIUM_RISK_COUNTRIES
    high_risk_business_types: tuple[str, ...] = DEFAULT_HIGH_RISK_BUSINESS_TYPES
    medium_risk_business_types: tuple[str, ...] = DEFAULT_MEDIUM_RISK_BUSINESS_TYPES
    #: A registration decision scoring at least this (without a review) adds a point.
    decision_score_points_from: int = 1
    limits: Mapping[str, Mapping[str, Mapping[str, int | None]]] = field(
        default_factory=lambda: {c: {t: dict(v) for t, v in by.items()} for c, by in DEFAULT_LIMITS.items()})

    def to_json(self) -> dict[str, Any]:
        return {
            "payout_gate": self.payout_gate, "withdrawal_gate": self.withdrawal_gate,
            "screen_beneficiaries": self.screen_beneficiaries, "provider": self.provider,
            "review_months": dict(self.review_months), "high_risk_countries": list(self.high_risk_countries),
            "medium_risk_countries": list(self.medium_risk_countries),
            "high_risk_business_types": list(self.high_risk_business_types),
            "medium_risk_business_types": list(self.medium_risk_business_types),
            "decision_score_points_from": self.decision_score_points_from,
            "limits": {c: {t: dict(v) for t, v in by.items()} for c, by in self.limits.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        """Defaults overridden by ``data`` (validated by ``check_policy`` before it was stored)."""
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key not in cls.__dataclass_fields__:
                continue
            changes[key] = tuple(value) if isinstance(value, list) else value
        if "review_months" in changes:
            changes["review_months"] = {**DEFAULT_REVIEW_MONTHS, **changes["review_months"]}
        return replace(cls(), **changes)

    def limit(self, tier: str | None, currency: str) -> tuple[int | None, int | None]:
        """(per payout, per rolling 24 hours) for a tier, minor units; None: no limit."""
        if tier is None:
            return None, None
        found = self.limits.get(currency, {}).get(tier) or {}
        return found.get("per_payout"), found.get("daily")

    def next_review(self, tier: str, after: datetime) -> datetime:
        return add_months(after, self.review_months.get(tier, DEFAULT_REVIEW_MONTHS[tier]))


def check_policy(changes: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The problems of a policy change as (param, message); empty when it is valid. Pure, so the API and the
    CLI refuse the same things."""
    problems: list[tuple[str, str]] = []
    for key in ("payout_gate", "withdrawal_gate"):
        if key in changes and changes[key] not in GATES:
            problems.append((key, f"{key} is required or off."))
    if "screen_beneficiaries" in changes and not isinstance(changes["screen_beneficiaries"], bool):
        problems.append(("screen_beneficiaries", "screen_beneficiaries is true or false."))
    if "provider" in changes and (not isinstance(changes["provider"], str) or not changes["provider"].isidentifier()):
        problems.append(("provider", "provider is a registered verification provider's name."))
    months = changes.get("review_months")
    if months is not None and (not isinstance(months, Mapping) or not set(months) <= {t.value for t in RiskTier}
                               or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 120
                                          for v in months.values())):
        problems.append(("review_months", "review_months maps low, medium and high to 1-120 months."))
    for key in ("high_risk_countries", "medium_risk_countries"):
        value = changes.get(key)
        if value is not None and (not isinstance(value, Sequence) or isinstance(value, str) or len(value) > 300
                                  or not all(isinstance(c, str) and COUNTRY.match(c) for c in value)):
            problems.append((key, f"{key} is a list of ISO 3166 alpha-2 codes in capitals."))
    for key in ("high_risk_business_types", "medium_risk_business_types"):
        value = changes.get(key)
        if value is not None and (not isinstance(value, Sequence) or isinstance(value, str) or len(value) > 100
                                  or not all(isinstance(b, str) and BUSINESS_TYPE.match(b) for b in value)):
            problems.append((key, f"{key} is a list of lower_snake business types."))
    score = changes.get("decision_score_points_from")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 1_000_000):
        problems.append(("decision_score_points_from", "decision_score_points_from is an integer of 1-1000000."))
    limits = changes.get("limits")
    if limits is not None and not _limits_valid(limits):
        problems.append(("limits", "limits maps a currency to tiers to {per_payout, daily}: positive integers "
                                   "of minor units or null."))
    return problems


def _limits_valid(limits: Any) -> bool:
    if not isinstance(limits, Mapping) or len(limits) > 50:
        return False
    for currency, by_tier in limits.items():
        if not isinstance(currency, str) or not re.match(r"^[A-Z]{3}$", currency) or not isinstance(by_tier, Mapping):
            return False
        for tier, values in by_tier.items():
            if tier not in {t.value for t in RiskTier} or not isinstance(values, Mapping):
                return False
            if not set(values) <= {"per_payout", "daily"}:
                return False
            for amount in values.values():
                if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)
                                           or not 1 <= amount <= 10**15):
                    return False
    return True


def add_months(at: datetime, months: int) -> datetime:
    """``at`` plus whole calendar months, the day clamped to the month's last (29 Feb + 12 months = 28 Feb)."""
    month_index = at.month - 1 + months
    year, month = at.year + month_index // 12, month_index % 12 + 1
    for day in (at.day, 30, 29, 28):
        try:
            return at.replace(year=year, month=month, day=min(day, at.day))
        except ValueError:
            continue
    raise ValueError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------- tier


@dataclass(frozen=True, slots=True)
class TierFactor:
    factor: str
    value: str
    points: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"factor": self.factor, "value": self.value, "points": self.points, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class TierInputs:
    profile_type: str
    country: str
    business_type: str | None = None
    is_pep: bool = False
    owner_countries: tuple[str, ...] = ()
    #: Screenings whose potential matches a review cleared.
    cleared_screening_hits: int = 0
    #: Identifiers shared with another profile, cleared by a review.
    cleared_duplicates: int = 0
    decision_outcome: str | None = None
    decision_score: int | None = None


@dataclass(frozen=True, slots=True)
class Tier:
    tier: RiskTier
    points: int
    factors: tuple[TierFactor, ...]

    def reasons(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.factors]


def risk_tier(inputs: TierInputs, policy: Policy) -> Tier:
    """The tier and every factor that made it (factors adding nothing are not listed)."""
    factors: list[TierFactor] = []
    forced = False
    countries = [("country", inputs.country), *(("owner_country", c) for c in inputs.owner_countries)]
    for name, country in countries:
        if country in policy.high_risk_countries:
            factors.append(TierFactor(name, country, HIGH_POINTS, "a high-risk jurisdiction"))
            forced = True
            break
    else:
        for name, country in countries:
            if country in policy.medium_risk_countries:
                factors.append(TierFactor(name, country, 1, "a jurisdiction under increased monitoring"))
                break
    if inputs.is_pep:
        factors.append(TierFactor("pep", "yes", HIGH_POINTS,
                                  "a politically exposed person (the party or a beneficial owner)"))
    if inputs.business_type:
        if inputs.business_type in policy.high_risk_business_types:
            factors.append(TierFactor("business_type", inputs.business_type, HIGH_POINTS, "a high-risk business"))
        elif inputs.business_type in policy.medium_risk_business_types:
            factors.append(TierFactor("business_type", inputs.business_type, 1, "a business of increased risk"))
    if inputs.cleared_screening_hits:
        factors.append(TierFactor("screening", str(inputs.cleared_screening_hits), 1,
                                  "a watchlist potential match, cleared on review"))
    if inputs.cleared_duplicates:
        factors.append(TierFactor("duplicate", str(inputs.cleared_duplicates), 1,
                                  "an identifier shared with another party, cleared on review"))
    if inputs.decision_outcome == "review":
        factors.append(TierFactor("decision", f"review, score {inputs.decision_score or 0}", 2,
                                  "the registration decision asked for a review"))
    elif inputs.decision_score is not None and inputs.decision_score >= policy.decision_score_points_from:
        factors.append(TierFactor("decision", f"score {inputs.decision_score}", 1,
                                  "the registration decision scored risk"))
    points = sum(f.points for f in factors)
    if forced or points >= HIGH_POINTS:
        tier = RiskTier.HIGH
    elif points >= 1:
        tier = RiskTier.MEDIUM
    else:
        tier = RiskTier.LOW
    return Tier(tier, points, tuple(factors))


# ---------------------------------------------------------------------------------------------- identifiers


def normalize_identifier(value: str) -> str:
    """Upper case, without spaces, dashes, dots and slashes: ``"ab-12 34"`` and ``"AB1234"`` are one id."""
    text = unicodedata.normalize("NFKC", value).upper()
    return re.sub(r"[\s\-./]", "", text)


def mask_name(value: str) -> str:
    """The first character and three stars: the length is not revealed."""
    return (value.strip()[:1] or "*") + "***"


def mask_identifier(value: str) -> str:
    """``****1234``: the last four characters of an identifier of more than six, else ``****``."""
    text = normalize_identifier(value)
    return "****" + text[-4:] if len(text) > 6 else "****"
