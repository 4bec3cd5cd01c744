"""Risk: the dashboard (decisions by outcome, interception and false positive rates, rule hits), the rule
editor (draft, validate, backtest, request publication, publish once another person approved, roll back),
black/white/grey lists, the case queue and the model registry.

Every change goes through ``act`` with the permission its API endpoint takes. Two console steps have no API
permission of their own and take the publishing one (``risk.configure``): validating and backtesting are
steps towards a publication, and a backtest here is recorded, since the console offers (and accepts) a
publication request only for a version backtested in it — the service itself does not ask for one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import Select, func, or_, select

from finloop.audit import service as audit
from finloop.audit.models import AuditEvent
from finloop.console.actions import act
from finloop.console.auth import ActingStaff, CurrentStaff, Staff, database, field, form_of
from finloop.console.charts import bar_chart, line_chart
from finloop.console.web import (
    Column,
    Filter,
    badge,
    choice,
    equals,
    html,
    listing,
    parse_day,
    reference_now,
    since,
    until,
)
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.risk import lists as risk_lists
from finloop.risk import service as risk
from finloop.risk.cases import figures as dashboard
from finloop.risk.cases import service as cases
from finloop.risk.cases.models import RiskCase
from finloop.risk.cases.state import CaseAction, CaseOutcome, CaseSource, CaseStatus
from finloop.risk.domain import EVENT_TYPES, Label, Outcome, parse_thresholds, rate
from finloop.risk.ml import service as models
from finloop.risk.ml.models import RiskModel
from finloop.risk.models import RiskDecision, RiskListEntry, RuleSet, RuleSetVersion
from finloop.risk.schemas import VersionCreate
from finloop.risk.state import VersionStatus
from finloop.tenancy import service as tenancy

router = APIRouter()

CONFIGURE = "risk.configure"
REVIEW = "risk.review"
#: The audit event ``act`` writes for a console backtest: a publication request needs one for its version.
BACKTESTED = "console.risk.backtested"
#: The event holding a backtest's figures, shown on the version page (to the approver too).
BACKTEST_FIGURES = "risk.rule_set_version.backtested"
#: The label the case service gives a false positive approved on review: the object was legitimate.
LEGITIMATE = Label.SUCCEEDED.value
DASHBOARD_DAYS = (7, 30, 90)
BACKTEST_DAYS = 30


def _today_end(uow: UnitOfWork, staff: Staff) -> datetime:
    """Midnight (UTC) after the current day (the demo's last day on a demo tenant): the exclusive end of ranges
    that include today."""
    now = reference_now(uow.session, staff, uow.clock.now()).astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


# ---------------------------------------------------------------------------------------------- dashboard


@router.get("/risk")
def landing(request: Request, staff: CurrentStaff) -> Response:
    """Decisions by outcome per day, the share intercepted (reviewed or declined), the share of those later
    labelled legitimate, and per-rule hits, over the last 7, 30 or 90 days."""
    asked = request.query_params.get("days", "")
    days = int(asked) if asked in {str(choice) for choice in DASHBOARD_DAYS} else 30
    with database(request).uow(read_only=True) as uow:
        to_at = _today_end(uow, staff)
        from_at = to_at - timedelta(days=days)
        figures = dashboard.figures(uow, staff.tenant_id, from_at=from_at, to_at=to_at, bucket="day")
        flagged_labels = dict(uow.session.execute(
            select(RiskDecision.label, func.count()).where(
                RiskDecision.tenant_id == staff.tenant_id, RiskDecision.decided_at >= from_at,
                RiskDecision.decided_at < to_at, RiskDecision.outcome != Outcome.APPROVE.value)
            .group_by(RiskDecision.label)).all())
    total = figures["total"]
    flagged = total["reviews"] + total["declines"]
    legitimate = int(flagged_labels.get(LEGITIMATE, 0))
    labels = [bucket["start"][5:10] for bucket in figures["buckets"]]
    outcome_chart = line_chart({
        name: [(label, bucket[key]) for label, bucket in zip(labels, figures["buckets"], strict=True)]
        for name, key in (("approve", "approvals"), ("review", "reviews"), ("decline", "declines"))},
        title="Decisions by outcome per day")
    rules = sorted(figures["rules"], key=lambda r: (-r["total"]["hits"], r["rule_id"]))
    hits_chart = bar_chart([(r["rule_id"], r["total"]["hits"]) for r in rules[:12]], title="Rule hits")
    return html(request, "risk/dashboard.html", days=days, choices=DASHBOARD_DAYS, total=total, flagged=flagged,
                interception=rate(flagged, total["decisions"]), legitimate=legitimate,
                false_positive=rate(legitimate, flagged), outcome_chart=outcome_chart, hits_chart=hits_chart,
                rules=rules, from_day=from_at.date(), to_day=(to_at - timedelta(days=1)).date())


# ---------------------------------------------------------------------------------------------- rule sets

RULE_SET_COLUMNS = (
    Column("Rule set", lambda r: r.name, link=lambda r: f"/console/risk/rule-sets/{r.id}"),
    Column("Id", lambda r: r.id),
    Column("Event types", lambda r: ", ".join(r.event_types) or "all"),
    Column("Live version", lambda r: r.live_version_id,
           link=lambda r: f"/console/risk/versions/{r.live_version_id}" if r.live_version_id else None),
    Column("Shadow version", lambda r: r.shadow_version_id),
    Column("Updated", lambda r: r.updated_at),
)


@router.get("/risk/rule-sets")
def rule_set_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        return listing(request, uow.session, select(RuleSet).where(RuleSet.tenant_id == staff.tenant_id),
                       title="Rule sets", columns=RULE_SET_COLUMNS, order_by=(RuleSet.name,),
                       search=lambda q: or_(RuleSet.id == q, RuleSet.name.contains(q)), search_label="name or id",
                       template="risk/list.html", tab="rules", form="risk/_rule_set_form.html",
                       event_types=EVENT_TYPES)


@router.post("/risk/rule-sets")
def create_rule_set(request: Request, staff: ActingStaff) -> Response:
    form = form_of(request)
    chosen = [t for t in EVENT_TYPES if form.get(f"event_type_{t}")]
    return act(request, staff, action="risk.rule_set.created", object_type="rule_set", object_id=None, form=form,
               permission=CONFIGURE, done="Rule set created.", back="/console/risk/rule-sets/{id}",
               work=lambda uow: risk.create_rule_set(uow, staff.tenant_id, name=form.get("name", ""),
                                                     description=form.get("description", ""),
                                                     event_types=chosen, actor=staff.principal.actor))


def _body_text(version: RuleSetVersion | None) -> str:
    """The editor's starting text: the version's body in the API's format (a new draft starts from it)."""
    body = {"rules": version.rules if version else [], "thresholds": version.thresholds if version else None,
            "note": ""}
    return json.dumps(body, indent=2, ensure_ascii=False)


def _parse_body(text: str) -> VersionCreate:
    """The editor's text read as the API's ``VersionCreate`` body, with the API's checks."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise InvalidRequest(f"The body is not JSON: {error}.", code="invalid_json", param="body") from None
    try:
        return VersionCreate.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise InvalidRequest(f"{where}: {first.get('msg', 'invalid')}", code="invalid_request",
                             param=where) from None


def _rule_set_page(request: Request, staff: Staff, rule_set_id: str, *, body: str | None = None,
                   issues: list[dict[str, Any]] | None = None, error: InvalidRequest | None = None,
                   checked: int | None = None, status_code: int = 200) -> Response:
    with database(request).uow(read_only=True) as uow:
        rule_set = risk.get_rule_set(uow, staff.tenant_id, rule_set_id)
        versions = risk.list_versions(uow, staff.tenant_id, rule_set.id)
        live = next((v for v in versions if v.id == rule_set.live_version_id), None)
        start = live or (versions[-1] if versions else None)
        return html(request, "risk/rule_set.html", status_code=status_code, rule_set=rule_set,
                    versions=list(reversed(versions)), body=body if body is not None else _body_text(start),
                    issues=issues, error=error, checked=checked, tab="rules",
                    can_roll_back=live is not None and any(v.status == VersionStatus.RETIRED.value
                                                           for v in versions))


@router.get("/risk/rule-sets/{rule_set_id}")
def rule_set_detail(request: Request, staff: CurrentStaff, rule_set_id: str) -> Response:
    return _rule_set_page(request, staff, rule_set_id)


@router.post("/risk/rule-sets/{rule_set_id}/validate")
def validate_draft(request: Request, staff: ActingStaff, rule_set_id: str) -> Response:
    """Check the editor's text (structure, then every expression against the risk context); writes nothing."""
    staff.principal.require(CONFIGURE)
    body = form_of(request).get("body", "")
    try:
        parsed = _parse_body(body)
        issues = risk.check_rules(parsed.rules_json())
        parse_thresholds(parsed.thresholds_json())
    except InvalidRequest as error:
        return _rule_set_page(request, staff, rule_set_id, body=body, error=error, status_code=400)
    return _rule_set_page(request, staff, rule_set_id, body=body, issues=issues, checked=len(parsed.rules),
                          status_code=400 if issues else 200)


@router.post("/risk/rule-sets/{rule_set_id}/versions")
def create_version(request: Request, staff: ActingStaff, rule_set_id: str) -> Response:
    form = form_of(request)
    body = form.get("body", "")

    def work(uow: UnitOfWork) -> RuleSetVersion:
        parsed = _parse_body(body)
        return risk.create_version(uow, staff.tenant_id, rule_set_id, rules=parsed.rules_json(),
                                   thresholds=parsed.thresholds_json(), note=parsed.note,
                                   actor=staff.principal.actor)

    try:
        return act(request, staff, action="risk.rule_set_version.created", object_type="rule_set_version",
                   object_id=None, work=work, permission=CONFIGURE, form={"rule_set_id": rule_set_id},
                   done="Draft created: validate and backtest it, then request publication.",
                   back="/console/risk/versions/{id}")
    except InvalidRequest as error:  # shown beside the text, which is kept; nothing was written
        return _rule_set_page(request, staff, rule_set_id, body=body, error=error, status_code=400)


@router.post("/risk/rule-sets/{rule_set_id}/rollback")
def roll_back(request: Request, staff: ActingStaff, rule_set_id: str) -> Response:
    return act(request, staff, action="risk.rule_set.rolled_back", object_type="rule_set", object_id=rule_set_id,
               permission=CONFIGURE, done="Rolled back to the previous published version.",
               back=f"/console/risk/rule-sets/{rule_set_id}",
               work=lambda uow: risk.rollback(uow, staff.tenant_id, rule_set_id, actor=staff.principal.actor))


# ---------------------------------------------------------------------------------------------- versions


def _version(uow: UnitOfWork, tenant_id: str, version_id: str) -> RuleSetVersion:
    """A version by its id alone (approvals link to it so): the tenant's, or a 404."""
    version = uow.session.scalar(select(RuleSetVersion).where(RuleSetVersion.tenant_id == tenant_id,
                                                              RuleSetVersion.id == version_id))
    if version is None:
        raise NotFound(f"No such rule-set version: {version_id}.", code="rule_set_version_not_found",
                       param="version_id")
    return version


def _events(tenant_id: str, version_id: str, action: str) -> Select[AuditEvent]:
    return select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == action,
                                    AuditEvent.object_type == "rule_set_version", AuditEvent.object_id == version_id)


