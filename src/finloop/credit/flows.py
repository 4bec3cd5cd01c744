"""Credit flows that call out between transactions: a bureau pull is recorded, sent, then stored.

``pull_report`` commits the pending report first (so a crash leaves a visible pending pull, never a lost
one), calls the bureau with no transaction open, and completes or fails the report in a second
transaction. A refusal (no consent, unknown applicant, unknown provider) happens in the first transaction
and writes nothing.
"""

from __future__ import annotations

import time

import structlog

from finloop.core.errors import ExternalServiceError
from finloop.credit import bureau
from finloop.credit import service as credit
from finloop.db.uow import Database

log = structlog.get_logger("finloop.credit")

#: What a bureau call may raise besides a typed refusal: unreachable, or an answer that does not parse.
_BUREAU_ERRORS = (OSError, TimeoutError, ValueError, KeyError)


def pull_report(db: Database, tenant_id: str, applicant_id: str, *, provider: str = bureau.DEFAULT_PROVIDER,
                actor: str) -> str:
    """Pull a bureau report for the applicant; returns the report id (completed or failed)."""
    with db.uow() as uow:
        report, request = credit.begin_pull(uow, tenant_id, applicant_id, provider=provider, actor=actor)
        uow.commit()
    connector = bureau.connector(provider)
    began = time.perf_counter()
    error: ExternalServiceError | None = None
    try:
        result = connector.pull(request)
    except ExternalServiceError as refused:
        error = refused
    except _BUREAU_ERRORS as broken:
        error = ExternalServiceError(f"The bureau call failed: {type(broken).__name__}.", retryable=True,
                                     code="bureau_unavailable")
    elapsed_ms = round((time.perf_counter() - began) * 1000)
    with db.uow() as uow:
        if error is None:
            credit.complete_pull(uow, tenant_id, report.id, result)
        else:
            credit.fail_pull(uow, tenant_id, report.id, error, latency_ms=elapsed_ms)
        uow.commit()
    # Ids and outcome only: the request's national id never reaches a log line.
    log.info("credit_bureau_pulled", report_id=report.id, provider=provider,
             outcome="failed" if error else "completed", latency_ms=elapsed_ms)
    return report.id
