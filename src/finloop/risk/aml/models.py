"""Risk AML tables: monitoring alerts and configuration, watchlists and their blocking keys, screenings.

Invariants the database enforces: one alert per (tenant, scenario, subject, window key) so re-running
the scenarios over overlapping ranges stores nothing twice; an alert's and a screening's status, a
scenario and a watchlist entry's kind are one of their closed sets; amounts are integers ≥ 0.
Invariants the service keeps: the screened name is sealed by the vault (only a masked form in clear);
the blocking keys of an entry are exactly those of its normalised name and aliases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class AmlAlert(Base):
    __tablename__ = "risk_aml_alerts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "scenario", "subject_kind", "subject_id", "window_key",
                         name="uq_risk_aml_alerts_window"),
        CheckConstraint("scenario IN ('large_transaction', 'structuring', 'rapid_movement', 'round_amounts', "
                        "'high_risk_geography', 'dormant_reactivated', 'funnelling')", name="scenario_known"),
        CheckConstraint("status IN ('open', 'closed')", name="status_known"),
        CheckConstraint("total_amount >= 0", name="total_non_negative"),
        Index("ix_risk_aml_alerts_tenant", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    scenario: Mapped[str] = mapped_column(String(30))
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(40))
    #: ``<currency>:<UTC date of the last transaction>``.
    window_key: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    total_amount: Mapped[int] = mapped_column(BigInteger)
    #: {transaction_ids, transactions: [{id, source, direction, amount, currency, at, country,
    #: counterparty_id}], figures: {...}}.
    evidence: Mapped[dict[str, Any]] = mapped_column(Json)
    description: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10))
    case_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AmlConfigRow(Base):
    __tablename__ = "risk_aml_configs"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WatchlistEntry(Base):
    __tablename__ = "risk_watchlist_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('individual', 'entity', 'vessel', 'aircraft')", name="kind_known"),
        Index("ix_risk_watchlist_entries_source", "tenant_id", "source", "ref"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    source: Mapped[str] = mapped_column(String(20))
    #: The SHA-256 (hex, 16 characters) of the imported file.
    list_version: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(300))
    normalized_name: Mapped[str] = mapped_column(String(300))
    aliases: Mapped[list[str]] = mapped_column(Json)
    #: The normalised name first, then the normalised aliases.
    normalized_names: Mapped[list[str]] = mapped_column(Json)
    kind: Mapped[str] = mapped_column(String(20))
    program: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WatchlistKey(Base):
    __tablename__ = "risk_watchlist_keys"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    block: Mapped[str] = mapped_column(String(3), primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("risk_watchlist_entries.id"), primary_key=True)


class Screening(Base):
    __tablename__ = "risk_screenings"
    __table_args__ = (
        CheckConstraint("status IN ('clear', 'potential_match', 'confirmed', 'dismissed')", name="status_known"),
        CheckConstraint("kind IN ('individual', 'entity')", name="kind_known"),
        CheckConstraint("threshold >= 0 AND threshold <= 100", name="threshold_range"),
        Index("ix_risk_screenings_subject", "tenant_id", "subject_type", "subject_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    name_sealed: Mapped[str] = mapped_column(Text)
    name_display: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    #: [{entry_id, source, ref, name, matched_name, score, kind, program}], best first.
    hits: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    list_versions: Mapped[dict[str, Any]] = mapped_column(Json)
    case_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_note: Mapped[str] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