def _last_backtest(uow: UnitOfWork, tenant_id: str, version_id: str) -> AuditEvent | None:
    return uow.session.scalar(_events(tenant_id, version_id, BACKTEST_FIGURES)
                              .order_by(AuditEvent.seq.desc()).limit(1))


def _was_backtested(uow: UnitOfWork, tenant_id: str, version_id: str) -> bool:
    return uow.session.scalar(_events(tenant_id, version_id, BACKTESTED).limit(1)) is not None


def _version_page(request: Request, staff: Staff, version_id: str, *, issues: list[dict[str, Any]] | None = None,
                  error: InvalidRequest | None = None, checked: int | None = None,
                  status_code: int = 200) -> Response:
    with database(request).uow(read_only=True) as uow:
        version = _version(uow, staff.tenant_id, version_id)
        rule_set = risk.get_rule_set(uow, staff.tenant_id, version.rule_set_id)
        approval = tenancy.get_approval(uow, staff.tenant_id, version.approval_id) if version.approval_id else None
        backtest = _last_backtest(uow, staff.tenant_id, version.id)
        figures = backtest.after if backtest is not None and backtest.after else {}
        flagged = figures.get("fraud_caught", 0) + figures.get("non_fraud_flagged", 0)
        end = _today_end(uow, staff)
        return html(request, "risk/version.html", status_code=status_code, version=version, rule_set=rule_set,
                    approval=approval, backtest=backtest, backtested=_was_backtested(uow, staff.tenant_id, version.id),
                    precision=rate(figures.get("fraud_caught", 0), flagged),
                    issues=issues, error=error, checked=checked, tab="rules",
                    backtest_from=(end - timedelta(days=BACKTEST_DAYS)).date(),
                    backtest_to=(end - timedelta(days=1)).date())


