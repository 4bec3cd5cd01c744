"""Ledger tables.

Invariants the database itself enforces: amounts and running sums are BIGINT and never negative
(postings are signed, debit positive, and never zero); a transfer key is unique per tenant forever;
an entry is reversed at most once. Entries and postings have no update path in the code.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import BigId, Json, UTCDateTime


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code", "currency"),
        CheckConstraint("debits_posted >= 0 AND credits_posted >= 0", name="posted_non_negative"),
        CheckConstraint("debits_pending >= 0 AND credits_pending >= 0", name="pending_non_negative"),
        CheckConstraint("overdraft_limit >= 0", name="overdraft_non_negative"),
        CheckConstraint(
            "balance_rule <> 'debits_must_not_exceed_credits' "
            "OR debits_posted + debits_pending <= credits_posted + overdraft_limit",
            name="debits_within_credits"),
        CheckConstraint(
            "balance_rule <> 'credits_must_not_exceed_debits' "
            "OR credits_posted + credits_pending <= debits_posted + overdraft_limit",
            name="credits_within_debits"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    code: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    type: Mapped[str] = mapped_column(String(16))
    #: The side on which the balance grows: debit for assets and expenses, credit otherwise
    #: (a contra account takes the side opposite its type).
    normal_side: Mapped[str] = mapped_column(String(6))
    currency: Mapped[str] = mapped_column(String(3))
    balance_rule: Mapped[str] = mapped_column(String(40), default="none")
    overdraft_limit: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "transfer_key"),
        Index("ix_entries_tenant_effective", "tenant_id", "effective_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    transfer_key: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # transfer | hold_post | reversal
    description: Mapped[str] = mapped_column(Text, default="")
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    business_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    batch_id: Mapped[str | None] = mapped_column(String(40), index=True)
    hold_id: Mapped[str | None] = mapped_column(String(40))
    reverses_id: Mapped[str | None] = mapped_column(ForeignKey("entries.id"), unique=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        Index("ix_postings_account_effective", "account_id", "effective_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    # No foreign keys here: they cost the database half of its work per posting, and the posting path
    # already guarantees both (the entry is inserted in the same statement batch; the account is
    # locked by the same transaction). verify_integrity joins postings to accounts and entries.
    entry_id: Mapped[str] = mapped_column(String(40), index=True)
    account_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    #: Signed minor units: a debit is positive, a credit negative.
    amount: Mapped[int] = mapped_column(BigInteger)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Hold(Base):
    """A pending transfer (two-phase): it reserves funds until posted, voided or expired."""

    __tablename__ = "holds"
    __table_args__ = (
        UniqueConstraint("tenant_id", "transfer_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("posted_amount >= 0 AND posted_amount <= amount", name="posted_within_amount"),
        Index("ix_holds_pending_expiry", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    transfer_key: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    debit_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    credit_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    posted_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))  # pending | posted | voided | expired
    description: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    post_entry_id: Mapped[str | None] = mapped_column(String(40))


class AccountingPeriod(Base):
    """A closed period: no posting may be dated (by business date) inside it."""

    __tablename__ = "accounting_periods"
    __table_args__ = (CheckConstraint("end_on >= start_on", name="ordered"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="closed")
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[str] = mapped_column(String(100))


class AccountDailyBalance(Base):
    """End-of-day snapshot of an account's posted sums, written by the end-of-day job."""

    __tablename__ = "account_daily_balances"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    debits_posted: Mapped[int] = mapped_column(BigInteger)
    credits_posted: Mapped[int] = mapped_column(BigInteger)
