"""Export a tenant's journal in Beancount syntax, so Beancount's own checker can audit our books.

Invariants owned here:
- the account name mapping is injective: two different ledger accounts codes never share a Beancount name.
  The root comes from the account type (Assets, Liabilities, Equity, Income, Expenses); every further
  component is sanitised to Beancount's rules (an uppercase letter or digit first, then letters, digits
  and dashes), and siblings whose sanitised components collide get a short hash of their code segment;
- the accounts of one code in several currencies are one Beancount account opened for those currencies;
- amounts are converted exactly: minor units scaled by the currency's ISO 4217 exponent as a Decimal;
- every entry is one transaction dated by its business date (Beancount works by date, not time: the
  instant stays in the ``effective-at`` metadata), written in effective order;
- each account gets, per currency, a balance assertion with zero tolerance dated the day after the last
  entry; its amount comes from our running sums, never from the exported postings, summed over the
  account and its sub-accounts as Beancount does. So bean-check agreeing means postings and running
  sums agree, counted by an independent engine;
- everything is read in one consistent snapshot (REPEATABLE READ on PostgreSQL; one read transaction on
  SQLite), so the assertions match the postings exported beside them even while others post.

Pending holds are not part of the journal (they post nothing); they are listed as comments.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO, cast

from sqlalchemy import Table, and_, func, or_, select

from finloop.core.errors import NotFound
from finloop.core.money import currency
from finloop.db.uow import UnitOfWork
from finloop.ledger.domain import ROOT_TYPES, AccountType, HoldStatus
from finloop.ledger.models import Account, Entry, Hold, Posting
from finloop.tenancy.calendar import get_calendar
from finloop.tenancy.models import Tenant

accounts_t = cast(Table, Account.__table__)
entries_t = cast(Table, Entry.__table__)
postings_t = cast(Table, Posting.__table__)
holds_t = cast(Table, Hold.__table__)

BEANCOUNT_ROOTS = {
    AccountType.ASSET: "Assets",
    AccountType.LIABILITY: "Liabilities",
    AccountType.EQUITY: "Equity",
    AccountType.INCOME: "Income",
    AccountType.EXPENSE: "Expenses",
}

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9-]")
_COMPONENT = re.compile(r"^[A-Z0-9][A-Za-z0-9-]*$")
_HASH_LENGTH = 6

AccountKey = tuple[AccountType, str]


# ---------------------------------------------------------------------------------------------- names


def sanitise_component(segment: str) -> str:
    """One account-code segment as a valid Beancount component (not necessarily unique)."""
    text = unicodedata.normalize("NFKD", segment).encode("ascii", "ignore").decode("ascii")
    text = _NOT_ALLOWED.sub("-", text)
    if text[:1].isalpha():
        text = text[0].upper() + text[1:]
    if not _COMPONENT.match(text):
        text = "X" + text
    return text


def _segment_hash(segment: str, length: int) -> str:
    return hashlib.sha256(segment.encode("utf-8")).hexdigest()[:length]


def _name_siblings(segments: Iterable[str]) -> dict[str, str]:
    """Components for the distinct segments under one parent, distinct from each other.

    A segment that is already a valid component keeps it; so does one whose sanitised form no sibling
    shares. The others get a hash of the segment appended, lengthened until it is unique.
    """
    distinct = sorted(set(segments))
    base = {segment: sanitise_component(segment) for segment in distinct}
    named = {segment: segment for segment in distinct if base[segment] == segment}
    used = set(named.values())
    waiting = [segment for segment in distinct if segment not in named]
    shared: dict[str, int] = defaultdict(int)
    for segment in waiting:
        shared[base[segment]] += 1
    for segment in waiting:
        if shared[base[segment]] == 1 and base[segment] not in used:
            named[segment] = base[segment]
            used.add(base[segment])
    for segment in waiting:
        if segment in named:
            continue
        length = _HASH_LENGTH
        candidate = f"{base[segment]}-{_segment_hash(segment, length)}"
        while candidate in used:
            length += 2
            candidate = f"{base[segment]}-{_segment_hash(segment, length)}"
        named[segment] = candidate
        used.add(candidate)
    return named


def _path(key: AccountKey) -> tuple[str, ...]:
    account_type, code = key
    segments = code.split(":")
    if ROOT_TYPES.get(segments[0]) is account_type:
        # A bare root (no segment of its own) becomes the empty segment, which no real code segment is.
        segments = segments[1:] or [""]
    return (BEANCOUNT_ROOTS[account_type], *segments)


def beancount_names(keys: Iterable[AccountKey]) -> dict[AccountKey, str]:
    """Map (type, code) pairs to Beancount account names, injectively and keeping the hierarchy."""
    paths = {key: _path(key) for key in set(keys)}
    prefixes = {path[:depth] for path in paths.values() for depth in range(2, len(path) + 1)}
    names: dict[tuple[str, ...], str] = {(root,): root for root in BEANCOUNT_ROOTS.values()}
    by_parent: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for prefix in prefixes:
        by_parent[prefix[:-1]].append(prefix[-1])
    # Parents before children: a prefix is named once the name of its parent is known.
    for parent in sorted(by_parent, key=len):
        for segment, component in _name_siblings(by_parent[parent]).items():
            names[(*parent, segment)] = f"{names[parent]}:{component}"
    return {key: names[path] for key, path in paths.items()}


# ---------------------------------------------------------------------------------------------- formatting


def major_units(minor: int, currency_code: str) -> str:
    """Minor units as an exact major-unit decimal string, with the currency's number of decimals."""
    exponent = currency(currency_code).exponent
    return format(Decimal(minor).scaleb(-exponent), "f")


