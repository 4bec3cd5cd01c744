"""Collections use cases: the strategy, cases (opened and closed from the loan accounts), the strategy's actions,
escalation, assignment, notes and promises to pay, repayment reminders, and sending SMS and calls.

Invariants owned here:
- a loan past due (an open account with ``dpd > 0``) has exactly one open case once the day's run is over; a case
  is cured when its loan is back to M0 or paid off and written off with its account, the same run; its pending
  promise is then cancelled;
- the strategy acts once per case and business date and only on the days past due not yet acted on
  (``actioned_dpd``); a case in the manual queue gets no automatic SMS or call (a person owns it), nor does a case
  with a pending promise (the borrower is not chased while the promise runs); escalation moves a case to the
  manual queue once and is recorded as an action;
- a promise is made on an open case only, one pending at a time, for an amount and a date the domain accepts;
  each run settles it (kept, or broken and the case escalated) from the loan's repayments since it was made,
  counting repayments booked up to its date and leaving out the loan's own advance being applied;
- a reminder asks for what the installment still owes less the advance the loan holds for it (the advance pays
  the loan's next installments in order), and none is sent for an installment the advance covers;
- a reminder row (one per installment and kind) and its webhook event are written in one transaction; the SMS of
  reminders and actions is sent after the commit (``send_pending``): recorded → sent outside any transaction →
  result applied; a row no longer pending when the result arrives is left as it is;
- phone numbers are unsealed only to build a connector request and never logged, stored or returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, func, select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, ExternalServiceError, InvalidRequest, NotFound
from finloop.credit import service as credit
from finloop.credit.collections import connectors
from finloop.credit.collections.domain import (
    DEFAULT_STRATEGY,
    ActionKind,
    ActionStatus,
    CaseStatus,
    PromiseStatus,
    Queue,
    ReminderKind,
    Strategy,
    check_case_transition,
    check_promise,
    check_strategy,
    due_actions,
    evaluate_promise,
    reminder_window,
)
from finloop.credit.collections.models import (
    CollectionAction,
    CollectionCase,
    CollectionNote,
    CollectionPolicy,
    PromiseToPay,
    Reminder,
)
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.domain import OPEN_STATES, AccountState
from finloop.credit.servicing.models import LoanAccount, LoanInstallment, Repayment
from finloop.db.uow import Database, UnitOfWork
from finloop.tenancy import calendar as calendars
from finloop.tenancy import service as tenancy

log = structlog.get_logger("finloop.credit.collections")

OBJECT_TYPE = "credit_collection_case"
REMINDER_EVENT = "credit.repayment.reminder"
MAX_NOTE = 4000
MAX_REASON = 40
SEND_BATCH = 100
#: Failures of a connector's transport: the attempt is recorded as failed, the run goes on.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (OSError, ExternalServiceError)
OPEN_INSTALLMENTS = ("scheduled", "billed")


# ---------------------------------------------------------------------------------------------- strategy


def policy_row(uow: UnitOfWork, tenant_id: str) -> CollectionPolicy:
    row = uow.session.get(CollectionPolicy, tenant_id)
    if row is not None:
        return row
    return CollectionPolicy(tenant_id=tenant_id, policy=DEFAULT_STRATEGY.to_json(), updated_by="default",
                            updated_at=uow.clock.now())


def strategy(uow: UnitOfWork, tenant_id: str) -> Strategy:
    return check_strategy(policy_row(uow, tenant_id).policy)


def set_policy(uow: UnitOfWork, tenant_id: str, rules: Mapping[str, Any], *, actor: str) -> CollectionPolicy:
    """Replace the tenant's strategy (a rule per bucket M1..M4; a bucket left out does nothing); audited."""
    stored = check_strategy(rules).to_json()
    row = uow.session.get(CollectionPolicy, tenant_id, with_for_update=True)
    before = None if row is None else row.policy
    now = uow.clock.now()
    if row is None:
        row = CollectionPolicy(tenant_id=tenant_id, policy=stored, updated_by=actor[:60], updated_at=now)
        uow.session.add(row)
    else:
        row.policy, row.updated_by, row.updated_at = stored, actor[:60], now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.collection_policy.updated",
                 object_type="credit_collection_policy", object_id=tenant_id, before=before, after=stored)
    return row


# ---------------------------------------------------------------------------------------------- reads


