"""Payouts jobs: automatic payouts after each business day, and the sending/querying/returns loop."""

from __future__ import annotations

from finloop.payouts import flows, service
from finloop.worker.registry import AfterClose, Every, job
from finloop.worker.runner import JobContext


@job("payouts.automatic", schedule=AfterClose())
def automatic(ctx: JobContext) -> None:
    # Creates the day's scheduled and threshold payouts in one step; each is keyed by schedule and date,
    # so a retried run creates nothing twice. The payouts.process job sends them.
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        ctx.processed += len(service.run_automatic(uow, tenant_id, business_date))


@job("payouts.process", schedule=Every(30.0), lease_seconds=300.0)
def process(ctx: JobContext) -> None:
    # Each bank call sits between its own two transactions, so no step here.
    ctx.processed += flows.process(ctx.db, limit=500)
