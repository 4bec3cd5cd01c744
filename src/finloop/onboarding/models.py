"""Onboarding tables: KYC / KYB profiles, their identifier blind indexes, their status history, the
verification attempts made through a connector, and each tenant's onboarding policy.

Invariants the database enforces: one profile per party (tenant, party kind, party id); a profile's status,
kind and tier are one of their closed sets; a profile's history is numbered 1, 2, ... without gaps or
repeats; a verification's check and status are one of their closed sets.
Invariants the service keeps: personal data (names, dates of birth, id and document numbers, phones,
beneficial owners) lives only in ``data_sealed``, sealed by the vault; the clear columns hold masked
displays, the country, the business type and keyed blind indexes (HMAC) used to find duplicates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import BigId, Json, UTCDateTime


class KycProfile(Base):
    """A party's onboarding: who it is (sealed), how it was verified, its status and its risk tier."""

    __tablename__ = "kyc_profiles"
    __table_args__ = (
        UniqueConstraint("tenant_id", "party_kind", "party_id"),
        CheckConstraint("party_kind IN ('customer', 'merchant', 'promoter')", name="party_kind_known"),
        CheckConstraint("profile_type IN ('individual', 'business')", name="profile_type_known"),
        CheckConstraint("status IN ('pending', 'verifying', 'in_review', 'approved', 'rejected', 'review_due')",
                        name="status_known"),
        CheckConstraint("risk_tier IS NULL OR risk_tier IN ('low', 'medium', 'high')", name="tier_known"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_kyc_profiles_tenant_status", "tenant_id", "status", "id"),
        Index("ix_kyc_profiles_review", "status", "next_review_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    profile_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20))
    #: Nationality (individual) or country of incorporation (business), ISO 3166 alpha-2.
    country: Mapped[str] = mapped_column(String(2))
    business_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: The party or one of its beneficial owners is a politically exposed person (declared).
    is_pep: Mapped[bool] = mapped_column(Boolean)
    #: The personal data as sealed JSON (vault purpose ``onboarding.profile``).
    data_sealed: Mapped[str] = mapped_column(Text)
    name_display: Mapped[str] = mapped_column(String(40))
    identifier_display: Mapped[str] = mapped_column(String(40))
    owners_count: Mapped[int] = mapped_column(Integer)
    risk_tier: Mapped[str | None] = mapped_column(String(10), nullable=True)
    #: [{factor, value, points, reason}] that made the tier.
    tier_reasons: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    #: [{code, message}]: why the profile waits for a review or was rejected.
    review_reasons: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    #: {check: {status, reason_code}} of the latest verification of each check.
    checks: Mapped[dict[str, Any]] = mapped_column(Json)
    screening_ids: Mapped[list[str]] = mapped_column(Json)
    decision_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    decision_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_review_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_review_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KycProfileKey(Base):
    """A keyed blind index of one identifier of a profile (national id, document, registration number):
    equal identifiers in one tenant have equal indexes, so a duplicate is found without decrypting."""

    __tablename__ = "kyc_profile_keys"
    __table_args__ = (
        CheckConstraint("kind IN ('national_id', 'document', 'registration')", name="kind_known"),
        Index("ix_kyc_profile_keys_lookup", "tenant_id", "kind", "blind_index"),
    )

    profile_id: Mapped[str] = mapped_column(ForeignKey("kyc_profiles.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    blind_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))


class KycTransition(Base):
    """One status change of a profile, in order."""

    __tablename__ = "kyc_profile_transitions"
    __table_args__ = (
        UniqueConstraint("profile_id", "seq"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index("ix_kyc_profile_transitions_tenant", "tenant_id", "profile_id", "seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    profile_id: Mapped[str] = mapped_column(ForeignKey("kyc_profiles.id"))
    seq: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(60))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Verification(Base):
    """One check of a profile through the verification connector: recorded before the call, answered after."""

    __tablename__ = "kyc_verifications"
    __table_args__ = (
        CheckConstraint("check_kind IN ('document', 'liveness', 'registry')", name="check_known"),
        CheckConstraint("status IN ('pending', 'passed', 'failed', 'unknown')", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_kyc_verifications_profile", "tenant_id", "profile_id", "id"),
        Index("ix_kyc_verifications_due", "status", "next_query_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    profile_id: Mapped[str] = mapped_column(ForeignKey("kyc_profiles.id"))
    check_kind: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    reason_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    provider_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OnboardingPolicy(Base):
    """A tenant's overrides of the shipped onboarding policy (gates, tier rules, limits, review intervals)."""

    __tablename__ = "onboarding_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
