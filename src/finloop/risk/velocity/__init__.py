"""Velocity features: counts, sums and distinct counts per customer, card, device, IP, phone and merchant
over sliding windows (1 min, 10 min, 1 h, 24 h, 7 d, 30 d), from pre-bucketed counters.

- ``features(uow, tenant_id, event, at=...)`` reads the features of an event as of ``at`` (before the
  event is recorded); ``record(uow, tenant_id, event, at=...)`` adds it to the counters.
- Stores: ``SqlStore`` (default, in the caller's transaction), ``RedisStore`` (after the caller commits),
  ``MemoryStore`` (backtests); ``use_store(store)`` switches for a block, ``configure(store)`` for the process.
- Keys are blind indexes (``blind_index``): no personal value is stored or compared in clear.
- ``replay(tenant_id, events)`` gives every event of a history its features as they were at its time.
See docs/risk-velocity.md for the window semantics and costs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from finloop.risk.velocity.keys import blind_index
from finloop.risk.velocity.memory import MemoryStore
from finloop.risk.velocity.plan import (
    DIMENSIONS,
    FEATURE_NAMES,
    WINDOWS,
    compute,
    epoch,
    read_plan,
    writes,
)
from finloop.risk.velocity.redis_store import RedisStore
from finloop.risk.velocity.sql import SqlStore
from finloop.risk.velocity.store import Store

if TYPE_CHECKING:
    from finloop.db.uow import UnitOfWork

__all__ = ["DIMENSIONS", "FEATURE_NAMES", "REDIS_URL_VARIABLE", "WINDOWS", "MemoryStore", "RedisStore",
           "SqlStore", "Store", "blind_index", "configure", "current_store", "features", "prune", "record",
           "replay", "use_store"]

#: Environment variable naming a Redis URL: when set, the process-wide store is Redis.
REDIS_URL_VARIABLE = "FINLOOP_RISK_VELOCITY_REDIS_URL"
_default: Store | None = None
_scoped: ContextVar[Store | None] = ContextVar("finloop_risk_velocity_store", default=None)


def configure(store: Store | None) -> None:
    """Set the process-wide store (``None``: back to the default, Redis when ``FINLOOP_RISK_VELOCITY_REDIS_URL``
    is set, else SQL, chosen at the next use)."""
    global _default
    _default = store


def current_store() -> Store:
    global _default
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    if _default is None:
        url = os.environ.get(REDIS_URL_VARIABLE)
        _default = RedisStore(url) if url else SqlStore()
    return _default


@contextmanager
def use_store(store: Store) -> Iterator[Store]:
    """Use ``store`` for velocity reads and writes inside the block (this thread or task only)."""
    token = _scoped.set(store)
    try:
        yield store
    finally:
        _scoped.reset(token)


def features(uow: UnitOfWork | None, tenant_id: str, event: Mapping[str, Any], *, at: datetime) -> dict[str, int]:
    """Every feature of ``FEATURE_NAMES`` for ``event`` as of ``at`` (0 for dimensions the event lacks)."""
    plan = read_plan(tenant_id, event, epoch(at))
    if not plan.keys:
        return dict.fromkeys(FEATURE_NAMES, 0)
    rows, distinct = current_store().read(uow, tenant_id, plan)
    return compute(plan, rows, distinct)


def record(uow: UnitOfWork | None, tenant_id: str, event: Mapping[str, Any], *, at: datetime) -> None:
    """Add ``event`` at ``at`` to the counters (an ``amount`` must be an int of minor units)."""
    counters, members = writes(tenant_id, event, epoch(at))
    if counters or members:
        current_store().add(uow, tenant_id, counters, members)


def prune(uow: UnitOfWork | None, *, now: datetime, store: Store | None = None) -> int:
    """Delete buckets no window reads any more; returns how many rows (or fields) went."""
    return (store or current_store()).prune(uow, now=epoch(now))


def replay(tenant_id: str, events: Iterable[tuple[datetime, Mapping[str, Any]]]) -> Iterator[dict[str, int]]:
    """For a history sorted by time, each event's features as they were at its time (read before recording
    it), computed in a fresh in-memory store: the as-of view a backtest needs, exact whatever the live
    counters hold since."""
    store = MemoryStore()
    with use_store(store):
        for at, event in events:
            yield features(None, tenant_id, event, at=at)
            record(None, tenant_id, event, at=at)
