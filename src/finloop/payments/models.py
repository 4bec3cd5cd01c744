"""Payments tables: merchants, customers, channels, payments, attempts, refunds and received notifications.

Invariants the database enforces: amounts are positive BIGINT minor units; a payment never has more
captured than its amount nor more refunded than captured; a channel code, a merchant reference and a
channel's notification id are unique per tenant, so a duplicated notification is recognised by the
insert itself. Channel credentials are stored sealed by the vault, never in clear.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import ExactDecimal, Json, UTCDateTime


class Merchant(Base):
    __tablename__ = "merchants"
    __table_args__ = (UniqueConstraint("tenant_id", "reference"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    reference: Mapped[str] = mapped_column(String(100))  # the platform's own id for the merchant
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: Refunds above this many minor units wait for a finance user's approval (None: never).
    refund_approval_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("tenant_id", "reference"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    reference: Mapped[str] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(50), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        CheckConstraint("fee_fixed_amount >= 0", name="fee_fixed_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    code: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(40))
    base_url: Mapped[str] = mapped_column(String(500))
    methods: Mapped[list[str]] = mapped_column(Json, default=list)
    currencies: Mapped[list[str]] = mapped_column(Json, default=list)
    fee_rate: Mapped[Decimal] = mapped_column(ExactDecimal, default=Decimal(0))
    fee_fixed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    #: "proportional": the channel gives back the fee share of a refund; "retained": it keeps the fee.
    refund_fee_policy: Mapped[str] = mapped_column(String(16), default="proportional")
    timeout_ms: Mapped[int] = mapped_column(Integer, default=10_000)
    settings: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    credentials_sealed: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("captured_amount >= 0 AND captured_amount <= amount", name="captured_within_amount"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= captured_amount", name="refunded_within_captured"),
        Index("ix_payments_tenant_created", "tenant_id", "id"),
        Index("ix_payments_tenant_merchant", "tenant_id", "merchant_id", "id"),
        Index("ix_payments_tenant_status", "tenant_id", "status", "id"),
        # A day's payments, as the console's overview and the reports read them.
        Index("ix_payments_tenant_created_at", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    #: None for a wallet top-up, whose money goes to the customer's wallet instead of a merchant.
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), nullable=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    #: "order" (a merchant's sale) or "wallet_top_up".
    purpose: Mapped[str] = mapped_column(String(20), default="order", server_default="order")
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    captured_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Refunds that succeeded, or are in flight and therefore reserved against the captured amount.
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    method: Mapped[str | None] = mapped_column(String(20), nullable=True)
    capture_method: Mapped[str] = mapped_column(String(10), default="automatic")
    status: Mapped[str] = mapped_column(String(30))
    order_reference: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(String(500), default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", Json, default=dict)
    card_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the channel code that took the money
    next_action: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    failure_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    is_disputed: Mapped[bool] = mapped_column(default=False)
    ledger_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Attempt(Base):
    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("payment_id", "sequence"),
        Index("ix_payment_attempts_open", "status", "next_query_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # also our reference at the channel
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    channel_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    routing_decision_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    raw: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    queries: Mapped[int] = mapped_column(Integer, default=0)
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_tenant_payment", "tenant_id", "payment_id"),
        Index("ix_refunds_open", "status", "next_query_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    attempt_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    fee_returned_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(500), default="")
    channel_refund_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    approval_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    is_automatic: Mapped[bool] = mapped_column(default=False)  # a late success refunded by us
    ledger_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    queries: Mapped[int] = mapped_column(Integer, default=0)
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelNotification(Base):
    __tablename__ = "channel_notifications"
    __table_args__ = (UniqueConstraint("tenant_id", "channel", "notification_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    channel: Mapped[str] = mapped_column(String(40))
    notification_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Withdrawal(Base):
    """Money leaving a customer's wallet for a bank account through a channel's payout capability.

    While the payout is in flight the amount is held in the ledger (a two-phase hold), so it can neither
    be spent nor withdrawn twice; success posts the hold, failure voids it.
    """

    __tablename__ = "withdrawals"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_withdrawals_tenant_customer", "tenant_id", "customer_id", "id"),
        Index("ix_withdrawals_open", "status", "next_query_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    fee_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20))
    account_name: Mapped[str] = mapped_column(String(200))
    account_last4: Mapped[str] = mapped_column(String(4))
    account_sealed: Mapped[str] = mapped_column(Text)  # the full account number, sealed by the vault
    bank_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    hold_id: Mapped[str] = mapped_column(String(40))
    channel_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    ledger_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    queries: Mapped[int] = mapped_column(Integer, default=0)
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
