"""Risk decisions and rule sets: the one in-process decision service every event type goes through.

Invariants owned here:
- a decision builds its evaluation context once (``rules.make_context``) from the event, the velocity
  features as they were before the event, the network and geo features (``network.observe``, which also
  links the event's customer to its values), the list memberships and the model scores, and stores the
  event (personal fields masked), the features, the memberships, every rule that fired with its score,
  the outcome, the score, the reasons and the rule-set version; the velocity counters are updated in the
  same transaction;
- a black-list hit forces a decline (the built-in rule ``builtin.blacklist``) unless a white entry of the
  event bypasses it; a rule's forced outcome beats the score; otherwise the summed score meets the event
  type's thresholds;
- a version's rules are written once, at creation (published versions are immutable; a change is a new
  draft); publishing needs an approval decided by another person (maker-checker); one version per rule
  set is live; a rollback re-publishes the previous published version; every pointer move is audited;
- a shadow version is evaluated beside the live one and only its would-be outcome is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.risk import lists as risk_lists
from finloop.risk import rules as risk_rules
from finloop.risk import velocity
from finloop.risk.domain import (
    BLACKLIST_RULE,
    EVENT_TYPES,
    BacktestFigures,
    FiredRule,
    Label,
    Outcome,
    RuleSpec,
    Thresholds,
    Verdict,
    check_event_type,
    mask_event,
    parse_rules,
    parse_thresholds,
    thresholds_for,
    thresholds_json,
    verdict,
)
from finloop.risk.ml import service as risk_ml
from finloop.risk.models import RiskDecision, RuleSet, RuleSetVersion
from finloop.risk.network import service as network
from finloop.risk.state import VersionStatus, check_version_transition
from finloop.tenancy.service import Principal

PUBLISH_ACTION = "risk.rule_set.publish"
MAX_NAME = 100
MAX_EVENT_KEYS = 64
MAX_EVENT_DEPTH = 3
MAX_EVENT_STRING = 500
MAX_BACKTEST_DAYS = 366
MAX_BACKTEST_EVENTS = 200_000
INT64 = 2**63


# ---------------------------------------------------------------------------------------------- compiled versions


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    score: int
    outcome: Outcome | None
    compiled: Any  # rules.CompiledRule


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    """A version ready to evaluate: per event type, its rules cheapest first."""

    version_id: str
    by_event_type: Mapping[str, tuple[_Rule, ...]]
    thresholds: Mapping[str, Thresholds]
    descriptions: Mapping[str, str]
    rule_ids: tuple[str, ...]


_compiled: dict[str, CompiledVersion] = {}
_compiled_lock = threading.Lock()
_MAX_COMPILED = 256


def compile_version(version_id: str, specs: Sequence[RuleSpec], thresholds: Mapping[str, Thresholds]
                    ) -> CompiledVersion:
    """Compile every rule (raises ``RuleInvalid`` with the first bad rule's issues) and order each event
    type's rules by their static cost, cheapest first (ties keep the analyst's order)."""
    compiled = []
    for index, spec in enumerate(specs):
        try:
            rule = risk_rules.compile_rule(spec.expression)
        except risk_rules.RuleInvalid as error:
            raise _invalid_rules([(index, spec, list(risk_rules.check(spec.expression)))]) from error
        compiled.append((rule.cost, index, spec, rule))
    compiled.sort(key=lambda item: (item[0], item[1]))
    by_type = {event_type: tuple(_Rule(spec.id, spec.score, spec.outcome, rule)
                                 for _, _, spec, rule in compiled if spec.applies_to(event_type))
               for event_type in EVENT_TYPES}
    return CompiledVersion(version_id=version_id, by_event_type=by_type, thresholds=dict(thresholds),
                           descriptions={s.id: s.description for s in specs}, rule_ids=tuple(s.id for s in specs))


def _compiled_version(uow: UnitOfWork, version: RuleSetVersion | str) -> CompiledVersion:
    """The version compiled, from the in-process cache (versions never change once written)."""
    version_id = version if isinstance(version, str) else version.id
    with _compiled_lock:
        found = _compiled.get(version_id)
    if found is not None:
        return found
    row = version if isinstance(version, RuleSetVersion) else uow.session.get(RuleSetVersion, version_id)
    if row is None:
        raise NotFound(f"No such rule-set version: {version_id}.", code="rule_set_version_not_found",
                       param="version_id")
    result = compile_version(row.id, parse_rules(row.rules), parse_thresholds(row.thresholds))
    with _compiled_lock:
        if len(_compiled) >= _MAX_COMPILED:
            _compiled.clear()
        _compiled[row.id] = result
    return result


def forget_compiled(version_id: str | None = None) -> None:
    """Drop a version (or all) from the in-process cache."""
    with _compiled_lock:
        if version_id is None:
            _compiled.clear()
        else:
            _compiled.pop(version_id, None)


def evaluate(version: CompiledVersion, context: Any, *, event_type: str, black: bool = False,
             bypass: frozenset[str] = frozenset(), stop_on_decline: bool = True) -> Verdict:
    """Evaluate a compiled version against a built context. A black-list hit (``black``) fires the
    built-in decline unless bypassed; rules a white entry bypasses are skipped (``*``: all). With
    ``stop_on_decline`` evaluation stops at the first forced decline (it cannot be beaten)."""
    everything = "*" in bypass
    fired: list[FiredRule] = []
    if black and not everything and BLACKLIST_RULE not in bypass:
        fired.append(FiredRule(BLACKLIST_RULE, 0, Outcome.DECLINE))
    if not (fired and stop_on_decline) and not everything:
        for rule in version.by_event_type.get(event_type, ()):
            if bypass and rule.id in bypass:
                continue
            if rule.compiled.evaluate(context):
                fired.append(FiredRule(rule.id, rule.score, rule.outcome))
                if stop_on_decline and rule.outcome is Outcome.DECLINE:
                    break
    descriptions = version.descriptions
    if black:
        descriptions = {**descriptions, BLACKLIST_RULE: "On a black list"}
    return verdict(fired, thresholds_for(version.thresholds, event_type), descriptions)


# ---------------------------------------------------------------------------------------------- rule sets


def rule_set_snapshot(rule_set: RuleSet) -> dict[str, Any]:
    return {"name": rule_set.name, "event_types": list(rule_set.event_types),
            "live_version_id": rule_set.live_version_id, "shadow_version_id": rule_set.shadow_version_id}


def version_snapshot(version: RuleSetVersion) -> dict[str, Any]:
    return {"rule_set_id": version.rule_set_id, "number": version.number, "status": version.status,
            "rules": len(version.rules), "approval_id": version.approval_id}


def _text(value: Any, *, param: str, max_length: int, required: bool = True) -> str:
    if not isinstance(value, str) or "\x00" in value or len(value) > max_length or (required and not value.strip()):
        raise InvalidRequest(f"{param} is text of {'1' if required else '0'}-{max_length} characters.",
                             code=f"invalid_{param}", param=param)
    return value.strip()


def create_rule_set(uow: UnitOfWork, tenant_id: str, *, name: str, actor: str, description: str = "",
                    event_types: Sequence[str] = ()) -> RuleSet:
    """A rule set deciding ``event_types`` (empty: every type); no two rule sets of a tenant overlap."""
    name = _text(name, param="name", max_length=MAX_NAME)
    description = _text(description, param="description", max_length=1000, required=False)
    types = sorted({check_event_type(t, param="event_types") for t in event_types})
    existing = list(uow.session.scalars(select(RuleSet).where(RuleSet.tenant_id == tenant_id)))
    for other in existing:
        if other.name == name:
            raise Conflict(f"A rule set named {name} exists: {other.id}.", code="rule_set_exists", param="name")
        if not types or not other.event_types or set(types) & set(other.event_types):
            raise Conflict(f"Rule set {other.name} already decides some of these event types; one rule set "
                           "decides each event type.", code="event_types_overlap", param="event_types")
    now = uow.clock.now()
    rule_set = RuleSet(id=uow.ids.new("rule_set"), tenant_id=tenant_id, name=name, description=description,
                       event_types=types, live_version_id=None, shadow_version_id=None, created_by=actor[:60],
                       created_at=now, updated_at=now)
    uow.session.add(rule_set)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="risk.rule_set.created", object_type="rule_set",
                 object_id=rule_set.id, after=rule_set_snapshot(rule_set))
    return rule_set


def get_rule_set(uow: UnitOfWork, tenant_id: str, rule_set_id: str, *, lock: bool = False) -> RuleSet:
    query = select(RuleSet).where(RuleSet.tenant_id == tenant_id, RuleSet.id == rule_set_id)
    if lock:
        query = query.with_for_update()
    rule_set = uow.session.scalar(query)
    if rule_set is None:
        raise NotFound(f"No such rule set: {rule_set_id}.", code="rule_set_not_found", param="rule_set_id")
    return rule_set


def find_rule_set(uow: UnitOfWork, tenant_id: str, name: str) -> RuleSet:
    rule_set = uow.session.scalar(select(RuleSet).where(RuleSet.tenant_id == tenant_id, RuleSet.name == name))
    if rule_set is None:
        raise NotFound(f"No rule set named {name}.", code="rule_set_not_found", param="rule_set")
    return rule_set


def list_rule_sets(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50) -> list[RuleSet]:
    query = select(RuleSet).where(RuleSet.tenant_id == tenant_id)
    if after:
        query = query.where(RuleSet.id > after)
    return list(uow.session.scalars(query.order_by(RuleSet.id).limit(limit)))


def create_version(uow: UnitOfWork, tenant_id: str, rule_set_id: str, *, rules: Any, actor: str,
                   thresholds: Any = None, note: str = "") -> RuleSetVersion:
    """A new draft (the next number). Its structure is checked here; its expressions by ``validate``."""
    rule_set = get_rule_set(uow, tenant_id, rule_set_id, lock=True)
    specs = parse_rules(rules)
    parsed_thresholds = parse_thresholds(thresholds)
    note = _text(note, param="note", max_length=1000, required=False)
    last = uow.session.scalar(select(RuleSetVersion).where(RuleSetVersion.rule_set_id == rule_set.id)
                              .order_by(RuleSetVersion.number.desc()).limit(1))
    now = uow.clock.now()
    version = RuleSetVersion(
        id=uow.ids.new("rule_set_version"), tenant_id=tenant_id, rule_set_id=rule_set.id,
        number=(last.number + 1) if last else 1, status=VersionStatus.DRAFT.value,
        rules=[s.to_json() for s in specs], thresholds=thresholds_json(parsed_thresholds), note=note,
        based_on_version_id=rule_set.live_version_id, approval_id=None, created_by=actor[:60], created_at=now)
    uow.session.add(version)
    rule_set.updated_at = now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="risk.rule_set_version.created",
                 object_type="rule_set_version", object_id=version.id, after=version_snapshot(version))
    return version


def get_version(uow: UnitOfWork, tenant_id: str, rule_set_id: str, version_id: str, *,
                lock: bool = False) -> RuleSetVersion:
    query = select(RuleSetVersion).where(RuleSetVersion.tenant_id == tenant_id,
                                         RuleSetVersion.rule_set_id == rule_set_id, RuleSetVersion.id == version_id)
    if lock:
        query = query.with_for_update()
    version = uow.session.scalar(query)
    if version is None:
        raise NotFound(f"No such rule-set version: {version_id}.", code="rule_set_version_not_found",
                       param="version_id")
    return version


def find_version(uow: UnitOfWork, tenant_id: str, rule_set_id: str, number: int) -> RuleSetVersion:
    version = uow.session.scalar(select(RuleSetVersion).where(
        RuleSetVersion.tenant_id == tenant_id, RuleSetVersion.rule_set_id == rule_set_id,
        RuleSetVersion.number == number))
    if version is None:
        raise NotFound(f"No version {number} of this rule set.", code="rule_set_version_not_found", param="version")
    return version


def list_versions(uow: UnitOfWork, tenant_id: str, rule_set_id: str) -> list[RuleSetVersion]:
    get_rule_set(uow, tenant_id, rule_set_id)
    return list(uow.session.scalars(select(RuleSetVersion).where(
        RuleSetVersion.tenant_id == tenant_id, RuleSetVersion.rule_set_id == rule_set_id)
        .order_by(RuleSetVersion.number)))


# ---------------------------------------------------------------------------------------------- validation


def _invalid_rules(found: list[tuple[int, RuleSpec, list[Any]]]) -> InvalidRequest:
    issues = [{"rule_index": index, "rule_id": spec.id, **_issue_json(issue)} for index, spec, rule_issues in found
              for issue in rule_issues]
    first = found[0]
    detail = f": {issues[0]['message']}" if issues else ""
    return InvalidRequest(f"Rule {first[1].id} is invalid{detail}", code="invalid_rule",
                          param=f"rules[{first[0]}].expression", details={"issues": issues})


def _issue_json(issue: Any) -> dict[str, Any]:
    return {"code": issue.code, "message": issue.message, "position": issue.position, "line": issue.line,
            "column": issue.column}


def check_rules(rules: Any) -> list[dict[str, Any]]:
    """Every issue of every rule (structure first, then each expression against the risk context)."""
    specs = parse_rules(rules)
    issues = []
    for index, spec in enumerate(specs):
        for issue in risk_rules.check(spec.expression):
            issues.append({"rule_index": index, "rule_id": spec.id, **_issue_json(issue)})
    return issues


def validate_specs(specs: Sequence[RuleSpec]) -> None:
    """Raise ``invalid_rule`` (400) listing every issue, with positions, when any expression is invalid."""
    found = [(i, spec, list(risk_rules.check(spec.expression))) for i, spec in enumerate(specs)]
    bad = [item for item in found if item[2]]
    if bad:
        raise _invalid_rules(bad)


def validate_version(uow: UnitOfWork, tenant_id: str, rule_set_id: str, version_id: str) -> RuleSetVersion:
    version = get_version(uow, tenant_id, rule_set_id, version_id)
    validate_specs(parse_rules(version.rules))
    return version


# ---------------------------------------------------------------------------------------------- publishing


def request_publish(uow: UnitOfWork, principal: Principal, rule_set_id: str, version_id: str) -> RuleSetVersion:
    """A draft: validated and parked for approval (pending_approval). A pending version whose approval was
    approved: published (live); rejected: back to draft; undecided: 409 ``approval_pending``."""
    from finloop.tenancy import service as tenancy
    from finloop.tenancy.service import Role

    tenant_id = principal.tenant_id
    rule_set = get_rule_set(uow, tenant_id, rule_set_id, lock=True)
    version = get_version(uow, tenant_id, rule_set_id, version_id, lock=True)
    if version.status == VersionStatus.DRAFT.value:
        validate_specs(parse_rules(version.rules))
        check_version_transition(version.status, VersionStatus.PENDING_APPROVAL)
        approval = tenancy.park_for_approval(
            uow, tenant_id, requested_by=principal.user_id or principal.actor, actor=principal.actor,
            action=PUBLISH_ACTION, required_role=Role.RISK_ANALYST, object_type="rule_set_version",
            object_id=version.id, payload={"rule_set_id": rule_set.id, "rule_set": rule_set.name,
                                           "number": version.number, "rules": len(version.rules)})
        before = version_snapshot(version)
        version.status = VersionStatus.PENDING_APPROVAL.value
        version.approval_id = approval.id
        uow.session.flush()
        audit.record(uow, tenant_id, actor=principal.actor, action="risk.rule_set_version.publish_requested",
                     object_type="rule_set_version", object_id=version.id, before=before,
                     after=version_snapshot(version))
        return version
    if version.status != VersionStatus.PENDING_APPROVAL.value or version.approval_id is None:
        raise Conflict(f"A {version.status} version cannot be published.", code="invalid_version_state",
                       param="version_id")
    approval = tenancy.get_approval(uow, tenant_id, version.approval_id)
    if approval.status == "rejected":
        before = version_snapshot(version)
        check_version_transition(version.status, VersionStatus.DRAFT)
        version.status = VersionStatus.DRAFT.value
        version.approval_id = None
        uow.session.flush()
        audit.record(uow, tenant_id, actor=principal.actor, action="risk.rule_set_version.publish_rejected",
                     object_type="rule_set_version", object_id=version.id, before=before,
                     after=version_snapshot(version))
        return version
    if not tenancy.is_approved(uow, tenant_id, version.approval_id, PUBLISH_ACTION):
        raise Conflict("The publication waits for another person's approval.", code="approval_pending",
                       param="version_id")
    _make_live(uow, rule_set, version, actor=principal.actor, action="risk.rule_set.published")
    return version


def _make_live(uow: UnitOfWork, rule_set: RuleSet, version: RuleSetVersion, *, actor: str, action: str,
               previous_status: VersionStatus = VersionStatus.RETIRED) -> None:
    now = uow.clock.now()
    before = rule_set_snapshot(rule_set)
    # Compiling first: a version that no longer compiles (a changed context) is refused before any move.
    _compiled_version(uow, version)
    if rule_set.live_version_id is not None:
        live = uow.session.get(RuleSetVersion, rule_set.live_version_id)
        if live is not None:
            check_version_transition(live.status, previous_status)
            live.status = previous_status.value
            live.retired_at = now
            forget_compiled(live.id)
    check_version_transition(version.status, VersionStatus.PUBLISHED)
    version.status = VersionStatus.PUBLISHED.value
    version.retired_at = None
    if version.published_at is None:
        version.published_at = now
        version.published_by = actor[:60]
    rule_set.live_version_id = version.id
    if rule_set.shadow_version_id == version.id:
        rule_set.shadow_version_id = None
    rule_set.updated_at = now
    uow.session.flush()
    audit.record(uow, rule_set.tenant_id, actor=actor, action=action, object_type="rule_set",
                 object_id=rule_set.id, before=before, after=rule_set_snapshot(rule_set))


def rollback(uow: UnitOfWork, tenant_id: str, rule_set_id: str, *, actor: str) -> RuleSet:
    """Re-publish the previous published version; the live one becomes rolled_back."""
    rule_set = get_rule_set(uow, tenant_id, rule_set_id, lock=True)
    if rule_set.live_version_id is None:
        raise Conflict("This rule set has no live version.", code="nothing_to_roll_back", param="rule_set_id")
    previous = uow.session.scalar(select(RuleSetVersion).where(
        RuleSetVersion.tenant_id == tenant_id, RuleSetVersion.rule_set_id == rule_set.id,
        RuleSetVersion.status == VersionStatus.RETIRED.value)
        .order_by(RuleSetVersion.published_at.desc(), RuleSetVersion.number.desc()).limit(1))
    if previous is None:
        raise Conflict("No earlier published version to roll back to.", code="nothing_to_roll_back",
                       param="rule_set_id")
    _make_live(uow, rule_set, previous, actor=actor, action="risk.rule_set.rolled_back",
               previous_status=VersionStatus.ROLLED_BACK)
    return rule_set


def set_shadow(uow: UnitOfWork, tenant_id: str, rule_set_id: str, version_id: str | None, *,
               actor: str) -> RuleSet:
    """Run ``version_id`` beside the live version (its outcomes are recorded, never acted on); None stops it."""
    rule_set = get_rule_set(uow, tenant_id, rule_set_id, lock=True)
    before = rule_set_snapshot(rule_set)
    if version_id is not None:
        version = get_version(uow, tenant_id, rule_set_id, version_id)
        if version.id == rule_set.live_version_id:
            raise Conflict("The live version cannot also be the shadow.", code="version_is_live",
                           param="version_id")
        validate_specs(parse_rules(version.rules))
        _compiled_version(uow, version)
    rule_set.shadow_version_id = version_id
    rule_set.updated_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="risk.rule_set.shadow_set", object_type="rule_set",
                 object_id=rule_set.id, before=before, after=rule_set_snapshot(rule_set))
    return rule_set


# ---------------------------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Decision:
    id: str
    tenant_id: str
    event_type: str
    outcome: Outcome
    score: int
    fired: tuple[FiredRule, ...]
    reasons: tuple[dict[str, str], ...]
    features: dict[str, int]
    lists: tuple[str, ...]
    model_scores: dict[str, int]
    model_versions: dict[str, str]
    rule_set_id: str | None
    rule_set_version_id: str | None
    shadow_version_id: str | None
    shadow_outcome: Outcome | None
    shadow_score: int | None
    shadow_fired: tuple[FiredRule, ...]
    object_ref: str | None
    label: str | None
    event: dict[str, Any]
    decided_at: datetime

    @property
    def approved(self) -> bool:
        return self.outcome is Outcome.APPROVE


def _fired(raw: Sequence[Mapping[str, Any]]) -> tuple[FiredRule, ...]:
    return tuple(FiredRule(f["rule_id"], f["score"], Outcome(f["outcome"]) if f.get("outcome") else None)
                 for f in raw)


def read_decision(row: RiskDecision) -> Decision:
    return Decision(
        id=row.id, tenant_id=row.tenant_id, event_type=row.event_type, outcome=Outcome(row.outcome), score=row.score,
        fired=_fired(row.fired), reasons=tuple(row.reasons), features=dict(row.features), lists=tuple(row.lists),
        model_scores=dict(row.model_scores), model_versions=dict(row.model_versions), rule_set_id=row.rule_set_id,
        rule_set_version_id=row.rule_set_version_id, shadow_version_id=row.shadow_version_id,
        shadow_outcome=Outcome(row.shadow_outcome) if row.shadow_outcome else None, shadow_score=row.shadow_score,
        shadow_fired=_fired(row.shadow_fired), object_ref=row.object_ref, label=row.label, event=dict(row.event),
        decided_at=row.decided_at)


def check_event(event: Any) -> dict[str, Any]:
    """An event is a JSON object of up to 64 keys, nested at most 3 deep, holding strings (≤ 500
    characters), 64-bit integers, booleans, null and lists of those; no floats (amounts are minor units)."""
    def plain(value: Any, depth: int) -> bool:
        if depth > MAX_EVENT_DEPTH:
            return False
        if isinstance(value, Mapping):
            return len(value) <= MAX_EVENT_KEYS and all(
                isinstance(k, str) and 0 < len(k) <= 64 and "\x00" not in k and plain(v, depth + 1)
                for k, v in value.items())
        if isinstance(value, list):
            return len(value) <= MAX_EVENT_KEYS and all(plain(item, depth + 1) for item in value)
        if isinstance(value, str):
            return len(value) <= MAX_EVENT_STRING and "\x00" not in value
        if isinstance(value, int) and not isinstance(value, bool):
            return -INT64 <= value < INT64
        return value is None or isinstance(value, bool)

    if not isinstance(event, Mapping) or not plain(event, 1):
        raise InvalidRequest("The event is a JSON object of up to 64 keys, nested at most 3 deep, of strings (up to "
                             "500 characters), 64-bit integers, booleans and null; amounts are integers of minor "
                             "units, never floats.", code="invalid_event", param="event")
    return dict(event)


def _section(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def context_values(event_type: str, event: Mapping[str, Any], *, at: datetime, features: Mapping[str, int],
                   lists: Sequence[str], model: Mapping[str, int]) -> dict[str, Any]:
    """The values of the declared context: ``event`` is the event's own fields (plus its type and, unless
    given, the hour of ``at``), ``customer`` and ``device`` its nested objects (``device.id`` defaults to
    ``device_id``)."""
    event_section = {**event, "type": event_type}
    event_section.setdefault("hour", at.hour)
    device = dict(_section(event.get("device")))
    if "id" not in device and isinstance(event.get("device_id"), str):
        device["id"] = event["device_id"]
    return {"event": event_section, "customer": _section(event.get("customer")), "device": device,
            "features": features, "lists": list(lists), "model": model}


def _rule_set_for(uow: UnitOfWork, tenant_id: str, event_type: str) -> tuple[str | None, str | None, str | None]:
    """(rule set id, live version id, shadow version id) of the rule set deciding ``event_type``."""
    rows = uow.session.execute(select(RuleSet.id, RuleSet.event_types, RuleSet.live_version_id,
                                      RuleSet.shadow_version_id).where(RuleSet.tenant_id == tenant_id)).all()
    fallback = None
    for rule_set_id, types, live, shadow in rows:
        if event_type in types:
            return rule_set_id, live, shadow
        if not types:
            fallback = (rule_set_id, live, shadow)
    return fallback or (None, None, None)


def decide(uow: UnitOfWork, tenant_id: str, *, event_type: str, event: Mapping[str, Any],
           at: datetime | None = None, object_ref: str | None = None) -> Decision:
    """Decide one event: approve, review or decline, stored with everything that explains it.

    The velocity features are read as of ``at`` (default: now) before this event is counted, then the event
    is counted, all in the caller's transaction. Bad input raises ``InvalidRequest`` before anything is
    written."""
    event_type = check_event_type(event_type)
    event = check_event(event)
    if object_ref is not None and (not isinstance(object_ref, str) or not 0 < len(object_ref) <= 100
                                   or "\x00" in object_ref):
        raise InvalidRequest("object_ref is 1-100 characters.", code="invalid_object_ref", param="object_ref")
    at = at or uow.clock.now()
    velocity_event = {**event, "type": event_type}
    member = risk_lists.memberships(uow, tenant_id, event, at=at)
    features = velocity.features(uow, tenant_id, velocity_event, at=at)
    # A black-listed customer is a known fraud of its component from this decision on.
    features.update(network.observe(uow, tenant_id, event, at=at,
                                    mark="list" if "black:customer" in member.lists else None))
    scored = risk_ml.score(uow, tenant_id, features=features, event=event)
    model_scores: dict[str, int] = scored.scores
    context = risk_rules.make_context(context_values(event_type, event, at=at, features=features,
                                                     lists=member.lists, model=model_scores))
    rule_set_id, live_id, shadow_id = _rule_set_for(uow, tenant_id, event_type)
    if live_id is not None:
        result = evaluate(_compiled_version(uow, live_id), context, event_type=event_type, black=member.black,
                          bypass=member.bypass)
    else:
        result = evaluate(_EMPTY_VERSION, context, event_type=event_type, black=member.black, bypass=member.bypass)
    shadow = None
    if shadow_id is not None:
        shadow = evaluate(_compiled_version(uow, shadow_id), context, event_type=event_type, black=member.black,
                          bypass=member.bypass)
    row = RiskDecision(
        id=uow.ids.new("risk_decision"), tenant_id=tenant_id, event_type=event_type, event=mask_event(event),
        features=features, lists=list(member.lists), bypassed=sorted(member.bypass), model_scores=model_scores,
        fired=[f.to_json() for f in result.fired], score=result.score, outcome=result.outcome.value,
        reasons=list(result.reasons), rule_set_id=rule_set_id, rule_set_version_id=live_id,
        model_versions=dict(scored.versions),
        shadow_version_id=shadow_id, shadow_outcome=shadow.outcome.value if shadow else None,
        shadow_score=shadow.score if shadow else None, shadow_fired=[f.to_json() for f in shadow.fired] if shadow
        else [], object_ref=object_ref, label=None, labelled_at=None, decided_at=at)
    uow.session.add(row)
    velocity.record(uow, tenant_id, velocity_event, at=at)
    uow.session.flush()
    return read_decision(row)


_EMPTY_VERSION = CompiledVersion(version_id="", by_event_type={}, thresholds={}, descriptions={}, rule_ids=())


def get_decision(uow: UnitOfWork, tenant_id: str, decision_id: str) -> RiskDecision:
    row = uow.session.scalar(select(RiskDecision).where(RiskDecision.tenant_id == tenant_id,
                                                        RiskDecision.id == decision_id))
    if row is None:
        raise NotFound(f"No such decision: {decision_id}.", code="decision_not_found", param="decision_id")
    return row


def list_decisions(uow: UnitOfWork, tenant_id: str, *, event_type: str | None = None, outcome: str | None = None,
                   object_ref: str | None = None, after: str | None = None, limit: int = 50) -> list[RiskDecision]:
    query = select(RiskDecision).where(RiskDecision.tenant_id == tenant_id)
    if event_type:
        query = query.where(RiskDecision.event_type == event_type)
    if outcome:
        query = query.where(RiskDecision.outcome == outcome)
    if object_ref:
        query = query.where(RiskDecision.object_ref == object_ref)
    if after:
        query = query.where(RiskDecision.id > after)
    return list(uow.session.scalars(query.order_by(RiskDecision.id).limit(limit)))


def label_decision(uow: UnitOfWork, tenant_id: str, decision_id: str, label: str | None, *,
                   actor: str) -> RiskDecision:
    """Record what became of the decided object (fraud confirmed, refunded, disputed, succeeded; None clears)."""
    if label is not None and label not in {lab.value for lab in Label}:
        raise InvalidRequest(f"label is one of {', '.join(Label)}.", code="invalid_label", param="label")
    row = get_decision(uow, tenant_id, decision_id)
    before = {"label": row.label}
    network.label_changed(uow, tenant_id, row.id, row.event, row.label, label)
    row.label = label
    row.labelled_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="risk.decision.labelled", object_type="risk_decision",
                 object_id=row.id, before=before, after={"label": label})
    return row


# ---------------------------------------------------------------------------------------------- backtests


def backtest(uow: UnitOfWork, tenant_id: str, rule_set_id: str, version_id: str, *, from_at: datetime,
             to_at: datetime) -> dict[str, Any]:
    """Replay the stored events of ``[from_at, to_at)`` that this rule set decides against a version, each with
    its stored features and list memberships (as they were at the event's time), every rule evaluated (no
    stop at a forced decline): per rule and overall hits, known outcomes, interception and false positive
    rates (see ``BacktestFigures``)."""
    rule_set = get_rule_set(uow, tenant_id, rule_set_id)
    version = get_version(uow, tenant_id, rule_set_id, version_id)
    if from_at >= to_at or to_at - from_at > timedelta(days=MAX_BACKTEST_DAYS):
        raise InvalidRequest(f"from is before to, at most {MAX_BACKTEST_DAYS} days apart.", code="invalid_range",
                             param="from")
    validate_specs(parse_rules(version.rules))
    compiled = _compiled_version(uow, version)
    query = select(RiskDecision.event_type, RiskDecision.event, RiskDecision.features, RiskDecision.lists,
                   RiskDecision.bypassed, RiskDecision.model_scores, RiskDecision.label,
                   RiskDecision.decided_at).where(
        RiskDecision.tenant_id == tenant_id, RiskDecision.decided_at >= from_at, RiskDecision.decided_at < to_at)
    if rule_set.event_types:
        query = query.where(RiskDecision.event_type.in_(rule_set.event_types))
    figures = BacktestFigures()
    result = uow.session.execute(query.order_by(RiskDecision.decided_at, RiskDecision.id)
                                 .limit(MAX_BACKTEST_EVENTS + 1).execution_options(yield_per=1000))
    for event_type, event, features, memberships, bypassed, model, label, decided_at in result:
        if figures.events >= MAX_BACKTEST_EVENTS:
            raise InvalidRequest(f"The range holds more than {MAX_BACKTEST_EVENTS} events: narrow it.",
                                 code="range_too_large", param="to")
        if event_type not in EVENT_TYPES:
            continue
        context = risk_rules.make_context(context_values(event_type, event, at=decided_at, features=features,
                                                         lists=memberships, model=model))
        black = any(m.startswith("black:") for m in memberships)
        figures.add(evaluate(compiled, context, event_type=event_type, black=black, bypass=frozenset(bypassed),
                             stop_on_decline=False), label)
    rule_ids = ([BLACKLIST_RULE] if BLACKLIST_RULE in figures.rules else []) + list(compiled.rule_ids)
    return {"rule_set_id": rule_set.id, "version_id": version.id, "number": version.number,
            "from": from_at.isoformat(), "to": to_at.isoformat(), **figures.to_json(rule_ids)}
