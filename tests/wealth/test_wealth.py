"""Orders, income and sweeps against the ledger, on both databases."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, InvalidRequest, InvariantViolation
from finloop.db.uow import Database
from finloop.ledger.models import Entry
from finloop.wealth import service as wealth
from finloop.wealth.domain import HolderKind
from finloop.wealth.models import FundAccrual, FundOrder
from finloop.worker.runner import Runner
from tests.wealth.conftest import Investors, balance, fund_merchant

CUSTODY = "assets:bank:custody"
FUND = "assets:fund:MMF1"
PAYABLE = "liabilities:fund:MMF1:redemptions_payable"
C = HolderKind.CUSTOMER
M = HolderKind.MERCHANT


def wallet(i: Investors) -> str:
    return f"liabilities:customer:{i.customer_id}:wallet"


def holding(i: Investors, kind: HolderKind = C) -> str:
    holder = i.customer_id if kind is C else i.merchant_id
    return f"liabilities:{kind.value}:{holder}:fund:MMF1"


def order(db: Database, i: Investors, kind: str, amount: int, holder: HolderKind = C) -> FundOrder:
    with db.uow() as uow:
        placed = wealth.place_order(uow, i.tenant.id, fund_id=i.fund_id, kind=kind, holder_kind=holder,
                                    holder_id=i.customer_id if holder is C else i.merchant_id, amount=amount)
        uow.commit()
    return placed


def entries(db: Database, tenant_id: str) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Entry).where(Entry.tenant_id == tenant_id)) or 0)


def test_subscribe_and_redeem_post_both_legs(db: Database, clock: FrozenClock, investors: Investors) -> None:
    i, t = investors, investors.tenant.id
    sub = order(db, i, "subscribe", 200_000)
    assert (sub.status, sub.trade_date, sub.settle_on) == ("completed", date(2026, 3, 2), date(2026, 3, 2))
    assert balance(db, t, wallet(i)) == 800_000 and balance(db, t, holding(i)) == 200_000
    assert balance(db, t, FUND) == 200_000 and balance(db, t, CUSTODY) == -200_000

    # Above the wallet: refused before anything is posted, and the refused transaction writes nothing.
    before = entries(db, t)
    with db.uow() as uow, pytest.raises(InvariantViolation) as refused:
        wealth.place_order(uow, t, fund_id=i.fund_id, kind="subscribe", holder_kind=C, holder_id=i.customer_id,
                           amount=800_001)
    assert (refused.value.code, refused.value.param) == ("insufficient_funds", "amount")
    assert entries(db, t) == before
    with db.uow() as uow, pytest.raises(InvalidRequest) as small:
        wealth.place_order(uow, t, fund_id=i.fund_id, kind="subscribe", holder_kind=C, holder_id=i.customer_id,
                           amount=99)
    assert small.value.code == "below_minimum_subscription"

    # Fast redemption: at once, up to 50,000 a holder and business date across all fast redemptions.
    fast = order(db, i, "redeem_fast", 30_000)
    assert fast.status == "completed"
    assert balance(db, t, wallet(i)) == 830_000 and balance(db, t, holding(i)) == 170_000
    assert balance(db, t, FUND) == 170_000 and balance(db, t, CUSTODY) == -170_000
    with db.uow() as uow, pytest.raises(InvariantViolation) as limited:
        wealth.place_order(uow, t, fund_id=i.fund_id, kind="redeem_fast", holder_kind=C, holder_id=i.customer_id,
                           amount=20_001)
    assert limited.value.code == "fast_redemption_limit_exceeded"
    assert limited.value.details == {"limit": 50_000, "used": 30_000, "remaining": 20_000}
    order(db, i, "redeem_fast", 20_000)
    clock.set(datetime(2026, 3, 3, 9, 0, tzinfo=clock.now().tzinfo))  # a new business date, a new limit
    order(db, i, "redeem_fast", 50_000)
    assert balance(db, t, holding(i)) == 100_000

    # Normal redemption: the units leave at once, the money arrives the next business day by the job.
    with db.uow() as uow, pytest.raises(InvariantViolation) as short:
        wealth.place_order(uow, t, fund_id=i.fund_id, kind="redeem", holder_kind=C, holder_id=i.customer_id,
                           amount=100_001)
    assert short.value.code == "insufficient_holding"
    clock.set(datetime(2026, 3, 6, 15, 0, tzinfo=clock.now().tzinfo))  # a Friday
    slow = order(db, i, "redeem", 60_000)
    assert (slow.status, slow.trade_date, slow.settle_on) == ("pending", date(2026, 3, 6), date(2026, 3, 9))
    assert balance(db, t, holding(i)) == 40_000 and balance(db, t, PAYABLE) == 60_000
    assert balance(db, t, wallet(i)) == 900_000
    with db.uow() as uow, pytest.raises(InvalidRequest) as early:
        wealth.settle_due_redemptions(uow, t, business_date=date(2026, 3, 6))
    assert early.value.code == "day_not_closed"
    clock.set(datetime(2026, 3, 7, 0, 1, tzinfo=clock.now().tzinfo))
    assert Runner(db, only=["wealth.settle_redemptions"]).run_pass().failed == []
    with db.uow(read_only=True) as uow:
        paid = wealth.get_order(uow, t, slow.id)
        assert paid.status == "completed" and paid.settle_entry_id is not None
    assert balance(db, t, wallet(i)) == 960_000 and balance(db, t, PAYABLE) == 0
    assert balance(db, t, FUND) == 40_000 and balance(db, t, CUSTODY) == -40_000

    # A merchant invests its available balance the same way.
    fund_merchant(db, t, i.merchant_id, 5_000, "fund-shop")
    order(db, i, "subscribe", 5_000, M)
    assert balance(db, t, f"liabilities:merchant:{i.merchant_id}:available") == 0
    assert balance(db, t, holding(i, M)) == 5_000


def publish(db: Database, i: Investors, on: date, per_10k: str) -> None:
    with db.uow() as uow:
        wealth.publish_price(uow, i.tenant.id, i.fund_id, price_on=on, income_per_10k=Decimal(per_10k), actor="test")
        uow.commit()


def test_daily_income_weekends_idempotence_and_statement(db: Database, clock: FrozenClock,
                                                         investors: Investors) -> None:
    i, t = investors, investors.tenant.id
    order(db, i, "subscribe", 1_000_000)  # Monday 2 March: earns from Tuesday
    clock.set(datetime(2026, 3, 10, 0, 30, tzinfo=clock.now().tzinfo))  # Tuesday 10 March, before its close
    for day in (2, 3, 4, 5, 6, 9):
        publish(db, i, date(2026, 3, day), "0.5000")
    publish(db, i, date(2026, 3, 7), "0.7000")  # Saturday published; Sunday 8 takes Monday's rate

    assert Runner(db, only=["wealth.accrue"]).run_pass().failed == []
    with db.uow(read_only=True) as uow:
        lines = list(uow.session.scalars(select(FundAccrual).where(FundAccrual.tenant_id == t)
                                         .order_by(FundAccrual.income_on)))
        uow.session.expunge_all()
    # Monday 2 March: the units subscribed that day earn nothing yet.
    assert [line.income_on.day for line in lines] == [3, 4, 5, 6, 9]
    assert [line.days for line in lines] == [1, 1, 1, 1, 3]
    assert lines[0].basis_amount == 1_000_000 and lines[0].amount == 50  # 1,000,000 * 0.5 / 10,000
    # Income compounds: Wednesday's basis holds Tuesday's income.
    assert lines[1].basis_amount == 1_000_050 and lines[1].amount == 50 and lines[1].carry == Decimal("0.0025")
    weekend = lines[4]
    assert weekend.income_per_10k == Decimal("1.7")  # Sat 0.7 + Sun 0.5 (Monday's) + Mon 0.5
    exact = Fraction(weekend.basis_amount) * Fraction(17, 10) / 10_000 + Fraction(lines[3].carry)
    assert weekend.amount == int(exact) and Fraction(weekend.carry) == exact - int(exact)
    assert balance(db, t, holding(i)) == 1_000_000 + sum(line.amount for line in lines)

    # Sunday's income was paid at Monday's rate: a late Sunday price would change history, so it is refused.
    with db.uow() as uow, pytest.raises(Conflict) as late:
        wealth.publish_price(uow, t, i.fund_id, price_on=date(2026, 3, 8), income_per_10k=Decimal("0.9"), actor="t")
    assert late.value.code == "income_already_accrued"

    # A second run of a date posts nothing; the holder's entries of a fund and day were one batch.
    before = entries(db, t)
    with db.uow() as uow:
        again = wealth.accrue_fund(uow, t, i.fund_id, business_date=date(2026, 3, 9))
        uow.commit()
    assert again.replayed and again.amount == weekend.amount and entries(db, t) == before

    # A day without a published yield stops the run for holders' sake.
    clock.set(datetime(2026, 3, 11, 0, 30, tzinfo=clock.now().tzinfo))
    with db.uow() as uow, pytest.raises(InvariantViolation) as missing:
        wealth.accrue_fund(uow, t, i.fund_id, business_date=date(2026, 3, 10))
    assert missing.value.code == "price_missing"

    # The statement agrees with the ledger.
    order(db, i, "redeem_fast", 10_000)
    with db.uow(read_only=True) as uow:
        s = wealth.statement(uow, t, holder_kind="customer", holder_id=i.customer_id, from_on=date(2026, 3, 1),
                             to_on=date(2026, 3, 31))
        uow.session.expunge_all()
    [held] = s.holdings
    assert held.amount == balance(db, t, holding(i))
    [totals] = s.totals
    assert totals.subscribed - totals.redeemed + totals.income == held.amount
    assert s.total_income == {"CNY": sum(line.amount for line in lines)} and len(s.income) == 5
    assert [o.kind for o in s.redemptions] == ["redeem_fast"]
    with db.uow(read_only=True) as uow, pytest.raises(InvalidRequest):
        wealth.statement(uow, t, holder_kind="customer", holder_id=i.customer_id, from_on=date(2026, 3, 2),
                         to_on=date(2026, 3, 1))


def test_sweep_moves_idle_balance_once_per_day(db: Database, clock: FrozenClock, investors: Investors) -> None:
    i, t = investors, investors.tenant.id
    fund_merchant(db, t, i.merchant_id, 50_000, "fund-shop")
    with db.uow() as uow:
        wealth.set_sweep(uow, t, holder_kind="merchant", holder_id=i.merchant_id, fund_id=i.fund_id,
                         keep_amount=10_000, min_sweep_amount=1_000, actor="test")
        wealth.set_sweep(uow, t, holder_kind="customer", holder_id=i.customer_id, fund_id=i.fund_id,
                         keep_amount=999_500, min_sweep_amount=1_000, actor="test")  # 500 above: too little
        uow.commit()
    clock.set(datetime(2026, 3, 3, 0, 5, tzinfo=clock.now().tzinfo))
    assert Runner(db, only=["wealth.sweep"]).run_pass().failed == []
    assert balance(db, t, f"liabilities:merchant:{i.merchant_id}:available") == 10_000
    assert balance(db, t, holding(i, M)) == 40_000
    assert balance(db, t, wallet(i)) == 1_000_000
    with db.uow() as uow:
        assert wealth.run_sweeps(uow, t, business_date=date(2026, 3, 2)) == []  # already swept that date
        [swept] = wealth.list_orders(uow, t, holder_kind="merchant")
        uow.session.expunge_all()
    assert (swept.source, swept.trade_date, swept.amount) == ("sweep", date(2026, 3, 3), 40_000)
