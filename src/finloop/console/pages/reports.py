"""The console's Reports pages: the catalogue, and each report with its chart, table, CSV and a printable page.

A report is the same table the API answers (``finloop.reports.service``); this page only draws it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from finloop.console import charts
from finloop.console.auth import CurrentStaff, database
from finloop.console.web import csv_table, html, money, percent, reference_now
from finloop.core.money import currency, is_currency
from finloop.reports import service
from finloop.reports.service import Chart, Column, Kind, Report

router = APIRouter()

PARAMS = ("from", "to", "currency", "threshold_amount", "months")


@router.get("/reports")
def landing(request: Request, staff: CurrentStaff) -> Response:
    groups = {group: [r for r in service.REPORTS if r.group == group] for group in service.GROUPS}
    return html(request, "reports/index.html", title="Reports", groups=groups)


@router.get("/reports/{name}")
def report_page(request: Request, staff: CurrentStaff, name: str) -> Response:
    report = service.get_report(name)
    values = {key: request.query_params.get(key) for key in PARAMS}
    with database(request).uow(read_only=True) as uow:
        params = service.parse_params(values, reference_now(uow.session, staff, uow.clock.now()).date())
        table = report.compute(uow, staff.tenant_id, params)
    if request.query_params.get("format") == "csv":
        return csv_table(report.name, [c.name for c in report.columns], service.cells(report, table.rows))
    chosen = {key: value for key, value in values.items() if value}
    shown = [[_show(column, row) for column in report.columns] for row in table.rows]
    numeric = tuple(i for i, c in enumerate(report.columns) if c.kind in (Kind.MONEY, Kind.INTEGER, Kind.RATE))
    return html(request, "reports/print.html" if request.query_params.get("print") == "1" else "reports/report.html",
                title=report.title, report=report, params=params, notes=table.notes, rows=shown, numeric=numeric,
                chart=_chart(report.chart, report.columns, table.rows) if report.chart else None,
                csv_link=_link(report, {**chosen, "format": "csv"}), print_link=_link(report, {**chosen, "print": "1"}),
                chosen=chosen)


def _link(report: Report, values: dict[str, str]) -> str:
    return f"/console/reports/{report.name}?{urlencode(values)}"


def _show(column: Column, row: dict[str, Any]) -> Any:
    value = row.get(column.name)
    if value is None:
        return "—"
    if column.kind == Kind.MONEY:
        return money(int(value), row.get("currency") or None)
    if column.kind == Kind.RATE:
        return percent(Decimal(str(value)), 2)
    return value


def _number(value: Any) -> float:
    return float(Decimal(str(value))) if value not in (None, "") else 0.0


def _chart(chart: Chart, columns: tuple[Column, ...], rows: list[dict[str, Any]]) -> Markup | None:
    """Counts and money add up over rows that share an x (and series); a rate is shown as the first row's."""
    kind = next(c.kind for c in columns if c.name == chart.y)
    chosen = [r for r in rows if chart.where is None or r.get(chart.where[0]) == chart.where[1]]
    if not chosen:
        return None
    y_format = charts.pct_axis if kind == Kind.RATE else None

    def y_of(row: dict[str, Any]) -> float:
        # Money is plotted in major units of the row's currency (the axis a person reads), not minor units.
        value = _number(row.get(chart.y))
        code = row.get("currency")
        if kind == Kind.MONEY and isinstance(code, str) and is_currency(code):
            return value / currency(code).minor_per_major
        return value

    if chart.kind == "bar":
        totals: dict[str, float] = {}
        for row in chosen:
            x = str(row.get(chart.x))
            if kind == Kind.RATE:
                totals.setdefault(x, y_of(row))
            else:
                totals[x] = totals.get(x, 0.0) + y_of(row)
        return charts.bar_chart(list(totals.items()), title=chart.title, y_format=y_format)
    xs = sorted({str(r.get(chart.x)) for r in chosen}, key=lambda v: (len(v), v))
    lines: dict[str, dict[str, float]] = defaultdict(dict)
    for row in chosen:
        key = str(row.get(chart.series)) if chart.series else chart.y
        x = str(row.get(chart.x))
        lines[key][x] = lines[key].get(x, 0.0) + y_of(row)
    series: dict[str, Sequence[tuple[str, charts.Number | None]]] = {
        name: [(x, points.get(x)) for x in xs] for name, points in sorted(lines.items())[:8]}
    return charts.line_chart(series, title=chart.title, y_format=y_format)

