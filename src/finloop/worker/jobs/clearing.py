"""Clearing jobs: the daily clearing batches of every channel, once the business day has closed."""

from __future__ import annotations

from finloop.clearing import service
from finloop.worker.registry import AfterClose, job
from finloop.worker.runner import JobContext


@job("clearing.run", schedule=AfterClose())
def run(ctx: JobContext) -> None:
    # Idempotent: a retried run refreshes the open batches of the date and leaves settled ones alone.
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        ctx.processed += len(service.build_batches(uow, tenant_id, business_date=business_date))
