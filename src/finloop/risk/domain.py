"""Pure pieces of the decision engine: rule specs, thresholds, outcomes, masking, backtest figures.

Nothing here touches the database. A *rule spec* is what an analyst writes (stable id, description,
expression, score or forced outcome, event types); the service compiles specs with
``finloop.risk.rules.compile_rule`` and evaluates them cheap-first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from finloop.core.errors import InvalidRequest


class Outcome(StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


#: Severity order: the most severe forced outcome wins.
SEVERITY = {Outcome.APPROVE: 0, Outcome.REVIEW: 1, Outcome.DECLINE: 2}


class Label(StrEnum):
    FRAUD_CONFIRMED = "fraud_confirmed"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    SUCCEEDED = "succeeded"


EVENT_TYPES = ("payment", "refund", "withdrawal", "payout", "registration", "login", "loan_application")
ANY_EVENT = "*"
MAX_RULES = 500
MAX_SCORE = 1_000_000
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
MAX_EXPRESSION = 4000
MAX_DESCRIPTION = 500
#: The built-in rule a black-list hit fires; a white entry naming it (or "*") bypasses it.
BLACKLIST_RULE = "builtin.blacklist"
#: Used when a version names no thresholds for an event type: review at 1, decline at 20.
DEFAULT_THRESHOLDS = {"review": 1, "decline": 20}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    description: str
    expression: str
    score: int = 0
    outcome: Outcome | None = None
    event_types: tuple[str, ...] = ()

    def applies_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "expression": self.expression,
                "score": self.score, "outcome": self.outcome.value if self.outcome else None,
                "event_types": list(self.event_types)}


@dataclass(frozen=True, slots=True)
class Thresholds:
    review: int
    decline: int

    def outcome(self, score: int) -> Outcome:
        if score >= self.decline:
            return Outcome.DECLINE
        if score >= self.review:
            return Outcome.REVIEW
        return Outcome.APPROVE


def _bad(message: str, param: str, code: str = "invalid_rule_set") -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)


def check_event_type(value: Any, *, param: str = "event_type", allow_any: bool = False) -> str:
    if allow_any and value == ANY_EVENT:
        return ANY_EVENT
    if not isinstance(value, str) or value not in EVENT_TYPES:
        raise _bad(f"The event type is one of {', '.join(EVENT_TYPES)}.", param, "invalid_event_type")
    return value


def _int(value: Any, param: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"{param} is an integer from {low} to {high}.", param)
    return value


def parse_rule(raw: Any, index: int) -> RuleSpec:
    """One rule spec, its structure checked (the expression is checked by ``rules.check``)."""
    where = f"rules[{index}]"
    if not isinstance(raw, Mapping):
        raise _bad(f"{where} is an object.", where)
    unknown = sorted(set(raw) - {"id", "description", "expression", "score", "outcome", "event_types"})
    if unknown:
        raise _bad(f"{where} has an unknown field: {unknown[0]}.", f"{where}.{unknown[0]}")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.match(rule_id) or rule_id.startswith("builtin."):
        raise _bad(f"{where}.id is 1-64 characters of a-z, 0-9, '_', '.', '-' (not 'builtin.').", f"{where}.id")
    description = raw.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION or "\x00" in description:
        raise _bad(f"{where}.description is text of up to {MAX_DESCRIPTION} characters.", f"{where}.description")
    expression = raw.get("expression")
    if not isinstance(expression, str) or not expression.strip() or len(expression) > MAX_EXPRESSION \
            or "\x00" in expression:
        raise _bad(f"{where}.expression is a CEL expression of up to {MAX_EXPRESSION} characters.",
                   f"{where}.expression")
    score = _int(raw.get("score", 0), f"{where}.score", low=-MAX_SCORE, high=MAX_SCORE)
    outcome_raw = raw.get("outcome")
    outcome: Outcome | None = None
    if outcome_raw is not None:
        if outcome_raw not in (Outcome.REVIEW.value, Outcome.DECLINE.value):
            raise _bad(f"{where}.outcome forces 'review' or 'decline' (or is null).", f"{where}.outcome")
        outcome = Outcome(outcome_raw)
    types_raw = raw.get("event_types", [])
    if not isinstance(types_raw, list) or len(types_raw) > len(EVENT_TYPES):
        raise _bad(f"{where}.event_types is a list of event types (empty: all).", f"{where}.event_types")
    types = tuple(sorted({check_event_type(t, param=f"{where}.event_types") for t in types_raw}))
    if score == 0 and outcome is None:
        raise _bad(f"{where} needs a score or a forced outcome.", f"{where}.score")
    return RuleSpec(id=rule_id, description=description, expression=expression, score=score, outcome=outcome,
                    event_types=types)


def parse_rules(raw: Any) -> list[RuleSpec]:
    if not isinstance(raw, list) or len(raw) > MAX_RULES:
        raise _bad(f"rules is a list of up to {MAX_RULES} rules.", "rules")
    specs = [parse_rule(item, i) for i, item in enumerate(raw)]
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.id in seen:
            raise _bad(f"Rule id {spec.id} appears twice.", f"rules[{i}].id", "duplicate_rule_id")
        seen.add(spec.id)
    return specs


def parse_thresholds(raw: Any) -> dict[str, Thresholds]:
    """``{event type or "*": {"review": int, "decline": int}}`` with 1 ≤ review ≤ decline."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or len(raw) > len(EVENT_TYPES) + 1:
        raise _bad("thresholds maps event types (or '*') to {review, decline}.", "thresholds")
    out: dict[str, Thresholds] = {}
    for key, value in raw.items():
        event_type = check_event_type(key, param=f"thresholds.{key}"[:100], allow_any=True)
        param = f"thresholds.{event_type}"
        if not isinstance(value, Mapping) or set(value) != {"review", "decline"}:
            raise _bad(f"{param} is {{review, decline}}.", param)
        review = _int(value["review"], f"{param}.review", low=1, high=MAX_SCORE)
        decline = _int(value["decline"], f"{param}.decline", low=1, high=MAX_SCORE)
        if review > decline:
            raise _bad(f"{param}: review may not be above decline.", f"{param}.review")
        out[event_type] = Thresholds(review=review, decline=decline)
    return out