@router.get("/risk/versions/{version_id}")
def version_detail(request: Request, staff: CurrentStaff, version_id: str) -> Response:
    return _version_page(request, staff, version_id)


@router.post("/risk/versions/{version_id}/validate")
def validate_version(request: Request, staff: ActingStaff, version_id: str) -> Response:
    staff.principal.require(CONFIGURE)
    with database(request).uow(read_only=True) as uow:
        version = _version(uow, staff.tenant_id, version_id)
        issues = risk.check_rules(version.rules)
    return _version_page(request, staff, version_id, issues=issues, checked=len(version.rules),
                         status_code=400 if issues else 200)


@router.post("/risk/versions/{version_id}/backtest")
def backtest(request: Request, staff: ActingStaff, version_id: str) -> Response:
    """Replay the stored events of the chosen days against the version; its figures are kept for the page."""
    form = form_of(request)
    first = parse_day(field(form, "from") or "", param="from")
    last = parse_day(field(form, "to") or "", param="to")
    from_at = datetime(first.year, first.month, first.day, tzinfo=UTC)
    to_at = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)

    def work(uow: UnitOfWork) -> RuleSetVersion:
        version = _version(uow, staff.tenant_id, version_id)
        figures = risk.backtest(uow, staff.tenant_id, version.rule_set_id, version.id, from_at=from_at, to_at=to_at)
        audit.record(uow, staff.tenant_id, actor=staff.principal.actor, action=BACKTEST_FIGURES,
                     object_type="rule_set_version", object_id=version.id, after=figures)
        return version

    return act(request, staff, action="risk.backtested", object_type="rule_set_version", object_id=version_id,
               work=work, form=form, permission=CONFIGURE, done="Backtest done.",
               back=f"/console/risk/versions/{version_id}")


