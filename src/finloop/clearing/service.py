"""Clearing use cases: fee schedules, fees, and daily clearing batches per channel.

Every function takes a unit of work and never commits.

Fee schedules (``FeeSchedule``) are immutable once created: a change is a new schedule plus the
retirement of the old one. The schedule of a payment is the one *in force* at the instant it succeeded
(``schedule_in_force``): created at or before it, not retired at it, ``effective_from`` at or before its
business date, and the most specific of those (an exact method before "all methods", an exact currency
before "all currencies", then the latest ``effective_from``, then the newest). A new schedule may not be
backdated (``effective_from`` is today's business date or later), so the schedule of a past payment
never changes. Without a schedule the channel's own ``fee_rate``/``fee_fixed_amount`` and
``refund_fee_policy`` apply, with the platform as bearer.

Clearing batches are computed from the ledger: the postings on the channel's receivable sub-accounts
(``assets:channel:<code>:<shard>``) and fee sub-accounts whose entry has the batch's business date,
grouped by the kind of entry (its transfer key: ``payment:``, ``refund:``, ``dispute:``, anything else
an adjustment; the settlement entries ``clearing:`` are left out). The expected net is what those
entries left on the receivable; it is kept per shard, and ``record_channel_settlement`` credits each
shard by exactly that, so the day's receivable goes to zero. A settled amount different from the
expected one books the difference on ``expenses:settlement_differences:<channel>`` (debit when the
channel paid less, credit when it paid more).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finloop.clearing.domain import (
    FeeKind,
    FeeRule,
    RefundFeePolicy,
    Tier,
    channel_default_fee,
    compute_fee,
    validate_rule,
)
from finloop.clearing.models import ClearingBatch, FeeSchedule
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.core.money import check_amount, is_currency
from finloop.core.text import check_text
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, PostingSpec, TransferSpec
from finloop.ledger.models import Account, Entry, Posting
from finloop.payments.connectors.base import PaymentMethod
from finloop.payments.models import Channel, Payment
from finloop.payments.postings import (
    HOT_SHARDS,
    AccountSpec,
    channel_fees_code,
    channel_receivable_code,
    ensure_account,
)
from finloop.settlement.accounts import CUSTODY_BANK_ACCOUNT, bank_account_code
from finloop.tenancy.calendar import get_calendar


class FeeBearer(StrEnum):
    """Who carries the channel's fee: the platform (an expense), the merchant (taken from its income),
    or every party of the split in proportion to its share."""

    PLATFORM = "platform"
    MERCHANT = "merchant"
    PRO_RATA = "pro_rata"


class ScheduleStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


class BatchStatus(StrEnum):
    OPEN = "open"
    SETTLED = "settled"


#: The batch state machine: an open batch is refreshed until the channel's money arrives.
BATCH_TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    BatchStatus.OPEN: frozenset({BatchStatus.SETTLED}),
    BatchStatus.SETTLED: frozenset(),
}

_BANK_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")


def settlement_differences_code(channel_code: str) -> str:
    return f"expenses:settlement_differences:{channel_code}"


def _channel(uow: UnitOfWork, tenant_id: str, code: str, param: str = "channel") -> Channel:
    channel = uow.session.scalar(select(Channel).where(Channel.tenant_id == tenant_id, Channel.code == code))
    if channel is None:
        raise NotFound(f"No such channel: {code}.", code="channel_not_found", param=param)
    return channel


# ------------------------------------------------------------------------------------------ fee schedules


@dataclass(frozen=True, slots=True)
class ScheduleDraft:
    channel: str
    kind: str
    method: str | None = None
    currency: str | None = None
    rate: Decimal = Decimal(0)
    fixed_amount: int = 0
    tiers: tuple[Tier, ...] = ()
    minimum_amount: int | None = None
    maximum_amount: int | None = None
    bearer: str = FeeBearer.PLATFORM.value
    refund_fee_policy: str = RefundFeePolicy.PROPORTIONAL.value
    effective_from: date | None = None  # None: today's business date
    description: str = ""


def rule_of(schedule: FeeSchedule) -> FeeRule:
    tiers = tuple(Tier(up_to=t.get("up_to"), rate=Decimal(str(t.get("rate", "0"))),
                       fixed_amount=int(t.get("fixed_amount", 0))) for t in schedule.tiers or [])
    return FeeRule(kind=FeeKind(schedule.kind), rate=Decimal(schedule.rate), fixed_amount=schedule.fixed_amount,
                   tiers=tiers, minimum_amount=schedule.minimum_amount, maximum_amount=schedule.maximum_amount)


def create_schedule(uow: UnitOfWork, tenant_id: str, draft: ScheduleDraft) -> FeeSchedule:
    """Validate and store a new fee schedule (it never changes afterwards)."""
    try:
        kind = FeeKind(draft.kind)
    except ValueError:
        raise InvalidRequest(f"kind is one of {', '.join(k.value for k in FeeKind)}.", code="invalid_fee_kind",
                             param="kind") from None
    if draft.bearer not in FeeBearer.__members__.values():
        raise InvalidRequest("bearer is 'platform', 'merchant' or 'pro_rata'.", code="invalid_fee_bearer",
                             param="bearer")
    if draft.refund_fee_policy not in RefundFeePolicy.__members__.values():
        raise InvalidRequest("refund_fee_policy is 'proportional' or 'retained'.", code="invalid_refund_fee_policy",
                             param="refund_fee_policy")
    if draft.method is not None and (draft.method not in PaymentMethod.__members__.values()
                                     or draft.method == PaymentMethod.WALLET):
        raise InvalidRequest(f"Unknown payment method {draft.method!r}.", code="invalid_payment_method",
                             param="method")
    if draft.currency is not None and not is_currency(draft.currency):
        raise InvalidRequest(f"Unknown currency {draft.currency!r}.", code="invalid_currency", param="currency")
    rule = FeeRule(kind=kind, rate=draft.rate, fixed_amount=draft.fixed_amount, tiers=tuple(draft.tiers),
                   minimum_amount=draft.minimum_amount, maximum_amount=draft.maximum_amount)
    validate_rule(rule)
    description = check_text(draft.description, param="description", max_length=500)
    channel = _channel(uow, tenant_id, draft.channel)
    now = uow.clock.now()
    today = get_calendar(uow, tenant_id).business_date(now)
    effective_from = draft.effective_from or today
    if effective_from < today:
        raise InvalidRequest(f"A schedule applies from today ({today}) or later, never to past payments.",
                             code="effective_from_in_past", param="effective_from")
    schedule = FeeSchedule(
        id=uow.ids.new("fee_schedule"), tenant_id=tenant_id, channel_code=channel.code, method=draft.method,
        currency=draft.currency, kind=kind.value, rate=draft.rate, fixed_amount=draft.fixed_amount,
        tiers=[{"up_to": t.up_to, "rate": format(t.rate, "f"), "fixed_amount": t.fixed_amount} for t in draft.tiers],
        minimum_amount=draft.minimum_amount, maximum_amount=draft.maximum_amount, bearer=draft.bearer,
        refund_fee_policy=draft.refund_fee_policy, effective_from=effective_from,
        status=ScheduleStatus.ACTIVE.value, description=description, created_at=now, retired_at=None)
    uow.session.add(schedule)
    uow.session.flush()
    return schedule


def get_schedule(uow: UnitOfWork, tenant_id: str, schedule_id: str, *, lock: bool = False) -> FeeSchedule:
    query = select(FeeSchedule).where(FeeSchedule.tenant_id == tenant_id, FeeSchedule.id == schedule_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    schedule = uow.session.scalar(query)
    if schedule is None:
        raise NotFound(f"No such fee schedule: {schedule_id}.", code="fee_schedule_not_found", param="schedule_id")
    return schedule


def list_schedules(uow: UnitOfWork, tenant_id: str, *, channel: str | None = None, status: str | None = None,
                   after: str | None = None, limit: int = 50) -> list[FeeSchedule]:
    """Newest first; ``limit + 1`` rows so the caller knows whether more exist."""
    query = select(FeeSchedule).where(FeeSchedule.tenant_id == tenant_id)
    if channel:
        query = query.where(FeeSchedule.channel_code == channel)
    if status:
        query = query.where(FeeSchedule.status == status)
    if after:
        query = query.where(FeeSchedule.id < after)
    return list(uow.session.scalars(query.order_by(FeeSchedule.id.desc()).limit(limit + 1)))


def retire_schedule(uow: UnitOfWork, tenant_id: str, schedule_id: str) -> FeeSchedule:
    """Stop a schedule applying from now on; payments it priced keep it."""
    schedule = get_schedule(uow, tenant_id, schedule_id, lock=True)
    if schedule.status == ScheduleStatus.RETIRED.value:
        raise Conflict(f"Fee schedule {schedule_id} is already retired.", code="fee_schedule_retired")
    schedule.status = ScheduleStatus.RETIRED.value
    schedule.retired_at = uow.clock.now()
    uow.session.flush()
    return schedule


def schedule_in_force(uow: UnitOfWork, tenant_id: str, *, channel_code: str, method: str | None,
                      currency: str | None, at: datetime) -> FeeSchedule | None:
    """The schedule that prices a payment of ``method`` and ``currency`` through the channel at ``at``."""
    business_date = get_calendar(uow, tenant_id).business_date(at)
    query = select(FeeSchedule).where(
        FeeSchedule.tenant_id == tenant_id, FeeSchedule.channel_code == channel_code,
        FeeSchedule.effective_from <= business_date, FeeSchedule.created_at <= at)
    candidates = [s for s in uow.session.scalars(query)
                  if (s.retired_at is None or s.retired_at > at)
                  and s.method in (None, method) and (currency is None or s.currency in (None, currency))]
    if not candidates:
        return None
    return max(candidates, key=lambda s: (s.method is not None, s.currency is not None, s.effective_from,
                                          s.created_at, s.id))


def monthly_volume(uow: UnitOfWork, tenant_id: str, *, channel_code: str, currency: str, at: datetime) -> int:
    """The channel's captured volume in ``currency`` of the calendar month of ``at`` (the tenant's business
    calendar: from the start of the first day of the month) up to ``at`` (the payment being priced has no
    ``succeeded_at`` yet, so it never counts itself)."""
    calendar = get_calendar(uow, tenant_id)
    day = calendar.local_date(at)
    start = calendar.day_closes_at(day.replace(day=1) - timedelta(days=1))
    total = uow.session.scalar(select(func.coalesce(func.sum(Payment.captured_amount), 0)).where(
        Payment.tenant_id == tenant_id, Payment.channel == channel_code, Payment.currency == currency,
        Payment.succeeded_at >= start, Payment.succeeded_at <= at))
    return int(total or 0)


@dataclass(frozen=True, slots=True)
class FeeQuote:
    fee: int
    bearer: FeeBearer
    schedule_id: str | None
    refund_fee_policy: RefundFeePolicy
    explanation: str


def quote_fee(uow: UnitOfWork, tenant_id: str, *, channel_code: str, method: str | None, currency: str,
              amount: int, at: datetime | None = None, channel: Channel | None = None) -> FeeQuote:
    """The expected fee of a payment: by the schedule in force, else by the channel's own rate."""
    check_amount(amount, allow_zero=False, allow_negative=False)
    if not is_currency(currency):
        raise InvalidRequest(f"Unknown currency {currency!r}.", code="invalid_currency", param="currency")
    channel = channel or _channel(uow, tenant_id, channel_code)
    at = at or uow.clock.now()
    schedule = schedule_in_force(uow, tenant_id, channel_code=channel.code, method=method, currency=currency, at=at)
    if schedule is None:
        fee = channel_default_fee(channel.fee_rate, channel.fee_fixed_amount, amount)
        return FeeQuote(fee, FeeBearer.PLATFORM, None, RefundFeePolicy(channel.refund_fee_policy),
                        f"channel {channel.code} default: {channel.fee_rate} × {amount} (half up) + "
                        f"{channel.fee_fixed_amount} fixed = {fee}")
    volume = 0
    if schedule.kind == FeeKind.TIERED_BY_MONTHLY_VOLUME:
        volume = monthly_volume(uow, tenant_id, channel_code=channel.code, currency=currency, at=at)
    result = compute_fee(rule_of(schedule), amount, monthly_volume=volume)
    return FeeQuote(result.fee, FeeBearer(schedule.bearer), schedule.id, RefundFeePolicy(schedule.refund_fee_policy),
                    f"schedule {schedule.id} ({schedule.kind}): {result.explanation}")


