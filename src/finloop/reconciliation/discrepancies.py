"""Reconciliation runs and discrepancies as work items.

``run_reconciliation`` loads a source's lines of a business date (the importers' ``load_lines``) and our
records (``platform.load_records``), adds the records of still-open ``missing_at_channel`` /
``settlement_timing`` items of earlier days (so a late file re-matches them: rule ``late_match``), runs
the pure engine (``matching.match``) and stores the run, its matches and its discrepancies.

Idempotent: the inputs are fingerprinted; the same inputs again return the existing run and write
nothing. Different inputs for the same day (a corrected or late file) make a new run whose
discrepancies are upserted by natural key (class + references): an item found again keeps its id,
status, assignee and notes; a resolved item stays resolved; an open item no longer found is resolved
as ``cleared`` (the new inputs no longer show the break).

Work items move ``open -> investigating -> resolved`` (``open -> resolved`` too); a resolved item
never changes again (409). Resolution actions:

- ``write_off``: one balanced entry (permanent key ``recon:write_off:<id>``) for the ``difference``:
  less money at the counterparty than our books say: Dr ``expenses:reconciliation_differences``, Cr the
  receivable (the channel's receivable sub-account ``assets:channel:<code>:<shard>`` of the payment, or
  ``assets:bank:<account>`` for a bank source); more: Dr the receivable, Cr
  ``income:reconciliation_differences``. Not for ``settlement_timing`` (the money is only late).
- ``accept_timing``: for ``settlement_timing`` and ``missing_at_channel`` (booked later); no entry.
- ``mark_no_action``: with a reason; no entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

import polars as pl
from sqlalchemy import func, insert, select

from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, TransferSpec
from finloop.payments.postings import AccountSpec, channel_receivable_code, ensure_account, shard_of
from finloop.reconciliation import platform
from finloop.reconciliation.match_models import Discrepancy, DiscrepancyNote, ReconMatch, ReconRun
from finloop.reconciliation.matching import (
    LINE_SCHEMA,
    RECORD_SCHEMA,
    DiscrepancyClass,
    MatchConfig,
    MatchResult,
    Rule,
    conform,
    match,
)
from finloop.settlement.accounts import bank_account_code

EXPENSE_CODE = "expenses:reconciliation_differences"
INCOME_CODE = "income:reconciliation_differences"
MAX_NOTE = 4000
MAX_REASON = 1000
MAX_ASSIGNEE = 200
MAX_SOURCE = 100


class DiscrepancyStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"


class Action(StrEnum):
    """What a user may do to resolve an item."""

    WRITE_OFF = "write_off"
    ACCEPT_TIMING = "accept_timing"
    MARK_NO_ACTION = "mark_no_action"


#: Resolutions the engine records by itself.
LATE_MATCH = Rule.LATE_MATCH.value
CLEARED = "cleared"

TRANSITIONS: dict[DiscrepancyStatus, frozenset[DiscrepancyStatus]] = {
    DiscrepancyStatus.OPEN: frozenset({DiscrepancyStatus.INVESTIGATING, DiscrepancyStatus.RESOLVED}),
    DiscrepancyStatus.INVESTIGATING: frozenset({DiscrepancyStatus.RESOLVED}),
    DiscrepancyStatus.RESOLVED: frozenset(),
}

#: Line kinds of a channel bill that are not matched there (the bank statement has them).
CHANNEL_IGNORED_KINDS = frozenset({"fee", "payout", "settlement"})

#: How many days back a run looks for open items its lines may late-match.
LATE_MATCH_DAYS = 31

#: Classes whose record the next days' runs look for (the channel may book it later).
CARRIED_CLASSES = (DiscrepancyClass.MISSING_AT_CHANNEL.value, DiscrepancyClass.SETTLEMENT_TIMING.value)


def _move(item: Discrepancy, to: DiscrepancyStatus) -> None:
    current = DiscrepancyStatus(item.status)
    if to == current:
        return
    if to not in TRANSITIONS[current]:
        raise Conflict(f"Discrepancy {item.id} is {current}; it cannot become {to}.",
                       code="discrepancy_resolved" if current == DiscrepancyStatus.RESOLVED
                       else "invalid_transition", param="status")
    item.status = to.value


def _ensure_unresolved(item: Discrepancy) -> None:
    if item.status == DiscrepancyStatus.RESOLVED.value:
        raise Conflict(f"Discrepancy {item.id} is resolved.", code="discrepancy_resolved", param="discrepancy_id")


def check_source(source: str) -> str:
    if not source or len(source) > MAX_SOURCE or not source.isprintable():
        raise InvalidRequest(f"source is 1 to {MAX_SOURCE} printable characters.", code="invalid_source",
                             param="source")
    return source


# --- runs ------------------------------------------------------------------------------------------------

def _fingerprint(lines: pl.DataFrame, records: pl.DataFrame, config: MatchConfig) -> str:
    digest = hashlib.sha256(repr(replace(config, ignored_kinds=frozenset(sorted(config.ignored_kinds)))).encode())
    for frame, key in ((lines, "id"), (records, "record_id")):
        digest.update(str(frame.height).encode())
        if frame.height:
            # Stable across processes and versions: the rows' CSV text, in key order.
            digest.update(frame.sort(key).write_csv().encode())
    return digest.hexdigest()


def carried_records(uow: UnitOfWork, tenant_id: str, *, source: str, business_date: date) -> pl.DataFrame:
    """Records of missing-at-channel and timing items of the ``LATE_MATCH_DAYS`` before, for a late match:
    those still open, and those this same day already late-matched (so re-running it sees the same inputs)."""
    items = uow.session.scalars(select(Discrepancy).where(
        Discrepancy.tenant_id == tenant_id, Discrepancy.source == source, Discrepancy.business_date < business_date,
        Discrepancy.business_date >= business_date - timedelta(days=LATE_MATCH_DAYS),
        Discrepancy.discrepancy_class.in_(CARRIED_CLASSES),
        (Discrepancy.status != DiscrepancyStatus.RESOLVED.value) | (Discrepancy.resolution == LATE_MATCH))
        .order_by(Discrepancy.id))
    rows = []
    for item in items:
        record = dict(item.record or {})
        late_on = record.pop("late_matched_on", None)
        if not record.get("record_id") or (item.status == DiscrepancyStatus.RESOLVED.value
                                           and late_on != business_date.isoformat()):
            continue
        record["occurred_at"] = datetime.fromisoformat(record["occurred_at"]) if record.get("occurred_at") else None
        rows.append({**record, "carried_from": item.id})
    return platform.to_frame(rows)


def _load_lines(uow: UnitOfWork, tenant_id: str, source: str, business_date: date) -> pl.DataFrame:
    """The imported lines; no imported file at all is a 409 (matching nothing would call every record
    missing), while a file without lines (a quiet day) is fine."""
    from finloop.reconciliation import service as imports

    if not imports.list_files(uow, tenant_id, source=source, business_date=business_date, limit=1):
        raise Conflict(f"No file of {source} is imported for {business_date}: import the bill or statement "
                       "first.", code="no_file", param="source")
    return imports.load_lines(uow, tenant_id, source=source, business_date=business_date)


def run_reconciliation(uow: UnitOfWork, tenant_id: str, *, source: str, business_date: date,
                       lines: pl.DataFrame | None = None, records: pl.DataFrame | None = None,
                       config: MatchConfig | None = None) -> ReconRun:
    """Match ``source``'s lines of ``business_date`` against our records; idempotent per inputs.

    ``lines`` / ``records`` default to the imported lines and ``platform.load_records``.
    """
    source = check_source(source)
    if lines is None:
        lines = _load_lines(uow, tenant_id, source, business_date)
    timing_from: datetime | None = None
    if records is None:
        records, timing_from = platform.load_records(uow, tenant_id, source=source, business_date=business_date)
    config = config or MatchConfig()
    if config.timing_from is None and timing_from is not None:
        config = replace(config, timing_from=timing_from)
    if not platform.is_bank_source(uow, tenant_id, source):
        # A channel bill's payouts and settlements are our bank's business: the bank source matches them.
        config = replace(config, ignored_kinds=config.ignored_kinds | CHANNEL_IGNORED_KINDS)
    lines = conform(lines, LINE_SCHEMA)
    carried = carried_records(uow, tenant_id, source=source, business_date=business_date)
    all_records = pl.concat([conform(records, RECORD_SCHEMA), carried], how="vertical")
    fingerprint = _fingerprint(lines, all_records, config)
    existing = uow.session.scalar(select(ReconRun).where(
        ReconRun.tenant_id == tenant_id, ReconRun.source == source, ReconRun.business_date == business_date,
        ReconRun.fingerprint == fingerprint))
    if existing is not None:
        return existing
    result = match(lines, all_records, config)
    now = uow.clock.now()
    run = ReconRun(id=uow.ids.new("recon_run"), tenant_id=tenant_id, source=source, business_date=business_date,
                   fingerprint=fingerprint, status="running", lines_count=lines.height,
                   records_count=records.height, matched_count=0, late_matched_count=0, counts={}, started_at=now)
    uow.session.add(run)
    uow.session.flush()
    _store_matches(uow, tenant_id, run, result)
    _store_discrepancies(uow, tenant_id, run, result, lines, all_records)
    late = _resolve_late(uow, tenant_id, run, result)
    counts = result.counts()
    matched_lines = result.matches["line_id"].n_unique() if result.matches.height else 0
    run.matched_count = result.matches.height
    run.late_matched_count = late
    run.counts = {**counts, "matched_lines": int(matched_lines),
                  "unmatched_lines": int(lines.height - matched_lines - result.ignored_lines),
                  "difference_by_currency": _differences(result.discrepancies)}
    run.status = "finished"
    run.finished_at = uow.clock.now()
    return run


def _differences(discrepancies: pl.DataFrame) -> dict[str, int]:
    if discrepancies.height == 0:
        return {}
    totals = discrepancies.group_by("currency").agg(pl.col("difference").sum()).sort("currency")
    return {str(c): int(v) for c, v in totals.iter_rows()}


MATCH_COLUMNS = ("id", "tenant_id", "run_id", "line_id", "record_id", "record_kind", "rule")


def _store_matches(uow: UnitOfWork, tenant_id: str, run: ReconRun, result: MatchResult) -> None:
    """Insert the run's matches: COPY on PostgreSQL (a day of a busy channel is many rows), else batches."""
    if result.matches.height == 0:
        return
    ids = pl.Series("id", [uow.ids.new("recon_match") for _ in range(result.matches.height)], dtype=pl.Utf8)
    frame = result.matches.with_columns(id=ids, tenant_id=pl.lit(tenant_id), run_id=pl.lit(run.id)).select(
        MATCH_COLUMNS)
    if uow.dialect == "postgresql":
        connection: Any = uow.session.connection().connection.driver_connection
        statement = f"COPY recon_matches ({', '.join(MATCH_COLUMNS)}) FROM STDIN (FORMAT csv)"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(frame.write_csv(include_header=False).encode())
        return
    rows = frame.to_dicts()
    for start in range(0, len(rows), 5000):
        uow.session.execute(insert(ReconMatch), rows[start:start + 5000])


