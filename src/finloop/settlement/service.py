"""Settlement use cases: profiles, settling cohorts of pending money, releasing reserves and freezes.

A *cohort* is the net of the postings on a party's ``pending`` account (one currency) whose entries carry
one business date, settlement entries excluded. Each cohort settles once, on the date its party's cycle
gives on the tenant's calendar, into one ``settlement_batches`` row (unique per tenant, party, currency
and cohort date: a re-run settles nothing twice). A negative cohort (claw-backs beyond the day's
credits) settles at once, on its own business date, from ``available`` (then a receivable).

The cohorts of one party and currency settled by one run are posted as one entry:

- Dr pending (the net; Cr when negative);
- Cr reserve (each cohort's reserve share, rounded DOWN), Cr frozen (during the freeze period);
- Cr receivable (what the party owed us is collected first), Cr available (the rest);
- a negative net is Dr available up to its balance, Dr receivable for the rest;
- in another settlement currency, Cr/Dr ``assets:fx_position:<pair>`` in each currency (see ``fx``).

Invariants owned here: a cohort settles at most once; what a batch moves out of pending equals the
cohort's net; a reserve or freeze is released once, never more than the bucket holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select

from finloop.core.calendar import BusinessCalendar
from finloop.core.errors import InvalidRequest, NotFound
from finloop.core.money import check_amount, currency
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.ledger.models import Account, Entry, Posting
from finloop.payments.postings import AccountSpec, ensure_account
from finloop.settlement import fx
from finloop.settlement.accounts import Bucket, PartyKind, party_account_code, party_receivable_code
from finloop.settlement.domain import (
    LOOKBACK_DAYS,
    BatchStatus,
    Cycle,
    CycleRule,
    HoldKind,
    HoldStatus,
    check_days,
    check_reserve_rate,
    convert,
    release_date,
    settle_date,
    split_settlement,
)
from finloop.settlement.models import SettlementBatch, SettlementProfile, SettlementReserve
from finloop.tenancy.calendar import get_calendar

MAX_PARTY_ID = 40
EARLIEST_DATE = date(2000, 1, 1)

# ---------------------------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class ProfileRule:
    """A party's settlement terms; the default (no profile) is T+1, no freeze, no reserve."""

    cycle: CycleRule = field(default_factory=CycleRule)
    freeze_days: int = 0
    reserve_rate: Decimal = Decimal(0)
    reserve_days: int = 0
    settlement_currency: str | None = None
    min_settlement_amount: int = 0

    @classmethod
    def of(cls, profile: SettlementProfile | None) -> ProfileRule:
        if profile is None:
            return cls()
        return cls(CycleRule(Cycle(profile.cycle), profile.offset_days, profile.weekday, profile.day_of_month),
                   profile.freeze_days, profile.reserve_rate, profile.reserve_days, profile.settlement_currency,
                   profile.min_settlement_amount)


def check_party(uow: UnitOfWork, tenant_id: str, party_kind: PartyKind | str, party_id: str) -> PartyKind:
    """The party kind, after checking the id's shape and that the party exists in the tenant."""
    try:
        kind = PartyKind(party_kind)
    except ValueError:
        raise InvalidRequest("party_kind is merchant or promoter.", code="invalid_party_kind",
                             param="party_kind") from None
    if not party_id or len(party_id) > MAX_PARTY_ID or not party_id.replace("_", "").replace("-", "").isalnum() \
            or not party_id.isascii():
        raise InvalidRequest("A party id is 1 to 40 letters, digits, '_' or '-'.", code="invalid_party_id",
                             param="party_id")
    from finloop.payments.models import Merchant
    from finloop.splits.models import Promoter

    table = Merchant if kind is PartyKind.MERCHANT else Promoter
    found = uow.session.scalar(select(table.id).where(table.tenant_id == tenant_id, table.id == party_id))
    if found is None:
        raise NotFound(f"No such {kind.value}: {party_id}.", code=f"{kind.value}_not_found", param="party_id")
    return kind