def refund_fee_policy(uow: UnitOfWork, payment: Payment, channel: Channel) -> RefundFeePolicy:
    """The refund fee policy of the schedule that priced ``payment`` (the channel's own without one)."""
    at = payment.succeeded_at or uow.clock.now()
    schedule = schedule_in_force(uow, payment.tenant_id, channel_code=channel.code, method=payment.method,
                                 currency=payment.currency, at=at)
    return RefundFeePolicy(schedule.refund_fee_policy if schedule else channel.refund_fee_policy)


def fee_bearer(uow: UnitOfWork, tenant_id: str, channel_code: str, method: str, *, currency: str | None = None,
               at: datetime | None = None) -> FeeBearer:
    """Who bears the fee of a payment by ``method`` through ``channel_code`` (the platform when no
    schedule says otherwise). Without ``currency`` the most specific schedule of any currency counts."""
    schedule = schedule_in_force(uow, tenant_id, channel_code=channel_code, method=method, currency=currency,
                                 at=at or uow.clock.now())
    return FeeBearer(schedule.bearer) if schedule else FeeBearer.PLATFORM


# ------------------------------------------------------------------------------------------ clearing batches


@dataclass(slots=True)
class _Totals:
    payments_count: int = 0
    payments_gross: int = 0
    payment_fees: int = 0
    refunds_count: int = 0
    refunds_gross: int = 0
    refund_fee_returns: int = 0
    chargebacks_count: int = 0
    chargebacks_amount: int = 0
    adjustments_count: int = 0
    adjustments_amount: int = 0


