"""AML jobs: the monitoring scenarios over each closed business day."""

from __future__ import annotations

from finloop.risk.aml import service
from finloop.worker.registry import AfterClose, job
from finloop.worker.runner import JobContext


@job("aml.monitor", schedule=AfterClose(), lease_seconds=600.0)
def monitor(ctx: JobContext) -> None:
    # One transaction for the day: alerts and their cases commit together; a re-run finds them stored.
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        result = service.run_business_day(uow, tenant_id, business_date=business_date)
        ctx.processed += result.created
