"""Onboarding wire models. Personal data goes in and never comes out: responses carry masked displays only."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.types import no_nul, single_line
from finloop.onboarding.state import ProfileStatus, RiskTier

PartyId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(single_line)]
Identifier = Annotated[str, Field(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9 \-./]+$")]
Country = Annotated[str, Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$", examples=["CN"],
                               description="ISO 3166 alpha-2.")]
BusinessType = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$",
                                    examples=["retail", "money_services"])]


class PartyKind(StrEnum):
    CUSTOMER = "customer"
    MERCHANT = "merchant"
    PROMOTER = "promoter"


class DocumentType(StrEnum):
    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    DRIVING_LICENCE = "driving_licence"
    RESIDENCE_PERMIT = "residence_permit"


class IndividualData(BaseModel):
    """A person (KYC). Sealed at rest; shown masked."""

    model_config = ConfigDict(extra="forbid")

    legal_name: Name
    date_of_birth: date
    nationality: Country
    national_id: Identifier
    document_type: DocumentType
    document_number: Identifier
    phone: Annotated[str, Field(min_length=6, max_length=24, pattern=r"^\+?[0-9 \-]+$")] | None = None
    is_pep: Annotated[bool, Field(strict=True, description="A politically exposed person (declared).")] = False


class BeneficialOwner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    date_of_birth: date
    nationality: Country
    ownership_percent: Annotated[int, Field(ge=1, le=100, strict=True)]
    is_pep: Annotated[bool, Field(strict=True)] = False


class BusinessData(BaseModel):
    """A company (KYB) and its beneficial owners, each screened. Sealed at rest; shown masked."""

    model_config = ConfigDict(extra="forbid")

    registered_name: Name
    registration_number: Identifier
    country: Country = Field(description="Country of incorporation.")
    business_type: BusinessType
    beneficial_owners: Annotated[list[BeneficialOwner], Field(max_length=20)] = []


class ProfileCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party_kind: PartyKind
    party_id: PartyId
    individual: IndividualData | None = Field(default=None, description="Customers and promoters (KYC).")
    business: BusinessData | None = Field(default=None, description="Merchants and promoters (KYB).")


class DocumentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_type: DocumentType
    document_number: Identifier


class Reverify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: DocumentUpdate | None = Field(default=None, description="A new identity document (individuals).")


class ProfileReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: Annotated[str, Field(max_length=4000), AfterValidator(no_nul)] = ""


class TierFactor(BaseModel):
    factor: str
    value: str
    points: int
    reason: str


class ReviewReason(BaseModel):
    code: str
    message: str


class CheckRead(BaseModel):
    verification_id: str
    status: str
    reason_code: str | None


class TransitionRead(BaseModel):
    seq: int
    from_status: ProfileStatus | None
    to_status: ProfileStatus
    reason: str
    actor: str
    at: datetime


class VerificationRead(BaseModel):
    id: str
    object: str = "verification"
    check: str
    provider: str
    status: str
    reason_code: str | None
    attempts: int
    next_query_at: datetime | None
    requested_at: datetime
    completed_at: datetime | None


class ProfileRead(BaseModel):
    id: str
    object: str = "kyc_profile"
    party_kind: PartyKind
    party_id: str
    profile_type: Literal["individual", "business"]
    status: ProfileStatus
    is_verified: bool = Field(description="approved or review_due: the party may be paid out to.")
    name: str = Field(description="Masked.")
    identifier: str = Field(description="The document or registration number, masked.")
    country: str
    business_type: str | None
    is_pep: bool
    beneficial_owners: int
    risk_tier: RiskTier | None
    tier_reasons: list[TierFactor]
    review_reasons: list[ReviewReason]
    checks: dict[str, CheckRead]
    screening_ids: list[str]
    decision_id: str | None
    case_id: str | None
    verified_at: datetime | None
    next_review_at: datetime | None
    last_review_on: date | None
    created_at: datetime
    updated_at: datetime


class ProfileDetail(ProfileRead):
    history: list[TransitionRead]
    verifications: list[VerificationRead]


class Gate(StrEnum):
    REQUIRED = "required"
    OFF = "off"


class TierLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_payout: Annotated[int, Field(ge=1, le=10**15, strict=True)] | None = None
    daily: Annotated[int, Field(ge=1, le=10**15, strict=True,
                                description="Per rolling 24 hours, minor units.")] | None = None


class PolicyUpdate(BaseModel):
    """Changes to the tenant's onboarding policy; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    payout_gate: Gate | None = None
    withdrawal_gate: Gate | None = None
    screen_beneficiaries: Annotated[bool, Field(strict=True)] | None = None
    provider: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    review_months: dict[Literal["low", "medium", "high"], Annotated[int, Field(ge=1, le=120, strict=True)]] | None = \
        None
    high_risk_countries: Annotated[list[Country], Field(max_length=300)] | None = None
    medium_risk_countries: Annotated[list[Country], Field(max_length=300)] | None = None
    high_risk_business_types: Annotated[list[BusinessType], Field(max_length=100)] | None = None
    medium_risk_business_types: Annotated[list[BusinessType], Field(max_length=100)] | None = None
    decision_score_points_from: Annotated[int, Field(ge=1, le=1_000_000, strict=True)] | None = None
    limits: dict[Annotated[str, Field(pattern=r"^[A-Z]{3}$")],
                 dict[Literal["low", "medium", "high"], TierLimits]] | None = Field(
        default=None, description="Payout limits by currency and tier, minor units; replaces the whole map.")


class PolicyRead(BaseModel):
    object: str = "onboarding_policy"
    payout_gate: Gate
    withdrawal_gate: Gate
    screen_beneficiaries: bool
    provider: str
    review_months: dict[str, int]
    high_risk_countries: list[str]
    medium_risk_countries: list[str]
    high_risk_business_types: list[str]
    medium_risk_business_types: list[str]
    decision_score_points_from: int
    limits: dict[str, dict[str, dict[str, Any]]]