def thresholds_json(thresholds: Mapping[str, Thresholds]) -> dict[str, dict[str, int]]:
    return {k: {"review": t.review, "decline": t.decline} for k, t in sorted(thresholds.items())}


def thresholds_for(thresholds: Mapping[str, Thresholds], event_type: str) -> Thresholds:
    found = thresholds.get(event_type) or thresholds.get(ANY_EVENT)
    return found or Thresholds(**DEFAULT_THRESHOLDS)


@dataclass(frozen=True, slots=True)
class FiredRule:
    rule_id: str
    score: int
    outcome: Outcome | None

    def to_json(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "score": self.score,
                "outcome": self.outcome.value if self.outcome else None}


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    score: int
    fired: tuple[FiredRule, ...]
    reasons: tuple[dict[str, str], ...]


def verdict(fired: Sequence[FiredRule], thresholds: Thresholds, descriptions: Mapping[str, str]) -> Verdict:
    """The outcome of the rules that fired: the most severe forced outcome wins; otherwise the summed
    score against the event type's thresholds. Reasons: the forcing rules, else the scoring rules that
    fired, highest score first."""
    score = sum(f.score for f in fired)
    by_score = thresholds.outcome(score)
    forced = [(f, f.outcome) for f in fired if f.outcome is not None]
    strongest = max((outcome for _, outcome in forced), key=SEVERITY.__getitem__, default=Outcome.APPROVE)
    if forced and SEVERITY[strongest] >= SEVERITY[by_score]:
        outcome = strongest
        drivers = [f for f, forced_outcome in forced if forced_outcome is strongest]
    else:
        outcome = by_score
        drivers = sorted((f for f in fired if f.score > 0), key=lambda f: (-f.score, f.rule_id))
    reasons = tuple({"rule_id": f.rule_id, "description": descriptions.get(f.rule_id, "")} for f in drivers) \
        if outcome is not Outcome.APPROVE else ()
    return Verdict(outcome=outcome, score=score, fired=tuple(fired), reasons=reasons)