def _record_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in ("record_id", "kind", "payment_id", "our_reference", "channel_reference",
                                   "channel", "amount", "fee_amount", "currency", "direction", "status",
                                   "merchant_id", "method", "group_key")}
    at = row.get("occurred_at")
    out["occurred_at"] = at.isoformat() if at is not None else None
    return out


def _store_discrepancies(uow: UnitOfWork, tenant_id: str, run: ReconRun, result: MatchResult,
                         lines: pl.DataFrame, records: pl.DataFrame) -> None:
    now = uow.clock.now()
    existing = {item.natural_key: item for item in uow.session.scalars(select(Discrepancy).where(
        Discrepancy.tenant_id == tenant_id, Discrepancy.source == run.source,
        Discrepancy.business_date == run.business_date))}
    record_ids = result.discrepancies.filter(pl.col("class").is_in(list(CARRIED_CLASSES)))["record_id"]
    by_record = {row["record_id"]: row for row in
                 records.filter(pl.col("record_id").is_in(record_ids.to_list())).iter_rows(named=True)}
    found: set[str] = set()
    for row in result.discrepancies.iter_rows(named=True):
        key = row["natural_key"][:400]
        found.add(key)
        fields = {"discrepancy_class": row["class"], "kind": row["kind"], "line_id": row["line_id"],
                  "record_id": row["record_id"], "payment_id": row["payment_id"],
                  "our_reference": (row["our_reference"] or None) and row["our_reference"][:500],
                  "channel_reference": (row["channel_reference"] or None) and row["channel_reference"][:500],
                  "currency": row["currency"] or "XXX", "line_amount": row["line_amount"],
                  "record_amount": row["record_amount"], "line_fee": row["line_fee"],
                  "record_fee": row["record_fee"], "difference": row["difference"] or 0,
                  "line_status": (row["line_status"] or None) and row["line_status"][:40],
                  "record_status": row["record_status"],
                  "record": _record_json(by_record[row["record_id"]]) if row["record_id"] in by_record else {}}
        item = existing.get(key)
        if item is None:
            item = Discrepancy(id=uow.ids.new("discrepancy"), tenant_id=tenant_id, source=run.source,
                               business_date=run.business_date, natural_key=key,
                               status=DiscrepancyStatus.OPEN.value, first_run_id=run.id, last_run_id=run.id,
                               created_at=now, updated_at=now, **fields)
            uow.session.add(item)
            existing[key] = item
            continue
        item.last_run_id = run.id
        if item.status != DiscrepancyStatus.RESOLVED.value:
            for name, value in fields.items():
                setattr(item, name, value)
            item.updated_at = now
    for key, item in existing.items():
        if key not in found and item.status != DiscrepancyStatus.RESOLVED.value:
            _close(item, CLEARED, f"not found by run {run.id}", "reconciliation", now)
    uow.session.flush()


