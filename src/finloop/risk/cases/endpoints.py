"""Risk cases HTTP endpoints: the review queue (writes need ``risk.review``) and the dashboard figures.

Reads need any key of the tenant. Another tenant's case is a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Instant, Line, no_nul
from finloop.db.uow import UnitOfWork
from finloop.risk.cases import figures as dashboard
from finloop.risk.cases import service
from finloop.risk.cases.models import RiskCase, RiskCaseNote
from finloop.risk.cases.state import CaseAction, CaseOutcome, CaseSource, CaseStatus
from finloop.risk.models import RiskDecision

router = APIRouter(tags=["risk"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
REVIEW = "risk.review"
Text = Annotated[str, Field(min_length=1, max_length=service.MAX_NOTE), AfterValidator(no_nul)]


class DecisionSummary(BaseModel):
    id: str
    event_type: str
    outcome: str
    score: int
    rules: list[str] = Field(description="The ids of the rules that fired.")
    reasons: list[dict[str, Any]]
    label: str | None
    amount: int | None = Field(description="The event's amount in minor units, when it has one.")
    currency: str | None
    decided_at: datetime


class NoteRead(BaseModel):
    id: str
    seq: int
    author: str
    body: str
    created_at: datetime


class CaseRead(BaseModel):
    id: str
    object: str = "risk_case"
    source: CaseSource
    object_type: str
    object_id: str
    decision_id: str | None
    alert_id: str | None
    reason: str
    priority: int
    status: CaseStatus
    assignee: str | None
    outcome: CaseOutcome | None
    action: CaseAction | None
    closed_by: str | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CaseDetailRead(CaseRead):
    notes: list[NoteRead]
    decision: DecisionSummary | None


class AssignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: Annotated[Line, Field(min_length=1, max_length=service.MAX_ACTOR)]


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Text


class CloseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: CaseOutcome
    action: CaseAction
    note: Annotated[str, Field(max_length=service.MAX_NOTE), AfterValidator(no_nul)] = ""


class FigureCounts(BaseModel):
    decisions: int
    hits: int
    approvals: int
    reviews: int
    declines: int
    fraud: int
    fraud_caught: int
    non_fraud: int
    non_fraud_flagged: int
    hit_rate: str | None
    approval_rate: str | None
    review_rate: str | None
    decline_rate: str | None
    interception_rate: str | None
    false_positive_rate: str | None
    losses_prevented: dict[str, int] = Field(description="Minor units per currency.")


class FigureBucket(FigureCounts):
    start: datetime


class RuleFigures(BaseModel):
    rule_id: str
    total: FigureCounts
    buckets: list[FigureBucket]


class FiguresRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    bucket: str
    total: FigureCounts
    buckets: list[FigureBucket]
    rules: list[RuleFigures]


def read_case(row: RiskCase) -> CaseRead:
    return CaseRead.model_validate(_case_fields(row))


def _case_fields(row: RiskCase) -> dict[str, Any]:
    return {"id": row.id, "source": row.source, "object_type": row.object_type, "object_id": row.object_id,
            "decision_id": row.decision_id, "alert_id": row.alert_id, "reason": row.reason, "priority": row.priority,
            "status": row.status, "assignee": row.assignee, "outcome": row.outcome, "action": row.action,
            "closed_by": row.closed_by, "closed_at": row.closed_at, "created_at": row.created_at,
            "updated_at": row.updated_at}


def read_note(row: RiskCaseNote) -> NoteRead:
    return NoteRead(id=row.id, seq=row.seq, author=row.author, body=row.body, created_at=row.created_at)


def summarize(row: RiskDecision) -> DecisionSummary:
    amount = row.event.get("amount")
    currency = row.event.get("currency")
    return DecisionSummary(
        id=row.id, event_type=row.event_type, outcome=row.outcome, score=row.score,
        rules=[f["rule_id"] for f in row.fired], reasons=list(row.reasons), label=row.label,
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=currency if isinstance(currency, str) else None, decided_at=row.decided_at)


def read_detail(uow: UnitOfWork, tenant_id: str, case: RiskCase) -> CaseDetailRead:
    from finloop.risk import service as risk

    decision = risk.get_decision(uow, tenant_id, case.decision_id) if case.decision_id else None
    return CaseDetailRead.model_validate({
        **_case_fields(case), "notes": [read_note(n) for n in service.list_notes(uow, tenant_id, case.id)],
        "decision": summarize(decision) if decision is not None else None})


@router.get("/risk/cases", response_model=Page[CaseRead], summary="List cases (the review queue)")
def list_cases(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
               status: Annotated[CaseStatus | None, Query()] = None,
               source: Annotated[CaseSource | None, Query()] = None,
               assignee: Annotated[Line | None, Query(min_length=1, max_length=60)] = None,
               object_type: Annotated[Line | None, Query(min_length=1, max_length=40)] = None,
               object_id: Annotated[Line | None, Query(min_length=1, max_length=100)] = None) -> Page[CaseRead]:
    return reader.run(lambda uow: page(service.list_cases(
        uow, reader.tenant_id, status=status.value if status else None, source=source.value if source else None,
        assignee=assignee, object_type=object_type, object_id=object_id, after=starting_after, limit=limit + 1),
        limit, read_case, lambda c: c.id))


@router.get("/risk/cases/{case_id}", response_model=CaseDetailRead,
            summary="Get a case with its notes and its decision's summary")
def get_case(case_id: Id, reader: CurrentReader) -> CaseDetailRead:
    return reader.run(lambda uow: read_detail(uow, reader.tenant_id,
                                              service.get_case(uow, reader.tenant_id, case_id)))


@router.post("/risk/cases/{case_id}/assign", response_model=CaseRead,
             summary="Assign a case (open → investigating, or re-assign)")
def assign_case(case_id: Id, body: AssignCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_case(service.assign_case(
        uow, writer.tenant_id, case_id, assignee=body.assignee, actor=writer.principal.actor)), permission=REVIEW)


@router.post("/risk/cases/{case_id}/notes", response_model=NoteRead, status_code=201, summary="Add a note")
def add_note(case_id: Id, body: NoteCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_note(service.add_note(
        uow, writer.tenant_id, case_id, body=body.body, author=writer.principal.actor)),
        permission=REVIEW, status_code=201)


@router.post("/risk/cases/{case_id}/close", response_model=CaseRead,
             summary="Close a case with an outcome and an action (approve, decline, add to list, none)")
def close_case(case_id: Id, body: CloseCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_case(service.close_case(
        uow, writer.tenant_id, case_id, outcome=body.outcome.value, action=body.action.value,
        actor=writer.principal.actor, note=body.note)), permission=REVIEW)


@router.get("/risk/figures", response_model=FiguresRead, response_model_by_alias=True,
            summary="Figures per rule and overall per day or hour: hit, review, approval, decline, interception "
                    "and false positive rates, losses prevented")
def get_figures(reader: CurrentReader, from_at: Annotated[Instant, Query()], to_at: Annotated[Instant, Query()],
                bucket: Annotated[Literal["day", "hour"], Query()] = "day") -> FiguresRead:
    return reader.run(lambda uow: FiguresRead.model_validate(dashboard.figures(
        uow, reader.tenant_id, from_at=from_at, to_at=to_at, bucket=bucket)))