def get_case(uow: UnitOfWork, tenant_id: str, case_id: str, *, lock: bool = False) -> CollectionCase:
    row = uow.session.get(CollectionCase, case_id, with_for_update=lock)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("No such collection case.", code="collection_case_not_found", param="case_id")
    return row


def list_cases(uow: UnitOfWork, tenant_id: str, *, status: str | None = None, queue: str | None = None,
               bucket: str | None = None, assignee_id: str | None = None, loan_id: str | None = None,
               after: str | None = None, limit: int = 50) -> list[CollectionCase]:
    query = select(CollectionCase).where(CollectionCase.tenant_id == tenant_id)
    for column, value in ((CollectionCase.status, status), (CollectionCase.queue, queue),
                          (CollectionCase.bucket, bucket), (CollectionCase.assignee_id, assignee_id),
                          (CollectionCase.loan_id, loan_id)):
        if value is not None:
            query = query.where(column == value)
    if after:
        query = query.where(CollectionCase.id > after)
    return list(uow.session.scalars(query.order_by(CollectionCase.id).limit(limit)))


def list_actions(uow: UnitOfWork, tenant_id: str, case_id: str, *, after: str | None = None,
                 limit: int = 50) -> list[CollectionAction]:
    get_case(uow, tenant_id, case_id)
    query = select(CollectionAction).where(CollectionAction.tenant_id == tenant_id,
                                           CollectionAction.case_id == case_id)
    if after:
        query = query.where(CollectionAction.id > after)
    return list(uow.session.scalars(query.order_by(CollectionAction.id).limit(limit)))


def list_notes(uow: UnitOfWork, tenant_id: str, case_id: str, *, after: int | None = None,
               limit: int = 50) -> list[CollectionNote]:
    get_case(uow, tenant_id, case_id)
    query = select(CollectionNote).where(CollectionNote.tenant_id == tenant_id, CollectionNote.case_id == case_id)
    if after is not None:
        query = query.where(CollectionNote.seq > after)
    return list(uow.session.scalars(query.order_by(CollectionNote.seq).limit(limit)))


def list_promises(uow: UnitOfWork, tenant_id: str, *, case_id: str | None = None, status: str | None = None,
                  after: str | None = None, limit: int = 50) -> list[PromiseToPay]:
    query = select(PromiseToPay).where(PromiseToPay.tenant_id == tenant_id)
    if case_id is not None:
        get_case(uow, tenant_id, case_id)
        query = query.where(PromiseToPay.case_id == case_id)
    if status is not None:
        query = query.where(PromiseToPay.status == status)
    if after:
        query = query.where(PromiseToPay.id > after)
    return list(uow.session.scalars(query.order_by(PromiseToPay.id).limit(limit)))


def list_reminders(uow: UnitOfWork, tenant_id: str, *, loan_id: str | None = None, after: str | None = None,
                   limit: int = 50) -> list[Reminder]:
    query = select(Reminder).where(Reminder.tenant_id == tenant_id)
    if loan_id is not None:
        query = query.where(Reminder.loan_id == loan_id)
    if after:
        query = query.where(Reminder.id > after)
    return list(uow.session.scalars(query.order_by(Reminder.id).limit(limit)))


def pending_promise(uow: UnitOfWork, case_id: str) -> PromiseToPay | None:
    return uow.session.scalar(select(PromiseToPay).where(PromiseToPay.case_id == case_id,
                                                         PromiseToPay.status == PromiseStatus.PENDING.value))


def case_snapshot(case: CollectionCase) -> dict[str, Any]:
    return {"status": case.status, "queue": case.queue, "bucket": case.bucket, "dpd": case.dpd,
            "assignee_id": case.assignee_id, "escalation_reason": case.escalation_reason}


# ---------------------------------------------------------------------------------------------- people


