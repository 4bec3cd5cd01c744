"""The monthly credit bureau file: one record per loan account as it stood at the end of the cycle (month), in the
fixed CSV layout ``FL-CB-1`` below, stored with its SHA-256.

Layout ``FL-CB-1`` (UTF-8, comma separated, ``\\n`` line ends, no quoting needed: every field is an id, a code,
a date or an integer):

- header ``H,FL-CB-1,<lender id>,<cycle YYYY-MM>,<cycle's last day>``;
- one detail per account, ordered by account id:
  ``D,<account id>,<subject ref>,<product kind>,<currency>,<opened on>,<original amount>,<balance amount>,<dpd>,
  <max dpd>,<bucket>,<status>,<closed on or empty>``;
  amounts are integers of minor units of the currency; the subject reference is the lender's applicant id (the
  bureau's own subject key is joined by the transmission step, so no personal data is in the file);
  status is ``0``..``4`` for an open account in bucket M0..M4, ``C`` paid off, ``W`` written off;
- trailer ``T,<record count>,<control total>``: the sum of the balance amounts of every record, whatever their
  currency (a hash total for the receiver to check completeness).

Invariants owned here:
- a cycle is exported once its month-end has been processed: the servicing end of day has completed the cycle's
  last day (it writes the month's snapshots then) or a later one (409 ``cycle_not_closed`` before); the records are
  the month-end snapshots of the cycle (``credit_loan_month_ends``) with the accounts' static fields;
- one export per tenant and cycle: exporting a cycle again returns the first export unchanged (same rows, same
  SHA-256), even when the accounts have moved since;
- the stored ``sha256`` is the digest of the stored ``content``'s UTF-8 bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from finloop.audit import service as audit
from finloop.core.errors import Conflict, NotFound
from finloop.credit.collections.domain import BUREAU_LAYOUT_VERSION, bureau_status, check_cycle, cycle_bounds
from finloop.credit.collections.models import BureauExport
from finloop.credit.servicing.models import EndOfDayRun, LoanAccount, LoanMonthEnd
from finloop.db.uow import UnitOfWork


def get_export(uow: UnitOfWork, tenant_id: str, export_id: str) -> BureauExport:
    row = uow.session.get(BureauExport, export_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("No such bureau export.", code="bureau_export_not_found", param="export_id")
    return row


def find_export(uow: UnitOfWork, tenant_id: str, cycle: str) -> BureauExport | None:
    return uow.session.scalar(select(BureauExport).where(BureauExport.tenant_id == tenant_id,
                                                         BureauExport.cycle == cycle))


def list_exports(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50) -> list[BureauExport]:
    query = select(BureauExport).where(BureauExport.tenant_id == tenant_id)
    if after:
        query = query.where(BureauExport.id > after)
    return list(uow.session.scalars(query.order_by(BureauExport.id).limit(limit)))


def month_end_processed(uow: UnitOfWork, tenant_id: str, cycle: str) -> bool:
    _, last = cycle_bounds(cycle)
    return uow.session.scalar(select(EndOfDayRun.business_date).where(
        EndOfDayRun.tenant_id == tenant_id, EndOfDayRun.status == "completed", EndOfDayRun.business_date >= last)
        .limit(1)) is not None


def render(tenant_id: str, cycle: str, rows: list[tuple[LoanMonthEnd, LoanAccount]]) -> tuple[str, dict[str, object]]:
    """The file's text and its totals (balance per currency, records per status)."""
    _, last = cycle_bounds(cycle)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["H", BUREAU_LAYOUT_VERSION, tenant_id, cycle, last.isoformat()])
    balances: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    control = 0
    for snapshot, account in rows:
        status = bureau_status(snapshot.state, snapshot.bucket)
        closed = account.closed_on if account.closed_on is not None and account.closed_on <= last else None
        writer.writerow(["D", account.loan_id, account.applicant_id, account.kind, account.currency,
                         account.disbursed_on.isoformat(), account.principal_amount, snapshot.principal_outstanding,
                         snapshot.dpd, snapshot.max_dpd, snapshot.bucket, status,
                         closed.isoformat() if closed else ""])
        balances[account.currency] += snapshot.principal_outstanding
        statuses[status] += 1
        control += snapshot.principal_outstanding
    writer.writerow(["T", len(rows), control])
    return out.getvalue(), {"balance_by_currency": dict(sorted(balances.items())),
                            "records_by_status": dict(sorted(statuses.items())), "control_total": control}


def export_cycle(uow: UnitOfWork, tenant_id: str, cycle: object, *, actor: str) -> BureauExport:
    """The bureau file of ``cycle``: made and stored the first time, returned as stored afterwards."""
    checked = check_cycle(cycle)
    existing = find_export(uow, tenant_id, checked)
    if existing is not None:
        return existing
    if not month_end_processed(uow, tenant_id, checked):
        raise Conflict(f"The month {checked} has not been closed by the servicing end of day yet.",
                       code="cycle_not_closed", param="cycle")
    rows = [(snapshot, account) for snapshot, account in uow.session.execute(
        select(LoanMonthEnd, LoanAccount).join(LoanAccount, LoanAccount.loan_id == LoanMonthEnd.loan_id)
        .where(LoanMonthEnd.tenant_id == tenant_id, LoanMonthEnd.month == checked)
        .order_by(LoanMonthEnd.loan_id)).all()]
    content, totals = render(tenant_id, checked, rows)
    row = BureauExport(id=uow.ids.new("bureau_export"), tenant_id=tenant_id, cycle=checked,
                       layout_version=BUREAU_LAYOUT_VERSION, record_count=len(rows), totals=totals,
                       sha256=hashlib.sha256(content.encode()).hexdigest(), content=content, created_by=actor[:60],
                       created_at=uow.clock.now())
    try:
        with uow.session.begin_nested():
            uow.session.add(row)
            uow.session.flush()
    except IntegrityError:
        # Another export of the cycle committed first: that one is the cycle's file.
        found = find_export(uow, tenant_id, checked)
        assert found is not None
        return found
    audit.record(uow, tenant_id, actor=actor, action="credit.bureau_export.created", object_type="bureau_export",
                 object_id=row.id, after={"cycle": checked, "record_count": len(rows), "sha256": row.sha256})
    return row


def due_cycle(uow: UnitOfWork, tenant_id: str, business_date: date) -> str | None:
    """The cycle the daily job should export on ``business_date``: the previous month, once its month-end was
    processed, while it has no export, and when the month has snapshots (a tenant's first month is not filed
    empty)."""
    first = business_date.replace(day=1)
    previous = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
    cycle = f"{previous.year:04d}-{previous.month:02d}"
    if find_export(uow, tenant_id, cycle) is not None or not month_end_processed(uow, tenant_id, cycle):
        return None
    has_rows = uow.session.scalar(select(LoanMonthEnd.loan_id).where(
        LoanMonthEnd.tenant_id == tenant_id, LoanMonthEnd.month == cycle).limit(1))
    return cycle if has_rows is not None else None
