"""Settlement jobs: settle the cohorts due on each closed business day, then release due reserves and freezes."""

from __future__ import annotations

from finloop.settlement import service
from finloop.worker.registry import AfterClose, job
from finloop.worker.runner import JobContext

RELEASE_CHUNK = 500


@job("settlement.run", schedule=AfterClose(), lease_seconds=600.0)
def run(ctx: JobContext) -> None:
    # One transaction for the day: the batches and their entries commit together, and a re-run after a
    # failure finds the settled cohorts' batches and skips them.
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        result = service.run_settlement(uow, tenant_id, business_date=business_date)
        ctx.processed += len(result.batches)


@job("settlement.release", schedule=AfterClose(), lease_seconds=300.0)
def release(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    while True:
        with ctx.step() as uow:
            released = service.release_due(uow, tenant_id, business_date=business_date, limit=RELEASE_CHUNK)
            ctx.processed += len(released)
        if len(released) < RELEASE_CHUNK:
            return