def _text(value: Any, *, param: str, code: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length or "\x00" in value:
        raise InvalidRequest(f"{param} is 1 to {max_length} characters of text.", code=code, param=param)
    return value.strip()


def _open_case(uow: UnitOfWork, tenant_id: str, case_id: str) -> CollectionCase:
    case = get_case(uow, tenant_id, case_id, lock=True)
    if case.status != CaseStatus.OPEN.value:
        raise Conflict(f"The case is {case.status}; only an open case can be worked.", code="case_not_open",
                       param="case_id")
    return case


def assign(uow: UnitOfWork, tenant_id: str, case_id: str, *, assignee_id: Any, actor: str) -> CollectionCase:
    """Give an open case to one of the tenant's users; the case joins the manual queue. Audited."""
    if not isinstance(assignee_id, str) or not 1 <= len(assignee_id) <= 40:
        raise InvalidRequest("assignee_id is a user id.", code="invalid_assignee", param="assignee_id")
    case = _open_case(uow, tenant_id, case_id)
    try:
        user = tenancy.get_user(uow, tenant_id, assignee_id)
    except NotFound:
        raise NotFound("No such user in this tenant.", code="user_not_found", param="assignee_id") from None
    if user.status != "active":
        raise Conflict("The user is disabled.", code="user_disabled", param="assignee_id")
    before = case_snapshot(case)
    case.assignee_id, case.assigned_at, case.queue = user.id, uow.clock.now(), Queue.MANUAL.value
    case.updated_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.collection_case.assigned", object_type=OBJECT_TYPE,
                 object_id=case.id, before=before, after=case_snapshot(case))
    return case


def _escalate(uow: UnitOfWork, case: CollectionCase, *, reason: str, trigger: str, business_date: date,
              actor: str) -> bool:
    """Move the case to the manual queue with an ``escalate`` action; False when it already is there."""
    if case.queue == Queue.MANUAL.value:
        return False
    before = case_snapshot(case)
    now = uow.clock.now()
    case.queue, case.escalated_on, case.escalation_reason = Queue.MANUAL.value, business_date, reason[:MAX_REASON]
    case.updated_at = now
    uow.session.add(CollectionAction(
        id=uow.ids.new("collection_action"), tenant_id=case.tenant_id, case_id=case.id, loan_id=case.loan_id,
        kind=ActionKind.ESCALATE.value, trigger=trigger, business_date=business_date, dpd=case.dpd,
        bucket=case.bucket, status=ActionStatus.DONE.value, outcome=None, provider_reference=None, error_code=None,
        created_by=actor[:60], created_at=now, completed_at=now))
    uow.session.flush()
    audit.record(uow, case.tenant_id, actor=actor, action="credit.collection_case.escalated",
                 object_type=OBJECT_TYPE, object_id=case.id, before=before, after=case_snapshot(case))
    return True


def escalate(uow: UnitOfWork, tenant_id: str, case_id: str, *, reason: Any = "manual", actor: str) -> CollectionCase:
    """Escalate an open case to the manual queue by hand (409 when it already is there)."""
    text = _text(reason, param="reason", code="invalid_reason", max_length=MAX_REASON)
    case = _open_case(uow, tenant_id, case_id)
    if not _escalate(uow, case, reason=text, trigger="manual", business_date=servicing.servicing_date(uow, tenant_id),
                     actor=actor):
        raise Conflict("The case is already in the manual queue.", code="case_already_escalated", param="case_id")
    return case


def add_note(uow: UnitOfWork, tenant_id: str, case_id: str, *, body: Any, author: str) -> CollectionNote:
    """Append a note (to a closed case too: notes are the case's record)."""
    text = _text(body, param="body", code="invalid_note", max_length=MAX_NOTE)
    case = get_case(uow, tenant_id, case_id, lock=True)
    last = uow.session.scalar(select(func.max(CollectionNote.seq)).where(CollectionNote.case_id == case.id))
    note = CollectionNote(case_id=case.id, seq=(last or 0) + 1, tenant_id=tenant_id, author=author[:60], body=text,
                          created_at=uow.clock.now())
    uow.session.add(note)
    uow.session.flush()
    return note


def promise(uow: UnitOfWork, tenant_id: str, case_id: str, *, amount: Any, promised_on: Any,
            actor: str) -> PromiseToPay:
    """Record the borrower's promise to pay ``amount`` by ``promised_on`` on an open case; audited."""
    today = servicing.servicing_date(uow, tenant_id)
    checked_amount, checked_on = check_promise(amount, promised_on, today)
    case = _open_case(uow, tenant_id, case_id)
    if pending_promise(uow, case.id) is not None:
        raise Conflict("The case already has a pending promise; it is settled by its date.",
                       code="promise_pending", param="case_id")
    now = uow.clock.now()
    row = PromiseToPay(id=uow.ids.new("promise_to_pay"), tenant_id=tenant_id, case_id=case.id, loan_id=case.loan_id,
                       amount=checked_amount, currency=case.currency, promised_on=checked_on,
                       status=PromiseStatus.PENDING.value, paid_amount=0, evaluated_on=None, created_by=actor[:60],
                       created_at=now, resolved_at=None)
    uow.session.add(row)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.promise_to_pay.created", object_type="promise_to_pay",
                 object_id=row.id, after={"case_id": case.id, "amount": checked_amount,
                                          "promised_on": checked_on.isoformat()})
    return row


