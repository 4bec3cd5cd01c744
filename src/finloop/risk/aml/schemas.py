"""Request and response bodies of the AML and screening API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from finloop.api.types import Instant, Line

Name = Annotated[Line, Field(min_length=1, max_length=300)]
SubjectId = Annotated[Line, Field(min_length=1, max_length=40)]
Scenario = Literal["large_transaction", "structuring", "rapid_movement", "round_amounts", "high_risk_geography",
                   "dormant_reactivated", "funnelling"]
Currency = Annotated[str, StringConstraints(pattern="^[A-Z]{3}$")]
CustomerType = Annotated[str, StringConstraints(pattern="^(\\*|[a-z_]{1,30})$")]
Country = Annotated[str, StringConstraints(pattern="^[A-Z]{2}$")]
MinorUnits = Annotated[int, Field(strict=True, ge=1, le=10**15)]
Hours = Annotated[int, Field(strict=True, ge=1, le=24 * 366)]
Count = Annotated[int, Field(strict=True, ge=1, le=10_000)]
Permille = Annotated[int, Field(strict=True, ge=1, le=1000)]


class AmlRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_: Instant = Field(alias="from")
    to: Instant


class AmlRunRead(BaseModel):
    start: datetime
    end: datetime
    transactions: int
    alerts: int
    created: int
    alert_ids: list[str]


class AlertRead(BaseModel):
    id: str
    scenario: str
    subject_kind: str
    subject_id: str
    currency: str
    window_key: str
    window_start: datetime
    window_end: datetime
    total_amount: int
    evidence: dict[str, Any]
    description: str
    status: str
    case_id: str | None
    created_at: datetime


class AmlConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: Annotated[list[Scenario], Field(max_length=7)] | None = None
    exempt_types: Annotated[list[CustomerType], Field(max_length=20)] | None = None
    large_thresholds: Annotated[dict[Currency, Annotated[dict[CustomerType, MinorUnits], Field(max_length=20)]],
                                Field(max_length=50)] | None = None
    structuring_band_permille: Permille | None = None
    structuring_count: Count | None = None
    structuring_window_hours: Hours | None = None
    rapid_hours: Hours | None = None
    rapid_share_permille: Permille | None = None
    rapid_min_amount: Annotated[dict[Currency, MinorUnits], Field(max_length=50)] | None = None
    round_units: Annotated[dict[Currency, MinorUnits], Field(max_length=50)] | None = None
    round_count: Count | None = None
    round_window_hours: Hours | None = None
    high_risk_countries: Annotated[list[Country], Field(max_length=250)] | None = None
    dormant_days: Annotated[int, Field(strict=True, ge=1, le=3650)] | None = None
    funnel_payers: Count | None = None
    funnel_window_hours: Hours | None = None
    funnel_exempt_types: Annotated[list[CustomerType], Field(max_length=20)] | None = None


class ScreeningCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    kind: Literal["individual", "entity"] = "individual"
    subject_type: Literal["customer", "merchant", "beneficiary", "promoter"]
    subject_id: SubjectId
    threshold: Annotated[int, Field(strict=True, ge=50, le=100)] | None = None


class ScreeningReview(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["confirm", "dismiss"]
    note: Annotated[Line, Field(max_length=1000)] = ""


class ScreeningHit(BaseModel):
    entry_id: str
    source: str
    ref: str
    name: str
    matched_name: str
    score: float
    kind: str
    program: str


class ScreeningRead(BaseModel):
    id: str
    subject_type: str
    subject_id: str
    kind: str
    name: str
    threshold: int
    status: str
    hits: list[ScreeningHit]
    list_versions: dict[str, str]
    case_id: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str
    created_at: datetime


class WatchlistImportRead(BaseModel):
    source: str
    list_version: str
    entries: int
    unchanged: bool
