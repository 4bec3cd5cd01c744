"""Clearing tables: fee schedules and daily clearing batches.

A fee schedule is never edited once created: a new one is created and the old one retired, so the
schedule that priced a payment can always be found again (``created_at`` and ``retired_at`` bound the
instants it applied to). A clearing batch is unique per tenant, channel, currency and business date.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import ExactDecimal, Json, UTCDateTime


class FeeSchedule(Base):
    __tablename__ = "fee_schedules"
    __table_args__ = (
        CheckConstraint("fixed_amount >= 0", name="fixed_non_negative"),
        CheckConstraint("minimum_amount IS NULL OR minimum_amount >= 0", name="minimum_non_negative"),
        CheckConstraint("maximum_amount IS NULL OR minimum_amount IS NULL OR maximum_amount >= minimum_amount",
                        name="maximum_above_minimum"),
        Index("ix_fee_schedules_lookup", "tenant_id", "channel_code", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    channel_code: Mapped[str] = mapped_column(String(40))
    #: None: every payment method of the channel.
    method: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: None: every currency.
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    kind: Mapped[str] = mapped_column(String(30))
    rate: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    fixed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Bands of tiered kinds: [{"up_to": int | None, "rate": "0.006", "fixed_amount": int}, ...].
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    minimum_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    maximum_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    bearer: Mapped[str] = mapped_column(String(20))
    refund_fee_policy: Mapped[str] = mapped_column(String(16))
    #: The first business date the schedule applies to.
    effective_from: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # active | retired
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ClearingBatch(Base):
    """What a channel should settle for one business date, computed from our ledger."""

    __tablename__ = "clearing_batches"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel_code", "currency", "business_date"),
        CheckConstraint("payments_count >= 0 AND refunds_count >= 0 AND chargebacks_count >= 0 "
                        "AND adjustments_count >= 0", name="counts_non_negative"),
        CheckConstraint("payments_gross_amount >= 0 AND payment_fees_amount >= 0 AND refunds_gross_amount >= 0 "
                        "AND refund_fee_returns_amount >= 0", name="amounts_non_negative"),
        Index("ix_clearing_batches_tenant_date", "tenant_id", "business_date", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    channel_code: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    business_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # open | settled
    payments_count: Mapped[int] = mapped_column(Integer, default=0)
    payments_gross_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_fees_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_count: Mapped[int] = mapped_column(Integer, default=0)
    refunds_gross_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_fee_returns_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    chargebacks_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Signed: what disputes took off the receivable (negative when won disputes gave more back).
    chargebacks_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    adjustments_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Signed: other postings on the receivable that day (debit positive).
    adjustments_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Signed: what the channel should pay us (negative: we owe it).
    expected_net_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The expected net per receivable shard: {"0": 1234, ...}; sums to ``expected_net_amount``.
    shard_amounts: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    settled_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    difference_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    settlement_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    received_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    bank_account: Mapped[str | None] = mapped_column(String(60), nullable=True)
    settlement_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
