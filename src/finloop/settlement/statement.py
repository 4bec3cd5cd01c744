"""A party's statement: what it sold, what was taken, where its money is, and when the rest arrives.

Balances are read from the ledger accounts named in ``settlement.accounts`` at the time of the call;
sales and fees come from ``finloop.splits.service.party_earnings`` for every currency it reports on;
for a currency it does not (money credited to pending without a split, e.g. a plain payment), they are
marked ``earnings_source = "pending_credits"`` and computed from the credits and debits on the party's
pending account, fees and commissions unknown and reported as 0.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import aliased

from finloop.core.errors import InvalidRequest
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.models import Account, Entry, Posting
from finloop.settlement import service
from finloop.settlement.accounts import Bucket, PartyKind, party_account_code, party_receivable_code
from finloop.tenancy.calendar import get_calendar

MAX_MOVEMENTS = 1000
MAX_RANGE_DAYS = 400


@dataclass(frozen=True, slots=True)
class UpcomingSettlement:
    cohort_date: date
    settle_date: date
    currency: str
    amount: int
    settlement_currency: str


@dataclass(frozen=True, slots=True)
class UpcomingRelease:
    reserve_id: str
    kind: str  # reserve | freeze
    currency: str
    amount: int
    release_on: date


@dataclass(frozen=True, slots=True)
class Movement:
    entry_id: str
    business_date: date
    bucket: str  # pending | frozen | reserve | available | receivable
    currency: str
    amount: int  # the change of the bucket's balance (receivable: what the party owes us)
    description: str


@dataclass(slots=True)
class CurrencyStatement:
    currency: str
    earnings_source: str = "pending_credits"  # or "splits"
    gross_sales_amount: int = 0
    fee_amount: int = 0
    platform_commission_amount: int = 0
    promoter_commission_amount: int = 0
    clawed_back_amount: int = 0
    net_amount: int = 0
    pending: int = 0
    frozen: int = 0
    reserve: int = 0
    available: int = 0
    receivable: int = 0
    paid_out_amount: int = 0
    upcoming_settlements: list[UpcomingSettlement] = field(default_factory=list)
    upcoming_releases: list[UpcomingRelease] = field(default_factory=list)


@dataclass(slots=True)
class PartyStatement:
    party_kind: PartyKind
    party_id: str
    from_on: date
    to_on: date
    generated_at: datetime
    currencies: list[CurrencyStatement]
    movements: list[Movement]
    movements_truncated: bool = False


def _earnings(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, from_on: date, to_on: date
              ) -> list[Any]:
    from finloop.splits import service as splits  # splits reads settlement's accounts: imported late

    return list(splits.party_earnings(uow, tenant_id, party_kind=kind, party_id=party_id, from_on=from_on,
                                      to_on=to_on))


def statement(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind | str, party_id: str, from_on: date,
              to_on: date) -> PartyStatement:
    kind = service.check_party(uow, tenant_id, party_kind, party_id)
    if to_on < from_on:
        raise InvalidRequest("to_on is on or after from_on.", code="invalid_date_range", param="to_on")
    if (to_on - from_on).days > MAX_RANGE_DAYS:
        raise InvalidRequest(f"A statement covers at most {MAX_RANGE_DAYS} days.", code="invalid_date_range",
                             param="to_on")
    prefix = f"liabilities:{kind.value}:{party_id}:"
    receivable_code = party_receivable_code(kind, party_id)
    accounts = list(uow.session.scalars(select(Account).where(
        Account.tenant_id == tenant_id,
        (Account.code.startswith(prefix, autoescape=True)) | (Account.code == receivable_code))))
    by_currency: dict[str, CurrencyStatement] = {}

    def line(code: str) -> CurrencyStatement:
        return by_currency.setdefault(code, CurrencyStatement(code))

    buckets: dict[str, str] = {}
    for account in accounts:
        uow.session.refresh(account)
        posted = ledger.balances(account).posted
        bucket = "receivable" if account.code == receivable_code else account.code[len(prefix):]
        if bucket not in {"receivable", *(b.value for b in Bucket)}:
            continue
        buckets[account.id] = bucket
        setattr(line(account.currency), bucket, posted)

    _fallback_earnings(uow, tenant_id, kind, party_id, from_on, to_on, line)
    for item in _earnings(uow, tenant_id, kind, party_id, from_on, to_on):
        row = line(item.currency)
        row.earnings_source = "splits"
        for name in ("gross_sales_amount", "fee_amount", "platform_commission_amount",
                     "promoter_commission_amount", "clawed_back_amount", "net_amount"):
            setattr(row, name, int(getattr(item, name)))

    _paid_out(uow, tenant_id, [a for a in accounts if buckets.get(a.id) == Bucket.AVAILABLE.value],
              from_on, to_on, line)
    calendar = get_calendar(uow, tenant_id)
    today = calendar.business_date(uow.clock.now())
    rule = service.ProfileRule.of(service.find_profile(uow, tenant_id, party_kind=kind, party_id=party_id))
    for cohort in service.unsettled_cohorts(uow, tenant_id, up_to=today,
                                            party=(kind, party_id)):
        day = max(service.cohort_settle_date(rule, calendar, cohort), today)
        line(cohort.currency).upcoming_settlements.append(UpcomingSettlement(
            cohort.cohort_date, day, cohort.currency, cohort.amount, rule.settlement_currency or cohort.currency))
    for held in service.held_reserves(uow, tenant_id, kind, party_id):
        line(held.currency).upcoming_releases.append(UpcomingRelease(
            held.id, held.kind, held.currency, held.amount, held.release_on))

    movements, truncated = _movements(uow, tenant_id, buckets, from_on, to_on)
    return PartyStatement(kind, party_id, from_on, to_on, uow.clock.now(),
                          [by_currency[c] for c in sorted(by_currency)], movements, truncated)


def _fallback_earnings(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, from_on: date,
                       to_on: date, line: Any) -> None:
    rows = uow.session.execute(
        select(Posting.currency, Posting.amount).join(Entry, Entry.id == Posting.entry_id)
        .join(Account, Account.id == Posting.account_id)
        .where(Account.tenant_id == tenant_id,
               Account.code == party_account_code(kind, party_id, Bucket.PENDING),
               Entry.tenant_id == tenant_id, Entry.business_date >= from_on, Entry.business_date <= to_on,
               Entry.id.not_in(service.settlement_entry_ids(tenant_id))))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ccy, amount in rows:
        totals[ccy][0 if amount < 0 else 1] += abs(int(amount))
    for ccy, (credits, debits) in totals.items():
        row = line(ccy)
        row.gross_sales_amount, row.clawed_back_amount, row.net_amount = credits, debits, credits - debits


def _paid_out(uow: UnitOfWork, tenant_id: str, available: list[Account], from_on: date, to_on: date,
              line: Any) -> None:
    """Debits of ``available`` in entries that also touch a bank account (``assets:bank:*``): payouts."""
    if not available:
        return
    bank_posting = aliased(Posting)
    bank_account = aliased(Account)
    rows = uow.session.execute(
        select(Posting.currency, Posting.amount).join(Entry, Entry.id == Posting.entry_id)
        .where(Posting.tenant_id == tenant_id, Posting.account_id.in_([a.id for a in available]),
               Posting.amount > 0, Entry.tenant_id == tenant_id, Entry.business_date >= from_on,
               Entry.business_date <= to_on,
               exists(select(bank_posting.id).join(bank_account, bank_account.id == bank_posting.account_id)
                      .where(and_(bank_posting.entry_id == Entry.id, bank_posting.tenant_id == tenant_id,
                                  bank_account.code.startswith("assets:bank:"))))))
    for ccy, amount in rows:
        line(ccy).paid_out_amount += int(amount)


def _movements(uow: UnitOfWork, tenant_id: str, buckets: dict[str, str], from_on: date, to_on: date
               ) -> tuple[list[Movement], bool]:
    if not buckets:
        return [], False
    rows = uow.session.execute(
        select(Posting.entry_id, Entry.business_date, Posting.account_id, Posting.currency, Posting.amount,
               Entry.description)
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Posting.tenant_id == tenant_id, Posting.account_id.in_(list(buckets)),
               Entry.tenant_id == tenant_id, Entry.business_date >= from_on, Entry.business_date <= to_on)
        .order_by(Entry.business_date, Posting.id).limit(MAX_MOVEMENTS + 1)).all()
    movements = []
    for entry_id, business_date, account_id, ccy, amount, description in rows[:MAX_MOVEMENTS]:
        bucket = buckets[account_id]
        signed = int(amount) if bucket == "receivable" else -int(amount)
        movements.append(Movement(entry_id, business_date, bucket, ccy, signed, description or ""))
    return movements, len(rows) > MAX_MOVEMENTS


def to_csv(result: PartyStatement) -> str:
    """One table: ``section,currency,date,name,amount,detail`` with summary, balance, upcoming and
    movement rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "currency", "date", "name", "amount", "detail"])
    for row in result.currencies:
        for name in ("gross_sales_amount", "fee_amount", "platform_commission_amount", "promoter_commission_amount",
                     "clawed_back_amount", "net_amount", "paid_out_amount"):
            writer.writerow(["summary", row.currency, "", name, getattr(row, name), row.earnings_source])
        for name in ("pending", "frozen", "reserve", "available", "receivable"):
            writer.writerow(["balance", row.currency, "", name, getattr(row, name), ""])
        for upcoming in row.upcoming_settlements:
            writer.writerow(["upcoming_settlement", upcoming.currency, upcoming.settle_date.isoformat(),
                             f"cohort {upcoming.cohort_date.isoformat()}", upcoming.amount,
                             upcoming.settlement_currency])
        for release in row.upcoming_releases:
            writer.writerow(["upcoming_release", release.currency, release.release_on.isoformat(), release.kind,
                             release.amount, release.reserve_id])
    for movement in result.movements:
        writer.writerow(["movement", movement.currency, movement.business_date.isoformat(), movement.bucket,
                         movement.amount, _safe(f"{movement.entry_id} {movement.description}")])
    return out.getvalue()


def _safe(text: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
