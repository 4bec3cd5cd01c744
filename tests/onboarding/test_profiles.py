"""Onboarding profiles on both databases: each sandbox outcome moves the profile, unknown answers are queried
(never guessed), duplicates are found by blind index, screening hits open a case whose verdict moves the
profile, the periodic review runs once per business date, and personal data stays sealed."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import Database
from finloop.onboarding import flows
from finloop.onboarding import service as onboarding
from finloop.onboarding.connectors.sandbox import SandboxVerifier
from finloop.onboarding.models import KycProfile, KycProfileKey
from finloop.risk import service as risk
from finloop.risk.aml.models import Screening
from finloop.risk.cases import service as cases
from finloop.risk.models import RuleSet
from tests.onboarding.conftest import Parties, import_sdn, make_parties
from tests.onboarding.helpers import business, individual


def _submit(db: Database, parties: Parties, kind: str = "customer", **data: Any) -> KycProfile:
    party_id = {"customer": parties.customer_id, "merchant": parties.merchant_id,
                "promoter": parties.promoter_id}[kind]
    if not data:
        data = {"business": business(party_id)} if kind == "merchant" else {"individual": individual(party_id)}
    profile_id = flows.submit(db, parties.tenant.id, party_kind=kind, party_id=party_id, actor="test", **data)
    return _get(db, parties, profile_id)


def _get(db: Database, parties: Parties, profile_id: str) -> KycProfile:
    """The profile as committed, detached (its values stay readable after the unit of work)."""
    with db.uow(read_only=True) as uow:
        profile = onboarding.get_profile(uow, parties.tenant.id, profile_id)
        uow.session.expunge(profile)
        return profile


def _history(db: Database, parties: Parties, profile: KycProfile) -> list[tuple[str | None, str]]:
    with db.uow(read_only=True) as uow:
        return [(t.from_status, t.to_status) for t in onboarding.history(uow, _get(db, parties, profile.id))]


def test_a_clean_customer_is_approved_low_with_every_move_recorded(db: Database, parties: Parties,
                                                                   verifier: SandboxVerifier,
                                                                   clock: FrozenClock) -> None:
    profile = _submit(db, parties)
    assert (profile.status, profile.risk_tier, profile.tier_reasons) == ("approved", "low", [])
    assert {k: v["status"] for k, v in profile.checks.items()} == {"document": "passed", "liveness": "passed"}
    assert profile.next_review_at == clock.now().replace(year=clock.now().year + 3)
    assert _history(db, parties, profile) == [(None, "pending"), ("pending", "verifying"), ("verifying", "approved")]
    with db.uow(read_only=True) as uow:
        decision = risk.get_decision(uow, parties.tenant.id, profile.decision_id or "")
        assert (decision.event_type, decision.object_ref) == ("registration", profile.id)
        assert decision.event["phone"].startswith("****") and "Li Wei" not in json.dumps(decision.event)
        assert onboarding.require_verified(uow, parties.tenant.id, party_kind="customer",
                                           party_id=parties.customer_id) == "low"


@pytest.mark.parametrize(("kind", "changes", "status", "code"), [
    ("customer", {"document_number": "E12340001"}, "rejected", "document_expired"),
    ("customer", {"document_number": "E12340003"}, "rejected", "liveness_failed"),
    ("customer", {"document_number": "E12340002"}, "in_review", "data_mismatch"),
    ("merchant", {"registration_number": "R123404"}, "rejected", "company_not_found"),
    ("merchant", {"registration_number": "R123410"}, "rejected", "company_dissolved"),
    ("merchant", {"registration_number": "R123409"}, "in_review", "name_mismatch"),
])
def test_each_sandbox_outcome_moves_the_profile(db: Database, parties: Parties, verifier: SandboxVerifier,
                                                kind: str, changes: dict[str, str], status: str, code: str) -> None:
    party_id = parties.customer_id if kind == "customer" else parties.merchant_id
    data = {"individual": individual(party_id, **changes)} if kind == "customer" else \
        {"business": business(party_id, **changes)}
    profile = _submit(db, parties, kind, **data)
    assert profile.status == status
    assert code in [r["code"] for r in profile.review_reasons]
    assert (profile.case_id is not None) == (status == "in_review")
    with db.uow(read_only=True) as uow, pytest.raises(onboarding.PartyNotVerified) as refused:
        onboarding.require_verified(uow, parties.tenant.id, party_kind=kind, party_id=party_id)
    assert refused.value.code == "party_not_verified" and refused.value.details["onboarding_status"] == status


def test_a_rejected_profile_is_resubmitted_and_an_active_one_is_not(db: Database, parties: Parties,
                                                                     verifier: SandboxVerifier) -> None:
    rejected = _submit(db, parties, individual=individual(parties.customer_id, document_number="E12340001"))
    again = _submit(db, parties)
    assert (again.id, again.status) == (rejected.id, "approved")
    assert ("rejected", "pending") in _history(db, parties, again)
    with pytest.raises(Conflict) as caught:
        _submit(db, parties)
    assert caught.value.code == "profile_exists"


def test_an_unknown_answer_is_queried_at_once(db: Database, parties: Parties, verifier: SandboxVerifier) -> None:
    profile = _submit(db, parties, individual=individual(parties.customer_id, document_number="E12340009"))
    assert profile.status == "approved"  # the call timed out; the query found the provider's answer
    with db.uow(read_only=True) as uow:
        document = next(v for v in onboarding.verifications(uow, profile) if v.check_kind == "document")
        assert (document.status, document.attempts) == ("passed", 1)


def test_an_outage_leaves_the_profile_verifying_until_the_job_queries_and_resends(
        db: Database, parties: Parties, verifier: SandboxVerifier, clock: FrozenClock) -> None:
    verifier.outage = True
    profile = _submit(db, parties)
    assert profile.status == "verifying"
    with db.uow(read_only=True) as uow:
        assert {v.status for v in onboarding.verifications(uow, profile)} == {"unknown"}
        with pytest.raises(onboarding.PartyNotVerified):
            onboarding.require_verified(uow, parties.tenant.id, party_kind="customer", party_id=parties.customer_id)
    assert flows.resolve_due(db) == 0  # nothing is due before the first rung of the ladder
    clock.advance(timedelta(seconds=31))
    assert flows.resolve_due(db) == 2  # still down: queried, nothing guessed
    assert _get(db, parties, profile.id).status == "verifying"
    verifier.outage = False
    clock.advance(timedelta(minutes=3))
    assert flows.resolve_due(db) == 2  # the provider never got the calls: sent again under the same reference
    assert _get(db, parties, profile.id).status == "approved"


def test_one_national_id_on_two_customers_goes_to_review(db: Database, parties: Parties,
                                                         verifier: SandboxVerifier) -> None:
    first = _submit(db, parties)
    other = make_parties(db, parties.tenant, "2")
    shared = individual(parties.customer_id, document_number="E99887765", national_id="n-" + individual(
        parties.customer_id)["national_id"][1:])  # the same id, written differently
    second = _submit(db, other, individual={**shared, "national_id": individual(parties.customer_id)["national_id"]
                                            .lower()})
    assert first.status == "approved" and second.status == "in_review"
    assert "duplicate_identifier" in [r["code"] for r in second.review_reasons]
    assert first.id in second.review_reasons[-1]["message"]
    with db.uow(read_only=True) as uow:
        keys = uow.session.scalars(select(KycProfileKey).where(KycProfileKey.profile_id == second.id)).all()
        national = individual(parties.customer_id)["national_id"]
        assert all(national not in k.blind_index and len(k.blind_index) == 64 for k in keys)
    # Approving the review counts the shared identifier in the tier.
    with db.uow() as uow:
        onboarding.review_profile(uow, parties.tenant.id, second.id, decision="approve", actor="analyst")
        uow.commit()
    approved = _get(db, parties, second.id)
    assert (approved.status, approved.risk_tier) == ("approved", "medium")
    assert [f["factor"] for f in approved.tier_reasons] == ["duplicate"]


def test_a_screening_hit_opens_a_case_whose_verdict_moves_the_profile(db: Database, parties: Parties,
                                                                      verifier: SandboxVerifier) -> None:
    tenant_id = parties.tenant.id
    import_sdn(db, tenant_id)
    owners = [{"name": "Jose Maria Mueller", "date_of_birth": "1960-01-01", "nationality": "ES",
               "ownership_percent": 40}]
    merchant = _submit(db, parties, "merchant", business=business(parties.merchant_id, beneficial_owners=owners))
    assert merchant.status == "in_review" and merchant.case_id
    assert len(merchant.screening_ids) == 2  # the company and its owner
    with db.uow(read_only=True) as uow:
        case = cases.get_case(uow, tenant_id, merchant.case_id)
        assert (case.object_type, case.source, case.status) == ("kyc_profile", "screening", "open")
        screening = uow.session.get(Screening, merchant.screening_ids[1])
        assert screening is not None and screening.status == "potential_match"
        assert "Mueller" not in case.reason and "Tea House" not in case.reason
    with db.uow() as uow:
        cases.close_case(uow, tenant_id, merchant.case_id, outcome="false_positive", action="approve",
                         actor="analyst")
        uow.commit()
    approved = _get(db, parties, merchant.id)
    assert (approved.status, approved.risk_tier, approved.case_id) == ("approved", "medium", None)
    with db.uow(read_only=True) as uow:
        screening = uow.session.get(Screening, merchant.screening_ids[1])
        assert screening is not None and screening.status == "dismissed"
        assert screening.case_id is not None
        assert cases.get_case(uow, tenant_id, screening.case_id).status == "closed"

    # A promoter matching a listed person, declined on review: rejected, the match confirmed.
    promoter = _submit(db, parties, "promoter", individual=individual(parties.promoter_id,
                                                                      legal_name="Vladimir Putin"))
    assert promoter.status == "in_review"
    with db.uow() as uow:
        onboarding.review_profile(uow, tenant_id, promoter.id, decision="reject", actor="analyst", note="match")
        uow.commit()
    assert _get(db, parties, promoter.id).status == "rejected"
    with db.uow(read_only=True) as uow:
        screening = uow.session.get(Screening, promoter.screening_ids[0])
        assert screening is not None and screening.status == "confirmed"
        with pytest.raises(Conflict):
            onboarding.review_profile(uow, tenant_id, promoter.id, decision="approve", actor="analyst")


def test_a_registration_decision_can_decline_or_review(db: Database, parties: Parties,
                                                       verifier: SandboxVerifier) -> None:
    tenant_id = parties.tenant.id
    with db.uow() as uow:
        rule_set = risk.create_rule_set(uow, tenant_id, name="kyc", actor="test", event_types=["registration"])
        version = risk.create_version(uow, tenant_id, rule_set.id, actor="test", rules=[
            {"id": "merchants_review", "expression": 'event.merchant_id != ""', "outcome": "review"},
            {"id": "no_customers", "expression": 'event.customer_id != ""', "outcome": "decline"}],
            thresholds={"*": {"review": 1, "decline": 20}})
        uow.session.get(RuleSet, rule_set.id).live_version_id = version.id  # type: ignore[union-attr]
        uow.commit()
    customer = _submit(db, parties)
    assert (customer.status, customer.review_reasons[0]["code"]) == ("rejected", "risk_declined")
    merchant = _submit(db, parties, "merchant")
    assert merchant.status == "in_review" and merchant.review_reasons[0]["code"] == "risk_review"
    with db.uow(read_only=True) as uow:
        assert cases.get_case(uow, tenant_id, merchant.case_id or "").decision_id == merchant.decision_id


def test_periodic_review_moves_due_profiles_once_per_date_and_rescreens(db: Database, parties: Parties,
                                                                        verifier: SandboxVerifier,
                                                                        clock: FrozenClock) -> None:
    tenant_id = parties.tenant.id
    customer = _submit(db, parties)
    promoter = _submit(db, parties, "promoter", individual=individual(parties.promoter_id,
                                                                      legal_name="Vladimir Putin"))
    assert promoter.status == "approved"  # no watchlist yet
    with db.uow() as uow:  # the customer's review is due first
        uow.session.get(KycProfile, customer.id).next_review_at = clock.now() + timedelta(days=1)  # type: ignore[union-attr]
        uow.session.get(KycProfile, promoter.id).next_review_at = clock.now() + timedelta(days=2)  # type: ignore[union-attr]
        uow.commit()
    import_sdn(db, tenant_id)
    today = date(2026, 3, 2)

    def run(day: date) -> onboarding.ReviewRun:
        with db.uow() as uow:
            result = onboarding.run_periodic_review(uow, tenant_id, business_date=day)
            uow.commit()
        return result

    assert run(today).due == 0
    assert run(today + timedelta(days=1)) == onboarding.ReviewRun(due=1, rescreened=1, in_review=0)
    assert run(today + timedelta(days=1)).due == 0  # a re-run of the date moves nothing again
    assert _get(db, parties, customer.id).status == "review_due"
    assert run(today + timedelta(days=2)) == onboarding.ReviewRun(due=1, rescreened=1, in_review=1)
    hit = _get(db, parties, promoter.id)
    assert (hit.status, hit.last_review_on) == ("in_review", today + timedelta(days=2))
    assert _history(db, parties, hit)[-2:] == [("approved", "review_due"), ("review_due", "in_review")]
    # Review-due is still verified; re-verification brings it back to approved with a new review date.
    with db.uow(read_only=True) as uow:
        assert onboarding.require_verified(uow, tenant_id, party_kind="customer",
                                           party_id=parties.customer_id) == "low"
    assert flows.reverify(db, tenant_id, customer.id, actor="test") == "approved"
    again = _get(db, parties, customer.id)
    assert again.next_review_at is not None and again.next_review_at > clock.now() + timedelta(days=365 * 2)
    with pytest.raises(Conflict) as caught:
        flows.reverify(db, tenant_id, promoter.id, actor="test")  # in review: not re-verifiable
    assert caught.value.code == "profile_state_conflict"


def test_bad_input_writes_nothing(db: Database, parties: Parties, verifier: SandboxVerifier) -> None:
    tenant_id = parties.tenant.id
    cases_ = [
        ({"party_kind": "shop", "party_id": parties.customer_id, "individual": individual("x")}, "party_kind"),
        ({"party_kind": "customer", "party_id": "cus_nobody", "individual": individual("x")}, "party_id"),
        ({"party_kind": "customer", "party_id": parties.customer_id}, "individual"),
        ({"party_kind": "customer", "party_id": parties.customer_id, "business": business("x")}, "business"),
        ({"party_kind": "merchant", "party_id": parties.merchant_id, "individual": individual("x")}, "individual"),
        ({"party_kind": "customer", "party_id": parties.customer_id,
          "individual": individual("x", date_of_birth="2999-01-01")}, "individual.date_of_birth"),
        ({"party_kind": "customer", "party_id": parties.customer_id,
          "individual": individual("x", nationality="China")}, "individual.nationality"),
        ({"party_kind": "customer", "party_id": parties.customer_id,
          "individual": individual("x", document_type="selfie")}, "individual.document_type"),
        ({"party_kind": "merchant", "party_id": parties.merchant_id, "business": business("x", beneficial_owners=[
            {"name": "A", "date_of_birth": "1970-01-01", "nationality": "CN", "ownership_percent": 60},
            {"name": "B", "date_of_birth": "1970-01-01", "nationality": "CN", "ownership_percent": 60}])},
         "business.beneficial_owners"),
    ]
    for kwargs, param in cases_:
        with pytest.raises((InvalidRequest, NotFound)) as caught:
            flows.submit(db, tenant_id, actor="test", **kwargs)  # type: ignore[arg-type]
        assert caught.value.param == param, (kwargs, caught.value.param)
    with db.uow(read_only=True) as uow:
        assert onboarding.list_profiles(uow, tenant_id) == []
    assert verifier.calls == 0


def test_personal_data_is_sealed_and_never_logged(db: Database, parties: Parties, verifier: SandboxVerifier,
                                                  caplog: pytest.LogCaptureFixture,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    data = individual(parties.customer_id, legal_name="Zhang Xiuying", document_number="E12340002")
    profile = _submit(db, parties, individual=data)
    secrets = ["Zhang Xiuying", data["national_id"], data["document_number"], "13800138000", "1990-05-17"]
    with db.engine.connect() as connection:
        dumped = json.dumps([list(map(str, row)) for table in ("kyc_profiles", "kyc_profile_keys",
                                                              "kyc_profile_transitions", "kyc_verifications",
                                                              "audit_events", "risk_decisions", "risk_cases")
                             for row in connection.execute(text(f"SELECT * FROM {table}"))])
    assert not [s for s in secrets if s in dumped]
    assert (profile.name_display, profile.identifier_display) == ("Z***", "****0002")
    logged = caplog.text + capsys.readouterr().err
    assert not [s for s in secrets if s in logged]
    with db.uow(read_only=True) as uow:
        assert onboarding.personal_data(uow, _get(db, parties, profile.id))["legal_name"] == "Zhang Xiuying"


def test_profiles_are_tenant_scoped(db: Database, parties: Parties, other_tenant: Any,
                                    verifier: SandboxVerifier) -> None:
    profile = _submit(db, parties)
    with db.uow(read_only=True) as uow:
        with pytest.raises(NotFound):
            onboarding.get_profile(uow, other_tenant.id, profile.id)
        assert onboarding.list_profiles(uow, other_tenant.id) == []
    with pytest.raises(NotFound):  # the other tenant cannot onboard this tenant's customer
        flows.submit(db, other_tenant.id, party_kind="customer", party_id=parties.customer_id, actor="test",
                     individual=individual(parties.customer_id))