def _day_totals(uow: UnitOfWork, tenant_id: str, *, channel_code: str, business_date: date,
                accounts: list[Account]) -> tuple[_Totals, dict[str, int]]:
    """The day's entries on the channel's receivable and fee sub-accounts of one currency, by kind."""
    kinds: dict[str, tuple[str, int]] = {}
    for account in accounts:
        for shard in range(HOT_SHARDS):
            if account.code == channel_receivable_code(channel_code, shard):
                kinds[account.id] = ("receivable", shard)
            elif account.code == channel_fees_code(channel_code, shard):
                kinds[account.id] = ("fees", shard)
    calendar = get_calendar(uow, tenant_id)
    # Entries of a business date were effective between the close of an earlier day and its own close;
    # the window only narrows the index scan, the business date decides.
    low = calendar.day_closes_at(business_date - timedelta(days=15))
    high = calendar.day_closes_at(business_date) + timedelta(days=1)
    rows = uow.session.execute(
        select(Posting.entry_id, Posting.account_id, Posting.amount, Entry.transfer_key)
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Posting.account_id.in_(list(kinds)), Posting.effective_at >= low, Posting.effective_at < high,
               Entry.tenant_id == tenant_id, Entry.business_date == business_date)).all()
    by_entry: dict[str, dict[str, Any]] = defaultdict(lambda: {"receivable": 0, "fees": 0, "key": ""})
    shards: dict[str, int] = defaultdict(int)
    for entry_id, account_id, amount, key in rows:
        if key.startswith("clearing:"):
            continue
        kind, shard = kinds[account_id]
        by_entry[entry_id][kind] += amount
        by_entry[entry_id]["key"] = key
        if kind == "receivable":
            shards[str(shard)] += amount
    totals = _Totals()
    for entry in by_entry.values():
        receivable, fees, key = entry["receivable"], entry["fees"], entry["key"]
        if key.startswith("payment:"):
            totals.payments_count += 1
            totals.payments_gross += receivable + fees
            totals.payment_fees += fees
        elif key.startswith("refund:"):
            totals.refunds_count += 1
            totals.refunds_gross -= receivable + fees
            totals.refund_fee_returns -= fees
        elif key.startswith("dispute:"):
            totals.chargebacks_count += 1
            totals.chargebacks_amount -= receivable
        else:
            totals.adjustments_count += 1
            totals.adjustments_amount += receivable
    return totals, {shard: amount for shard, amount in sorted(shards.items()) if amount}


