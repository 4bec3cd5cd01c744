"""Splits tables: promoters and their customer bindings, merchant hierarchy links, versioned split rules,
per-party receivable limits, and each payment's recorded split with its parts and claw-backs.

Invariants the database enforces: a rule version is unique per scope key; a split is recorded once per
captured attempt; a part's claw-back never exceeds its amount and a split's refunds never its amount.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import ExactDecimal, Json, UTCDateTime


class Promoter(Base):
    __tablename__ = "promoters"
    __table_args__ = (
        UniqueConstraint("tenant_id", "reference"),
        CheckConstraint("receivable_limit >= 0", name="receivable_limit_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    reference: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("promoters.id"), nullable=True)
    receivable_limit: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PromoterBinding(Base):
    """A customer brought by a promoter: its orders earn that promoter commission."""

    __tablename__ = "promoter_bindings"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    promoter_id: Mapped[str] = mapped_column(ForeignKey("promoters.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MerchantLink(Base):
    """A merchant under a parent (branch under headquarters, distributor under branch); the parent takes
    ``share_ratio`` of the order amount of the child's payments."""

    __tablename__ = "merchant_links"
    __table_args__ = (UniqueConstraint("tenant_id", "merchant_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    parent_merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    share_ratio: Mapped[Decimal] = mapped_column(ExactDecimal)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SplitRule(Base):
    """One version of a split rule. A rule in use is never edited: a new version supersedes it."""

    __tablename__ = "split_rules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "scope_key", "version"),
        Index("ix_split_rules_tenant_scope_status", "tenant_id", "scope_key", "status"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    scope: Mapped[str] = mapped_column(String(16))  # order | category | merchant | default
    scope_key: Mapped[str] = mapped_column(String(200))  # e.g. "merchant:<id>", "category:<id>:<cat>"
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), nullable=True)
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # active | superseded | retired
    description: Mapped[str] = mapped_column(String(500), default="")
    terms: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PartyLimit(Base):
    """How much a party may owe the platform (its receivable) before a refund is refused."""

    __tablename__ = "split_party_limits"
    __table_args__ = (
        UniqueConstraint("tenant_id", "party_kind", "party_id"),
        CheckConstraint("receivable_limit >= 0", name="receivable_limit_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    receivable_limit: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentSplit(Base):
    __tablename__ = "payment_splits"
    __table_args__ = (
        UniqueConstraint("tenant_id", "payment_id", "capture_key"),
        Index("ix_payment_splits_tenant_merchant_date", "tenant_id", "merchant_id", "business_date"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee_amount >= 0", name="fee_non_negative"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= amount", name="refunded_within_amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    capture_key: Mapped[str] = mapped_column(String(40))  # the attempt id, or "wallet"
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    rule_id: Mapped[str | None] = mapped_column(ForeignKey("split_rules.id"), nullable=True)
    rule_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refund_policy: Mapped[str] = mapped_column(String(20))
    fee_bearer: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    fee_amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    business_date: Mapped[date] = mapped_column(Date)
    entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentSplitPart(Base):
    __tablename__ = "payment_split_parts"
    __table_args__ = (
        UniqueConstraint("split_id", "seq"),
        Index("ix_payment_split_parts_tenant_party", "tenant_id", "party_kind", "party_id"),
        CheckConstraint("amount >= 0 AND fee_amount >= 0", name="amounts_non_negative"),
        CheckConstraint("clawed_amount >= 0 AND clawed_amount <= amount", name="clawed_within_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    split_id: Mapped[str] = mapped_column(ForeignKey("payment_splits.id"))
    seq: Mapped[int] = mapped_column(Integer)
    party_kind: Mapped[str] = mapped_column(String(16))  # platform | promoter | merchant
    party_id: Mapped[str] = mapped_column(String(40))
    level: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    fee_amount: Mapped[int] = mapped_column(BigInteger)
    recovered_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # paid down its receivable
    clawed_amount: Mapped[int] = mapped_column(BigInteger, default=0)


class SplitClawback(Base):
    """What one refund took back from each part of a split, and from which bucket."""

    __tablename__ = "split_clawbacks"
    __table_args__ = (
        UniqueConstraint("tenant_id", "refund_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    split_id: Mapped[str] = mapped_column(ForeignKey("payment_splits.id"))
    refund_id: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    business_date: Mapped[date] = mapped_column(Date)
    #: [{"seq", "party_kind", "party_id", "amount", "from_pending", "from_available", "to_receivable"}]
    pieces: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
