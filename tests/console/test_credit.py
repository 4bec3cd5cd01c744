"""The Credit pages as staff use them: the portfolio dashboard over a known book, applications with their
decision and reasons, applicants with their limit history, loans with their schedule and the money actions
(repayment, write-off, recovery) under the API's permissions, and the collections queue with its actions."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from finloop.audit.models import AuditEvent
from finloop.credit import applications, disbursement, limits, registry
from finloop.credit import service as credit
from finloop.credit.collections import service as collections
from finloop.credit.collections.models import CollectionCase, CollectionNote, PromiseToPay
from finloop.credit.models import CreditLimitChange
from finloop.credit.servicing.domain import bucket_for, day_number
from finloop.credit.servicing.models import LoanAccount, LoanInstallment, Repayment
from finloop.db.uow import Database
from finloop.payouts import flows as payout_flows
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.tenancy.models import ApprovalRequest
from tests.conftest import TenantHandle
from tests.console.conftest import sign_in
from tests.credit.conftest import make_applicant
from tests.credit.portfolio.conftest import book, parents
from tests.credit.test_disbursement import borrower, signed
from tests.credit.test_funding import source
from tests.credit.test_limits import product, rated, reported


@pytest.fixture(autouse=True)
def _fresh_credit_caches() -> Iterator[None]:
    registry.forget()
    credit.forget_keys()
    yield
    registry.forget()
    credit.forget_keys()


@pytest.fixture
def bank(db: Database) -> Iterator[SandboxBank]:
    sandbox = SandboxBank(db.clock)
    with payout_flows.use_bank(sandbox):
        yield sandbox


def lending(db: Database, tenant_id: str) -> None:
    product(db, tenant_id, "consumer_installment")
    source(db, tenant_id, "bank_a", "0.06", 50_000_000)


def disbursed(db: Database, tenant_id: str, reference: str, national_id: str, amount: int = 1_000_000) -> str:
    """A real loan: scored applicant, line, approved and signed application, disbursed through the sandbox bank."""
    applicant_id, _ = borrower(db, tenant_id, reference, national_id=national_id)
    return disbursement.disburse(db, tenant_id, signed(db, tenant_id, applicant_id, amount=amount, term=12),
                                 actor="test")


def declined(db: Database, tenant_id: str) -> str:
    """An application of a rejected applicant (zero line): declined with its reasons."""
    party = make_applicant(db, tenant_id, "rejected", national_id="110101198001010022", phone=None)
    rated(db, tenant_id, party.applicant_id, "reject", score=300)
    reported(db, tenant_id, party.applicant_id)
    with db.uow() as uow:
        limits.grant_line(uow, tenant_id, party.applicant_id, actor="test")
        row = applications.submit(uow, tenant_id, applicant_id=party.applicant_id,
                                  product_code="consumer_installment", principal_amount=500_000, term=12,
                                  purpose="purchase", actor="test")
        uow.commit()
        assert row.status == "declined"
        return row.id


def account(db: Database, loan_id: str) -> LoanAccount:
    with db.uow(read_only=True) as uow:
        row = uow.session.get(LoanAccount, loan_id)
        assert row is not None
        uow.session.expunge(row)
        return row


def count(db: Database, model: type, **where: object) -> int:
    with db.uow(read_only=True) as uow:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(uow.session.scalar(query) or 0)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------------------------------- dashboard


def test_the_dashboard_shows_the_books_rates_vintage_roll_rates_and_pnl(db: Database, tenant: TenantHandle,
                                                                          staff_factory) -> None:  # type: ignore[no-untyped-def]
    p = parents(db, tenant.id, applicants=3)
    # Three January loans: one 35 days past due by February, one current, one written off on 20 February.
    book(db, p, applicant=0, disbursed_on=date(2026, 1, 10), state="overdue", dpd=35,
         snapshots=[{"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 35}])
    book(db, p, applicant=1, disbursed_on=date(2026, 1, 12),
         snapshots=[{"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 0}])
    book(db, p, applicant=2, disbursed_on=date(2026, 1, 5), state="written_off", closed_on=date(2026, 2, 20),
         totals={"written_off_amount": 500_000}, snapshots=[{"month": "2026-01", "dpd": 0}])
    page = staff_factory("auditor").get("/console/credit")
    assert page.status_code == 200, page.text
    text = page.text
    assert "CNY 20,000.00" in text  # two open loans outstanding
    assert "50.00%" in text  # overdue rate: the M2 loan's principal over the book
    assert "16.67%" in text  # bad debt: 5,000 written off of 30,000 lent
    assert '<svg class="chart"' in text and "2026-01" in text  # the vintage curve of January
    assert "0: 0.0% · 1: 33.3%" in text  # one of three loans ever 30+ days past due in its first month on book
    # Roll rates from the January to the February month end: of three M0 loans, one each to M0, M2, written off.
    assert text.count(">33.3%</td>") == 3 and "background: rgba(220, 38, 38, 0.200)" in text
    assert "Profit and loss" in text and "CNY 30,000.00" in text  # principal lent


def test_the_dashboard_refuses_a_bad_month_with_the_error_page(tenant: TenantHandle, staff_factory) -> None:  # type: ignore[no-untyped-def]
    answer = staff_factory("auditor").get("/console/credit", params={"roll_from": "2026-13"})
    assert answer.status_code == 400 and "invalid_month" in answer.text and "roll_from" in answer.text


# ---------------------------------------------------------------------------------------------- applications


def test_applications_filter_export_and_show_the_decision_with_its_reasons(
        db: Database, tenant: TenantHandle, bank: SandboxBank, staff_factory) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    loan_id = disbursed(db, tenant.id, "alice", "110101199003070011")
    refused = declined(db, tenant.id)
    with db.uow(read_only=True) as uow:
        approved = disbursement.get_loan(uow, tenant.id, loan_id).application_id
    auditor = staff_factory("auditor")
    page = auditor.get("/console/credit/applications")
    assert page.status_code == 200 and approved in page.text and refused in page.text
    only_declined = auditor.get("/console/credit/applications", params={"decision": "decline"})
    assert refused in only_declined.text and approved not in only_declined.text
    exported = auditor.get("/console/credit/applications", params={"format": "csv", "status": "contract_signed"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert [row["Application"] for row in rows_of(exported.text)] == [approved]
    assert auditor.get("/console/credit/applications", params={"q": refused}).text.count(refused) >= 1
    detail = auditor.get(f"/console/credit/applications/{refused}")
    assert detail.status_code == 200
    assert "rating_reject" in detail.text and "limit_insufficient" in detail.text
    assert "Based on our credit assessment" in detail.text  # the message the applicant is shown
    assert "Rule that fired" in detail.text and "Multi-borrowing" in detail.text
    shown = auditor.get(f"/console/credit/applications/{approved}")
    assert f"/console/credit/loans/{loan_id}" in shown.text and "signed" in shown.text


# ---------------------------------------------------------------------------------------------- applicants and lines


def test_applicants_show_their_line_and_limit_history_and_admin_freezes_it(
        db: Database, tenant: TenantHandle, staff_factory) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    applicant_id, line_id = borrower(db, tenant.id, "alice")
    auditor = staff_factory("auditor")
    listed = auditor.get("/console/credit/customers")
    assert listed.status_code == 200 and applicant_id in listed.text and line_id in listed.text
    exported = rows_of(auditor.get("/console/credit/customers", params={"format": "csv", "line": "active"}).text)
    assert [(row["Applicant"], row["Line status"]) for row in exported] == [(applicant_id, "active")]
    assert applicant_id not in auditor.get("/console/credit/customers", params={"line": "frozen"}).text
    detail = auditor.get(f"/console/credit/customers/{applicant_id}")
    assert detail.status_code == 200 and "Limit history" in detail.text and "granted" in detail.text
    assert "Your role may not change limits" in detail.text
    refused = auditor.post(f"/console/credit/customers/{applicant_id}/line/freeze", {"note": "x"},
                           page=f"/console/credit/customers/{applicant_id}")
    assert refused.status_code == 403
    admin = staff_factory("admin")
    page = f"/console/credit/customers/{applicant_id}"
    assert "Freeze line" in admin.get(page).text
    frozen = admin.post(f"/console/credit/customers/{applicant_id}/line/freeze", {"note": "fraud check"},
                        page=page)
    assert frozen.status_code == 303, frozen.text
    assert count(db, CreditLimitChange, line_id=line_id, kind="frozen") == 1
    assert count(db, AuditEvent, action="console.credit_line.frozen", object_id=line_id) == 1
    assert "fraud check" in admin.get(page).text and "Unfreeze line" in admin.get(page).text


# ---------------------------------------------------------------------------------------------- loans


def test_loans_filter_search_export_and_show_the_schedule(db: Database, tenant: TenantHandle, bank: SandboxBank,
                                                          staff_factory) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    first = disbursed(db, tenant.id, "alice", "110101199003070011")
    second = disbursed(db, tenant.id, "bob", "110101199105080033", amount=2_000_000)
    with db.uow() as uow:
        row = uow.session.get(LoanAccount, second)
        assert row is not None
        row.state, row.dpd, row.bucket, row.max_dpd = "overdue", 12, "M1", 12
        uow.commit()
    auditor = staff_factory("auditor")
    page = auditor.get("/console/credit/loans")
    assert page.status_code == 200 and first in page.text and second in page.text
    overdue = auditor.get("/console/credit/loans", params={"bucket": "M1"})
    assert second in overdue.text and first not in overdue.text
    assert first not in auditor.get("/console/credit/loans", params={"state": "overdue"}).text
    assert second not in auditor.get("/console/credit/loans", params={"q": first}).text
    by_product = auditor.get("/console/credit/loans", params={"product": "consumer_installment"}).text
    assert first in by_product and second in by_product
    assert first not in auditor.get("/console/credit/loans", params={"product": "bnpl_3"}).text
    exported = rows_of(auditor.get("/console/credit/loans", params={"format": "csv", "state": "performing"}).text)
    assert [(row["Loan"], row["Principal"], row["Bucket"]) for row in exported] == [(first, "1000000", "M0")]
    detail = auditor.get(f"/console/credit/loans/{first}")
    assert detail.status_code == 200
    assert detail.text.count('<td class="num">') > 12 and "Schedule" in detail.text
    with db.uow(read_only=True) as uow:
        installments = uow.session.scalar(select(func.count()).select_from(LoanInstallment)
                                          .where(LoanInstallment.loan_id == first))
    assert installments == 12 and "Paying off today takes" in detail.text
    assert "Your role may not record repayments" in detail.text


def test_a_repayment_recorded_in_the_console_changes_the_loan_and_is_audited(
        db: Database, tenant: TenantHandle, bank: SandboxBank, staff_factory) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    loan_id = disbursed(db, tenant.id, "alice", "110101199003070011")
    finance = staff_factory("finance")
    page = f"/console/credit/loans/{loan_id}"
    assert "Record repayment" in finance.get(page).text
    answer = finance.post(f"/console/credit/loans/{loan_id}/repayments",
                          {"amount": "1,250.50", "reference": "bank-77", "prepayment": ""}, page=page)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == page
    after = account(db, loan_id)
    assert (after.paid_amount, after.advance_amount) == (125_050, 125_050)  # nothing billed yet: held in advance
    with db.uow(read_only=True) as uow:
        [repayment] = uow.session.scalars(select(Repayment).where(Repayment.loan_id == loan_id))
        assert (repayment.amount, repayment.reference, repayment.source) == (125_050, "bank-77", "manual")
        [event] = uow.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "console.loan.repayment_recorded"))
        assert (event.object_type, event.object_id, event.actor) == ("loan", loan_id, f"user:{finance.user_id}")
        assert event.after["form"]["reference"] == "bank-77"
    assert count(db, AuditEvent, action="credit.repayment.applied") == 1
    shown = finance.get(page).text
    assert "bank-77" in shown and "CNY 1,250.50" in shown and "Repayment recorded." in shown


def test_an_auditor_is_refused_every_loan_action_and_nothing_changes(
        db: Database, tenant: TenantHandle, bank: SandboxBank, staff_factory) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    loan_id = disbursed(db, tenant.id, "alice", "110101199003070011")
    before = account(db, loan_id)
    auditor = staff_factory("auditor")
    page = f"/console/credit/loans/{loan_id}"
    assert "Record repayment" not in auditor.get(page).text and "Request write-off" not in auditor.get(page).text
    paid = auditor.post(f"/console/credit/loans/{loan_id}/repayments", {"amount": "100.00", "reference": "r1"},
                        page=page)
    lost = auditor.post(f"/console/credit/loans/{loan_id}/write-off", {"reason": "fraud"}, page=page)
    assert (paid.status_code, lost.status_code) == (403, 403)
    assert "role_not_allowed" in paid.text and "role_not_allowed" in lost.text
    after = account(db, loan_id)
    assert (after.state, after.paid_amount, after.version) == (before.state, before.paid_amount, before.version)
    assert count(db, Repayment, loan_id=loan_id) == 0
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.action.like("console.loan.%"))) == 0


@pytest.mark.parametrize("amount", ["12.345", "-5", "abc", "0", ""])
def test_a_bad_amount_is_a_400_and_writes_nothing(db: Database, tenant: TenantHandle, bank: SandboxBank,
                                                  staff_factory, amount: str) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    loan_id = disbursed(db, tenant.id, "alice", "110101199003070011")
    before = account(db, loan_id)
    finance = staff_factory("finance")
    answer = finance.post(f"/console/credit/loans/{loan_id}/repayments", {"amount": amount, "reference": "r1"},
                          page=f"/console/credit/loans/{loan_id}")
    assert answer.status_code == 400
    assert "invalid_amount" in answer.text or "missing_field" in answer.text
    assert count(db, Repayment, loan_id=loan_id) == 0
    assert account(db, loan_id).version == before.version
    assert count(db, AuditEvent, action="console.loan.repayment_recorded") == 0


def test_a_write_off_takes_two_finance_users_then_a_recovery_is_recorded(
        db: Database, tenant: TenantHandle, bank: SandboxBank, staff_factory) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    loan_id = disbursed(db, tenant.id, "alice", "110101199003070011")
    page = f"/console/credit/loans/{loan_id}"
    support = staff_factory("support")
    assert "Your role may not write loans off" in support.get(page).text
    assert support.post(f"/console/credit/loans/{loan_id}/write-off", {"reason": "fraud"}, page=page).status_code \
        == 403
    maker = staff_factory("finance")
    missing_reason = maker.post(f"/console/credit/loans/{loan_id}/write-off", {"reason": ""}, page=page)
    assert missing_reason.status_code == 400 and count(db, ApprovalRequest) == 0
    asked = maker.post(f"/console/credit/loans/{loan_id}/write-off", {"reason": "fraud"}, page=page)
    assert asked.status_code == 303, asked.text
    approval_id = asked.headers["location"].rsplit("/", 1)[-1]
    assert account(db, loan_id).state == "performing"  # nothing leaves the books on one person's word
    assert count(db, AuditEvent, action="console.loan.write_off_requested") == 1
    own = maker.post(f"/console/approvals/{approval_id}/approve", page=page)
    assert own.status_code == 403 and "self_approval" in own.text
    assert account(db, loan_id).state == "performing"
    checker = staff_factory("finance")
    done = checker.post(f"/console/approvals/{approval_id}/approve", page=page)
    assert done.status_code == 303, done.text
    gone = account(db, loan_id)
    assert (gone.state, gone.written_off_amount, gone.principal_outstanding) == ("written_off", 1_000_000, 0)
    assert count(db, AuditEvent, action="credit.loan.written_off") == 1
    shown = checker.get(page).text
    assert "Record recovery" in shown and "Record repayment" not in shown
    recovered = checker.post(f"/console/credit/loans/{loan_id}/recoveries", {"amount": "300", "reference": "agency-1"},
                             page=page)
    assert recovered.status_code == 303, recovered.text
    assert account(db, loan_id).recovered_amount == 30_000
    assert count(db, AuditEvent, action="console.loan.recovery_recorded") == 1


def test_a_limit_override_waits_for_a_risk_analyst(db: Database, tenant: TenantHandle,
                                                   staff_factory) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    applicant_id, line_id = borrower(db, tenant.id, "alice")
    page = f"/console/credit/customers/{applicant_id}"
    maker = staff_factory("risk_analyst")
    bad = maker.post(f"/console/credit/customers/{applicant_id}/line/adjust", {"limit_amount": "1.001", "note": "x"},
                     page=page)
    assert bad.status_code == 400 and count(db, ApprovalRequest) == 0
    asked = maker.post(f"/console/credit/customers/{applicant_id}/line/adjust",
                       {"limit_amount": "12345.00", "note": "salary verified"}, page=page)
    assert asked.status_code == 303, asked.text
    approval_id = asked.headers["location"].rsplit("/", 1)[-1]
    assert count(db, CreditLimitChange, line_id=line_id, reason="manual") == 0
    finance = staff_factory("finance")
    assert finance.post(f"/console/approvals/{approval_id}/approve", page=page).status_code == 403  # needs the role
    checker = staff_factory("risk_analyst")
    assert checker.post(f"/console/approvals/{approval_id}/approve", page=page).status_code == 303
    with db.uow(read_only=True) as uow:
        assert limits.get_line(uow, tenant.id, line_id).limit_amount == 1_234_500
    assert count(db, CreditLimitChange, line_id=line_id, reason="manual") >= 1


def test_another_tenants_credit_objects_are_404(app, db: Database, tenant: TenantHandle,  # type: ignore[no-untyped-def]
                                                 other_tenant: TenantHandle, bank: SandboxBank) -> None:
    lending(db, other_tenant.id)
    loan_id = disbursed(db, other_tenant.id, "alice", "110101199003070011")
    with db.uow(read_only=True) as uow:
        loan = disbursement.get_loan(uow, other_tenant.id, loan_id)
        application_id, applicant_id = loan.application_id, loan.applicant_id
    stranger = sign_in(app, db, tenant.id, "nosy@example.com", ["admin"])
    for path in (f"/console/credit/loans/{loan_id}", f"/console/credit/applications/{application_id}",
                 f"/console/credit/customers/{applicant_id}"):
        assert stranger.get(path).status_code == 404, path
    before = account(db, loan_id)
    answer = stranger.post(f"/console/credit/loans/{loan_id}/repayments", {"amount": "10", "reference": "x"})
    assert answer.status_code == 404
    assert stranger.post(f"/console/credit/loans/{loan_id}/write-off", {"reason": "x"}).status_code == 404
    assert stranger.post(f"/console/credit/customers/{applicant_id}/line/freeze", {"note": "x"}).status_code == 404
    assert account(db, loan_id).version == before.version and count(db, Repayment) == 0
    assert loan_id not in stranger.get("/console/credit/loans").text


# ---------------------------------------------------------------------------------------------- collections


def past_due(db: Database, tenant_id: str, loan_id: str, dpd: int) -> str:
    """Put the loan ``dpd`` days past due (its first installment billed and unpaid) and open its case."""
    with db.uow() as uow:
        row = uow.session.get(LoanAccount, loan_id)
        assert row is not None
        due_on = uow.session.scalar(select(LoanInstallment.due_on).where(LoanInstallment.loan_id == loan_id,
                                                                         LoanInstallment.number == 1))
        assert due_on is not None
        row.dpd, row.bucket, row.max_dpd, row.state = dpd, bucket_for(dpd).value, dpd, "overdue"
        row.principal_billed, row.oldest_unpaid_due_day = 10_000, day_number(due_on)
        uow.session.flush()
        collections.sync_cases(uow, tenant_id, due_on + timedelta(days=dpd))
        uow.commit()
        case_id = uow.session.scalar(select(CollectionCase.id).where(CollectionCase.loan_id == loan_id))
        assert case_id is not None
        return case_id


def test_the_collections_queue_filters_and_its_actions_are_audited(
        db: Database, tenant: TenantHandle, bank: SandboxBank, staff_factory) -> None:  # type: ignore[no-untyped-def]
    lending(db, tenant.id)
    early = past_due(db, tenant.id, disbursed(db, tenant.id, "alice", "110101199003070011"), 5)
    late = past_due(db, tenant.id, disbursed(db, tenant.id, "bob", "110101199105080033"), 40)
    auditor = staff_factory("auditor")
    queue = auditor.get("/console/credit/collections")
    assert queue.status_code == 200 and early in queue.text and late in queue.text
    assert "Open cases M1" in queue.text
    m2 = auditor.get("/console/credit/collections", params={"bucket": "M2"})
    assert late in m2.text and early not in m2.text
    exported = rows_of(auditor.get("/console/credit/collections", params={"format": "csv", "bucket": "M1"}).text)
    assert [(row["Case"], row["DPD"], row["Overdue"]) for row in exported] == [(early, "5", "10000")]
    page = f"/console/credit/collections/{early}"
    assert "Your role may not work collection cases" in auditor.get(page).text
    assert auditor.post(f"{page}/escalate", {"reason": "manual"}, page=page).status_code == 403
    support = staff_factory("support")
    shown = support.get(page).text
    assert "Escalate case" in shown and "Record promise to pay" in shown and "Add note" in shown
    assert support.post(f"{page}/escalate", {"reason": "no_contact"}, page=page).status_code == 303
    assert support.post(f"{page}/notes", {"text": "Called, will pay Friday."}, page=page).status_code == 303
    promised = support.post(f"{page}/promises", {"amount": "100.00", "promised_on": "2026-03-06"}, page=page)
    assert promised.status_code == 303, promised.text
    with db.uow(read_only=True) as uow:
        case = collections.get_case(uow, tenant.id, early)
        assert (case.queue, case.escalation_reason) == ("manual", "no_contact")
        [promise] = uow.session.scalars(select(PromiseToPay).where(PromiseToPay.case_id == early))
        assert (promise.amount, promise.promised_on) == (10_000, date(2026, 3, 6))
    assert count(db, CollectionNote, case_id=early) == 1
    for action in ("escalated", "note_added", "promise_recorded"):
        assert count(db, AuditEvent, action=f"console.collection_case.{action}") == 1, action
    bad = support.post(f"/console/credit/collections/{late}/promises",
                       {"amount": "1.001", "promised_on": "2026-03-06"}, page=page)
    assert bad.status_code == 400 and count(db, PromiseToPay, case_id=late) == 0
    late_page = f"/console/credit/collections/{late}"
    assert auditor.email not in support.get(late_page).text  # only users who may collect are offered
    assigned = support.post(f"{late_page}/assign", {"assignee_id": support.user_id}, page=late_page)
    assert assigned.status_code == 303, assigned.text
    with db.uow(read_only=True) as uow:
        case = collections.get_case(uow, tenant.id, late)
        assert (case.assignee_id, case.queue) == (support.user_id, "manual")
    assert count(db, AuditEvent, action="console.collection_case.assigned") == 1
    again = support.get(page).text
    assert "Called, will pay Friday." in again and "Escalate case" not in again


def test_support_reads_the_borrowers_messages_and_answers(db: Database, tenant: TenantHandle,
                                                          staff_factory) -> None:  # type: ignore[no-untyped-def]
    from finloop.credit.portal import service as portal
    from finloop.credit.portal.models import PortalMessage

    applicant_id = make_applicant(db, tenant.id, "carol", national_id="110101199003070038").applicant_id
    with db.uow() as uow:
        portal.post_message(uow, tenant.id, applicant_id, sender="borrower", body="When is my next payment due?",
                            actor=portal.borrower_actor(applicant_id))
        uow.commit()
    auditor = staff_factory("auditor")
    inbox = auditor.get("/console/credit/messages", params={"sender": "borrower"})
    assert inbox.status_code == 200 and "When is my next payment due?" in inbox.text
    page = f"/console/credit/messages/{applicant_id}"
    assert "Your role may not answer borrowers" in auditor.get(page).text
    assert auditor.post(page, {"body": "x"}, page=page).status_code == 403
    support = staff_factory("support")
    assert support.post(page, {"body": "   "}, page=page).status_code == 400
    answered = support.post(page, {"body": "On the 15th, CNY 512.30."}, page=page)
    assert answered.status_code == 303, answered.text
    assert "On the 15th, CNY 512.30." in support.get(page).text
    assert count(db, PortalMessage, applicant_id=applicant_id, sender="staff") == 1
    assert count(db, AuditEvent, action="console.portal_message.answered") == 1
