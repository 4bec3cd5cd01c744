"""Wealth fixtures: a tenant with a customer and a merchant that have money to invest, and a fund."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec
from finloop.payments import service as payments
from finloop.payments.postings import AccountSpec, ensure_account, wallet_account
from finloop.settlement.accounts import Bucket, PartyKind, party_account_code
from finloop.wealth import service as wealth
from tests.conftest import TenantHandle

CNY = "CNY"


@dataclass
class Investors:
    tenant: TenantHandle
    customer_id: str
    merchant_id: str
    fund_id: str


def fund_wallet(db: Database, tenant_id: str, customer_id: str, amount: int, key: str) -> None:
    """Give a customer's wallet money from the platform's capital (tests only)."""
    with db.uow() as uow:
        capital = ensure_account(uow, tenant_id, AccountSpec("equity:capital", AccountType.EQUITY), CNY)
        wallet = wallet_account(uow, tenant_id, customer_id, CNY)
        ledger.post_transfer(uow, tenant_id, TransferSpec.simple(key, capital, wallet, amount, CNY, "test funding"))
        uow.commit()


def fund_merchant(db: Database, tenant_id: str, merchant_id: str, amount: int, key: str) -> None:
    with db.uow() as uow:
        capital = ensure_account(uow, tenant_id, AccountSpec("equity:capital", AccountType.EQUITY), CNY)
        available = ensure_account(uow, tenant_id, AccountSpec(
            party_account_code(PartyKind.MERCHANT, merchant_id, Bucket.AVAILABLE), AccountType.LIABILITY,
            BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), CNY)
        ledger.post_transfer(uow, tenant_id, TransferSpec.simple(key, capital, available, amount, CNY, "test funding"))
        uow.commit()


def balance(db: Database, tenant_id: str, code: str) -> int:
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, tenant_id, code, CNY)
        return 0 if account is None else ledger.balances(account).posted


def make_investors(db: Database, tenant: TenantHandle, *, fast_limit: int = 50_000) -> Investors:
    with db.uow() as uow:
        customer = payments.create_customer(uow, tenant.id, reference="alice")
        merchant = payments.create_merchant(uow, tenant.id, reference="shop-1", name="Shop")
        fund = wealth.create_fund(uow, tenant.id, code="MMF1", name="Money Fund", currency_code=CNY,
                                  fast_redemption_daily_limit=fast_limit, min_subscription_amount=100, actor="test")
        uow.commit()
    fund_wallet(db, tenant.id, customer.id, 1_000_000, "fund-alice")
    return Investors(tenant, customer.id, merchant.id, fund.id)


@pytest.fixture
def investors(db: Database, tenant: TenantHandle) -> Investors:
    return make_investors(db, tenant)
