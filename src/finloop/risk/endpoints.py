"""Risk HTTP endpoints: decisions (``risk.decide``), rule sets and lists (``risk.configure``).

Reads need any key of the tenant. Publishing a version is two calls: the first parks it for approval by
another person, the second (after approval) makes it live.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.db.uow import UnitOfWork
from finloop.risk import lists, service
from finloop.risk.domain import Outcome
from finloop.risk.lists import ListKind, ListLevel
from finloop.risk.models import RiskDecision, RiskListEntry, RuleSet, RuleSetVersion
from finloop.risk.schemas import (
    BacktestCreate,
    BacktestRead,
    DecisionCreate,
    DecisionRead,
    EventType,
    LabelCreate,
    ListEntryCreate,
    ListEntryRead,
    RuleSetCreate,
    RuleSetRead,
    ValidationRead,
    VersionCreate,
    VersionRead,
)

router = APIRouter(tags=["risk"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
CONFIGURE = "risk.configure"
DECIDE = "risk.decide"


def read_decision(row: RiskDecision) -> DecisionRead:
    return DecisionRead.model_validate({
        "id": row.id, "event_type": row.event_type, "outcome": row.outcome, "score": row.score, "fired": row.fired,
        "reasons": row.reasons, "features": row.features, "lists": row.lists, "model_scores": row.model_scores,
        "model_versions": row.model_versions, "rule_set_id": row.rule_set_id,
        "rule_set_version_id": row.rule_set_version_id, "shadow_version_id": row.shadow_version_id,
        "shadow_outcome": row.shadow_outcome, "shadow_score": row.shadow_score, "shadow_fired": row.shadow_fired,
        "object_ref": row.object_ref, "label": row.label, "event": row.event, "decided_at": row.decided_at})


def read_rule_set(row: RuleSet) -> RuleSetRead:
    return RuleSetRead(id=row.id, name=row.name, description=row.description, event_types=list(row.event_types),
                       live_version_id=row.live_version_id, shadow_version_id=row.shadow_version_id,
                       created_at=row.created_at, updated_at=row.updated_at)


def read_version(row: RuleSetVersion) -> VersionRead:
    return VersionRead.model_validate({
        "id": row.id, "rule_set_id": row.rule_set_id, "number": row.number, "status": row.status,
        "rules": row.rules, "thresholds": row.thresholds, "note": row.note,
        "based_on_version_id": row.based_on_version_id, "approval_id": row.approval_id, "created_by": row.created_by,
        "created_at": row.created_at, "published_by": row.published_by, "published_at": row.published_at,
        "retired_at": row.retired_at})


def read_entry(row: RiskListEntry) -> ListEntryRead:
    return ListEntryRead.model_validate({
        "id": row.id, "kind": row.kind, "level": row.level, "display": row.display, "reason": row.reason,
        "bypass_rules": row.bypass_rules, "expires_at": row.expires_at, "created_by": row.created_by,
        "created_at": row.created_at, "removed_at": row.removed_at})


# ---------------------------------------------------------------------------------------------- decisions


@router.post("/risk/decisions", response_model=DecisionRead, status_code=201, summary="Decide an event")
def create_decision(body: DecisionCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> DecisionRead:
        decision = service.decide(uow, writer.tenant_id, event_type=body.event_type.value, event=body.event,
                                  object_ref=body.object_ref)
        return read_decision(service.get_decision(uow, writer.tenant_id, decision.id))

    return writer.run(work, permission=DECIDE, status_code=201)


@router.get("/risk/decisions", response_model=Page[DecisionRead], summary="List decisions")
def list_decisions(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                   event_type: Annotated[EventType | None, Query()] = None,
                   outcome: Annotated[Outcome | None, Query()] = None,
                   object_ref: Annotated[Line | None, Query(max_length=100)] = None) -> Page[DecisionRead]:
    return reader.run(lambda uow: page(service.list_decisions(
        uow, reader.tenant_id, event_type=event_type.value if event_type else None,
        outcome=outcome.value if outcome else None, object_ref=object_ref, after=starting_after, limit=limit + 1),
        limit, read_decision, lambda d: d.id))


@router.get("/risk/decisions/{decision_id}", response_model=DecisionRead, summary="Get a decision")
def get_decision(decision_id: Id, reader: CurrentReader) -> DecisionRead:
    return reader.run(lambda uow: read_decision(service.get_decision(uow, reader.tenant_id, decision_id)))


@router.post("/risk/decisions/{decision_id}/label", response_model=DecisionRead,
             summary="Record the known outcome of a decided object")
def label_decision(decision_id: Id, body: LabelCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_decision(service.label_decision(
        uow, writer.tenant_id, decision_id, body.label.value if body.label else None,
        actor=writer.principal.actor)), permission=DECIDE)


# ---------------------------------------------------------------------------------------------- rule sets


@router.post("/risk/rule-sets", response_model=RuleSetRead, status_code=201, summary="Create a rule set")
def create_rule_set(body: RuleSetCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_rule_set(service.create_rule_set(
        uow, writer.tenant_id, name=body.name, description=body.description,
        event_types=[t.value for t in body.event_types], actor=writer.principal.actor)),
        permission=CONFIGURE, status_code=201)


@router.get("/risk/rule-sets", response_model=Page[RuleSetRead], summary="List rule sets")
def list_rule_sets(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None) -> Page[RuleSetRead]:
    return reader.run(lambda uow: page(service.list_rule_sets(uow, reader.tenant_id, after=starting_after,
                                                              limit=limit + 1), limit, read_rule_set, lambda r: r.id))


@router.get("/risk/rule-sets/{rule_set_id}", response_model=RuleSetRead, summary="Get a rule set")
def get_rule_set(rule_set_id: Id, reader: CurrentReader) -> RuleSetRead:
    return reader.run(lambda uow: read_rule_set(service.get_rule_set(uow, reader.tenant_id, rule_set_id)))


@router.post("/risk/rule-sets/{rule_set_id}/versions", response_model=VersionRead, status_code=201,
             summary="Create a draft version")
def create_version(rule_set_id: Id, body: VersionCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_version(service.create_version(
        uow, writer.tenant_id, rule_set_id, rules=body.rules_json(), thresholds=body.thresholds_json(),
        note=body.note, actor=writer.principal.actor)), permission=CONFIGURE, status_code=201)


@router.get("/risk/rule-sets/{rule_set_id}/versions", response_model=list[VersionRead],
            summary="List a rule set's versions")
def list_versions(rule_set_id: Id, reader: CurrentReader) -> list[VersionRead]:
    return reader.run(lambda uow: [read_version(v) for v in service.list_versions(uow, reader.tenant_id,
                                                                                   rule_set_id)])


@router.get("/risk/rule-sets/{rule_set_id}/versions/{version_id}", response_model=VersionRead,
            summary="Get a version")
def get_version(rule_set_id: Id, version_id: Id, reader: CurrentReader) -> VersionRead:
    return reader.run(lambda uow: read_version(service.get_version(uow, reader.tenant_id, rule_set_id, version_id)))


@router.post("/risk/rule-sets/{rule_set_id}/versions/{version_id}/validate", response_model=ValidationRead,
             summary="Check every rule (syntax and types, with positions); 400 invalid_rule lists the issues")
def validate_version(rule_set_id: Id, version_id: Id, reader: CurrentReader) -> ValidationRead:
    def work(uow: UnitOfWork) -> ValidationRead:
        version = service.validate_version(uow, reader.tenant_id, rule_set_id, version_id)
        return ValidationRead(valid=True, rules=len(version.rules))

    return reader.run(work)


@router.post("/risk/rule-sets/{rule_set_id}/versions/{version_id}/backtest", response_model=BacktestRead,
             summary="Replay stored events of a date range against a version")
def backtest_version(rule_set_id: Id, version_id: Id, body: BacktestCreate,
                     reader: CurrentReader) -> BacktestRead:
    return reader.run(lambda uow: BacktestRead.model_validate(service.backtest(
        uow, reader.tenant_id, rule_set_id, version_id, from_at=body.from_, to_at=body.to)))


@router.post("/risk/rule-sets/{rule_set_id}/versions/{version_id}/publish", response_model=VersionRead,
             summary="Request publication (parks it for approval) or, once approved, publish")
def publish_version(rule_set_id: Id, version_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_version(service.request_publish(uow, writer.principal, rule_set_id,
                                                                       version_id)), permission=CONFIGURE)


@router.post("/risk/rule-sets/{rule_set_id}/versions/{version_id}/shadow", response_model=RuleSetRead,
             summary="Run this version in shadow beside the live one")
def shadow_version(rule_set_id: Id, version_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_rule_set(service.set_shadow(
        uow, writer.tenant_id, rule_set_id, version_id, actor=writer.principal.actor)), permission=CONFIGURE)


@router.delete("/risk/rule-sets/{rule_set_id}/shadow", response_model=RuleSetRead, summary="Stop the shadow")
def stop_shadow(rule_set_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_rule_set(service.set_shadow(
        uow, writer.tenant_id, rule_set_id, None, actor=writer.principal.actor)), permission=CONFIGURE)


@router.post("/risk/rule-sets/{rule_set_id}/rollback", response_model=RuleSetRead,
             summary="Re-publish the previous published version")
def rollback(rule_set_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_rule_set(service.rollback(uow, writer.tenant_id, rule_set_id,
                                                                 actor=writer.principal.actor)), permission=CONFIGURE)


# ---------------------------------------------------------------------------------------------- lists


@router.post("/risk/lists", response_model=ListEntryRead, status_code=201, summary="Add a list entry")
def add_entry(body: ListEntryCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_entry(lists.add_entry(
        uow, writer.tenant_id, kind=body.kind.value, level=body.level.value, value=body.value, reason=body.reason,
        expires_at=body.expires_at, bypass_rules=body.bypass_rules, actor=writer.principal.actor)),
        permission=CONFIGURE, status_code=201)


@router.get("/risk/lists", response_model=Page[ListEntryRead], summary="List entries (active ones by default)")
def list_entries(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                 kind: Annotated[ListKind | None, Query()] = None, level: Annotated[ListLevel | None, Query()] = None,
                 value: Annotated[Line | None, Query(min_length=1, max_length=200,
                                                     description="Look a value up (needs level).")] = None,
                 include_inactive: bool = False) -> Page[ListEntryRead]:
    return reader.run(lambda uow: page(lists.list_entries(
        uow, reader.tenant_id, kind=kind.value if kind else None, level=level.value if level else None, value=value,
        active_only=not include_inactive, after=starting_after, limit=limit + 1), limit, read_entry, lambda e: e.id))


@router.delete("/risk/lists/{entry_id}", response_model=ListEntryRead, summary="Remove a list entry")
def remove_entry(entry_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_entry(lists.remove_entry(uow, writer.tenant_id, entry_id,
                                                                actor=writer.principal.actor)), permission=CONFIGURE)