# ---------------------------------------------------------------------------------------------- the day's run


def _close(uow: UnitOfWork, case: CollectionCase, status: CaseStatus, business_date: date, actor: str) -> None:
    check_case_transition(case.status, status)
    case.status, case.closed_on, case.updated_at = status.value, business_date, uow.clock.now()
    left = pending_promise(uow, case.id)
    if left is not None:
        left.status, left.resolved_at = PromiseStatus.CANCELLED.value, uow.clock.now()
    uow.session.flush()
    audit.record(uow, case.tenant_id, actor=actor, action=f"credit.collection_case.{status.value}",
                 object_type=OBJECT_TYPE, object_id=case.id, after=case_snapshot(case))


@dataclass(slots=True)
class Synced:
    opened: int = 0
    cured: int = 0
    written_off: int = 0


def sync_cases(uow: UnitOfWork, tenant_id: str, business_date: date, *, actor: str = "system:collections") -> Synced:
    """Open a case for each loan past due without one, refresh the open ones and close those whose loan is
    current again, paid off or written off (see the module's doc)."""
    result = Synced()
    rows = uow.session.execute(
        select(LoanAccount, CollectionCase)
        .outerjoin(CollectionCase, and_(CollectionCase.loan_id == LoanAccount.loan_id,
                                        CollectionCase.status == CaseStatus.OPEN.value))
        .where(LoanAccount.tenant_id == tenant_id,
               ((LoanAccount.dpd > 0) & LoanAccount.state.in_(OPEN_STATES)) | CollectionCase.id.is_not(None))
        .order_by(LoanAccount.loan_id)).all()
    now = uow.clock.now()
    for account, case in rows:
        past_due = account.dpd > 0 and account.state in OPEN_STATES
        if case is None:
            if not past_due:
                continue
            case = CollectionCase(
                id=uow.ids.new("collection_case"), tenant_id=tenant_id, loan_id=account.loan_id,
                applicant_id=account.applicant_id, currency=account.currency, status=CaseStatus.OPEN.value,
                queue=Queue.AUTOMATIC.value, bucket=account.bucket, dpd=account.dpd, max_dpd=account.dpd,
                actioned_dpd=0, overdue_amount=servicing.billed(account), assignee_id=None, assigned_at=None,
                escalated_on=None, escalation_reason=None, opened_on=business_date, closed_on=None,
                created_at=now, updated_at=now)
            uow.session.add(case)
            uow.session.flush()
            audit.record(uow, tenant_id, actor=actor, action="credit.collection_case.opened",
                         object_type=OBJECT_TYPE, object_id=case.id, after=case_snapshot(case))
            result.opened += 1
            continue
        case.dpd, case.bucket, case.overdue_amount = account.dpd, account.bucket, servicing.billed(account)
        case.max_dpd = max(case.max_dpd, account.dpd)
        # A partial payment that clears the oldest installment lowers the count: act again from the new one.
        case.actioned_dpd = min(case.actioned_dpd, account.dpd)
        case.updated_at = now
        if account.state == AccountState.WRITTEN_OFF.value:
            _close(uow, case, CaseStatus.WRITTEN_OFF, business_date, actor)
            result.written_off += 1
        elif not past_due:
            _close(uow, case, CaseStatus.CURED, business_date, actor)
            result.cured += 1
    uow.session.flush()
    return result


def _repaid_since(uow: UnitOfWork, row: PromiseToPay) -> int:
    total = uow.session.scalar(select(func.coalesce(func.sum(Repayment.amount), 0)).where(
        Repayment.tenant_id == row.tenant_id, Repayment.loan_id == row.loan_id,
        Repayment.created_at >= row.created_at, Repayment.business_date <= row.promised_on,
        Repayment.source != "advance"))
    return int(total or 0)


@dataclass(slots=True)
class Evaluated:
    kept: int = 0
    broken: int = 0


