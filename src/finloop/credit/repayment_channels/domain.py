"""Repayment channel rules as pure code: statuses, the direct debit retry policy and when the next attempt may
run. No I/O.

Invariants owned here:
- a direct debit attempt moves pending → processing → succeeded | failed (pending may fail or succeed at once);
  a finished attempt never moves again, so an answer applied twice changes nothing;
- within one due date there are at most ``max_attempts`` attempts; attempt ``n + 1`` may run only once attempt
  ``n`` failed and ``retry_offsets_hours[n - 1]`` hours have passed since the first attempt; a succeeded
  attempt ends the due date's run (the money taken is never asked for again);
- a repayment payment moves pending → applied | unapplied | failed, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from finloop.core.errors import InvalidRequest


class LinkStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    UNAPPLIED = "unapplied"
    FAILED = "failed"


class DebitStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


OPEN_DEBIT_STATUSES = (DebitStatus.PENDING.value, DebitStatus.PROCESSING.value)

DEBIT_TRANSITIONS: dict[DebitStatus, frozenset[DebitStatus]] = {
    DebitStatus.PENDING: frozenset({DebitStatus.PROCESSING, DebitStatus.SUCCEEDED, DebitStatus.FAILED}),
    DebitStatus.PROCESSING: frozenset({DebitStatus.SUCCEEDED, DebitStatus.FAILED}),
    DebitStatus.SUCCEEDED: frozenset(),
    DebitStatus.FAILED: frozenset(),
}


def can_move_debit(current: str, target: DebitStatus) -> bool:
    return target in DEBIT_TRANSITIONS[DebitStatus(current)]


class MandateStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


#: Payments' final statuses and what they mean for the money of a repayment payment.
PAYMENT_SUCCEEDED = "succeeded"
PAYMENT_FAILED = ("failed", "canceled")

MAX_ATTEMPTS_CAP = 10
MAX_OFFSET_HOURS = 24 * 30


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts per due date and the hours after the first attempt at which each retry may run."""

    enabled: bool = True
    max_attempts: int = 4
    #: Same day (+4 h), the next day, three days later.
    retry_offsets_hours: Sequence[int] = field(default=(4, 24, 72))

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "max_attempts": self.max_attempts,
                "retry_offsets_hours": list(self.retry_offsets_hours)}


DEFAULT_POLICY = RetryPolicy()


def check_policy(data: Mapping[str, Any]) -> RetryPolicy:
    """A policy from request data: missing fields keep the defaults; every error names its field."""
    enabled = data.get("enabled", DEFAULT_POLICY.enabled)
    if not isinstance(enabled, bool):
        raise InvalidRequest("enabled is true or false.", code="invalid_policy", param="enabled")
    attempts = data.get("max_attempts", DEFAULT_POLICY.max_attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS_CAP:
        raise InvalidRequest(f"max_attempts is a whole number from 1 to {MAX_ATTEMPTS_CAP}.",
                             code="invalid_max_attempts", param="max_attempts")
    offsets = data.get("retry_offsets_hours", list(DEFAULT_POLICY.retry_offsets_hours)[:attempts - 1])
    if not isinstance(offsets, list | tuple) or any(isinstance(h, bool) or not isinstance(h, int) for h in offsets):
        raise InvalidRequest("retry_offsets_hours is a list of whole hours.", code="invalid_retry_offsets",
                             param="retry_offsets_hours")
    if len(offsets) != attempts - 1:
        raise InvalidRequest("retry_offsets_hours gives one offset per retry (max_attempts - 1 of them).",
                             code="invalid_retry_offsets", param="retry_offsets_hours")
    if any(not 1 <= h <= MAX_OFFSET_HOURS for h in offsets) or list(offsets) != sorted(set(offsets)):
        raise InvalidRequest(f"Offsets rise strictly, each from 1 to {MAX_OFFSET_HOURS} hours after the first attempt.",
                             code="invalid_retry_offsets", param="retry_offsets_hours")
    return RetryPolicy(enabled, attempts, tuple(offsets))


def next_retry_at(policy: RetryPolicy, *, attempt_number: int, cycle_started_at: datetime,
                  failed_at: datetime) -> datetime | None:
    """When attempt ``attempt_number + 1`` may run after attempt ``attempt_number`` failed at ``failed_at``;
    None when the policy allows no more. Never before the failure itself."""
    if attempt_number >= policy.max_attempts or attempt_number - 1 >= len(policy.retry_offsets_hours):
        return None
    planned = cycle_started_at + timedelta(hours=policy.retry_offsets_hours[attempt_number - 1])
    return max(planned, failed_at)


def debit_amount(due: int, max_amount: int | None) -> int:
    """What one debit asks for: the amount due, capped by the mandate."""
    if due <= 0:
        return 0
    return due if max_amount is None else min(due, max_amount)


def mandate_scope_key(applicant_id: str, loan_id: str | None) -> str:
    return f"{applicant_id}:{loan_id or '*'}"
