"""Wealth jobs, per tenant and business date once the day has closed, in this order:

1. ``wealth.accrue``: the income of the window ending on the date, one transaction (and one batched
   ``post_transfers`` call) per fund; idempotent per fund and date;
2. ``wealth.settle_redemptions``: credit the normal redemptions due on the next business day;
3. ``wealth.sweep``: sweep opted-in balances above their keep amount into their fund.
"""

from __future__ import annotations

from finloop.wealth import service as wealth
from finloop.worker.registry import AfterClose, job
from finloop.worker.runner import JobContext


@job("wealth.accrue", schedule=AfterClose(), lease_seconds=600.0)
def accrue(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    with ctx.db.uow(read_only=True) as uow:
        funds = wealth.fund_ids(uow, tenant_id)
    done = set(ctx.checkpoint.get("funds_done", []))
    for fund_id in funds:
        if fund_id in done:
            continue
        with ctx.step() as uow:
            result = wealth.accrue_fund(uow, tenant_id, fund_id, business_date=business_date)
            ctx.processed += 0 if result.replayed else result.holders
            done.add(fund_id)
            ctx.checkpoint["funds_done"] = sorted(done)


@job("wealth.settle_redemptions", schedule=AfterClose())
def settle_redemptions(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        ctx.processed += wealth.settle_due_redemptions(uow, tenant_id, business_date=business_date)


@job("wealth.sweep", schedule=AfterClose())
def sweep(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        ctx.processed += len(wealth.run_sweeps(uow, tenant_id, business_date=business_date))
