"""Repayment channel tables: the payments that repay loans, the borrowers' debit mandates, the direct debit
attempts and each tenant's retry policy.

Invariants the database enforces:
- a payment repays at most one loan, once (``credit_repayment_payments`` is keyed by the payment id);
- a borrower has at most one active mandate per scope (one loan, or all their loans): ``active_key`` is set
  while the mandate is active and NULL once revoked, and is unique;
- a direct debit attempt exists once per loan, due date and attempt number, so two workers planning the same
  attempt cannot both record it; each attempt has exactly one payment;
- amounts are BIGINT minor units, positive; statuses are the known ones.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class RepaymentPayment(Base):
    """A payment made to repay a loan (by the borrower, or by a direct debit) and what became of its money."""

    __tablename__ = "credit_repayment_payments"
    __table_args__ = (
        CheckConstraint("amount >= 1", name="amount_positive"),
        CheckConstraint("source IN ('payment', 'autodebit')", name="source_known"),
        CheckConstraint("status IN ('pending', 'applied', 'unapplied', 'failed')", name="status_known"),
        Index("ix_credit_repayment_payments_loan", "tenant_id", "loan_id", "created_at"),
        Index("ix_credit_repayment_payments_status", "status", "created_at"),
    )

    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    #: The borrower as a payments customer: whose wallet the captured money is credited to until applied.
    customer_id: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: "payment" (the borrower paid) or "autodebit" (a direct debit of the mandate): the repayment's source.
    source: Mapped[str] = mapped_column(String(12))
    direct_debit_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: pending (the payment is not final), applied (repaid), unapplied (money received, the loan refused it:
    #: it stays in the borrower's wallet), failed (the payment failed or was canceled: no money).
    status: Mapped[str] = mapped_column(String(12))
    repayment_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DebitMandate(Base):
    """A borrower's authority to charge a stored card without them present, for one loan or all their loans."""

    __tablename__ = "credit_debit_mandates"
    __table_args__ = (
        UniqueConstraint("active_key"),
        CheckConstraint("status IN ('active', 'revoked')", name="status_known"),
        CheckConstraint("method IN ('card')", name="method_known"),
        CheckConstraint("max_amount IS NULL OR max_amount >= 1", name="max_amount_positive"),
        Index("ix_credit_debit_mandates_applicant", "tenant_id", "applicant_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    #: None: every loan of the borrower.
    loan_id: Mapped[str | None] = mapped_column(ForeignKey("credit_loans.id"), nullable=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(16))
    #: The vault token of the card charged (its number is never here); only its last four digits are shown.
    card_id: Mapped[str] = mapped_column(String(40))
    card_last4: Mapped[str] = mapped_column(String(4))
    #: Restricts the debits to one channel code; None: routing chooses.
    channel: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: The most one debit may take (minor units); None: the whole amount due.
    max_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: The signed mandate's own reference (the borrower's agreement), for audits.
    reference: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12))
    #: "<applicant>:<loan or *>" while active, NULL once revoked: one active mandate per scope.
    active_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DirectDebit(Base):
    """One attempt to debit a mandate for what a loan owes on a due date: its payment and what became of it."""

    __tablename__ = "credit_direct_debits"
    __table_args__ = (
        UniqueConstraint("tenant_id", "loan_id", "due_on", "attempt_number"),
        UniqueConstraint("payment_id"),
        CheckConstraint("amount >= 1", name="amount_positive"),
        CheckConstraint("attempt_number >= 1", name="attempt_number_positive"),
        CheckConstraint("status IN ('pending', 'processing', 'succeeded', 'failed')", name="status_known"),
        Index("ix_credit_direct_debits_open", "status", "created_at"),
        # The unique constraint above also serves the per-loan lookups (loan, due date, last attempt).
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    mandate_id: Mapped[str] = mapped_column(ForeignKey("credit_debit_mandates.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    #: The due date this run of attempts collects for (the latest installment due on or before the day).
    due_on: Mapped[date] = mapped_column(Date)
    attempt_number: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: pending (recorded, the channel not yet called), processing (called, the answer is awaited: queried by
    #: payments, never sent again), succeeded (money taken), failed (no money; retried at ``next_retry_at``).
    status: Mapped[str] = mapped_column(String(12))
    failure_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: When the next attempt may be made after this one failed; None: no retry left (or not failed).
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The first attempt's time: the retry offsets count from it.
    cycle_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DirectDebitPolicy(Base):
    """A tenant's direct debit settings: whether debits run, how many attempts per due date and when."""

    __tablename__ = "credit_direct_debit_policies"
    __table_args__ = (CheckConstraint("max_attempts >= 1 AND max_attempts <= 10", name="max_attempts_range"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    max_attempts: Mapped[int] = mapped_column(Integer)
    #: Hours after the first attempt at which each retry may run (ascending; one per retry).
    retry_offsets_hours: Mapped[list[int]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