def _apply_totals(batch: ClearingBatch, totals: _Totals, shards: dict[str, int], now: datetime) -> None:
    batch.payments_count = totals.payments_count
    batch.payments_gross_amount = totals.payments_gross
    batch.payment_fees_amount = totals.payment_fees
    batch.refunds_count = totals.refunds_count
    batch.refunds_gross_amount = totals.refunds_gross
    batch.refund_fee_returns_amount = totals.refund_fee_returns
    batch.chargebacks_count = totals.chargebacks_count
    batch.chargebacks_amount = totals.chargebacks_amount
    batch.adjustments_count = totals.adjustments_count
    batch.adjustments_amount = totals.adjustments_amount
    batch.shard_amounts = shards
    batch.expected_net_amount = sum(shards.values())
    batch.computed_at = batch.updated_at = now


def _channel_accounts(uow: UnitOfWork, tenant_id: str, channel_code: str) -> dict[str, list[Account]]:
    codes = [f(channel_code, shard) for shard in range(HOT_SHARDS)
             for f in (channel_receivable_code, channel_fees_code)]
    by_currency: dict[str, list[Account]] = defaultdict(list)
    for account in uow.session.scalars(select(Account).where(Account.tenant_id == tenant_id, Account.code.in_(codes))):
        by_currency[account.currency].append(account)
    return by_currency


