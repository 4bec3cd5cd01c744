"""The onboarding profile state machine: every legal move is in the table, anything else is a 409.

    pending ──submit──▶ verifying ──▶ approved ──periodic review──▶ review_due
       ▲                  │  │  ▲        │  ▲                          │  │
       │                  │  │  │        │  └──── case approves ───────┼──┼── in_review
       │                  │  │  └────────┴── re-verify ◀───────────────┘  │      ▲
       └── resubmit ── rejected ◀── case declines / a check fails          └──────┘ (re-screen hit)

- ``verifying``: the verification connector's checks are recorded and being answered (an unknown answer is
  queried, never guessed);
- ``in_review``: a screening hit, a duplicate identifier, a data mismatch or a risk review: a case is open,
  and closing it approves or rejects the profile;
- ``approved`` and ``review_due`` are *verified*: the party can be paid out to; ``review_due`` means its
  periodic review is due (it was re-screened) and it should be re-verified.
"""

from __future__ import annotations

from enum import StrEnum

from finloop.core.errors import Conflict


class ProfileStatus(StrEnum):
    PENDING = "pending"
    VERIFYING = "verifying"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVIEW_DUE = "review_due"


class RiskTier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class VerificationStatus(StrEnum):
    PENDING = "pending"   # recorded, the call is about to be made (or was made and not answered yet)
    PASSED = "passed"
    FAILED = "failed"
    UNKNOWN = "unknown"   # the call's outcome is unknown: queried until the provider answers


S = ProfileStatus

TRANSITIONS: dict[ProfileStatus, frozenset[ProfileStatus]] = {
    S.PENDING: frozenset({S.VERIFYING}),
    S.VERIFYING: frozenset({S.APPROVED, S.IN_REVIEW, S.REJECTED}),
    S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.REVIEW_DUE, S.VERIFYING, S.IN_REVIEW}),
    S.REVIEW_DUE: frozenset({S.VERIFYING, S.IN_REVIEW}),
    S.REJECTED: frozenset({S.PENDING}),
}

#: Statuses in which the party counts as verified (it may be paid out to).
VERIFIED = frozenset({S.APPROVED, S.REVIEW_DUE})
#: Statuses from which a re-verification may start.
REVERIFIABLE = frozenset({S.APPROVED, S.REVIEW_DUE})


def can_move(current: str, target: ProfileStatus) -> bool:
    return target in TRANSITIONS[ProfileStatus(current)]


def check_move(current: str, target: ProfileStatus, profile_id: str) -> None:
    if not can_move(current, target):
        raise Conflict(f"Profile {profile_id} is {current} and cannot become {target.value}.",
                       code="profile_state_conflict", param="status",
                       details={"status": current, "target": target.value})
