"""Reconciliation tables: imported files and their canonical lines, saved CSV mappings, safeguarding checks.

Invariants the database enforces: a file's bytes (sha256) are imported once per
tenant, source and business date; a line belongs
to one file; amounts are non-negative minor units with a direction; a safeguarding check is one row per
tenant, day and currency, and its shortfall is never negative.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import BigId, Json, UTCDateTime


class ReconMapping(Base):
    """A saved column mapping for generic CSV files (see ``importers.base.ColumnMapping``)."""

    __tablename__ = "recon_mappings"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(100))
    delimiter: Mapped[str] = mapped_column(String(1))
    columns: Mapped[dict[str, Any]] = mapped_column(Json)
    date_format: Mapped[str] = mapped_column(String(40))
    datetime_format: Mapped[str] = mapped_column(String(40))
    amount_style: Mapped[str] = mapped_column(String(8))
    sign: Mapped[str] = mapped_column(String(12))
    credit_values: Mapped[list[str]] = mapped_column(Json)
    debit_values: Mapped[list[str]] = mapped_column(Json)
    default_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    default_kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReconFile(Base):
    """One imported channel bill or bank statement."""

    __tablename__ = "recon_files"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "business_date", "sha256"),
        Index("ix_recon_files_source_date", "tenant_id", "source", "business_date"),
        CheckConstraint("line_count >= 0", name="line_count_non_negative"),
        CheckConstraint("source_kind IN ('channel', 'bank')", name="source_kind_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    source: Mapped[str] = mapped_column(String(64))
    source_kind: Mapped[str] = mapped_column(String(8))
    format: Mapped[str] = mapped_column(String(16))
    business_date: Mapped[date] = mapped_column(Date)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    line_count: Mapped[int] = mapped_column(BigInteger)
    account: Mapped[str | None] = mapped_column(String(100), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    opening_balance: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    closing_balance: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    mapping_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReconLine(Base):
    """One canonical line of an imported file (written in bulk: COPY on PostgreSQL).

    Like ledger postings, no foreign keys (a million-line COPY would check each): lines are written
    only by ``service.import_file``, in the transaction that inserts their file.
    """

    __tablename__ = "recon_lines"
    __table_args__ = (
        Index("ix_recon_lines_file", "tenant_id", "file_id"),
        Index("ix_recon_lines_our_reference", "tenant_id", "our_reference"),
        Index("ix_recon_lines_channel_reference", "tenant_id", "channel_reference"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("fee_amount >= 0", name="fee_non_negative"),
        CheckConstraint("direction IN ('credit', 'debit')", name="direction_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    file_id: Mapped[str] = mapped_column(String(40))
    line_no: Mapped[int] = mapped_column(BigInteger)
    value_on: Mapped[date] = mapped_column(Date)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    our_reference: Mapped[str | None] = mapped_column(String(500), nullable=True)
    channel_reference: Mapped[str | None] = mapped_column(String(500), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    direction: Mapped[str] = mapped_column(String(6))
    fee_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str | None] = mapped_column(String(500), nullable=True)
    counterparty: Mapped[str | None] = mapped_column(String(500), nullable=True)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)


class SafeguardingCheck(Base):
    """The daily comparison of the custody account's statement balance with what the ledger owes."""

    __tablename__ = "safeguarding_checks"
    __table_args__ = (
        UniqueConstraint("tenant_id", "checked_on", "currency"),
        CheckConstraint("shortfall_amount >= 0", name="shortfall_non_negative"),
        CheckConstraint("status IN ('ok', 'shortfall', 'no_statement')", name="status_known"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    checked_on: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    custody_source: Mapped[str] = mapped_column(String(64))
    statement_file_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    statement_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    bank_balance: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    owed_amount: Mapped[int] = mapped_column(BigInteger)
    shortfall_amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    breakdown: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