def set_profile(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind | str, party_id: str,
                cycle: Cycle | str = Cycle.T_PLUS_N, offset_days: int = 1, weekday: int | None = None,
                day_of_month: int | None = None, freeze_days: int = 0, reserve_rate: Decimal = Decimal(0),
                reserve_days: int = 0, settlement_currency: str | None = None,
                min_settlement_amount: int = 0) -> SettlementProfile:
    """Create or replace a party's settlement profile (it applies to cohorts not yet settled)."""
    kind = check_party(uow, tenant_id, party_kind, party_id)
    try:
        cycle = Cycle(cycle)
    except ValueError:
        raise InvalidRequest("cycle is t_plus_n, weekly or monthly.", code="invalid_cycle", param="cycle") from None
    CycleRule(cycle, offset_days, weekday, day_of_month).check()
    check_days(freeze_days, "freeze_days")
    check_days(reserve_days, "reserve_days")
    check_reserve_rate(reserve_rate)
    if reserve_rate > 0 and reserve_days == 0:
        raise InvalidRequest("A reserve is held for at least one day.", code="invalid_days", param="reserve_days")
    if settlement_currency is not None:
        try:
            currency(settlement_currency)
        except InvalidRequest as error:
            error.param = "settlement_currency"
            raise
    try:
        check_amount(min_settlement_amount, allow_negative=False)
    except InvalidRequest as error:
        error.param = "min_settlement_amount"
        raise
    now = uow.clock.now()
    profile = find_profile(uow, tenant_id, party_kind=kind, party_id=party_id)
    if profile is None:
        profile = SettlementProfile(id=uow.ids.new("settlement_profile"), tenant_id=tenant_id,
                                    party_kind=kind.value, party_id=party_id, created_at=now)
        uow.session.add(profile)
    profile.cycle = cycle.value
    profile.offset_days = offset_days if cycle is Cycle.T_PLUS_N else 0
    profile.weekday = weekday if cycle is Cycle.WEEKLY else None
    profile.day_of_month = day_of_month if cycle is Cycle.MONTHLY else None
    profile.freeze_days = freeze_days
    profile.reserve_rate = reserve_rate
    profile.reserve_days = reserve_days
    profile.settlement_currency = settlement_currency
    profile.min_settlement_amount = min_settlement_amount
    profile.updated_at = now
    uow.session.flush()
    return profile


def find_profile(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind, party_id: str
                 ) -> SettlementProfile | None:
    return uow.session.scalar(select(SettlementProfile).where(
        SettlementProfile.tenant_id == tenant_id, SettlementProfile.party_kind == party_kind.value,
        SettlementProfile.party_id == party_id))


def get_profile(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind | str, party_id: str
                ) -> SettlementProfile:
    kind = check_party(uow, tenant_id, party_kind, party_id)
    profile = find_profile(uow, tenant_id, party_kind=kind, party_id=party_id)
    if profile is None:
        raise NotFound(f"No settlement profile for {kind.value} {party_id}; the default (T+1) applies.",
                       code="settlement_profile_not_found", param="party_id")
    return profile


def _profiles(uow: UnitOfWork, tenant_id: str) -> dict[tuple[str, str], ProfileRule]:
    rows = uow.session.scalars(select(SettlementProfile).where(SettlementProfile.tenant_id == tenant_id))
    return {(p.party_kind, p.party_id): ProfileRule.of(p) for p in rows}


# ---------------------------------------------------------------------------------------------- accounts


def bucket_account(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, bucket: Bucket,
                   currency_code: str) -> str:
    return ensure_account(uow, tenant_id, AccountSpec(party_account_code(kind, party_id, bucket),
                                                      AccountType.LIABILITY,
                                                      BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), currency_code)


def receivable_account(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str, currency_code: str) -> str:
    return ensure_account(uow, tenant_id, AccountSpec(party_receivable_code(kind, party_id), AccountType.ASSET,
                                                      BalanceRule.CREDITS_MUST_NOT_EXCEED_DEBITS), currency_code)


def _usable(uow: UnitOfWork, tenant_id: str, account_id: str) -> int:
    """What an account can give without going below zero (pending holds count against it)."""
    account = ledger.get_account(uow, tenant_id, account_id)
    uow.session.refresh(account)  # the ledger writes running sums with plain SQL on PostgreSQL
    return max(0, ledger.balances(account).available)


# ---------------------------------------------------------------------------------------------- cohorts


