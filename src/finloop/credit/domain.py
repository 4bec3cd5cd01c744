"""Pure rules of credit scoring: the points scale, rating bands, the platform feature set, reason codes, and
how personal data is normalised and masked. No I/O here.

Invariants owned here:
- the points scale is ``score = offset + factor · ln(odds)`` with odds good:bad, ``factor = pdo / ln 2`` and
  ``offset = base_points - factor · ln(base_odds)``: the base odds score the base points, and every ``pdo``
  points double the odds (defaults: 600 points at 50:1, 20 points to double);
- a score of record is an integer, rounded half up from the model's points (``floor(points + 0.5)``);
- rating bands are the lowest scores of A, B, C and D, strictly decreasing; a score at a band's minimum
  has that rating (the lower edge is inclusive); below D's minimum is ``reject``;
- reason codes are the features that cost the applicant most points against their best value, largest
  first (ties by feature name), at most ``REASON_COUNT``, never one that cost nothing;
- a probability of default is rounded half-even to 6 places (``PD_PLACES``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from finloop.core.errors import InvalidRequest

#: The defaults of the points scale: 600 points at odds of 50 good to 1 bad, 20 points to double the odds.
DEFAULT_BASE_POINTS = Decimal(600)
DEFAULT_BASE_ODDS = Decimal(50)
DEFAULT_PDO = Decimal(20)
REASON_COUNT = 4
PD_PLACES = Decimal("0.000001")
#: The model name real-time and batch scoring use unless told otherwise.
DEFAULT_MODEL_NAME = "applicant"
MAX_NAME = 40


class PartyKind(StrEnum):
    CUSTOMER = "customer"
    MERCHANT = "merchant"


class Employment(StrEnum):
    EMPLOYED = "employed"
    SELF_EMPLOYED = "self_employed"
    BUSINESS_OWNER = "business_owner"
    STUDENT = "student"
    RETIRED = "retired"
    UNEMPLOYED = "unemployed"
    OTHER = "other"


class ModelKind(StrEnum):
    SCORECARD = "scorecard"
    GBM = "gbm"


class ModelStatus(StrEnum):
    DRAFT = "draft"
    CHALLENGER = "challenger"
    CHAMPION = "champion"
    RETIRED = "retired"


class Rating(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"
    REJECT = "reject"


class ScoreMode(StrEnum):
    REAL_TIME = "real_time"
    BATCH = "batch"


def check_model_name(name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not name[0].isalpha() or not all(
            ch.isalnum() or ch == "_" for ch in name):
        raise InvalidRequest("A model name is 1-40 letters, digits or underscores, starting with a letter.",
                             code="invalid_model_name", param="name")
    return name


# ---------------------------------------------------------------------------------------------- points scale


@dataclass(frozen=True, slots=True)
class Scaling:
    """Base points at base odds (good:bad), and the points that double the odds."""

    base_points: Decimal = DEFAULT_BASE_POINTS
    base_odds: Decimal = DEFAULT_BASE_ODDS
    pdo: Decimal = DEFAULT_PDO

    def __post_init__(self) -> None:
        for name in ("base_points", "base_odds", "pdo"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise InvalidRequest(f"{name} is a finite decimal.", code="invalid_scaling", param=name)
        if not 0 < self.base_points <= 10_000:
            raise InvalidRequest("base_points is within (0, 10000].", code="invalid_scaling", param="base_points")
        if not Decimal("0.001") <= self.base_odds <= 100_000:
            raise InvalidRequest("base_odds is within [0.001, 100000].", code="invalid_scaling", param="base_odds")
        if not Decimal(1) <= self.pdo <= 1000:
            raise InvalidRequest("pdo is within [1, 1000].", code="invalid_scaling", param="pdo")

    @property
    def factor(self) -> float:
        return float(self.pdo) / math.log(2)

    @property
    def offset(self) -> float:
        return float(self.base_points) - self.factor * math.log(float(self.base_odds))

    def points_for_odds(self, odds: float) -> float:
        """The points of good:bad ``odds``."""
        return self.offset + self.factor * math.log(odds)

    def points_for_log_odds_of_default(self, raw: float) -> float:
        """The points of a model's raw output ``ln(p / (1 - p))``, p the probability of default."""
        return self.offset - self.factor * raw

    def probability_of_default(self, points: float) -> float:
        """The probability of default the points stand for (the inverse of the scale)."""
        exponent = (points - self.offset) / self.factor
        if exponent > 700:
            return 0.0
        return 1.0 / (1.0 + math.exp(exponent))

    def to_json(self) -> dict[str, str]:
        return {"base_points": str(self.base_points), "base_odds": str(self.base_odds), "pdo": str(self.pdo)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scaling:
        return cls(Decimal(str(data["base_points"])), Decimal(str(data["base_odds"])), Decimal(str(data["pdo"])))


def score_of(points: float) -> int:
    """The integer score of record: the points rounded half up (``floor(points + 0.5)``)."""
    return math.floor(points + 0.5)


def probability_text(probability: float) -> Decimal:
    """A probability of default as a Decimal rounded half-even to 6 places."""
    return Decimal(repr(min(1.0, max(0.0, probability)))).quantize(PD_PLACES, rounding=ROUND_HALF_EVEN)


# ---------------------------------------------------------------------------------------------- rating bands


@dataclass(frozen=True, slots=True)
class RatingBand:
    rating: Rating
    min_score: int


#: With the default scale: A from 1% default odds (100:1) up, B 25:1, C about 6:1, D about 1.6:1.
DEFAULT_BANDS: tuple[RatingBand, ...] = (
    RatingBand(Rating.A, 620), RatingBand(Rating.B, 580), RatingBand(Rating.C, 540), RatingBand(Rating.D, 500))
RATED = (Rating.A, Rating.B, Rating.C, Rating.D)


def check_bands(bands: Sequence[Mapping[str, Any]]) -> tuple[RatingBand, ...]:
    """Bands for A, B, C and D, in that order, with strictly decreasing integer minimum scores."""
    if not isinstance(bands, Sequence) or len(bands) != len(RATED):
        raise InvalidRequest("Give four bands: A, B, C and D.", code="invalid_rating_bands", param="bands")
    out: list[RatingBand] = []
    for i, (band, rating) in enumerate(zip(bands, RATED, strict=True)):
        if not isinstance(band, Mapping) or band.get("rating") != rating.value:
            raise InvalidRequest("Bands are A, B, C and D, in that order.", code="invalid_rating_bands",
                                 param=f"bands.{i}.rating")
        minimum = band.get("min_score")
        if isinstance(minimum, bool) or not isinstance(minimum, int) or not -100_000 <= minimum <= 100_000:
            raise InvalidRequest("min_score is an integer within ±100000.", code="invalid_rating_bands",
                                 param=f"bands.{i}.min_score")
        if out and minimum >= out[-1].min_score:
            raise InvalidRequest("Each band's min_score is below the one before it.", code="invalid_rating_bands",
                                 param=f"bands.{i}.min_score")
        out.append(RatingBand(rating, minimum))
    return tuple(out)


def rating_for(score: int, bands: Sequence[RatingBand] = DEFAULT_BANDS) -> Rating:
    for band in bands:
        if score >= band.min_score:
            return band.rating
    return Rating.REJECT


def bands_json(bands: Sequence[RatingBand]) -> list[dict[str, Any]]:
    return [{"rating": b.rating.value, "min_score": b.min_score} for b in bands]


# ---------------------------------------------------------------------------------------------- features


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """A model input: its kind, the monotonic trend of the default rate over it (optbinning's
    ``monotonic_trend``; ``auto`` lets the binning choose), and the sentence a reason code shows."""

    name: str
    kind: str  # numerical | categorical
    trend: str
    description: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "trend": self.trend, "description": self.description}


