"""Consents and bureau pulls: no valid consent, no pull (and nothing written); a pull is recorded before the
call and stored after it; a bureau failure is a failed report; the sandbox answers the same subject alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, ExternalServiceError, InvalidRequest, NotFound
from finloop.credit import bureau, flows
from finloop.credit import service as credit
from finloop.credit.bureau.base import BureauRequest, BureauResult
from finloop.credit.bureau.sandbox import SandboxBureau
from finloop.credit.models import BureauReport, Consent
from finloop.db.uow import Database
from tests.conftest import T0, TenantHandle
from tests.credit.conftest import make_applicant


def reports(db: Database, tenant_id: str) -> list[tuple[str, str]]:
    with db.uow(read_only=True) as uow:
        return [(r.status, r.applicant_id) for r in uow.session.scalars(
            select(BureauReport).where(BureauReport.tenant_id == tenant_id).order_by(BureauReport.id))]


def consent(db: Database, tenant_id: str, applicant_id: str, **kwargs: object) -> str:
    with db.uow() as uow:
        row = credit.grant_consent(uow, tenant_id, applicant_id, actor="test",
                                   **{"scope": ["bureau_report"], **kwargs})  # type: ignore[arg-type]
        uow.commit()
    return row.id


def test_a_pull_needs_a_valid_consent_covering_bureau_reports(db: Database, tenant: TenantHandle,
                                                              clock: FrozenClock) -> None:
    party = make_applicant(db, tenant.id, "alice")

    def refused() -> None:
        with pytest.raises(Conflict) as caught:
            flows.pull_report(db, tenant.id, party.applicant_id, actor="test")
        assert caught.value.code == "consent_required" and caught.value.param == "applicant_id"

    refused()
    consent(db, tenant.id, party.applicant_id, scope=["behaviour_data"])
    refused()
    revoked = consent(db, tenant.id, party.applicant_id)
    with db.uow() as uow:
        credit.revoke_consent(uow, tenant.id, revoked, actor="test")
        uow.commit()
    refused()
    short = consent(db, tenant.id, party.applicant_id, expires_at=T0 + timedelta(days=2))
    assert reports(db, tenant.id) == []
    report_id = flows.pull_report(db, tenant.id, party.applicant_id, actor="test")
    clock.advance(timedelta(days=2))  # the consent expires exactly now
    refused()
    with db.uow(read_only=True) as uow:
        report = credit.get_report(uow, tenant.id, report_id)
        assert (report.status, report.consent_id, report.requested_at) == ("completed", short, T0)
    assert reports(db, tenant.id) == [("completed", party.applicant_id)]


def test_the_pull_is_recorded_before_the_call_and_stored_after(db: Database, tenant: TenantHandle,
                                                               clock: FrozenClock,
                                                               sandbox_bureau: SandboxBureau) -> None:
    party = make_applicant(db, tenant.id, "alice")
    consent(db, tenant.id, party.applicant_id)
    seen: list[tuple[str, str]] = []

    class Watching:
        name = "sandbox"

        def pull(self, request: BureauRequest) -> BureauResult:
            # Called with no transaction of ours open: the pending report is already committed and visible.
            seen.extend(reports(db, tenant.id))
            clock.advance(timedelta(milliseconds=120))
            return sandbox_bureau.pull(request)

    bureau.use(Watching())  # type: ignore[arg-type]
    report_id = flows.pull_report(db, tenant.id, party.applicant_id, actor="test")
    assert seen == [("pending", party.applicant_id)]
    with db.uow(read_only=True) as uow:
        report = credit.get_report(uow, tenant.id, report_id)
        index = credit.get_applicant(uow, tenant.id, party.applicant_id).national_id_index
        assert report.status == "completed" and report.requested_at == T0
        assert report.received_at == T0 + timedelta(milliseconds=120)
        assert report.currency == "CNY" and report.report is not None
        assert report.enquiries_90d == len(report.report["enquiries"])
        assert report.open_loans == len(report.report["loans"])
        assert report.open_loan_balance_amount == sum(loan["balance_amount"] for loan in report.report["loans"])
        first = (report.bureau_score, report.open_loans, report.enquiries_90d, report.delinquencies_24m)
    # The sandbox is deterministic per subject (the national id's blind index) and seed.
    expected = SandboxBureau(seed=7, sleep=lambda s: None).pull(BureauRequest("x", index, "CNY", T0, "secret"))
    assert first == (expected.score, expected.open_loans, len(expected.enquiries),
                     expected.delinquencies_within(730))


def test_a_bureau_failure_is_a_failed_report(db: Database, tenant: TenantHandle) -> None:
    party = make_applicant(db, tenant.id, "alice", national_id="000000199001010000")
    consent(db, tenant.id, party.applicant_id)
    report_id = flows.pull_report(db, tenant.id, party.applicant_id, actor="test")

    class Broken:
        name = "sandbox"

        def pull(self, request: BureauRequest) -> BureauResult:
            raise OSError("connection reset")

    other = make_applicant(db, tenant.id, "bob", national_id="220102198811110022")
    consent(db, tenant.id, other.applicant_id)
    bureau.use(Broken())  # type: ignore[arg-type]
    broken_id = flows.pull_report(db, tenant.id, other.applicant_id, actor="test")
    with db.uow(read_only=True) as uow:
        timed_out = credit.get_report(uow, tenant.id, report_id)
        broken = credit.get_report(uow, tenant.id, broken_id)
        assert (timed_out.status, timed_out.error_code, timed_out.bureau_score) == ("failed", "bureau_timeout", None)
        assert (broken.status, broken.error_code) == ("failed", "bureau_unavailable")
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        credit.fail_pull(uow, tenant.id, report_id, ExternalServiceError("again", retryable=False))
    assert caught.value.code == "bureau_report_closed"


def test_consent_bad_input_writes_nothing(db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    party = make_applicant(db, tenant.id, "alice")
    cases = [({"scope": []}, "scope"), ({"scope": ["everything"]}, "scope"), ({"purpose": "marketing"}, "purpose"),
             ({"channel": "pigeon"}, "channel"), ({"given_at": T0 + timedelta(minutes=1)}, "given_at"),
             ({"expires_at": T0 - timedelta(minutes=1)}, "expires_at"),
             ({"expires_at": T0 + timedelta(days=367)}, "expires_at"),
             ({"given_at": T0 - timedelta(days=10), "expires_at": T0 - timedelta(days=1)}, "expires_at"),
             ({"evidence": "x" * 201}, "evidence")]
    for change, param in cases:
        with db.uow() as uow, pytest.raises(InvalidRequest) as caught:
            credit.grant_consent(uow, tenant.id, party.applicant_id, actor="test",
                                 **{"scope": ["bureau_report"], **change})  # type: ignore[arg-type]
        assert caught.value.param == param, change
    with db.uow() as uow, pytest.raises(NotFound):
        credit.grant_consent(uow, other_tenant.id, party.applicant_id, scope=["bureau_report"], actor="test")
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Consent)) == 0
    granted = consent(db, tenant.id, party.applicant_id)
    with pytest.raises(NotFound):
        flows.pull_report(db, other_tenant.id, party.applicant_id, actor="test")
    with pytest.raises(InvalidRequest) as caught:
        flows.pull_report(db, tenant.id, party.applicant_id, provider="nope", actor="test")
    assert caught.value.code == "unknown_bureau_provider" and reports(db, tenant.id) == []
    with db.uow() as uow:
        credit.revoke_consent(uow, tenant.id, granted, actor="test")
        uow.commit()
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        credit.revoke_consent(uow, tenant.id, granted, actor="test")
    assert caught.value.code == "consent_revoked"
