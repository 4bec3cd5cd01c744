"""Reconciliation jobs."""

from __future__ import annotations

from datetime import timedelta

from finloop.reconciliation import safeguarding
from finloop.worker.registry import AfterClose, job
from finloop.worker.runner import JobContext


@job("reconciliation.safeguard", schedule=AfterClose(delay=timedelta(hours=6)))
def safeguard(ctx: JobContext) -> None:
    # Runs once the custody statement of the closed day has usually arrived; idempotent (one row per day and
    # currency, updated on a re-run, the alert raised again only if the shortfall changed).
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        ctx.processed += len(safeguarding.run_check(uow, tenant_id, on=business_date))


# --- matching (helper D2): appended, see finloop.reconciliation.discrepancies -----------------------------

@job("reconciliation.match", schedule=AfterClose(delay=timedelta(hours=8)))
def match_day(ctx: JobContext) -> None:
    # After the channels' bills and the bank statement of the closed day have usually been imported: match
    # every source that has files for the day. Idempotent per inputs (the same lines and records return
    # the existing run); a source whose file arrives later is matched by the next run of the job or by hand.
    from finloop.reconciliation import discrepancies as _matching
    from finloop.reconciliation import service as _imports

    tenant_id, business_date = ctx.tenant_day()
    with ctx.db.uow(read_only=True) as uow:
        sources = sorted({f.source for f in _imports.list_files(uow, tenant_id, business_date=business_date,
                                                                  limit=1000)})
    for source in sources:
        with ctx.step() as uow:
            _matching.run_reconciliation(uow, tenant_id, source=source, business_date=business_date)
            ctx.processed += 1
