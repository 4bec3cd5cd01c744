"""Wire models of the collections API. Requests refuse unknown fields; amounts are strict integers of minor units.
No response carries a phone number or any part of one."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.types import Amount, Line, single_line
from finloop.credit.collections.models import (
    BureauExport,
    CollectionAction,
    CollectionCase,
    CollectionNote,
    CollectionPolicy,
    PromiseToPay,
    Reminder,
)

ObjectId = Annotated[Line, Field(min_length=1, max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BucketRuleWrite(Strict):
    sms_on_dpd: list[int] = Field(default_factory=list, description="Days past due on which an SMS goes out.")
    sms_every_days: int | None = Field(None, description="Repeat an SMS every so many days from the bucket's start.")
    call_every_days: int | None = Field(None, description="Call every so many days from the bucket's start.")
    escalate: bool = Field(False, description="Move cases reaching this bucket to the manual queue.")


class CollectionPolicyWrite(Strict):
    rules: dict[str, BucketRuleWrite] = Field(description="A rule per bucket M1, M2, M3, M4; one left out does "
                                                          "nothing.")


class CollectionPolicyRead(BaseModel):
    object: str = "credit_collection_policy"
    rules: dict[str, Any]
    updated_by: str
    updated_at: datetime


def read_policy(row: CollectionPolicy) -> CollectionPolicyRead:
    return CollectionPolicyRead(rules=row.policy, updated_by=row.updated_by, updated_at=row.updated_at)


class CaseRead(BaseModel):
    id: str
    object: str = "credit_collection_case"
    loan_id: str
    applicant_id: str
    status: str
    queue: str
    bucket: str
    dpd: int
    max_dpd: int
    overdue_amount: int
    currency: str
    assignee_id: str | None
    assigned_at: datetime | None
    escalated_on: date | None
    escalation_reason: str | None
    opened_on: date
    closed_on: date | None
    created_at: datetime
    updated_at: datetime


def read_case(row: CollectionCase) -> CaseRead:
    return CaseRead(id=row.id, loan_id=row.loan_id, applicant_id=row.applicant_id, status=row.status,
                    queue=row.queue, bucket=row.bucket, dpd=row.dpd, max_dpd=row.max_dpd,
                    overdue_amount=row.overdue_amount, currency=row.currency, assignee_id=row.assignee_id,
                    assigned_at=row.assigned_at, escalated_on=row.escalated_on,
                    escalation_reason=row.escalation_reason, opened_on=row.opened_on, closed_on=row.closed_on,
                    created_at=row.created_at, updated_at=row.updated_at)


class CaseAssign(Strict):
    assignee_id: ObjectId = Field(description="A user of the tenant (usr_...).")


class CaseEscalate(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=40), AfterValidator(single_line)] = "manual"


class NoteCreate(Strict):
    # Not "body": the API's error mapper drops a parameter of that name from the error's param.
    text: Annotated[str, Field(min_length=1, max_length=4000)]


class NoteRead(BaseModel):
    object: str = "credit_collection_note"
    case_id: str
    seq: int
    author: str
    body: str
    created_at: datetime


def read_note(row: CollectionNote) -> NoteRead:
    return NoteRead(case_id=row.case_id, seq=row.seq, author=row.author, body=row.body, created_at=row.created_at)


class ActionRead(BaseModel):
    id: str
    object: str = "credit_collection_action"
    case_id: str
    loan_id: str
    kind: str
    trigger: str
    business_date: date
    dpd: int
    bucket: str
    status: str
    outcome: str | None
    provider_reference: str | None
    error_code: str | None
    created_by: str
    created_at: datetime
    completed_at: datetime | None


def read_action(row: CollectionAction) -> ActionRead:
    return ActionRead(id=row.id, case_id=row.case_id, loan_id=row.loan_id, kind=row.kind, trigger=row.trigger,
                      business_date=row.business_date, dpd=row.dpd, bucket=row.bucket, status=row.status,
                      outcome=row.outcome, provider_reference=row.provider_reference, error_code=row.error_code,
                      created_by=row.created_by, created_at=row.created_at, completed_at=row.completed_at)


class PromiseCreate(Strict):
    amount: Amount = Field(description="Minor units the borrower promises to pay.")
    promised_on: date = Field(description="By this date (today to 60 days ahead).")


class PromiseRead(BaseModel):
    id: str
    object: str = "promise_to_pay"
    case_id: str
    loan_id: str
    amount: int
    currency: str
    promised_on: date
    status: str
    paid_amount: int
    evaluated_on: date | None
    created_by: str
    created_at: datetime
    resolved_at: datetime | None


def read_promise(row: PromiseToPay) -> PromiseRead:
    return PromiseRead(id=row.id, case_id=row.case_id, loan_id=row.loan_id, amount=row.amount, currency=row.currency,
                       promised_on=row.promised_on, status=row.status, paid_amount=row.paid_amount,
                       evaluated_on=row.evaluated_on, created_by=row.created_by, created_at=row.created_at,
                       resolved_at=row.resolved_at)


class ReminderRead(BaseModel):
    id: str
    object: str = "credit_reminder"
    loan_id: str
    installment_number: int
    kind: str
    due_on: date
    amount_due: int
    currency: str
    business_date: date
    message_id: str
    sms_status: str
    sms_reference: str | None
    error_code: str | None
    created_at: datetime
    sent_at: datetime | None


def read_reminder(row: Reminder) -> ReminderRead:
    return ReminderRead(id=row.id, loan_id=row.loan_id, installment_number=row.installment_number, kind=row.kind,
                        due_on=row.due_on, amount_due=row.amount_due, currency=row.currency,
                        business_date=row.business_date, message_id=row.message_id, sms_status=row.sms_status,
                        sms_reference=row.sms_reference, error_code=row.error_code, created_at=row.created_at,
                        sent_at=row.sent_at)


class BureauExportCreate(Strict):
    # Checked by the domain (code invalid_cycle), as the CLI's and the job's cycles are.
    cycle: Annotated[str, Field(max_length=20, description="The month, YYYY-MM.", examples=["2026-03"])]


class BureauExportRead(BaseModel):
    id: str
    object: str = "credit_bureau_export"
    cycle: str
    layout_version: str
    record_count: int
    totals: dict[str, Any]
    sha256: str
    created_by: str
    created_at: datetime


def read_export(row: BureauExport) -> BureauExportRead:
    return BureauExportRead(id=row.id, cycle=row.cycle, layout_version=row.layout_version,
                            record_count=row.record_count, totals=row.totals, sha256=row.sha256,
                            created_by=row.created_by, created_at=row.created_at)
