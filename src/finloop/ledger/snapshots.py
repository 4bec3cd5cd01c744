"""End-of-day balance snapshots (``account_daily_balances``).

Invariants owned here:
- the snapshot of an account for business date D holds its posted debit and credit totals over exactly the
  postings effective before D's close (``BusinessCalendar.day_closes_at``), which are the postings of
  entries booked on D or earlier: an event at the cut-off itself belongs to the next business date;
- an account opened after the close has no snapshot for that day;
- a snapshot row is written once: it is a plain INSERT, so writing one twice fails instead of overwriting;
- the snapshots of one business date balance per currency, like the postings they sum.

Snapshots are written in chunks of accounts in id order so a long end-of-day can commit as it goes and
resume after the last account of the last committed chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select

from finloop.db.uow import UnitOfWork
from finloop.ledger.models import Account, AccountDailyBalance, Posting

accounts_t = cast(Table, Account.__table__)
postings_t = cast(Table, Posting.__table__)
snapshots_t = cast(Table, AccountDailyBalance.__table__)


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    #: The last account id this chunk looked at (the resume point), or None when no account was left.
    last_account_id: str | None
    scanned: int
    written: int


def write_daily_balances(uow: UnitOfWork, tenant_id: str, business_date: date, *, closes_at: datetime,
                         after_account_id: str | None = None, limit: int = 500) -> SnapshotChunk:
    """Snapshot the next ``limit`` accounts (by id, after ``after_account_id``) as of ``closes_at``."""
    if limit < 1:
        raise ValueError("a snapshot chunk needs limit >= 1")
    query = (select(accounts_t.c.id, accounts_t.c.created_at).where(accounts_t.c.tenant_id == tenant_id)
             .order_by(accounts_t.c.id).limit(limit))
    if after_account_id is not None:
        query = query.where(accounts_t.c.id > after_account_id)
    accounts = uow.session.execute(query).all()
    if not accounts:
        return SnapshotChunk(None, 0, 0)
    existing = [row.id for row in accounts if row.created_at < closes_at]
    sums: dict[str, tuple[int, int]] = {}
    if existing:
        for account_id, debits, credits in uow.session.execute(
                select(postings_t.c.account_id,
                       func.coalesce(func.sum(postings_t.c.amount).filter(postings_t.c.amount > 0), 0),
                       func.coalesce(-func.sum(postings_t.c.amount).filter(postings_t.c.amount < 0), 0))
                .where(postings_t.c.account_id.in_(existing), postings_t.c.effective_at < closes_at)
                .group_by(postings_t.c.account_id)):
            sums[account_id] = (int(debits), int(credits))
        rows: list[dict[str, Any]] = [
            {"account_id": account_id, "business_date": business_date, "tenant_id": tenant_id,
             "debits_posted": sums.get(account_id, (0, 0))[0], "credits_posted": sums.get(account_id, (0, 0))[1]}
            for account_id in existing]
        uow.session.execute(insert(snapshots_t), rows)
    return SnapshotChunk(accounts[-1].id, len(accounts), len(existing))


def snapshot_imbalances(uow: UnitOfWork, tenant_id: str, business_date: date) -> dict[str, int]:
    """Currencies whose snapshots for ``business_date`` do not net to zero, with the amount they are off."""
    rows = uow.session.execute(
        select(accounts_t.c.currency,
               func.sum(snapshots_t.c.debits_posted - snapshots_t.c.credits_posted))
        .join(accounts_t, accounts_t.c.id == snapshots_t.c.account_id)
        .where(snapshots_t.c.tenant_id == tenant_id, snapshots_t.c.business_date == business_date)
        .group_by(accounts_t.c.currency)).all()
    return {code: int(total) for code, total in rows if int(total) != 0}
