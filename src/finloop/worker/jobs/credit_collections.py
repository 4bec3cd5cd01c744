"""Collections job.

``credit.collections`` runs per tenant and business date once the day has closed. In one step (one transaction)
it settles the pending promises to pay, opens, refreshes and closes collection cases from the loan accounts,
records the strategy's actions (SMS and calls ``pending``, escalations done) and the repayment reminders of the
installments due in the run's windows with their webhook events (``credit.repayment.reminder``). It then sends
the pending SMS and calls outside any transaction, each result applied in its own (``service.send_pending``),
and files the previous month with the credit bureau once that month-end has been processed (one export per
cycle). A rerun of the same date records nothing twice: actions are unique per case, kind and date, reminders per
installment and kind, and cases act only on days past due not yet acted on. What a crash left pending is sent by
the next run (the connectors dedupe on the action or reminder id).

It reads what the servicing end of day wrote (days past due, buckets, states): when both run for a date, the
collections run sees the end of day's figures if it runs after it, and otherwise catches up the next day.
"""

from __future__ import annotations

from finloop.credit.collections import bureau_export, service
from finloop.worker.registry import AfterClose, job
from finloop.worker.runner import JobContext


@job("credit.collections", schedule=AfterClose(), lease_seconds=600.0)
def collections(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        result = service.plan_day(uow, tenant_id, business_date)
        ctx.checkpoint["planned"] = result.to_json()
        ctx.processed += result.actions + result.reminders
    ctx.processed += service.send_pending(ctx.db, tenant_id)
    with ctx.step() as uow:
        cycle = bureau_export.due_cycle(uow, tenant_id, business_date)
        if cycle is not None:
            ctx.checkpoint["bureau_export"] = bureau_export.export_cycle(uow, tenant_id, cycle,
                                                                         actor="system:collections").id
