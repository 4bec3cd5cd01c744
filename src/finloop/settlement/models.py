"""Settlement tables.

Invariants the database enforces: one profile per party; one batch per (tenant, party, currency, cohort
business date), so settling a day twice settles nothing twice; a batch's parts sum to what it settled;
held amounts are positive and released at most once; an FX rate is positive.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import ExactDecimal, UTCDateTime


class SettlementProfile(Base):
    """How and when a party's pending money becomes available."""

    __tablename__ = "settlement_profiles"
    __table_args__ = (
        UniqueConstraint("tenant_id", "party_kind", "party_id"),
        CheckConstraint("cycle IN ('t_plus_n', 'weekly', 'monthly')", name="cycle_known"),
        CheckConstraint("offset_days >= 0 AND offset_days <= 30", name="offset_range"),
        CheckConstraint("weekday IS NULL OR (weekday >= 0 AND weekday <= 6)", name="weekday_range"),
        CheckConstraint("day_of_month IS NULL OR (day_of_month >= 1 AND day_of_month <= 31)",
                        name="day_of_month_range"),
        CheckConstraint("freeze_days >= 0 AND reserve_days >= 0", name="days_non_negative"),
        CheckConstraint("reserve_rate >= 0 AND reserve_rate < 1", name="reserve_rate_range"),
        CheckConstraint("min_settlement_amount >= 0", name="minimum_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    cycle: Mapped[str] = mapped_column(String(16))
    offset_days: Mapped[int] = mapped_column(Integer, default=1)  # n of T+n (business days)
    weekday: Mapped[int | None] = mapped_column(Integer, nullable=True)  # weekly: Monday is 0
    day_of_month: Mapped[int | None] = mapped_column(Integer, nullable=True)  # monthly
    freeze_days: Mapped[int] = mapped_column(Integer, default=0)
    reserve_rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    reserve_days: Mapped[int] = mapped_column(Integer, default=0)
    settlement_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    min_settlement_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SettlementBatch(Base):
    """One cohort of a party settled: the net of its pending postings of one business date and currency."""

    __tablename__ = "settlement_batches"
    __table_args__ = (
        UniqueConstraint("tenant_id", "party_kind", "party_id", "currency", "cohort_date"),
        CheckConstraint("reserve_amount >= 0 AND frozen_amount >= 0", name="held_non_negative"),
        CheckConstraint("reserve_amount + frozen_amount + available_amount = settled_amount",
                        name="parts_sum_to_settled"),
        Index("ix_settlement_batches_tenant_settled", "tenant_id", "settled_on", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    cohort_date: Mapped[date] = mapped_column(Date)
    settle_date: Mapped[date] = mapped_column(Date)  # when the cycle said it was due
    settled_on: Mapped[date] = mapped_column(Date)  # the business date of the run that settled it
    status: Mapped[str] = mapped_column(String(16))  # settled | empty
    #: Signed net of the cohort in ``currency`` (negative: claw-backs beyond credits).
    amount: Mapped[int] = mapped_column(BigInteger)
    settlement_currency: Mapped[str] = mapped_column(String(3))
    settled_amount: Mapped[int] = mapped_column(BigInteger)  # in settlement_currency
    reserve_amount: Mapped[int] = mapped_column(BigInteger)
    frozen_amount: Mapped[int] = mapped_column(BigInteger)
    available_amount: Mapped[int] = mapped_column(BigInteger)  # signed
    fx_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    fx_source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    fx_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SettlementReserve(Base):
    """Money held back from a settlement (rolling reserve or freeze) until ``release_on``."""

    __tablename__ = "settlement_reserves"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("released_amount >= 0 AND released_amount <= amount", name="released_within_amount"),
        CheckConstraint("kind IN ('reserve', 'freeze')", name="kind_known"),
        CheckConstraint("release_on >= held_on", name="ordered"),
        UniqueConstraint("batch_id", "kind"),
        Index("ix_settlement_reserves_due", "tenant_id", "status", "release_on"),
        Index("ix_settlement_reserves_party", "tenant_id", "party_kind", "party_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    party_kind: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))  # reserve | freeze
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    held_on: Mapped[date] = mapped_column(Date)
    release_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # held | released
    released_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    released_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("settlement_batches.id"))
    release_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FxRate(Base):
    """One unit (major) of ``base`` is worth ``rate`` units of ``quote`` from ``as_of`` on."""

    __tablename__ = "fx_rates"
    __table_args__ = (
        UniqueConstraint("tenant_id", "base", "quote", "as_of", "source"),
        CheckConstraint("rate > 0", name="rate_positive"),
        CheckConstraint("base <> quote", name="distinct_currencies"),
        Index("ix_fx_rates_lookup", "tenant_id", "base", "quote", "as_of"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(ExactDecimal)
    source: Mapped[str] = mapped_column(String(100))
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
