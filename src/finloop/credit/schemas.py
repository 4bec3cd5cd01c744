"""Wire models of the credit API. Requests refuse unknown fields; amounts are strict integers of minor units;
probabilities are decimal strings. Personal data goes in once (creating an applicant) and only ever comes
out masked: ``****`` and the last four characters."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.types import CurrencyCode, Instant, Line, NonNegativeAmount, single_line
from finloop.credit.domain import (
    DEFAULT_MODEL_NAME,
    PD_PLACES,
    Employment,
    ModelKind,
    ModelStatus,
    PartyKind,
    Rating,
    ScoreMode,
    masked,
)
from finloop.credit.models import Applicant, BureauReport, Consent, CreditModel, CreditScore, RatingPolicy
from finloop.credit.service import ConsentChannel, ConsentPurpose, ConsentScope, ReportStatus

ObjectId = Annotated[Line, Field(min_length=1, max_length=40)]
ModelName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
Personal = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(single_line)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------- applicants


class ApplicantCreate(Strict):
    party_kind: PartyKind
    party_id: ObjectId = Field(description="The customer or merchant id (cus_..., mer_...).")
    declared_income_amount: NonNegativeAmount = Field(
        description="Monthly income (a merchant: monthly revenue) in minor units.")
    currency: CurrencyCode
    employment: Employment
    national_id: Personal = Field(description="Stored encrypted; shown only as ****1234.")
    phone: Personal | None = None
    bank_account: Personal | None = None


class ApplicantRead(BaseModel):
    id: str
    object: str = "applicant"
    party_kind: PartyKind
    party_id: str
    declared_income_amount: int
    currency: str
    employment: Employment
    national_id: str = Field(description="Masked: ****1234.")
    phone: str | None
    bank_account: str | None
    flags: list[str] = Field(description="duplicate_national_id, shared_phone, shared_bank_account.")
    duplicates: dict[str, list[str]] | None = Field(
        default=None, description="Other applicants sharing each personal value (on a single applicant's read).")
    created_at: datetime
    updated_at: datetime


def read_applicant(row: Applicant, duplicates: dict[str, list[str]] | None = None) -> ApplicantRead:
    return ApplicantRead(
        id=row.id, party_kind=PartyKind(row.party_kind), party_id=row.party_id,
        declared_income_amount=row.declared_income_amount, currency=row.currency,
        employment=Employment(row.employment), national_id=masked(row.national_id_last4) or "****",
        phone=masked(row.phone_last4), bank_account=masked(row.bank_account_last4), flags=list(row.flags),
        duplicates=duplicates, created_at=row.created_at, updated_at=row.updated_at)


# ---------------------------------------------------------------------------------------------- consents


class ConsentCreate(Strict):
    purpose: ConsentPurpose = ConsentPurpose.CREDIT_ASSESSMENT
    scope: list[ConsentScope] = Field(min_length=1, max_length=4)
    channel: ConsentChannel = ConsentChannel.APP
    evidence: Annotated[str, Field(max_length=200), AfterValidator(single_line)] = Field(
        default="", description="A reference to the evidence, e.g. the SHA-256 of the signed form.")
    given_at: Instant | None = Field(default=None, description="Default: now.")
    expires_at: Instant | None = Field(default=None, description="Default: 90 days after given_at (at most 366).")


class ConsentRead(BaseModel):
    id: str
    object: str = "credit_consent"
    applicant_id: str
    purpose: ConsentPurpose
    scope: list[ConsentScope]
    channel: ConsentChannel
    evidence: str
    given_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    is_valid: bool = Field(description="Given, not expired and not revoked, now.")
    created_at: datetime


def read_consent(row: Consent, now: datetime) -> ConsentRead:
    return ConsentRead(
        id=row.id, applicant_id=row.applicant_id, purpose=ConsentPurpose(row.purpose),
        scope=[ConsentScope(s) for s in row.scope], channel=ConsentChannel(row.channel), evidence=row.evidence,
        given_at=row.given_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
        is_valid=row.revoked_at is None and row.given_at <= now < row.expires_at, created_at=row.created_at)


# ---------------------------------------------------------------------------------------------- bureau reports


class BureauPull(Strict):
    provider: Annotated[Line, Field(min_length=1, max_length=40)] = "sandbox"


class BureauReportRead(BaseModel):
    id: str
    object: str = "bureau_report"
    applicant_id: str
    consent_id: str
    provider: str
    status: ReportStatus
    requested_at: datetime
    received_at: datetime | None
    latency_ms: int | None
    provider_reference: str | None
    bureau_score: int | None
    is_thin_file: bool | None
    open_loans: int | None
    open_loan_balance_amount: int | None
    currency: str | None
    enquiries_30d: int | None
    enquiries_90d: int | None
    delinquencies_24m: int | None
    detail: dict[str, Any] | None = Field(description="Loans with balances, enquiries and delinquencies.")
    error_code: str | None
    error_message: str | None


def read_report(row: BureauReport) -> BureauReportRead:
    return BureauReportRead(
        id=row.id, applicant_id=row.applicant_id, consent_id=row.consent_id, provider=row.provider,
        status=ReportStatus(row.status), requested_at=row.requested_at, received_at=row.received_at,
        latency_ms=row.latency_ms, provider_reference=row.provider_reference, bureau_score=row.bureau_score,
        is_thin_file=row.is_thin_file, open_loans=row.open_loans, open_loan_balance_amount=row.open_loan_balance_amount,
        currency=row.currency, enquiries_30d=row.enquiries_30d, enquiries_90d=row.enquiries_90d,
        delinquencies_24m=row.delinquencies_24m, detail=row.report, error_code=row.error_code,
        error_message=row.error_message)


# ---------------------------------------------------------------------------------------------- scores


class ScoreCreate(Strict):
    model_name: ModelName = DEFAULT_MODEL_NAME


class ReasonRead(BaseModel):
    code: str
    description: str
    value: str
    points_lost: float


class ChallengerRead(BaseModel):
    model_id: str
    kind: ModelKind
    score: int
    rating: Rating
    probability: str


class ScoreRead(BaseModel):
    id: str
    object: str = "credit_score"
    applicant_id: str
    model_id: str
    model_name: str
    model_version: int
    model_kind: ModelKind
    score: int
    rating: Rating
    probability: str = Field(description="Probability of default, a decimal string with 6 places.")
    reasons: list[ReasonRead] = Field(description="The top adverse factors, largest first.")
    features: dict[str, Any]
    challenger: ChallengerRead | None
    mode: ScoreMode
    batch_month: str | None
    as_of: datetime
    scored_at: datetime


def read_score(row: CreditScore) -> ScoreRead:
    return ScoreRead(
        id=row.id, applicant_id=row.applicant_id, model_id=row.model_id, model_name=row.model_name,
        model_version=row.model_version, model_kind=ModelKind(row.model_kind), score=row.score,
        rating=Rating(row.rating), probability=str(Decimal(row.probability).quantize(PD_PLACES)),
        reasons=[ReasonRead.model_validate(r) for r in row.reasons], features=dict(row.features),
        challenger=ChallengerRead.model_validate(row.challenger) if row.challenger else None,
        mode=ScoreMode(row.mode), batch_month=row.batch_month, as_of=row.as_of, scored_at=row.scored_at)


# ---------------------------------------------------------------------------------------------- models


class ModelRead(BaseModel):
    id: str
    object: str = "credit_model"
    name: str
    version: int
    kind: ModelKind
    status: ModelStatus
    dataset: str
    features: list[dict[str, Any]]
    scaling: dict[str, Any]
    metrics: dict[str, Any] = Field(description="Held-out auc, ks, gini; iv per feature; the split.")
    params: dict[str, Any]
    data_from: datetime | None
    data_to: datetime | None
    drift: dict[str, Any] | None
    drift_at: datetime | None
    created_by: str
    created_at: datetime
    promoted_at: datetime | None
    retired_at: datetime | None


def read_model(row: CreditModel) -> ModelRead:
    return ModelRead(
        id=row.id, name=row.name, version=row.version, kind=ModelKind(row.kind), status=ModelStatus(row.status),
        dataset=row.dataset, features=list(row.features), scaling=dict(row.scaling), metrics=dict(row.metrics),
        params=dict(row.params), data_from=row.data_from, data_to=row.data_to, drift=row.drift, drift_at=row.drift_at,
        created_by=row.created_by, created_at=row.created_at, promoted_at=row.promoted_at, retired_at=row.retired_at)


class ModelPromote(Strict):
    to: Literal["champion", "challenger"]


class ScorecardBinRead(BaseModel):
    label: str
    points: float
    count: int
    woe: float
    event_rate: float


class ScorecardVariableRead(BaseModel):
    feature: str
    kind: str
    bins: list[ScorecardBinRead]
    missing_points: float
    best_points: float


class ScorecardRead(BaseModel):
    model_id: str
    scaling: dict[str, Any]
    variables: list[ScorecardVariableRead]


def read_scorecard(row: CreditModel) -> ScorecardRead:
    variables = [ScorecardVariableRead(
        feature=v["name"], kind=v["kind"], missing_points=round(v["missing_points"], 4),
        best_points=round(v["best_points"], 4),
        bins=[ScorecardBinRead(label=label, points=round(points, 4), count=count, woe=woe, event_rate=rate)
              for label, points, count, woe, rate in zip(v["labels"], v["points"], v["counts"], v["woe"],
                                                         v["event_rates"], strict=True)])
        for v in row.tables["variables"]]
    return ScorecardRead(model_id=row.id, scaling=dict(row.scaling), variables=variables)


class StabilityRead(BaseModel):
    model_id: str
    month: str | None
    since: str | None
    at: str
    scores: int
    psi: float | None
    level: str | None = Field(description="stable (< 0.1), moderate (0.1-0.25) or significant (> 0.25).")
    edges: list[float] | None = None
    expected: list[float] | None = None
    actual: list[float] | None = None


# ---------------------------------------------------------------------------------------------- rating policy


class BandWrite(Strict):
    rating: Literal["A", "B", "C", "D"]
    min_score: Annotated[int, Field(strict=True, ge=-100_000, le=100_000)]


class RatingPolicyWrite(Strict):
    bands: list[BandWrite] = Field(min_length=4, max_length=4,
                                   description="A, B, C and D in order, strictly decreasing min_score; below "
                                               "D's is a reject.")


class RatingPolicyRead(BaseModel):
    object: str = "credit_rating_policy"
    bands: list[dict[str, Any]]
    updated_by: str
    updated_at: datetime


def read_policy(row: RatingPolicy) -> RatingPolicyRead:
    return RatingPolicyRead(bands=list(row.bands), updated_by=row.updated_by, updated_at=row.updated_at)