def evaluate_promises(uow: UnitOfWork, tenant_id: str, business_date: date, *,
                      actor: str = "system:collections") -> Evaluated:
    """Settle the pending promises as of ``business_date``: kept, or broken and the case escalated."""
    result = Evaluated()
    rows = uow.session.scalars(select(PromiseToPay).where(
        PromiseToPay.tenant_id == tenant_id, PromiseToPay.status == PromiseStatus.PENDING.value)
        .order_by(PromiseToPay.id).with_for_update())
    for row in list(rows):
        paid = _repaid_since(uow, row)
        status = evaluate_promise(row.amount, row.promised_on, paid, business_date)
        row.paid_amount, row.evaluated_on = paid, business_date
        if status is PromiseStatus.PENDING:
            continue
        row.status, row.resolved_at = status.value, uow.clock.now()
        audit.record(uow, tenant_id, actor=actor, action=f"credit.promise_to_pay.{status.value}",
                     object_type="promise_to_pay", object_id=row.id, after={"paid_amount": paid})
        if status is PromiseStatus.KEPT:
            result.kept += 1
            continue
        result.broken += 1
        case = get_case(uow, tenant_id, row.case_id, lock=True)
        if case.status == CaseStatus.OPEN.value:
            _escalate(uow, case, reason="promise_broken", trigger="promise_broken", business_date=business_date,
                      actor=actor)
    uow.session.flush()
    return result


def plan_actions(uow: UnitOfWork, tenant_id: str, business_date: date, *,
                 actor: str = "system:collections") -> int:
    """Record the strategy's actions due on the open cases (SMS and calls ``pending``, escalations done);
    returns how many were recorded."""
    rules = strategy(uow, tenant_id)
    cases = uow.session.scalars(select(CollectionCase).where(
        CollectionCase.tenant_id == tenant_id, CollectionCase.status == CaseStatus.OPEN.value,
        CollectionCase.dpd > CollectionCase.actioned_dpd).order_by(CollectionCase.id).with_for_update())
    recorded = 0
    now = uow.clock.now()
    for case in list(cases):
        kinds = due_actions(rules, case.actioned_dpd, case.dpd)
        case.actioned_dpd = case.dpd
        if ActionKind.ESCALATE in kinds and _escalate(uow, case, reason=f"bucket_{case.bucket}", trigger="strategy",
                                                      business_date=business_date, actor=actor):
            recorded += 1
        if case.queue == Queue.MANUAL.value or pending_promise(uow, case.id) is not None:
            continue
        done = set(uow.session.scalars(select(CollectionAction.kind).where(
            CollectionAction.case_id == case.id, CollectionAction.business_date == business_date)))
        for kind in (ActionKind.SMS, ActionKind.CALL):
            if kind not in kinds or kind.value in done:
                continue
            uow.session.add(CollectionAction(
                id=uow.ids.new("collection_action"), tenant_id=tenant_id, case_id=case.id, loan_id=case.loan_id,
                kind=kind.value, trigger="strategy", business_date=business_date, dpd=case.dpd, bucket=case.bucket,
                status=ActionStatus.PENDING.value, outcome=None, provider_reference=None, error_code=None,
                created_by=actor[:60], created_at=now, completed_at=None))
            recorded += 1
    uow.session.flush()
    return recorded


