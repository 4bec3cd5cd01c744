"""Reconciliation: the runs with their match rate, a run's matches, and the discrepancy work queue where
finance assigns, annotates and resolves items with the same service calls and permission as the API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Select, and_, or_, select

from finloop.console import charts
from finloop.console.actions import act
from finloop.console.auth import ActingStaff, CurrentStaff, Staff, database, field, form_of
from finloop.console.web import Column, Filter, badge, choice, equals, html, listing, money, parse_day, percent, when
from finloop.reconciliation import discrepancies as service
from finloop.reconciliation.discrepancies import Action, DiscrepancyStatus
from finloop.reconciliation.match_endpoints import RESOLVE_PERMISSION
from finloop.reconciliation.match_models import Discrepancy, ReconMatch, ReconRun
from finloop.reconciliation.matching import DiscrepancyClass
from finloop.reconciliation.models import ReconLine

router = APIRouter()

#: How many runs the match-rate chart draws (the most recent ones).
CHART_RUNS = 60
#: How many of a run's day's discrepancies its page shows; the queue, filtered to the day, has them all.
RUN_DISCREPANCIES = 50
RATE_PLACES = Decimal("0.000001")


def match_rate(run: ReconRun) -> Decimal | None:
    """Matched lines over the lines matching considered (ignored kinds left out), as the API's ``match_rate``."""
    counts = run.counts or {}
    matched = int(counts.get("matched_lines", 0))
    considered = matched + int(counts.get("unmatched_lines", 0))
    if not considered:
        return None
    return (Decimal(matched) / Decimal(considered)).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN)


def _count(name: str) -> Callable[[ReconRun], int]:
    return lambda run: int((run.counts or {}).get(name, 0))


RUN_COLUMNS = (
    Column("Run", lambda r: r.id, link=lambda r: f"/console/reconciliation/runs/{r.id}"),
    Column("Channel", lambda r: r.source),
    Column("Business date", lambda r: r.business_date),
    Column("Status", lambda r: r.status, show=lambda r: badge(r.status)),
    Column("Lines", lambda r: r.lines_count, numeric=True),
    Column("Records", lambda r: r.records_count, numeric=True),
    Column("Matched lines", _count("matched_lines"), numeric=True),
    Column("Unmatched lines", _count("unmatched_lines"), numeric=True),
    Column("Discrepancies", _count("discrepancies"), numeric=True),
    Column("Late matched", lambda r: r.late_matched_count, numeric=True),
    Column("Match rate", match_rate, show=lambda r: percent(match_rate(r)), numeric=True),
    Column("Started", lambda r: r.started_at, show=lambda r: when(r.started_at)),
)


def on_day(column: Any, param: str) -> Callable[[Select[Any], str], Select[Any]]:
    def apply(query: Select[Any], value: str) -> Select[Any]:
        return query.where(column == parse_day(value, param=param))
    return apply


def day_from(column: Any, param: str) -> Callable[[Select[Any], str], Select[Any]]:
    def apply(query: Select[Any], value: str) -> Select[Any]:
        return query.where(column >= parse_day(value, param=param))
    return apply


def day_to(column: Any, param: str) -> Callable[[Select[Any], str], Select[Any]]:
    def apply(query: Select[Any], value: str) -> Select[Any]:
        return query.where(column <= parse_day(value, param=param))
    return apply


def _sources(session: Any, column: Any, tenant_column: Any, staff: Staff) -> list[str]:
    return list(session.scalars(select(column).where(tenant_column == staff.tenant_id).distinct().order_by(column)))


@router.get("/reconciliation")
def landing(request: Request, staff: CurrentStaff) -> Response:
    """The runs, newest first, with the match rate of the recent ones drawn per source."""
    with database(request).uow(read_only=True) as uow:
        sources = _sources(uow.session, ReconRun.source, ReconRun.tenant_id, staff)
        filters = (
            Filter("source", "Channel", equals(ReconRun.source), choice(*sources)),
            Filter("status", "Status", equals(ReconRun.status), choice("running", "finished")),
            Filter("from", "From", day_from(ReconRun.business_date, "from"), kind="date"),
            Filter("to", "To", day_to(ReconRun.business_date, "to"), kind="date"),
        )
        chosen_source = request.query_params.get("source") or None
        return listing(request, uow.session, select(ReconRun).where(ReconRun.tenant_id == staff.tenant_id),
                       title="Reconciliation runs", columns=RUN_COLUMNS, filters=filters,
                       order_by=(ReconRun.business_date.desc(), ReconRun.id.desc()),
                       search=lambda q: ReconRun.id == q, search_label="run id",
                       template="reconciliation/runs.html", export_name="reconciliation-runs",
                       chart=_rate_chart(uow.session, staff.tenant_id, chosen_source))