@dataclass(frozen=True, slots=True)
class Cohort:
    party_kind: PartyKind
    party_id: str
    currency: str
    cohort_date: date
    amount: int  # what the party earned net that day (credits to pending minus debits)
    pending_account_id: str


def _pending_patterns() -> list[str]:
    return [f"liabilities:{kind.value}:%:pending" for kind in PartyKind]


def _party_of(code: str) -> tuple[PartyKind, str] | None:
    parts = code.split(":")
    if len(parts) != 4 or parts[0] != "liabilities" or parts[3] != Bucket.PENDING.value:
        return None
    try:
        return PartyKind(parts[1]), parts[2]
    except ValueError:
        return None


def settlement_entry_ids(tenant_id: str) -> Any:
    """A subquery of the entries settlement posted (they are not part of any cohort)."""
    return select(SettlementBatch.entry_id).where(SettlementBatch.tenant_id == tenant_id,
                                                  SettlementBatch.entry_id.is_not(None))


def unsettled_cohorts(uow: UnitOfWork, tenant_id: str, *, up_to: date,
                      party: tuple[PartyKind, str] | None = None) -> list[Cohort]:
    """Cohorts up to ``up_to`` (within ``LOOKBACK_DAYS``) that no batch has settled yet, oldest first."""
    since = up_to - timedelta(days=LOOKBACK_DAYS)
    accounts = select(Account.id, Account.code, Account.currency).where(Account.tenant_id == tenant_id)
    if party is not None:
        accounts = accounts.where(Account.code == party_account_code(party[0], party[1], Bucket.PENDING))
    else:
        accounts = accounts.where(or_(*(Account.code.like(p) for p in _pending_patterns())))
    found: dict[str, tuple[PartyKind, str, str]] = {}
    for account_id, code, ccy in uow.session.execute(accounts):
        owner = _party_of(code)
        if owner is not None:
            found[account_id] = (owner[0], owner[1], ccy)
    if not found:
        return []
    rows = uow.session.execute(
        select(Posting.account_id, Entry.business_date, func.sum(Posting.amount))
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Posting.tenant_id == tenant_id, Entry.tenant_id == tenant_id,
               Posting.account_id.in_(list(found)),
               Posting.effective_at >= datetime.combine(since - timedelta(days=2), time(0), tzinfo=UTC),
               Entry.business_date >= since, Entry.business_date <= up_to,
               Entry.id.not_in(settlement_entry_ids(tenant_id)))
        .group_by(Posting.account_id, Entry.business_date)).all()
    done_query = select(SettlementBatch.party_kind, SettlementBatch.party_id, SettlementBatch.currency,
                        SettlementBatch.cohort_date).where(SettlementBatch.tenant_id == tenant_id,
                                                           SettlementBatch.cohort_date >= since)
    if party is not None:
        done_query = done_query.where(SettlementBatch.party_kind == party[0].value,
                                      SettlementBatch.party_id == party[1])
    done = {(k, p, c, d) for k, p, c, d in uow.session.execute(done_query)}
    cohorts = []
    for account_id, business_date, total in rows:
        kind, party_id, ccy = found[account_id]
        if (kind.value, party_id, ccy, business_date) in done:
            continue
        cohorts.append(Cohort(kind, party_id, ccy, business_date, -int(total), account_id))
    cohorts.sort(key=lambda c: (c.party_kind.value, c.party_id, c.currency, c.cohort_date))
    return cohorts


def cohort_settle_date(rule: ProfileRule, calendar: BusinessCalendar, cohort: Cohort) -> date:
    """A claw-back cohort settles on its own date; any other on its cycle's settle date."""
    if cohort.amount < 0:
        return calendar.next_business_day(cohort.cohort_date)
    return settle_date(rule.cycle, calendar, cohort.cohort_date)


def first_sale_on(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str) -> date | None:
    """The business date of the party's first credit to pending (in any currency)."""
    codes = party_account_code(kind, party_id, Bucket.PENDING)
    return uow.session.scalar(
        select(func.min(Entry.business_date)).select_from(Posting)
        .join(Entry, Entry.id == Posting.entry_id).join(Account, Account.id == Posting.account_id)
        .where(Account.tenant_id == tenant_id, Account.code == codes, Posting.amount < 0,
               Entry.tenant_id == tenant_id))


