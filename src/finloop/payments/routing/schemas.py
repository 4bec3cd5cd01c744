"""Routing request and response schemas. The config body itself is ``domain.RoutingConfig`` (one definition)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from finloop.payments.routing.domain import BreakerState, RoutingConfig

__all__ = ["ChannelHealthList", "ChannelHealthRead", "RouteDecisionRead", "RoutingConfig", "RoutingConfigRead"]


class RoutingConfigRead(BaseModel):
    object: Literal["routing_config"] = "routing_config"
    merchant_id: str | None = Field(description="None for the tenant-wide default.")
    source: Literal["merchant", "default", "builtin"] = Field(
        description="Where the config came from: the merchant's own, the tenant default, or the built-in default.")
    version: int
    config: RoutingConfig
    updated_at: datetime | None


class ReplayRead(BaseModel):
    ranked: list[str]
    explored: bool
    matches: bool


class RouteDecisionRead(BaseModel):
    object: Literal["routing_decision"] = "routing_decision"
    id: str
    merchant_id: str
    payment_id: str
    strategy: str
    ranked: list[str]
    scores: dict[str, float]
    reason: str
    explored: bool
    rng_seed: str
    config_scope: str
    config_version: int
    config: RoutingConfig
    inputs: dict[str, Any] = Field(description="Candidates, window snapshot, breaker states, time and seed.")
    replay: ReplayRead
    created_at: datetime


class ChannelHealthRead(BaseModel):
    object: Literal["channel_health"] = "channel_health"
    channel: str
    state: BreakerState
    calls: int
    failures: int
    error_rate: float
    consecutive_failures: int
    opened_at: datetime | None
    half_open_at: datetime | None
    last_outcome_at: datetime | None


class ChannelHealthList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ChannelHealthRead]
