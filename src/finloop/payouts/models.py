"""Payouts tables: payout accounts, payout settings, schedules and payouts.

Invariants the database enforces: amounts are positive BIGINT minor units; one schedule per party and one
settings row per tenant; an automatic payout's key is unique per tenant, and so is a skipped one's, so the
automatic job run twice for a day creates (or skips) its payouts once; one beneficiary screening is kept per
payout account and watchlist version. Holder names and account numbers are stored sealed by the vault; only the
last four digits of the number are kept in clear.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import BigId, UTCDateTime


class PayoutAccount(Base):
    """A bank account a merchant or promoter is paid out to."""

    __tablename__ = "payout_accounts"
    __table_args__ = (
        Index("ix_payout_accounts_party", "tenant_id", "party_kind", "party_id", "currency"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    holder_name_sealed: Mapped[str] = mapped_column(Text)
    account_number_sealed: Mapped[str] = mapped_column(Text)
    account_last4: Mapped[str] = mapped_column(String(4))
    bank_code: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))  # active | disabled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PayoutSettings(Base):
    """A tenant's payout rules."""

    __tablename__ = "payout_settings"
    __table_args__ = (
        CheckConstraint("approval_amount IS NULL OR approval_amount >= 0", name="approval_amount_non_negative"),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    #: Payouts above this many minor units wait for approval (None: never).
    approval_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_attempts: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PayoutSchedule(Base):
    """When a party is paid out automatically, and its own approval amount."""

    __tablename__ = "payout_schedules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "party_kind", "party_id"),
        CheckConstraint("minimum_balance >= 0", name="minimum_balance_non_negative"),
        CheckConstraint("threshold_amount IS NULL OR threshold_amount > 0", name="threshold_positive"),
        CheckConstraint("weekday IS NULL OR (weekday >= 0 AND weekday <= 6)", name="weekday_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(16))  # manual | daily | weekly | threshold
    weekday: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 0 = Monday, for weekly
    threshold_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    minimum_balance: Mapped[int] = mapped_column(BigInteger)
    approval_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    payout_account_id: Mapped[str | None] = mapped_column(ForeignKey("payout_accounts.id"), nullable=True)
    last_run_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Payout(Base):
    """Money leaving a party's available balance for its bank account.

    From the request until the bank's final answer the amount is held in the ledger (``hold_id``, no
    expiry): available drops at once, nothing is posted until the bank pays.
    """

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("tenant_id", "automatic_key"),
        Index("ix_payouts_tenant_party", "tenant_id", "party_kind", "party_id", "id"),
        Index("ix_payouts_due", "status", "next_attempt_at"),
        Index("ix_payouts_executed", "tenant_id", "executed_on"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    payout_account_id: Mapped[str] = mapped_column(ForeignKey("payout_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(200))
    is_automatic: Mapped[bool] = mapped_column(Boolean)
    automatic_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    hold_id: Mapped[str] = mapped_column(String(40))
    approval_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: The beneficiary's sanctions screening the payout waits for (a potential match parks it).
    screening_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(60))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    bank_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    executed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    returned_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    post_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    return_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PayoutSkip(Base):
    """An automatic payout that was due and not made, and why (the party is not verified, a risk decline,
    a sanctioned beneficiary, a limit reached, no payout account): recorded, never silent."""

    __tablename__ = "payout_skips"
    __table_args__ = (
        UniqueConstraint("tenant_id", "automatic_key"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        Index("ix_payout_skips_tenant", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    #: The key the payout would have had: ``auto:<schedule>:<date>``.
    automatic_key: Mapped[str] = mapped_column(String(100))
    schedule_id: Mapped[str] = mapped_column(String(40))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(60))
    decision_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    business_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BeneficiaryScreening(Base):
    """The sanctions screening of a payout account's holder under one version of the tenant's watchlists:
    the holder is screened once per version, not before every payout."""

    __tablename__ = "payout_beneficiary_screenings"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    payout_account_id: Mapped[str] = mapped_column(ForeignKey("payout_accounts.id"), primary_key=True)
    #: A digest of the tenant's watchlist versions (``none``: no list loaded).
    list_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    screening_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
