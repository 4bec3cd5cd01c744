"""Funding sources: checked configuration (bad input writes nothing), the cheapest-source choice with its tie rule
and quota exhaustion, and the daily cost accrual: exact cumulative rounding (hypothesis), idempotent per business
date, posted to the funding cost expense and the source's interest liability."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from finloop.core.errors import Conflict, InvalidRequest
from finloop.core.money import Rounding, round_minor
from finloop.credit import funding
from finloop.credit.models import FundingSource
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from tests.conftest import TenantHandle


def source(db: Database, tenant_id: str, code: str, rate: str, quota: int, **extra: Any) -> FundingSource:
    with db.uow() as uow:
        row = funding.create_source(uow, tenant_id, {"code": code, "kind": extra.pop("kind", "partner_bank"),
                                                     "currency": "CNY", "annual_rate": rate, "quota_amount": quota,
                                                     **extra}, actor="test")
        uow.session.expunge(row)  # keep its loaded values past the end of the unit of work
        uow.commit()
    return row


def balance(db: Database, tenant_id: str, code: str) -> int:
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, tenant_id, code, "CNY")
        return 0 if account is None else ledger.balances(account).posted


def test_the_cheapest_active_source_with_quota_is_chosen_and_explained(db: Database, tenant: TenantHandle) -> None:
    source(db, tenant.id, "bank_a", "0.05", 10_000_000)
    cheap = source(db, tenant.id, "bank_b", "0.035", 300_000)
    source(db, tenant.id, "reserve", "0.02", 5_000_000, kind="own_reserve", active=False)
    with db.uow() as uow:
        small = funding.choose(uow, tenant.id, "CNY", 300_000)
        big = funding.choose(uow, tenant.id, "CNY", 300_001)
        assert (small.source.id, big.source.code) == (cheap.id, "bank_a")
    verdicts = {c["code"]: c["verdict"] for c in small.explanation["candidates"]}
    assert verdicts == {"reserve": "inactive", "bank_b": "chosen", "bank_a": "costlier_or_tied"}
    assert {c["code"]: c["verdict"] for c in big.explanation["candidates"]}["bank_b"] == "quota_insufficient"
    with db.uow() as uow, pytest.raises(Conflict) as none:
        funding.choose(uow, tenant.id, "CNY", 10_000_001)
    assert none.value.code == "no_funding_available"
    with db.uow() as uow, pytest.raises(Conflict):
        funding.choose(uow, tenant.id, "USD", 1)


def test_ties_go_to_the_larger_remaining_quota_then_the_code(db: Database, tenant: TenantHandle) -> None:
    source(db, tenant.id, "zeta", "0.04", 1_000_000)
    source(db, tenant.id, "alpha", "0.04", 1_000_000)
    big = source(db, tenant.id, "omega", "0.04", 2_000_000)
    with db.uow() as uow:
        assert funding.choose(uow, tenant.id, "CNY", 1).source.id == big.id
        funding.update_source(uow, tenant.id, big.id, {"active": False}, actor="test")
        assert funding.choose(uow, tenant.id, "CNY", 1).source.code == "alpha"


def test_quota_is_drawn_and_never_set_below_what_is_lent(db: Database, tenant: TenantHandle) -> None:
    row = source(db, tenant.id, "bank_a", "0.05", 1_000)
    with db.uow() as uow:
        chosen = funding.choose(uow, tenant.id, "CNY", 600).source
        funding.draw(chosen, 600)
        uow.commit()
    with db.uow() as uow:
        with pytest.raises(Conflict):
            funding.draw(funding.get_source(uow, tenant.id, row.id, lock=True), 401)
        with pytest.raises(InvalidRequest) as below:
            funding.update_source(uow, tenant.id, row.id, {"quota_amount": 599}, actor="test")
        assert below.value.code == "quota_below_used"
        updated = funding.update_source(uow, tenant.id, row.id, {"quota_amount": 600, "annual_rate": "0.04"},
                                        actor="test")
        assert (updated.quota_amount, updated.used_amount, updated.annual_rate) == (600, 600, Decimal("0.04"))


@pytest.mark.parametrize(("change", "code"), [
    ({"code": ""}, "invalid_code"), ({"code": "bad code"}, "invalid_code"), ({"kind": "loan_shark"},
                                                                            "invalid_funding_kind"),
    ({"currency": "XXQ"}, "invalid_currency"), ({"annual_rate": 0.05}, "invalid_rate"),
    ({"annual_rate": "1.5"}, "invalid_rate"), ({"annual_rate": "-0.01"}, "invalid_rate"),
    ({"annual_rate": "NaN"}, "invalid_rate"), ({"quota_amount": -1}, "invalid_amount"),
    ({"quota_amount": True}, "invalid_amount"), ({"active": "yes"}, "invalid_active"),
    ({"colour": "red"}, "unknown_field"),
])
def test_bad_configuration_is_refused_and_writes_nothing(db: Database, tenant: TenantHandle, change: dict[str, Any],
                                                         code: str) -> None:
    data = {"code": "bank_a", "kind": "partner_bank", "currency": "CNY", "annual_rate": "0.05",
            "quota_amount": 1_000, **change}
    with db.uow() as uow, pytest.raises(InvalidRequest) as raised:
        funding.create_source(uow, tenant.id, data, actor="test")
    assert raised.value.code == code
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(FundingSource)) == 0


@settings(max_examples=100, deadline=None)
@given(days=st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=60),
       rate=st.decimals(min_value=0, max_value=Decimal("0.5"), places=6))
def test_daily_amounts_sum_exactly_to_the_periods_rounded_total(days: list[int], rate: Decimal) -> None:
    base, posted = Decimal(0), 0
    for outstanding in days:
        base, amount = funding.accrual_step(base, posted, outstanding, rate)
        assert amount >= 0
        posted += amount
    exact = sum((Fraction(o) * Fraction(rate) for o in days), Fraction(0)) / 365
    assert posted == round_minor(exact, Rounding.HALF_EVEN)
    assert abs(Fraction(posted) - exact) <= Fraction(1, 2)


def test_accrual_posts_once_per_business_date_to_the_expense_and_the_interest_liability(
        db: Database, tenant: TenantHandle) -> None:
    bank = source(db, tenant.id, "bank_a", "0.0365", 10_000_000)
    reserve = source(db, tenant.id, "reserve", "0.01", 10_000_000, kind="own_reserve")
    start = date(2026, 3, 2)
    # 1,000,000.00 minor units at 3.65%: exactly 100.00 a day (10,000 minor units).
    posted = []
    for offset in (0, 0, 1, 1, 2):
        with db.uow() as uow:
            row = funding.get_source(uow, tenant.id, bank.id, lock=True)
            posted.append(funding.accrue_source(uow, row, start + timedelta(days=offset), 100_000_000))
            other = funding.get_source(uow, tenant.id, reserve.id, lock=True)
            assert funding.accrue_source(uow, other, start, 100_000_000) == 0
            uow.commit()
    assert posted == [10_000, 0, 10_000, 0, 10_000]
    with db.uow() as uow:  # an earlier date than the last accrued posts nothing either
        row = funding.get_source(uow, tenant.id, bank.id, lock=True)
        assert funding.accrue_source(uow, row, start, 100_000_000) == 0
        assert (row.accrued_amount, row.accrued_through) == (30_000, start + timedelta(days=2))
    assert balance(db, tenant.id, funding.COST_OF_FUNDS_CODE) == 30_000
    assert balance(db, tenant.id, funding.funding_interest_code("bank_a")) == 30_000
    assert balance(db, tenant.id, funding.funding_interest_code("reserve")) == 0
