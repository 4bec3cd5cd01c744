"""Onboarding HTTP endpoints: KYC / KYB profiles, their re-verification and review, and the tenant's policy.

Submitting and re-verifying need ``onboarding.submit``; reviewing a profile and changing the policy need
``onboarding.review``. Reads need any key of the tenant; another tenant's profile is a 404. Personal data is
accepted, sealed, and never returned: responses carry masked displays.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.db.uow import UnitOfWork
from finloop.onboarding import flows, service
from finloop.onboarding.domain import Policy
from finloop.onboarding.models import KycProfile, KycTransition, Verification
from finloop.onboarding.schemas import (
    CheckRead,
    PartyId,
    PartyKind,
    PolicyRead,
    PolicyUpdate,
    ProfileCreate,
    ProfileDetail,
    ProfileRead,
    ProfileReview,
    Reverify,
    ReviewReason,
    TierFactor,
    TransitionRead,
    VerificationRead,
)
from finloop.onboarding.state import VERIFIED, ProfileStatus, RiskTier

router = APIRouter(tags=["onboarding"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
SUBMIT = "onboarding.submit"
REVIEW = "onboarding.review"


def read_profile(profile: KycProfile) -> ProfileRead:
    return ProfileRead(
        id=profile.id, party_kind=PartyKind(profile.party_kind), party_id=profile.party_id,
        profile_type=profile.profile_type,
        status=ProfileStatus(profile.status), is_verified=ProfileStatus(profile.status) in VERIFIED,
        name=profile.name_display, identifier=profile.identifier_display, country=profile.country,
        business_type=profile.business_type, is_pep=profile.is_pep, beneficial_owners=profile.owners_count,
        risk_tier=RiskTier(profile.risk_tier) if profile.risk_tier else None,
        tier_reasons=[TierFactor.model_validate(r) for r in profile.tier_reasons],
        review_reasons=[ReviewReason.model_validate(r) for r in profile.review_reasons],
        checks={k: CheckRead.model_validate(v) for k, v in profile.checks.items()},
        screening_ids=list(profile.screening_ids), decision_id=profile.decision_id, case_id=profile.case_id,
        verified_at=profile.verified_at, next_review_at=profile.next_review_at, last_review_on=profile.last_review_on,
        created_at=profile.created_at, updated_at=profile.updated_at)


def read_transition(row: KycTransition) -> TransitionRead:
    return TransitionRead(seq=row.seq, from_status=ProfileStatus(row.from_status) if row.from_status else None,
                          to_status=ProfileStatus(row.to_status), reason=row.reason, actor=row.actor, at=row.at)


def read_verification(row: Verification) -> VerificationRead:
    return VerificationRead(id=row.id, check=row.check_kind, provider=row.provider, status=row.status,
                            reason_code=row.reason_code, attempts=row.attempts, next_query_at=row.next_query_at,
                            requested_at=row.requested_at, completed_at=row.completed_at)


def read_detail(uow: UnitOfWork, profile: KycProfile) -> ProfileDetail:
    return ProfileDetail(**read_profile(profile).model_dump(),
                         history=[read_transition(t) for t in service.history(uow, profile)],
                         verifications=[read_verification(v) for v in service.verifications(uow, profile)])


def read_policy(policy: Policy) -> PolicyRead:
    return PolicyRead.model_validate(policy.to_json())


@router.post("/onboarding/profiles", response_model=ProfileDetail, status_code=201,
             summary="Submit a party's KYC / KYB profile: verified, screened and decided at once",
             responses={409: {"description": "profile_exists: the party has a profile that is not rejected"}})
def create_profile(body: ProfileCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    created: list[str] = []

    def flow() -> None:
        created.append(flows.submit(
            writer.db, writer.tenant_id, party_kind=body.party_kind.value, party_id=body.party_id,
            individual=body.individual.model_dump(mode="json") if body.individual else None,
            business=body.business.model_dump(mode="json") if body.business else None,
            actor=writer.principal.actor))

    return writer.run_flow(flow, lambda uow: read_detail(uow, service.get_profile(uow, writer.tenant_id, created[0])),
                           permission=SUBMIT, status_code=201)


@router.get("/onboarding/profiles", response_model=Page[ProfileRead], summary="List profiles, newest first")
def list_profiles(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  status: Annotated[ProfileStatus | None, Query()] = None,
                  risk_tier: Annotated[RiskTier | None, Query()] = None,
                  party_kind: Annotated[PartyKind | None, Query()] = None,
                  party_id: Annotated[PartyId | None, Query()] = None) -> Page[ProfileRead]:
    return reader.run(lambda uow: page(service.list_profiles(
        uow, reader.tenant_id, status=status.value if status else None,
        risk_tier=risk_tier.value if risk_tier else None, party_kind=party_kind.value if party_kind else None,
        party_id=party_id, after=starting_after, limit=limit), limit, read_profile, lambda p: p.id))


@router.get("/onboarding/profiles/{profile_id}", response_model=ProfileDetail,
            summary="Get a profile with its history and verifications")
def get_profile(profile_id: Id, reader: CurrentReader) -> ProfileDetail:
    return reader.run(lambda uow: read_detail(uow, service.get_profile(uow, reader.tenant_id, profile_id)))


@router.post("/onboarding/profiles/{profile_id}/reverify", response_model=ProfileDetail,
             summary="Verify an approved or review-due profile again (optionally with a new document)",
             responses={409: {"description": "profile_state_conflict"}})
def reverify_profile(profile_id: Id, body: Reverify, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def flow() -> None:
        flows.reverify(writer.db, writer.tenant_id, profile_id, actor=writer.principal.actor,
                       document=body.document.model_dump(mode="json") if body.document else None)

    return writer.run_flow(flow, lambda uow: read_detail(uow, service.get_profile(uow, writer.tenant_id, profile_id)),
                           permission=SUBMIT)


@router.post("/onboarding/profiles/{profile_id}/review", response_model=ProfileDetail,
             summary="Approve or reject a profile in review (closes its case)",
             responses={409: {"description": "profile_state_conflict: the profile is not in review"}})
def review_profile(profile_id: Id, body: ProfileReview, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_detail(uow, service.review_profile(
        uow, writer.tenant_id, profile_id, decision=body.decision, actor=writer.principal.actor, note=body.note)),
        permission=REVIEW)


@router.get("/onboarding/policy", response_model=PolicyRead,
            summary="The tenant's onboarding policy: gates, tier rules, payout limits by tier, review intervals")
def get_policy(reader: CurrentReader) -> PolicyRead:
    return reader.run(lambda uow: read_policy(service.get_policy(uow, reader.tenant_id)))


@router.patch("/onboarding/policy", response_model=PolicyRead, summary="Change the tenant's onboarding policy")
def set_policy(body: PolicyUpdate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_policy(service.set_policy(
        uow, writer.tenant_id, changes=body.model_dump(mode="json", exclude_none=True),
        actor=writer.principal.actor)), permission=REVIEW)
