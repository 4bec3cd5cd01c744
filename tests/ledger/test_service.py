from __future__ import annotations

from datetime import date, timedelta

import pytest

from finloop.core.errors import Conflict, InvalidRequest, InvariantViolation, NotFound
from finloop.ledger import reports, service
from finloop.ledger.domain import AccountStatus, AccountType, BalanceRule, PostingSpec, TransferSpec
from tests.ledger.helpers import balance, open_account, transfer


@pytest.fixture
def chart(db, tenant):
    return {
        "bank": open_account(db, tenant.id, "assets:bank:main", AccountType.ASSET),
        "merchant": open_account(db, tenant.id, "liabilities:merchant:M1:available", AccountType.LIABILITY,
                                 rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS),
        "fees": open_account(db, tenant.id, "income:fees", AccountType.INCOME),
        "equity": open_account(db, tenant.id, "equity:capital", AccountType.EQUITY),
    }


def test_transfer_moves_balances_on_normal_sides(db, tenant, chart):
    transfer(db, tenant.id, "t1", chart["bank"], chart["merchant"], 10_000)
    assert balance(db, tenant.id, chart["bank"]) == 10_000
    assert balance(db, tenant.id, chart["merchant"]) == 10_000


def test_multi_leg_entry_balances_per_currency(db, tenant, chart):
    with db.uow() as uow:
        spec = TransferSpec("split", (PostingSpec(chart["bank"], 10_000, "CNY"),
                                      PostingSpec(chart["merchant"], -9_000, "CNY"),
                                      PostingSpec(chart["fees"], -1_000, "CNY")))
        service.post_transfer(uow, tenant.id, spec)
        uow.commit()
    assert balance(db, tenant.id, chart["fees"]) == 1_000
    assert balance(db, tenant.id, chart["merchant"]) == 9_000


def test_unbalanced_entry_is_refused_and_writes_nothing(db, tenant, chart):
    with db.uow() as uow, pytest.raises(InvalidRequest) as caught:
        service.post_transfer(uow, tenant.id, TransferSpec("bad", (PostingSpec(chart["bank"], 100, "CNY"),
                                                                   PostingSpec(chart["fees"], -99, "CNY"))))
    assert caught.value.code == "unbalanced_entry"
    assert balance(db, tenant.id, chart["bank"]) == 0


def test_same_key_same_content_posts_once(db, tenant, chart):
    first = transfer(db, tenant.id, "k", chart["bank"], chart["merchant"], 500)
    again = transfer(db, tenant.id, "k", chart["bank"], chart["merchant"], 500)
    assert first == again
    assert balance(db, tenant.id, chart["bank"]) == 500


def test_same_key_different_content_conflicts(db, tenant, chart):
    transfer(db, tenant.id, "k", chart["bank"], chart["merchant"], 500)
    with pytest.raises(Conflict) as caught:
        transfer(db, tenant.id, "k", chart["bank"], chart["merchant"], 501)
    assert caught.value.code == "transfer_key_reused"


def test_balance_rule_refuses_overdraft(db, tenant, chart):
    transfer(db, tenant.id, "in", chart["bank"], chart["merchant"], 1_000)
    with pytest.raises(InvariantViolation) as caught:
        transfer(db, tenant.id, "out", chart["merchant"], chart["bank"], 1_001)
    assert caught.value.code == "insufficient_funds"
    assert balance(db, tenant.id, chart["merchant"]) == 1_000


def test_overdraft_limit_allows_up_to_limit(db, tenant):
    wallet = open_account(db, tenant.id, "liabilities:customer:C1:wallet", AccountType.LIABILITY,
                          rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS, overdraft=300)
    bank = open_account(db, tenant.id, "assets:bank:main", AccountType.ASSET)
    transfer(db, tenant.id, "a", wallet, bank, 300)
    assert balance(db, tenant.id, wallet) == -300
    with pytest.raises(InvariantViolation):
        transfer(db, tenant.id, "b", wallet, bank, 1)


