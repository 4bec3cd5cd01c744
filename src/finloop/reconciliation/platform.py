"""Our side of a reconciliation: the records of a source and business date as a polars frame.

A *source* is either one of the tenant's channel codes (its bill lists payments and refunds) or a bank
source, ``bank:<account>`` or any other name (its statement lists the channels' settlements and our
payouts; the account is ``assets:bank:<account>``). Columns are
``matching.RECORD_SCHEMA``:

- payments captured through the channel whose success is booked on the business date: ``record_id``
  the payment id, ``our_reference`` the succeeded attempt's id (what we sent the channel),
  ``channel_reference`` the attempt's ``channel_ref``, amount captured, fee, status ``succeeded`` /
  ``partially_refunded`` / ``refunded``;
- refunds of the channel that succeeded on the business date (their last update is their success):
  ``record_id`` = ``our_reference`` the refund id, ``channel_reference`` the channel's refund reference,
  fee = the fee the channel returned, direction ``debit``;
- for a bank source: each channel's clearing batch of the day (``settlement``, its expected net amount,
  credit; ``group_key`` the batch), the payouts executed that day (``payout``, debit, ``group_key``
  ``payouts:<date>:<currency>`` so one bank debit can cover a day's payouts), the payouts the bank
  returned that day (``payout_return``, credit) and the transfers to and from the money-market fund
  (``other``, by fund order: the wealth entries posted against the account that day).

The business date of an event is the tenant calendar's: events from the close of the previous business
day up to the close of this one. ``timing_from`` is ``close - TIMING_MARGIN``: a record after it may be
booked by the channel on its next day, so missing it today is ``settlement_timing``, not a break.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import select

from finloop.core.calendar import BusinessCalendar
from finloop.db.uow import UnitOfWork
from finloop.ledger.models import Account, Entry, Posting
from finloop.payments.models import Attempt, Channel, Payment, Refund
from finloop.reconciliation.matching import RECORD_SCHEMA, conform
from finloop.settlement.accounts import bank_account_code
from finloop.tenancy.calendar import get_calendar

TIMING_MARGIN = timedelta(minutes=30)
BANK_PREFIX = "bank:"


def is_bank_source(uow: UnitOfWork, tenant_id: str, source: str) -> bool:
    """A bank statement's source: ``bank:<account>``, or any source that is not one of the tenant's channels."""
    return source.startswith(BANK_PREFIX) or source not in channel_codes(uow, tenant_id)


def bank_account_of(source: str) -> str:
    """The bank account a bank source names (``bank:custody`` and ``custody`` are ``assets:bank:custody``)."""
    return source[len(BANK_PREFIX):] if source.startswith(BANK_PREFIX) else source


def day_window(calendar: BusinessCalendar, business_date: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) whose events are booked on ``business_date`` (empty on a day off)."""
    end = calendar.day_closes_at(business_date)
    if not calendar.is_business_day(business_date):
        return end, end
    previous = business_date - timedelta(days=1)
    for _ in range(3660):
        if calendar.is_business_day(previous):
            break
        previous -= timedelta(days=1)
    return calendar.day_closes_at(previous), end


def channel_codes(uow: UnitOfWork, tenant_id: str) -> list[str]:
    return list(uow.session.scalars(select(Channel.code).where(Channel.tenant_id == tenant_id)
                                    .order_by(Channel.code)))


def _payment_status(captured: int, refunded: int) -> str:
    if refunded <= 0:
        return "succeeded"
    return "refunded" if refunded >= captured else "partially_refunded"


def payment_rows(uow: UnitOfWork, tenant_id: str, *, start: datetime, end: datetime,
                 channel: str | None = None) -> list[dict[str, Any]]:
    """Captured payments (with the succeeded attempt) whose success falls in [start, end)."""
    query = (select(Payment.id, Payment.channel, Payment.captured_amount, Payment.refunded_amount,
                    Payment.fee_amount, Payment.currency, Payment.merchant_id, Payment.method, Payment.description,
                    Payment.succeeded_at, Attempt.id, Attempt.channel_ref)
             .join(Attempt, (Attempt.payment_id == Payment.id) & (Attempt.status == "succeeded"), isouter=True)
             .where(Payment.tenant_id == tenant_id, Payment.succeeded_at >= start, Payment.succeeded_at < end,
                    Payment.captured_amount > 0, Payment.channel.is_not(None))
             .order_by(Payment.id))
    if channel is not None:
        query = query.where(Payment.channel == channel)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for (pid, code, captured, refunded, fee, currency, merchant, method, description, at, attempt_id,
         channel_ref) in uow.session.execute(query):
        if pid in seen:  # a second succeeded attempt (refunded automatically) is not the capture
            continue
        seen.add(pid)
        rows.append({"record_id": pid, "kind": "payment", "payment_id": pid, "our_reference": attempt_id or pid,
                     "channel_reference": channel_ref, "channel": code, "amount": captured, "fee_amount": fee,
                     "currency": currency, "direction": "credit", "status": _payment_status(captured, refunded),
                     "occurred_at": at, "merchant_id": merchant, "method": method, "description": description or None})
    return rows


