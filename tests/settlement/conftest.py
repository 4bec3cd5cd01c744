"""Helpers: a merchant whose pending balance the tests credit and debit themselves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pytest

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec
from finloop.payments import service as payments
from finloop.payments.postings import AccountSpec, ensure_account
from finloop.settlement.accounts import Bucket, PartyKind, party_account_code, party_receivable_code
from tests.conftest import TenantHandle


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


@dataclass
class Shop:
    db: Database
    clock: FrozenClock
    tenant_id: str
    merchant_id: str

    def sell(self, day: date, amount: int, currency: str = "CNY", key: str | None = None) -> str:
        """Book a sale on ``day``: Dr channel receivable, Cr the merchant's pending (what splits does)."""
        return self._post(day, amount, currency, key or f"sale:{day}:{amount}:{currency}")

    def claw_back(self, day: date, amount: int, currency: str = "CNY") -> str:
        return self._post(day, -amount, currency, f"clawback:{day}:{amount}:{currency}")

    def _post(self, day: date, amount: int, currency: str, key: str) -> str:
        self.clock.set(at(day))
        with self.db.uow() as uow:
            receivable = ensure_account(uow, self.tenant_id, AccountSpec("assets:channel_receivable:test",
                                                                         AccountType.ASSET), currency)
            pending = ensure_account(uow, self.tenant_id, AccountSpec(
                party_account_code(PartyKind.MERCHANT, self.merchant_id, Bucket.PENDING), AccountType.LIABILITY,
                BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), currency)
            posted = ledger.post_transfer(uow, self.tenant_id, TransferSpec.simple(
                key, receivable, pending, amount, currency) if amount > 0 else TransferSpec.simple(
                key, pending, receivable, -amount, currency))
            uow.commit()
        return posted.id

    def balance(self, bucket: str, currency: str = "CNY") -> int:
        code = (party_receivable_code(PartyKind.MERCHANT, self.merchant_id) if bucket == "receivable"
                else party_account_code(PartyKind.MERCHANT, self.merchant_id, Bucket(bucket)))
        return account_balance(self.db, self.tenant_id, code, currency)


def account_balance(db: Database, tenant_id: str, code: str, currency: str) -> int:
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, tenant_id, code, currency)
        return 0 if account is None else ledger.balances(account).posted


def make_shop(db: Database, clock: FrozenClock, tenant: TenantHandle, reference: str = "m-1") -> Shop:
    with db.uow() as uow:
        merchant = payments.create_merchant(uow, tenant.id, reference=reference, name="Shop")
        uow.commit()
    return Shop(db, clock, tenant.id, merchant.id)


@pytest.fixture
def shop(db: Database, clock: FrozenClock, tenant: TenantHandle) -> Shop:
    return make_shop(db, clock, tenant)
