"""Servicing tables: the loan sub-ledger (one account per disbursed loan), its installments, repayments,
schedule changes, the end-of-day runs and the month-end snapshots the portfolio reports read.

Days are stored twice where set-wise SQL needs arithmetic on them: a ``Date`` for people and an integer
``*_day`` (days since 1970-01-01, ``domain.day_number``) that SQLite and PostgreSQL subtract and divide alike.

Invariants the database enforces:
- one account per loan; every amount is BIGINT minor units and never negative;
- ``principal_billed <= principal_outstanding`` (billed principal is part of what is owed);
- an account's state is performing, overdue, paid_off or written_off; its bucket one of M0..M4;
- an installment exists once per loan and number; what was paid of it never exceeds what was due;
- a repayment happens once per loan and caller's reference;
- an end-of-day run exists once per tenant and business date; a month-end snapshot once per loan and month.
Invariants the service keeps (checked by ``eod.check_subledger``): per tenant, currency and limit group, the
accounts' principal, interest, fees and penalty receivables and their provisions equal the balances of the
general ledger's loan accounts to the minor unit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class LoanAccount(Base):
    """What a loan owes, component by component, and where it stands today (the loan sub-ledger)."""

    __tablename__ = "credit_loan_accounts"
    __table_args__ = (
        CheckConstraint("state IN ('performing', 'overdue', 'paid_off', 'written_off')", name="state_known"),
        CheckConstraint("bucket IN ('M0', 'M1', 'M2', 'M3', 'M4')", name="bucket_known"),
        CheckConstraint(
            "principal_outstanding >= 0 AND principal_billed >= 0 AND principal_billed <= principal_outstanding "
            "AND interest_billed >= 0 AND period_accrued >= 0 AND fees_billed >= 0 AND penalty_outstanding >= 0 "
            "AND advance_amount >= 0 AND provision_amount >= 0", name="amounts_non_negative"),
        CheckConstraint("period_accrued <= period_interest", name="accrued_within_period"),
        CheckConstraint("dpd >= 0 AND max_dpd >= dpd", name="dpd_ordered"),
        Index("ix_credit_loan_accounts_day", "tenant_id", "processed_day", "loan_id"),
        Index("ix_credit_loan_accounts_state", "tenant_id", "state", "bucket"),
        Index("ix_credit_loan_accounts_applicant", "tenant_id", "applicant_id"),
    )

    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("credit_products.id"))
    #: The product's kind and limit group, copied so the end of day groups and posts without a join.
    kind: Mapped[str] = mapped_column(String(12))
    limit_group: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(12))
    disbursed_on: Mapped[date] = mapped_column(Date)
    #: "YYYY-MM" of the disbursement: the vintage.
    origination_month: Mapped[str] = mapped_column(String(7))
    principal_amount: Mapped[int] = mapped_column(BigInteger)
    #: Principal not yet repaid (billed or not).
    principal_outstanding: Mapped[int] = mapped_column(BigInteger)
    #: Principal, interest and fees billed (fallen due) and not yet paid.
    principal_billed: Mapped[int] = mapped_column(BigInteger)
    interest_billed: Mapped[int] = mapped_column(BigInteger)
    fees_billed: Mapped[int] = mapped_column(BigInteger)
    penalty_outstanding: Mapped[int] = mapped_column(BigInteger)
    #: Paid beyond what was billed and held (a liability) until the next installment falls due.
    advance_amount: Mapped[int] = mapped_column(BigInteger)
    #: The current period: the installment number (0 once no installment is left to bill), its first day and
    #: its due day, its scheduled interest and how much of it has been accrued.
    period_number: Mapped[int] = mapped_column(Integer)
    period_start_day: Mapped[int] = mapped_column(Integer)
    period_due_day: Mapped[int] = mapped_column(Integer)
    period_interest: Mapped[int] = mapped_column(BigInteger)
    period_accrued: Mapped[int] = mapped_column(BigInteger)
    #: Days past due of the oldest unpaid installment, its bucket, and the worst ever (vintage curves).
    dpd: Mapped[int] = mapped_column(Integer)
    bucket: Mapped[str] = mapped_column(String(2))
    max_dpd: Mapped[int] = mapped_column(Integer)
    oldest_unpaid_due_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The allowance held against this loan (its share of ``assets:loans:<group>:allowance``).
    provision_amount: Mapped[int] = mapped_column(BigInteger)
    #: The probability of default at origination (the score's), parts per million: expected-loss provisioning.
    pd_ppm: Mapped[int] = mapped_column(Integer)
    #: Lifetime totals for profit and loss: income accrued and charged, what was repaid, lost and recovered.
    interest_income: Mapped[int] = mapped_column(BigInteger)
    fee_income: Mapped[int] = mapped_column(BigInteger)
    penalty_income: Mapped[int] = mapped_column(BigInteger)
    paid_amount: Mapped[int] = mapped_column(BigInteger)
    written_off_amount: Mapped[int] = mapped_column(BigInteger)
    recovered_amount: Mapped[int] = mapped_column(BigInteger)
    #: What the last end of day posted for this loan (its accrual, penalty, late fee): the set-wise totals.
    accrued_today: Mapped[int] = mapped_column(BigInteger)
    penalty_today: Mapped[int] = mapped_column(BigInteger)
    provision_today: Mapped[int] = mapped_column(BigInteger)
    #: The last business date the end of day (or a repayment catching up) processed, and penalised.
    processed_day: Mapped[int] = mapped_column(Integer)
    penalty_day: Mapped[int] = mapped_column(Integer)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoanInstallment(Base):
    """One installment of a loan's current schedule and what has been paid of it. A rescheduling rewrites the
    installments not yet billed (the old ones are kept in ``ScheduleChange``)."""

    __tablename__ = "credit_installments"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'billed', 'paid', 'cancelled', 'written_off')",
                        name="status_known"),
        CheckConstraint("principal_paid <= principal_due AND interest_paid <= interest_due AND fees_paid <= fees_due",
                        name="paid_within_due"),
        CheckConstraint("principal_due >= 0 AND interest_due >= 0 AND fees_due >= 0 AND principal_paid >= 0 "
                        "AND interest_paid >= 0 AND fees_paid >= 0", name="amounts_non_negative"),
        Index("ix_credit_installments_due", "tenant_id", "status", "due_day"),
    )

    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    start_day: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date] = mapped_column(Date)
    due_day: Mapped[int] = mapped_column(Integer)
    principal_due: Mapped[int] = mapped_column(BigInteger)
    interest_due: Mapped[int] = mapped_column(BigInteger)
    #: Installment fees plus the late fee once charged.
    fees_due: Mapped[int] = mapped_column(BigInteger)
    principal_paid: Mapped[int] = mapped_column(BigInteger)
    interest_paid: Mapped[int] = mapped_column(BigInteger)
    fees_paid: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))
    late_fee_charged: Mapped[bool] = mapped_column(Boolean)
    billed_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    paid_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class Repayment(Base):
    """Money received for a loan and how it was allocated (and, for a prepayment, what it changed)."""

    __tablename__ = "credit_repayments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "loan_id", "reference"),
        CheckConstraint("amount >= 1", name="amount_positive"),
        CheckConstraint("kind IN ('regular', 'prepayment', 'payoff', 'recovery', 'advance')", name="kind_known"),
        Index("ix_credit_repayments_loan", "tenant_id", "loan_id", "id"),
        Index("ix_credit_repayments_date", "tenant_id", "business_date"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(12))
    #: Where the money came from: "manual", "payment", "autodebit", "advance", "collection", "recovery".
    source: Mapped[str] = mapped_column(String(12))
    #: The caller's reference (a payment id, a bank reference): the idempotency of the repayment.
    reference: Mapped[str] = mapped_column(String(100))
    #: {"penalty", "fees", "interest", "principal", "prepayment_fee", "advance", "refund"}: minor units.
    allocation: Mapped[dict[str, int]] = mapped_column(Json)
    #: A prepayment's option ("reduce_installment", "reduce_term") and the schedule change it made.
    details: Mapped[dict[str, Any]] = mapped_column(Json)
    business_date: Mapped[date] = mapped_column(Date)
    entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduleChange(Base):
    """A rescheduling (partial prepayment): the installments before and after."""

    __tablename__ = "credit_schedule_changes"
    __table_args__ = (Index("ix_credit_schedule_changes_loan", "tenant_id", "loan_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    repayment_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str] = mapped_column(String(24))
    before: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    after: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    business_date: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EndOfDayRun(Base):
    """One tenant's end of day for one business date: started, completed, and what it did."""

    __tablename__ = "credit_eod_runs"
    __table_args__ = (CheckConstraint("status IN ('running', 'completed')", name="status_known"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(12))
    loans: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer)
    #: Minor units per currency and component: accrued, billed, penalty, late fees, provision, written off.
    totals: Mapped[dict[str, Any]] = mapped_column(Json)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoanMonthEnd(Base):
    """A loan as it stood at the end of a month: what vintage curves and roll-rate matrices read."""

    __tablename__ = "credit_loan_month_ends"
    __table_args__ = (
        Index("ix_credit_loan_month_ends_month", "tenant_id", "month"),
        Index("ix_credit_loan_month_ends_vintage", "tenant_id", "origination_month", "month"),
    )

    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    product_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))
    currency: Mapped[str] = mapped_column(String(3))
    origination_month: Mapped[str] = mapped_column(String(7))
    months_on_book: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))
    bucket: Mapped[str] = mapped_column(String(2))
    dpd: Mapped[int] = mapped_column(Integer)
    max_dpd: Mapped[int] = mapped_column(Integer)
    principal_outstanding: Mapped[int] = mapped_column(BigInteger)
    provision_amount: Mapped[int] = mapped_column(BigInteger)


class ProvisionPolicy(Base):
    """A tenant's provisioning method and rates (decimal strings in ``policy``); the defaults until set."""

    __tablename__ = "credit_provision_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

