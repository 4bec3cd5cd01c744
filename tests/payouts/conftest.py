"""Payouts fixtures: a sandbox bank on the test clock, and a tenant with a merchant whose available
balance is funded by a transfer of our own (no other domain's code involved)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec
from finloop.payments import service as payments
from finloop.payments.postings import AccountSpec, ensure_account
from finloop.payouts import flows
from finloop.payouts import service as payouts
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.settlement.accounts import Bucket, PartyKind, party_account_code
from tests.conftest import TenantHandle
from tests.onboarding.helpers import verify_party

ACCOUNT_NUMBER = "6222020200112233445"


@pytest.fixture
def bank(clock: FrozenClock) -> Iterator[SandboxBank]:
    sandbox = SandboxBank(clock, seed=3)
    with flows.use_bank(sandbox):
        yield sandbox


def fund(db: Database, tenant_id: str, party_id: str, amount: int, *, currency: str = "CNY",
         kind: PartyKind = PartyKind.MERCHANT, key: str | None = None) -> None:
    """Give the party available money: Dr equity:capital, Cr its available balance."""
    with db.uow() as uow:
        capital = ensure_account(uow, tenant_id, AccountSpec("equity:capital", AccountType.EQUITY), currency)
        available = ensure_account(uow, tenant_id, AccountSpec(
            party_account_code(kind, party_id, Bucket.AVAILABLE), AccountType.LIABILITY,
            BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS), currency)
        ledger.post_transfer(uow, tenant_id, TransferSpec.simple(
            key or f"fund:{party_id}:{amount}:{uow.clock.now().isoformat()}", capital, available, amount, currency,
            "test funding"))
        uow.commit()


def balances(db: Database, tenant_id: str, party_id: str, currency: str = "CNY",
             kind: PartyKind = PartyKind.MERCHANT) -> tuple[int, int, int]:
    """(posted, available, custody posted) of the party's available account and the custody bank account."""
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, tenant_id, party_account_code(kind, party_id, Bucket.AVAILABLE),
                                              currency)
        custody = ledger.find_account_by_code(uow, tenant_id, "assets:bank:custody", currency)
        party = ledger.balances(account) if account else None
        return (party.posted if party else 0, party.available if party else 0,
                ledger.balances(custody).posted if custody else 0)


@dataclass
class Party:
    tenant: TenantHandle
    merchant_id: str
    account_id: str


def make_party(db: Database, tenant: TenantHandle, *, reference: str = "M1", funded: int = 100_000) -> Party:
    with db.uow() as uow:
        merchant = payments.create_merchant(uow, tenant.id, reference=reference, name="Tea House")
        account = payouts.create_payout_account(uow, tenant.id, party_kind=PartyKind.MERCHANT,
                                                party_id=merchant.id, currency="CNY", holder_name="Li Wei",
                                                account_number=ACCOUNT_NUMBER, bank_code="ICBKCNBJ")
        merchant_id, account_id = merchant.id, account.id
        uow.commit()
    verify_party(db, tenant.id, "merchant", merchant_id)
    if funded:
        fund(db, tenant.id, merchant_id, funded)
    return Party(tenant, merchant_id, account_id)


@pytest.fixture
def party(db: Database, tenant: TenantHandle) -> Party:
    return make_party(db, tenant)