# ---------------------------------------------------------------------------------------------- running


@dataclass(slots=True)
class RunResult:
    business_date: date
    batches: list[SettlementBatch] = field(default_factory=list)
    entry_ids: list[str] = field(default_factory=list)
    #: Party groups left for a later day, with why: ``below_minimum`` or ``no_fx_rate``.
    deferred: list[dict[str, Any]] = field(default_factory=list)


def check_business_date_closed(uow: UnitOfWork, tenant_id: str, business_date: date) -> BusinessCalendar:
    if business_date < EARLIEST_DATE:
        raise InvalidRequest(f"Business dates start at {EARLIEST_DATE}.", code="invalid_business_date",
                             param="business_date")
    calendar = get_calendar(uow, tenant_id)
    if calendar.day_closes_at(business_date) > uow.clock.now():
        raise InvalidRequest(f"Business date {business_date} is not over yet; settle a closed day.",
                             code="business_date_not_closed", param="business_date")
    return calendar


def run_settlement(uow: UnitOfWork, tenant_id: str, *, business_date: date) -> RunResult:
    """Settle every cohort due on or before ``business_date`` (a closed business day) and not settled yet.

    Idempotent: a settled cohort has its batch and is never looked at again.
    """
    calendar = check_business_date_closed(uow, tenant_id, business_date)
    profiles = _profiles(uow, tenant_id)
    result = RunResult(business_date)
    groups: dict[tuple[PartyKind, str, str], list[Cohort]] = defaultdict(list)
    for cohort in unsettled_cohorts(uow, tenant_id, up_to=business_date):
        groups[(cohort.party_kind, cohort.party_id, cohort.currency)].append(cohort)
    for (kind, party_id, ccy), cohorts in groups.items():
        rule = profiles.get((kind.value, party_id), ProfileRule())
        due = [(c, cohort_settle_date(rule, calendar, c)) for c in cohorts]
        due = [(c, day) for c, day in due if day <= business_date]
        if not due:
            continue
        positive = sum(c.amount for c, _ in due if c.amount > 0)
        if rule.min_settlement_amount and 0 < positive < rule.min_settlement_amount \
                and not any(c.amount < 0 for c, _ in due):
            result.deferred.append({"party_kind": kind.value, "party_id": party_id, "currency": ccy,
                                    "amount": positive, "reason": "below_minimum"})
            continue
        _settle_group(uow, tenant_id, calendar, rule, kind, party_id, ccy, due, business_date, result)
    return result


