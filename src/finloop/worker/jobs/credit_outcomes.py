"""Credit outcome jobs.

``credit.label_outcomes`` runs per tenant and business date an hour after the day has closed (after the day's
servicing has moved the loan accounts): it labels the loans whose outcome became known by that date,
``outcomes.LABEL_BATCH`` per transaction, and relabels written-off defaults recovered since. A loan has one
outcome, so a rerun of any date labels nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from finloop.credit.outcomes import service as outcomes
from finloop.worker.registry import AfterClose, job
from finloop.worker.runner import JobContext


@job("credit.label_outcomes", schedule=AfterClose(delay=timedelta(hours=1)), lease_seconds=600.0)
def label_outcomes(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    while True:
        with ctx.step() as uow:
            done = outcomes.label_outcomes(uow, tenant_id, business_date)
            ctx.processed += done
        if done == 0:
            break
