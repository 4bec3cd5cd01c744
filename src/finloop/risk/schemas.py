"""Request and response models of the risk API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from finloop.api.types import Instant, Line, no_nul
from finloop.risk.domain import MAX_DESCRIPTION, MAX_EXPRESSION, MAX_RULES, MAX_SCORE, Label, Outcome
from finloop.risk.lists import MAX_BYPASS, MAX_REASON, MAX_VALUE, ListKind, ListLevel
from finloop.risk.state import VersionStatus


class EventType(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    WITHDRAWAL = "withdrawal"
    PAYOUT = "payout"
    REGISTRATION = "registration"
    LOGIN = "login"
    LOAN_APPLICATION = "loan_application"


class ThresholdKey(StrEnum):
    ANY = "*"
    PAYMENT = "payment"
    REFUND = "refund"
    WITHDRAWAL = "withdrawal"
    PAYOUT = "payout"
    REGISTRATION = "registration"
    LOGIN = "login"
    LOAN_APPLICATION = "loan_application"


Score = Annotated[StrictInt, Field(ge=-MAX_SCORE, le=MAX_SCORE)]
Threshold = Annotated[StrictInt, Field(ge=1, le=MAX_SCORE)]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$", min_length=1, max_length=64)]


class FiredRuleRead(BaseModel):
    rule_id: str
    score: int
    outcome: Outcome | None


class ReasonRead(BaseModel):
    rule_id: str
    description: str


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_type: EventType
    event: dict[str, Any] = Field(description="The event: amount (integer minor units), currency, customer_id, ip, "
                                              "device_id, card_token, phone, email, ..., and optional nested "
                                              "`customer` and `device` objects. Personal fields are stored masked.")
    object_ref: Annotated[Line | None, Field(min_length=1, max_length=100,
                                             description="The decided object, e.g. the payment id.")] = None


class DecisionRead(BaseModel):
    id: str
    object: str = "risk_decision"
    event_type: str
    outcome: Outcome
    score: int
    fired: list[FiredRuleRead]
    reasons: list[ReasonRead]
    features: dict[str, int]
    lists: list[str]
    model_scores: dict[str, int]
    model_versions: dict[str, str]
    rule_set_id: str | None
    rule_set_version_id: str | None
    shadow_version_id: str | None
    shadow_outcome: Outcome | None
    shadow_score: int | None
    shadow_fired: list[FiredRuleRead]
    object_ref: str | None
    label: Label | None
    event: dict[str, Any]
    decided_at: datetime


class LabelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Label | None = Field(description="What became of the object; null clears it.")


class RuleSetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Line, Field(min_length=1, max_length=100)]
    description: Annotated[str, Field(max_length=1000), AfterValidator(no_nul)] = ""
    event_types: Annotated[list[EventType], Field(max_length=7, description="Empty: every event type.")] = []


class RuleSetRead(BaseModel):
    id: str
    object: str = "rule_set"
    name: str
    description: str
    event_types: list[str]
    live_version_id: str | None
    shadow_version_id: str | None
    created_at: datetime
    updated_at: datetime


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RuleId
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION), AfterValidator(no_nul)] = ""
    expression: Annotated[str, Field(min_length=1, max_length=MAX_EXPRESSION), AfterValidator(no_nul)]
    score: Score = 0
    outcome: Literal["review", "decline"] | None = None
    event_types: Annotated[list[EventType], Field(max_length=7)] = []


class ThresholdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review: Threshold
    decline: Threshold


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[RuleIn], Field(max_length=MAX_RULES)]
    thresholds: dict[ThresholdKey, ThresholdIn] | None = Field(
        default=None, description="Per event type (or '*'); default review at 1, decline at 20.")
    note: Annotated[str, Field(max_length=1000), AfterValidator(no_nul)] = ""

    def rules_json(self) -> list[dict[str, Any]]:
        return [{**rule.model_dump(), "event_types": [t.value for t in rule.event_types]} for rule in self.rules]

    def thresholds_json(self) -> dict[str, Any] | None:
        if self.thresholds is None:
            return None
        return {key.value: value.model_dump() for key, value in self.thresholds.items()}


class VersionRead(BaseModel):
    id: str
    object: str = "rule_set_version"
    rule_set_id: str
    number: int
    status: VersionStatus
    rules: list[dict[str, Any]]
    thresholds: dict[str, Any]
    note: str
    based_on_version_id: str | None
    approval_id: str | None
    created_by: str
    created_at: datetime
    published_by: str | None
    published_at: datetime | None
    retired_at: datetime | None


class ValidationRead(BaseModel):
    valid: bool
    rules: int


class BacktestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Annotated[Instant, Field(alias="from")]
    to: Instant


class RuleFiguresRead(BaseModel):
    rule_id: str
    hits: int
    labels: dict[str, int]


class BacktestRead(BaseModel):
    rule_set_id: str
    version_id: str
    number: int
    events: int
    outcomes: dict[str, int]
    labels: dict[str, int]
    fraud: int
    fraud_caught: int
    non_fraud: int
    non_fraud_flagged: int
    interception_rate: str | None = Field(description="Fraud reviewed or declined / fraud (4 places).")
    false_positive_rate: str | None = Field(description="Non-fraud reviewed or declined / non-fraud (4 places).")
    rules: list[RuleFiguresRead]


class ListEntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ListKind
    level: ListLevel
    value: Annotated[Line, Field(min_length=1, max_length=MAX_VALUE)]
    reason: Annotated[Line, Field(min_length=1, max_length=MAX_REASON)]
    expires_at: Instant | None = None
    bypass_rules: Annotated[list[Annotated[str, Field(pattern=r"^(\*|[a-z0-9][a-z0-9_.\-]{0,63})$")]] | None,
                            Field(max_length=MAX_BYPASS,
                                  description="White entries: the rule ids bypassed ('*' or absent: all).")] = None


class ListEntryRead(BaseModel):
    id: str
    object: str = "risk_list_entry"
    kind: ListKind
    level: ListLevel
    display: str = Field(description="The value, masked for phone, e-mail and payout account.")
    reason: str
    bypass_rules: list[str]
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    removed_at: datetime | None
