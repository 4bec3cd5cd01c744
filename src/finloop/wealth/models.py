"""Wealth tables: funds, their published daily yields, fund orders, holders' fund accounts, daily income
lines and sweeps.

A holding is never a column: it is the balance of the holder's ledger account
``liabilities:<kind>:<id>:fund:<code>``; ``fund_accounts`` only remembers which accounts a fund has, so the
daily accrual can find its holders. The database enforces positive order amounts, non-negative limits and
posted income, one price per fund and day, one income line per holder, fund and business date, and one
sweep per holder.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

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
from finloop.db.types import BigId, ExactDecimal, UTCDateTime


class Fund(Base):
    __tablename__ = "funds"
    __table_args__ = (
        UniqueConstraint("tenant_id", "code"),
        CheckConstraint("fast_redemption_daily_limit >= 0", name="fast_limit_non_negative"),
        CheckConstraint("min_subscription_amount >= 1", name="min_subscription_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    #: Fast redemptions of one holder on one business date may total at most this many minor units.
    fast_redemption_daily_limit: Mapped[int] = mapped_column(BigInteger)
    min_subscription_amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FundPrice(Base):
    """A day's published yield: the income per 10,000 units and the seven-day annualised yield."""

    __tablename__ = "fund_prices"
    __table_args__ = (
        UniqueConstraint("fund_id", "price_on"),
        Index("ix_fund_prices_tenant_fund", "tenant_id", "fund_id", "price_on"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    fund_id: Mapped[str] = mapped_column(ForeignKey("funds.id"))
    price_on: Mapped[date] = mapped_column(Date)
    income_per_10k: Mapped[Decimal] = mapped_column(ExactDecimal)
    annualised_7d: Mapped[Decimal] = mapped_column(ExactDecimal)
    published_by: Mapped[str] = mapped_column(String(100))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FundOrder(Base):
    __tablename__ = "fund_orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_fund_orders_tenant_created", "tenant_id", "id"),
        Index("ix_fund_orders_holder", "tenant_id", "holder_kind", "holder_id", "fund_id", "trade_date"),
        Index("ix_fund_orders_due", "tenant_id", "status", "settle_on"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    fund_id: Mapped[str] = mapped_column(ForeignKey("funds.id"))
    kind: Mapped[str] = mapped_column(String(16))
    holder_kind: Mapped[str] = mapped_column(String(16))
    holder_id: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    #: The business date the order was booked on (its first entry's business date).
    trade_date: Mapped[date] = mapped_column(Date)
    #: When the holder's money is (or was) credited: the trade date, or the next business day for ``redeem``.
    settle_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))  # api | sweep | cli
    #: Makes an automatic order (a sweep of one business date) happen once.
    source_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    entry_id: Mapped[str] = mapped_column(String(40))
    settle_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class FundAccount(Base):
    """Which ledger account holds a holder's units of a fund (no balance here: the ledger has it)."""

    __tablename__ = "fund_accounts"
    __table_args__ = (Index("ix_fund_accounts_holder", "tenant_id", "holder_kind", "holder_id"),)

    fund_id: Mapped[str] = mapped_column(ForeignKey("funds.id"), primary_key=True)
    holder_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    holder_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FundAccrual(Base):
    """One holder's income of one fund for the accrual window ending on ``income_on``."""

    __tablename__ = "fund_accruals"
    __table_args__ = (
        UniqueConstraint("fund_id", "holder_kind", "holder_id", "income_on"),
        CheckConstraint("amount >= 0 AND basis_amount >= 0 AND days >= 1", name="amounts_non_negative"),
        Index("ix_fund_accruals_holder", "tenant_id", "holder_kind", "holder_id", "income_on"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    fund_id: Mapped[str] = mapped_column(ForeignKey("funds.id"))
    holder_kind: Mapped[str] = mapped_column(String(16))
    holder_id: Mapped[str] = mapped_column(String(40))
    income_on: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)  # calendar days of the window
    basis_amount: Mapped[int] = mapped_column(BigInteger)  # the units that earned
    income_per_10k: Mapped[Decimal] = mapped_column(ExactDecimal)  # summed over the window's days
    exact_amount: Mapped[Decimal] = mapped_column(ExactDecimal)  # including the carried remainder
    amount: Mapped[int] = mapped_column(BigInteger)  # posted: exact_amount rounded down
    carry: Mapped[Decimal] = mapped_column(ExactDecimal)  # exact_amount - amount, carried forward
    currency: Mapped[str] = mapped_column(String(3))
    entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # None when nothing was posted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Sweep(Base):
    """A holder's standing order: after each business day, sweep its balance above ``keep_amount`` into
    ``fund_id`` when at least ``min_sweep_amount`` would move."""

    __tablename__ = "fund_sweeps"
    __table_args__ = (
        UniqueConstraint("tenant_id", "holder_kind", "holder_id"),
        CheckConstraint("keep_amount >= 0", name="keep_non_negative"),
        CheckConstraint("min_sweep_amount >= 1", name="min_sweep_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    holder_kind: Mapped[str] = mapped_column(String(16))
    holder_id: Mapped[str] = mapped_column(String(40))
    fund_id: Mapped[str] = mapped_column(ForeignKey("funds.id"))
    keep_amount: Mapped[int] = mapped_column(BigInteger)
    min_sweep_amount: Mapped[int] = mapped_column(BigInteger)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
