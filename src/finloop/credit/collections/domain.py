"""Collections rules as pure code: the strategy per bucket, which actions fall due over a range of days past
due, case transitions, the evaluation of a promise to pay, the reminder windows and the bureau status code.
No I/O.

Invariants owned here:
- a strategy names, for each past-due bucket M1..M4, the days past due on which an SMS goes out, the interval of
  repeated SMS and calls counted from the bucket's first day, and whether the bucket escalates to the manual
  queue; every day named lies inside its bucket, and an interval is 1 to 90 days;
- ``due_actions`` over ``(after, through]`` is the union of the actions of each day in it, each day judged by its
  own bucket's rule: splitting a range never adds nor loses an action, so a job that skips a weekend still sends
  what fell due on it (once: at most one action of a kind per case and run);
- a case moves only along ``CASE_TRANSITIONS``: open → cured or written_off; a closed case never reopens (a new
  delinquency opens a new case);
- a promise is kept once what was repaid since it was made reaches its amount by its date, broken once its date
  has passed without that, pending before; kept and broken are final;
- the reminder windows of consecutive runs (business date ``d``, next business date ``n``) partition the days:
  ``(d, n]`` for the due-day reminder and ``(d + 3, n + 3]`` for the three-days-before one, so each installment
  gets each reminder once when the job runs every business day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from finloop.core.errors import Conflict, InvalidRequest
from finloop.credit.servicing.domain import BUCKET_BOUNDS, AccountState, Bucket, bucket_for

PAST_DUE_BUCKETS = (Bucket.M1, Bucket.M2, Bucket.M3, Bucket.M4)
#: The last day past due a rule of M4 may name (M4 has no upper bound of its own).
MAX_DPD = 720
MAX_INTERVAL = 90
#: A promise may be made for a date at most this many days ahead.
MAX_PROMISE_DAYS = 60
REMIND_DAYS_BEFORE = 3


class CaseStatus(StrEnum):
    OPEN = "open"
    CURED = "cured"
    WRITTEN_OFF = "written_off"


CASE_TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.CURED, CaseStatus.WRITTEN_OFF}),
    CaseStatus.CURED: frozenset(),
    CaseStatus.WRITTEN_OFF: frozenset(),
}


def check_case_transition(current: str, target: CaseStatus) -> None:
    if target not in CASE_TRANSITIONS[CaseStatus(current)]:
        raise Conflict(f"A collection case that is {current} cannot become {target.value}.",
                       code="case_not_open", param="case_id")


class Queue(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class ActionKind(StrEnum):
    SMS = "sms"
    CALL = "call"
    ESCALATE = "escalate"


class ActionStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    DONE = "done"


class PromiseStatus(StrEnum):
    PENDING = "pending"
    KEPT = "kept"
    BROKEN = "broken"
    CANCELLED = "cancelled"


class ReminderKind(StrEnum):
    UPCOMING = "upcoming"
    DUE = "due"


# ---------------------------------------------------------------------------------------------- strategy


@dataclass(frozen=True, slots=True)
class BucketRule:
    sms_on_dpd: tuple[int, ...] = ()
    sms_every_days: int | None = None
    call_every_days: int | None = None
    escalate: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"sms_on_dpd": list(self.sms_on_dpd), "sms_every_days": self.sms_every_days,
                "call_every_days": self.call_every_days, "escalate": self.escalate}


@dataclass(frozen=True, slots=True)
class Strategy:
    rules: Mapping[str, BucketRule] = field(default_factory=dict)

    def rule(self, bucket: str) -> BucketRule:
        return self.rules.get(bucket, BucketRule())

    def to_json(self) -> dict[str, Any]:
        return {bucket.value: self.rule(bucket.value).to_json() for bucket in PAST_DUE_BUCKETS}


def bucket_range(bucket: Bucket) -> tuple[int, int]:
    """The first and last day past due of a past-due bucket (M4 up to ``MAX_DPD``)."""
    lower = 0
    for name, upper in BUCKET_BOUNDS:
        if name is bucket:
            return lower + 1 if bucket is not Bucket.M0 else 0, upper
        lower = upper
    return lower + 1, MAX_DPD


def _interval(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INTERVAL:
        raise InvalidRequest(f"{param} is a whole number of days from 1 to {MAX_INTERVAL}, or null.",
                             code="invalid_strategy", param=param)
    return value


def _rule(bucket: Bucket, data: Any, param: str) -> BucketRule:
    if not isinstance(data, Mapping):
        raise InvalidRequest(f"{param} is an object of sms_on_dpd, sms_every_days, call_every_days, escalate.",
                             code="invalid_strategy", param=param)
    unknown = sorted(set(data) - {"sms_on_dpd", "sms_every_days", "call_every_days", "escalate"})
    if unknown:
        raise InvalidRequest(f"{param} has no field {unknown[0][:40]!r}.", code="invalid_strategy",
                             param=f"{param}.{unknown[0][:40]}")
    first, last = bucket_range(bucket)
    days = data.get("sms_on_dpd", [])
    if not isinstance(days, list) or len(days) > 31:
        raise InvalidRequest(f"{param}.sms_on_dpd is a list of at most 31 days.", code="invalid_strategy",
                             param=f"{param}.sms_on_dpd")
    for day in days:
        if isinstance(day, bool) or not isinstance(day, int) or not first <= day <= last:
            raise InvalidRequest(f"{param}.sms_on_dpd names days past due from {first} to {last} ({bucket.value}).",
                                 code="invalid_strategy", param=f"{param}.sms_on_dpd")
    escalate = data.get("escalate", False)
    if not isinstance(escalate, bool):
        raise InvalidRequest(f"{param}.escalate is true or false.", code="invalid_strategy",
                             param=f"{param}.escalate")
    return BucketRule(tuple(sorted(set(days))), _interval(data.get("sms_every_days"), f"{param}.sms_every_days"),
                      _interval(data.get("call_every_days"), f"{param}.call_every_days"), escalate)


def check_strategy(data: Mapping[str, Any]) -> Strategy:
    """A strategy from its JSON: one rule for each of M1..M4 (a bucket left out gets no action)."""
    if not isinstance(data, Mapping):
        raise InvalidRequest("The strategy is an object with a rule per bucket M1..M4.", code="invalid_strategy",
                             param="rules")
    unknown = sorted(set(data) - {b.value for b in PAST_DUE_BUCKETS})
    if unknown:
        raise InvalidRequest("The strategy has rules for buckets M1, M2, M3 and M4 only.", code="invalid_strategy",
                             param=f"rules.{unknown[0][:40]}")
    return Strategy({b.value: _rule(b, data[b.value], f"rules.{b.value}") for b in PAST_DUE_BUCKETS
                     if b.value in data})


#: The defaults: reminders by SMS in M1, calls every week (and two SMS) in M2, a person from M3 on.
DEFAULT_STRATEGY = check_strategy({
    "M1": {"sms_on_dpd": [1, 7, 15, 25]},
    "M2": {"sms_on_dpd": [31, 45], "call_every_days": 7},
    "M3": {"escalate": True},
    "M4": {"escalate": True},
})


def actions_on(strategy: Strategy, dpd: int) -> frozenset[ActionKind]:
    """What the strategy does on one day past due (nothing at 0)."""
    if dpd <= 0:
        return frozenset()
    bucket = bucket_for(dpd)
    rule = strategy.rule(bucket.value)
    first, _ = bucket_range(bucket)
    since = dpd - first
    found: set[ActionKind] = set()
    if dpd in rule.sms_on_dpd or (rule.sms_every_days and since % rule.sms_every_days == 0):
        found.add(ActionKind.SMS)
    if rule.call_every_days and since % rule.call_every_days == 0:
        found.add(ActionKind.CALL)
    if rule.escalate:
        found.add(ActionKind.ESCALATE)
    return frozenset(found)


def due_actions(strategy: Strategy, after: int, through: int) -> frozenset[ActionKind]:
    """The actions of every day past due in ``(after, through]`` (see the module's doc)."""
    found: set[ActionKind] = set()
    # Escalation holds for a whole bucket; the other actions are sparse, so the range is walked day by day
    # but never further than one bucket schedule needs (a case left alone for years still costs MAX_DPD steps).
    for dpd in range(max(after, 0) + 1, min(through, MAX_DPD) + 1):
        found |= actions_on(strategy, dpd)
    if through > MAX_DPD and after < through:
        found |= actions_on(strategy, through)
    return frozenset(found)


# ---------------------------------------------------------------------------------------------- promises


def check_promise(amount: Any, promised_on: Any, today: date) -> tuple[int, date]:
    from finloop.core.money import MAX_AMOUNT

    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT:
        raise InvalidRequest("amount is a whole number of minor units, at least 1.", code="invalid_amount",
                             param="amount")
    if not isinstance(promised_on, date):
        raise InvalidRequest("promised_on is a date (YYYY-MM-DD).", code="invalid_promise_date",
                             param="promised_on")
    if not today <= promised_on <= today + timedelta(days=MAX_PROMISE_DAYS):
        raise InvalidRequest(f"promised_on lies between today ({today.isoformat()}) and {MAX_PROMISE_DAYS} days "
                             "ahead.", code="invalid_promise_date", param="promised_on")
    return amount, promised_on


def evaluate_promise(amount: int, promised_on: date, paid_since: int, today: date) -> PromiseStatus:
    """A promise's standing on ``today``, given what was repaid since it was made up to its date."""
    if paid_since >= amount:
        return PromiseStatus.KEPT
    if today > promised_on:
        return PromiseStatus.BROKEN
    return PromiseStatus.PENDING


# ---------------------------------------------------------------------------------------------- reminders


def reminder_window(kind: ReminderKind, business_date: date, next_business_date: date) -> tuple[date, date]:
    """The due dates (first, last inclusive) a run for ``business_date`` reminds of (see the module's doc)."""
    ahead = timedelta(days=REMIND_DAYS_BEFORE if kind is ReminderKind.UPCOMING else 0)
    return business_date + timedelta(days=1) + ahead, next_business_date + ahead


# ---------------------------------------------------------------------------------------------- bureau


BUREAU_LAYOUT_VERSION = "FL-CB-1"


def bureau_status(state: str, bucket: str) -> str:
    """The account status code of the bureau file: C paid off, W written off, else 0-4 by bucket."""
    if state == AccountState.PAID_OFF.value:
        return "C"
    if state == AccountState.WRITTEN_OFF.value:
        return "W"
    return str(Bucket(bucket).value[1])


def check_cycle(value: Any) -> str:
    import re

    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise InvalidRequest("cycle is a month, YYYY-MM.", code="invalid_cycle", param="cycle")
    return value


def cycle_bounds(cycle: str) -> tuple[date, date]:
    year, month = int(cycle[:4]), int(cycle[5:])
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, following - timedelta(days=1)