def quote(text: str) -> str:
    """A Beancount string literal: one line, with backslashes and quotes escaped."""
    one_line = " ".join(text.split())
    return '"' + one_line.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _utc_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------- export


@dataclass(frozen=True, slots=True)
class ExportSummary:
    accounts: int
    entries: int
    postings: int
    balance_assertions: int
    pending_holds: int


@dataclass
class _Opened:
    key: AccountKey
    opens_on: date
    currencies: set[str]
    account_ids: list[str]


def _consistent_snapshot(uow: UnitOfWork) -> None:
    # One snapshot for every query below; only possible before the transaction's first statement.
    if uow.dialect == "postgresql" and not uow.session.in_transaction():
        uow.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def export_beancount(uow: UnitOfWork, tenant_id: str, out: TextIO, *, page_size: int = 2000) -> ExportSummary:
    """Write the tenant's whole journal to ``out`` in Beancount syntax.

    Pass a fresh unit of work: on PostgreSQL the export then reads one REPEATABLE READ snapshot.
    """
    _consistent_snapshot(uow)
    tenant = uow.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.", code="tenant_not_found", param="tenant_id")
    calendar = get_calendar(uow, tenant_id)
    accounts = uow.session.execute(
        select(accounts_t.c.id, accounts_t.c.code, accounts_t.c.type, accounts_t.c.currency,
               accounts_t.c.created_at, accounts_t.c.debits_posted, accounts_t.c.credits_posted)
        .where(accounts_t.c.tenant_id == tenant_id).order_by(accounts_t.c.id)).all()
    first_used: dict[str, date] = {
        row[0]: row[1] for row in uow.session.execute(
            select(postings_t.c.account_id, func.min(entries_t.c.business_date))
            .join(entries_t, entries_t.c.id == postings_t.c.entry_id)
            .where(postings_t.c.tenant_id == tenant_id).group_by(postings_t.c.account_id))}
    last_booked: date | None = uow.session.scalar(
        select(func.max(entries_t.c.business_date)).where(entries_t.c.tenant_id == tenant_id))

    keys = {row.id: (AccountType(row.type), str(row.code)) for row in accounts}
    names = beancount_names(keys.values())
    name_of = {account_id: names[key] for account_id, key in keys.items()}
    opened: dict[str, _Opened] = {}
    for row in accounts:
        opens_on = calendar.local_date(row.created_at)
        if row.id in first_used:
            opens_on = min(opens_on, first_used[row.id])
        name = name_of[row.id]
        entry = opened.setdefault(name, _Opened(keys[row.id], opens_on, set(), []))
        entry.opens_on = min(entry.opens_on, opens_on)
        entry.currencies.add(str(row.currency))
        entry.account_ids.append(str(row.id))

    out.write(f"; finloop journal of tenant {tenant.id}, exported {_utc_text(uow.clock.now())}\n")
    out.write(f"; business dates by the tenant's calendar: {calendar.timezone}, cut-off "
              f"{calendar.cutoff.strftime('%H:%M')}\n")
    out.write(f"option \"title\" {quote(f'finloop: {tenant.name}')}\n\n")
    if opened:
        start = min(o.opens_on for o in opened.values())
        for code in sorted({str(row.currency) for row in accounts}):
            info = currency(code)
            out.write(f"{start.isoformat()} commodity {code}\n  name: {quote(info.name)}\n"
                      f"  exponent: {info.exponent}\n")
        out.write("\n")
    for name in sorted(opened):
        item = opened[name]
        out.write(f"{item.opens_on.isoformat()} open {name} {','.join(sorted(item.currencies))}\n"
                  f"  code: {quote(item.key[1])}\n  account-ids: {quote(' '.join(item.account_ids))}\n")
    out.write("\n")

    entries, postings = _write_transactions(uow, tenant_id, out, name_of, page_size)

    assertions = 0
    if opened:
        balance_on = max([*(o.opens_on for o in opened.values()), *([last_booked] if last_booked else [])])
        balance_on += timedelta(days=1)
        totals = _asserted_balances(opened, [(name_of[row.id], str(row.currency),
                                              int(row.debits_posted) - int(row.credits_posted))
                                             for row in accounts])
        out.write("\n; balances from finloop's running sums (debits - credits), after every entry\n")
        for (name, code), amount in sorted(totals.items()):
            out.write(f"{balance_on.isoformat()} balance {name}  {major_units(amount, code)} ~ 0 {code}\n")
            assertions += 1

    pending = _write_pending_holds(uow, tenant_id, out, name_of)
    return ExportSummary(len(accounts), entries, postings, assertions, pending)