def _check_business_date(uow: UnitOfWork, tenant_id: str, business_date: date) -> None:
    today = get_calendar(uow, tenant_id).business_date(uow.clock.now())
    if business_date > today:
        raise InvalidRequest(f"Business date {business_date} is after today's ({today}).",
                             code="business_date_in_future", param="business_date")


def build_batches(uow: UnitOfWork, tenant_id: str, *, business_date: date,
                  channel_code: str | None = None) -> list[ClearingBatch]:
    """Create or refresh the clearing batches of a business date, one per channel and currency with
    entries that day. Idempotent: an open batch is recomputed, a settled one is left as it is."""
    _check_business_date(uow, tenant_id, business_date)
    query = select(Channel.code).where(Channel.tenant_id == tenant_id)
    if channel_code is not None:
        _channel(uow, tenant_id, channel_code)
        query = query.where(Channel.code == channel_code)
    batches = []
    for code in uow.session.scalars(query.order_by(Channel.code)):
        for currency_code, accounts in sorted(_channel_accounts(uow, tenant_id, code).items()):
            batch = _build_one(uow, tenant_id, code, currency_code, business_date, accounts)
            if batch is not None:
                batches.append(batch)
    return batches


def _build_one(uow: UnitOfWork, tenant_id: str, channel_code: str, currency_code: str, business_date: date,
               accounts: list[Account]) -> ClearingBatch | None:
    batch = find_clearing_batch(uow, tenant_id, channel_code=channel_code, business_date=business_date,
                                currency=currency_code, lock=True)
    if batch is not None and batch.status != BatchStatus.OPEN.value:
        return batch
    totals, shards = _day_totals(uow, tenant_id, channel_code=channel_code, business_date=business_date,
                                 accounts=accounts)
    now = uow.clock.now()
    if batch is None:
        if totals == _Totals():
            return None
        batch = ClearingBatch(id=uow.ids.new("clearing_batch"), tenant_id=tenant_id, channel_code=channel_code,
                              currency=currency_code, business_date=business_date, status=BatchStatus.OPEN.value,
                              created_at=now)
        _apply_totals(batch, totals, shards, now)
        try:
            with uow.session.begin_nested():
                uow.session.add(batch)
                uow.session.flush()
        except IntegrityError:  # a concurrent run created it first: refresh that one
            batch = find_clearing_batch(uow, tenant_id, channel_code=channel_code, business_date=business_date,
                                        currency=currency_code, lock=True)
            assert batch is not None
            if batch.status == BatchStatus.OPEN.value:
                _apply_totals(batch, totals, shards, now)
        return batch
    _apply_totals(batch, totals, shards, now)
    uow.session.flush()
    return batch


def find_clearing_batch(uow: UnitOfWork, tenant_id: str, *, channel_code: str, business_date: date, currency: str,
                        lock: bool = False) -> ClearingBatch | None:
    query = select(ClearingBatch).where(
        ClearingBatch.tenant_id == tenant_id, ClearingBatch.channel_code == channel_code,
        ClearingBatch.currency == currency, ClearingBatch.business_date == business_date)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return uow.session.scalar(query)