def refund_rows(uow: UnitOfWork, tenant_id: str, *, start: datetime, end: datetime,
                channel: str | None = None) -> list[dict[str, Any]]:
    """Succeeded refunds whose success (their last update) falls in [start, end)."""
    query = (select(Refund.id, Refund.payment_id, Refund.channel, Refund.amount, Refund.fee_returned_amount,
                    Refund.currency, Refund.channel_refund_ref, Refund.updated_at, Payment.merchant_id, Payment.method)
             .join(Payment, Payment.id == Refund.payment_id)
             .where(Refund.tenant_id == tenant_id, Refund.status == "succeeded", Refund.updated_at >= start,
                    Refund.updated_at < end)
             .order_by(Refund.id))
    if channel is not None:
        query = query.where(Refund.channel == channel)
    return [{"record_id": rid, "kind": "refund", "payment_id": pid, "our_reference": rid,
             "channel_reference": ref, "channel": code, "amount": amount, "fee_amount": fee, "currency": currency,
             "direction": "debit", "status": "succeeded", "occurred_at": at, "merchant_id": merchant,
             "method": method, "description": None}
            for rid, pid, code, amount, fee, currency, ref, at, merchant, method in uow.session.execute(query)]


def bank_rows(uow: UnitOfWork, tenant_id: str, *, source: str, business_date: date, at: datetime
              ) -> list[dict[str, Any]]:
    """Expected channel settlements (clearing batches), payouts executed and returned, and transfers to and
    from the money-market fund, of the day."""
    from finloop.clearing import service as clearing
    from finloop.payouts import service as payouts

    rows: list[dict[str, Any]] = []
    currencies = sorted(set(uow.session.scalars(select(Payment.currency).where(Payment.tenant_id == tenant_id)
                                                .distinct())))
    for code in channel_codes(uow, tenant_id):
        for currency in currencies:
            batch = clearing.find_clearing_batch(uow, tenant_id, channel_code=code, business_date=business_date,
                                                 currency=currency)
            if batch is None or not batch.expected_net_amount:
                continue
            rows.append({"record_id": batch.id, "kind": "settlement", "payment_id": None, "our_reference": batch.id,
                         "channel_reference": None, "channel": code, "amount": abs(batch.expected_net_amount),
                         "fee_amount": 0, "currency": currency,
                         "direction": "credit" if batch.expected_net_amount > 0 else "debit",
                         "status": str(batch.status), "occurred_at": at, "merchant_id": None, "method": None,
                         "description": f"{code} settlement {business_date}", "group_key": f"batch:{batch.id}"})
    for payout in payouts.list_payouts_for_recon(uow, tenant_id, executed_on=business_date):
        rows.append({"record_id": payout.id, "kind": "payout", "payment_id": None, "our_reference": payout.id,
                     "channel_reference": payout.bank_reference, "channel": None, "amount": payout.amount,
                     "fee_amount": 0, "currency": payout.currency, "direction": "debit", "status": str(payout.status),
                     "occurred_at": at,
                     "merchant_id": payout.party_id if str(payout.party_kind) == "merchant" else None,
                     "method": None, "description": None,
                     "group_key": f"payouts:{payout.executed_on}:{payout.currency}"})
    for payout in payouts.list_payout_returns_for_recon(uow, tenant_id, returned_on=business_date):
        rows.append({"record_id": f"{payout.id}:return", "kind": "payout_return", "payment_id": None,
                     "our_reference": payout.id, "channel_reference": payout.bank_reference, "channel": None,
                     "amount": payout.amount, "fee_amount": 0, "currency": payout.currency, "direction": "credit",
                     "status": str(payout.status), "occurred_at": at,
                     "merchant_id": payout.party_id if str(payout.party_kind) == "merchant" else None,
                     "method": None, "description": None, "group_key": None})
    rows.extend(fund_transfer_rows(uow, tenant_id, source=source, business_date=business_date, at=at))
    return rows


def fund_transfer_rows(uow: UnitOfWork, tenant_id: str, *, source: str, business_date: date, at: datetime
                       ) -> list[dict[str, Any]]:
    """Cash between the bank account and the money-market fund (subscriptions out, redemptions in): one
    record per wealth entry on the account that day, referenced by its fund order."""
    bank = bank_account_code(source.removeprefix("bank:"))
    entries = uow.session.execute(
        select(Entry.transfer_key, Posting.amount, Posting.currency)
        .join(Posting, Posting.entry_id == Entry.id).join(Account, Account.id == Posting.account_id)
        .where(Entry.tenant_id == tenant_id, Entry.business_date == business_date,
               Entry.transfer_key.like("wealth:%"), Account.tenant_id == tenant_id, Account.code == bank)
        .order_by(Entry.transfer_key)).all()
    return [{"record_id": key, "kind": "other", "payment_id": None, "our_reference": key.split(":")[2],
             "channel_reference": None, "channel": None, "amount": abs(amount), "fee_amount": 0, "currency": currency,
             "direction": "credit" if amount > 0 else "debit", "status": "booked", "occurred_at": at,
             "merchant_id": None, "method": None, "description": "money-market fund transfer", "group_key": None}
            for key, amount, currency in entries if amount]


def to_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    return conform(pl.DataFrame(rows, schema_overrides={k: v for k, v in RECORD_SCHEMA.items()
                                                          if k in rows[0]}, infer_schema_length=None),
                   RECORD_SCHEMA)


def load_records(uow: UnitOfWork, tenant_id: str, *, source: str, business_date: date
                 ) -> tuple[pl.DataFrame, datetime]:
    """Our records of ``source`` booked on ``business_date``, and the settlement-timing boundary."""
    calendar = get_calendar(uow, tenant_id)
    start, end = day_window(calendar, business_date)
    if is_bank_source(uow, tenant_id, source):
        rows = bank_rows(uow, tenant_id, source=source, business_date=business_date,
                         at=end - timedelta(microseconds=1))
    else:
        rows = (payment_rows(uow, tenant_id, start=start, end=end, channel=source)
                + refund_rows(uow, tenant_id, start=start, end=end, channel=source))
    return to_frame(rows), end - TIMING_MARGIN
