"""Collections tables: the tenant's strategy, cases with their actions, notes and promises to pay, repayment
reminders and the monthly credit bureau exports.

Invariants the database enforces:
- at most one open case per loan (a partial unique index); statuses, queues and kinds are known values;
- at most one action of a kind per case and business date (a rerun of the day sends nothing twice);
- at most one pending promise per case; a promise is of at least one minor unit;
- one reminder per installment and kind (``upcoming``, ``due``): a rerun reminds nobody twice;
- one bureau export per tenant and cycle (month).
No phone number is stored here: the applicant's is sealed in ``credit_applicants`` and unsealed only for the
connector call.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class CollectionPolicy(Base):
    """A tenant's collection strategy (``domain.Strategy`` as JSON); the default until set."""

    __tablename__ = "credit_collection_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CollectionCase(Base):
    """One delinquency episode of a loan: open while the loan is past due, then cured or written off."""

    __tablename__ = "credit_collection_cases"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'cured', 'written_off')", name="status_known"),
        CheckConstraint("queue IN ('automatic', 'manual')", name="queue_known"),
        CheckConstraint("bucket IN ('M0', 'M1', 'M2', 'M3', 'M4')", name="bucket_known"),
        CheckConstraint("dpd >= 0 AND max_dpd >= dpd AND actioned_dpd >= 0", name="dpd_ordered"),
        Index("uq_credit_collection_cases_open_loan", "tenant_id", "loan_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_credit_collection_cases_status", "tenant_id", "status", "queue", "id"),
        Index("ix_credit_collection_cases_loan", "tenant_id", "loan_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))
    queue: Mapped[str] = mapped_column(String(12))
    #: The loan's standing as last seen by the collections run.
    bucket: Mapped[str] = mapped_column(String(2))
    dpd: Mapped[int] = mapped_column(Integer)
    max_dpd: Mapped[int] = mapped_column(Integer)
    #: The strategy has been applied through this day past due: the next run acts on the days after it.
    actioned_dpd: Mapped[int] = mapped_column(Integer)
    #: What was billed and unpaid (principal, interest, fees, penalty) when last seen: minor units.
    overdue_amount: Mapped[int] = mapped_column(BigInteger)
    #: A tenant user id (``users.id``) working the case; no foreign key so a removed user leaves history intact.
    assignee_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    escalation_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    opened_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CollectionAction(Base):
    """A step taken on a case: an SMS or a call through a connector (recorded, sent, its result applied), or an
    escalation to the manual queue."""

    __tablename__ = "credit_collection_actions"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "business_date"),
        CheckConstraint("kind IN ('sms', 'call', 'escalate')", name="kind_known"),
        CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped', 'done')", name="status_known"),
        Index("ix_credit_collection_actions_case", "tenant_id", "case_id", "id"),
        Index("ix_credit_collection_actions_pending", "tenant_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("credit_collection_cases.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    kind: Mapped[str] = mapped_column(String(12))
    #: Why: "strategy", "promise_broken" or "manual".
    trigger: Mapped[str] = mapped_column(String(20))
    business_date: Mapped[date] = mapped_column(Date)
    dpd: Mapped[int] = mapped_column(Integer)
    bucket: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(12))
    #: The connector's answer: "delivered", "answered", "no_answer", "busy", "failed", "no_phone"...
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    provider_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CollectionNote(Base):
    """A collector's note on a case; notes are appended, never changed."""

    __tablename__ = "credit_collection_notes"

    case_id: Mapped[str] = mapped_column(ForeignKey("credit_collection_cases.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    author: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PromiseToPay(Base):
    """A borrower's promise to pay ``amount`` by ``promised_on``; evaluated every day until kept or broken."""

    __tablename__ = "credit_collection_promises"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'kept', 'broken', 'cancelled')", name="status_known"),
        CheckConstraint("amount >= 1 AND paid_amount >= 0", name="amounts_valid"),
        Index("uq_credit_collection_promises_pending", "case_id", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
        Index("ix_credit_collection_promises_status", "tenant_id", "status", "promised_on"),
        Index("ix_credit_collection_promises_case", "tenant_id", "case_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("credit_collection_cases.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    promised_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))
    #: Repaid since the promise was made (up to its date), as of the last evaluation.
    paid_amount: Mapped[int] = mapped_column(BigInteger)
    evaluated_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Reminder(Base):
    """A repayment reminder of one installment: its webhook event (written with the row) and its SMS (sent by the
    job after the commit, its outcome recorded)."""

    __tablename__ = "credit_reminders"
    __table_args__ = (
        UniqueConstraint("loan_id", "installment_number", "kind"),
        CheckConstraint("kind IN ('upcoming', 'due')", name="kind_known"),
        CheckConstraint("sms_status IN ('pending', 'sent', 'failed', 'skipped')", name="sms_status_known"),
        CheckConstraint("amount_due >= 0", name="amount_non_negative"),
        Index("ix_credit_reminders_tenant", "tenant_id", "id"),
        Index("ix_credit_reminders_pending", "tenant_id", "sms_status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[str] = mapped_column(ForeignKey("credit_loans.id"))
    installment_number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    due_on: Mapped[date] = mapped_column(Date)
    amount_due: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    business_date: Mapped[date] = mapped_column(Date)
    message_id: Mapped[str] = mapped_column(String(40))
    sms_status: Mapped[str] = mapped_column(String(12))
    sms_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BureauExport(Base):
    """The credit bureau file of one monthly cycle: its rows (``content``, layout ``layout_version``) and SHA-256."""

    __tablename__ = "credit_bureau_exports"
    __table_args__ = (
        UniqueConstraint("tenant_id", "cycle"),
        CheckConstraint("record_count >= 0", name="count_non_negative"),
        Index("ix_credit_bureau_exports_tenant", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    cycle: Mapped[str] = mapped_column(String(7))
    layout_version: Mapped[str] = mapped_column(String(12))
    record_count: Mapped[int] = mapped_column(Integer)
    #: Balances reported, per currency, in minor units, and the count of records per status code.
    totals: Mapped[dict[str, Any]] = mapped_column(Json)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
