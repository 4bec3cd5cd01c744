"""Collections on a real disbursed loan (both backends): a case opens when the loan falls past due and follows the
tenant's strategy once per day (SMS, calls, escalation to the manual queue), catching up skipped days without
sending twice; it is cured or written off with the account; promises to pay are kept or broken (then escalated);
assignment, notes and bad input; reminders three days before and on the due date with their webhook event and
SMS; and phone numbers appear nowhere."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit.collections import service
from finloop.credit.collections.models import (
    CollectionAction,
    CollectionCase,
    CollectionNote,
    PromiseToPay,
    Reminder,
)
from finloop.credit.servicing.models import LoanInstallment
from finloop.db.uow import Database
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.tenancy import service as tenancy
from finloop.webhooks.models import WebhookMessage
from tests.conftest import TenantHandle, make_tenant
from tests.credit.collections.conftest import (
    PHONE,
    Sandboxes,
    days,
    first_due,
    lending,
    loan,
    repaid,
    set_account,
)

MONDAY = date(2026, 3, 2)


@pytest.fixture
def loan_id(db: Database, tenant: TenantHandle, bank: SandboxBank) -> str:
    lending(db, tenant.id)
    return loan(db, tenant.id)


def run(db: Database, tenant_id: str, day: date) -> dict[str, int]:
    return service.run_day(db, tenant_id, day).to_json()


def the_case(db: Database, tenant_id: str, loan_id: str) -> CollectionCase:
    with db.uow(read_only=True) as uow:
        rows = service.list_cases(uow, tenant_id, loan_id=loan_id)
        assert rows, "no case"
        uow.session.expunge(rows[-1])
        return rows[-1]


def actions(db: Database, case_id: str) -> list[tuple[str, str, int, str, str | None]]:
    with db.uow(read_only=True) as uow:
        return [(a.kind, a.trigger, a.dpd, a.status, a.outcome) for a in uow.session.scalars(
            select(CollectionAction).where(CollectionAction.case_id == case_id).order_by(CollectionAction.id))]


def count(db: Database, model: Any) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


# ---------------------------------------------------------------------------------------------- cases and strategy


def test_a_loan_past_due_opens_a_case_and_gets_one_sms_per_strategy_day(
        db: Database, tenant: TenantHandle, loan_id: str, sandboxes: Sandboxes) -> None:
    assert run(db, tenant.id, MONDAY)["opened"] == 0  # performing: no case
    set_account(db, loan_id, dpd=1)
    first = run(db, tenant.id, MONDAY)
    assert (first["opened"], first["actions"], first["sent"]) == (1, 1, 1)
    case = the_case(db, tenant.id, loan_id)
    assert (case.status, case.queue, case.bucket, case.dpd, case.overdue_amount) == ("open", "automatic", "M1", 1,
                                                                                    10_000)
    assert actions(db, case.id) == [("sms", "strategy", 1, "sent", "delivered")]
    assert [(template, params["dpd"]) for _, template, params in sandboxes.sms.messages] == [("collection_m1", "1")]
    # The same date again: nothing new, nothing sent twice.
    again = run(db, tenant.id, MONDAY)
    assert (again["opened"], again["actions"], again["sent"]) == (0, 0, 0) and len(sandboxes.sms.messages) == 1
    # Days 2 to 6 do nothing; day 7 is the next SMS.
    set_account(db, loan_id, dpd=6)
    assert run(db, tenant.id, MONDAY + days(5))["actions"] == 0
    set_account(db, loan_id, dpd=7)
    assert run(db, tenant.id, MONDAY + days(6))["actions"] == 1
    assert [a[2] for a in actions(db, case.id)] == [1, 7]


def test_skipped_days_are_caught_up_with_one_action_of_a_kind(db: Database, tenant: TenantHandle,
                                                              loan_id: str, sandboxes: Sandboxes) -> None:
    set_account(db, loan_id, dpd=16)  # days 1, 7 and 15 were never run: one SMS, not three
    assert run(db, tenant.id, MONDAY)["actions"] == 1
    case = the_case(db, tenant.id, loan_id)
    assert actions(db, case.id) == [("sms", "strategy", 16, "sent", "delivered")]
    assert case.max_dpd == 16


def test_m2_calls_every_week_and_m3_escalates_to_the_manual_queue(db: Database, tenant: TenantHandle,
                                                                   loan_id: str, sandboxes: Sandboxes) -> None:
    set_account(db, loan_id, dpd=30)
    run(db, tenant.id, MONDAY)
    set_account(db, loan_id, dpd=31)
    run(db, tenant.id, MONDAY + days(1))
    set_account(db, loan_id, dpd=38)
    run(db, tenant.id, MONDAY + days(8))
    case = the_case(db, tenant.id, loan_id)
    assert actions(db, case.id) == [("sms", "strategy", 30, "sent", "delivered"),
                                    ("sms", "strategy", 31, "sent", "delivered"),
                                    ("call", "strategy", 31, "sent", "answered"),
                                    ("call", "strategy", 38, "sent", "answered")]
    assert len(sandboxes.calls.calls) == 2
    set_account(db, loan_id, dpd=61)
    assert run(db, tenant.id, MONDAY + days(31))["actions"] == 1
    case = the_case(db, tenant.id, loan_id)
    assert (case.queue, case.escalated_on, case.escalation_reason) == ("manual", MONDAY + days(31), "bucket_M3")
    assert actions(db, case.id)[-1] == ("escalate", "strategy", 61, "done", None)
    # In the manual queue a person owns the case: no more automatic SMS or calls, no second escalation.
    set_account(db, loan_id, dpd=95)
    assert run(db, tenant.id, MONDAY + days(65))["actions"] == 0


def test_a_tenant_strategy_replaces_the_default(db: Database, tenant: TenantHandle, loan_id: str) -> None:
    with db.uow() as uow:
        service.set_policy(uow, tenant.id, {"M1": {"sms_every_days": 2, "call_every_days": 3}}, actor="test")
        uow.commit()
    set_account(db, loan_id, dpd=1)
    run(db, tenant.id, MONDAY)
    case = the_case(db, tenant.id, loan_id)
    assert sorted(a[0] for a in actions(db, case.id)) == ["call", "sms"]
    set_account(db, loan_id, dpd=2)
    assert run(db, tenant.id, MONDAY + days(1))["actions"] == 0
    with db.uow() as uow, pytest.raises(InvalidRequest) as bad:
        service.set_policy(uow, tenant.id, {"M1": {"sms_on_dpd": [45]}}, actor="test")
    assert (bad.value.code, bad.value.param) == ("invalid_strategy", "rules.M1.sms_on_dpd")


def test_a_cured_loan_closes_its_case_and_a_new_delinquency_opens_another(
        db: Database, tenant: TenantHandle, loan_id: str) -> None:
    set_account(db, loan_id, dpd=3)
    run(db, tenant.id, MONDAY)
    first = the_case(db, tenant.id, loan_id)
    with db.uow() as uow:
        service.promise(uow, tenant.id, first.id, amount=5_000, promised_on=MONDAY + days(5), actor="test")
        uow.commit()
    set_account(db, loan_id, dpd=0)
    assert run(db, tenant.id, MONDAY + days(1))["cured"] == 1
    with db.uow(read_only=True) as uow:
        closed = service.get_case(uow, tenant.id, first.id)
        assert (closed.status, closed.closed_on) == ("cured", MONDAY + days(1))
        assert [p.status for p in service.list_promises(uow, tenant.id, case_id=first.id)] == ["cancelled"]
    set_account(db, loan_id, dpd=1)
    assert run(db, tenant.id, MONDAY + days(30))["opened"] == 1
    second = the_case(db, tenant.id, loan_id)
    assert second.id != first.id and second.status == "open"
    with db.uow() as uow, pytest.raises(Conflict) as closed_case:
        service.add_note(uow, tenant.id, first.id, body="history", author="test")  # a note is fine...
        service.escalate(uow, tenant.id, first.id, actor="test")  # ...working a closed case is not
    assert closed_case.value.code == "case_not_open"


def test_a_written_off_account_closes_its_case_as_written_off(db: Database, tenant: TenantHandle,
                                                                loan_id: str) -> None:
    set_account(db, loan_id, dpd=100)
    run(db, tenant.id, MONDAY)
    set_account(db, loan_id, dpd=121, state="written_off")
    assert run(db, tenant.id, MONDAY + days(21))["written_off"] == 1
    assert the_case(db, tenant.id, loan_id).status == "written_off"


# ---------------------------------------------------------------------------------------------- promises


def test_a_promise_is_kept_by_repayments_made_since_by_its_date(db: Database, tenant: TenantHandle,
                                                                  loan_id: str, sandboxes: Sandboxes) -> None:
    set_account(db, loan_id, dpd=3)
    run(db, tenant.id, MONDAY)
    case = the_case(db, tenant.id, loan_id)
    with db.uow() as uow:
        made = service.promise(uow, tenant.id, case.id, amount=8_000, promised_on=MONDAY + days(4), actor="test")
        uow.commit()
    # While the promise runs the borrower is not chased.
    set_account(db, loan_id, dpd=7)
    assert run(db, tenant.id, MONDAY + days(4))["actions"] == 0
    repaid(db, tenant.id, loan_id, 5_000, MONDAY + days(1), "r1")
    repaid(db, tenant.id, loan_id, 900, MONDAY + days(1), "adv", source_="advance")  # not new money
    assert run(db, tenant.id, MONDAY + days(4))["kept"] == 0
    repaid(db, tenant.id, loan_id, 3_000, MONDAY + days(4), "r2")
    assert run(db, tenant.id, MONDAY + days(4))["kept"] == 1
    with db.uow(read_only=True) as uow:
        row = uow.session.get(PromiseToPay, made.id)
        assert row is not None and (row.status, row.paid_amount) == ("kept", 8_000)


def test_a_broken_promise_escalates_the_case(db: Database, tenant: TenantHandle, loan_id: str) -> None:
    set_account(db, loan_id, dpd=3)
    run(db, tenant.id, MONDAY)
    case = the_case(db, tenant.id, loan_id)
    with db.uow() as uow:
        service.promise(uow, tenant.id, case.id, amount=8_000, promised_on=MONDAY + days(2), actor="test")
        uow.commit()
    repaid(db, tenant.id, loan_id, 2_000, MONDAY + days(1), "r1")
    repaid(db, tenant.id, loan_id, 9_000, MONDAY + days(3), "late")  # after the date: does not count
    assert run(db, tenant.id, MONDAY + days(2))["broken"] == 0  # still the promised day
    assert run(db, tenant.id, MONDAY + days(3))["broken"] == 1
    case = the_case(db, tenant.id, loan_id)
    assert (case.queue, case.escalation_reason) == ("manual", "promise_broken")
    assert actions(db, case.id)[-1][:2] == ("escalate", "promise_broken")


def test_a_bad_or_second_promise_is_refused_and_writes_nothing(db: Database, tenant: TenantHandle,
                                                               loan_id: str) -> None:
    set_account(db, loan_id, dpd=3)
    run(db, tenant.id, MONDAY)
    case = the_case(db, tenant.id, loan_id)
    for amount, promised_on, code, param in (
            (0, date(2026, 3, 5), "invalid_amount", "amount"),
            (True, date(2026, 3, 5), "invalid_amount", "amount"),
            (100, date(2026, 3, 1), "invalid_promise_date", "promised_on"),  # yesterday
            (100, date(2026, 5, 2), "invalid_promise_date", "promised_on"),  # 61 days ahead
            (100, "2026-03-05", "invalid_promise_date", "promised_on")):
        with db.uow() as uow, pytest.raises(InvalidRequest) as bad:
            service.promise(uow, tenant.id, case.id, amount=amount, promised_on=promised_on, actor="test")
        assert (bad.value.code, bad.value.param) == (code, param)
    assert count(db, PromiseToPay) == 0
    with db.uow() as uow:
        service.promise(uow, tenant.id, case.id, amount=100, promised_on=MONDAY, actor="test")  # today is fine
        with pytest.raises(Conflict) as twice:
            service.promise(uow, tenant.id, case.id, amount=100, promised_on=MONDAY, actor="test")
        uow.commit()
    assert (twice.value.code, count(db, PromiseToPay)) == ("promise_pending", 1)


# ---------------------------------------------------------------------------------------------- people


def test_assignment_notes_and_manual_escalation(db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                                               loan_id: str) -> None:
    set_account(db, loan_id, dpd=3)
    run(db, tenant.id, MONDAY)
    case = the_case(db, tenant.id, loan_id)
    with db.uow() as uow:
        user = tenancy.create_user(uow, tenant.id, email="c@example.com", password="correct horse battery",
                                   roles=["support"], actor="test")
        stranger = tenancy.create_user(uow, other_tenant.id, email="s@example.com",
                                       password="correct horse battery", roles=["support"], actor="test")
        uow.commit()
    with db.uow() as uow:
        for assignee in (stranger.id, "usr_missing"):
            with pytest.raises(NotFound) as missing:
                service.assign(uow, tenant.id, case.id, assignee_id=assignee, actor="test")
            assert (missing.value.code, missing.value.param) == ("user_not_found", "assignee_id")
        with pytest.raises(NotFound):
            service.assign(uow, other_tenant.id, case.id, assignee_id=stranger.id, actor="test")
        assigned = service.assign(uow, tenant.id, case.id, assignee_id=user.id, actor="test")
        assert (assigned.assignee_id, assigned.queue) == (user.id, "manual")
        service.add_note(uow, tenant.id, case.id, body="Called at work, promised Friday.", author="test")
        service.add_note(uow, tenant.id, case.id, body="Left a message.", author="test")
        with pytest.raises(InvalidRequest) as empty:
            service.add_note(uow, tenant.id, case.id, body="  ", author="test")
        assert (empty.value.code, empty.value.param) == ("invalid_note", "body")
        # Assigned means manual already: escalating by hand has nothing to do.
        with pytest.raises(Conflict) as already:
            service.escalate(uow, tenant.id, case.id, actor="test")
        assert already.value.code == "case_already_escalated"
        uow.commit()
    with db.uow(read_only=True) as uow:
        assert [(n.seq, n.body) for n in service.list_notes(uow, tenant.id, case.id)] == [
            (1, "Called at work, promised Friday."), (2, "Left a message.")]
        assert [n.seq for n in service.list_notes(uow, tenant.id, case.id, after=1)] == [2]
        assert service.list_cases(uow, tenant.id, assignee_id=user.id)[0].id == case.id
        assert service.list_cases(uow, other_tenant.id) == []
    assert count(db, CollectionNote) == 2


# ---------------------------------------------------------------------------------------------- reminders


def test_reminders_go_three_days_before_and_on_the_due_date_once_each(
        db: Database, tenant: TenantHandle, loan_id: str, sandboxes: Sandboxes) -> None:
    due = first_due(db, loan_id)
    with db.uow() as uow:
        assert service.plan_reminders(uow, tenant.id, due - days(5), due - days(4)) == 0
        assert service.plan_reminders(uow, tenant.id, due - days(4), due - days(3)) == 1
        assert service.plan_reminders(uow, tenant.id, due - days(4), due - days(3)) == 0  # rerun: nothing
        assert service.plan_reminders(uow, tenant.id, due - days(1), due) == 1
        uow.commit()
    assert service.send_pending(db, tenant.id) == 2
    with db.uow(read_only=True) as uow:
        rows = service.list_reminders(uow, tenant.id, loan_id=loan_id)
        assert [(r.kind, r.installment_number, r.due_on, r.sms_status) for r in rows] == [
            ("upcoming", 1, due, "sent"), ("due", 1, due, "sent")]
        assert rows[0].amount_due > 0 and rows[0].sms_reference is not None
        messages = list(uow.session.scalars(select(WebhookMessage).where(WebhookMessage.tenant_id == tenant.id,
                                                                        WebhookMessage.type == service.REMINDER_EVENT)))
        assert sorted(m.id for m in messages) == sorted(r.message_id for r in rows)
        assert all(PHONE not in m.payload and "8005" not in m.payload for m in messages)
    assert [template for _, template, _ in sandboxes.sms.messages] == ["reminder_upcoming", "reminder_due"]
    assert service.send_pending(db, tenant.id) == 0


def test_a_reminder_asks_only_for_what_the_advance_held_does_not_cover(db: Database, tenant: TenantHandle,
                                                                      loan_id: str) -> None:
    with db.uow(read_only=True) as uow:
        rows = list(uow.session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                                        .order_by(LoanInstallment.number)))
        first, second = [(r.due_on, r.principal_due + r.interest_due + r.fees_due) for r in rows[:2]]
    set_account(db, loan_id, dpd=0, advance_amount=first[1] + 100)
    with db.uow() as uow:
        # The first installment is paid by the advance: no reminder; the second is owed less the 100 left over.
        assert service.plan_reminders(uow, tenant.id, first[0] - days(1), first[0]) == 0
        assert service.plan_reminders(uow, tenant.id, second[0] - days(4), second[0] - days(3)) == 1
        uow.commit()
    with db.uow(read_only=True) as uow:
        assert [(r.installment_number, r.kind, r.amount_due) for r in service.list_reminders(uow, tenant.id)] == [
            (2, "upcoming", second[1] - 100)]


def test_the_daily_run_covers_the_days_until_the_next_business_date(db: Database, tenant: TenantHandle,
                                                                    loan_id: str) -> None:
    due = first_due(db, loan_id)
    # The run for the business date before the due date (its next business date is at least the day after).
    day = due - days(1)
    while day.weekday() >= 5:
        day -= days(1)
    run(db, tenant.id, day)
    with db.uow(read_only=True) as uow:
        kinds = {r.kind for r in service.list_reminders(uow, tenant.id, loan_id=loan_id)}
    assert "due" in kinds


def test_a_borrower_without_a_phone_gets_the_event_and_no_sms(db: Database, tenant: TenantHandle,
                                                              bank: SandboxBank, sandboxes: Sandboxes) -> None:
    lending(db, tenant.id)
    loan_id = loan(db, tenant.id, phone=None)
    due = first_due(db, loan_id)
    with db.uow() as uow:
        service.plan_reminders(uow, tenant.id, due - days(1), due)
        uow.commit()
    service.send_pending(db, tenant.id)
    with db.uow(read_only=True) as uow:
        row = uow.session.scalars(select(Reminder)).one()
        assert (row.sms_status, row.error_code) == ("skipped", "no_phone")
    assert sandboxes.sms.messages == []


def test_a_failing_connector_records_a_failure(db: Database, tenant: TenantHandle, loan_id: str) -> None:
    class Down:
        def send_sms(self, request: Any) -> Any:
            raise ConnectionError("down")

    from finloop.credit.collections import connectors

    connectors.use_sms(Down())
    set_account(db, loan_id, dpd=1)
    run(db, tenant.id, MONDAY)
    case = the_case(db, tenant.id, loan_id)
    assert actions(db, case.id) == [("sms", "strategy", 1, "failed", "failed")]


def test_tenants_see_only_their_own_cases_and_reminders(db: Database, tenant: TenantHandle, loan_id: str) -> None:
    other = make_tenant(db, "Other")
    set_account(db, loan_id, dpd=2)
    run(db, tenant.id, MONDAY)
    assert run(db, other.id, MONDAY)["opened"] == 0
    case = the_case(db, tenant.id, loan_id)
    with db.uow(read_only=True) as uow:
        with pytest.raises(NotFound):
            service.get_case(uow, other.id, case.id)
        assert service.list_reminders(uow, other.id) == []
