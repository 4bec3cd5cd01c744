"""Payments jobs: the active query of everything a channel still owes us an answer about."""

from __future__ import annotations

from finloop.payments import disputes, flows
from finloop.worker.registry import Every, job
from finloop.worker.runner import JobContext


@job("payments.resolve_open", schedule=Every(5.0), lease_seconds=300.0)
def resolve_open(ctx: JobContext) -> None:
    # Each query runs between its own two transactions (no channel call inside one), so no step here.
    ctx.processed += flows.resolve_open(ctx.db, limit=500)


@job("payments.expire_disputes", schedule=Every(300.0))
def expire_disputes(ctx: JobContext) -> None:
    # A dispute whose evidence was not submitted by its due date is lost.
    with ctx.step() as uow:
        ctx.processed += disputes.expire_overdue(uow, now=uow.clock.now())


@job("payments.resume_reviewed", schedule=Every(30.0), lease_seconds=300.0)
def resume_reviewed(ctx: JobContext) -> None:
    # Payments and withdrawals a risk review approved: confirmed / sent through the normal flows, each
    # channel call between its own two transactions (so no step here).
    ctx.processed += flows.resume_reviewed(ctx.db, limit=200)
