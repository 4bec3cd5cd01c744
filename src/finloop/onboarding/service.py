"""Onboarding use cases that fit in one transaction. Every function takes a unit of work and never commits.

Invariants owned here:
- a profile's status changes only along ``state.TRANSITIONS`` (an illegal move is a 409), under its row
  lock, and every change appends a numbered transition (from, to, reason, actor, time);
- personal data is sealed by the vault (purpose ``onboarding.profile``) in the transaction that records it;
  only masked displays, the country, the business type and keyed blind indexes are stored in clear, and
  nothing personal reaches a log line, an audit record, an error message or a risk decision in clear;
- a connector call is never made here: ``begin_*`` records the verifications (pending) and returns what to
  send; ``apply_result`` applies an answer; ``complete`` runs the remaining steps (screening of the party
  and of each beneficial owner, duplicate identifiers, the registration decision, the tier) once every
  check has a final answer;
- a profile waiting for a review has exactly one open case (object type ``kyc_profile``); closing it moves
  the profile (``resolve_case``, registered with the case service) and reviews the screenings it held;
- a party is *verified* while its profile is ``approved`` or ``review_due``; the payout gate asks
  ``require_verified``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, LimitExceeded, NotFound
from finloop.db.uow import UnitOfWork
from finloop.onboarding import domain
from finloop.onboarding.connectors.base import (
    CheckKind,
    CheckOutcome,
    CheckResult,
    CompanyLookup,
    DocumentCheck,
    LivenessCheck,
)
from finloop.onboarding.domain import Policy, TierInputs
from finloop.onboarding.models import KycProfile, KycProfileKey, KycTransition, OnboardingPolicy, Verification
from finloop.onboarding.state import (
    REVERIFIABLE,
    VERIFIED,
    ProfileStatus,
    VerificationStatus,
    check_move,
)

log = structlog.get_logger("finloop.onboarding")

DATA_PURPOSE = "onboarding.profile"
OBJECT_TYPE = "kyc_profile"
PARTY_KINDS = ("customer", "merchant", "promoter")
PROFILE_TYPES = ("individual", "business")
DOCUMENT_TYPES = ("passport", "national_id", "driving_licence", "residence_permit")
SYSTEM_ACTOR = "system:onboarding"
MAX_OWNERS = 20
#: Seconds before query n (1-based) of a check whose answer is unknown.
QUERY_LADDER_SECONDS = (30, 120, 600, 1800, 3600)
#: Reason codes of failed checks that a person should look at rather than reject outright.
REVIEWABLE_FAILURES = frozenset({"data_mismatch", "name_mismatch"})
_PARTY_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class PartyNotVerified(LimitExceeded):
    """A payout or withdrawal to a party that is not verified (422)."""

    code = "party_not_verified"


# ---------------------------------------------------------------------------------------------- policy


def get_policy(uow: UnitOfWork, tenant_id: str) -> Policy:
    row = uow.session.get(OnboardingPolicy, tenant_id)
    return Policy() if row is None else Policy.from_json(row.config)


def set_policy(uow: UnitOfWork, tenant_id: str, *, changes: Mapping[str, Any], actor: str) -> Policy:
    """Merge ``changes`` into the tenant's stored overrides; a bad value is a 400 with nothing written."""
    changes = {k: v for k, v in changes.items() if v is not None}
    problems = domain.check_policy(changes)
    if problems:
        param, message = problems[0]
        raise InvalidRequest(message, code="invalid_policy", param=param)
    if "provider" in changes:
        from finloop.onboarding.connectors import registry

        if changes["provider"] not in registry.providers():
            raise InvalidRequest(f"Unknown verification provider {changes['provider']!r}.", code="invalid_policy",
                                 param="provider")
    row = uow.session.get(OnboardingPolicy, tenant_id)
    before = dict(row.config) if row is not None else {}
    merged = {**before, **changes}
    policy = Policy.from_json(merged)
    now = uow.clock.now()
    if row is None:
        uow.session.add(OnboardingPolicy(tenant_id=tenant_id, config=merged, updated_by=actor[:60], updated_at=now))
    else:
        row.config, row.updated_by, row.updated_at = merged, actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="onboarding.policy_changed", object_type="onboarding_policy",
                 object_id=tenant_id, before=before, after=merged)
    return policy


# ---------------------------------------------------------------------------------------------- blind index

def _index_key(uow: UnitOfWork, tenant_id: str) -> bytes:
    """HMAC(vault fingerprint key, label ‖ tenant): never rotated, so indexes stay valid."""
    from finloop.vault import service as vault

    key = vault.cached_index_key(uow, b"finloop.onboarding.blind-index\x00" + tenant_id.encode())
    assert key is not None  # made on first use
    return key


def forget_keys() -> None:
    from finloop.vault import service as vault

    vault.forget_index_keys()


def blind_index(uow: UnitOfWork, tenant_id: str, kind: str, *parts: str) -> str:
    """64 hex characters: HMAC-SHA256 of the kind and the normalised parts under the tenant's key."""
    message = "\x00".join([kind, *(domain.normalize_identifier(p) for p in parts)]).encode()
    return hmac.new(_index_key(uow, tenant_id), message, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------- input checks


def _bad(message: str, param: str, code: str = "invalid_profile") -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)