def _n(name: str, trend: str, description: str) -> FeatureSpec:
    return FeatureSpec(name, "numerical", trend, description)


#: The platform's applicant features: behaviour from our own records, what the applicant declared, and the
#: bureau report. ``features.compute`` computes them from the database and ``sim`` simulates them; a model
#: trained on either reads the same names.
PLATFORM_FEATURES: tuple[FeatureSpec, ...] = (
    _n("tenure_days", "descending", "Short relationship with the platform"),
    _n("order_count_90d", "auto", "Few recent orders"),
    _n("order_count_365d", "auto", "Few orders in the last year"),
    _n("order_amount_avg_365d", "auto", "Order amounts"),
    _n("refund_rate_365d", "ascending", "High share of orders refunded or returned"),
    _n("repurchase_interval_days", "auto", "Long time between repeat purchases"),
    _n("days_since_last_order", "ascending", "No recent purchase"),
    _n("payment_failure_rate_365d", "ascending", "Failed payments"),
    _n("dispute_count_365d", "ascending", "Payment disputes (chargebacks)"),
    _n("login_count_30d", "auto", "Little recent activity on the platform"),
    _n("declared_income", "descending", "Low declared income"),
    FeatureSpec("employment", "categorical", "auto", "Employment status"),
    _n("debt_to_income", "ascending", "High debt compared with income"),
    _n("bureau_score", "descending", "Low credit bureau score"),
    _n("bureau_open_loans", "ascending", "Many open loans at other lenders"),
    _n("bureau_enquiries_30d", "ascending", "Recent credit enquiries from other lenders"),
    _n("bureau_enquiries_90d", "ascending", "Credit enquiries from other lenders in the last 90 days"),
    _n("bureau_delinquencies_24m", "ascending", "Late payments reported by the credit bureau"),
    FeatureSpec("bureau_thin_file", "categorical", "auto", "Little or no credit history at the bureau"),
)
PLATFORM_FEATURE_NAMES = tuple(f.name for f in PLATFORM_FEATURES)