def _asserted_balances(opened: dict[str, _Opened], balances: list[tuple[str, str, int]]) -> dict[tuple[str, str], int]:
    """Per Beancount account and currency it is opened for: its own balance plus its sub-accounts'."""
    totals = {(name, code): 0 for name, item in opened.items() for code in item.currencies}
    for name, code, amount in balances:
        parts = name.split(":")
        for depth in range(2, len(parts) + 1):
            ancestor = (":".join(parts[:depth]), code)
            if ancestor in totals:
                totals[ancestor] += amount
    return totals


def _write_transactions(uow: UnitOfWork, tenant_id: str, out: TextIO, name_of: dict[str, str],
                        page_size: int) -> tuple[int, int]:
    entries = postings = 0
    after: tuple[datetime, str] | None = None
    while True:
        query = (select(entries_t.c.id, entries_t.c.kind, entries_t.c.description, entries_t.c.effective_at,
                        entries_t.c.business_date, entries_t.c.transfer_key, entries_t.c.reverses_id,
                        entries_t.c.hold_id)
                 .where(entries_t.c.tenant_id == tenant_id)
                 .order_by(entries_t.c.effective_at, entries_t.c.id).limit(page_size))
        if after is not None:
            query = query.where(or_(entries_t.c.effective_at > after[0],
                                    and_(entries_t.c.effective_at == after[0], entries_t.c.id > after[1])))
        page = uow.session.execute(query).all()
        if not page:
            return entries, postings
        legs: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        for row in uow.session.execute(
                select(postings_t.c.entry_id, postings_t.c.account_id, postings_t.c.amount, postings_t.c.currency)
                .where(postings_t.c.entry_id.in_([entry.id for entry in page])).order_by(postings_t.c.id)):
            legs[row.entry_id].append((str(row.account_id), int(row.amount), str(row.currency)))
        for entry in page:
            out.write(_transaction(entry, legs[entry.id], name_of))
            entries += 1
            postings += len(legs[entry.id])
        after = (page[-1].effective_at, page[-1].id)


def _transaction(entry: Any, legs: list[tuple[str, int, str]], name_of: dict[str, str]) -> str:
    narration = entry.description or f"{entry.kind} {entry.id}"
    lines = [f"{entry.business_date.isoformat()} * {quote(narration)}",
             f"  id: {quote(entry.id)}",
             f"  kind: {quote(entry.kind)}",
             f"  effective-at: {quote(_utc_text(entry.effective_at))}",
             f"  transfer-key: {quote(entry.transfer_key)}"]
    if entry.reverses_id:
        lines.append(f"  reverses: {quote(entry.reverses_id)}")
    if entry.hold_id:
        lines.append(f"  hold: {quote(entry.hold_id)}")
    for account_id, amount, code in legs:
        lines.append(f"  {name_of[account_id]}  {major_units(amount, code)} {code}")
    return "\n".join(lines) + "\n\n"


def _write_pending_holds(uow: UnitOfWork, tenant_id: str, out: TextIO, name_of: dict[str, str]) -> int:
    count = 0
    for hold in uow.session.execute(
            select(holds_t.c.id, holds_t.c.debit_account_id, holds_t.c.credit_account_id, holds_t.c.amount,
                   holds_t.c.currency, holds_t.c.expires_at)
            .where(holds_t.c.tenant_id == tenant_id, holds_t.c.status == HoldStatus.PENDING.value)
            .order_by(holds_t.c.id)):
        if count == 0:
            out.write("\n; pending holds (reserved, not posted, so not in the journal above)\n")
        expiry = f", expires {_utc_text(hold.expires_at)}" if hold.expires_at else ""
        out.write(f"; {hold.id}: {major_units(int(hold.amount), str(hold.currency))} {hold.currency} "
                  f"{name_of[hold.debit_account_id]} <- {name_of[hold.credit_account_id]}{expiry}\n")
        count += 1
    return count
