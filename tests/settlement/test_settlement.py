"""Settling cohorts: the postings, the cycle on the calendar, reserves and freezes released by the jobs,
negative cohorts, idempotent re-runs, FX conversion with gains and losses, and the statement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from finloop.core.errors import InvalidRequest
from finloop.ledger import service as ledger
from finloop.settlement import fx, service, statement
from finloop.settlement.accounts import PartyKind
from finloop.settlement.models import SettlementBatch, SettlementReserve
from finloop.tenancy import calendar as tenant_calendar
from finloop.tenancy.models import Holiday
from finloop.worker.registry import Registry, load_jobs
from finloop.worker.runner import Runner
from tests.settlement.conftest import Shop, account_balance, at, make_shop

MON, TUE, WED, THU, FRI = (date(2026, 3, 2) + timedelta(days=i) for i in range(5))


def after_close(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(minutes=30)


def profile(shop: Shop, **terms: object) -> None:
    with shop.db.uow() as uow:
        service.set_profile(uow, shop.tenant_id, party_kind=PartyKind.MERCHANT, party_id=shop.merchant_id,
                            **terms)  # type: ignore[arg-type]
        uow.commit()


def settle(shop: Shop, day: date) -> service.RunResult:
    with shop.db.uow() as uow:
        result = service.run_settlement(uow, shop.tenant_id, business_date=day)
        service.release_due(uow, shop.tenant_id, business_date=day)
        uow.session.flush()
        for batch in result.batches:
            uow.session.expunge(batch)  # kept readable after the commit
        uow.commit()
    return result


def batches(shop: Shop) -> list[SettlementBatch]:
    with shop.db.uow(read_only=True) as uow:
        rows = list(uow.session.scalars(select(SettlementBatch).where(SettlementBatch.tenant_id == shop.tenant_id)
                                        .order_by(SettlementBatch.cohort_date)))
        uow.session.expunge_all()
        return rows


def entry_legs(shop: Shop, entry_id: str) -> dict[str, int]:
    with shop.db.uow(read_only=True) as uow:
        postings = ledger.entry_postings(uow, [entry_id])[entry_id]
        return {f"{ledger.get_account(uow, shop.tenant_id, p.account_id).code}/{p.currency}": p.amount
                for p in postings}


def test_t_plus_1_with_reserve_settles_by_the_job_and_releases_on_time(db, clock, shop: Shop) -> None:
    with db.uow() as uow:
        uow.session.add(Holiday(tenant_id=shop.tenant_id, day=WED, name="closed"))
        uow.commit()
    tenant_calendar.forget(shop.tenant_id)
    profile(shop, reserve_rate=Decimal("0.1"), reserve_days=7)
    shop.sell(MON, 10_005)
    shop.sell(TUE, 2_000)
    registry = Registry()
    for name in ("settlement.run", "settlement.release"):
        registry.register(load_jobs().get(name))
    runner = Runner(db, registry)

    clock.set(after_close(TUE))
    assert not runner.run_pass().failed
    [monday] = batches(shop)
    assert (monday.cohort_date, monday.settle_date, monday.settled_on) == (MON, TUE, TUE)
    assert (monday.amount, monday.reserve_amount, monday.available_amount) == (10_005, 1_000, 9_005)  # DOWN
    assert entry_legs(shop, monday.entry_id or "") == {
        f"liabilities:merchant:{shop.merchant_id}:pending/CNY": 10_005,
        f"liabilities:merchant:{shop.merchant_id}:reserve/CNY": -1_000,
        f"liabilities:merchant:{shop.merchant_id}:available/CNY": -9_005}
    assert (shop.balance("pending"), shop.balance("reserve"), shop.balance("available")) == (2_000, 1_000, 9_005)

    # Wednesday is a holiday: Tuesday's cohort settles on Thursday.
    clock.set(after_close(WED) + timedelta(hours=12))
    assert not runner.run_pass().failed
    assert len(batches(shop)) == 1
    clock.set(after_close(THU))
    assert not runner.run_pass().failed
    tuesday = batches(shop)[1]
    assert (tuesday.settle_date, tuesday.reserve_amount, tuesday.available_amount) == (THU, 200, 1_800)

    # Re-running a settled day settles nothing twice.
    with db.uow() as uow:
        assert service.run_settlement(uow, shop.tenant_id, business_date=TUE).batches == []
        assert service.run_settlement(uow, shop.tenant_id, business_date=THU).batches == []
        uow.commit()
    assert len(batches(shop)) == 2

    # Monday's reserve was held on Tuesday for 7 days: released on Tuesday 03-10, not a day earlier.
    clock.set(after_close(date(2026, 3, 9)))
    assert not runner.run_pass().failed
    assert shop.balance("reserve") == 1_200
    clock.set(after_close(date(2026, 3, 10)))
    assert not runner.run_pass().failed
    assert (shop.balance("reserve"), shop.balance("available")) == (200, 9_005 + 1_800 + 1_000)
    with db.uow(read_only=True) as uow:
        reserves = list(uow.session.scalars(select(SettlementReserve).order_by(SettlementReserve.release_on)))
        uow.session.expunge_all()
    assert [(r.release_on, r.status, r.released_amount) for r in reserves] == [
        (date(2026, 3, 10), "released", 1_000), (date(2026, 3, 12), "held", 0)]


def test_negative_cohort_takes_from_available_then_receivable_and_is_collected(db, clock, shop: Shop) -> None:
    profile(shop, offset_days=2)
    shop.sell(MON, 1_000)
    shop.claw_back(TUE, 300)  # a refund beyond Tuesday's (zero) credits
    clock.set(after_close(TUE))
    result = settle(shop, TUE)
    [negative] = result.batches
    assert (negative.cohort_date, negative.amount, negative.available_amount) == (TUE, -300, -300)
    assert (shop.balance("pending"), shop.balance("available"), shop.balance("receivable")) == (1_000, 0, 300)

    clock.set(after_close(WED))
    [monday] = settle(shop, WED).batches
    assert (monday.cohort_date, monday.settle_date, monday.available_amount) == (MON, WED, 1_000)
    # What the merchant owed is collected first; the rest becomes available.
    assert (shop.balance("pending"), shop.balance("available"), shop.balance("receivable")) == (0, 700, 0)

    with db.uow(read_only=True) as uow:
        result_statement = statement.statement(uow, shop.tenant_id, party_kind="merchant",
                                               party_id=shop.merchant_id, from_on=MON, to_on=THU)
    [cny] = result_statement.currencies
    assert (cny.gross_sales_amount, cny.clawed_back_amount, cny.net_amount) == (1_000, 300, 700)
    assert (cny.pending, cny.available, cny.receivable, cny.paid_out_amount) == (0, 700, 0, 0)
    assert cny.upcoming_settlements == []
    assert sum(m.amount for m in result_statement.movements if m.bucket == "available") == 700


def test_freeze_and_reserve_and_the_statement_tells_when_money_arrives(db, clock, shop: Shop) -> None:
    profile(shop, offset_days=0, freeze_days=5, reserve_rate=Decimal("0.05"), reserve_days=30)
    shop.sell(MON, 10_000)
    clock.set(after_close(MON))
    [first] = settle(shop, MON).batches
    assert (first.reserve_amount, first.frozen_amount, first.available_amount) == (500, 9_500, 0)
    shop.sell(TUE, 2_000)

    with db.uow(read_only=True) as uow:
        result = statement.statement(uow, shop.tenant_id, party_kind="merchant", party_id=shop.merchant_id,
                                     from_on=MON, to_on=TUE)
    [cny] = result.currencies
    # The statement's balances are the ledger's.
    for bucket in ("pending", "frozen", "reserve", "available", "receivable"):
        assert getattr(cny, bucket) == shop.balance(bucket), bucket
    assert (cny.pending, cny.frozen, cny.reserve, cny.gross_sales_amount) == (2_000, 9_500, 500, 12_000)
    assert [(u.cohort_date, u.settle_date, u.amount) for u in cny.upcoming_settlements] == [(TUE, TUE, 2_000)]
    # Frozen for 5 days from the first sale (Saturday 03-07 -> Monday 03-09); reserve 30 days.
    assert sorted((r.kind, r.release_on, r.amount) for r in cny.upcoming_releases) == [
        ("freeze", date(2026, 3, 9), 9_500), ("reserve", date(2026, 4, 1), 500)]
    assert "upcoming_release" in statement.to_csv(result)

    clock.set(after_close(TUE))
    [second] = settle(shop, TUE).batches  # still inside the freeze period
    assert (second.reserve_amount, second.frozen_amount) == (100, 1_900)
    clock.set(after_close(date(2026, 3, 9)))
    settle(shop, date(2026, 3, 9))
    assert (shop.balance("frozen"), shop.balance("reserve"), shop.balance("available")) == (0, 600, 11_400)


def test_fx_settlement_records_the_rate_and_closing_books_gains_and_losses(db, clock, shop: Shop) -> None:
    profile(shop, offset_days=0, settlement_currency="CNY")
    shop.sell(MON, 10_001, "USD")
    shop.sell(MON, 5_000, "CNY")
    clock.set(after_close(MON))
    deferred = settle(shop, MON)  # no USD rate yet: CNY settles, USD waits
    assert [d["reason"] for d in deferred.deferred] == ["no_fx_rate"]
    assert [b.currency for b in deferred.batches] == ["CNY"]

    with db.uow() as uow:
        fx.add_rate(uow, shop.tenant_id, base="USD", quote="CNY", rate=Decimal("7.1"), source="old",
                    as_of=at(MON, 6))
        fx.add_rate(uow, shop.tenant_id, base="USD", quote="CNY", rate=Decimal("7.12345"), source="ecb",
                    as_of=at(MON, 8))
        fx.add_rate(uow, shop.tenant_id, base="USD", quote="CNY", rate=Decimal("9"), source="future",
                    as_of=at(WED, 8))  # after the settle time: not used
        uow.commit()
    [usd] = settle(shop, MON).batches
    assert (usd.currency, usd.amount, usd.settlement_currency, usd.settled_amount) == ("USD", 10_001, "CNY", 71_242)
    assert (usd.fx_rate, usd.fx_source, usd.fx_as_of) == (Decimal("7.12345"), "ecb", at(MON, 8))
    with db.uow(read_only=True) as uow:
        entry = ledger.get_entry(uow, shop.tenant_id, usd.entry_id or "")
        uow.session.expunge(entry)
    assert (entry.meta["fx_rate"], entry.meta["fx_source"], entry.meta["fx_as_of"]) == (
        "7.12345", "ecb", at(MON, 8).isoformat())
    assert entry_legs(shop, entry.id) == {
        f"liabilities:merchant:{shop.merchant_id}:pending/USD": 10_001,
        "assets:fx_position:CNY_USD/USD": -10_001,
        "assets:fx_position:CNY_USD/CNY": 71_242,
        f"liabilities:merchant:{shop.merchant_id}:available/CNY": -71_242}
    assert shop.balance("available", "CNY") == 5_000 + 71_242

    with db.uow() as uow:
        with pytest.raises(InvalidRequest) as error:
            fx.close_fx_position(uow, shop.tenant_id, sold_currency="USD", bought_currency="CNY",
                                 sold_amount=10_002, bought_amount=71_300, reference="too-much")
        assert (error.value.code, error.value.param) == ("fx_position_exceeded", "sold_amount")
        # Half sold below the booked rate: a loss; the rest above it: a gain.
        fx.close_fx_position(uow, shop.tenant_id, sold_currency="USD", bought_currency="CNY", sold_amount=5_000,
                             bought_amount=35_500, reference="deal-1")  # booked 71242*5000/10001 = 35617.4 -> 35617
        fx.close_fx_position(uow, shop.tenant_id, sold_currency="USD", bought_currency="CNY", sold_amount=5_001,
                             bought_amount=35_700, reference="deal-2")  # booked the rest: 35625
        again = fx.close_fx_position(uow, shop.tenant_id, sold_currency="USD", bought_currency="CNY",
                                     sold_amount=5_001, bought_amount=35_700, reference="deal-2")
        uow.commit()
    assert again
    tenant = shop.tenant_id
    assert account_balance(db, tenant, "expenses:fx_losses", "CNY") == 35_617 - 35_500
    assert account_balance(db, tenant, "income:fx_gains", "CNY") == 35_700 - 35_625
    assert account_balance(db, tenant, "assets:fx_position:CNY_USD", "USD") == 0
    assert account_balance(db, tenant, "assets:fx_position:CNY_USD", "CNY") == 0
    assert account_balance(db, tenant, "assets:bank:custody", "CNY") == 35_500 + 35_700


def test_minimum_amount_defers_and_rates_are_validated(db, clock, shop: Shop) -> None:
    profile(shop, offset_days=0, min_settlement_amount=1_000)
    shop.sell(MON, 600)
    clock.set(after_close(MON))
    assert [d["reason"] for d in settle(shop, MON).deferred] == ["below_minimum"]
    shop.sell(TUE, 600)
    clock.set(after_close(TUE))
    assert sorted(b.cohort_date for b in settle(shop, TUE).batches) == [MON, TUE]  # 1200 together
    assert shop.balance("available") == 1_200

    with db.uow() as uow:
        for kwargs, param in (({"rate": Decimal(0)}, "rate"), ({"rate": Decimal("NaN")}, "rate"),
                              ({"quote": "USD"}, "quote"), ({"base": "XXX"}, "base"), ({"source": ""}, "source")):
            args = {"base": "USD", "quote": "CNY", "rate": Decimal("7"), "source": "s", "as_of": at(MON)} | kwargs
            with pytest.raises(InvalidRequest) as error:
                fx.add_rate(uow, shop.tenant_id, **args)  # type: ignore[arg-type]
            assert error.value.param == param
        with pytest.raises(InvalidRequest) as error:
            service.run_settlement(uow, shop.tenant_id, business_date=WED)  # not closed yet
        assert error.value.code == "business_date_not_closed"


def test_tenant_isolation(db, clock, shop: Shop, other_tenant) -> None:
    other = make_shop(db, clock, other_tenant)
    shop.sell(MON, 1_000)
    other.sell(MON, 5_000)
    clock.set(after_close(TUE))
    assert [b.amount for b in settle(shop, TUE).batches] == [1_000]
    assert other.balance("pending") == 5_000
    with db.uow() as uow:
        with pytest.raises(Exception) as error:
            service.set_profile(uow, other.tenant_id, party_kind="merchant", party_id=shop.merchant_id)
        assert getattr(error.value, "code", None) == "merchant_not_found"


def test_a_claw_back_before_the_run_defers_the_cohort_to_the_next_run(db, clock, shop: Shop) -> None:
    shop.sell(MON, 1_000)  # T+1 by default: due Tuesday
    shop.claw_back(WED, 1_000)  # Wednesday morning, before Tuesday's run: pending is empty
    clock.set(at(WED, 11))
    result = settle(shop, TUE)
    assert (result.batches, [d["reason"] for d in result.deferred]) == ([], ["pending_short"])
    clock.set(after_close(WED))
    settled = settle(shop, WED).batches
    assert sorted((b.cohort_date, b.amount) for b in settled) == [(MON, 1_000), (WED, -1_000)]
    assert (shop.balance("pending"), shop.balance("available"), shop.balance("receivable")) == (0, 0, 0)