def _in_status(uow: UnitOfWork, tenant_id: str, version_id: str, status: VersionStatus) -> RuleSetVersion:
    version = _version(uow, tenant_id, version_id)
    if version.status != status.value:
        raise Conflict(f"This version is {version.status.replace('_', ' ')}, not {status.value.replace('_', ' ')}.",
                       code="invalid_version_state", param="version_id")
    return version


@router.post("/risk/versions/{version_id}/request-publication")
def request_publication(request: Request, staff: ActingStaff, version_id: str) -> Response:
    """Park a backtested draft for another person's approval (the service validates it first)."""
    def work(uow: UnitOfWork) -> RuleSetVersion:
        version = _in_status(uow, staff.tenant_id, version_id, VersionStatus.DRAFT)
        if not _was_backtested(uow, staff.tenant_id, version.id):
            raise Conflict("Backtest this version before asking for its publication.", code="backtest_required",
                           param="version_id")
        return risk.request_publish(uow, staff.principal, version.rule_set_id, version.id)

    return act(request, staff, action="risk.publication_requested", object_type="rule_set_version",
               object_id=version_id, work=work, permission=CONFIGURE,
               done="Publication requested: another risk analyst approves it on Approvals.",
               back=f"/console/risk/versions/{version_id}")


def _after_decision(uow: UnitOfWork, staff: Staff, version_id: str, wanted: str) -> RuleSetVersion:
    """A pending version whose approval was decided ``wanted``, moved on by the service."""
    version = _in_status(uow, staff.tenant_id, version_id, VersionStatus.PENDING_APPROVAL)
    approval = tenancy.get_approval(uow, staff.tenant_id, version.approval_id or "")
    if approval.status != wanted:
        raise Conflict(f"The publication request is {approval.status}.", code=f"approval_{approval.status}",
                       param="version_id")
    return risk.request_publish(uow, staff.principal, version.rule_set_id, version.id)


