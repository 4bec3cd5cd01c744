"""Credit jobs: the monthly batch re-score and the periodic limit review.

``credit.rescore`` runs per tenant and business date once the day has closed. It scores, with the champion
of the default model name, every applicant that has no batch score of the business date's month yet, in
steps of ``scoring.BATCH_LIMIT`` applicants (one transaction each, features computed set-wise): on the
first business day of a month that is every applicant; on later days only applicants added since, so each
applicant is scored once a month, and a run repeated for any date of the month writes nothing. When it
scored someone, it records the population stability of the month's scores on the champion. A tenant
without a champion is skipped.

``credit.review_limits`` runs per tenant and business date once the day has closed. It re-calculates every open
credit line last reviewed ``review_interval_days`` (the tenant's limit policy) or more before the business date,
``limits.REVIEW_BATCH`` lines per transaction; each reviewed line records the date (``reviewed_on``), so a rerun
of the same date reviews nothing, and a line is due again ``review_interval_days`` later. Every limit it moves is
logged with the factors of the calculation (reason ``periodic_review``).

``credit.accrue_funding_cost`` runs per tenant and business date once the day has closed. It posts the day's cost
of every partner bank's funds (the outstanding principal of its active loans times its rate over 365, cumulative
rounding: ``funding.accrue_source``) in one transaction; each source records the last date accrued, so a rerun of
the same date (or an earlier one) posts nothing.

``credit.disburse_signed`` runs every minute: for the tenants whose disbursement policy is automatic it disburses
the signed applications without a loan (not buy-now-pay-later); for every tenant it queries the loans still in
flight. Each bank call sits between its own two transactions, so the job has no step of its own.

``credit.expire_applications`` runs per tenant and business date once the day has closed: approved applications
whose contract was not signed by their ``expires_at`` expire, their limit reservation released and the unsigned
contract voided, ``applications.EXPIRY_BATCH`` per transaction; a rerun finds nothing left to expire.

``credit.end_of_day`` runs per tenant and business date once the day has closed: the loan book's end of day
(``servicing.eod``) for every calendar day since the last one completed through the business date (a Monday closes
the weekend too), one chunk of loans per step; a run that stopped resumes with the loans not yet processed.
"""

from __future__ import annotations

from finloop.credit import applications, disbursement, limits, registry, scoring
from finloop.credit.domain import DEFAULT_MODEL_NAME
from finloop.credit.servicing import eod
from finloop.worker.registry import AfterClose, Every, job
from finloop.worker.runner import JobContext


@job("credit.rescore", schedule=AfterClose(), lease_seconds=600.0)
def rescore(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    month = f"{business_date.year:04d}-{business_date.month:02d}"
    scored = 0
    while True:
        with ctx.step() as uow:
            done = scoring.rescore_batch(uow, tenant_id, month=month, model_name=DEFAULT_MODEL_NAME)
            ctx.processed += done
        scored += done
        if done == 0:
            break
    if scored:
        with ctx.step() as uow:
            champion = registry.active(uow, tenant_id, DEFAULT_MODEL_NAME).champion
            if champion is not None:
                scoring.population_stability(uow, tenant_id, champion[0], month=month, record=True)


@job("credit.review_limits", schedule=AfterClose(), lease_seconds=600.0)
def review_limits(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    while True:
        with ctx.step() as uow:
            done = limits.review_due(uow, tenant_id, business_date)
            ctx.processed += done
        if done == 0:
            break


@job("credit.accrue_funding_cost", schedule=AfterClose(), lease_seconds=600.0)
def accrue_funding_cost(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        if disbursement.accrue_funding_cost(uow, tenant_id, business_date):
            ctx.processed += 1


@job("credit.disburse_signed", schedule=Every(60.0), lease_seconds=300.0)
def disburse_signed(ctx: JobContext) -> None:
    ctx.processed += disbursement.disburse_signed(ctx.db)


@job("credit.expire_applications", schedule=AfterClose(), lease_seconds=600.0)
def expire_applications(ctx: JobContext) -> None:
    tenant_id, _ = ctx.tenant_day()
    while True:
        with ctx.step() as uow:
            done = applications.expire_due(uow, tenant_id, limit=applications.EXPIRY_BATCH)
            ctx.processed += done
        if done < applications.EXPIRY_BATCH:
            break


@job("credit.end_of_day", schedule=AfterClose(), lease_seconds=900.0)
def end_of_day(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    with ctx.step() as uow:
        days = eod.days_to_run(uow, tenant_id, business_date)
    for day in days:
        ctx.processed += eod.run_day(ctx.step, tenant_id, day).loans
