"""Risk ml tables: the model registry.

Invariants the database enforces: a model version is unique per tenant and model name; a status is one of
challenger, champion, retired; the operating threshold is a score within 0..1000. Invariants the service
keeps: a model's bytes, features, encoding, data range and metrics never change once written (a retrain is
a new version); at most one champion per tenant and model name (promoting retires the previous one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class RiskModel(Base):
    __tablename__ = "risk_models"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "version"),
        CheckConstraint("status IN ('challenger', 'champion', 'retired')", name="status_known"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("threshold >= 0 AND threshold <= 1000", name="threshold_in_range"),
        Index("ix_risk_models_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    #: The name model scores are published under in the decision context (``model.fraud``).
    name: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    algorithm: Mapped[str] = mapped_column(String(20))
    #: ``booster.model_to_string()``.
    model_text: Mapped[str] = mapped_column(Text)
    #: SHA-256 of ``model_text``: the in-process cache key.
    digest: Mapped[str] = mapped_column(String(64))
    #: Input columns in order, and how each is computed from the features and the event.
    features: Mapped[list[str]] = mapped_column(Json)
    encoding: Mapped[dict[str, Any]] = mapped_column(Json)
    #: The operating threshold on the 0..1000 score (review at or above).
    threshold: Mapped[int] = mapped_column(Integer)
    #: {"auc", "precision", "recall", "review_rate", "train_rows", "test_rows", ...}.
    metrics: Mapped[dict[str, Any]] = mapped_column(Json)
    params: Mapped[dict[str, Any]] = mapped_column(Json)
    #: Reference distributions (bin edges and shares) of the score and key features, for drift.
    reference: Mapped[dict[str, Any]] = mapped_column(Json)
    data_from: Mapped[datetime] = mapped_column(UTCDateTime)
    data_to: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Training used events before this instant; the metrics are measured on the events after it.
    split_at: Mapped[datetime] = mapped_column(UTCDateTime)
    drift: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    drift_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
