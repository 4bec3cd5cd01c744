"""AML and screening HTTP endpoints.

Monitoring runs and configuration need ``risk.configure``, as does a watchlist import; a screening needs
``risk.decide`` (it is a check made at onboarding and before payouts); a review needs ``risk.review``.
Reads need any key of the tenant.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.core.errors import InvalidRequest
from finloop.db.uow import UnitOfWork
from finloop.risk.aml import service
from finloop.risk.aml.models import AmlAlert, Screening
from finloop.risk.aml.schemas import (
    AlertRead,
    AmlConfigUpdate,
    AmlRunCreate,
    AmlRunRead,
    Scenario,
    ScreeningCreate,
    ScreeningRead,
    ScreeningReview,
    WatchlistImportRead,
)

router = APIRouter(tags=["risk"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
CONFIGURE = "risk.configure"
DECIDE = "risk.decide"
REVIEW = "risk.review"
MAX_UPLOAD_BYTES = 64 * 1024 * 1024

_UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "text/csv": {"schema": {"type": "string"}},
    "application/xml": {"schema": {"type": "string"}}}}}


def read_alert(row: AmlAlert) -> AlertRead:
    return AlertRead(id=row.id, scenario=row.scenario, subject_kind=row.subject_kind, subject_id=row.subject_id,
                     currency=row.currency, window_key=row.window_key, window_start=row.window_start,
                     window_end=row.window_end, total_amount=row.total_amount, evidence=row.evidence,
                     description=row.description, status=row.status, case_id=row.case_id, created_at=row.created_at)


def read_screening(row: Screening) -> ScreeningRead:
    return ScreeningRead.model_validate({
        "id": row.id, "subject_type": row.subject_type, "subject_id": row.subject_id, "kind": row.kind,
        "name": row.name_display, "threshold": row.threshold, "status": row.status, "hits": row.hits,
        "list_versions": row.list_versions, "case_id": row.case_id, "reviewed_by": row.reviewed_by,
        "reviewed_at": row.reviewed_at, "review_note": row.review_note, "created_at": row.created_at})


# ---------------------------------------------------------------------------------------------- monitoring


@router.post("/risk/aml/run", response_model=AmlRunRead, summary="Run the AML scenarios over a time range")
def run_scenarios(body: AmlRunCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> AmlRunRead:
        result = service.run(uow, writer.tenant_id, start=body.from_, end=body.to)
        return AmlRunRead(start=result.start, end=result.end, transactions=result.transactions,
                          alerts=len(result.alerts), created=result.created,
                          alert_ids=[a.id for a in result.alerts])
    return writer.run(work, permission=CONFIGURE)


@router.get("/risk/aml/config", response_model=dict[str, Any], summary="The AML scenario configuration")
def get_config(reader: CurrentReader) -> dict[str, Any]:
    return reader.run(lambda uow: service.get_config(uow, reader.tenant_id).to_json())


@router.patch("/risk/aml/config", response_model=dict[str, Any], summary="Change the AML scenario configuration")
def set_config(body: AmlConfigUpdate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: service.set_config(
        uow, writer.tenant_id, changes=body.model_dump(exclude_none=True), actor=writer.principal.actor).to_json(),
        permission=CONFIGURE)


@router.get("/risk/aml/alerts", response_model=Page[AlertRead], summary="List AML alerts")
def list_alerts(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                scenario: Annotated[Scenario | None, Query()] = None,
                status: Annotated[Literal["open", "closed"] | None, Query()] = None,
                subject_id: Annotated[Line | None, Query(min_length=1, max_length=40)] = None) -> Page[AlertRead]:
    return reader.run(lambda uow: page(service.list_alerts(
        uow, reader.tenant_id, scenario=scenario, status=status, subject_id=subject_id, after=starting_after,
        limit=limit), limit, read_alert, lambda a: a.id))


@router.get("/risk/aml/alerts/{alert_id}", response_model=AlertRead, summary="Get an AML alert")
def get_alert(alert_id: Id, reader: CurrentReader) -> AlertRead:
    return reader.run(lambda uow: read_alert(service.get_alert(uow, reader.tenant_id, alert_id)))


@router.get("/risk/aml/alerts/{alert_id}/report", summary="The suspicious activity report of an alert (JSON or CSV)",
            responses={200: {"content": {"application/json": {}, "text/csv": {}}}})
def alert_report(alert_id: Id, reader: CurrentReader,
                 format: Annotated[Literal["json", "csv"], Query()] = "json") -> Response:
    data = reader.run(lambda uow: service.report(uow, reader.tenant_id, alert_id))
    if format == "csv":
        return PlainTextResponse(service.report_csv(data), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="sar-{alert_id}.csv"'})
    return JSONResponse(data)


# ---------------------------------------------------------------------------------------------- screening


@router.post("/risk/watchlists/import", response_model=WatchlistImportRead, status_code=201,
             openapi_extra=_UPLOAD_BODY, summary="Import a watchlist (the file is the raw request body)",
             responses={400: {"description": "watchlist_rejected: the line or element and reason in the message"}})
async def import_watchlist(request: Request, writer: CurrentWriter,
                           format: Annotated[Literal["ofac_csv", "un_xml"], Query()]) -> JSONResponse:
    content = await request.body()
    if len(content) > MAX_UPLOAD_BYTES:
        raise InvalidRequest("The file is too large for an upload.", code="file_too_large", param="file")

    def work(uow: UnitOfWork) -> WatchlistImportRead:
        result = service.import_watchlist(uow, writer.tenant_id, format=format, content=content,
                                          actor=writer.principal.actor)
        return WatchlistImportRead(source=result.source, list_version=result.list_version, entries=result.entries,
                                   unchanged=result.unchanged)
    return await run_in_threadpool(lambda: writer.run(work, permission=CONFIGURE, status_code=201))


@router.post("/risk/screenings", response_model=ScreeningRead, status_code=201, summary="Screen a name")
def create_screening(body: ScreeningCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_screening(service.screen(
        uow, writer.tenant_id, name=body.name, kind=body.kind, subject_type=body.subject_type,
        subject_id=body.subject_id, threshold=body.threshold, actor=writer.principal.actor).screening),
        permission=DECIDE, status_code=201)


@router.get("/risk/screenings/{screening_id}", response_model=ScreeningRead, summary="Get a screening")
def get_screening(screening_id: Id, reader: CurrentReader) -> ScreeningRead:
    return reader.run(lambda uow: read_screening(service.get_screening(uow, reader.tenant_id, screening_id)))


@router.post("/risk/screenings/{screening_id}/review", response_model=ScreeningRead,
             summary="Confirm or dismiss a screening's potential match")
def review_screening(screening_id: Id, body: ScreeningReview, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_screening(service.review(
        uow, writer.tenant_id, screening_id, decision=body.decision, actor=writer.principal.actor, note=body.note)),
        permission=REVIEW)
