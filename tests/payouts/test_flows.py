"""The money of a payout through every bank outcome, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from finloop.core.clock import FrozenClock
from finloop.core.errors import InvalidRequest
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.payouts import flows
from finloop.payouts import service as payouts
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.settlement.accounts import PartyKind
from tests.conftest import T0
from tests.payouts.conftest import Party, balances


def request(db: Database, party: Party, amount: int, *, send: bool = True) -> str:
    return flows.request_payout(db, party.tenant.id, party_kind=PartyKind.MERCHANT, party_id=party.merchant_id,
                                amount=amount, currency="CNY", send=send)


def status(db: Database, party: Party, payout_id: str) -> tuple[str, int]:
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, party.tenant.id, payout_id)
        return payout.status, payout.attempts


def test_hold_success_failure_and_retries(db: Database, party: Party, bank: SandboxBank,
                                          clock: FrozenClock) -> None:
    tenant_id = party.tenant.id
    # Requested, not yet sent: the amount is held (available drops, nothing posted, a pending hold).
    first = request(db, party, 30_000, send=False)
    assert balances(db, tenant_id, party.merchant_id) == (100_000, 70_000, 0)
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, tenant_id, first)
        hold = ledger.get_hold(uow, tenant_id, payout.hold_id)
        assert (hold.status, hold.amount, hold.expires_at) == ("pending", 30_000, None)
        assert payouts.available_balance(uow, tenant_id, party_kind=PartyKind.MERCHANT,
                                         party_id=party.merchant_id, currency="CNY") == 70_000

    # Success posts the hold: Dr available, Cr custody bank.
    bank.queue("success")
    assert flows.send_payout(db, tenant_id, first) == "succeeded"
    assert balances(db, tenant_id, party.merchant_id) == (70_000, 70_000, -30_000)
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, tenant_id, first)
        assert payout.executed_on == T0.date() and payout.bank_reference and payout.post_entry_id
        postings = ledger.entry_postings(uow, [payout.post_entry_id])[payout.post_entry_id]
        assert sorted(p.amount for p in postings) == [-30_000, 30_000]
    assert flows.send_payout(db, tenant_id, first) == "succeeded"  # sending again changes nothing
    assert bank.calls == 1

    # A refusal for good voids the hold: the money is available again.
    bank.queue("fail")
    failed = request(db, party, 10_000)
    assert status(db, party, failed) == ("failed", 1)
    assert balances(db, tenant_id, party.merchant_id) == (70_000, 70_000, -30_000)

    # Retryable: queried (the bank never paid), queued with backoff, sent again by the job.
    bank.queue("retry", "success")
    retried = request(db, party, 5_000)
    assert status(db, party, retried) == ("approved", 1)
    assert balances(db, tenant_id, party.merchant_id)[1] == 65_000  # still held
    flows.process(db)
    assert status(db, party, retried) == ("approved", 1)  # the backoff has not passed
    clock.advance(timedelta(minutes=2))
    flows.process(db)
    assert status(db, party, retried) == ("succeeded", 2)

    # Out of attempts (3 by default): failed, the hold voided.
    bank.queue("retry", "retry", "retry")
    exhausted = request(db, party, 5_000)
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        flows.process(db)
    assert status(db, party, exhausted) == ("failed", 3)

    # Unknown: the query after the lost reply finds it paid; never sent twice.
    bank.queue("unknown")
    calls = bank.calls
    unknown = request(db, party, 1_000)
    assert status(db, party, unknown) == ("succeeded", 1)
    assert bank.calls == calls + 1
    assert balances(db, tenant_id, party.merchant_id) == (64_000, 64_000, -36_000)


def test_delayed_and_returned(db: Database, party: Party, bank: SandboxBank, clock: FrozenClock) -> None:
    tenant_id = party.tenant.id
    bank.queue("delay", "return")
    delayed = request(db, party, 20_000)
    assert status(db, party, delayed) == ("processing", 1)
    clock.advance(timedelta(minutes=5))
    flows.process(db)
    assert status(db, party, delayed) == ("processing", 1)
    clock.advance(timedelta(hours=3))
    flows.process(db)
    assert status(db, party, delayed) == ("succeeded", 1)

    returned = request(db, party, 30_000)
    assert status(db, party, returned) == ("succeeded", 1)
    assert balances(db, tenant_id, party.merchant_id) == (50_000, 50_000, -50_000)
    clock.advance(timedelta(days=1))
    flows.process(db)
    assert status(db, party, returned)[0] == "succeeded"
    clock.advance(timedelta(days=3))
    assert flows.process(db) == 1
    assert flows.process(db) == 0  # seen again: reversed once
    assert status(db, party, returned)[0] == "returned"
    # The reversal: Dr custody bank, Cr available.
    assert balances(db, tenant_id, party.merchant_id) == (80_000, 80_000, -20_000)
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, tenant_id, returned)
        assert payout.returned_on is not None and payout.return_entry_id
        records = payouts.list_payouts_for_recon(uow, tenant_id, executed_on=(T0 + timedelta(hours=3)).date())
    assert {(r.id, r.status, r.amount) for r in records} == {(delayed, "succeeded", 20_000),
                                                            (returned, "returned", 30_000)}
    assert all(r.bank_reference and r.party_kind is PartyKind.MERCHANT for r in records)


def test_insufficient_balance_writes_nothing(db: Database, party: Party, bank: SandboxBank) -> None:
    tenant_id = party.tenant.id
    with pytest.raises(InvalidRequest) as caught:
        request(db, party, 100_001)
    assert (caught.value.code, caught.value.param) == ("insufficient_available_balance", "amount")
    with db.uow(read_only=True) as uow:
        assert payouts.list_payouts(uow, tenant_id) == []
        assert ledger.list_holds(uow, tenant_id) == []
    assert bank.calls == 0
    request(db, party, 100_000)  # all of it is fine
    assert balances(db, tenant_id, party.merchant_id) == (0, 0, -100_000)
