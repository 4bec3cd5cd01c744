"""Where payments touch the ledger: the one place that turns a payment event into a balanced entry.

On success the channel owes us the amount net of its fee, the fee is an expense, and the amount is
split (``finloop.splits``): each party's share is credited to its pending balance and the platform's to
its commission income; with no split rule the merchant's pending balance takes it all and the platform
bears the fee, as before splits. A refund claws back from the parties of the split, giving back the fee
share the channel returns under its refund fee policy. A wallet top-up is not split.

Hot accounts: every payment through a channel touches its receivable and its fee expense, so one row
each would serialise all payments of a channel behind one lock. They are split into ``HOT_SHARDS``
sub-accounts (``assets:channel:<code>:<shard>``); a payment always uses the shard of its id, so its
refunds come back to the account its success went to. Reports read the channel's balance as the sum of
the sub-accounts under ``assets:channel:<code>`` (docs/adr/0002-payments-hot-accounts.md).

Every entry carries a permanent transfer key derived from the object it records, so applying the same
channel result twice (a notification and a query racing) can never post twice.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from finloop.core.errors import Conflict
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, PostingSpec, TransferSpec
from finloop.payments.models import Payment, Refund

#: Sub-accounts per hot account. A power of two is not needed; more shards, less lock contention.
HOT_SHARDS = 8


def shard_of(payment_id: str) -> int:
    return zlib.crc32(payment_id.encode()) % HOT_SHARDS


def channel_receivable_code(channel: str, shard: int) -> str:
    return f"assets:channel:{channel}:{shard}"


def channel_fees_code(channel: str, shard: int) -> str:
    return f"expenses:channel_fees:{channel}:{shard}"


def merchant_pending_code(merchant_id: str) -> str:
    return f"liabilities:merchant:{merchant_id}:pending"


def customer_wallet_code(customer_id: str) -> str:
    return f"liabilities:customer:{customer_id}:wallet"


def wallet_account(uow: UnitOfWork, tenant_id: str, customer_id: str, currency: str) -> str:
    """The customer's stored-value balance: a liability that must never go below zero."""
    return ensure_account(uow, tenant_id, AccountSpec(customer_wallet_code(customer_id), AccountType.LIABILITY,
                                                        BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), currency)


def payee_account(uow: UnitOfWork, payment: Payment) -> str:
    """Where a payment's money is owed: the merchant's pending balance, or the customer's own wallet
    for a top-up."""
    if payment.purpose == "wallet_top_up":
        assert payment.customer_id is not None
        return wallet_account(uow, payment.tenant_id, payment.customer_id, payment.currency)
    assert payment.merchant_id is not None
    return ensure_account(uow, payment.tenant_id, AccountSpec(
        merchant_pending_code(payment.merchant_id), AccountType.LIABILITY,
        BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), payment.currency)


@dataclass(frozen=True, slots=True)
class AccountSpec:
    code: str
    type: AccountType
    rule: BalanceRule = BalanceRule.NONE


# Account ids by (tenant, code, currency). An account is never deleted and its code never changes, so once
# its row is committed the id of a code is fixed: it is looked up once per process, not on every posting.
# Only the id is kept (no balance, no status: the posting reads and locks the row itself), and only after the
# transaction that saw the row has committed, so a row created in a transaction that rolled back is never
# remembered. Bounded: emptied when full.
_account_ids: dict[tuple[str, str, str], str] = {}
_ACCOUNT_IDS_CACHED = 100_000
_SEEN = "finloop.payments.account_ids"


def _stage(uow: UnitOfWork, key: tuple[str, str, str], account_id: str) -> str:
    uow.session.info.setdefault(_SEEN, {})[key] = account_id
    return account_id


@event.listens_for(Session, "after_commit")
def _remember_committed(session: Session) -> None:
    # Fired for a released savepoint too: only the commit of the whole transaction counts.
    if session.in_nested_transaction():
        return
    seen = session.info.pop(_SEEN, None)
    if seen:
        if len(_account_ids) + len(seen) > _ACCOUNT_IDS_CACHED:
            _account_ids.clear()
        _account_ids.update(seen)


@event.listens_for(Session, "after_rollback")
def _forget_uncommitted(session: Session) -> None:
    # A savepoint's rollback too, conservatively: what it saw may have been created inside it.
    session.info.pop(_SEEN, None)


def ensure_account(uow: UnitOfWork, tenant_id: str, spec: AccountSpec, currency: str) -> str:
    """The id of the account, created on first use. Two first uses racing both end with the same row."""
    key = (tenant_id, spec.code, currency)
    known = _account_ids.get(key)
    if known is not None:
        return known
    found = ledger.find_account_by_code(uow, tenant_id, spec.code, currency)
    if found is not None:
        return _stage(uow, key, found.id)
    try:
        with uow.session.begin_nested():
            created = ledger.create_account(uow, tenant_id, code=spec.code, type=spec.type, currency_code=currency,
                                            balance_rule=spec.rule).id
    except (IntegrityError, Conflict):  # the ledger saw the racing row first, or the database did
        found = ledger.find_account_by_code(uow, tenant_id, spec.code, currency)
        assert found is not None  # the racing transaction committed it
        return _stage(uow, key, found.id)
    return _stage(uow, key, created)


