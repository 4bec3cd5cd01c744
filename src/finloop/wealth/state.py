"""Fund orders: kinds and the status machine. Every legal move is in the table; anything else is a 409.

- ``subscribe``: confirmed at once (``completed`` on creation): the source balance moves into the holding in
  the order's transaction; the units earn income from the first accrual window after the trade date.
- ``redeem_fast``: paid at once (``completed`` on creation), within the fund's per-holder daily limit.
- ``redeem``: the units leave the holding at once (``pending``), the money is credited on the next business
  day by ``wealth.settle_redemptions`` (``pending -> completed``).
"""

from __future__ import annotations

from enum import StrEnum

from finloop.core.errors import Conflict


class OrderKind(StrEnum):
    SUBSCRIBE = "subscribe"
    REDEEM_FAST = "redeem_fast"
    REDEEM = "redeem"


class OrderStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"


S = OrderStatus

#: Where an order may start, by kind.
INITIAL_STATUS: dict[OrderKind, OrderStatus] = {
    OrderKind.SUBSCRIBE: S.COMPLETED,
    OrderKind.REDEEM_FAST: S.COMPLETED,
    OrderKind.REDEEM: S.PENDING,
}

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
}

REDEMPTIONS = frozenset({OrderKind.REDEEM_FAST, OrderKind.REDEEM})


def check_transition(current: str, target: OrderStatus) -> OrderStatus:
    if target not in ORDER_TRANSITIONS[OrderStatus(current)]:
        raise Conflict(f"A fund order cannot go from {current} to {target.value}.", code="invalid_order_transition",
                       param="status")
    return target
