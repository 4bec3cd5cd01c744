"""Payments jobs: the active query of everything a channel still owes us an answer about."""

from __future__ import annotations

from finloop.payments import flows
from finloop.worker.registry import Every, job
from finloop.worker.runner import JobContext


@job("payments.resolve_open", schedule=Every(5.0), lease_seconds=300.0)
def resolve_open(ctx: JobContext) -> None:
    # Each query runs between its own two transactions (no channel call inside one), so no step here.
    ctx.processed += flows.resolve_open(ctx.db, limit=500)
