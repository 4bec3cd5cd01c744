"""Routing tables.

Invariants the tables keep: nothing here is updated per payment. Outcomes and decisions are insert-only
(windows and breakers are computed from the outcome stream in memory), so no row is hot; only a
configuration row is updated, by an operator, with its ``version`` growing by one on every change.
There is one configuration per (tenant, scope), the scope being a merchant id or ``default``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import BigId, Json, UTCDateTime


class RoutingConfigRow(Base):
    __tablename__ = "routing_configs"
    __table_args__ = (UniqueConstraint("tenant_id", "scope"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    #: The merchant id, or "default" for the tenant-wide configuration (merchant_id is then NULL).
    scope: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[dict[str, Any]] = mapped_column(Json)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RoutingOutcome(Base):
    __tablename__ = "routing_outcomes"
    __table_args__ = (
        Index("ix_routing_outcomes_scope", "tenant_id", "merchant_id", "method", "at"),
        Index("ix_routing_outcomes_tenant_at", "tenant_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    merchant_id: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(16))
    latency_ms: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RoutingDecision(Base):
    __tablename__ = "routing_decisions"
    __table_args__ = (
        Index("ix_routing_decisions_tenant_payment", "tenant_id", "payment_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    merchant_id: Mapped[str] = mapped_column(String(40))
    payment_id: Mapped[str] = mapped_column(String(40))
    strategy: Mapped[str] = mapped_column(String(32))
    ranked: Mapped[list[str]] = mapped_column(Json)
    scores: Mapped[dict[str, float]] = mapped_column(Json)
    reason: Mapped[str] = mapped_column(Text)
    explored: Mapped[bool] = mapped_column(Boolean)
    rng_seed: Mapped[int] = mapped_column(BigInteger)
    #: The configuration used (its body and version) and every input of ``domain.route``: enough to replay.
    config: Mapped[dict[str, Any]] = mapped_column(Json)
    config_version: Mapped[int] = mapped_column(Integer)
    config_scope: Mapped[str] = mapped_column(String(40))
    inputs: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