def _settle_group(uow: UnitOfWork, tenant_id: str, calendar: BusinessCalendar, rule: ProfileRule,
                  kind: PartyKind, party_id: str, ccy: str, due: list[tuple[Cohort, date]], business_date: date,
                  result: RunResult) -> None:
    now = uow.clock.now()
    target = rule.settlement_currency or ccy
    quote = None
    if target != ccy:
        quote = fx.find_quote(uow, tenant_id, base=ccy, quote=target, at=now)
        if quote is None:
            result.deferred.append({"party_kind": kind.value, "party_id": party_id, "currency": ccy,
                                    "amount": sum(c.amount for c, _ in due), "reason": "no_fx_rate"})
            return
    frozen_until = None
    if rule.freeze_days:
        first = first_sale_on(uow, tenant_id, kind, party_id)
        if first is not None:
            end = release_date(calendar, first, rule.freeze_days)
            frozen_until = end if business_date < end else None
    reserve_until = release_date(calendar, business_date, rule.reserve_days)

    batches: list[SettlementBatch] = []
    holds: list[SettlementReserve] = []
    pending_total = converted_total = reserve_total = frozen_total = available_total = 0
    for cohort, day in due:
        settled = convert(cohort.amount, quote.rate, from_currency=ccy, to_currency=target) if quote else cohort.amount
        split = split_settlement(settled, reserve_rate=rule.reserve_rate, frozen=frozen_until is not None)
        batch = SettlementBatch(
            id=uow.ids.new("settlement_batch"), tenant_id=tenant_id, party_kind=kind.value, party_id=party_id,
            currency=ccy, cohort_date=cohort.cohort_date, settle_date=day, settled_on=business_date,
            status=(BatchStatus.SETTLED if cohort.amount else BatchStatus.EMPTY).value, amount=cohort.amount,
            settlement_currency=target, settled_amount=settled, reserve_amount=split.reserve,
            frozen_amount=split.frozen, available_amount=split.available,
            fx_rate=Decimal(quote.rate_text) if quote else None, fx_source=quote.source if quote else None,
            fx_as_of=quote.as_of if quote else None, entry_id=None, created_at=now)
        batches.append(batch)
        for amount, hold_kind, until in ((split.reserve, HoldKind.RESERVE, reserve_until),
                                         (split.frozen, HoldKind.FREEZE, frozen_until)):
            if amount and until is not None:
                holds.append(SettlementReserve(
                    id=uow.ids.new("reserve"), tenant_id=tenant_id, party_kind=kind.value, party_id=party_id,
                    kind=hold_kind.value, currency=target, amount=amount, held_on=business_date,
                    release_on=until, status=HoldStatus.HELD.value, released_amount=0, batch_id=batch.id,
                    created_at=now))
        pending_total += cohort.amount
        converted_total += settled
        reserve_total += split.reserve
        frozen_total += split.frozen
        available_total += split.available
    if pending_total > 0 and _usable(uow, tenant_id, due[0][0].pending_account_id) < pending_total:
        # A claw-back of a later, still open day already drew on pending: its negative cohort settles with
        # that day's run, and this group then settles with it.
        result.deferred.append({"party_kind": kind.value, "party_id": party_id, "currency": ccy,
                                "amount": pending_total, "reason": "pending_short"})
        return
    uow.session.add_all(batches)
    uow.session.flush()
    uow.session.add_all(holds)
    uow.session.flush()
    result.batches.extend(batches)

    legs: dict[tuple[str, str], int] = defaultdict(int)
    if pending_total:
        legs[(due[0][0].pending_account_id, ccy)] += pending_total
    if quote is not None and pending_total:
        legs[(fx.position_account(uow, tenant_id, (ccy, target), ccy), ccy)] -= pending_total
        legs[(fx.position_account(uow, tenant_id, (ccy, target), target), target)] += converted_total
    if reserve_total:
        legs[(bucket_account(uow, tenant_id, kind, party_id, Bucket.RESERVE, target), target)] -= reserve_total
    if frozen_total:
        legs[(bucket_account(uow, tenant_id, kind, party_id, Bucket.FROZEN, target), target)] -= frozen_total
    if available_total:
        available = bucket_account(uow, tenant_id, kind, party_id, Bucket.AVAILABLE, target)
        receivable = receivable_account(uow, tenant_id, kind, party_id, target)
        if available_total > 0:
            owed = _usable(uow, tenant_id, receivable)
            collected = min(owed, available_total)
            legs[(receivable, target)] -= collected
            legs[(available, target)] -= available_total - collected
        else:
            taken = min(_usable(uow, tenant_id, available), -available_total)
            legs[(available, target)] += taken
            legs[(receivable, target)] += -available_total - taken
    postings = tuple(PostingSpec(account, amount, c) for (account, c), amount in legs.items() if amount)
    if not postings:
        return
    metadata: dict[str, Any] = {
        "party_kind": kind.value, "party_id": party_id, "business_date": business_date.isoformat(),
        "batch_ids": [b.id for b in batches], "cohort_dates": [b.cohort_date.isoformat() for b in batches]}
    if quote is not None:
        metadata.update(quote.metadata())
    posted = ledger.post_transfer(uow, tenant_id, TransferSpec(
        key=f"settlement:{batches[0].id}", postings=postings,
        description=f"settlement of {kind.value} {party_id} {ccy} on {business_date}", metadata=metadata))
    for batch in batches:
        batch.entry_id = posted.id
    uow.session.flush()
    result.entry_ids.append(posted.id)