def get_batch(uow: UnitOfWork, tenant_id: str, batch_id: str, *, lock: bool = False) -> ClearingBatch:
    query = select(ClearingBatch).where(ClearingBatch.tenant_id == tenant_id, ClearingBatch.id == batch_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    batch = uow.session.scalar(query)
    if batch is None:
        raise NotFound(f"No such clearing batch: {batch_id}.", code="clearing_batch_not_found", param="batch_id")
    return batch


def list_batches(uow: UnitOfWork, tenant_id: str, *, channel: str | None = None, from_on: date | None = None,
                 to_on: date | None = None, status: str | None = None, after: str | None = None,
                 limit: int = 50) -> list[ClearingBatch]:
    """Newest id first; ``limit + 1`` rows so the caller knows whether more exist."""
    query = select(ClearingBatch).where(ClearingBatch.tenant_id == tenant_id)
    if channel:
        query = query.where(ClearingBatch.channel_code == channel)
    if from_on:
        query = query.where(ClearingBatch.business_date >= from_on)
    if to_on:
        query = query.where(ClearingBatch.business_date <= to_on)
    if status:
        query = query.where(ClearingBatch.status == status)
    if after:
        query = query.where(ClearingBatch.id < after)
    return list(uow.session.scalars(query.order_by(ClearingBatch.id.desc()).limit(limit + 1)))


def record_channel_settlement(uow: UnitOfWork, tenant_id: str, batch_id: str, *, amount: int, received_on: date,
                              reference: str, bank_account: str = CUSTODY_BANK_ACCOUNT) -> str:
    """The channel's money for a batch arrived in our bank: Dr ``assets:bank:<bank_account>`` ``amount``,
    Cr each receivable shard what it holds for the batch, and the difference (expected − amount) on
    ``expenses:settlement_differences:<channel>``. Idempotent per batch: the same settlement again returns
    the same entry id; a different one is a 409. An open batch is recomputed first. Returns the entry id
    ("" when every amount is zero and nothing needed posting)."""
    check_amount(amount)
    reference = check_text(reference, param="reference", max_length=100, required=True)
    if not isinstance(bank_account, str) or not _BANK_ACCOUNT.match(bank_account):
        raise InvalidRequest("bank_account is 1 to 40 lowercase letters, digits, '_' or '-'.",
                             code="invalid_bank_account", param="bank_account")
    batch = get_batch(uow, tenant_id, batch_id, lock=True)
    if batch.status == BatchStatus.SETTLED.value:
        if batch.settled_amount == amount and batch.settlement_reference == reference:
            return batch.settlement_entry_id or ""
        raise Conflict(f"Clearing batch {batch_id} is already settled ({batch.settled_amount}, "
                       f"{batch.settlement_reference}).", code="clearing_batch_settled")
    if received_on < batch.business_date:
        raise InvalidRequest("The money cannot arrive before its business date.", code="invalid_received_on",
                             param="received_on")
    accounts = _channel_accounts(uow, tenant_id, batch.channel_code).get(batch.currency, [])
    _build_one(uow, tenant_id, batch.channel_code, batch.currency, batch.business_date, accounts)
    currency_code, channel_code = batch.currency, batch.channel_code
    postings: list[PostingSpec] = []
    if amount:
        bank = ensure_account(uow, tenant_id, AccountSpec(bank_account_code(bank_account), AccountType.ASSET),
                              currency_code)
        postings.append(PostingSpec(bank, amount, currency_code))
    for shard, expected in sorted(batch.shard_amounts.items()):
        if expected:
            receivable = ensure_account(uow, tenant_id, AccountSpec(
                channel_receivable_code(channel_code, int(shard)), AccountType.ASSET), currency_code)
            postings.append(PostingSpec(receivable, -expected, currency_code))
    difference = batch.expected_net_amount - amount
    if difference:
        differences = ensure_account(uow, tenant_id, AccountSpec(settlement_differences_code(channel_code),
                                                                 AccountType.EXPENSE), currency_code)
        postings.append(PostingSpec(differences, difference, currency_code))
    entry_id = ""
    if postings:
        entry_id = ledger.post_transfer(uow, tenant_id, TransferSpec(
            key=f"clearing:{batch.id}:settlement", postings=tuple(postings),
            description=f"settlement of {channel_code} for {batch.business_date} ({reference})",
            metadata={"clearing_batch_id": batch.id, "channel": channel_code,
                      "business_date": batch.business_date.isoformat(), "reference": reference})).id
    now = uow.clock.now()
    batch.status = BatchStatus.SETTLED.value
    batch.settled_amount = amount
    batch.difference_amount = -difference
    batch.settlement_reference = reference
    batch.received_on = received_on
    batch.bank_account = bank_account
    batch.settlement_entry_id = entry_id or None
    batch.settled_at = batch.updated_at = now
    uow.session.flush()
    return entry_id