def test_frozen_account_refuses_postings(db, tenant, chart):
    with db.uow() as uow:
        service.set_account_status(uow, tenant.id, chart["merchant"], AccountStatus.FROZEN, actor="test")
        uow.commit()
    with pytest.raises(InvariantViolation) as caught:
        transfer(db, tenant.id, "x", chart["bank"], chart["merchant"], 1)
    assert caught.value.code == "account_frozen"


def test_currency_mismatch_is_refused(db, tenant, chart):
    usd = open_account(db, tenant.id, "assets:bank:usd", AccountType.ASSET, currency="USD")
    with pytest.raises(InvalidRequest) as caught:
        transfer(db, tenant.id, "x", usd, chart["merchant"], 1, currency="USD")
    assert caught.value.code == "currency_mismatch"


def test_other_tenants_account_is_not_found(db, tenant, other_tenant, chart):
    theirs = open_account(db, other_tenant.id, "assets:bank:main", AccountType.ASSET)
    with pytest.raises(NotFound):
        transfer(db, tenant.id, "x", theirs, chart["merchant"], 1)


def test_batch_is_all_or_nothing(db, tenant, chart):
    specs = [TransferSpec.simple("b1", chart["bank"], chart["merchant"], 100, "CNY"),
             TransferSpec.simple("b2", chart["merchant"], chart["bank"], 101, "CNY")]
    with db.uow() as uow, pytest.raises(InvariantViolation) as caught:
        service.post_transfers(uow, tenant.id, specs)
    assert caught.value.param == "transfers[1].postings[0].amount"
    assert balance(db, tenant.id, chart["bank"]) == 0
    with db.uow() as uow:
        fixed = [specs[0], TransferSpec.simple("b2", chart["merchant"], chart["bank"], 100, "CNY")]
        posted = service.post_transfers(uow, tenant.id, fixed, batch_id="bat_1")
        uow.commit()
    assert [p.replayed for p in posted] == [False, False]
    assert balance(db, tenant.id, chart["merchant"]) == 0


def test_hold_reserves_available_then_posts_partially(db, tenant, chart):
    transfer(db, tenant.id, "fund", chart["bank"], chart["merchant"], 1_000)
    with db.uow() as uow:
        hold, _ = service.create_hold(uow, tenant.id, key="h", debit_account_id=chart["merchant"],
                                      credit_account_id=chart["bank"], amount=600, currency_code="CNY")
        uow.commit()
    with db.uow(read_only=True) as uow:
        b = service.balances(service.get_account(uow, tenant.id, chart["merchant"]))
    assert (b.posted, b.available, b.pending_debits) == (1_000, 400, 600)
    with pytest.raises(InvariantViolation):
        transfer(db, tenant.id, "too-much", chart["merchant"], chart["bank"], 401)
    with db.uow() as uow:
        posted_hold, _ = service.post_hold(uow, tenant.id, hold.id, amount=250)
        uow.commit()
    assert posted_hold.status == "posted"
    with db.uow(read_only=True) as uow:
        b = service.balances(service.get_account(uow, tenant.id, chart["merchant"]))
    assert (b.posted, b.available, b.pending_debits) == (750, 750, 0)
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        service.void_hold(uow, tenant.id, hold.id)
    assert caught.value.code == "hold_already_posted"


def test_expired_hold_cannot_be_posted_and_releases_funds(db, tenant, chart, clock):
    transfer(db, tenant.id, "fund", chart["bank"], chart["merchant"], 1_000)
    with db.uow() as uow:
        hold, _ = service.create_hold(uow, tenant.id, key="h", debit_account_id=chart["merchant"],
                                      credit_account_id=chart["bank"], amount=600, currency_code="CNY",
                                      timeout_seconds=60)
        uow.commit()
    clock.advance(timedelta(seconds=61))
    with db.uow() as uow:
        with pytest.raises(service.HoldExpired):
            service.post_hold(uow, tenant.id, hold.id)
        uow.commit()  # the entry point keeps the release, as the API does
    with db.uow(read_only=True) as uow:
        assert service.get_hold(uow, tenant.id, hold.id).status == "expired"
        assert service.balances(service.get_account(uow, tenant.id, chart["merchant"])).available == 1_000