def describe(name: str) -> str:
    """A readable sentence for a feature without a description (``duration_in_month`` → "Duration in month")."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@dataclass(frozen=True, slots=True)
class Reason:
    """One adverse factor: the feature, what the applicant had, and the points it cost against the best."""

    feature: str
    description: str
    value: str
    points_lost: float

    def to_json(self) -> dict[str, Any]:
        return {"code": self.feature, "description": self.description, "value": self.value,
                "points_lost": round(self.points_lost, 2)}


def adverse_order(lost: Sequence[tuple[str, float]], count: int = REASON_COUNT) -> list[tuple[str, float]]:
    """(feature, points lost) of the factors that cost most, largest first; ties by feature name; nothing that
    cost nothing."""
    adverse = [pair for pair in lost if pair[1] > 1e-9]
    adverse.sort(key=lambda pair: (-pair[1], pair[0]))
    return adverse[:count]


def top_reasons(candidates: Sequence[Reason], count: int = REASON_COUNT) -> list[Reason]:
    """``adverse_order`` of whole reasons."""
    by_feature = {r.feature: r for r in candidates}
    return [by_feature[name] for name, _ in adverse_order([(r.feature, r.points_lost) for r in candidates], count)]


# ---------------------------------------------------------------------------------------------- personal data

_NATIONAL_ID = re.compile(r"^[A-Z0-9]{6,30}$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")


def normalize_national_id(value: Any) -> str:
    """Upper case without spaces, hyphens or dots: 6 to 30 letters and digits."""
    text = value.replace(" ", "").replace("-", "").replace(".", "").upper() if isinstance(value, str) else ""
    if not _NATIONAL_ID.match(text):
        raise InvalidRequest("national_id is 6 to 30 letters and digits.", code="invalid_national_id",
                             param="national_id")
    return text


def normalize_phone(value: Any) -> str:
    """Digits with an optional leading '+', without spaces, hyphens or brackets: 6 to 15 digits."""
    text = value.strip() if isinstance(value, str) else ""
    for ch in " -()./":
        text = text.replace(ch, "")
    if not _PHONE.match(text):
        raise InvalidRequest("phone is 6 to 15 digits, optionally starting with '+'.", code="invalid_phone",
                             param="phone")
    return text


def last4(value: str) -> str:
    return value[-4:]


def masked(last: str | None) -> str | None:
    """What output shows of a personal value: ``****`` and its last four characters."""
    return None if last is None else "****" + last


def month_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def check_month(value: Any) -> str:
    if not isinstance(value, str) or not _MONTH.match(value) or not "2000" <= value[:4] <= "2999":
        raise InvalidRequest("month is YYYY-MM.", code="invalid_month", param="month")
    return value


# ---------------------------------------------------------------------------------------------- applications


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    DECLINED = "declined"
    CONTRACT_SIGNED = "contract_signed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ApplicationPurpose(StrEnum):
    PURCHASE = "purchase"
    CONSUMPTION = "consumption"
    EDUCATION = "education"
    MEDICAL = "medical"
    HOME = "home"
    TRAVEL = "travel"
    BUSINESS = "business"
    WORKING_CAPITAL = "working_capital"
    OTHER = "other"


_S = ApplicationStatus
#: Where an application may go from each status. Disbursement (the next slice) leaves ``contract_signed``.
APPLICATION_TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    _S.SUBMITTED: frozenset({_S.APPROVED, _S.DECLINED, _S.IN_REVIEW}),
    _S.IN_REVIEW: frozenset({_S.APPROVED, _S.DECLINED, _S.CANCELLED}),
    _S.APPROVED: frozenset({_S.CONTRACT_SIGNED, _S.CANCELLED, _S.EXPIRED}),
    _S.DECLINED: frozenset(),
    _S.CONTRACT_SIGNED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
}


def check_application_transition(current: str, wanted: ApplicationStatus) -> None:
    from finloop.core.errors import Conflict

    if wanted not in APPLICATION_TRANSITIONS[ApplicationStatus(current)]:
        raise Conflict(f"An application that is {current} cannot become {wanted.value}.",
                       code="application_state_conflict", param="status")


#: The reasons an applicant may be shown, by stable code. Internal detail (scores, rules fired, counts) stays in
#: the application's ``details``.
APPLICANT_REASONS: dict[str, str] = {
    "rating_reject": "Based on our credit assessment we cannot offer this loan at the moment.",
    "risk_declined": "We could not verify this application.",
    "limit_insufficient": "The amount is more than the credit available to you for this product.",
    "multiple_recent_applications": "You have applied for credit several times recently.",
    "too_many_open_loans": "You have too many loans open at the moment.",
    "manual_review": "Your application needs a short manual review; we will let you know the outcome.",
    "declined_on_review": "After review we cannot offer this loan at the moment.",
}


def applicant_reason(code: str) -> dict[str, str]:
    return {"code": code, "message": APPLICANT_REASONS[code]}


# ---------------------------------------------------------------------------------------------- disbursement


class FundingKind(StrEnum):
    OWN_RESERVE = "own_reserve"
    PARTNER_BANK = "partner_bank"


class LoanStatus(StrEnum):
    PENDING_DISBURSEMENT = "pending_disbursement"
    DISBURSING = "disbursing"
    ACTIVE = "active"
    FAILED = "failed"


class DisbursementTarget(StrEnum):
    CUSTOMER_ACCOUNT = "customer_account"
    MERCHANT = "merchant"


_L = LoanStatus
LOAN_TRANSITIONS: dict[LoanStatus, frozenset[LoanStatus]] = {
    _L.PENDING_DISBURSEMENT: frozenset({_L.DISBURSING, _L.ACTIVE, _L.FAILED}),
    _L.DISBURSING: frozenset({_L.ACTIVE, _L.FAILED}),
    _L.ACTIVE: frozenset(),
    _L.FAILED: frozenset(),
}


def check_loan_transition(current: str, wanted: LoanStatus) -> None:
    from finloop.core.errors import Conflict

    if wanted not in LOAN_TRANSITIONS[LoanStatus(current)]:
        raise Conflict(f"A loan that is {current} cannot become {wanted.value}.", code="loan_state_conflict",
                       param="status")
