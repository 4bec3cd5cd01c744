"""Risk tables: rule sets and their versions, decisions, list entries.

Invariants the database enforces: a version number is unique per rule set; a version's status, a
decision's outcome and label, and a list entry's kind and level are one of their closed sets; a score is
an integer. Invariants the service keeps: a published version's rules never change (a change is a new
draft); at most one version per rule set is published (the live one); personal fields of a stored event
are masked and phone, e-mail and payout-account list values are stored only as keyed blind indexes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class RuleSet(Base):
    __tablename__ = "risk_rule_sets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(1000), default="")
    #: The event types this rule set decides; empty: every event type. No two rule sets of a tenant overlap.
    event_types: Mapped[list[str]] = mapped_column(Json, default=list)
    live_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    shadow_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleSetVersion(Base):
    __tablename__ = "risk_rule_set_versions"
    __table_args__ = (
        UniqueConstraint("rule_set_id", "number"),
        CheckConstraint("status IN ('draft', 'pending_approval', 'published', 'retired', 'rolled_back')",
                        name="status_known"),
        CheckConstraint("number >= 1", name="number_positive"),
        Index("ix_risk_rule_set_versions_tenant", "tenant_id", "rule_set_id", "number"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    rule_set_id: Mapped[str] = mapped_column(ForeignKey("risk_rule_sets.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    #: [{id, description, expression, score, outcome, event_types}], in the order given.
    rules: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    #: {event type or "*": {"review": int, "decline": int}}.
    thresholds: Mapped[dict[str, Any]] = mapped_column(Json)
    note: Mapped[str] = mapped_column(String(1000), default="")
    based_on_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    approval_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RiskDecision(Base):
    __tablename__ = "risk_decisions"
    __table_args__ = (
        CheckConstraint("outcome IN ('approve', 'review', 'decline')", name="outcome_known"),
        CheckConstraint("shadow_outcome IS NULL OR shadow_outcome IN ('approve', 'review', 'decline')",
                        name="shadow_outcome_known"),
        CheckConstraint("label IS NULL OR label IN ('fraud_confirmed', 'refunded', 'disputed', 'succeeded')",
                        name="label_known"),
        Index("ix_risk_decisions_tenant_decided", "tenant_id", "decided_at"),
        Index("ix_risk_decisions_tenant_object", "tenant_id", "object_ref"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    event_type: Mapped[str] = mapped_column(String(40))
    #: The event as received, personal fields masked.
    event: Mapped[dict[str, Any]] = mapped_column(Json)
    features: Mapped[dict[str, Any]] = mapped_column(Json)
    #: List memberships at decision time ("black:ip", ...) and the rule ids a white entry bypassed.
    lists: Mapped[list[str]] = mapped_column(Json)
    bypassed: Mapped[list[str]] = mapped_column(Json)
    model_scores: Mapped[dict[str, Any]] = mapped_column(Json)
    #: [{rule_id, score, outcome}] for every rule that fired.
    fired: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    score: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    rule_set_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rule_set_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    model_versions: Mapped[dict[str, Any]] = mapped_column(Json)
    shadow_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    shadow_outcome: Mapped[str | None] = mapped_column(String(10), nullable=True)
    shadow_score: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    shadow_fired: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    object_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    label: Mapped[str | None] = mapped_column(String(20), nullable=True)
    labelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RiskListEntry(Base):
    __tablename__ = "risk_list_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('black', 'white', 'grey')", name="kind_known"),
        CheckConstraint("level IN ('customer', 'ip', 'device', 'card', 'phone', 'email', 'payout_account')",
                        name="level_known"),
        Index("ix_risk_list_entries_lookup", "tenant_id", "level", "value"),
        Index("ix_risk_list_entries_tenant", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(10))
    level: Mapped[str] = mapped_column(String(20))
    #: The value itself for customer, ip, device and card token; a keyed blind index (HMAC-SHA256, hex)
    #: for phone, e-mail and payout account.
    value: Mapped[str] = mapped_column(String(200))
    display: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    #: White entries: the rule ids they bypass ("*": all).
    bypass_rules: Mapped[list[str]] = mapped_column(Json)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    removed_by: Mapped[str | None] = mapped_column(String(60), nullable=True)
