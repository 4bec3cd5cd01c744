"""Loan applications and their automatic review: each outcome path (approve; decline for rating, limit, risk and
multi-borrowing; review settled by a case verdict), the reservation held on approval and released on decline,
cancel and expiry, multi-borrowing from the bureau and from our own records (a duplicate national id through the
blind index), the review policy's checks, tenant isolation, and the figures computed from stored applications."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit import applications, contracts, limits
from finloop.credit.models import LoanApplication, LoanContract
from finloop.db.uow import Database
from finloop.risk import service as risk
from finloop.risk.cases import service as cases
from finloop.risk.models import RuleSet
from tests.conftest import T0, TenantHandle
from tests.credit.test_limits import customer_line, product, rated, state

#: The risk engine's rules for loan applications in these tests: large amounts are declined, middling ones
#: reviewed.
RULES = [
    {"id": "huge_loan", "expression": "event.amount >= 3000000", "outcome": "decline",
     "event_types": ["loan_application"]},
    {"id": "big_loan", "expression": "event.amount >= 1200000", "outcome": "review",
     "event_types": ["loan_application"]},
]


def live_rules(db: Database, tenant_id: str) -> None:
    with db.uow() as uow:
        rule_set = risk.create_rule_set(uow, tenant_id, name="loans", actor="test")
        version = risk.create_version(uow, tenant_id, rule_set.id, actor="test", rules=RULES,
                                      thresholds={"*": {"review": 1000, "decline": 2000}})
        uow.session.get(RuleSet, rule_set.id).live_version_id = version.id  # type: ignore[union-attr]
        uow.commit()


def submit(db: Database, tenant_id: str, applicant_id: str, amount: int = 500_000, term: int = 12,
           **extra: Any) -> LoanApplication:
    with db.uow() as uow:
        row = applications.submit(uow, tenant_id, applicant_id=applicant_id, product_code="consumer_installment",
                                  principal_amount=amount, term=term, purpose="purchase", actor="test", **extra)
        uow.commit()
        uow.session.expunge(row)
    return row


def codes(row: LoanApplication) -> list[str]:
    return [r["code"] for r in row.reasons]


def set_policy(db: Database, tenant_id: str, **changes: Any) -> None:
    with db.uow() as uow:
        applications.set_policy(uow, tenant_id, changes, actor="test")
        uow.commit()


@pytest.fixture
def alice(db: Database, tenant: TenantHandle) -> tuple[str, str]:
    product(db, tenant.id, "consumer_installment")
    return customer_line(db, tenant.id)


def test_a_clean_application_is_approved_with_its_limit_reserved_and_a_contract(
        db: Database, tenant: TenantHandle, alice: tuple[str, str]) -> None:
    applicant_id, line_id = alice
    row = submit(db, tenant.id, applicant_id, device_id="dev-1", ip="203.0.113.7")
    assert (row.status, row.auto_outcome, row.final_outcome, row.reasons) == ("approved", "approve", "approve", [])
    assert row.reserved_amount == 500_000 and row.rating == "B" and row.latency_us > 0
    assert row.details["risk"]["outcome"] == "approve" and row.expires_at == T0 + timedelta(days=14)
    assert state(db, tenant.id, line_id)["reserved"] == 500_000
    with db.uow(read_only=True) as uow:
        decision = risk.get_decision(uow, tenant.id, row.risk_decision_id or "")
        assert decision.object_ref == row.id and decision.event["amount"] == 500_000
        assert decision.event["rating"] == "B"
        contract = contracts.get_contract(uow, tenant.id, row.id)
        assert contract.status == "issued" and contract.sha256 == contracts.digest(contract.document)


def test_a_rejected_rating_declines_and_reserves_nothing(db: Database, tenant: TenantHandle,
                                                         alice: tuple[str, str]) -> None:
    applicant_id, line_id = alice
    rated(db, tenant.id, applicant_id, "reject", score=400)
    row = submit(db, tenant.id, applicant_id)
    assert (row.status, row.final_outcome, codes(row)) == ("declined", "decline", ["rating_reject"])
    assert row.reserved_amount == 0 and state(db, tenant.id, line_id)["reserved"] == 0
    with db.uow(read_only=True) as uow:
        assert contracts.find_contract(uow, tenant.id, row.id) is None


def test_more_than_the_available_limit_declines(db: Database, tenant: TenantHandle, alice: tuple[str, str]) -> None:
    applicant_id, line_id = alice
    available = state(db, tenant.id, line_id)["subs"]["installment"][0]
    row = submit(db, tenant.id, applicant_id, amount=min(available + 100, 5_000_000))
    assert codes(row) == ["limit_insufficient"] and row.status == "declined"
    assert row.details["availability"]["available_amount"] == available
    # Nothing reserved: the next application within the limit is approved.
    assert submit(db, tenant.id, applicant_id).status == "approved"


def test_an_applicant_without_a_line_is_declined_for_limit(db: Database, tenant: TenantHandle) -> None:
    from tests.credit.conftest import make_applicant

    product(db, tenant.id, "consumer_installment")
    party = make_applicant(db, tenant.id, "nolines", national_id="NOLINE1234")
    rated(db, tenant.id, party.applicant_id, "A")
    row = submit(db, tenant.id, party.applicant_id)
    assert codes(row) == ["limit_insufficient"] and "no_credit_line" in row.details["findings"]


def test_the_risk_engine_declines_or_sends_to_review(db: Database, tenant: TenantHandle,
                                                      alice: tuple[str, str]) -> None:
    applicant_id, line_id = alice
    live_rules(db, tenant.id)
    set_policy(db, tenant.id, own_open_review=10, own_open_decline=10)
    declined = submit(db, tenant.id, applicant_id, amount=3_000_000)
    assert (declined.status, codes(declined)) == ("declined", ["risk_declined"])
    reviewed = submit(db, tenant.id, applicant_id, amount=1_200_000)
    assert (reviewed.status, reviewed.auto_outcome, reviewed.final_outcome) == ("in_review", "review", None)
    assert codes(reviewed) == ["manual_review"] and "risk_review" in reviewed.details["findings"]
    # In review, the amount is held.
    assert reviewed.reserved_amount == 1_200_000 and state(db, tenant.id, line_id)["reserved"] == 1_200_000


def test_a_review_is_settled_by_the_case_verdict(db: Database, tenant: TenantHandle,
                                                 alice: tuple[str, str]) -> None:
    applicant_id, line_id = alice
    live_rules(db, tenant.id)
    set_policy(db, tenant.id, own_open_review=10, own_open_decline=10)
    first = submit(db, tenant.id, applicant_id, amount=1_200_000)
    second = submit(db, tenant.id, applicant_id, amount=1_300_000, term=6)
    assert first.case_id and second.case_id and first.case_id != second.case_id
    with db.uow() as uow:
        case = cases.get_case(uow, tenant.id, first.case_id)
        assert (case.object_type, case.object_id, case.decision_id) == ("loan_application", first.id,
                                                                         first.risk_decision_id)
        cases.close_case(uow, tenant.id, first.case_id, outcome="false_positive", action="approve", actor="analyst")
        cases.close_case(uow, tenant.id, second.case_id, outcome="valuable_alert", action="decline", actor="analyst")
        uow.commit()
    with db.uow(read_only=True) as uow:
        approved = applications.get_application(uow, tenant.id, first.id)
        declined = applications.get_application(uow, tenant.id, second.id)
        assert (approved.status, approved.auto_outcome, approved.final_outcome) == ("approved", "review", "approve")
        assert approved.reserved_amount == 1_200_000 and approved.expires_at is not None
        assert contracts.get_contract(uow, tenant.id, first.id).status == "issued"
        assert (declined.status, declined.final_outcome, declined.reserved_amount) == ("declined", "decline", 0)
        assert [r["code"] for r in declined.reasons] == ["declined_on_review"]
    assert state(db, tenant.id, line_id)["reserved"] == 1_200_000


def test_cancel_releases_the_reservation_and_voids_the_contract(db: Database, tenant: TenantHandle,
                                                                alice: tuple[str, str]) -> None:
    applicant_id, line_id = alice
    row = submit(db, tenant.id, applicant_id)
    with db.uow() as uow:
        cancelled = applications.cancel(uow, tenant.id, row.id, actor="test")
        assert (cancelled.status, cancelled.reserved_amount) == ("cancelled", 0)
        uow.commit()
    assert state(db, tenant.id, line_id)["reserved"] == 0
    with db.uow(read_only=True) as uow:
        assert contracts.get_contract(uow, tenant.id, row.id).status == "void"
    with db.uow() as uow, pytest.raises(Conflict) as raised:
        applications.cancel(uow, tenant.id, row.id, actor="test")
    assert raised.value.code == "application_state_conflict"


def test_the_expiry_job_expires_unsigned_approvals_after_the_close(db: Database, tenant: TenantHandle,
                                                                   alice: tuple[str, str], clock) -> None:  # type: ignore[no-untyped-def]
    from finloop.worker.runner import Runner

    applicant_id, line_id = alice
    row = submit(db, tenant.id, applicant_id)
    clock.set((T0 + timedelta(days=15)).replace(hour=12))
    passes = [Runner(db, only=["credit.expire_applications"]).run_pass().outcomes for _ in range(2)]
    mine = [[o for o in outcomes if o.tenant_id == tenant.id] for outcomes in passes]
    assert sum(o.processed for o in mine[0]) == 1 and all(o.status == "succeeded" for o in mine[0])
    assert mine[1] == []  # every closed date ran once
    with db.uow(read_only=True) as uow:
        assert applications.get_application(uow, tenant.id, row.id).status == "expired"
    assert state(db, tenant.id, line_id)["reserved"] == 0


def test_an_unsigned_approval_expires_and_releases(db: Database, tenant: TenantHandle,
                                                   alice: tuple[str, str]) -> None:
    applicant_id, line_id = alice
    row = submit(db, tenant.id, applicant_id)
    with db.uow() as uow:
        assert applications.expire_due(uow, tenant.id, now=T0 + timedelta(days=13)) == 0
        assert applications.expire_due(uow, tenant.id, now=T0 + timedelta(days=14)) == 1
        uow.commit()
    with db.uow(read_only=True) as uow:
        assert applications.get_application(uow, tenant.id, row.id).status == "expired"
    assert state(db, tenant.id, line_id)["reserved"] == 0


def test_multi_borrowing_from_the_bureau(db: Database, tenant: TenantHandle) -> None:
    product(db, tenant.id, "consumer_installment")
    busy, _ = customer_line(db, tenant.id, "busy", enquiries=8, national_id="BUSY000001")
    some, _ = customer_line(db, tenant.id, "some", enquiries=5, national_id="SOME000001")
    declined = submit(db, tenant.id, busy)
    assert codes(declined) == ["multiple_recent_applications"]
    assert declined.details["multi_borrowing"]["bureau_enquiries_30d"] == 8
    assert "bureau_enquiries_30d_decline" in declined.details["findings"]
    reviewed = submit(db, tenant.id, some)
    assert reviewed.status == "in_review"
    assert codes(reviewed) == ["manual_review", "multiple_recent_applications"]


def test_multi_borrowing_from_our_records_finds_the_same_national_id(db: Database, tenant: TenantHandle) -> None:
    product(db, tenant.id, "consumer_installment")
    alice_id, _ = customer_line(db, tenant.id, "alice", national_id="DUP0000001")
    # A second customer record of the same person: another applicant, the same national id.
    twin_id, _ = customer_line(db, tenant.id, "alice-2", national_id="dup-000-0001")
    set_policy(db, tenant.id, own_applications_review=2, own_applications_decline=3, own_open_review=10,
               own_open_decline=10)
    first = submit(db, tenant.id, alice_id)
    assert first.status == "approved" and first.details["multi_borrowing"]["duplicate_applicants"] == 1
    second = submit(db, tenant.id, twin_id)
    assert second.status == "approved" and second.details["multi_borrowing"]["own_applications"] == 1
    third = submit(db, tenant.id, alice_id)
    assert (third.status, codes(third)) == ("in_review", ["manual_review", "multiple_recent_applications"])
    fourth = submit(db, tenant.id, twin_id)
    assert (fourth.status, codes(fourth)) == ("declined", ["multiple_recent_applications"])
    # Open loans with us: the approved and in-review applications of the person.
    set_policy(db, tenant.id, own_applications_review=100, own_applications_decline=100, own_open_review=2,
               own_open_decline=3)
    fifth = submit(db, tenant.id, alice_id)
    assert fifth.details["multi_borrowing"]["own_open"] == 3
    assert (fifth.status, codes(fifth)) == ("declined", ["too_many_open_loans"])


def test_bad_applications_are_refused_and_write_nothing(db: Database, tenant: TenantHandle,
                                                        alice: tuple[str, str]) -> None:
    applicant_id, _ = alice

    def refused(code: str, param: str, **overrides: Any) -> None:
        args: dict[str, Any] = {"applicant_id": applicant_id, "product_code": "consumer_installment",
                                "principal_amount": 500_000, "term": 12, "purpose": "purchase"}
        args.update(overrides)
        with db.uow() as uow, pytest.raises((InvalidRequest, NotFound)) as raised:
            applications.submit(uow, tenant.id, actor="test", **args)
        assert (raised.value.code, raised.value.param) == (code, param)

    refused("principal_out_of_range", "principal_amount", principal_amount=50)
    refused("principal_out_of_range", "principal_amount", principal_amount="500000")
    refused("term_not_offered", "term", term=5)
    refused("invalid_purpose", "purpose", purpose="gambling")
    refused("invalid_ip", "ip", ip="300.1.1.1")
    refused("invalid_product", "product_id", product_code=None)
    refused("applicant_not_found", "applicant_id", applicant_id="apl_nobody")
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(LoanApplication)) == 0


def test_the_review_policy_is_checked(db: Database, tenant: TenantHandle) -> None:
    for changes, param in (({"own_open_review": 5, "own_open_decline": 4}, "own_open_review"),
                           ({"expiry_days": 0}, "expiry_days"), ({"review_ratings": ["E"]}, "review_ratings"),
                           ({"colour": 1}, "colour"), ({"own_window_days": True}, "own_window_days")):
        with pytest.raises(InvalidRequest) as raised:
            applications.check_policy(changes)
        assert raised.value.param == param
    policy = applications.check_policy({"review_ratings": ["D", "C"]})
    assert policy.review_ratings == ("C", "D")


def test_applications_are_tenant_scoped(db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                                        alice: tuple[str, str]) -> None:
    row = submit(db, tenant.id, alice[0])
    with db.uow() as uow:
        for call in (lambda: applications.get_application(uow, other_tenant.id, row.id),
                     lambda: contracts.get_contract(uow, other_tenant.id, row.id),
                     lambda: applications.cancel(uow, other_tenant.id, row.id, actor="x")):
            with pytest.raises(NotFound):
                call()
        assert applications.list_applications(uow, other_tenant.id) == []
        assert applications.figures(uow, other_tenant.id)["applications"] == 0


def test_figures_come_from_the_stored_applications(db: Database, tenant: TenantHandle, alice: tuple[str, str],
                                                   clock: FrozenClock) -> None:
    applicant_id, _ = alice
    live_rules(db, tenant.id)
    set_policy(db, tenant.id, own_open_review=10, own_open_decline=10, own_applications_review=50,
               own_applications_decline=50)
    submit(db, tenant.id, applicant_id)                                   # approved automatically
    submit(db, tenant.id, applicant_id, amount=3_000_000)                 # declined
    reviewed = submit(db, tenant.id, applicant_id, amount=1_200_000)      # review → approved
    clock.advance(timedelta(hours=1))
    submit(db, tenant.id, applicant_id, amount=1_300_000)                 # review, still open
    with db.uow() as uow:
        cases.close_case(uow, tenant.id, reviewed.case_id or "", outcome="false_positive", action="approve",
                         actor="analyst")
        uow.commit()
    with db.uow(read_only=True) as uow:
        latencies = sorted(r.latency_us for r in applications.list_applications(uow, tenant.id))
        found = applications.figures(uow, tenant.id)
        earlier = applications.figures(uow, tenant.id, until=T0 + timedelta(minutes=30))
    assert (found["applications"], found["decided"], found["approved"], found["pending_review"]) == (4, 3, 2, 1)
    assert found["approval_rate"] == "0.6667" and found["automatic_approval_rate"] == "0.2500"
    assert found["review_rate"] == "0.5000"
    assert found["latency_p50_us"] == latencies[1] and found["latency_p99_us"] == latencies[3]
    assert earlier["applications"] == 3 and earlier["review_rate"] == "0.3333"
    with db.uow(read_only=True) as uow, pytest.raises(InvalidRequest):
        applications.figures(uow, tenant.id, since=T0, until=T0)


def test_a_reservation_refused_at_the_last_moment_declines(db: Database, tenant: TenantHandle,
                                                           alice: tuple[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    applicant_id, _ = alice

    def taken(*args: Any, **kwargs: Any) -> None:
        raise limits.CreditLimitExceeded("taken meanwhile", param="amount")

    monkeypatch.setattr(limits, "reserve", taken)
    row = submit(db, tenant.id, applicant_id)
    assert codes(row) == ["limit_insufficient"] and "reservation_refused" in row.details["findings"]
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(LoanContract)) == 0
