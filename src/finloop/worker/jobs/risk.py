"""Risk jobs: pruning velocity buckets that no window reads any more."""

from __future__ import annotations

from finloop.risk import velocity
from finloop.worker.registry import Every, job
from finloop.worker.runner import JobContext


@job("risk.velocity_prune", schedule=Every(3600.0))
def velocity_prune(ctx: JobContext) -> None:
    # The SQL counters only: Redis keys carry their own EXPIRE.
    with ctx.step() as uow:
        ctx.processed += velocity.prune(uow, now=uow.clock.now(), store=velocity.SqlStore())
