"""Risk cases tables: the review queue and its notes.

Invariants the database enforces: a case's source, object type, status, outcome and action are one of their
closed sets; at most one case is open (not closed) per (tenant, open key) — ``open_key`` joins source, object
type, object id and alert id while the case is open and is NULL once closed (NULLs never collide), so opening
twice returns the same case even under concurrency; a closed case has its outcome, action and closer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import UTCDateTime


class RiskCase(Base):
    __tablename__ = "risk_cases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "open_key"),
        CheckConstraint("source IN ('decision', 'aml_alert', 'screening')", name="source_known"),
        CheckConstraint("status IN ('open', 'investigating', 'closed')", name="status_known"),
        CheckConstraint("outcome IS NULL OR outcome IN ('confirmed_fraud', 'false_positive', 'valuable_alert')",
                        name="outcome_known"),
        CheckConstraint("action IS NULL OR action IN ('approve', 'decline', 'add_to_list', 'none')",
                        name="action_known"),
        CheckConstraint("(status = 'closed') = (outcome IS NOT NULL AND action IS NOT NULL AND closed_at IS NOT NULL "
                        "AND open_key IS NULL)", name="closed_consistent"),
        Index("ix_risk_cases_tenant_status", "tenant_id", "status", "id"),
        Index("ix_risk_cases_tenant_object", "tenant_id", "object_type", "object_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    source: Mapped[str] = mapped_column(String(20))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(100))
    decision_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    alert_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: "source|object_type|object_id|alert_id" while open or investigating; NULL once closed.
    open_key: Mapped[str | None] = mapped_column(String(220), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    assignee: Mapped[str | None] = mapped_column(String(60), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    action: Mapped[str | None] = mapped_column(String(20), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RiskCaseNote(Base):
    __tablename__ = "risk_case_notes"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index("ix_risk_case_notes_tenant_case", "tenant_id", "case_id", "seq"),
    )

    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("risk_cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(String(4000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
