"""Customer wallets: stored value whose balance is a ledger account, never a column of its own.

Invariants owned here:
- a wallet is ``liabilities:customer:<id>:wallet`` per currency, with a balance rule that refuses any
  overdraft, so a payment from balance or a withdrawal can never spend money the customer does not have;
- a withdrawal reserves its amount with a ledger hold before the payout is sent (the money can be
  neither spent nor withdrawn twice while the payout is in flight); the payout's success posts the hold,
  its failure voids it; both happen once, whatever order answers and queries arrive in;
- the destination account number is sealed by the vault; only its last four digits are ever shown.
Top-ups are payments with purpose ``wallet_top_up`` and go through the normal payment flows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from finloop.core.errors import InvalidRequest, NotFound
from finloop.core.money import check_amount
from finloop.core.text import check_account_number, check_holder_name
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType
from finloop.ledger.models import Account
from finloop.payments import postings, service
from finloop.payments.connectors.base import Outcome, PayoutResult
from finloop.payments.models import Withdrawal
from finloop.payments.state import OPEN_WITHDRAWAL_STATUSES, WithdrawalStatus
from finloop.webhooks import service as webhooks

ACCOUNT_PURPOSE = "payout_account"


@dataclass(frozen=True, slots=True)
class WalletBalance:
    currency: str
    balance: int      # posted
    available: int    # posted less withdrawals in flight
    account_id: str


def wallet_accounts(uow: UnitOfWork, tenant_id: str, customer_id: str) -> list[Account]:
    code = postings.customer_wallet_code(customer_id)
    return list(uow.session.scalars(select(Account).where(Account.tenant_id == tenant_id, Account.code == code)
                                    .order_by(Account.currency)))


def wallet_balances(uow: UnitOfWork, tenant_id: str, customer_id: str) -> list[WalletBalance]:
    service.get_customer(uow, tenant_id, customer_id)
    result = []
    for account in wallet_accounts(uow, tenant_id, customer_id):
        balances = ledger.balances(account)
        result.append(WalletBalance(account.currency, balances.posted, balances.available, account.id))
    return result


def wallet_account(uow: UnitOfWork, tenant_id: str, customer_id: str, currency: str) -> Account:
    service.get_customer(uow, tenant_id, customer_id)
    account = ledger.find_account_by_code(uow, tenant_id, postings.customer_wallet_code(customer_id), currency)
    if account is None:
        raise NotFound(f"The customer has no {currency} wallet yet.", code="wallet_not_found", param="currency")
    return account


def begin_withdrawal(uow: UnitOfWork, tenant_id: str, customer_id: str, *, channel_code: str, amount: int,
                     currency: str, account_name: str, account_number: str,
                     bank_code: str | None = None) -> Withdrawal:
    from finloop.vault import service as vault

    check_amount(amount, allow_zero=False, allow_negative=False)
    service.check_currency(currency, "currency")
    number = check_account_number(account_number)
    name = check_holder_name(account_name, param="account_name")
    channel = service.channel_by_code(uow, tenant_id, channel_code)
    if channel.status != "enabled" or currency not in channel.currencies:
        raise InvalidRequest(f"Channel {channel_code} does not pay out {currency}.", code="channel_unavailable",
                             param="channel")
    wallet = wallet_account(uow, tenant_id, customer_id, currency)
    withdrawal_id = uow.ids.new("payout")
    receivable = postings.ensure_account(uow, tenant_id, postings.AccountSpec(
        postings.channel_receivable_code(channel_code, postings.shard_of(withdrawal_id)),
        AccountType.ASSET), currency)
    hold, _ = ledger.create_hold(uow, tenant_id, key=f"withdrawal:{withdrawal_id}", debit_account_id=wallet.id,
                                 credit_account_id=receivable, amount=amount, currency_code=currency,
                                 description=f"withdrawal {withdrawal_id}",
                                 metadata={"withdrawal_id": withdrawal_id, "customer_id": customer_id})
    now = uow.clock.now()
    withdrawal = Withdrawal(
        id=withdrawal_id, tenant_id=tenant_id, customer_id=customer_id, channel=channel_code, amount=amount,
        currency=currency, fee_amount=0, status=WithdrawalStatus.PROCESSING.value, account_name=name,
        account_last4=number[-4:],
        account_sealed=vault.seal_secret(uow, tenant_id, number.encode(), purpose=ACCOUNT_PURPOSE),
        bank_code=bank_code, hold_id=hold.id, channel_ref=None, error_code=None, error_message=None,
        ledger_entry_id=None, queries=0, next_query_at=now + service.next_query_delay(0), created_at=now,
        updated_at=now)
    uow.session.add(withdrawal)
    uow.session.flush()
    return withdrawal


def account_number(uow: UnitOfWork, withdrawal: Withdrawal) -> str:
    from finloop.vault import service as vault

    return vault.unseal_secret(uow, withdrawal.tenant_id, withdrawal.account_sealed, purpose=ACCOUNT_PURPOSE).decode()


def get_withdrawal(uow: UnitOfWork, tenant_id: str, withdrawal_id: str, *, lock: bool = False) -> Withdrawal:
    query = select(Withdrawal).where(Withdrawal.tenant_id == tenant_id, Withdrawal.id == withdrawal_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    withdrawal = uow.session.scalar(query)
    if withdrawal is None:
        raise NotFound(f"No such withdrawal: {withdrawal_id}.", code="withdrawal_not_found", param="withdrawal_id")
    return withdrawal


def apply_payout_result(uow: UnitOfWork, withdrawal: Withdrawal, result: PayoutResult) -> str:
    """Forward only: the first final answer posts or voids the hold; anything after it changes nothing."""
    if withdrawal.status not in OPEN_WITHDRAWAL_STATUSES:
        return withdrawal.status
    now = uow.clock.now()
    withdrawal.updated_at = now
    if result.channel_ref and not withdrawal.channel_ref:
        withdrawal.channel_ref = result.channel_ref
    if result.outcome is Outcome.SUCCEEDED:
        _, entry_id = ledger.post_hold(uow, withdrawal.tenant_id, withdrawal.hold_id)
        withdrawal.status = WithdrawalStatus.SUCCEEDED.value
        withdrawal.fee_amount = result.fee or 0
        withdrawal.ledger_entry_id = entry_id
        withdrawal.next_query_at = None
        _publish(uow, withdrawal, "payout.paid")
    elif result.outcome in (Outcome.FAILED, Outcome.DECLINED, Outcome.NOT_FOUND, Outcome.CANCELED):
        ledger.void_hold(uow, withdrawal.tenant_id, withdrawal.hold_id)
        withdrawal.status = WithdrawalStatus.FAILED.value
        withdrawal.error_code = (result.error_code or result.outcome.value)[:100]
        withdrawal.error_message = (result.error_message or "")[:500] or None
        withdrawal.next_query_at = None
        _publish(uow, withdrawal, "payout.failed")
    else:  # processing or unknown: ask again later
        withdrawal.status = (WithdrawalStatus.UNKNOWN if result.outcome is Outcome.UNKNOWN
                             else WithdrawalStatus.PROCESSING).value
        withdrawal.next_query_at = now + service.next_query_delay(withdrawal.queries)
    return withdrawal.status


def _publish(uow: UnitOfWork, withdrawal: Withdrawal, type_: str) -> None:
    webhooks.publish_event(uow, withdrawal.tenant_id, type=type_, data={
        "id": withdrawal.id, "customer_id": withdrawal.customer_id, "amount": withdrawal.amount,
        "currency": withdrawal.currency, "status": withdrawal.status, "channel": withdrawal.channel,
        "account_last4": withdrawal.account_last4, "failure_code": withdrawal.error_code})


def due_withdrawals(uow: UnitOfWork, *, now: datetime, limit: int) -> list[Withdrawal]:
    return list(uow.session.scalars(select(Withdrawal).where(
        Withdrawal.status.in_([s.value for s in OPEN_WITHDRAWAL_STATUSES]), Withdrawal.next_query_at <= now)
        .order_by(Withdrawal.next_query_at).limit(limit)))
