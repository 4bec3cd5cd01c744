"""Wire shapes of the repayment channels: repayment payments, mandates, direct debits and the retry policy.
Amounts are integers of minor units; a mandate's card shows only its last four digits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from finloop.api.types import Amount, Line
from finloop.credit.repayment_channels.domain import RetryPolicy
from finloop.credit.repayment_channels.models import DebitMandate, DirectDebit, RepaymentPayment
from finloop.credit.repayment_channels.service import PolicyView
from finloop.credit.schemas import Strict
from finloop.payments.models import Payment

ObjectId = Annotated[Line, Field(min_length=1, max_length=40)]
ChannelMethod = Literal["card", "qr", "h5", "app", "mini_program"]


class RepaymentPaymentCreate(Strict):
    amount: Amount | None = Field(None, description="Minor units; absent: what is due now.")
    method: ChannelMethod | None = Field(None, description="Absent: the borrower picks it when confirming.")
    card_id: ObjectId | None = Field(None, description="A card token from POST /v1/cards (method card).")
    description: Annotated[Line, Field(max_length=200)] = ""
    confirm: bool = Field(False, description="Charge at once (needs the method, and card_id for a card).")


class RepaymentPaymentRead(BaseModel):
    object: str = "credit_repayment_payment"
    payment_id: str
    loan_id: str
    amount: int
    currency: str
    source: str
    direct_debit_id: str | None
    status: str
    repayment_id: str | None
    error_code: str | None
    payment_status: str
    next_action: dict[str, Any] | None
    created_at: datetime
    settled_at: datetime | None


def read_repayment_payment(row: RepaymentPayment, payment: Payment) -> RepaymentPaymentRead:
    return RepaymentPaymentRead(payment_id=row.payment_id, loan_id=row.loan_id, amount=row.amount,
                                currency=row.currency, source=row.source, direct_debit_id=row.direct_debit_id,
                                status=row.status, repayment_id=row.repayment_id, error_code=row.error_code,
                                payment_status=payment.status, next_action=payment.next_action,
                                created_at=row.created_at, settled_at=row.settled_at)


class MandateCreate(Strict):
    applicant_id: ObjectId
    loan_id: ObjectId | None = Field(None, description="Absent: every loan of the borrower.")
    card_id: ObjectId = Field(description="The borrower's card token (POST /v1/cards).")
    channel: Annotated[Line, Field(min_length=1, max_length=40)] | None = Field(
        None, description="Charge only through this channel code; absent: routing chooses.")
    max_amount: Amount | None = Field(None, description="The most one debit takes; absent: the whole amount due.")
    reference: Annotated[Line, Field(min_length=1, max_length=100)] = Field(
        description="The signed mandate's own reference.")


class MandateRead(BaseModel):
    id: str
    object: str = "credit_debit_mandate"
    applicant_id: str
    loan_id: str | None
    method: str
    card_id: str
    card_last4: str
    channel: str | None
    max_amount: int | None
    reference: str
    status: str
    created_at: datetime
    revoked_at: datetime | None


def read_mandate(row: DebitMandate) -> MandateRead:
    return MandateRead(id=row.id, applicant_id=row.applicant_id, loan_id=row.loan_id, method=row.method,
                       card_id=row.card_id, card_last4=row.card_last4, channel=row.channel, max_amount=row.max_amount,
                       reference=row.reference, status=row.status, created_at=row.created_at,
                       revoked_at=row.revoked_at)


class DirectDebitRead(BaseModel):
    id: str
    object: str = "credit_direct_debit"
    loan_id: str
    mandate_id: str
    payment_id: str
    due_on: date
    attempt_number: int
    amount: int
    currency: str
    status: str
    failure_code: str | None
    next_retry_at: datetime | None
    created_at: datetime
    completed_at: datetime | None


def read_debit(row: DirectDebit) -> DirectDebitRead:
    return DirectDebitRead(id=row.id, loan_id=row.loan_id, mandate_id=row.mandate_id, payment_id=row.payment_id,
                           due_on=row.due_on, attempt_number=row.attempt_number, amount=row.amount,
                           currency=row.currency, status=row.status, failure_code=row.failure_code,
                           next_retry_at=row.next_retry_at, created_at=row.created_at, completed_at=row.completed_at)


class DebitPolicyWrite(Strict):
    enabled: bool = True
    max_attempts: int = Field(4, description="Attempts per due date, 1 to 10.")
    retry_offsets_hours: list[int] | None = Field(
        None, description="Hours after the first attempt at which each retry may run; one per retry, rising. "
                          "Absent: the default ladder (4, 24, 72) cut to max_attempts - 1.")

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled, "max_attempts": self.max_attempts}
        if self.retry_offsets_hours is not None:
            out["retry_offsets_hours"] = self.retry_offsets_hours
        return out


class DebitPolicyRead(BaseModel):
    object: str = "credit_direct_debit_policy"
    enabled: bool
    max_attempts: int
    retry_offsets_hours: list[int]
    updated_by: str | None
    updated_at: datetime | None


def read_debit_policy(view: PolicyView) -> DebitPolicyRead:
    policy: RetryPolicy = view.policy
    return DebitPolicyRead(enabled=policy.enabled, max_attempts=policy.max_attempts,
                           retry_offsets_hours=list(policy.retry_offsets_hours), updated_by=view.updated_by,
                           updated_at=view.updated_at)
