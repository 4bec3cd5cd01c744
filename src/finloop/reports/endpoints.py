"""``/v1/reports``: every report as JSON data, or as CSV with ``?format=csv``.

Each report has its own route (``GET /v1/reports/<name>``) so that the OpenAPI document lists it with the
parameters it reads; they all answer a ``ReportRead``. Parameters are taken as text and checked by the service,
so a bad one is a 400 with a stable code and the parameter's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from finloop.api.deps import CurrentReader, render
from finloop.console.web import csv_table
from finloop.db.uow import UnitOfWork
from finloop.reports import service
from finloop.reports.schemas import ReportList, ReportRead, ReportSummary
from finloop.reports.service import Params, Report

router = APIRouter(tags=["reports"])

FromText = Annotated[str | None, Query(alias="from", max_length=10,
                                        description="First day (YYYY-MM-DD, UTC); default: 30 days before `to`.")]
ToText = Annotated[str | None, Query(max_length=10, description="Last day (YYYY-MM-DD, UTC); default: today.")]
CurrencyText = Annotated[str | None, Query(max_length=3, description="Only this ISO 4217 currency.")]
ThresholdText = Annotated[str | None, Query(max_length=20, description="Minor units; default 5000000.")]
MonthsText = Annotated[str | None, Query(max_length=3, description="Months ahead, 1-60; default 12.")]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv.")]


def read(report: Report, uow: UnitOfWork, tenant_id: str, params: Params) -> ReportRead:
    table = report.compute(uow, tenant_id, params)
    return ReportRead.model_validate({
        "name": report.name, "title": report.title, "group": report.group, "description": report.description,
        "params": {"from": params.start, "to": params.end, "currency": params.currency,
                   "threshold_amount": params.threshold_amount if "threshold_amount" in report.uses else None,
                   "months": params.months if "months" in report.uses else None},
        "notes": table.notes, "columns": [{"name": c.name, "label": c.label, "kind": c.kind} for c in report.columns],
        "rows": table.rows})


def answer(reader: CurrentReader, report: Report, values: dict[str, str | None], output: str) -> Response:
    def work(uow: UnitOfWork) -> ReportRead:
        return read(report, uow, reader.tenant_id, service.parse_params(values, uow.clock.now().date()))

    result = reader.run(work)
    if output == "csv":
        return csv_table(report.name, [c.name for c in report.columns],
                         ([row.get(c.name) for c in report.columns] for row in result.rows))
    return render(result)


@router.get("/reports", response_model=ReportList)
def list_reports(reader: CurrentReader) -> Any:
    return ReportList(data=[ReportSummary(name=r.name, title=r.title, group=r.group, description=r.description,
                                          parameters=["from", "to", *r.uses], href=f"/v1/reports/{r.name}")
                            for r in service.REPORTS])


def _endpoint(report: Report) -> Callable[..., Response]:
    def endpoint(reader: CurrentReader, from_: FromText = None, to: ToText = None, currency: CurrencyText = None,
                 threshold_amount: ThresholdText = None, months: MonthsText = None,
                 format: Format = "json") -> Response:
        values = {"from": from_, "to": to, "currency": currency, "threshold_amount": threshold_amount,
                  "months": months}
        return answer(reader, report, values, format)

    endpoint.__name__ = "report_" + report.name.replace("-", "_")
    endpoint.__doc__ = report.description
    return endpoint


for _report in service.REPORTS:
    router.add_api_route(f"/reports/{_report.name}", _endpoint(_report), methods=["GET"], response_model=ReportRead,
                         summary=_report.title,
                         responses={200: {"content": {"text/csv": {}}, "description": "The report (JSON or CSV)."}})