def _close(item: Discrepancy, resolution: str, reason: str, actor: str, now: datetime) -> None:
    _move(item, DiscrepancyStatus.RESOLVED)
    item.resolution = resolution
    item.resolution_reason = reason[:MAX_REASON]
    item.resolved_by = actor[:200]
    item.resolved_at = now
    item.updated_at = now


def _resolve_late(uow: UnitOfWork, tenant_id: str, run: ReconRun, result: MatchResult) -> int:
    late = result.matches.filter(pl.col("carried_from").is_not_null())
    if late.height == 0:
        return 0
    now = uow.clock.now()
    ids = late["carried_from"].unique().to_list()
    by_id = {row["carried_from"]: row for row in late.iter_rows(named=True)}
    for item in uow.session.scalars(select(Discrepancy).where(Discrepancy.tenant_id == tenant_id,
                                                              Discrepancy.id.in_(ids))):
        if item.status != DiscrepancyStatus.RESOLVED.value:
            row = by_id[item.id]
            _close(item, LATE_MATCH, f"matched line {row['line_id']} of {run.source} on {run.business_date} "
                   f"by run {run.id}", "reconciliation", now)
            item.record = {**(item.record or {}), "late_matched_on": run.business_date.isoformat()}
    return len(ids)


def list_runs(uow: UnitOfWork, tenant_id: str, *, source: str | None = None, business_date: date | None = None,
              after: str | None = None, limit: int = 50) -> list[ReconRun]:
    query = select(ReconRun).where(ReconRun.tenant_id == tenant_id)
    if source:
        query = query.where(ReconRun.source == source)
    if business_date:
        query = query.where(ReconRun.business_date == business_date)
    if after:
        query = query.where(ReconRun.id < after)
    return list(uow.session.scalars(query.order_by(ReconRun.id.desc()).limit(limit + 1)))


