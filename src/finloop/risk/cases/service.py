"""Risk cases: the review queue fed by review decisions, AML alerts and screening hits.

Invariants owned here:
- at most one case is open (open or investigating) per (tenant, source, object type, object id, alert id):
  ``open_case`` returns it when it exists, also under concurrency (a unique open key, see ``models``);
- status moves only along ``state.CASE_TRANSITIONS`` (an illegal move is a 409); a closed case never changes;
- closing records the outcome and the action in one transaction with their effects: ``approve`` and
  ``decline`` run the resolver registered for the case's object type (it records the verdict for a job to
  act on, never calls out); ``add_to_list`` puts the decision's customer, device, IP and card token on the
  black list and declines the object through its resolver; a ``confirmed_fraud`` outcome labels the case's
  decision ``fraud_confirmed`` and a ``false_positive`` closed with ``approve`` labels it ``succeeded``, so
  the next training and the figures see them; an error anywhere rolls everything back (the caller's
  transaction);
- every change (open, assign, note, close) is audited.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.risk.cases.models import RiskCase, RiskCaseNote
from finloop.risk.cases.state import (
    CaseAction,
    CaseOutcome,
    CaseSource,
    CaseStatus,
    check_case_transition,
)

MAX_OBJECT_TYPE = 40
MAX_OBJECT_ID = 100
MAX_REASON = 500
MAX_NOTE = 4000
MAX_ACTOR = 60
MAX_PRIORITY = 1000
LIST_REASON = "Risk case {case_id}: {outcome}"
#: The decision's event keys put on the black list by ``add_to_list``, with their list level. Phone,
#: e-mail and payout account are stored masked in the decision, so they cannot be listed from it.
LIST_LEVELS = (("customer_id", "customer"), ("device_id", "device"), ("ip", "ip"), ("card_token", "card"))

Resolver = Callable[[UnitOfWork, RiskCase, str], None]
_resolvers: dict[str, Resolver] = {}
_resolvers_lock = threading.Lock()


def register_resolver(object_type: str, resolver: Resolver) -> None:
    """``resolver(uow, case, verdict)`` runs, in the closing transaction, when a case of ``object_type``
    is closed with action ``approve`` (verdict ``approve``), ``decline`` or ``add_to_list`` (verdict
    ``decline``). It must not call out: it records the verdict for a job. Registering again replaces."""
    with _resolvers_lock:
        _resolvers[object_type] = resolver


def unregister_resolver(object_type: str) -> None:
    with _resolvers_lock:
        _resolvers.pop(object_type, None)


#: The modules that register resolvers when imported. A process that closes a case without having imported
#: them (the CLI imports lazily) loads them on the first look-up, so a verdict never misses its resolver.
RESOLVER_MODULES = ("finloop.risk.wiring", "finloop.risk.aml.service", "finloop.onboarding.service",
                    "finloop.credit.applications")
_resolver_modules_loaded = False


def _resolver(object_type: str) -> Resolver | None:
    global _resolver_modules_loaded
    if not _resolver_modules_loaded:
        for module in RESOLVER_MODULES:
            importlib.import_module(module)
        _resolver_modules_loaded = True
    with _resolvers_lock:
        return _resolvers.get(object_type)


# ---------------------------------------------------------------------------------------------- checks


def _text(value: Any, *, param: str, max_length: int, required: bool = True) -> str:
    if (not isinstance(value, str) or "\x00" in value or len(value) > max_length
            or (required and not value.strip())):
        raise InvalidRequest(f"{param} is text of {'1' if required else '0'}-{max_length} characters.",
                             code=f"invalid_{param}", param=param)
    return value.strip()


def _choice(value: Any, enum: type[Any], *, param: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise InvalidRequest(f"{param} is one of {', '.join(e.value for e in enum)}.", code=f"invalid_{param}",
                             param=param) from None


def case_snapshot(case: RiskCase) -> dict[str, Any]:
    return {"source": case.source, "object_type": case.object_type, "object_id": case.object_id,
            "decision_id": case.decision_id, "alert_id": case.alert_id, "status": case.status,
            "priority": case.priority, "assignee": case.assignee, "outcome": case.outcome, "action": case.action}


def _open_key(source: str, object_type: str, object_id: str, alert_id: str | None) -> str:
    return f"{source}|{object_type}|{object_id}|{alert_id or ''}"


# ---------------------------------------------------------------------------------------------- cases


def open_case(uow: UnitOfWork, tenant_id: str, *, source: str, object_type: str, object_id: str, reason: str,
              decision_id: str | None = None, alert_id: str | None = None, priority: int = 0) -> RiskCase:
    """Open a case for review, or return the one already open for the same source, object and alert."""
    source_ = _choice(source, CaseSource, param="source")
    object_type = _text(object_type, param="object_type", max_length=MAX_OBJECT_TYPE)
    object_id = _text(object_id, param="object_id", max_length=MAX_OBJECT_ID)
    reason = _text(reason, param="reason", max_length=MAX_REASON)
    if decision_id is not None:
        decision_id = _text(decision_id, param="decision_id", max_length=40)
    if alert_id is not None:
        alert_id = _text(alert_id, param="alert_id", max_length=40)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise InvalidRequest(f"priority is an integer of 0-{MAX_PRIORITY}.", code="invalid_priority",
                             param="priority")
    key = _open_key(source_.value, object_type, object_id, alert_id)
    existing = _find_open(uow, tenant_id, key)
    if existing is not None:
        return existing
    if decision_id is not None:
        from finloop.risk import service as risk

        risk.get_decision(uow, tenant_id, decision_id)  # 404 for another tenant's or an unknown decision
    now = uow.clock.now()
    case = RiskCase(id=uow.ids.new("risk_case"), tenant_id=tenant_id, source=source_.value, object_type=object_type,
                    object_id=object_id, decision_id=decision_id, alert_id=alert_id, open_key=key, reason=reason,
                    priority=priority, status=CaseStatus.OPEN.value, assignee=None, outcome=None, action=None,
                    closed_by=None, closed_at=None, created_at=now, updated_at=now)
    try:
        with uow.session.begin_nested():
            uow.session.add(case)
    except IntegrityError:  # a racing open of the same object won: return its case
        found = _find_open(uow, tenant_id, key)
        if found is None:
            raise
        return found
    audit.record(uow, tenant_id, actor=f"system:risk.{source_.value}", action="risk.case.opened",
                 object_type="risk_case", object_id=case.id, after=case_snapshot(case))
    return case


def find_open_case(uow: UnitOfWork, tenant_id: str, *, source: str, object_type: str, object_id: str,
                   alert_id: str | None = None) -> RiskCase | None:
    """The case open (or investigating) for this source, object and alert, if any."""
    return _find_open(uow, tenant_id, _open_key(source, object_type, object_id, alert_id))


def _find_open(uow: UnitOfWork, tenant_id: str, key: str) -> RiskCase | None:
    return uow.session.scalar(select(RiskCase).where(RiskCase.tenant_id == tenant_id, RiskCase.open_key == key))


def get_case(uow: UnitOfWork, tenant_id: str, case_id: str, *, lock: bool = False) -> RiskCase:
    query = select(RiskCase).where(RiskCase.tenant_id == tenant_id, RiskCase.id == case_id)
    if lock:
        query = query.with_for_update()
    case = uow.session.scalar(query)
    if case is None:
        raise NotFound(f"No such case: {case_id}.", code="case_not_found", param="case_id")
    return case


def list_cases(uow: UnitOfWork, tenant_id: str, *, status: str | None = None, source: str | None = None,
               assignee: str | None = None, object_type: str | None = None, object_id: str | None = None,
               after: str | None = None, limit: int = 50) -> list[RiskCase]:
    """Cases by id (oldest first), filtered."""
    query = select(RiskCase).where(RiskCase.tenant_id == tenant_id)
    if status:
        query = query.where(RiskCase.status == _choice(status, CaseStatus, param="status").value)
    if source:
        query = query.where(RiskCase.source == _choice(source, CaseSource, param="source").value)
    if assignee:
        query = query.where(RiskCase.assignee == assignee)
    if object_type:
        query = query.where(RiskCase.object_type == object_type)
    if object_id:
        query = query.where(RiskCase.object_id == object_id)
    if after:
        query = query.where(RiskCase.id > after)
    return list(uow.session.scalars(query.order_by(RiskCase.id).limit(limit)))


def assign_case(uow: UnitOfWork, tenant_id: str, case_id: str, *, assignee: str, actor: str) -> RiskCase:
    """Give the case to ``assignee``: open → investigating (or a re-assignment while investigating)."""
    assignee = _text(assignee, param="assignee", max_length=MAX_ACTOR)
    case = get_case(uow, tenant_id, case_id, lock=True)
    _move(uow, case, CaseStatus.INVESTIGATING, actor=actor, event="risk.case.assigned", assignee=assignee)
    return case


def _move(uow: UnitOfWork, case: RiskCase, target: CaseStatus, *, actor: str, event: str,
          **changes: Any) -> None:
    check_case_transition(case.status, target)
    before = case_snapshot(case)
    case.status = target.value
    for name, value in changes.items():
        setattr(case, name, value)
    case.updated_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, case.tenant_id, actor=actor, action=event, object_type="risk_case", object_id=case.id,
                 before=before, after=case_snapshot(case))


def add_note(uow: UnitOfWork, tenant_id: str, case_id: str, *, body: str, author: str) -> RiskCaseNote:
    """Append a note (also to a closed case: notes are the case's record)."""
    body = _text(body, param="body", max_length=MAX_NOTE)
    case = get_case(uow, tenant_id, case_id, lock=True)
    last = uow.session.scalar(select(RiskCaseNote.seq).where(RiskCaseNote.case_id == case.id)
                              .order_by(RiskCaseNote.seq.desc()).limit(1))
    seq = (last or 0) + 1
    note = RiskCaseNote(id=f"{case.id}_n{seq}", tenant_id=tenant_id, case_id=case.id, seq=seq,
                        author=author[:MAX_ACTOR], body=body, created_at=uow.clock.now())
    uow.session.add(note)
    case.updated_at = note.created_at
    uow.session.flush()
    audit.record(uow, tenant_id, actor=author, action="risk.case.noted", object_type="risk_case",
                 object_id=case.id, after={"note_id": note.id, "length": len(body)})
    return note


def list_notes(uow: UnitOfWork, tenant_id: str, case_id: str) -> list[RiskCaseNote]:
    return list(uow.session.scalars(select(RiskCaseNote).where(
        RiskCaseNote.tenant_id == tenant_id, RiskCaseNote.case_id == case_id).order_by(RiskCaseNote.seq)))


#: Closing combinations refused as contradictory.
_REFUSED = {(CaseOutcome.CONFIRMED_FRAUD, CaseAction.APPROVE), (CaseOutcome.FALSE_POSITIVE, CaseAction.DECLINE),
            (CaseOutcome.FALSE_POSITIVE, CaseAction.ADD_TO_LIST)}


def close_case(uow: UnitOfWork, tenant_id: str, case_id: str, *, outcome: str, action: str, actor: str,
               note: str = "") -> RiskCase:
    """Close with an outcome and an action and apply their effects in this transaction (see the module
    docstring). An open case is first assigned to ``actor``. A confirmed fraud cannot be approved and a false
    positive cannot be declined or listed (400 ``invalid_action``)."""
    outcome_ = _choice(outcome, CaseOutcome, param="outcome")
    action_ = _choice(action, CaseAction, param="action")
    if (outcome_, action_) in _REFUSED:
        raise InvalidRequest(f"A {outcome_.value} case cannot be closed with {action_.value}.",
                             code="invalid_action", param="action")
    note = _text(note, param="note", max_length=MAX_NOTE, required=False)
    case = get_case(uow, tenant_id, case_id, lock=True)
    if case.status == CaseStatus.OPEN.value:
        _move(uow, case, CaseStatus.INVESTIGATING, actor=actor, event="risk.case.assigned", assignee=actor[:60])
    check_case_transition(case.status, CaseStatus.CLOSED)
    decision = None
    if case.decision_id is not None:
        from finloop.risk import service as risk

        decision = risk.get_decision(uow, tenant_id, case.decision_id)
    listed: list[str] = []
    if action_ is CaseAction.ADD_TO_LIST:
        if decision is None:
            raise Conflict("Only a case from a decision can list its values.", code="nothing_to_list",
                           param="action")
        listed = _blacklist(uow, tenant_id, case, decision.event, outcome_, actor=actor)
    if note:
        add_note(uow, tenant_id, case.id, body=note, author=actor)
    _move(uow, case, CaseStatus.CLOSED, actor=actor, event="risk.case.closed", outcome=outcome_.value,
          action=action_.value, closed_by=actor[:MAX_ACTOR], closed_at=uow.clock.now(), open_key=None)
    verdict = {CaseAction.APPROVE: "approve", CaseAction.DECLINE: "decline",
               CaseAction.ADD_TO_LIST: "decline"}.get(action_)
    resolver = _resolver(case.object_type) if verdict else None
    if resolver is not None and verdict is not None:
        resolver(uow, case, verdict)
    label = None
    if outcome_ is CaseOutcome.CONFIRMED_FRAUD:
        label = "fraud_confirmed"
    elif outcome_ is CaseOutcome.FALSE_POSITIVE and action_ is CaseAction.APPROVE:
        label = "succeeded"
    if decision is not None and label is not None and decision.label != label:
        from finloop.risk import service as risk

        risk.label_decision(uow, tenant_id, decision.id, label, actor=actor)
    if decision is not None:  # the customer becomes a known fraud of its network component
        from finloop.risk.network import service as network

        for source in ([f"case:{case.id}"] if outcome_ is CaseOutcome.CONFIRMED_FRAUD else []) + (
                ["list"] if "customer" in listed else []):
            network.mark_fraud(uow, tenant_id, decision.event.get("customer_id"), source=source)
    audit.record(uow, tenant_id, actor=actor, action="risk.case.resolved", object_type="risk_case",
                 object_id=case.id, after={"verdict": verdict, "resolver": resolver is not None, "label": label,
                                           "listed": listed})
    return case


def _blacklist(uow: UnitOfWork, tenant_id: str, case: RiskCase, event: dict[str, Any], outcome: CaseOutcome, *,
               actor: str) -> list[str]:
    """Put the event's customer, device, IP and card token on the black list (those already there are
    skipped); the levels listed."""
    from finloop.risk import lists

    listed = []
    for key, level in LIST_LEVELS:
        value = event.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > lists.MAX_VALUE:
            continue
        try:
            lists.add_entry(uow, tenant_id, kind="black", level=level, value=value, actor=actor,
                            reason=LIST_REASON.format(case_id=case.id, outcome=outcome.value))
        except Conflict:  # already on the black list (checked before anything is written)
            continue
        listed.append(level)
    if not listed and not any(isinstance(event.get(key), str) for key, _ in LIST_LEVELS):
        raise Conflict("The decision's event has no customer, device, IP or card token to list.",
                       code="nothing_to_list", param="action")
    return listed