def _rate_chart(session: Any, tenant_id: str, source: str | None) -> Any:
    """One line per source over the business dates of the recent runs; a day's latest run gives its point."""
    query = select(ReconRun).where(ReconRun.tenant_id == tenant_id, ReconRun.status == "finished")
    if source:
        query = query.where(ReconRun.source == source)
    runs = list(session.scalars(query.order_by(ReconRun.business_date.desc(), ReconRun.id.desc())
                                .limit(CHART_RUNS)))
    if not runs:
        return None
    days = sorted({run.business_date for run in runs})
    latest: dict[tuple[str, date], ReconRun] = {}
    for run in runs:  # newest first: the first seen of a source and day is its latest run
        latest.setdefault((run.source, run.business_date), run)
    series: dict[str, Sequence[tuple[str, charts.Number | None]]] = {}
    for name in sorted({run.source for run in runs}):
        points: list[tuple[str, charts.Number | None]] = []
        for day in days:
            run = latest.get((name, day))
            rate = match_rate(run) if run is not None else None
            points.append((day.isoformat(), float(rate) if rate is not None else None))
        series[name] = points
    return charts.line_chart(series, title="Match rate per run", y_max=1.0, y_format=charts.pct_axis)


MATCH_COLUMNS = (
    Column("Line", lambda m: m.line_no),
    Column("Our reference", lambda m: m.our_reference),
    Column("Channel reference", lambda m: m.channel_reference),
    Column("Amount", lambda m: m.amount, show=lambda m: money(m.amount, m.currency), numeric=True),
    Column("Fee", lambda m: m.fee_amount, show=lambda m: money(m.fee_amount, m.currency), numeric=True),
    Column("Currency", lambda m: m.currency),
    Column("Direction", lambda m: m.direction),
    Column("Record", lambda m: m.record_id),
    Column("Record kind", lambda m: m.record_kind),
    Column("Rule", lambda m: m.rule),
)


@router.get("/reconciliation/runs/{run_id}")
def run_detail(request: Request, staff: CurrentStaff, run_id: str) -> Response:
    """A run's figures, the day's discrepancies as they stand now, and its matches (a paged list)."""
    with database(request).uow(read_only=True) as uow:
        run = service.get_run(uow, staff.tenant_id, run_id)
        now = service.run_open_counts(uow, staff.tenant_id, run)
        items = list(uow.session.scalars(select(Discrepancy).where(
            Discrepancy.tenant_id == staff.tenant_id, Discrepancy.source == run.source,
            Discrepancy.business_date == run.business_date).order_by(Discrepancy.id.desc()).limit(RUN_DISCREPANCIES)))
        matches = (select(
            ReconMatch.id, ReconMatch.record_id, ReconMatch.record_kind, ReconMatch.rule, ReconLine.line_no,
            ReconLine.our_reference, ReconLine.channel_reference, ReconLine.amount, ReconLine.fee_amount,
            ReconLine.currency, ReconLine.direction)
            .outerjoin(ReconLine, and_(ReconLine.tenant_id == staff.tenant_id, ReconLine.id == ReconMatch.line_id))
            .where(ReconMatch.tenant_id == staff.tenant_id, ReconMatch.run_id == run.id))
        queue = f"/console/reconciliation/discrepancies?source={run.source}&day={run.business_date.isoformat()}"
        return listing(request, uow.session, matches, title=f"Run {run.id}", columns=MATCH_COLUMNS,
                       order_by=(ReconMatch.id,), scalars=False, template="reconciliation/run.html",
                       export_name=f"reconciliation-run-{run.id}", run=run, rate=match_rate(run), now=now,
                       items=items, queue=queue)


DISCREPANCY_COLUMNS = (
    Column("Discrepancy", lambda d: d.id, link=lambda d: f"/console/reconciliation/discrepancies/{d.id}"),
    Column("Business date", lambda d: d.business_date),
    Column("Channel", lambda d: d.source),
    Column("Type", lambda d: d.discrepancy_class),
    Column("Status", lambda d: d.status, show=lambda d: badge(d.status)),
    Column("Difference", lambda d: d.difference, show=lambda d: money(d.difference, d.currency), numeric=True),
    Column("Currency", lambda d: d.currency),
    Column("Our reference", lambda d: d.our_reference),
    Column("Payment", lambda d: d.payment_id),
    Column("Assignee", lambda d: d.assignee),
    Column("Resolution", lambda d: d.resolution),
)