def release_due(uow: UnitOfWork, tenant_id: str, *, business_date: date, limit: int = 1000
                ) -> list[SettlementReserve]:
    """Release reserves and freezes due on or before ``business_date`` to ``available``.

    Each posts Dr reserve (or frozen), Cr available, for the amount held or what the bucket still has
    (a dispute may have taken from it), whichever is less.
    """
    rows = list(uow.session.scalars(
        select(SettlementReserve).where(SettlementReserve.tenant_id == tenant_id,
                                        SettlementReserve.status == HoldStatus.HELD.value,
                                        SettlementReserve.release_on <= business_date)
        .order_by(SettlementReserve.release_on, SettlementReserve.id).limit(limit).with_for_update()))
    for row in rows:
        kind = PartyKind(row.party_kind)
        bucket = Bucket.RESERVE if row.kind == HoldKind.RESERVE.value else Bucket.FROZEN
        source = bucket_account(uow, tenant_id, kind, row.party_id, bucket, row.currency)
        amount = min(row.amount, _usable(uow, tenant_id, source))
        if amount:
            available = bucket_account(uow, tenant_id, kind, row.party_id, Bucket.AVAILABLE, row.currency)
            posted = ledger.post_transfer(uow, tenant_id, TransferSpec.simple(
                f"settlement_release:{row.id}", source, available, amount, row.currency,
                description=f"release of {row.kind} {row.id} of {kind.value} {row.party_id}",
                metadata={"reserve_id": row.id, "batch_id": row.batch_id, "party_kind": kind.value,
                          "party_id": row.party_id, "kind": row.kind}))
            row.release_entry_id = posted.id
        row.status = HoldStatus.RELEASED.value
        row.released_amount = amount
        row.released_on = business_date
    uow.session.flush()
    return rows


# ---------------------------------------------------------------------------------------------- reads


def get_batch(uow: UnitOfWork, tenant_id: str, batch_id: str) -> SettlementBatch:
    batch = uow.session.scalar(select(SettlementBatch).where(SettlementBatch.tenant_id == tenant_id,
                                                              SettlementBatch.id == batch_id))
    if batch is None:
        raise NotFound(f"No such settlement batch: {batch_id}.", code="settlement_batch_not_found",
                       param="batch_id")
    return batch


def list_batches(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind | None = None,
                 party_id: str | None = None, status: BatchStatus | None = None, from_on: date | None = None,
                 to_on: date | None = None, after: str | None = None, limit: int = 50) -> list[SettlementBatch]:
    """Batches by id, filtered (dates on ``settled_on``); ``limit + 1`` rows for paging."""
    query = select(SettlementBatch).where(SettlementBatch.tenant_id == tenant_id)
    if party_kind is not None:
        query = query.where(SettlementBatch.party_kind == party_kind.value)
    if party_id is not None:
        query = query.where(SettlementBatch.party_id == party_id)
    if status is not None:
        query = query.where(SettlementBatch.status == status.value)
    if from_on is not None:
        query = query.where(SettlementBatch.settled_on >= from_on)
    if to_on is not None:
        query = query.where(SettlementBatch.settled_on <= to_on)
    if after:
        query = query.where(SettlementBatch.id > after)
    return list(uow.session.scalars(query.order_by(SettlementBatch.id).limit(limit + 1)))


def list_reserves(uow: UnitOfWork, tenant_id: str, *, party_kind: PartyKind | None = None,
                  party_id: str | None = None, status: HoldStatus | None = None, kind: HoldKind | None = None,
                  after: str | None = None, limit: int = 50) -> list[SettlementReserve]:
    query = select(SettlementReserve).where(SettlementReserve.tenant_id == tenant_id)
    for column, value in ((SettlementReserve.party_kind, party_kind), (SettlementReserve.party_id, party_id),
                          (SettlementReserve.status, status), (SettlementReserve.kind, kind)):
        if value is not None:
            query = query.where(column == str(value))
    if after:
        query = query.where(SettlementReserve.id > after)
    return list(uow.session.scalars(query.order_by(SettlementReserve.id).limit(limit + 1)))


def held_reserves(uow: UnitOfWork, tenant_id: str, kind: PartyKind, party_id: str) -> list[SettlementReserve]:
    return list(uow.session.scalars(select(SettlementReserve).where(
        SettlementReserve.tenant_id == tenant_id, SettlementReserve.party_kind == kind.value,
        SettlementReserve.party_id == party_id, SettlementReserve.status == HoldStatus.HELD.value)
        .order_by(SettlementReserve.release_on, SettlementReserve.id)))
