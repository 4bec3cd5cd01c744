"""Servicing's HTTP shapes: loan accounts, installments, repayments, payoff quotes, end-of-day runs and the
provisioning policy. Amounts are integer minor units beside their currency."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from finloop.api.types import Amount
from finloop.credit.servicing.domain import ProvisionPolicy as Policy
from finloop.credit.servicing.domain import day_of
from finloop.credit.servicing.models import EndOfDayRun, LoanAccount, LoanInstallment, Repayment
from finloop.credit.servicing.service import PayoffQuote, billed


class PrepaymentOption(StrEnum):
    REDUCE_INSTALLMENT = "reduce_installment"
    REDUCE_TERM = "reduce_term"
    PAYOFF = "payoff"


class RepaymentSource(StrEnum):
    MANUAL = "manual"
    PAYMENT = "payment"
    AUTODEBIT = "autodebit"
    COLLECTION = "collection"


class RepaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    #: The caller's reference (a bank transfer's, a cashier's receipt): a repeated reference is the same repayment.
    reference: str = Field(min_length=1, max_length=100)
    source: RepaymentSource = RepaymentSource.MANUAL
    prepayment: PrepaymentOption | None = Field(
        None, description="Apply what is left after the billed amounts to the principal: keep the term and lower "
                          "the installment, keep the installment and shorten the term, or pay the loan off.")


class RecoveryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    reference: str = Field(min_length=1, max_length=100)


class WriteOffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


class EndOfDayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    through: date = Field(description="Run every calendar day not yet closed through this one.")


class ProvisionPolicyWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field("bucket", pattern="^(bucket|expected_loss)$")
    bucket_rates: dict[str, str] | None = None
    pd_by_bucket: dict[str, str] | None = None
    lgd: str | None = None


class LoanAccountRead(BaseModel):
    loan_id: str
    object: str = "loan_account"
    applicant_id: str
    product_id: str
    kind: str
    limit_group: str
    currency: str
    state: str
    disbursed_on: date
    principal_amount: int
    principal_outstanding: int
    principal_billed: int
    interest_billed: int
    interest_accrued: int
    fees_billed: int
    penalty_outstanding: int
    advance_amount: int
    amount_due: int
    next_due_on: date | None
    next_installment: int | None
    days_past_due: int
    bucket: str
    max_days_past_due: int
    provision_amount: int
    totals: dict[str, int]
    processed_through: date
    closed_on: date | None


def read_account(row: LoanAccount) -> LoanAccountRead:
    return LoanAccountRead(
        loan_id=row.loan_id, applicant_id=row.applicant_id, product_id=row.product_id, kind=row.kind,
        limit_group=row.limit_group, currency=row.currency, state=row.state, disbursed_on=row.disbursed_on,
        principal_amount=row.principal_amount, principal_outstanding=row.principal_outstanding,
        principal_billed=row.principal_billed, interest_billed=row.interest_billed,
        interest_accrued=row.period_accrued, fees_billed=row.fees_billed, penalty_outstanding=row.penalty_outstanding,
        advance_amount=row.advance_amount, amount_due=max(0, billed(row) - row.advance_amount),
        next_due_on=day_of(row.period_due_day) if row.period_number else None,
        next_installment=row.period_number or None, days_past_due=row.dpd, bucket=row.bucket,
        max_days_past_due=row.max_dpd, provision_amount=row.provision_amount,
        totals={"interest_income": row.interest_income, "fee_income": row.fee_income,
                "penalty_income": row.penalty_income, "paid": row.paid_amount,
                "written_off": row.written_off_amount, "recovered": row.recovered_amount},
        processed_through=day_of(row.processed_day), closed_on=row.closed_on)


class InstallmentRead(BaseModel):
    number: int
    due_on: date
    principal_due: int
    interest_due: int
    fees_due: int
    principal_paid: int
    interest_paid: int
    fees_paid: int
    status: str
    late_fee_charged: bool
    paid_on: date | None


def read_installment(row: LoanInstallment) -> InstallmentRead:
    return InstallmentRead(number=row.number, due_on=row.due_on, principal_due=row.principal_due,
                           interest_due=row.interest_due, fees_due=row.fees_due, principal_paid=row.principal_paid,
                           interest_paid=row.interest_paid, fees_paid=row.fees_paid, status=row.status,
                           late_fee_charged=row.late_fee_charged, paid_on=row.paid_on)


class RepaymentRead(BaseModel):
    id: str
    object: str = "repayment"
    loan_id: str
    amount: int
    currency: str
    kind: str
    source: str
    reference: str
    allocation: dict[str, int]
    details: dict[str, Any]
    business_date: date
    entry_id: str | None
    created_at: datetime


def read_repayment(row: Repayment) -> RepaymentRead:
    return RepaymentRead(id=row.id, loan_id=row.loan_id, amount=row.amount, currency=row.currency, kind=row.kind,
                         source=row.source, reference=row.reference, allocation=row.allocation, details=row.details,
                         business_date=row.business_date, entry_id=row.entry_id, created_at=row.created_at)


class PayoffQuoteRead(BaseModel):
    loan_id: str
    object: str = "payoff_quote"
    currency: str
    as_of: date
    principal: int
    interest: int
    fees: int
    penalty: int
    prepayment_fee: int
    advance: int
    total: int


def read_quote(quote: PayoffQuote) -> PayoffQuoteRead:
    return PayoffQuoteRead(loan_id=quote.loan_id, currency=quote.currency, as_of=quote.as_of,
                           principal=quote.principal, interest=quote.interest, fees=quote.fees, penalty=quote.penalty,
                           prepayment_fee=quote.prepayment_fee, advance=quote.advance, total=quote.total)


class EndOfDayRunRead(BaseModel):
    business_date: date
    object: str = "end_of_day_run"
    status: str
    loans: int
    chunks: int
    totals: dict[str, Any]
    started_at: datetime
    completed_at: datetime | None


def read_run(row: EndOfDayRun) -> EndOfDayRunRead:
    return EndOfDayRunRead(business_date=row.business_date, status=row.status, loans=row.loans, chunks=row.chunks,
                           totals=row.totals, started_at=row.started_at, completed_at=row.completed_at)


class EndOfDayRunsRead(BaseModel):
    object: str = "list"
    data: list[EndOfDayRunRead]


class SubledgerCheckRead(BaseModel):
    object: str = "subledger_check"
    balanced: bool
    differences: list[str]


class ProvisionPolicyRead(BaseModel):
    object: str = "provision_policy"
    method: str
    bucket_rates: dict[str, str] | None
    pd_by_bucket: dict[str, str] | None
    lgd: str | None


def read_policy(policy: Policy) -> ProvisionPolicyRead:
    data = policy.to_json()
    return ProvisionPolicyRead(method=data["method"], bucket_rates=data.get("bucket_rates"),
                               pd_by_bucket=data.get("pd_by_bucket"), lgd=data.get("lgd"))