def test_expiry_sweep_releases_holds(db, tenant, chart, clock):
    transfer(db, tenant.id, "fund", chart["bank"], chart["merchant"], 1_000)
    with db.uow() as uow:
        for i in range(3):
            service.create_hold(uow, tenant.id, key=f"h{i}", debit_account_id=chart["merchant"],
                                credit_account_id=chart["bank"], amount=100, currency_code="CNY",
                                timeout_seconds=10 * (i + 1))
        uow.commit()
    clock.advance(timedelta(seconds=25))
    with db.uow() as uow:
        assert service.expire_holds(uow) == 2
        uow.commit()
    with db.uow(read_only=True) as uow:
        assert service.balances(service.get_account(uow, tenant.id, chart["merchant"])).available == 900


def test_reversal_mirrors_entry_once(db, tenant, chart):
    entry_id = transfer(db, tenant.id, "t", chart["bank"], chart["merchant"], 700)
    with db.uow() as uow:
        reversal = service.reverse_entry(uow, tenant.id, entry_id)
        uow.commit()
    assert balance(db, tenant.id, chart["bank"]) == 0
    with db.uow() as uow:
        again = service.reverse_entry(uow, tenant.id, entry_id)
    assert again.id == reversal.id and again.replayed
    with db.uow() as uow, pytest.raises(InvariantViolation):
        service.reverse_entry(uow, tenant.id, reversal.id)


def test_closed_period_refuses_backdated_postings(db, tenant, chart, clock):
    with db.uow() as uow:
        service.close_period(uow, tenant.id, start_on=date(2026, 2, 1), end_on=date(2026, 2, 28), closed_by="test")
        uow.commit()
    with db.uow() as uow, pytest.raises(InvariantViolation) as caught:
        service.post_transfer(uow, tenant.id, TransferSpec.simple(
            "late", chart["bank"], chart["merchant"], 5, "CNY", effective_at=clock.now() - timedelta(days=5)))
    assert caught.value.code == "period_closed"
    with db.uow() as uow:
        service.post_transfer(uow, tenant.id, TransferSpec.simple(
            "open", chart["bank"], chart["merchant"], 5, "CNY", effective_at=clock.now() - timedelta(hours=1)))
        uow.commit()


def test_balance_as_of_and_statement(db, tenant, chart, clock):
    transfer(db, tenant.id, "a", chart["bank"], chart["merchant"], 100)
    middle = clock.now()
    clock.advance(timedelta(hours=1))
    transfer(db, tenant.id, "b", chart["bank"], chart["merchant"], 50)
    clock.advance(timedelta(hours=1))
    transfer(db, tenant.id, "c", chart["merchant"], chart["bank"], 30)
    with db.uow(read_only=True) as uow:
        merchant = service.get_account(uow, tenant.id, chart["merchant"])
        assert service.balance_as_of(uow, merchant, middle).posted == 100
        lines = service.statement(uow, merchant, limit=2)
        assert [(line.amount, line.balance) for line in lines] == [(100, 100), (50, 150)]
        rest = service.statement(uow, merchant, after=(lines[-1].effective_at, lines[-1].posting_id))
        assert [(line.amount, line.balance) for line in rest] == [(-30, 120)]


def test_reports_balance(db, tenant, chart, clock):
    start = clock.now()
    transfer(db, tenant.id, "cap", chart["bank"], chart["equity"], 10_000)
    transfer(db, tenant.id, "fee", chart["bank"], chart["fees"], 250)
    clock.advance(timedelta(minutes=1))
    with db.uow(read_only=True) as uow:
        [tb] = reports.trial_balance(uow, tenant.id)
        assert tb.balanced and tb.total_debits == 10_250
        [sheet] = reports.balance_sheet(uow, tenant.id, as_of=clock.now())
        assert sheet.balanced and sheet.retained_earnings == 250
        [income] = reports.income_statement(uow, tenant.id, start=start - timedelta(seconds=1), end=clock.now())
        assert income.net_income == 250
