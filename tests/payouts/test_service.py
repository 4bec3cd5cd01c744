"""Approvals, cancellation, automatic payouts and the jobs."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.payouts import flows
from finloop.payouts import service as payouts
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.settlement.accounts import PartyKind
from finloop.splits import service as splits
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal, Role
from finloop.worker.registry import AfterClose, Every, load_jobs
from tests.onboarding.helpers import verify_party
from tests.payouts.conftest import Party, balances, fund

FINANCE = "usr_finance_1"


def decide(db: Database, tenant_id: str, approval_id: str, *, approve: bool) -> None:
    principal = Principal(tenant_id, f"user:{FINANCE}", frozenset({Role.FINANCE}), user_id=FINANCE)
    with db.uow() as uow:
        tenancy.decide_approval(uow, principal, approval_id, approve=approve)
        uow.commit()


def test_approval_above_the_amount_then_approve_reject_and_cancel(db: Database, party: Party, bank: SandboxBank,
                                                                  clock: FrozenClock) -> None:
    tenant_id = party.tenant.id
    with db.uow() as uow:
        payouts.set_settings(uow, tenant_id, approval_amount=10_000, actor="test")
        uow.commit()
    kwargs = {"party_kind": PartyKind.MERCHANT, "party_id": party.merchant_id, "currency": "CNY"}
    small = flows.request_payout(db, tenant_id, amount=10_000, **kwargs)  # type: ignore[arg-type]
    big = flows.request_payout(db, tenant_id, amount=40_000, **kwargs)  # type: ignore[arg-type]
    rejected = flows.request_payout(db, tenant_id, amount=20_000, **kwargs)  # type: ignore[arg-type]
    with db.uow(read_only=True) as uow:
        assert payouts.get_payout(uow, tenant_id, small).status == "succeeded"
        parked = payouts.get_payout(uow, tenant_id, big)
        assert parked.status == "pending_approval" and parked.approval_id
        big_approval = parked.approval_id
        other_approval = payouts.get_payout(uow, tenant_id, rejected).approval_id
        assert other_approval
    assert bank.calls == 1
    assert balances(db, tenant_id, party.merchant_id)[1] == 30_000  # parked payouts are held too

    flows.process(db)  # undecided: nothing moves
    decide(db, tenant_id, big_approval, approve=True)
    decide(db, tenant_id, other_approval, approve=False)
    clock.advance(timedelta(minutes=6))
    flows.process(db)
    with db.uow(read_only=True) as uow:
        assert payouts.get_payout(uow, tenant_id, big).status == "succeeded"
        canceled = payouts.get_payout(uow, tenant_id, rejected)
        assert (canceled.status, canceled.error_code) == ("canceled", "approval_rejected")
        assert ledger.get_hold(uow, tenant_id, canceled.hold_id).status == "voided"
    assert balances(db, tenant_id, party.merchant_id) == (50_000, 50_000, -50_000)

    # A party's own approval amount overrides the tenant's; cancel before sending voids the hold.
    with db.uow() as uow:
        payouts.set_schedule(uow, tenant_id, party_kind="merchant", party_id=party.merchant_id, currency="CNY",
                             interval="manual", approval_amount=50_000)
        payout = payouts.request_payout(uow, tenant_id, amount=45_000, **kwargs)  # type: ignore[arg-type]
        assert payout.status == "approved"
        payouts.cancel_payout(uow, tenant_id, payout.id)
        assert payout.status == "canceled"
        with pytest.raises(Conflict):
            payouts.cancel_payout(uow, tenant_id, payout.id)
        with pytest.raises(Conflict) as caught:
            payouts.cancel_payout(uow, tenant_id, small)  # already paid
        assert caught.value.code == "payout_state_conflict"
        uow.commit()
    assert balances(db, tenant_id, party.merchant_id) == (50_000, 50_000, -50_000)


def test_automatic_payouts_by_threshold_and_schedule(db: Database, party: Party, bank: SandboxBank,
                                                     clock: FrozenClock) -> None:
    tenant_id = party.tenant.id
    with db.uow() as uow:
        promoter = splits.create_promoter(uow, tenant_id, reference="P1", name="Zhang San").id
        uow.commit()
    verify_party(db, tenant_id, "promoter", promoter)
    with db.uow() as uow:
        payouts.create_payout_account(uow, tenant_id, party_kind="promoter", party_id=promoter, currency="CNY",
                                      holder_name="Zhang San", account_number="123456789012", bank_code="ABOCCNBJ")
        # Merchant: whenever available reaches 150.00, keep 50.00. Promoter: weekly on Wednesday.
        payouts.set_schedule(uow, tenant_id, party_kind="merchant", party_id=party.merchant_id, currency="CNY",
                             interval="threshold", threshold_amount=150_000, minimum_balance=5_000)
        payouts.set_schedule(uow, tenant_id, party_kind="promoter", party_id=promoter, currency="CNY",
                             interval="weekly", weekday=2)
        with pytest.raises(InvalidRequest) as caught:
            payouts.set_schedule(uow, tenant_id, party_kind="promoter", party_id=promoter, currency="CNY",
                                 interval="weekly")
        assert caught.value.param == "weekday"
        uow.commit()
    fund(db, tenant_id, promoter, 7_000, kind=PartyKind.PROMOTER)

    monday = date(2026, 3, 2)
    assert flows.run_automatic(db, tenant_id, monday) == []  # 100.00 < threshold; promoter: not Wednesday
    fund(db, tenant_id, party.merchant_id, 60_000)
    created = flows.run_automatic(db, tenant_id, date(2026, 3, 3))
    assert len(created) == 1
    assert flows.run_automatic(db, tenant_id, date(2026, 3, 3)) == []  # a re-run creates nothing twice
    wednesday = flows.run_automatic(db, tenant_id, date(2026, 3, 4))
    assert len(wednesday) == 1
    assert flows.run_automatic(db, tenant_id, date(2026, 3, 5)) == []
    flows.process(db)
    with db.uow(read_only=True) as uow:
        merchant_payout = payouts.get_payout(uow, tenant_id, created[0])
        promoter_payout = payouts.get_payout(uow, tenant_id, wednesday[0])
        assert (merchant_payout.amount, merchant_payout.status, merchant_payout.is_automatic) == (
            155_000, "succeeded", True)
        assert (promoter_payout.amount, promoter_payout.party_kind, promoter_payout.status) == (
            7_000, "promoter", "succeeded")
    assert balances(db, tenant_id, party.merchant_id) == (5_000, 5_000, -162_000)
    assert balances(db, tenant_id, promoter, kind=PartyKind.PROMOTER)[:2] == (0, 0)


def test_jobs_are_registered() -> None:
    registry = load_jobs()
    assert isinstance(registry.get("payouts.automatic").schedule, AfterClose)
    assert registry.get("payouts.process").schedule == Every(30.0)


def test_a_simulated_week_through_the_worker(db: Database, party: Party, bank: SandboxBank,
                                             clock: FrozenClock) -> None:
    from finloop.worker.runner import Runner

    tenant_id = party.tenant.id
    bank.queue("success", "delay", "return")
    with db.uow() as uow:
        payouts.set_schedule(uow, tenant_id, party_kind="merchant", party_id=party.merchant_id, currency="CNY",
                             interval="daily", minimum_balance=10_000)
        uow.commit()
    runner = Runner(db, only=["payouts.automatic", "payouts.process"])
    for day in range(7):
        fund(db, tenant_id, party.merchant_id, 5_000 * (day + 1), key=f"sales-{day}")
        clock.advance(timedelta(hours=16))  # past the close: the day's automatic payout
        runner.run_pass()
        clock.advance(timedelta(hours=8))   # the next morning: sends, queries, returns
        runner.run_pass()
    with db.uow(read_only=True) as uow:
        made = payouts.list_payouts(uow, tenant_id, limit=50)
        summary = sorted((p.amount, p.status) for p in made)
    # Each business day's close pays out all but 100.00 (Mon 95.00, Tue 10.00 delayed, Wed 15.00 returned three
    # days after it was paid, Thu 20.00, Fri 25.00); Saturday's and Sunday's money waits for Monday.
    assert summary == [(10_000, "succeeded"), (15_000, "returned"), (20_000, "succeeded"), (25_000, "succeeded"),
                       (95_000, "succeeded")], summary
    funded = 100_000 + sum(5_000 * (day + 1) for day in range(7))
    assert balances(db, tenant_id, party.merchant_id) == (funded - 150_000, funded - 150_000, -150_000)
    statement = [(m.value_date.isoformat(), m.direction, m.amount) for m in bank.movements]
    assert statement == [("2026-03-03", "debit", 95_000), ("2026-03-04", "debit", 10_000),
                         ("2026-03-05", "debit", 15_000), ("2026-03-06", "debit", 20_000),
                         ("2026-03-07", "debit", 25_000), ("2026-03-08", "credit", 15_000)]
