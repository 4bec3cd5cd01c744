"""Loan products as data: the four kinds, field-by-field validation (nothing written on a refusal), versions
that never change once written, retirement, audit, quotes and the buy-now-pay-later subsidy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from finloop.audit.models import AuditEvent
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.credit import products
from finloop.credit.models import LoanProduct
from finloop.credit.products import EXAMPLES, check_spec
from finloop.db.uow import Database
from tests.conftest import TenantHandle


def create(db: Database, tenant_id: str, spec: dict[str, Any]) -> LoanProduct:
    with db.uow() as uow:
        row = products.create_product(uow, tenant_id, spec, actor="test")
        uow.commit()
    return row


def count(db: Database, model: Any) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_four_example_products_are_created_with_defaults_by_kind(db: Database, tenant: TenantHandle) -> None:
    made = {name: create(db, tenant.id, spec) for name, spec in EXAMPLES.items()}
    installment, bnpl, cash, revolving = (made[n] for n in EXAMPLES)
    assert (installment.version, installment.status, installment.term_unit) == (1, "active", "month")
    assert installment.terms == [3, 6, 12, 24] and installment.day_count is None
    assert installment.limit_group == "installment" and installment.restores_limit is False
    assert installment.rate == Decimal("0.18") and installment.allocation_order == ["penalty", "fees", "interest",
                                                                                    "principal"]
    assert (bnpl.subsidy_payer, bnpl.merchant_fee_rate, bnpl.restores_limit) == ("merchant", Decimal("0.03"), True)
    assert (cash.term_unit, cash.rate_basis, cash.terms, cash.min_term, cash.max_term) == ("day", "daily", None, 7, 30)
    assert (revolving.method, revolving.day_count) == ("revolving", "actual_365")
    with db.uow(read_only=True) as uow:
        actions = list(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id)
                                           .order_by(AuditEvent.seq)))
        assert actions.count("credit.product.created") == 4
        shown = {p.code: products.rates_of(p) for p in products.list_products(uow, tenant.id)}
    # The APR shown for each offered term: an annuity's is its nominal rate; interest-free is 0.
    assert [r["term"] for r in shown["consumer_installment"]] == [3, 6, 12, 24]
    assert all(abs(Decimal(r["apr"]) - Decimal("0.18")) < Decimal("0.0005") for r in shown["consumer_installment"])
    assert shown["bnpl_3"] == [{"term": 3, "principal_amount": 1_000_000, "total_repaid_amount": 1_000_000,
                                "apr": "0.000000", "effective_annual_rate": "0.000000"}]
    # A 30-day cash loan at 0.05% a day: 1.5% over 30 days, 18.25% APR.
    assert [r["apr"] for r in shown["cash_30"]] == ["0.182500", "0.182500"]


BASE = EXAMPLES["consumer_installment"]


@pytest.mark.parametrize(("changes", "code", "param"), [
    ({"kind": "bnpl", "subsidy_payer": None, "rate": "0.12"}, "subsidy_required", "subsidy_payer"),
    ({"kind": "bnpl", "subsidy_payer": "merchant"}, "merchant_fee_rate_required", "merchant_fee_rate"),
    ({"kind": "bnpl", "subsidy_payer": "platform", "merchant_fee_rate": "0.03"}, "subsidy_not_allowed",
     "merchant_fee_rate"),
    ({"subsidy_payer": "platform"}, "subsidy_not_allowed", "subsidy_payer"),
    ({"grace_days": -1}, "invalid_grace_days", "grace_days"),
    ({"grace_days": 91}, "invalid_grace_days", "grace_days"),
    ({"method": "revolving"}, "method_not_allowed", "method"),
    ({"method": "balloon"}, "invalid_method", "method"),
    ({"terms": [3, 400]}, "invalid_term", "terms.1"),
    ({"terms": [3, 3]}, "invalid_term", "terms"),
    ({"terms": [], "min_term": 1}, "invalid_term", "terms"),
    ({"min_term": 3, "max_term": 6}, "invalid_term", "terms"),
    ({"rate": 0.18}, "invalid_rate", "rate"),
    ({"rate": "-0.1"}, "invalid_rate", "rate"),
    ({"rate": "eleven"}, "invalid_rate", "rate"),
    ({"rate": "11"}, "invalid_rate", "rate"),
    ({"penalty_rate": "0.1234567890123"}, "invalid_rate", "penalty_rate"),
    ({"upfront_fee_rate": "1"}, "invalid_rate", "upfront_fee_rate"),
    ({"min_principal_amount": 6_000_000}, "invalid_amount", "max_principal_amount"),
    ({"max_principal_amount": 1.5}, "invalid_amount", "max_principal_amount"),
    ({"late_fee_amount": -1}, "invalid_amount", "late_fee_amount"),
    ({"allocation_order": ["fees", "fees", "interest", "principal"]}, "invalid_allocation_order",
     "allocation_order"),
    ({"prepayment": "fee", "prepayment_fee_rate": "0"}, "invalid_rate", "prepayment_fee_rate"),
    ({"prepayment": "free", "prepayment_fee_rate": "0.01"}, "invalid_rate", "prepayment_fee_rate"),
    ({"prepayment": "sometimes"}, "invalid_prepayment", "prepayment"),
    ({"write_off_after_days": 0}, "invalid_write_off", "write_off_after_days"),
    ({"day_count": "act/360"}, "invalid_day_count", "day_count"),
    ({"rounding": "nearest"}, "invalid_rounding", "rounding"),
    ({"code": "Bad Code"}, "invalid_product_code", "code"),
    ({"kind": "mortgage"}, "invalid_kind", "kind"),
    ({"currency": "XXZ"}, "unknown_currency", "currency"),
    ({"name": ""}, "invalid_text", "name"),
    ({"limit_group": "Cash Loans"}, "invalid_limit_group", "limit_group"),
    ({"restores_limit": "yes"}, "invalid_restores_limit", "restores_limit"),
    ({"colour": "blue"}, "unknown_field", "colour"),
    ({"kind": "cash", "method": "interest_only", "rate_basis": "daily", "rate": "0.05"}, "invalid_rate", "rate"),
])
def test_a_bad_field_is_refused_with_its_code_and_param_and_nothing_is_written(
        db: Database, tenant: TenantHandle, changes: dict[str, Any], code: str, param: str) -> None:
    spec = {**BASE, **changes}
    if changes.get("kind") == "cash":
        spec.pop("terms")
        spec.update(min_term=7, max_term=30)
    with pytest.raises(InvalidRequest) as caught:
        check_spec(spec)
    assert (caught.value.code, caught.value.param) == (code, param)
    audited = count(db, AuditEvent)
    with db.uow() as uow, pytest.raises(InvalidRequest):
        products.create_product(uow, tenant.id, spec, actor="test")
    assert count(db, LoanProduct) == 0 and count(db, AuditEvent) == audited


def test_a_bnpl_product_without_a_rate_needs_no_subsidy() -> None:
    spec = check_spec({**EXAMPLES["bnpl_3"], "rate": "0", "subsidy_payer": None, "merchant_fee_rate": None})
    assert spec["subsidy_payer"] is None and spec["rate"] == 0


def test_a_code_is_taken_once_and_revisions_write_new_versions(db: Database, tenant: TenantHandle) -> None:
    first = create(db, tenant.id, BASE)
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        products.create_product(uow, tenant.id, BASE, actor="test")
    assert caught.value.code == "product_code_exists"
    with db.uow() as uow:
        second = products.revise_product(uow, tenant.id, first.id, {"rate": "0.16", "terms": [6, 12]}, actor="test")
        uow.commit()
    with db.uow(read_only=True) as uow:
        old = products.get_product(uow, tenant.id, first.id)
        assert (old.status, old.rate, old.terms) == ("superseded", Decimal("0.18"), [3, 6, 12, 24])
        assert old.superseded_at is not None
        new = products.get_product(uow, tenant.id, second.id)
        assert (new.version, new.status, new.rate, new.terms, new.code) == (2, "active", Decimal("0.16"), [6, 12],
                                                                            first.code)
        assert products.offered_product(uow, tenant.id, first.code).id == second.id
        revised = uow.session.scalar(select(AuditEvent).where(AuditEvent.action == "credit.product.revised"))
        assert revised is not None and revised.before["rate"] == "0.18" and revised.after["rate"] == "0.16"
    with db.uow() as uow:
        # A range replaces the list; kind, code and currency never change; a superseded version is not revised.
        ranged = products.revise_product(uow, tenant.id, second.id, {"min_term": 3, "max_term": 9}, actor="test")
        assert (ranged.terms, ranged.min_term, ranged.max_term) == (None, 3, 9)
        for bad in ({"kind": "cash"}, {"currency": "USD"}, {"code": "other"}):
            with pytest.raises(InvalidRequest) as refused:
                products.revise_product(uow, tenant.id, ranged.id, bad, actor="test")
            assert refused.value.code == "immutable_field"
        with pytest.raises(Conflict):
            products.revise_product(uow, tenant.id, first.id, {"rate": "0.1"}, actor="test")
        with pytest.raises(InvalidRequest) as invalid:
            products.revise_product(uow, tenant.id, ranged.id, {"grace_days": -2}, actor="test")
        assert invalid.value.param == "grace_days"
        retired = products.retire_product(uow, tenant.id, ranged.id, actor="test")
        assert retired.status == "retired" and retired.retired_at is not None
        with pytest.raises(Conflict):
            products.retire_product(uow, tenant.id, ranged.id, actor="test")
        with pytest.raises(NotFound):
            products.offered_product(uow, tenant.id, first.code)
        uow.commit()


def test_quotes_check_the_offer_and_state_the_subsidy(db: Database, tenant: TenantHandle) -> None:
    installment = create(db, tenant.id, BASE)
    merchant = create(db, tenant.id, EXAMPLES["bnpl_3"])
    platform = create(db, tenant.id, {**EXAMPLES["bnpl_3"], "code": "bnpl_platform", "subsidy_payer": "platform",
                                      "merchant_fee_rate": None})
    start = date(2026, 3, 2)
    with pytest.raises(InvalidRequest) as caught:
        products.quote(installment, principal=1_000_000, term=9, start_on=start)
    assert (caught.value.code, caught.value.param) == ("term_not_offered", "term")
    for principal in (99_999, 5_000_001):
        with pytest.raises(InvalidRequest) as caught:
            products.quote(installment, principal=principal, term=12, start_on=start)
        assert (caught.value.code, caught.value.param) == ("principal_out_of_range", "principal_amount")
    by_merchant = products.quote(merchant, principal=300_000, term=3, start_on=start)
    assert [r.total for r in by_merchant.schedule.installments] == [100_000] * 3  # zero down, interest-free
    assert by_merchant.schedule.apr == 0
    assert by_merchant.subsidy is not None and by_merchant.subsidy.to_json() == {
        "payer": "merchant", "amount": 9_000, "merchant_fee_rate": "0.03", "interest_covered": 6_000}
    # 12% a year on 3,000.00 repaid in equal principal: 30.00 + 20.00 + 10.00 the platform books as an expense.
    by_platform = products.quote(platform, principal=300_000, term=3, start_on=start)
    assert by_platform.subsidy is not None and (by_platform.subsidy.payer, by_platform.subsidy.amount) == (
        "platform", 6_000)


def test_products_are_tenant_scoped(db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    mine = create(db, tenant.id, BASE)
    create(db, other_tenant.id, BASE)  # codes are per tenant
    with db.uow(read_only=True) as uow:
        with pytest.raises(NotFound):
            products.get_product(uow, other_tenant.id, mine.id)
        assert [p.id for p in products.list_products(uow, tenant.id)] == [mine.id]
        assert products.limit_groups(uow, tenant.id) == {"installment": False}
