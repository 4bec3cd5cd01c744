"""Reconciliation matching tables: runs, matches, discrepancies (work items) and their notes.

A run is one matching of a source's business date; its ``fingerprint`` hashes the inputs (lines and
records), so running the same inputs again finds the run instead of writing anything. Discrepancies are
work items keyed by ``(tenant, source, business_date, natural_key)`` (class + references): a re-run
updates the same rows, never duplicates them, and a resolved item stays resolved.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class ReconRun(Base):
    __tablename__ = "recon_runs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "business_date", "fingerprint", name="uq_recon_runs_fingerprint"),
        Index("ix_recon_runs_tenant_day", "tenant_id", "source", "business_date"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    source: Mapped[str] = mapped_column(String(100))
    business_date: Mapped[date] = mapped_column(Date)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    lines_count: Mapped[int] = mapped_column(Integer, default=0)
    records_count: Mapped[int] = mapped_column(Integer, default=0)
    matched_count: Mapped[int] = mapped_column(Integer, default=0)
    late_matched_count: Mapped[int] = mapped_column(Integer, default=0)
    #: Discrepancies found by class, matches by rule, and figures such as the matched share.
    counts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ReconMatch(Base):
    __tablename__ = "recon_matches"
    __table_args__ = (Index("ix_recon_matches_run", "run_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    run_id: Mapped[str] = mapped_column(ForeignKey("recon_runs.id"))
    line_id: Mapped[int] = mapped_column(BigInteger)
    record_id: Mapped[str] = mapped_column(String(100))
    record_kind: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str] = mapped_column(String(40))


class Discrepancy(Base):
    __tablename__ = "recon_discrepancies"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "business_date", "natural_key",
                         name="uq_recon_discrepancies_natural_key"),
        CheckConstraint("status IN ('open', 'investigating', 'resolved')", name="status_known"),
        Index("ix_recon_discrepancies_tenant_status", "tenant_id", "status", "id"),
        Index("ix_recon_discrepancies_tenant_day", "tenant_id", "source", "business_date"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    source: Mapped[str] = mapped_column(String(100))
    business_date: Mapped[date] = mapped_column(Date)
    natural_key: Mapped[str] = mapped_column(String(400))
    discrepancy_class: Mapped[str] = mapped_column("class", String(30))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(200), nullable=True)
    line_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    payment_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    our_reference: Mapped[str | None] = mapped_column(String(500), nullable=True)
    channel_reference: Mapped[str | None] = mapped_column(String(500), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    line_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    record_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    line_fee: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    record_fee: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: What the counterparty owes by its lines minus what our books say, net of fees (credit positive).
    difference: Mapped[int] = mapped_column(BigInteger)
    line_status: Mapped[str | None] = mapped_column(String(40), nullable=True)
    record_status: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: The record's own fields the late-match pass needs (occurred_at, direction, channel...).
    record: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    first_run_id: Mapped[str] = mapped_column(String(40))
    last_run_id: Mapped[str] = mapped_column(String(40))
    resolution: Mapped[str | None] = mapped_column(String(30), nullable=True)
    resolution_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    adjusting_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DiscrepancyNote(Base):
    __tablename__ = "recon_discrepancy_notes"
    __table_args__ = (Index("ix_recon_discrepancy_notes_discrepancy", "discrepancy_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    discrepancy_id: Mapped[str] = mapped_column(ForeignKey("recon_discrepancies.id"))
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
