"""Credit repayment channels on the worker: ``credit.direct_debit``.

An interval job (every 30 s), not a business-day one: a due date's first debit should go out on the due date
itself, not after it has closed, retries fall due hours apart, and the same round settles repayment payments whose
payment became final elsewhere (a borrower's confirmation, a channel's notification or payments' query of an
unknown answer), which should reach the loan within seconds. A round that finds nothing due costs two reads. Each
channel call sits between its own two transactions (``repayment_channels.flows``), so the job has no step of its
own.
"""

from __future__ import annotations

from finloop.credit.repayment_channels import flows
from finloop.worker.registry import Every, job
from finloop.worker.runner import JobContext


@job("credit.direct_debit", schedule=Every(30.0), lease_seconds=600.0)
def direct_debit(ctx: JobContext) -> None:
    ctx.processed += flows.run_direct_debits(ctx.db)
