"""Ledger jobs: hold expiry, and the end of each business day.

End of day for a tenant's business date D, once D's cut-off has passed:
1. snapshot every account's posted sums as of D's close, in chunks of accounts by id; each chunk commits
   with the checkpoint (the last account done), so a rerun continues after it and writes no row twice;
2. check the books: running sums against postings and holds (``verify_integrity``) and the day's snapshots
   netting to zero per currency. A disagreement fails the run, which is retried and then blocks later days.

The close instant is fixed in the checkpoint at the first step, so a calendar edited mid-run cannot split
one day's snapshots across two different cut-offs.
"""

from __future__ import annotations

from datetime import datetime

from finloop.core.errors import InvariantViolation
from finloop.ledger import service as ledger
from finloop.ledger.snapshots import snapshot_imbalances, write_daily_balances
from finloop.tenancy.calendar import get_calendar
from finloop.worker.registry import AfterClose, Every, job
from finloop.worker.runner import JobContext

SNAPSHOT_CHUNK = 500
EXPIRE_BATCH = 1000


class BooksDisagree(InvariantViolation):
    code = "books_disagree"


@job("ledger.expire_holds", schedule=Every(5.0))
def expire_holds(ctx: JobContext) -> None:
    while True:
        with ctx.step() as uow:
            expired = ledger.expire_holds(uow, limit=EXPIRE_BATCH)
            ctx.processed += expired
        if expired < EXPIRE_BATCH:
            return


@job("ledger.end_of_day", schedule=AfterClose(), lease_seconds=600.0)
def end_of_day(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    while not ctx.checkpoint.get("snapshots_done"):
        with ctx.step() as uow:
            if "closes_at" not in ctx.checkpoint:
                closes = get_calendar(uow, tenant_id).day_closes_at(business_date)
                ctx.checkpoint["closes_at"] = closes.isoformat()
            chunk = write_daily_balances(uow, tenant_id, business_date,
                                         closes_at=datetime.fromisoformat(ctx.checkpoint["closes_at"]),
                                         after_account_id=ctx.checkpoint.get("after_account_id"),
                                         limit=SNAPSHOT_CHUNK)
            ctx.processed += chunk.written
            if chunk.last_account_id is not None:
                ctx.checkpoint["after_account_id"] = chunk.last_account_id
            if chunk.scanned < SNAPSHOT_CHUNK:
                ctx.checkpoint["snapshots_done"] = True
    # Checking writes nothing, so it reads outside a step and never holds SQLite's write lock.
    with ctx.db.uow(read_only=True) as uow:
        problems = ledger.verify_integrity(uow, tenant_id)
        problems += [f"snapshots of {business_date} in {code} net to {total}, not 0"
                     for code, total in snapshot_imbalances(uow, tenant_id, business_date).items()]
    if problems:
        raise BooksDisagree(f"The books of tenant {tenant_id} disagree at the end of {business_date}: "
                            + "; ".join(problems[:20]), details={"problems": problems})