def get_run(uow: UnitOfWork, tenant_id: str, run_id: str) -> ReconRun:
    run = uow.session.scalar(select(ReconRun).where(ReconRun.tenant_id == tenant_id, ReconRun.id == run_id))
    if run is None:
        raise NotFound(f"No reconciliation run {run_id}.", code="resource_missing", param="run_id")
    return run


def run_open_counts(uow: UnitOfWork, tenant_id: str, run: ReconRun) -> dict[str, dict[str, int]]:
    """Discrepancies of the run's source and day by class and status, as they stand now."""
    rows = uow.session.execute(select(Discrepancy.discrepancy_class, Discrepancy.status, func.count()).where(
        Discrepancy.tenant_id == tenant_id, Discrepancy.source == run.source,
        Discrepancy.business_date == run.business_date).group_by(Discrepancy.discrepancy_class, Discrepancy.status))
    out: dict[str, dict[str, int]] = {}
    for cls, status, count in rows:
        out.setdefault(str(cls), {})[str(status)] = int(count)
    return out


# --- work items ------------------------------------------------------------------------------------------

def _choice(value: str | None, allowed: type[StrEnum], param: str) -> str | None:
    if value is None:
        return None
    if value not in {m.value for m in allowed}:
        raise InvalidRequest(f"{param} is one of {', '.join(m.value for m in allowed)}.",
                             code="invalid_choice", param=param)
    return value


