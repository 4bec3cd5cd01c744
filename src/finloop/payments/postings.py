"""Where payments touch the ledger: the one place that turns a payment event into a balanced entry.

On success the channel owes us the amount net of its fee, the fee is an expense, and the whole amount
is credited to the merchant's pending balance (the platform bears the channel fee; splits replace the
credit side in the settlement issue, here and nowhere else). A refund reverses it, giving back the
fee share the channel returns under its refund fee policy.

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

from sqlalchemy.exc import IntegrityError

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


def ensure_account(uow: UnitOfWork, tenant_id: str, spec: AccountSpec, currency: str) -> str:
    """The id of the account, created on first use. Two first uses racing both end with the same row."""
    found = ledger.find_account_by_code(uow, tenant_id, spec.code, currency)
    if found is not None:
        return found.id
    try:
        with uow.session.begin_nested():
            return ledger.create_account(uow, tenant_id, code=spec.code, type=spec.type, currency_code=currency,
                                         balance_rule=spec.rule).id
    except (IntegrityError, Conflict):  # the ledger saw the racing row first, or the database did
        found = ledger.find_account_by_code(uow, tenant_id, spec.code, currency)
        assert found is not None  # the racing transaction committed it
        return found.id


def _accounts(uow: UnitOfWork, payment: Payment, channel: str) -> tuple[str, str, str]:
    shard = shard_of(payment.id)
    receivable = ensure_account(uow, payment.tenant_id, AccountSpec(channel_receivable_code(channel, shard),
                                                                      AccountType.ASSET), payment.currency)
    fees = ensure_account(uow, payment.tenant_id, AccountSpec(channel_fees_code(channel, shard),
                                                               AccountType.EXPENSE), payment.currency)
    return receivable, fees, payee_account(uow, payment)


def post_payment_captured(uow: UnitOfWork, payment: Payment, *, attempt_id: str, channel: str, amount: int,
                          fee: int) -> str:
    """Debit the channel receivable (net) and the fee expense, credit the merchant's pending balance."""
    receivable, fees, pending = _accounts(uow, payment, channel)
    # A fee above the amount (a fixed fee on a tiny payment) leaves the receivable on the credit side.
    postings = tuple(PostingSpec(account, delta, payment.currency)
                     for account, delta in ((receivable, amount - fee), (fees, fee), (pending, -amount)) if delta)
    posted = ledger.post_transfer(uow, payment.tenant_id, TransferSpec(
        key=f"payment:{payment.id}:{attempt_id}", postings=postings,
        description=f"payment {payment.id} via {channel}",
        metadata=_metadata(payment, attempt_id=attempt_id)))
    return posted.id


def post_refund_succeeded(uow: UnitOfWork, payment: Payment, refund: Refund) -> str:
    """Debit the merchant's pending balance, credit the channel receivable and the returned fee."""
    receivable, fees, pending = _accounts(uow, payment, refund.channel)
    postings = [PostingSpec(pending, refund.amount, payment.currency)]
    net = refund.amount - refund.fee_returned_amount
    if net:
        postings.append(PostingSpec(receivable, -net, payment.currency))
    if refund.fee_returned_amount:
        postings.append(PostingSpec(fees, -refund.fee_returned_amount, payment.currency))
    posted = ledger.post_transfer(uow, payment.tenant_id, TransferSpec(
        key=f"refund:{refund.id}", postings=tuple(postings), description=f"refund {refund.id} of {payment.id}",
        metadata=_metadata(payment, refund_id=refund.id)))
    return posted.id


def _metadata(payment: Payment, **ids: str) -> dict[str, str]:
    parties = {"merchant_id": payment.merchant_id, "customer_id": payment.customer_id}
    return {"payment_id": payment.id, **ids, **{k: v for k, v in parties.items() if v}}


def post_wallet_payment(uow: UnitOfWork, payment: Payment) -> str:
    """Pay from the customer's balance: debit the wallet, credit the payee. The wallet's balance rule
    refuses an overdraft inside the posting itself."""
    assert payment.customer_id is not None
    wallet = wallet_account(uow, payment.tenant_id, payment.customer_id, payment.currency)
    posted = ledger.post_transfer(uow, payment.tenant_id, TransferSpec.simple(
        f"payment:{payment.id}:wallet", wallet, payee_account(uow, payment), payment.amount, payment.currency,
        f"payment {payment.id} from wallet", metadata=_metadata(payment)))
    return posted.id


def post_refund_to_wallet(uow: UnitOfWork, payment: Payment, refund: Refund) -> str:
    """A refund paid into the customer's wallet (wallet payments, or a refund the channel could not make)."""
    assert payment.customer_id is not None
    wallet = wallet_account(uow, payment.tenant_id, payment.customer_id, payment.currency)
    posted = ledger.post_transfer(uow, payment.tenant_id, TransferSpec.simple(
        f"refund:{refund.id}", payee_account(uow, payment), wallet, refund.amount, payment.currency,
        f"refund {refund.id} of {payment.id} to wallet", metadata=_metadata(payment, refund_id=refund.id)))
    return posted.id
