"""The payment, attempt and refund state machines: every legal move is in a table, anything else is a 409.

Statuses follow the established vocabulary of payment intents. A payment's money moves only on the
transition into ``succeeded`` (and, for refunds, into ``succeeded`` of the refund); the ledger posting
happens in the same transaction as that transition.
"""

from __future__ import annotations

from enum import StrEnum

from finloop.core.errors import Conflict


class PaymentStatus(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    FAILED = "failed"


P = PaymentStatus

PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.REQUIRES_PAYMENT_METHOD: frozenset({P.REQUIRES_CONFIRMATION, P.CANCELED}),
    P.REQUIRES_CONFIRMATION: frozenset({P.PROCESSING, P.CANCELED}),
    # Confirmation records an attempt and moves to processing before the channel is called; the
    # channel's answer then moves it on.
    P.PROCESSING: frozenset({P.REQUIRES_ACTION, P.REQUIRES_CAPTURE, P.SUCCEEDED, P.FAILED}),
    P.REQUIRES_ACTION: frozenset({P.PROCESSING, P.SUCCEEDED, P.REQUIRES_CAPTURE, P.FAILED, P.CANCELED}),
    # A capture in flight is processing again; a void cancels.
    P.REQUIRES_CAPTURE: frozenset({P.PROCESSING, P.SUCCEEDED, P.CANCELED}),
    P.SUCCEEDED: frozenset(),
    P.CANCELED: frozenset(),
    P.FAILED: frozenset(),
}

TERMINAL_PAYMENT_STATUSES = frozenset(s for s, moves in PAYMENT_TRANSITIONS.items() if not moves)
CANCELABLE = frozenset({P.REQUIRES_PAYMENT_METHOD, P.REQUIRES_CONFIRMATION, P.REQUIRES_ACTION, P.REQUIRES_CAPTURE})


class AttemptStatus(StrEnum):
    PENDING = "pending"                  # recorded, the channel call is under way
    REQUIRES_ACTION = "requires_action"  # the customer must act at the channel
    PROCESSING = "processing"            # the channel accepted; the result comes later
    AUTHORIZED = "authorized"            # card authorised, waiting for capture
    CAPTURING = "capturing"              # capture sent
    UNKNOWN = "unknown"                  # timeout or 5xx: must be resolved by a query before anything else
    SUCCEEDED = "succeeded"
    DECLINED = "declined"                # refused for the customer's reasons
    FAILED = "failed"                    # refused by the channel
    CANCELED = "canceled"                # closed at the channel
    ABANDONED = "abandoned"              # we moved on; a late success here is refunded automatically


A = AttemptStatus

ATTEMPT_TRANSITIONS: dict[AttemptStatus, frozenset[AttemptStatus]] = {
    A.PENDING: frozenset({A.REQUIRES_ACTION, A.PROCESSING, A.AUTHORIZED, A.UNKNOWN, A.SUCCEEDED, A.DECLINED,
                          A.FAILED, A.CANCELED, A.ABANDONED}),
    A.REQUIRES_ACTION: frozenset({A.PROCESSING, A.AUTHORIZED, A.UNKNOWN, A.SUCCEEDED, A.DECLINED, A.FAILED,
                                  A.CANCELED, A.ABANDONED}),
    A.PROCESSING: frozenset({A.AUTHORIZED, A.UNKNOWN, A.SUCCEEDED, A.DECLINED, A.FAILED, A.CANCELED,
                             A.ABANDONED, A.REQUIRES_ACTION}),
    A.UNKNOWN: frozenset({A.REQUIRES_ACTION, A.PROCESSING, A.AUTHORIZED, A.SUCCEEDED, A.DECLINED, A.FAILED,
                          A.CANCELED, A.ABANDONED}),
    A.AUTHORIZED: frozenset({A.CAPTURING, A.SUCCEEDED, A.CANCELED, A.ABANDONED}),
    A.CAPTURING: frozenset({A.SUCCEEDED, A.AUTHORIZED, A.UNKNOWN}),
    # An abandoned attempt may still report what happened at the channel (a late success is refunded).
    A.ABANDONED: frozenset({A.SUCCEEDED, A.CANCELED, A.FAILED, A.DECLINED}),
    A.SUCCEEDED: frozenset(),
    A.DECLINED: frozenset(),
    A.FAILED: frozenset(),
    A.CANCELED: frozenset(),
}

#: Attempts whose outcome the channel still owes us: query them, never route around them.
OPEN_ATTEMPT_STATUSES = frozenset({A.PENDING, A.REQUIRES_ACTION, A.PROCESSING, A.UNKNOWN, A.CAPTURING})


class RefundStatus(StrEnum):
    REQUIRES_APPROVAL = "requires_approval"
    PENDING = "pending"          # recorded, the channel call is under way
    PROCESSING = "processing"    # accepted by the channel, result later
    UNKNOWN = "unknown"          # timeout or 5xx: query before retrying
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"        # approval rejected


R = RefundStatus

REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    R.REQUIRES_APPROVAL: frozenset({R.PENDING, R.CANCELED}),
    R.PENDING: frozenset({R.PROCESSING, R.UNKNOWN, R.SUCCEEDED, R.FAILED}),
    R.PROCESSING: frozenset({R.UNKNOWN, R.SUCCEEDED, R.FAILED}),
    R.UNKNOWN: frozenset({R.PROCESSING, R.SUCCEEDED, R.FAILED, R.PENDING}),
    R.FAILED: frozenset({R.PENDING}),  # a retry, possibly through another route
    R.SUCCEEDED: frozenset(),
    R.CANCELED: frozenset(),
}

#: Refund amounts counted against what is left to refund.
RESERVING_REFUND_STATUSES = frozenset({R.REQUIRES_APPROVAL, R.PENDING, R.PROCESSING, R.UNKNOWN, R.SUCCEEDED})


class WithdrawalStatus(StrEnum):
    REQUIRES_APPROVAL = "requires_approval"  # parked by a risk review: held, not sent
    PENDING = "pending"          # approved by its risk review, held, to be sent by payments.resume_reviewed
    PROCESSING = "processing"    # held in the ledger, the payout is under way
    UNKNOWN = "unknown"          # the payout's reply was lost: query it
    SUCCEEDED = "succeeded"      # the hold is posted
    FAILED = "failed"            # the hold is voided


OPEN_WITHDRAWAL_STATUSES = frozenset({WithdrawalStatus.PROCESSING, WithdrawalStatus.UNKNOWN})


def check_payment_move(current: str, target: PaymentStatus, payment_id: str) -> None:
    if target not in PAYMENT_TRANSITIONS[PaymentStatus(current)]:
        raise Conflict(f"Payment {payment_id} is {current} and cannot become {target.value}.",
                       code="payment_state_conflict", details={"status": current, "target": target.value})


def can_move_attempt(current: str, target: AttemptStatus) -> bool:
    return current == target.value or target in ATTEMPT_TRANSITIONS[AttemptStatus(current)]


def can_move_refund(current: str, target: RefundStatus) -> bool:
    return current == target.value or target in REFUND_TRANSITIONS[RefundStatus(current)]