def plan_reminders(uow: UnitOfWork, tenant_id: str, business_date: date,
                   next_business_date: date | None = None) -> int:
    """Record the reminders of the installments due in this run's windows (``domain.reminder_window``) and
    publish their webhook events; the SMS stay ``pending`` for ``send_pending``. Returns how many."""
    from finloop.webhooks import service as webhooks

    if next_business_date is None:
        calendar = calendars.get_calendar(uow, tenant_id)
        next_business_date = calendar.next_business_day(business_date + timedelta(days=1))
    made = 0
    now = uow.clock.now()
    owed = (LoanInstallment.principal_due + LoanInstallment.interest_due + LoanInstallment.fees_due
            - LoanInstallment.principal_paid - LoanInstallment.interest_paid - LoanInstallment.fees_paid)
    for kind in (ReminderKind.UPCOMING, ReminderKind.DUE):
        first, last = reminder_window(kind, business_date, next_business_date)
        reminded = select(Reminder.id).where(Reminder.loan_id == LoanInstallment.loan_id,
                                             Reminder.installment_number == LoanInstallment.number,
                                             Reminder.kind == kind.value)
        rows = uow.session.execute(
            select(LoanInstallment, LoanAccount.currency, LoanAccount.advance_amount)
            .join(LoanAccount, LoanAccount.loan_id == LoanInstallment.loan_id)
            .where(LoanInstallment.tenant_id == tenant_id, LoanInstallment.status.in_(OPEN_INSTALLMENTS),
                   LoanInstallment.due_on >= first, LoanInstallment.due_on <= last,
                   LoanAccount.state.in_(OPEN_STATES), ~reminded.exists())
            .order_by(LoanInstallment.loan_id, LoanInstallment.number)).all()
        # The advance a loan holds pays its next installments in order: what falls due before the window takes
        # it first, then the window's installments one after another. A reminder asks only for the rest.
        loans = sorted({installment.loan_id for installment, _, _ in rows})
        earlier = dict(uow.session.execute(
            select(LoanInstallment.loan_id, func.sum(owed)).where(
                LoanInstallment.loan_id.in_(loans), LoanInstallment.status.in_(OPEN_INSTALLMENTS),
                LoanInstallment.due_on < first).group_by(LoanInstallment.loan_id)).all()) if loans else {}
        advance_left: dict[str, int] = {}
        for installment, currency, advance in rows:
            if installment.loan_id not in advance_left:
                advance_left[installment.loan_id] = max(0, advance - int(earlier.get(installment.loan_id) or 0))
            unpaid = (installment.principal_due + installment.interest_due + installment.fees_due
                      - installment.principal_paid - installment.interest_paid - installment.fees_paid)
            covered = min(unpaid, advance_left[installment.loan_id])
            advance_left[installment.loan_id] -= covered
            amount_due = unpaid - covered
            if amount_due <= 0:
                continue
            reminder_id = uow.ids.new("reminder")
            message_id = webhooks.publish_event(uow, tenant_id, type=REMINDER_EVENT, data={
                "id": reminder_id, "object": "credit_reminder", "kind": kind.value, "loan_id": installment.loan_id,
                "installment_number": installment.number, "due_on": installment.due_on.isoformat(),
                "amount_due": amount_due, "currency": currency})
            uow.session.add(Reminder(
                id=reminder_id, tenant_id=tenant_id, loan_id=installment.loan_id,
                installment_number=installment.number, kind=kind.value, due_on=installment.due_on,
                amount_due=amount_due, currency=currency, business_date=business_date, message_id=message_id,
                sms_status="pending", sms_reference=None, error_code=None, created_at=now, sent_at=None))
            made += 1
    uow.session.flush()
    return made


@dataclass(slots=True)
class DayResult:
    opened: int = 0
    cured: int = 0
    written_off: int = 0
    kept: int = 0
    broken: int = 0
    actions: int = 0
    reminders: int = 0
    sent: int = 0

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def plan_day(uow: UnitOfWork, tenant_id: str, business_date: date) -> DayResult:
    """The transactional part of a day's run: promises first (a payment that cures a loan keeps its promise before
    the case closes), then cases, the strategy's actions and the reminders."""
    evaluated = evaluate_promises(uow, tenant_id, business_date)
    synced = sync_cases(uow, tenant_id, business_date)
    actions = plan_actions(uow, tenant_id, business_date)
    reminders = plan_reminders(uow, tenant_id, business_date)
    return DayResult(opened=synced.opened, cured=synced.cured, written_off=synced.written_off,
                     kept=evaluated.kept, broken=evaluated.broken, actions=actions, reminders=reminders)


def run_day(db: Database, tenant_id: str, business_date: date) -> DayResult:
    """The whole day's run for one tenant: ``plan_day`` in one transaction, then the SMS and calls."""
    with db.uow() as uow:
        result = plan_day(uow, tenant_id, business_date)
        uow.commit()
    result.sent = send_pending(db, tenant_id)
    return result


# ---------------------------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class _Send:
    table: str  # "action" or "reminder"
    id: str
    kind: str  # sms or call
    applicant_id: str
    template: str
    params: dict[str, str]