# ---------------------------------------------------------------------------------------------- masking

#: Event fields that are personal: stored masked, never in clear.
PERSONAL_FIELDS = frozenset({"phone", "email", "payout_account", "name", "national_id", "card_number",
                             "address", "bank_account"})


def mask(value: str, *, keep: int = 4) -> str:
    """``"****1234"``: only the last ``keep`` characters survive (none for values of 6 characters or fewer)."""
    text = str(value)
    if len(text) <= 6:
        return "****"
    return "****" + text[-keep:]


def mask_email(value: str) -> str:
    local, at, domain = str(value).partition("@")
    if not at:
        return mask(value)
    return (local[:1] + "***@" + domain)[:200]


def mask_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the event with personal fields masked (recursively in nested objects)."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in PERSONAL_FIELDS and value is not None:
            out[key] = mask_email(value) if key == "email" else mask(str(value))
        elif isinstance(value, Mapping):
            out[key] = mask_event(value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------- backtests

RATE_PLACES = Decimal("0.0001")


def rate(numerator: int, denominator: int) -> str | None:
    """A ratio as a decimal string of 4 places, rounded half-even (the named rule for rates here);
    None when the denominator is 0."""
    if denominator == 0:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN))


def _label_counts() -> dict[str, int]:
    return {**{label.value: 0 for label in Label}, "unlabelled": 0}


@dataclass
class RuleFigures:
    rule_id: str
    hits: int = 0
    labels: dict[str, int] = field(default_factory=_label_counts)

    def to_json(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "hits": self.hits, "labels": dict(self.labels)}


@dataclass
class BacktestFigures:
    """Per rule and overall. Fraud = label ``fraud_confirmed``; every other event (labelled refunded,
    disputed, succeeded, or unlabelled) is non-fraud. Interception rate = fraud reviewed or declined /
    fraud; false positive rate = non-fraud reviewed or declined / non-fraud."""

    events: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {o.value: 0 for o in Outcome})
    labels: dict[str, int] = field(default_factory=_label_counts)
    fraud: int = 0
    fraud_caught: int = 0
    non_fraud: int = 0
    non_fraud_flagged: int = 0
    rules: dict[str, RuleFigures] = field(default_factory=dict)

    def add(self, verdict: Verdict, label: str | None) -> None:
        key = label or "unlabelled"
        self.events += 1
        self.outcomes[verdict.outcome.value] += 1
        self.labels[key] += 1
        flagged = verdict.outcome is not Outcome.APPROVE
        if label == Label.FRAUD_CONFIRMED.value:
            self.fraud += 1
            self.fraud_caught += flagged
        else:
            self.non_fraud += 1
            self.non_fraud_flagged += flagged
        for fired in verdict.fired:
            figures = self.rules.setdefault(fired.rule_id, RuleFigures(fired.rule_id))
            figures.hits += 1
            figures.labels[key] += 1

    def to_json(self, rule_ids: Iterable[str]) -> dict[str, Any]:
        per_rule = [self.rules.get(rule_id, RuleFigures(rule_id)).to_json() for rule_id in rule_ids]
        return {"events": self.events, "outcomes": dict(self.outcomes), "labels": dict(self.labels),
                "fraud": self.fraud, "fraud_caught": self.fraud_caught, "non_fraud": self.non_fraud,
                "non_fraud_flagged": self.non_fraud_flagged,
                "interception_rate": rate(self.fraud_caught, self.fraud),
                "false_positive_rate": rate(self.non_fraud_flagged, self.non_fraud), "rules": per_rule}


def hour_of(at: datetime) -> int:
    return at.hour
