"""The payout state machine: every legal move is in the table, anything else is a 409.

    pending_approval ──approve──▶ approved ──send──▶ processing ──▶ succeeded ──return──▶ returned
          │                          │  ▲                 │
          └──reject──▶ canceled ◀────┘  └──retry (backoff)─┤
                                                          └──▶ failed

Money: the amount is held (a ledger hold, no expiry) from the request until a final answer; the hold is
posted on ``succeeded`` and voided on ``failed`` and ``canceled``; ``returned`` posts a reversing entry.
A payout needing no approval starts ``approved``.
"""

from __future__ import annotations

from enum import StrEnum

from finloop.core.errors import Conflict


class PayoutStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"  # above the approval amount: waits for a finance user
    APPROVED = "approved"                  # queued for sending (again, after a retryable failure)
    PROCESSING = "processing"              # sent; the bank's final answer is still owed (delayed or unknown)
    SUCCEEDED = "succeeded"                # the bank paid; the hold is posted
    FAILED = "failed"                      # refused or out of attempts; the hold is voided
    RETURNED = "returned"                  # paid, then returned by the beneficiary's bank; reversed
    CANCELED = "canceled"                  # rejected or canceled before sending; the hold is voided


S = PayoutStatus

TRANSITIONS: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.CANCELED}),
    S.APPROVED: frozenset({S.PROCESSING, S.CANCELED}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED, S.APPROVED}),
    S.SUCCEEDED: frozenset({S.RETURNED}),
    S.FAILED: frozenset(),
    S.RETURNED: frozenset(),
    S.CANCELED: frozenset(),
}

TERMINAL = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
#: Statuses whose amount is still held in the ledger.
HOLDING = frozenset({S.PENDING_APPROVAL, S.APPROVED, S.PROCESSING})
CANCELABLE = frozenset({S.PENDING_APPROVAL, S.APPROVED})


def can_move(current: str, target: PayoutStatus) -> bool:
    return target in TRANSITIONS[PayoutStatus(current)]


def check_move(current: str, target: PayoutStatus, payout_id: str) -> None:
    if not can_move(current, target):
        raise Conflict(f"Payout {payout_id} is {current} and cannot become {target.value}.",
                       code="payout_state_conflict", param="status",
                       details={"status": current, "target": target.value})
