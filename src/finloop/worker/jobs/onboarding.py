"""Onboarding jobs: the periodic review after each business day, and the checks whose answer is unknown."""

from __future__ import annotations

from finloop.onboarding import flows, service
from finloop.worker.registry import AfterClose, Every, job
from finloop.worker.runner import JobContext


@job("onboarding.review_due", schedule=AfterClose(), lease_seconds=600.0)
def review_due(ctx: JobContext) -> None:
    # One transaction for the day: the moves to review_due, the re-screenings and any cases commit together;
    # a re-run of the date finds the profiles already moved (and each profile records the date it was seen).
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        ctx.processed += service.run_periodic_review(uow, tenant_id, business_date=business_date).due


@job("onboarding.resolve_checks", schedule=Every(60.0), lease_seconds=300.0)
def resolve_checks(ctx: JobContext) -> None:
    # Each provider query sits between its own two transactions, so no step here.
    ctx.processed += flows.resolve_due(ctx.db, limit=200)