def list_discrepancies(uow: UnitOfWork, tenant_id: str, *, discrepancy_class: str | None = None,
                       status: str | None = None, source: str | None = None, business_date: date | None = None,
                       after: str | None = None, limit: int = 50) -> list[Discrepancy]:
    """Newest first; ``limit + 1`` rows (the extra one only says more exist)."""
    query = select(Discrepancy).where(Discrepancy.tenant_id == tenant_id)
    if _choice(discrepancy_class, DiscrepancyClass, "class"):
        query = query.where(Discrepancy.discrepancy_class == discrepancy_class)
    if _choice(status, DiscrepancyStatus, "status"):
        query = query.where(Discrepancy.status == status)
    if source:
        query = query.where(Discrepancy.source == source)
    if business_date:
        query = query.where(Discrepancy.business_date == business_date)
    if after:
        query = query.where(Discrepancy.id < after)
    return list(uow.session.scalars(query.order_by(Discrepancy.id.desc()).limit(limit + 1)))


def get_discrepancy(uow: UnitOfWork, tenant_id: str, discrepancy_id: str, *, lock: bool = False) -> Discrepancy:
    query = select(Discrepancy).where(Discrepancy.tenant_id == tenant_id, Discrepancy.id == discrepancy_id)
    item = uow.session.scalar(query.with_for_update() if lock else query)
    if item is None:
        raise NotFound(f"No discrepancy {discrepancy_id}.", code="resource_missing", param="discrepancy_id")
    return item


def list_notes(uow: UnitOfWork, tenant_id: str, discrepancy_id: str) -> list[DiscrepancyNote]:
    return list(uow.session.scalars(select(DiscrepancyNote).where(
        DiscrepancyNote.tenant_id == tenant_id, DiscrepancyNote.discrepancy_id == discrepancy_id)
        .order_by(DiscrepancyNote.id)))


def _text(value: str, *, param: str, max_length: int) -> str:
    value = value.strip()
    if not value or len(value) > max_length or "\x00" in value:
        raise InvalidRequest(f"{param} is 1 to {max_length} characters.", code="invalid_text", param=param)
    return value


def assign(uow: UnitOfWork, tenant_id: str, discrepancy_id: str, *, assignee: str) -> Discrepancy:
    """Give the item to someone; an open item goes under investigation."""
    assignee = _text(assignee, param="assignee", max_length=MAX_ASSIGNEE)
    item = get_discrepancy(uow, tenant_id, discrepancy_id, lock=True)
    _ensure_unresolved(item)
    _move(item, DiscrepancyStatus.INVESTIGATING)
    item.assignee = assignee
    item.updated_at = uow.clock.now()
    return item


