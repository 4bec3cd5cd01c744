"""Onboarding orchestration with the connector calls between two transactions: record → call → apply.

No verification call ever happens inside a transaction: ``submit`` commits the profile and its pending
verifications first, calls the provider for each check, and applies the answers (and, when every check has
its final answer, the screening, the registration decision and the tier) in a second transaction. An
answer that did not arrive (timeout, provider down) is followed at once by a query by reference; still
unknown, the verification waits for ``resolve_due`` (the ``onboarding.resolve_checks`` job), which queries
again and re-sends a call the provider never received. Nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from finloop.core.errors import ExternalServiceError
from finloop.db.uow import Database
from finloop.onboarding import service
from finloop.onboarding.connectors import registry
from finloop.onboarding.connectors.base import (
    CheckKind,
    CheckOutcome,
    CheckResult,
    CompanyLookup,
    DocumentCheck,
    LivenessCheck,
    Verifier,
)
from finloop.onboarding.state import ProfileStatus

log = structlog.get_logger("finloop.onboarding")

#: What a provider call may raise when the provider cannot be reached or answers nonsense.
_PROVIDER_ERRORS = (ExternalServiceError, OSError, TimeoutError, ValueError)


def _send(verifier: Verifier, check: service.CheckRequest) -> CheckResult:
    try:
        if check.kind is CheckKind.DOCUMENT:
            assert isinstance(check.request, DocumentCheck)
            return verifier.verify_document(check.request)
        if check.kind is CheckKind.LIVENESS:
            assert isinstance(check.request, LivenessCheck)
            return verifier.check_liveness(check.request)
        assert isinstance(check.request, CompanyLookup)
        return verifier.lookup_company(check.request)
    except _PROVIDER_ERRORS as error:  # the outcome is unknown: query before anything else
        log.warning("onboarding.check_error", verification_id=check.verification_id, error=type(error).__name__)
        return CheckResult(CheckOutcome.UNKNOWN, check.verification_id, reason_code="provider_unreachable")


def _query(verifier: Verifier, reference: str) -> CheckResult:
    try:
        return verifier.query(reference)
    except _PROVIDER_ERRORS as error:
        log.warning("onboarding.query_error", verification_id=reference, error=type(error).__name__)
        return CheckResult(CheckOutcome.UNKNOWN, reference, reason_code="provider_unreachable")


def _call(verifier: Verifier, check: service.CheckRequest) -> CheckResult:
    """Send one check; an unknown answer is followed by a query by reference (never by a second send)."""
    result = _send(verifier, check)
    if result.outcome is CheckOutcome.UNKNOWN:
        answer = _query(verifier, check.verification_id)
        if answer.outcome in (CheckOutcome.PASSED, CheckOutcome.FAILED):
            return answer
    return result


def _verifier(db: Database, tenant_id: str) -> Verifier:
    with db.uow(read_only=True) as uow:
        provider = service.get_policy(uow, tenant_id).provider
    return registry.verifier(provider)


def _apply(db: Database, tenant_id: str, profile_id: str,
           answers: Sequence[tuple[str, CheckResult]]) -> ProfileStatus:
    with db.uow() as uow:
        profile = service.get_profile(uow, tenant_id, profile_id, lock=True)
        for verification_id, result in answers:
            service.apply_result(uow, service.get_verification(uow, tenant_id, verification_id, lock=True), result)
        status = service.complete(uow, profile)
        uow.commit()
    return status


def _run(db: Database, tenant_id: str, profile_id: str, checks: Sequence[service.CheckRequest]) -> ProfileStatus:
    verifier = _verifier(db, tenant_id)
    answers = [(check.verification_id, _call(verifier, check)) for check in checks]
    return _apply(db, tenant_id, profile_id, answers)


def submit(db: Database, tenant_id: str, *, party_kind: str, party_id: str,
           individual: Mapping[str, Any] | None = None, business: Mapping[str, Any] | None = None,
           actor: str) -> str:
    """Record a profile (or resubmit a rejected one), verify it through the tenant's provider and decide it.
    Returns the profile id; bad input raises before anything is written."""
    with db.uow() as uow:
        profile, checks = service.begin_submission(uow, tenant_id, party_kind=party_kind, party_id=party_id,
                                                   individual=individual, business=business, actor=actor)
        profile_id = profile.id
        uow.commit()
    _run(db, tenant_id, profile_id, checks)
    return profile_id


def reverify(db: Database, tenant_id: str, profile_id: str, *, actor: str,
             document: Mapping[str, Any] | None = None) -> ProfileStatus:
    """Verify an approved or review-due profile again (a 409 from any other status)."""
    with db.uow() as uow:
        _, checks = service.begin_reverification(uow, tenant_id, profile_id, actor=actor, document=document)
        uow.commit()
    return _run(db, tenant_id, profile_id, checks)


def resolve_due(db: Database, *, limit: int = 200) -> int:
    """Query every check whose answer is unknown and due; a check the provider never received is sent again
    under the same reference. Returns how many checks were looked at."""
    with db.uow(read_only=True) as uow:
        due = service.due_verifications(uow, now=uow.clock.now(), limit=limit)
    for tenant_id, verification_id in due:
        verifier = _verifier(db, tenant_id)
        result = _query(verifier, verification_id)
        if result.outcome is CheckOutcome.NOT_FOUND:
            with db.uow(read_only=True) as uow:
                verification = service.get_verification(uow, tenant_id, verification_id)
                profile = service.get_profile(uow, tenant_id, verification.profile_id)
                check = service.check_request(uow, profile, verification)
            result = _call(verifier, check)
        with db.uow(read_only=True) as uow:
            profile_id = service.get_verification(uow, tenant_id, verification_id).profile_id
        _apply(db, tenant_id, profile_id, [(verification_id, result)])
    return len(due)