@router.get("/reconciliation/discrepancies")
def discrepancy_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        sources = _sources(uow.session, Discrepancy.source, Discrepancy.tenant_id, staff)
        filters = (
            Filter("status", "Status", equals(Discrepancy.status), choice(*(s.value for s in DiscrepancyStatus))),
            Filter("type", "Type", equals(Discrepancy.discrepancy_class),
                   choice(*(c.value for c in DiscrepancyClass))),
            Filter("source", "Channel", equals(Discrepancy.source), choice(*sources)),
            Filter("day", "Business date", on_day(Discrepancy.business_date, "day"), kind="date"),
        )
        return listing(request, uow.session, select(Discrepancy).where(Discrepancy.tenant_id == staff.tenant_id),
                       title="Discrepancies", columns=DISCREPANCY_COLUMNS, filters=filters,
                       order_by=(Discrepancy.id.desc(),),
                       search=lambda q: or_(Discrepancy.id == q, Discrepancy.our_reference == q,
                                            Discrepancy.channel_reference == q, Discrepancy.payment_id == q),
                       search_label="id, reference or payment", export_name="discrepancies")


def allowed_actions(item: Discrepancy) -> list[Action]:
    """The resolutions the service would accept for this item (it checks again)."""
    if item.status == DiscrepancyStatus.RESOLVED.value:
        return []
    actions = []
    if item.discrepancy_class != DiscrepancyClass.SETTLEMENT_TIMING.value and item.difference != 0:
        actions.append(Action.WRITE_OFF)
    if item.discrepancy_class in service.CARRIED_CLASSES:
        actions.append(Action.ACCEPT_TIMING)
    actions.append(Action.MARK_NO_ACTION)
    return actions


@router.get("/reconciliation/discrepancies/{discrepancy_id}")
def discrepancy_detail(request: Request, staff: CurrentStaff, discrepancy_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        item = service.get_discrepancy(uow, staff.tenant_id, discrepancy_id)
        notes = service.list_notes(uow, staff.tenant_id, item.id)
        return html(request, "reconciliation/discrepancy.html", item=item, notes=notes,
                    actions=allowed_actions(item), may_resolve=staff.can(RESOLVE_PERMISSION))


def _back(discrepancy_id: str) -> str:
    return f"/console/reconciliation/discrepancies/{discrepancy_id}"


@router.post("/reconciliation/discrepancies/{discrepancy_id}/assign")
def assign(request: Request, staff: ActingStaff, discrepancy_id: str) -> Response:
    form = form_of(request)
    assignee = field(form, "assignee") or ""
    return act(request, staff, action="discrepancy.assign", object_type="discrepancy", object_id=discrepancy_id,
               work=lambda uow: service.assign(uow, staff.tenant_id, discrepancy_id, assignee=assignee),
               permission=RESOLVE_PERMISSION, form=form, done=f"Assigned to {assignee}.", back=_back(discrepancy_id))


@router.post("/reconciliation/discrepancies/{discrepancy_id}/notes")
def add_note(request: Request, staff: ActingStaff, discrepancy_id: str) -> Response:
    form = form_of(request)
    text = field(form, "text") or ""
    return act(request, staff, action="discrepancy.note", object_type="discrepancy", object_id=discrepancy_id,
               work=lambda uow: service.add_note(uow, staff.tenant_id, discrepancy_id,
                                                 author=staff.principal.actor, text=text),
               permission=RESOLVE_PERMISSION, form=form, done="Note added.", back=_back(discrepancy_id))


@router.post("/reconciliation/discrepancies/{discrepancy_id}/resolve")
def resolve(request: Request, staff: ActingStaff, discrepancy_id: str) -> Response:
    """Every resolution posts here with its ``action``; the service refuses one the item does not allow."""
    form = form_of(request)
    action = field(form, "action") or ""
    reason = field(form, "reason", required=False)
    return act(request, staff, action=f"discrepancy.{action}", object_type="discrepancy", object_id=discrepancy_id,
               work=lambda uow: service.resolve(uow, staff.tenant_id, discrepancy_id, action=action, reason=reason,
                                                actor=staff.principal.actor),
               permission=RESOLVE_PERMISSION, form=form, done=f"Resolved: {action.replace('_', ' ')}.",
               back=_back(discrepancy_id))