def add_note(uow: UnitOfWork, tenant_id: str, discrepancy_id: str, *, author: str, text: str) -> DiscrepancyNote:
    text = _text(text, param="text", max_length=MAX_NOTE)
    item = get_discrepancy(uow, tenant_id, discrepancy_id)
    note = DiscrepancyNote(tenant_id=tenant_id, discrepancy_id=item.id, author=author[:200], text=text,
                           created_at=uow.clock.now())
    uow.session.add(note)
    uow.session.flush()
    return note


def receivable_account(uow: UnitOfWork, tenant_id: str, item: Discrepancy) -> str:
    """The account a write-off moves against: the bank account of a bank source, else the channel's
    receivable sub-account of the payment (the shard its capture used)."""
    if platform.is_bank_source(uow, tenant_id, item.source):
        code = bank_account_code(platform.bank_account_of(item.source))
    else:
        channel = (item.record or {}).get("channel") or item.source
        anchor = item.payment_id or item.record_id or item.our_reference or item.id
        code = channel_receivable_code(channel, shard_of(anchor))
    return ensure_account(uow, tenant_id, AccountSpec(code, AccountType.ASSET), item.currency)


def resolve(uow: UnitOfWork, tenant_id: str, discrepancy_id: str, *, action: str, reason: str | None = None,
            actor: str = "api") -> Discrepancy:
    """Resolve an item by ``action`` (``Action``); ``write_off`` posts the difference (see the module)."""
    chosen = Action(_choice(action, Action, "action") or "")
    note = _text(reason, param="reason", max_length=MAX_REASON) if reason is not None else None
    item = get_discrepancy(uow, tenant_id, discrepancy_id, lock=True)
    _ensure_unresolved(item)
    now = uow.clock.now()
    if chosen == Action.MARK_NO_ACTION:
        if note is None:
            raise InvalidRequest("mark_no_action needs a reason.", code="reason_required", param="reason")
    elif chosen == Action.ACCEPT_TIMING:
        if item.discrepancy_class not in CARRIED_CLASSES:
            raise Conflict(f"accept_timing is for {' and '.join(CARRIED_CLASSES)}, not {item.discrepancy_class}.",
                           code="action_not_allowed", param="action")
    else:
        if item.discrepancy_class == DiscrepancyClass.SETTLEMENT_TIMING.value:
            raise Conflict("A settlement-timing item is only late: accept_timing, not write_off.",
                           code="action_not_allowed", param="action")
        if item.difference == 0:
            raise Conflict("There is no money difference to write off.", code="nothing_to_write_off",
                           param="action")
        item.adjusting_entry_id = _post_write_off(uow, tenant_id, item)
    _close(item, chosen.value, note or chosen.value, actor, now)
    return item


def _post_write_off(uow: UnitOfWork, tenant_id: str, item: Discrepancy) -> str:
    receivable = receivable_account(uow, tenant_id, item)
    amount = abs(item.difference)
    if item.difference < 0:  # less at the counterparty than in our books: an expense
        other = ensure_account(uow, tenant_id, AccountSpec(EXPENSE_CODE, AccountType.EXPENSE), item.currency)
        spec = TransferSpec.simple(f"recon:write_off:{item.id}", other, receivable, amount, item.currency,
                                   f"reconciliation write-off {item.id}",
                                   metadata={"discrepancy_id": item.id, "class": item.discrepancy_class})
    else:
        other = ensure_account(uow, tenant_id, AccountSpec(INCOME_CODE, AccountType.INCOME), item.currency)
        spec = TransferSpec.simple(f"recon:write_off:{item.id}", receivable, other, amount, item.currency,
                                   f"reconciliation write-off {item.id}",
                                   metadata={"discrepancy_id": item.id, "class": item.discrepancy_class})
    return ledger.post_transfer(uow, tenant_id, spec).id
