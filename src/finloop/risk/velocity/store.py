"""The store interface every velocity backend implements (SQL, Redis, memory), with the same results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from finloop.risk.velocity.plan import CounterDelta, CounterRow, DistinctCounts, MemberAdd, ReadPlan

if TYPE_CHECKING:
    from finloop.db.uow import UnitOfWork


class Store(Protocol):
    name: str

    def add(self, uow: UnitOfWork | None, tenant_id: str, counters: Sequence[CounterDelta],
            members: Sequence[MemberAdd]) -> None:
        """Apply the increments and member insertions (in the caller's transaction, or once it commits)."""

    def read(self, uow: UnitOfWork | None, tenant_id: str, plan: ReadPlan) -> tuple[list[CounterRow], DistinctCounts]:
        """The counter rows of ``plan``'s series within its ranges, and its distinct counts per window."""

    def prune(self, uow: UnitOfWork | None, *, now: int) -> int:
        """Delete buckets no window reads any more at epoch ``now``; returns how many went."""