def _pending(uow: UnitOfWork, tenant_id: str, limit: int) -> list[_Send]:
    found: list[_Send] = []
    actions = uow.session.execute(
        select(CollectionAction, CollectionCase.applicant_id, CollectionCase.overdue_amount, CollectionCase.currency)
        .join(CollectionCase, CollectionCase.id == CollectionAction.case_id)
        .where(CollectionAction.tenant_id == tenant_id, CollectionAction.status == ActionStatus.PENDING.value)
        .order_by(CollectionAction.id).limit(limit)).all()
    for action, applicant_id, overdue, currency in actions:
        found.append(_Send("action", action.id, action.kind, applicant_id, f"collection_{action.bucket.lower()}",
                           {"loan_id": action.loan_id, "dpd": str(action.dpd), "overdue_amount": str(overdue),
                            "currency": currency}))
    reminders = uow.session.execute(
        select(Reminder, LoanAccount.applicant_id).join(LoanAccount, LoanAccount.loan_id == Reminder.loan_id)
        .where(Reminder.tenant_id == tenant_id, Reminder.sms_status == "pending")
        .order_by(Reminder.id).limit(limit)).all()
    for reminder, applicant_id in reminders:
        found.append(_Send("reminder", reminder.id, ActionKind.SMS.value, applicant_id, f"reminder_{reminder.kind}",
                           {"loan_id": reminder.loan_id, "due_on": reminder.due_on.isoformat(),
                            "amount_due": str(reminder.amount_due), "currency": reminder.currency}))
    return found


def _phone(uow: UnitOfWork, tenant_id: str, applicant_id: str) -> str | None:
    applicant = credit.get_applicant(uow, tenant_id, applicant_id)
    return credit.reveal(uow, applicant, credit.PersonalField.PHONE)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: str
    outcome: str
    provider_reference: str | None
    error_code: str | None


def _call_out(tenant_id: str, item: _Send, phone: str | None) -> _Outcome:
    """The connector call (outside any transaction)."""
    if phone is None:
        return _Outcome(ActionStatus.SKIPPED.value, "no_phone", None, "no_phone")
    try:
        if item.kind == ActionKind.CALL.value:
            called = connectors.calls().place_call(connectors.CallRequest(item.id, tenant_id, phone, item.template,
                                                                          item.params))
            failed = called.outcome is connectors.CallOutcome.FAILED
            return _Outcome(ActionStatus.FAILED.value if failed else ActionStatus.SENT.value, called.outcome.value,
                            called.provider_reference, called.error_code)
        sent = connectors.sms().send_sms(connectors.SmsRequest(item.id, tenant_id, phone, item.template,
                                                               item.params))
    except TRANSPORT_ERRORS as error:
        log.warning("credit.collections.send_error", reference=item.id, kind=item.kind, error=type(error).__name__)
        return _Outcome(ActionStatus.FAILED.value, "failed", None, type(error).__name__[:60])
    failed = sent.outcome is connectors.SmsOutcome.FAILED
    return _Outcome(ActionStatus.FAILED.value if failed else ActionStatus.SENT.value, sent.outcome.value,
                    sent.provider_reference, sent.error_code)


def _apply(uow: UnitOfWork, item: _Send, result: _Outcome) -> None:
    now = uow.clock.now()
    if item.table == "action":
        action = uow.session.get(CollectionAction, item.id, with_for_update=True)
        if action is None or action.status != ActionStatus.PENDING.value:
            return
        action.status, action.outcome, action.completed_at = result.status, result.outcome, now
        action.provider_reference, action.error_code = result.provider_reference, result.error_code
        return
    reminder = uow.session.get(Reminder, item.id, with_for_update=True)
    if reminder is None or reminder.sms_status != "pending":
        return
    reminder.sms_status, reminder.sent_at = result.status, now
    reminder.sms_reference, reminder.error_code = result.provider_reference, result.error_code


def send_pending(db: Database, tenant_id: str, *, limit: int = SEND_BATCH) -> int:
    """Send the tenant's pending SMS and calls, ``limit`` at a time until none is left; returns how many were
    attempted. Each is: number unsealed in a read-only transaction → connector call → result applied."""
    attempted = 0
    while True:
        with db.uow(read_only=True) as uow:
            batch = [(item, _phone(uow, tenant_id, item.applicant_id)) for item in _pending(uow, tenant_id, limit)]
        if not batch:
            return attempted
        results = [(item, _call_out(tenant_id, item, phone)) for item, phone in batch]
        del batch  # the numbers go no further than the calls
        with db.uow() as uow:
            for item, result in results:
                _apply(uow, item, result)
            uow.commit()
        attempted += len(results)


def count_open(uow: UnitOfWork, tenant_id: str) -> dict[str, int]:
    """Open cases per bucket (the collections queue at a glance)."""
    rows = uow.session.execute(select(CollectionCase.bucket, func.count()).where(
        CollectionCase.tenant_id == tenant_id, CollectionCase.status == CaseStatus.OPEN.value)
        .group_by(CollectionCase.bucket))
    return {bucket: int(n) for bucket, n in rows}
