"""An in-process store: the same bucket layout in dictionaries. For backtests (a fresh store replays history
in time order, so every event sees the features as they were at its time) and for tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from finloop.risk.velocity.plan import RETENTION, CounterDelta, CounterRow, DistinctCounts, MemberAdd, ReadPlan

if TYPE_CHECKING:
    from finloop.db.uow import UnitOfWork


class MemoryStore:
    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: (tenant, dimension, key, metric, granularity) -> bucket -> [count, sum]
        self._counters: dict[tuple[str, str, str, str, int], dict[int, list[int]]] = {}
        #: (tenant, dimension, key, metric, granularity) -> bucket -> members
        self._members: dict[tuple[str, str, str, str, int], dict[int, set[str]]] = {}

    def add(self, uow: UnitOfWork | None, tenant_id: str, counters: Sequence[CounterDelta],
            members: Sequence[MemberAdd]) -> None:
        with self._lock:
            for d in counters:
                slot = self._counters.setdefault((tenant_id, d.dimension, d.key_hash, d.metric, d.granularity),
                                                 {}).setdefault(d.bucket, [0, 0])
                slot[0] += d.count
                slot[1] += d.amount
            for m in members:
                self._members.setdefault((tenant_id, m.dimension, m.key_hash, m.metric, m.granularity),
                                         {}).setdefault(m.bucket, set()).add(m.member_hash)

    def read(self, uow: UnitOfWork | None, tenant_id: str, plan: ReadPlan) -> tuple[list[CounterRow], DistinctCounts]:
        rows: list[CounterRow] = []
        distinct: DistinctCounts = {}
        with self._lock:
            for s in plan.counter_series:
                for granularity, (first, last) in plan.ranges.items():
                    series = self._counters.get((tenant_id, s.dimension, s.key_hash, s.metric, granularity), {})
                    rows += [(s.dimension, s.key_hash, s.metric, granularity, bucket, v[0], v[1])
                             for bucket, v in series.items() if first <= bucket <= last]
            for s in plan.member_series:
                for name, (granularity, first, last) in plan.distinct_windows.items():
                    sets = self._members.get((tenant_id, s.dimension, s.key_hash, s.metric, granularity), {})
                    seen: set[str] = set()
                    for bucket, members in sets.items():
                        if first <= bucket <= last:
                            seen |= members
                    if seen:
                        distinct[(s.dimension, s.key_hash, s.metric, name)] = len(seen)
        return rows, distinct

    def prune(self, uow: UnitOfWork | None, *, now: int) -> int:
        removed = 0
        with self._lock:
            for table in (self._counters, self._members):
                for key, buckets in table.items():
                    granularity = key[4]
                    cutoff = now - now % granularity - RETENTION[granularity]
                    for bucket in [b for b in buckets if b < cutoff]:
                        del buckets[bucket]
                        removed += 1
        return removed
