"""Request and response models of the model registry API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from finloop.risk.ml.models import RiskModel


class ModelStatus(StrEnum):
    CHALLENGER = "challenger"
    CHAMPION = "champion"
    RETIRED = "retired"


class ModelRead(BaseModel):
    id: str
    object: str = "risk_model"
    name: str
    version: int
    status: ModelStatus
    algorithm: str
    features: list[str]
    threshold: int
    metrics: dict[str, Any]
    params: dict[str, Any]
    data_from: datetime
    data_to: datetime
    split_at: datetime
    drift: dict[str, Any] | None
    drift_at: datetime | None
    created_by: str
    created_at: datetime
    promoted_at: datetime | None
    retired_at: datetime | None


class DriftRead(BaseModel):
    model_id: str
    since: str
    at: str
    decisions: int
    score: dict[str, Any] | None
    features: dict[str, Any]


class ContributionRead(BaseModel):
    feature: str
    contribution: float


class ModelExplanationRead(BaseModel):
    name: str
    model_id: str
    score: int | None
    threshold: int
    top: list[ContributionRead]


class ExplanationRead(BaseModel):
    decision_id: str
    models: list[ModelExplanationRead]


def read_model(row: RiskModel) -> ModelRead:
    return ModelRead.model_validate({
        "id": row.id, "name": row.name, "version": row.version, "status": row.status, "algorithm": row.algorithm,
        "features": row.features, "threshold": row.threshold, "metrics": row.metrics, "params": row.params,
        "data_from": row.data_from, "data_to": row.data_to, "split_at": row.split_at, "drift": row.drift,
        "drift_at": row.drift_at, "created_by": row.created_by, "created_at": row.created_at,
        "promoted_at": row.promoted_at, "retired_at": row.retired_at})
