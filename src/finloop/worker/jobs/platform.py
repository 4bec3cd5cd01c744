"""Housekeeping of the platform's own tables: the outbox drain and the Idempotency-Key purge."""

from __future__ import annotations

from finloop.db import outbox
from finloop.db.idempotency import purge_expired
from finloop.worker.registry import Every, job
from finloop.worker.runner import JobContext

#: Messages claimed per drain call, and drain calls per run (so one run cannot starve the other jobs).
DRAIN_BATCH = 100
DRAIN_BATCHES_PER_RUN = 20


@job("outbox.drain", schedule=Every(1.0), lease_seconds=120.0)
def drain_outbox(ctx: JobContext) -> None:
    # The drain commits its claims and outcomes itself and calls handlers outside any transaction, so it
    # does not run inside a step.
    for _ in range(DRAIN_BATCHES_PER_RUN):
        result = outbox.drain(ctx.db, limit=DRAIN_BATCH)
        ctx.processed += result.sent
        if result.claimed < DRAIN_BATCH:
            break


@job("idempotency.purge", schedule=Every(600.0))
def purge_idempotency_keys(ctx: JobContext) -> None:
    with ctx.step() as uow:
        ctx.processed += purge_expired(uow)
