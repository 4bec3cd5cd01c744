"""Reconciliation matching HTTP endpoints: runs, discrepancies (work items) and unified statements.

Reads need any key of the tenant; a run needs ``reconciliation.import``; assigning, annotating and
resolving discrepancies need ``reconciliation.resolve``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line, no_nul
from finloop.reconciliation import discrepancies as service
from finloop.reconciliation import statements
from finloop.reconciliation.discrepancies import Action, DiscrepancyStatus
from finloop.reconciliation.match_models import Discrepancy, DiscrepancyNote, ReconRun
from finloop.reconciliation.matching import DiscrepancyClass

router = APIRouter(tags=["reconciliation"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
Source = Annotated[Line, Field(min_length=1, max_length=service.MAX_SOURCE,
                               description="A channel code, or bank:<account> for a bank statement.")]
RUN_PERMISSION = "reconciliation.import"
RESOLVE_PERMISSION = "reconciliation.resolve"
# The dates a run or statement may name: a wide but finite range, so a fuzzed year 1 or 9999 is a 4xx.
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def _bounded(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"a date between {EARLIEST} and {LATEST}")
    return value


BoundedDate = Annotated[date, AfterValidator(_bounded)]


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Source
    business_date: BoundedDate


class RunRead(BaseModel):
    id: str
    object: str = "reconciliation_run"
    source: str
    business_date: date
    status: str
    fingerprint: str
    lines_count: int
    records_count: int
    matched_count: int
    late_matched_count: int
    counts: dict[str, Any] = Field(description="Found by this run: discrepancies by class, matches by rule, "
                                               "matched and unmatched lines, differences by currency.")
    discrepancies_now: dict[str, dict[str, int]] | None = Field(
        None, description="The day's discrepancies by class and status as they stand now (single reads).")
    match_rate: float | None = Field(None, description="Matched lines over non-ignored lines.")
    started_at: datetime
    finished_at: datetime | None


class NoteRead(BaseModel):
    id: int
    author: str
    text: str
    created_at: datetime


class DiscrepancyRead(BaseModel):
    id: str
    object: str = "discrepancy"
    source: str
    business_date: date
    discrepancy_class: DiscrepancyClass = Field(alias="class")
    kind: str
    status: DiscrepancyStatus
    assignee: str | None
    line_id: int | None
    record_id: str | None
    payment_id: str | None
    our_reference: str | None
    channel_reference: str | None
    currency: str
    line_amount: int | None
    record_amount: int | None
    line_fee: int | None
    record_fee: int | None
    difference: int = Field(description="What the counterparty owes by its lines minus our books, net of fees.")
    line_status: str | None
    record_status: str | None
    resolution: str | None
    resolution_reason: str | None
    resolved_by: str | None
    adjusting_entry_id: str | None
    first_run_id: str
    last_run_id: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    notes: list[NoteRead] | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: Annotated[Line, Field(min_length=1, max_length=service.MAX_ASSIGNEE)]


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=service.MAX_NOTE), AfterValidator(no_nul)]


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    reason: Annotated[str | None, Field(min_length=1, max_length=service.MAX_REASON),
                      AfterValidator(lambda v: no_nul(v) if v is not None else v)] = None


def read_run(run: ReconRun, now: dict[str, dict[str, int]] | None = None) -> RunRead:
    counts = dict(run.counts or {})
    considered = int(counts.get("matched_lines", 0)) + int(counts.get("unmatched_lines", 0))
    rate = round(int(counts.get("matched_lines", 0)) / considered, 6) if considered else None
    return RunRead(id=run.id, source=run.source, business_date=run.business_date, status=run.status,
                   fingerprint=run.fingerprint, lines_count=run.lines_count, records_count=run.records_count,
                   matched_count=run.matched_count, late_matched_count=run.late_matched_count, counts=counts,
                   discrepancies_now=now, match_rate=rate, started_at=run.started_at, finished_at=run.finished_at)


def read_discrepancy(item: Discrepancy, notes: list[DiscrepancyNote] | None = None) -> DiscrepancyRead:
    values = {c.key: getattr(item, c.key) for c in Discrepancy.__mapper__.column_attrs
              if c.key in DiscrepancyRead.model_fields and c.key != "discrepancy_class"}
    return DiscrepancyRead(**values, discrepancy_class=DiscrepancyClass(item.discrepancy_class),
                           notes=[NoteRead(id=n.id, author=n.author, text=n.text, created_at=n.created_at)
                                  for n in notes] if notes is not None else None)


@router.post("/reconciliation/runs", response_model=RunRead, status_code=201,
             summary="Reconcile a source's business date (idempotent: the same inputs return the same run)")
def create_run(body: RunCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: Any) -> RunRead:
        run = service.run_reconciliation(uow, writer.tenant_id, source=body.source, business_date=body.business_date)
        return read_run(run, service.run_open_counts(uow, writer.tenant_id, run))
    return writer.run(work, permission=RUN_PERMISSION, status_code=201)


@router.get("/reconciliation/runs", response_model=Page[RunRead], summary="List reconciliation runs, newest first")
def list_runs(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
              source: Annotated[Line | None, Query(min_length=1, max_length=service.MAX_SOURCE)] = None,
              business_date: Annotated[BoundedDate | None, Query()] = None) -> Page[RunRead]:
    return reader.run(lambda uow: page(service.list_runs(
        uow, reader.tenant_id, source=source, business_date=business_date, after=starting_after, limit=limit),
        limit, read_run, lambda r: r.id))


@router.get("/reconciliation/runs/{run_id}", response_model=RunRead, summary="Get a reconciliation run")
def get_run(run_id: Id, reader: CurrentReader) -> RunRead:
    def work(uow: Any) -> RunRead:
        run = service.get_run(uow, reader.tenant_id, run_id)
        return read_run(run, service.run_open_counts(uow, reader.tenant_id, run))
    return reader.run(work)


@router.get("/reconciliation/discrepancies", response_model=Page[DiscrepancyRead],
            summary="List discrepancies, newest first")
def list_discrepancies(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                       discrepancy_class: Annotated[DiscrepancyClass | None, Query(alias="class")] = None,
                       status: Annotated[DiscrepancyStatus | None, Query()] = None,
                       source: Annotated[Line | None, Query(min_length=1, max_length=service.MAX_SOURCE)] = None,
                       business_date: Annotated[BoundedDate | None, Query()] = None) -> Page[DiscrepancyRead]:
    return reader.run(lambda uow: page(service.list_discrepancies(
        uow, reader.tenant_id, discrepancy_class=discrepancy_class.value if discrepancy_class else None,
        status=status.value if status else None, source=source, business_date=business_date,
        after=starting_after, limit=limit), limit, read_discrepancy, lambda d: d.id))


def _full(uow: Any, tenant_id: str, item: Discrepancy) -> DiscrepancyRead:
    return read_discrepancy(item, service.list_notes(uow, tenant_id, item.id))


@router.get("/reconciliation/discrepancies/{discrepancy_id}", response_model=DiscrepancyRead,
            summary="Get a discrepancy with its notes")
def get_discrepancy(discrepancy_id: Id, reader: CurrentReader) -> DiscrepancyRead:
    return reader.run(lambda uow: _full(uow, reader.tenant_id,
                                        service.get_discrepancy(uow, reader.tenant_id, discrepancy_id)))


@router.post("/reconciliation/discrepancies/{discrepancy_id}/assign", response_model=DiscrepancyRead,
             summary="Assign a discrepancy; an open one goes under investigation")
def assign(discrepancy_id: Id, body: AssignBody, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: _full(uow, writer.tenant_id, service.assign(
        uow, writer.tenant_id, discrepancy_id, assignee=body.assignee)), permission=RESOLVE_PERMISSION)


@router.post("/reconciliation/discrepancies/{discrepancy_id}/notes", response_model=DiscrepancyRead,
             status_code=201, summary="Add a note to a discrepancy")
def add_note(discrepancy_id: Id, body: NoteBody, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: Any) -> DiscrepancyRead:
        service.add_note(uow, writer.tenant_id, discrepancy_id, author=writer.principal.actor, text=body.text)
        return _full(uow, writer.tenant_id, service.get_discrepancy(uow, writer.tenant_id, discrepancy_id))
    return writer.run(work, permission=RESOLVE_PERMISSION, status_code=201)


@router.post("/reconciliation/discrepancies/{discrepancy_id}/resolve", response_model=DiscrepancyRead,
             summary="Resolve a discrepancy: write_off (posts the difference), accept_timing or mark_no_action")
def resolve(discrepancy_id: Id, body: ResolveBody, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: _full(uow, writer.tenant_id, service.resolve(
        uow, writer.tenant_id, discrepancy_id, action=body.action.value, reason=body.reason,
        actor=writer.principal.actor)), permission=RESOLVE_PERMISSION)


MEDIA = {statements.Format.CSV: "text/csv; charset=utf-8",
         statements.Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@router.get("/reconciliation/statements", summary="Unified statement of a day, week or month across all channels",
            responses={200: {"content": {MEDIA[statements.Format.CSV]: {}, MEDIA[statements.Format.XLSX]: {}}}})
def get_statement(reader: CurrentReader, period: Annotated[statements.Period, Query()],
                  on: Annotated[BoundedDate, Query()],
                  format: Annotated[statements.Format, Query()] = statements.Format.JSON) -> Any:
    statement = reader.run(lambda uow: statements.build(uow, reader.tenant_id, period=period, on=on))
    if format == statements.Format.JSON:
        return statements.to_json(statement)
    content = statements.to_csv(statement) if format == statements.Format.CSV else statements.to_xlsx(statement)
    return Response(content=content, media_type=MEDIA[format], headers={
        "Content-Disposition": f'attachment; filename="{statements.filename(statement, format)}"'})
