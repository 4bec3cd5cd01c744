"""Small builders for ledger tests."""

from __future__ import annotations

from finloop.db.uow import Database
from finloop.ledger import service
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec


def open_account(db: Database, tenant_id: str, code: str, type_: AccountType, currency: str = "CNY",
                 rule: BalanceRule = BalanceRule.NONE, overdraft: int = 0) -> str:
    with db.uow() as uow:
        account = service.create_account(uow, tenant_id, code=code, type=type_, currency_code=currency,
                                         balance_rule=rule, overdraft_limit=overdraft)
        uow.commit()
        return account.id


def transfer(db: Database, tenant_id: str, key: str, debit: str, credit: str, amount: int,
             currency: str = "CNY") -> str:
    with db.uow() as uow:
        posted = service.post_transfer(uow, tenant_id, TransferSpec.simple(key, debit, credit, amount, currency))
        uow.commit()
        return posted.id


def balance(db: Database, tenant_id: str, account_id: str) -> int:
    with db.uow(read_only=True) as uow:
        return service.balances(service.get_account(uow, tenant_id, account_id)).posted