def _text(data: Mapping[str, Any], key: str, *, param: str, low: int, high: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not low <= len(value.strip()) <= high or not value.strip().isprintable():
        raise _bad(f"{key} is {low}-{high} printable characters.", param)
    return value.strip()


def _identifier(data: Mapping[str, Any], key: str, *, param: str) -> str:
    value = _text(data, key, param=param, low=3, high=40)
    normalized = domain.normalize_identifier(value)
    if not 3 <= len(normalized) <= 40 or not normalized.isalnum() or not normalized.isascii():
        raise _bad(f"{key} is 3-40 letters and digits (spaces, dashes, dots and slashes are ignored).", param)
    return normalized


def _country(data: Mapping[str, Any], key: str, *, param: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not domain.COUNTRY.match(value):
        raise _bad(f"{key} is an ISO 3166 alpha-2 code in capitals, such as CN.", param)
    return value


def _birth_date(data: Mapping[str, Any], key: str, *, param: str, today: date) -> str:
    value = data.get(key)
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, date) or isinstance(value, datetime) or not date(1900, 1, 1) <= value < today:
        raise _bad(f"{key} is a date (YYYY-MM-DD) after 1900-01-01 and before today.", param)
    return value.isoformat()


def _flag(data: Mapping[str, Any], key: str, *, param: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _bad(f"{key} is true or false.", param)
    return value


def check_individual(data: Mapping[str, Any], *, today: date) -> dict[str, Any]:
    """The person's data, checked and normalised (what is sealed)."""
    if not isinstance(data, Mapping):
        raise _bad("individual is an object.", "individual")
    document_type = data.get("document_type")
    if document_type not in DOCUMENT_TYPES:
        raise _bad(f"document_type is one of {', '.join(DOCUMENT_TYPES)}.", "individual.document_type")
    phone = data.get("phone")
    if phone is not None:
        digits = phone.replace(" ", "").replace("-", "") if isinstance(phone, str) else ""
        if not ((digits.startswith("+") and digits[1:].isdigit()) or digits.isdigit()) or not 6 <= len(digits) <= 20:
            raise _bad("phone is 6-20 digits, optionally after a '+'.", "individual.phone")
        phone = digits
    return {
        "legal_name": _text(data, "legal_name", param="individual.legal_name", low=1, high=200),
        "date_of_birth": _birth_date(data, "date_of_birth", param="individual.date_of_birth", today=today),
        "nationality": _country(data, "nationality", param="individual.nationality"),
        "national_id": _identifier(data, "national_id", param="individual.national_id"),
        "document_type": document_type,
        "document_number": _identifier(data, "document_number", param="individual.document_number"),
        "phone": phone,
        "is_pep": _flag(data, "is_pep", param="individual.is_pep"),
    }


def check_business(data: Mapping[str, Any], *, today: date) -> dict[str, Any]:
    """The company's data and its beneficial owners, checked and normalised (what is sealed)."""
    if not isinstance(data, Mapping):
        raise _bad("business is an object.", "business")
    business_type = data.get("business_type")
    if not isinstance(business_type, str) or not domain.BUSINESS_TYPE.match(business_type):
        raise _bad("business_type is lower_snake text such as retail or money_services.", "business.business_type")
    owners_in = data.get("beneficial_owners", [])
    if not isinstance(owners_in, Sequence) or isinstance(owners_in, str) or len(owners_in) > MAX_OWNERS:
        raise _bad(f"beneficial_owners is a list of at most {MAX_OWNERS} owners.", "business.beneficial_owners")
    owners: list[dict[str, Any]] = []
    total = 0
    for index, owner in enumerate(owners_in):
        param = f"business.beneficial_owners[{index}]"
        if not isinstance(owner, Mapping):
            raise _bad("A beneficial owner is an object.", param)
        share = owner.get("ownership_percent")
        if isinstance(share, bool) or not isinstance(share, int) or not 1 <= share <= 100:
            raise _bad("ownership_percent is an integer of 1-100.", f"{param}.ownership_percent")
        total += share
        owners.append({"name": _text(owner, "name", param=f"{param}.name", low=1, high=200),
                       "date_of_birth": _birth_date(owner, "date_of_birth", param=f"{param}.date_of_birth",
                                                    today=today),
                       "nationality": _country(owner, "nationality", param=f"{param}.nationality"),
                       "ownership_percent": share, "is_pep": _flag(owner, "is_pep", param=f"{param}.is_pep")})
    if total > 100:
        raise _bad("The beneficial owners hold more than 100 percent together.", "business.beneficial_owners")
    return {
        "registered_name": _text(data, "registered_name", param="business.registered_name", low=1, high=200),
        "registration_number": _identifier(data, "registration_number", param="business.registration_number"),
        "country": _country(data, "country", param="business.country"),
        "business_type": business_type,
        "beneficial_owners": owners,
    }


def check_party(uow: UnitOfWork, tenant_id: str, party_kind: str, party_id: str) -> str:
    """The party kind, after making sure the party exists in the tenant (404 otherwise)."""
    if party_kind not in PARTY_KINDS:
        raise InvalidRequest("party_kind is customer, merchant or promoter.", code="invalid_party_kind",
                             param="party_kind")
    if not isinstance(party_id, str) or not 1 <= len(party_id) <= 40 or not set(party_id) <= _PARTY_ID_CHARS:
        raise InvalidRequest("party_id is 1 to 40 letters, digits, '_' or '-'.", code="invalid_party_id",
                             param="party_id")
    if party_kind == "merchant":
        from finloop.payments import service as payments

        payments.get_merchant(uow, tenant_id, party_id, param="party_id")
    elif party_kind == "customer":
        from finloop.payments import service as payments

        payments.get_customer(uow, tenant_id, party_id, param="party_id")
    else:
        from finloop.splits import service as splits

        splits.get_promoter(uow, tenant_id, party_id, param="party_id")
    return party_kind


# ---------------------------------------------------------------------------------------------- records


def _seal(uow: UnitOfWork, tenant_id: str, data: Mapping[str, Any]) -> str:
    from finloop.vault import service as vault

    return vault.seal_secret(uow, tenant_id, json.dumps(data, sort_keys=True).encode(), purpose=DATA_PURPOSE)


def personal_data(uow: UnitOfWork, profile: KycProfile) -> dict[str, Any]:
    """The profile's personal data in clear: for the connector's requests and the screenings only."""
    from finloop.vault import service as vault

    data: dict[str, Any] = json.loads(vault.unseal_secret(uow, profile.tenant_id, profile.data_sealed,
                                                          purpose=DATA_PURPOSE))
    return data


def _move(uow: UnitOfWork, profile: KycProfile, target: ProfileStatus, *, reason: str, actor: str) -> None:
    check_move(profile.status, target, profile.id)
    _record(uow, profile, profile.status, target, reason=reason, actor=actor)


def _record(uow: UnitOfWork, profile: KycProfile, source: str | None, target: ProfileStatus, *, reason: str,
            actor: str) -> None:
    last = uow.session.scalar(select(func.max(KycTransition.seq)).where(KycTransition.profile_id == profile.id))
    now = uow.clock.now()
    uow.session.add(KycTransition(tenant_id=profile.tenant_id, profile_id=profile.id, seq=(last or 0) + 1,
                                  from_status=source, to_status=target.value, reason=reason[:200], actor=actor[:60],
                                  at=now))
    profile.status = target.value
    profile.updated_at = now
    profile.version += 1
    uow.session.flush()
    log.info("onboarding.profile_moved", tenant_id=profile.tenant_id, profile_id=profile.id, status=target.value)


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """A call to make to the verification connector, outside any transaction."""

    verification_id: str
    kind: CheckKind
    request: DocumentCheck | LivenessCheck | CompanyLookup


def _checks_for(profile_type: str) -> tuple[CheckKind, ...]:
    if profile_type == "individual":
        return CheckKind.DOCUMENT, CheckKind.LIVENESS
    return (CheckKind.REGISTRY,)


def _new_verifications(uow: UnitOfWork, profile: KycProfile, provider: str) -> list[Verification]:
    now = uow.clock.now()
    rows = [Verification(id=uow.ids.new("verification"), tenant_id=profile.tenant_id, profile_id=profile.id,
                         check_kind=kind.value, provider=provider, status=VerificationStatus.PENDING.value,
                         reason_code=None, provider_ref=None, attempts=0, next_query_at=None, requested_at=now,
                         completed_at=None)
            for kind in _checks_for(profile.profile_type)]
    uow.session.add_all(rows)
    profile.checks = {row.check_kind: {"verification_id": row.id, "status": row.status, "reason_code": None}
                      for row in rows}
    uow.session.flush()
    return rows


def check_request(uow: UnitOfWork, profile: KycProfile, verification: Verification,
                  data: Mapping[str, Any] | None = None) -> CheckRequest:
    """What to send for one verification (built from the sealed data; kept in memory only)."""
    data = data if data is not None else personal_data(uow, profile)
    kind = CheckKind(verification.check_kind)
    request: DocumentCheck | LivenessCheck | CompanyLookup
    if kind is CheckKind.DOCUMENT:
        request = DocumentCheck(reference=verification.id, legal_name=data["legal_name"],
                                date_of_birth=date.fromisoformat(data["date_of_birth"]),
                                nationality=data["nationality"], document_type=data["document_type"],
                                document_number=data["document_number"])
    elif kind is CheckKind.LIVENESS:
        request = LivenessCheck(reference=verification.id, legal_name=data["legal_name"],
                                document_number=data["document_number"])
    else:
        request = CompanyLookup(reference=verification.id, registered_name=data["registered_name"],
                                registration_number=data["registration_number"], country=data["country"])
    return CheckRequest(verification.id, kind, request)


def _keys_of(uow: UnitOfWork, tenant_id: str, profile_type: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    if profile_type == "individual":
        return [("national_id", blind_index(uow, tenant_id, "national_id", data["nationality"], data["national_id"])),
                ("document", blind_index(uow, tenant_id, "document", data["nationality"], data["document_type"],
                                         data["document_number"]))]
    return [("registration", blind_index(uow, tenant_id, "registration", data["country"],
                                         data["registration_number"]))]


def _store_data(uow: UnitOfWork, profile: KycProfile, data: Mapping[str, Any]) -> None:
    """Seal the data and set the clear columns (masked displays, country, business type, PEP flag)."""
    individual = profile.profile_type == "individual"
    owners = [] if individual else data["beneficial_owners"]
    profile.data_sealed = _seal(uow, profile.tenant_id, data)
    profile.country = data["nationality"] if individual else data["country"]
    profile.business_type = None if individual else data["business_type"]
    profile.is_pep = bool(data["is_pep"]) if individual else any(o["is_pep"] for o in owners)
    profile.name_display = domain.mask_name(data["legal_name"] if individual else data["registered_name"])
    profile.identifier_display = domain.mask_identifier(
        data["document_number"] if individual else data["registration_number"])
    profile.owners_count = len(owners)


def _replace_keys(uow: UnitOfWork, profile: KycProfile, data: Mapping[str, Any]) -> None:
    """Replace the profile's blind indexes (the profile row is flushed first)."""
    for old in uow.session.scalars(select(KycProfileKey).where(KycProfileKey.profile_id == profile.id)).all():
        uow.session.delete(old)
    uow.session.flush()
    for kind, index in sorted(set(_keys_of(uow, profile.tenant_id, profile.profile_type, data))):
        uow.session.add(KycProfileKey(profile_id=profile.id, kind=kind, blind_index=index,
                                      tenant_id=profile.tenant_id))
    uow.session.flush()


def _profile_type(party_kind: str, individual: Any, business: Any) -> str:
    if (individual is None) == (business is None):
        raise InvalidRequest("Give exactly one of individual (KYC) or business (KYB).", code="profile_data_required",
                             param="individual")
    profile_type = "individual" if individual is not None else "business"
    allowed = {"customer": ("individual",), "merchant": ("business",), "promoter": PROFILE_TYPES}[party_kind]
    if profile_type not in allowed:
        raise InvalidRequest(f"A {party_kind} is onboarded as {' or '.join(allowed)}.", code="profile_type_mismatch",
                             param=profile_type)
    return profile_type


def begin_submission(uow: UnitOfWork, tenant_id: str, *, party_kind: str, party_id: str,
                     individual: Mapping[str, Any] | None = None, business: Mapping[str, Any] | None = None,
                     actor: str) -> tuple[KycProfile, list[CheckRequest]]:
    """Record a party's profile (or a rejected profile's resubmission) and its verifications: the profile is
    ``verifying`` and the returned requests are to be sent once this transaction has committed.

    Bad input is a 400 with nothing written; a party whose profile is not rejected is a 409."""
    kind = check_party(uow, tenant_id, party_kind, party_id)
    profile_type = _profile_type(kind, individual, business)
    today = uow.clock.now().date()
    data = check_individual(individual, today=today) if individual is not None else \
        check_business(business or {}, today=today)
    policy = get_policy(uow, tenant_id)
    profile = uow.session.scalar(select(KycProfile).where(
        KycProfile.tenant_id == tenant_id, KycProfile.party_kind == kind, KycProfile.party_id == party_id)
        .with_for_update())
    now = uow.clock.now()
    if profile is not None and profile.status != ProfileStatus.REJECTED.value:
        raise Conflict(f"The party already has profile {profile.id} ({profile.status}); re-verify it instead.",
                       code="profile_exists", param="party_id", details={"profile_id": profile.id,
                                                                         "status": profile.status})
    if profile is None:
        profile = KycProfile(id=uow.ids.new("kyc_profile"), tenant_id=tenant_id, party_kind=kind, party_id=party_id,
                             profile_type=profile_type, status=ProfileStatus.PENDING.value, risk_tier=None,
                             tier_reasons=[], review_reasons=[], checks={}, screening_ids=[], decision_id=None,
                             decision_score=None, case_id=None, verified_at=None, next_review_at=None,
                             last_review_on=None, submitted_by=actor[:60], version=1, created_at=now, updated_at=now)
        _store_data(uow, profile, data)
        try:
            with uow.session.begin_nested():
                uow.session.add(profile)
        except IntegrityError:  # a concurrent submission for the same party won
            raise Conflict("The party's profile was just submitted by another request.", code="profile_exists",
                           param="party_id") from None
        _replace_keys(uow, profile, data)
        _record(uow, profile, None, ProfileStatus.PENDING, reason="submitted", actor=actor)
    else:
        profile.profile_type = profile_type
        _store_data(uow, profile, data)
        _replace_keys(uow, profile, data)
        profile.review_reasons, profile.risk_tier, profile.tier_reasons = [], None, []
        profile.screening_ids, profile.decision_id, profile.decision_score, profile.case_id = [], None, None, None
        profile.submitted_by = actor[:60]
        _move(uow, profile, ProfileStatus.PENDING, reason="resubmitted", actor=actor)
    _move(uow, profile, ProfileStatus.VERIFYING, reason="verification requested", actor=actor)
    rows = _new_verifications(uow, profile, policy.provider)
    audit.record(uow, tenant_id, actor=actor, action="onboarding.profile_submitted", object_type=OBJECT_TYPE,
                 object_id=profile.id, after={"party_kind": kind, "party_id": party_id, "profile_type": profile_type,
                                              "country": profile.country, "checks": [r.check_kind for r in rows]})
    return profile, [check_request(uow, profile, row, data) for row in rows]


def begin_reverification(uow: UnitOfWork, tenant_id: str, profile_id: str, *, actor: str,
                         document: Mapping[str, Any] | None = None) -> tuple[KycProfile, list[CheckRequest]]:
    """Re-verify an approved or review-due profile (optionally with a new identity document): ``verifying``,
    with new verifications to send once committed. Any other status is a 409."""
    profile = get_profile(uow, tenant_id, profile_id, lock=True)
    if ProfileStatus(profile.status) not in REVERIFIABLE:
        check_move(profile.status, ProfileStatus.VERIFYING, profile.id)
    data = personal_data(uow, profile)
    if document is not None:
        if profile.profile_type != "individual":
            raise InvalidRequest("Only an individual's profile carries an identity document.",
                                 code="profile_type_mismatch", param="document")
        data = check_individual({**data, **document}, today=uow.clock.now().date())
        _store_data(uow, profile, data)
        _replace_keys(uow, profile, data)
    _move(uow, profile, ProfileStatus.VERIFYING, reason="re-verification requested", actor=actor)
    profile.review_reasons = []
    rows = _new_verifications(uow, profile, get_policy(uow, tenant_id).provider)
    audit.record(uow, tenant_id, actor=actor, action="onboarding.profile_reverification", object_type=OBJECT_TYPE,
                 object_id=profile.id, after={"checks": [r.check_kind for r in rows],
                                              "new_document": document is not None})
    return profile, [check_request(uow, profile, row, data) for row in rows]


# ---------------------------------------------------------------------------------------------- answers


def get_verification(uow: UnitOfWork, tenant_id: str, verification_id: str, *, lock: bool = False) -> Verification:
    query = select(Verification).where(Verification.tenant_id == tenant_id, Verification.id == verification_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound("No such verification.", code="verification_not_found", param="verification_id")
    return row


def apply_result(uow: UnitOfWork, verification: Verification, result: CheckResult) -> VerificationStatus:
    """Apply a connector's answer, forward only: a final verification never changes; an unknown answer (or
    a query that found nothing) waits for the next query on a backoff ladder."""
    if verification.status in (VerificationStatus.PASSED.value, VerificationStatus.FAILED.value):
        return VerificationStatus(verification.status)
    now = uow.clock.now()
    verification.attempts += 1
    if result.provider_ref:
        verification.provider_ref = result.provider_ref[:100]
    if result.outcome is CheckOutcome.PASSED:
        verification.status, verification.reason_code = VerificationStatus.PASSED.value, None
    elif result.outcome is CheckOutcome.FAILED:
        verification.status = VerificationStatus.FAILED.value
        verification.reason_code = (result.reason_code or "failed")[:60]
    else:
        verification.status = VerificationStatus.UNKNOWN.value
        verification.reason_code = (result.reason_code or result.outcome.value)[:60]
        ladder = QUERY_LADDER_SECONDS
        verification.next_query_at = now + timedelta(seconds=ladder[min(verification.attempts, len(ladder)) - 1])
        log.info("onboarding.check_unknown", tenant_id=verification.tenant_id, verification_id=verification.id,
                 attempts=verification.attempts)
        return VerificationStatus.UNKNOWN
    verification.next_query_at = None
    verification.completed_at = now
    return VerificationStatus(verification.status)


def due_verifications(uow: UnitOfWork, *, now: datetime, limit: int) -> list[tuple[str, str]]:
    """(tenant, verification id) of checks whose answer is unknown and whose next query is due."""
    rows = uow.session.execute(select(Verification.tenant_id, Verification.id).where(
        Verification.status == VerificationStatus.UNKNOWN.value, Verification.next_query_at <= now)
        .order_by(Verification.next_query_at, Verification.id).limit(limit)).all()
    return [(t, v) for t, v in rows]


def _current(uow: UnitOfWork, profile: KycProfile) -> list[Verification]:
    ids = [c["verification_id"] for c in profile.checks.values()]
    if not ids:
        return []
    return list(uow.session.scalars(select(Verification).where(Verification.id.in_(ids)).order_by(Verification.id)))


# ---------------------------------------------------------------------------------------------- completion


def complete(uow: UnitOfWork, profile: KycProfile, *, actor: str = SYSTEM_ACTOR) -> ProfileStatus:
    """Once every check of a ``verifying`` profile has a final answer: reject on a failed check; otherwise
    screen the party (and each beneficial owner), look for duplicate identifiers, decide the registration
    through the risk engine and compute the tier; approve, or open a case and wait in review. Does nothing
    while an answer is missing. The profile must be locked by the caller."""
    if profile.status != ProfileStatus.VERIFYING.value:
        return ProfileStatus(profile.status)
    current = _current(uow, profile)
    profile.checks = {v.check_kind: {"verification_id": v.id, "status": v.status, "reason_code": v.reason_code}
                      for v in current}
    if any(v.status not in (VerificationStatus.PASSED.value, VerificationStatus.FAILED.value) for v in current):
        return ProfileStatus.VERIFYING
    failures = [v for v in current if v.status == VerificationStatus.FAILED.value]
    hard = [v for v in failures if v.reason_code not in REVIEWABLE_FAILURES]
    if hard:
        profile.review_reasons = [{"code": v.reason_code, "message": f"The {v.check_kind} check failed."}
                                  for v in hard]
        _move(uow, profile, ProfileStatus.REJECTED, reason=f"{hard[0].check_kind} check failed: {hard[0].reason_code}",
              actor=actor)
        _audit_outcome(uow, profile, actor)
        return ProfileStatus.REJECTED
    data = personal_data(uow, profile)
    reasons: list[dict[str, Any]] = [{"code": v.reason_code, "message": f"The {v.check_kind} check needs a look."}
                                     for v in failures]
    hits = _screen_party(uow, profile, data, actor=actor)
    if hits:
        reasons.append({"code": "screening_hit", "message": f"{hits} watchlist potential match(es)."})
    duplicates = find_duplicates(uow, profile)
    if duplicates:
        reasons.append({"code": "duplicate_identifier",
                        "message": "An identifier is shared with " + ", ".join(sorted(duplicates)) + "."})
    decision = _decide_registration(uow, profile, data)
    if decision.outcome.value == "decline":
        profile.review_reasons = [{"code": "risk_declined", "message": "The registration decision declined."}]
        _move(uow, profile, ProfileStatus.REJECTED, reason="registration declined by risk", actor=actor)
        _audit_outcome(uow, profile, actor)
        return ProfileStatus.REJECTED
    if decision.outcome.value == "review":
        reasons.append({"code": "risk_review", "message": "The registration decision asked for a review."})
    profile.review_reasons = reasons
    if reasons:
        _open_review(uow, profile, reasons, screening=bool(hits), actor=actor)
        _audit_outcome(uow, profile, actor)
        return ProfileStatus.IN_REVIEW
    _approve(uow, profile, actor=actor, reason="verified")
    _audit_outcome(uow, profile, actor)
    return ProfileStatus.APPROVED


def _audit_outcome(uow: UnitOfWork, profile: KycProfile, actor: str) -> None:
    audit.record(uow, profile.tenant_id, actor=actor, action="onboarding.profile_decided", object_type=OBJECT_TYPE,
                 object_id=profile.id, after={"status": profile.status, "risk_tier": profile.risk_tier,
                                              "reasons": [r["code"] for r in profile.review_reasons],
                                              "case_id": profile.case_id})


def _screen_party(uow: UnitOfWork, profile: KycProfile, data: Mapping[str, Any], *, actor: str) -> int:
    """Screen the party's name (and each beneficial owner's) against the tenant's watchlists; the screenings
    are kept on the profile. Returns how many had potential matches."""
    from finloop.risk.aml import service as aml

    names = [(data["legal_name"], "individual")] if profile.profile_type == "individual" else \
        [(data["registered_name"], "entity"), *((o["name"], "individual") for o in data["beneficial_owners"])]
    ids, hits = [], 0
    for name, kind in names:
        result = aml.screen(uow, profile.tenant_id, name=name, kind=kind, subject_type=profile.party_kind,
                            subject_id=profile.party_id, actor=actor)
        ids.append(result.screening.id)
        hits += int(result.hit)
    profile.screening_ids = ids
    return hits


def find_duplicates(uow: UnitOfWork, profile: KycProfile) -> set[str]:
    """The other profiles of the tenant sharing one of this profile's identifiers (by blind index)."""
    mine = select(KycProfileKey.kind, KycProfileKey.blind_index).where(KycProfileKey.profile_id == profile.id)
    pairs = list(uow.session.execute(mine).all())
    found: set[str] = set()
    for kind, index in pairs:
        found |= set(uow.session.scalars(select(KycProfileKey.profile_id).where(
            KycProfileKey.tenant_id == profile.tenant_id, KycProfileKey.kind == kind,
            KycProfileKey.blind_index == index, KycProfileKey.profile_id != profile.id)))
    return found


def registration_event(profile: KycProfile, data: Mapping[str, Any]) -> dict[str, Any]:
    """The registration event the risk engine decides: no name, id or document number; the phone is masked
    in the stored decision and matched against phone lists by its blind index."""
    event: dict[str, Any] = {"party_kind": profile.party_kind, "party_id": profile.party_id,
                             "profile_type": profile.profile_type, "country": profile.country,
                             "is_pep": profile.is_pep, "owners": profile.owners_count}
    if profile.party_kind == "customer":
        event["customer_id"] = profile.party_id
    elif profile.party_kind == "merchant":
        event["merchant_id"] = profile.party_id
    if profile.business_type:
        event["business_type"] = profile.business_type
    if data.get("phone"):
        event["phone"] = data["phone"]
    return event


def _decide_registration(uow: UnitOfWork, profile: KycProfile, data: Mapping[str, Any]) -> Any:
    from finloop.risk import service as risk

    decision = risk.decide(uow, profile.tenant_id, event_type="registration",
                           event=registration_event(profile, data), object_ref=profile.id)
    profile.decision_id, profile.decision_score = decision.id, decision.score
    return decision


def _open_review(uow: UnitOfWork, profile: KycProfile, reasons: Sequence[Mapping[str, Any]], *, screening: bool,
                 actor: str) -> None:
    from finloop.risk.cases import service as cases

    text = "Onboarding review of " + f"{profile.party_kind} {profile.party_id}: " + \
        "; ".join(str(r["message"]) for r in reasons)
    case = cases.open_case(uow, profile.tenant_id, source="screening" if screening else "decision",
                           object_type=OBJECT_TYPE, object_id=profile.id, reason=text[:500],
                           decision_id=profile.decision_id, priority=2 if screening else 1)
    profile.case_id = case.id
    _move(uow, profile, ProfileStatus.IN_REVIEW, reason=",".join(str(r["code"]) for r in reasons), actor=actor)


def tier_inputs(uow: UnitOfWork, profile: KycProfile, data: Mapping[str, Any] | None = None) -> TierInputs:
    from finloop.risk import service as risk
    from finloop.risk.aml.models import Screening

    data = data if data is not None else personal_data(uow, profile)
    owners = () if profile.profile_type == "individual" else tuple(o["nationality"] for o in data["beneficial_owners"])
    cleared = 0
    if profile.screening_ids:
        cleared = int(uow.session.scalar(select(func.count()).select_from(Screening).where(
            Screening.id.in_(profile.screening_ids), Screening.status == "dismissed")) or 0)
    outcome = None
    if profile.decision_id:
        outcome = risk.get_decision(uow, profile.tenant_id, profile.decision_id).outcome
    return TierInputs(profile_type=profile.profile_type, country=profile.country, business_type=profile.business_type,
                      is_pep=profile.is_pep, owner_countries=owners, cleared_screening_hits=cleared,
                      cleared_duplicates=len(find_duplicates(uow, profile)), decision_outcome=outcome,
                      decision_score=profile.decision_score)


def _approve(uow: UnitOfWork, profile: KycProfile, *, actor: str, reason: str) -> None:
    policy = get_policy(uow, profile.tenant_id)
    tier = domain.risk_tier(tier_inputs(uow, profile), policy)
    now = uow.clock.now()
    profile.risk_tier, profile.tier_reasons = tier.tier.value, tier.reasons()
    profile.verified_at = now
    profile.next_review_at = policy.next_review(tier.tier.value, now)
    profile.case_id = None
    _move(uow, profile, ProfileStatus.APPROVED, reason=reason, actor=actor)


# ---------------------------------------------------------------------------------------------- reviews


def resolve_case(uow: UnitOfWork, case: Any, action: str) -> None:
    """Case resolver: approve → the profile is approved (its tier counts the cleared hits and duplicates);
    decline → rejected. Its screenings still waiting for a review are dismissed (approve) or confirmed
    (decline), and their own cases closed. A profile no longer waiting for this case is left alone."""
    profile = uow.session.scalar(select(KycProfile).where(
        KycProfile.tenant_id == case.tenant_id, KycProfile.id == case.object_id).with_for_update())
    if profile is None or profile.status != ProfileStatus.IN_REVIEW.value or profile.case_id != case.id:
        return
    actor = f"case:{case.id}"
    _review_screenings(uow, profile, dismiss=action == "approve", actor=actor)
    if action == "approve":
        _approve(uow, profile, actor=actor, reason="approved on review")
    elif action == "decline":
        profile.case_id = None
        _move(uow, profile, ProfileStatus.REJECTED, reason="rejected on review", actor=actor)
    _audit_outcome(uow, profile, actor)


def _review_screenings(uow: UnitOfWork, profile: KycProfile, *, dismiss: bool, actor: str) -> None:
    from finloop.risk.aml import service as aml
    from finloop.risk.aml.models import Screening
    from finloop.risk.cases import service as cases

    if not profile.screening_ids:
        return
    pending = uow.session.scalars(select(Screening).where(Screening.tenant_id == profile.tenant_id,
                                                          Screening.id.in_(profile.screening_ids),
                                                          Screening.status == "potential_match")).all()
    for row in pending:
        aml.review(uow, profile.tenant_id, row.id, decision="dismiss" if dismiss else "confirm", actor=actor,
                   note=f"Reviewed with onboarding profile {profile.id}.")
        open_case = cases.find_open_case(uow, profile.tenant_id, source="screening", object_type="screening",
                                         object_id=row.id)
        if open_case is not None:
            cases.close_case(uow, profile.tenant_id, open_case.id,
                             outcome="false_positive" if dismiss else "valuable_alert", action="none",
                             actor=actor, note=f"Closed with the onboarding review of {profile.id}.")


def review_profile(uow: UnitOfWork, tenant_id: str, profile_id: str, *, decision: str, actor: str,
                   note: str = "") -> KycProfile:
    """Approve or reject a profile in review by closing its case (the resolver moves the profile)."""
    from finloop.risk.cases import service as cases

    if decision not in ("approve", "reject"):
        raise InvalidRequest("decision is approve or reject.", code="invalid_decision", param="decision")
    profile = get_profile(uow, tenant_id, profile_id)
    if profile.status != ProfileStatus.IN_REVIEW.value or profile.case_id is None:
        raise Conflict(f"Profile {profile.id} is {profile.status}; only a profile in review can be reviewed.",
                       code="profile_state_conflict", param="decision", details={"status": profile.status})
    approve = decision == "approve"
    cases.close_case(uow, tenant_id, profile.case_id, outcome="false_positive" if approve else "valuable_alert",
                     action="approve" if approve else "decline", actor=actor, note=note)
    return get_profile(uow, tenant_id, profile_id)


@dataclass(frozen=True, slots=True)
class ReviewRun:
    due: int
    rescreened: int
    in_review: int


def run_periodic_review(uow: UnitOfWork, tenant_id: str, *, business_date: date,
                        actor: str = "job:onboarding.review_due") -> ReviewRun:
    """Move the approved profiles whose review falls due by the end of ``business_date`` to ``review_due``
    and screen them again: a potential match sends the profile to review (with a case). Idempotent per
    business date: a profile is looked at once per date, and a moved one is no longer ``approved``."""
    from finloop.tenancy.calendar import get_calendar

    closes = get_calendar(uow, tenant_id).day_closes_at(business_date)
    profiles = list(uow.session.scalars(select(KycProfile).where(
        KycProfile.tenant_id == tenant_id, KycProfile.status == ProfileStatus.APPROVED.value,
        KycProfile.next_review_at <= closes).order_by(KycProfile.id).with_for_update()))
    rescreened = in_review = 0
    for profile in profiles:
        if profile.last_review_on is not None and profile.last_review_on >= business_date:
            continue
        profile.last_review_on = business_date
        _move(uow, profile, ProfileStatus.REVIEW_DUE, reason=f"periodic review due ({business_date.isoformat()})",
              actor=actor)
        hits = _screen_party(uow, profile, personal_data(uow, profile), actor=actor)
        rescreened += 1
        if hits:
            reasons = [{"code": "screening_hit", "message": f"{hits} watchlist potential match(es) on re-screening."}]
            profile.review_reasons = reasons
            _open_review(uow, profile, reasons, screening=True, actor=actor)
            in_review += 1
        _audit_outcome(uow, profile, actor)
    return ReviewRun(due=len(profiles), rescreened=rescreened, in_review=in_review)


# ---------------------------------------------------------------------------------------------- reads


def get_profile(uow: UnitOfWork, tenant_id: str, profile_id: str, *, lock: bool = False) -> KycProfile:
    query = select(KycProfile).where(KycProfile.tenant_id == tenant_id, KycProfile.id == profile_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    profile = uow.session.scalar(query)
    if profile is None:
        raise NotFound(f"No such onboarding profile: {profile_id[:40]}.", code="profile_not_found",
                       param="profile_id")
    return profile


def find_party_profile(uow: UnitOfWork, tenant_id: str, party_kind: str, party_id: str) -> KycProfile | None:
    return uow.session.scalar(select(KycProfile).where(
        KycProfile.tenant_id == tenant_id, KycProfile.party_kind == str(party_kind),
        KycProfile.party_id == party_id))


def list_profiles(uow: UnitOfWork, tenant_id: str, *, status: str | None = None, risk_tier: str | None = None,
                  party_kind: str | None = None, party_id: str | None = None, after: str | None = None,
                  limit: int = 50) -> list[KycProfile]:
    """Up to ``limit + 1`` profiles, newest first."""
    query = select(KycProfile).where(KycProfile.tenant_id == tenant_id)
    if status:
        query = query.where(KycProfile.status == status)
    if risk_tier:
        query = query.where(KycProfile.risk_tier == risk_tier)
    if party_kind:
        query = query.where(KycProfile.party_kind == party_kind)
    if party_id:
        query = query.where(KycProfile.party_id == party_id)
    if after:
        query = query.where(KycProfile.id < after)
    return list(uow.session.scalars(query.order_by(KycProfile.id.desc()).limit(limit + 1)))


def history(uow: UnitOfWork, profile: KycProfile) -> list[KycTransition]:
    return list(uow.session.scalars(select(KycTransition).where(KycTransition.profile_id == profile.id)
                                    .order_by(KycTransition.seq)))


def verifications(uow: UnitOfWork, profile: KycProfile) -> list[Verification]:
    return list(uow.session.scalars(select(Verification).where(Verification.profile_id == profile.id)
                                    .order_by(Verification.id)))


# ---------------------------------------------------------------------------------------------- gates


def require_verified(uow: UnitOfWork, tenant_id: str, *, party_kind: str, party_id: str,
                     action: str = "payout") -> str | None:
    """The party's risk tier when it may be paid (``action`` payout) or withdraw (``action`` withdrawal);
    raises ``party_not_verified`` (422, nothing written) when the tenant's gate requires a verified party
    and it is not. With the gate off, the tier of a verified party (None otherwise)."""
    policy = get_policy(uow, tenant_id)
    gate = policy.withdrawal_gate if action == "withdrawal" else policy.payout_gate
    profile = find_party_profile(uow, tenant_id, party_kind, party_id)
    verified = profile is not None and ProfileStatus(profile.status) in VERIFIED
    if verified:
        assert profile is not None
        return profile.risk_tier
    if gate == "required":
        status = profile.status if profile is not None else None
        raise PartyNotVerified(
            f"The {party_kind} is not verified (onboarding status: {status or 'none'}); it cannot be paid out to "
            "until its onboarding is approved.", param="party_id",
            details={"party_kind": party_kind, "party_id": party_id, "onboarding_status": status,
                     "profile_id": profile.id if profile is not None else None})
    return None


def _register() -> None:
    from finloop.risk.cases import service as cases

    cases.register_resolver(OBJECT_TYPE, resolve_case)


_register()