def _channel_accounts(uow: UnitOfWork, payment: Payment, channel: str) -> tuple[str, str]:
    shard = shard_of(payment.id)
    receivable = ensure_account(uow, payment.tenant_id, AccountSpec(channel_receivable_code(channel, shard),
                                                                      AccountType.ASSET), payment.currency)
    fees = ensure_account(uow, payment.tenant_id, AccountSpec(channel_fees_code(channel, shard),
                                                               AccountType.EXPENSE), payment.currency)
    return receivable, fees


def _split_payment(payment: Payment) -> bool:
    """Order payments to a merchant are split; a wallet top-up is the customer's own money and is not.

    A payment object with no row (the hot-account benchmark posts for transient payments) cannot record a
    split, whose rows refer to the payment: it is credited whole to the merchant, as before splits."""
    return (payment.purpose != "wallet_top_up" and payment.merchant_id is not None
            and sa_inspect(payment).persistent)


def post_payment_captured(uow: UnitOfWork, payment: Payment, *, attempt_id: str, channel: str, amount: int,
                          fee: int) -> str:
    """Debit the channel receivable (net) and the fee expense; credit the split: every party's pending
    balance, the platform's commission (``finloop.splits.service.post_capture``). A top-up credits the wallet."""
    receivable, fees = _channel_accounts(uow, payment, channel)
    # A fee above the amount (a fixed fee on a tiny payment) leaves the receivable on the credit side.
    debits = tuple((account, delta) for account, delta in ((receivable, amount - fee), (fees, fee)) if delta)
    key = f"payment:{payment.id}:{attempt_id}"
    description = f"payment {payment.id} via {channel}"
    metadata = _metadata(payment, attempt_id=attempt_id)
    if _split_payment(payment):
        from finloop.splits import service as splits

        return splits.post_capture(uow, payment, capture_key=attempt_id, amount=amount, fee=fee, channel=channel,
                                   debits=debits, key=key, description=description, metadata=metadata)
    postings = tuple(PostingSpec(account, delta, payment.currency)
                     for account, delta in (*debits, (payee_account(uow, payment), -amount)))
    posted = ledger.post_transfer(uow, payment.tenant_id, TransferSpec(
        key=key, postings=postings, description=description, metadata=metadata))
    return posted.id


def post_refund_succeeded(uow: UnitOfWork, payment: Payment, refund: Refund) -> str:
    """Credit the channel receivable and the returned fee; debit the split's parties (claw-back) or,
    for an unsplit capture, the payee."""
    receivable, fees = _channel_accounts(uow, payment, refund.channel)
    net = refund.amount - refund.fee_returned_amount
    credits = tuple((account, -delta) for account, delta in ((receivable, net), (fees, refund.fee_returned_amount))
                    if delta)
    # The channel has already given the money back: the claw-back is posted even past a receivable limit.
    return _post_refund(uow, payment, refund, credits, f"refund {refund.id} of {payment.id}", enforce_limit=False)


def _post_refund(uow: UnitOfWork, payment: Payment, refund: Refund, credits: tuple[tuple[str, int], ...],
                 description: str, *, enforce_limit: bool) -> str:
    key = f"refund:{refund.id}"
    metadata = _metadata(payment, refund_id=refund.id)
    if _split_payment(payment):
        from finloop.splits import service as splits

        entry_id = splits.post_clawback(uow, payment, refund, credits=credits, key=key, description=description,
                                        metadata=metadata, enforce_limit=enforce_limit)
        if entry_id is not None:
            return entry_id
    postings = tuple(PostingSpec(account, delta, payment.currency)
                     for account, delta in ((payee_account(uow, payment), refund.amount), *credits))
    posted = ledger.post_transfer(uow, payment.tenant_id, TransferSpec(
        key=key, postings=postings, description=description, metadata=metadata))
    return posted.id


def _metadata(payment: Payment, **ids: str) -> dict[str, str]:
    parties = {"merchant_id": payment.merchant_id, "customer_id": payment.customer_id}
    return {"payment_id": payment.id, **ids, **{k: v for k, v in parties.items() if v}}


def post_wallet_payment(uow: UnitOfWork, payment: Payment) -> str:
    """Pay from the customer's balance: debit the wallet, credit the split (or the payee). The wallet's
    balance rule refuses an overdraft inside the posting itself."""
    assert payment.customer_id is not None
    wallet = wallet_account(uow, payment.tenant_id, payment.customer_id, payment.currency)
    key, description = f"payment:{payment.id}:wallet", f"payment {payment.id} from wallet"
    if _split_payment(payment):
        from finloop.splits import service as splits

        return splits.post_capture(uow, payment, capture_key=splits.WALLET_CAPTURE, amount=payment.amount, fee=0,
                                   channel=None, debits=((wallet, payment.amount),), key=key, description=description,
                                   metadata=_metadata(payment))
    posted = ledger.post_transfer(uow, payment.tenant_id, TransferSpec.simple(
        key, wallet, payee_account(uow, payment), payment.amount, payment.currency, description,
        metadata=_metadata(payment)))
    return posted.id


def post_refund_to_wallet(uow: UnitOfWork, payment: Payment, refund: Refund) -> str:
    """A refund paid into the customer's wallet (wallet payments, or a refund the channel could not make)."""
    assert payment.customer_id is not None
    wallet = wallet_account(uow, payment.tenant_id, payment.customer_id, payment.currency)
    # Decided in the transaction that records it (no approval waited): a refund over a party's receivable
    # limit is refused here, nothing written. An approved one is already owed to the customer: posted.
    return _post_refund(uow, payment, refund, ((wallet, -refund.amount),),
                        f"refund {refund.id} of {payment.id} to wallet", enforce_limit=refund.approval_id is None)