@router.post("/risk/versions/{version_id}/publish")
def publish(request: Request, staff: ActingStaff, version_id: str) -> Response:
    return act(request, staff, action="risk.published", object_type="rule_set_version", object_id=version_id,
               work=lambda uow: _after_decision(uow, staff, version_id, "approved"), permission=CONFIGURE,
               done="Published: this version is live.", back=f"/console/risk/versions/{version_id}")


@router.post("/risk/versions/{version_id}/return-to-draft")
def return_to_draft(request: Request, staff: ActingStaff, version_id: str) -> Response:
    return act(request, staff, action="risk.publication_withdrawn", object_type="rule_set_version",
               object_id=version_id, work=lambda uow: _after_decision(uow, staff, version_id, "rejected"),
               permission=CONFIGURE, done="The rejected version is a draft again.",
               back=f"/console/risk/versions/{version_id}")


# ---------------------------------------------------------------------------------------------- lists


def _active(now: datetime) -> Any:
    return (RiskListEntry.removed_at.is_(None)) & (
        RiskListEntry.expires_at.is_(None) | (RiskListEntry.expires_at > now))


LIST_COLUMNS = (
    Column("Entry", lambda e: e.id, link=lambda e: f"/console/risk/lists/{e.id}"),
    Column("List", lambda e: e.kind),
    Column("Level", lambda e: e.level),
    Column("Value", lambda e: e.display),
    Column("Reason", lambda e: e.reason),
    Column("Bypasses", lambda e: ", ".join(e.bypass_rules)),
    Column("Expires", lambda e: e.expires_at),
    Column("Added by", lambda e: e.created_by),
    Column("Added", lambda e: e.created_at),
    Column("Removed", lambda e: e.removed_at),
)


@router.get("/risk/lists")
def list_entries(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        now = uow.clock.now()
        filters = (
            Filter("kind", "List", equals(RiskListEntry.kind), choice(*risk_lists.ListKind)),
            Filter("level", "Level", equals(RiskListEntry.level), choice(*risk_lists.ListLevel)),
            Filter("state", "State", lambda q, v: q.where(_active(now) if v == "active" else ~_active(now)),
                   [("active", "active"), ("inactive", "removed or expired")]),
        )
        return listing(request, uow.session, select(RiskListEntry).where(RiskListEntry.tenant_id == staff.tenant_id),
                       title="Lists", columns=LIST_COLUMNS, order_by=(RiskListEntry.id.desc(),), filters=filters,
                       search=lambda q: or_(RiskListEntry.id == q, RiskListEntry.display == q,
                                            RiskListEntry.reason.contains(q)),
                       search_label="entry id, shown value or reason", template="risk/list.html", tab="lists",
                       form="risk/_list_form.html", kinds=list(risk_lists.ListKind),
                       levels=list(risk_lists.ListLevel))


@router.post("/risk/lists")
def add_entry(request: Request, staff: ActingStaff) -> Response:
    form = form_of(request)
    expires = field(form, "expires_on", required=False)
    expires_at = None
    if expires:
        day = parse_day(expires, param="expires_on")
        expires_at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    bypass = [r.strip() for r in form.get("bypass_rules", "").split(",") if r.strip()] or None
    return act(request, staff, action="risk.list_entry.added", object_type="risk_list_entry", object_id=None,
               form=form, permission=CONFIGURE, done="Entry added.", back="/console/risk/lists/{id}",
               work=lambda uow: risk_lists.add_entry(
                   uow, staff.tenant_id, kind=form.get("kind", ""), level=form.get("level", ""),
                   value=form.get("value", ""), reason=form.get("reason", ""), expires_at=expires_at,
                   bypass_rules=bypass, actor=staff.principal.actor))


@router.get("/risk/lists/{entry_id}")
def list_entry_detail(request: Request, staff: CurrentStaff, entry_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        entry = risk_lists.get_entry(uow, staff.tenant_id, entry_id)
        active = entry.removed_at is None and (entry.expires_at is None or entry.expires_at > uow.clock.now())
        return html(request, "risk/list_entry.html", entry=entry, active=active, tab="lists")


@router.post("/risk/lists/{entry_id}/remove")
def remove_entry(request: Request, staff: ActingStaff, entry_id: str) -> Response:
    return act(request, staff, action="risk.list_entry.removed", object_type="risk_list_entry", object_id=entry_id,
               permission=CONFIGURE, done="Entry removed.", back=f"/console/risk/lists/{entry_id}",
               work=lambda uow: risk_lists.remove_entry(uow, staff.tenant_id, entry_id,
                                                        actor=staff.principal.actor))


# ---------------------------------------------------------------------------------------------- cases

CASE_COLUMNS = (
    Column("Case", lambda c: c.id, link=lambda c: f"/console/risk/cases/{c.id}"),
    Column("Opened", lambda c: c.created_at),
    Column("Priority", lambda c: c.priority, numeric=True),
    Column("Source", lambda c: c.source),
    Column("Object", lambda c: f"{c.object_type} {c.object_id}"),
    Column("Reason", lambda c: c.reason),
    Column("Status", lambda c: c.status, show=lambda c: badge(c.status)),
    Column("Assignee", lambda c: c.assignee),
    Column("Outcome", lambda c: c.outcome),
    Column("Action", lambda c: c.action),
)


@router.get("/risk/cases")
def case_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        filters = (
            Filter("status", "Status", equals(RiskCase.status), choice(*CaseStatus)),
            Filter("source", "Source", equals(RiskCase.source), choice(*CaseSource)),
            Filter("object_type", "Object type", equals(RiskCase.object_type)),
            Filter("assignee", "Assignee", equals(RiskCase.assignee)),
            Filter("outcome", "Outcome", equals(RiskCase.outcome), choice(*CaseOutcome)),
            Filter("from", "Opened from", since(RiskCase.created_at), kind="date"),
            Filter("to", "Opened to", until(RiskCase.created_at), kind="date"),
        )
        return listing(request, uow.session, select(RiskCase).where(RiskCase.tenant_id == staff.tenant_id),
                       title="Cases", columns=CASE_COLUMNS, order_by=(RiskCase.priority.desc(), RiskCase.id),
                       filters=filters, template="risk/list.html", tab="cases",
                       search=lambda q: or_(RiskCase.id == q, RiskCase.object_id == q, RiskCase.decision_id == q),
                       search_label="case, object or decision id")


@router.get("/risk/cases/{case_id}")
def case_detail(request: Request, staff: CurrentStaff, case_id: str) -> Response:
    """The case, the decision it came from and every other decision on the same object, and its notes."""
    with database(request).uow(read_only=True) as uow:
        case = cases.get_case(uow, staff.tenant_id, case_id)
        decisions = list(uow.session.scalars(select(RiskDecision).where(
            RiskDecision.tenant_id == staff.tenant_id,
            or_(RiskDecision.id == case.decision_id, RiskDecision.object_ref == case.object_id))
            .order_by(RiskDecision.decided_at, RiskDecision.id).limit(50)))
        notes = cases.list_notes(uow, staff.tenant_id, case.id)
        return html(request, "risk/case.html", case=case, decisions=decisions, notes=notes, tab="cases",
                    outcomes=list(CaseOutcome), actions=list(CaseAction))


@router.post("/risk/cases/{case_id}/assign")
def assign_case(request: Request, staff: ActingStaff, case_id: str) -> Response:
    form = form_of(request)
    assignee = field(form, "assignee", required=False) or staff.principal.actor
    return act(request, staff, action="risk.case.assigned", object_type="risk_case", object_id=case_id, form=form,
               permission=REVIEW, done=f"Assigned to {assignee}.", back=f"/console/risk/cases/{case_id}",
               work=lambda uow: cases.assign_case(uow, staff.tenant_id, case_id, assignee=assignee,
                                                  actor=staff.principal.actor))


@router.post("/risk/cases/{case_id}/notes")
def add_note(request: Request, staff: ActingStaff, case_id: str) -> Response:
    form = form_of(request)
    return act(request, staff, action="risk.case.noted", object_type="risk_case", object_id=case_id,
               permission=REVIEW, done="Note added.", back=f"/console/risk/cases/{case_id}",
               work=lambda uow: cases.add_note(uow, staff.tenant_id, case_id, body=form.get("body", ""),
                                               author=staff.principal.actor))


@router.post("/risk/cases/{case_id}/close")
def close_case(request: Request, staff: ActingStaff, case_id: str) -> Response:
    form = form_of(request)
    return act(request, staff, action="risk.case.closed", object_type="risk_case", object_id=case_id, form=form,
               permission=REVIEW, done="Case resolved.", back=f"/console/risk/cases/{case_id}",
               work=lambda uow: cases.close_case(uow, staff.tenant_id, case_id, outcome=form.get("outcome", ""),
                                                 action=form.get("action", ""), note=form.get("note", ""),
                                                 actor=staff.principal.actor))


# ---------------------------------------------------------------------------------------------- models


def _metric(name: str) -> Column:
    return Column(name.upper() if name == "auc" else name.replace("_", " ").capitalize(),
                  lambda m: m.metrics.get(name), numeric=True)


MODEL_COLUMNS = (
    Column("Model", lambda m: m.id, link=lambda m: f"/console/risk/models/{m.id}"),
    Column("Name", lambda m: m.name),
    Column("Version", lambda m: m.version, numeric=True),
    Column("Status", lambda m: m.status, show=lambda m: badge(m.status)),
    Column("Algorithm", lambda m: m.algorithm),
    _metric("auc"), _metric("precision"), _metric("recall"), _metric("review_rate"),
    Column("Threshold", lambda m: m.threshold, numeric=True),
    Column("Data from", lambda m: m.data_from),
    Column("Data to", lambda m: m.data_to),
    Column("Created", lambda m: m.created_at),
)


@router.get("/risk/models")
def model_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        names = list(uow.session.scalars(select(RiskModel.name).where(RiskModel.tenant_id == staff.tenant_id)
                                         .distinct().order_by(RiskModel.name)))
        filters = (
            Filter("name", "Name", equals(RiskModel.name), choice(*names)),
            Filter("status", "Status", equals(RiskModel.status), choice("champion", "challenger", "retired")),
        )
        return listing(request, uow.session, select(RiskModel).where(RiskModel.tenant_id == staff.tenant_id),
                       title="Models", columns=MODEL_COLUMNS, order_by=(RiskModel.name, RiskModel.version.desc()),
                       filters=filters, template="risk/list.html", tab="models")


@router.get("/risk/models/{model_id}")
def model_detail(request: Request, staff: CurrentStaff, model_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        model = models.get_model(uow, staff.tenant_id, model_id)
        return html(request, "risk/model.html", model=model, tab="models")


@router.post("/risk/models/{model_id}/promote")
def promote_model(request: Request, staff: ActingStaff, model_id: str) -> Response:
    return act(request, staff, action="risk.model.promoted", object_type="risk_model", object_id=model_id,
               permission=CONFIGURE, done="Promoted: this model is the champion.",
               back=f"/console/risk/models/{model_id}",
               work=lambda uow: models.promote(uow, staff.tenant_id, model_id, actor=staff.principal.actor))


@router.post("/risk/models/{model_id}/retire")
def retire_model(request: Request, staff: ActingStaff, model_id: str) -> Response:
    return act(request, staff, action="risk.model.retired", object_type="risk_model", object_id=model_id,
               permission=CONFIGURE, done="Model retired.", back=f"/console/risk/models/{model_id}",
               work=lambda uow: models.retire(uow, staff.tenant_id, model_id, actor=staff.principal.actor))
