"""Behaviour features from our own records, as of an instant, computed set-wise; bureau features from the
latest report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from finloop.core.clock import FrozenClock
from finloop.credit import features, flows
from finloop.credit import service as credit
from finloop.credit.domain import PLATFORM_FEATURE_NAMES
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.payments.dispute_models import Dispute
from finloop.payments.models import Payment
from finloop.risk import service as risk
from tests.conftest import T0, TenantHandle
from tests.credit.conftest import make_applicant

DAY = timedelta(days=1)


def payment(uow, tenant_id: str, merchant_id: str, customer_id: str, *, amount: int, days_ago: float,  # type: ignore[no-untyped-def]
            status: str = "succeeded", refunded: int = 0, currency: str = "CNY", purpose: str = "order") -> str:
    at = T0 - days_ago * DAY
    row = Payment(id=uow.ids.new("payment"), tenant_id=tenant_id, merchant_id=merchant_id, customer_id=customer_id,
                  purpose=purpose, amount=amount, currency=currency,
                  captured_amount=amount if status == "succeeded" else 0, refunded_amount=refunded, status=status,
                  created_at=at, updated_at=at)
    uow.session.add(row)
    uow.session.flush()
    return row.id


def test_behaviour_features_from_orders_refunds_disputes_and_logins(db: Database, tenant: TenantHandle,
                                                                    clock: FrozenClock) -> None:
    party = make_applicant(db, tenant.id, "alice", income=1_200_000)
    with db.uow() as uow:
        merchant = payments.create_merchant(uow, tenant.id, reference="shop", name="Shop").id
        customer = payments.get_customer(uow, tenant.id, party.customer_id)
        customer.created_at = T0 - 400 * DAY
        c = party.customer_id
        payment(uow, tenant.id, merchant, c, amount=10_000, days_ago=300)
        disputed = payment(uow, tenant.id, merchant, c, amount=20_000, days_ago=100)
        payment(uow, tenant.id, merchant, c, amount=30_000, days_ago=10, refunded=6_000)
        payment(uow, tenant.id, merchant, c, amount=5_000, days_ago=5, status="failed")
        payment(uow, tenant.id, merchant, c, amount=99_999, days_ago=20, currency="USD")  # another currency
        payment(uow, tenant.id, merchant, c, amount=50_000, days_ago=400)  # before the window
        payment(uow, tenant.id, merchant, c, amount=7_000, days_ago=-1)  # after as_of
        payment(uow, tenant.id, merchant, c, amount=8_000, days_ago=3, purpose="wallet_top_up")
        uow.session.add(Dispute(id=uow.ids.new("dispute"), tenant_id=tenant.id, payment_id=disputed,
                                merchant_id=merchant, attempt_id="att_x", channel="sandbox", channel_dispute_id="d1",
                                amount=20_000, currency="CNY", reason="fraud", status="open",
                                from_pending_amount=20_000, created_at=T0 - 90 * DAY, updated_at=T0 - 90 * DAY))
        for days_ago in (1, 5, 40):
            risk.decide(uow, tenant.id, event_type="login", event={"customer_id": c}, at=T0 - days_ago * DAY)
        uow.commit()
    with db.uow(read_only=True) as uow:
        applicant = credit.get_applicant(uow, tenant.id, party.applicant_id)
        got = features.compute(uow, tenant.id, [applicant], T0)[applicant.id]
    assert list(got) == list(PLATFORM_FEATURE_NAMES)
    assert got["tenure_days"] == 400.0
    assert got["order_count_365d"] == 3.0 and got["order_count_90d"] == 1.0
    assert got["order_amount_avg_365d"] == 200.0  # 60,000 fen over 3 orders, in yuan
    assert got["refund_rate_365d"] == 0.1
    assert got["repurchase_interval_days"] == 145.0  # (300 - 10) days over 2 gaps
    assert got["days_since_last_order"] == 10.0
    assert got["payment_failure_rate_365d"] == 0.25
    assert got["dispute_count_365d"] == 1.0
    assert got["login_count_30d"] == 2.0
    assert got["declared_income"] == 12_000.0 and got["employment"] == "employed"
    assert all(got[name] is None for name in PLATFORM_FEATURE_NAMES if name.startswith("bureau_"))
    assert got["debt_to_income"] is None
    clock.advance(timedelta(days=70))
    with db.uow(read_only=True) as uow:
        applicant = credit.get_applicant(uow, tenant.id, party.applicant_id)
        later = features.compute(uow, tenant.id, [applicant], clock.now())[applicant.id]
    # 70 days on: the order 300 days before T0 leaves the window, the one a day after T0 enters it.
    assert later["order_count_365d"] == 3.0 and later["tenure_days"] == 470.0
    assert later["days_since_last_order"] == 69.0 and later["login_count_30d"] == 0.0


def test_bureau_features_come_from_the_latest_report(db: Database, tenant: TenantHandle, clock: FrozenClock) -> None:
    party = make_applicant(db, tenant.id, "alice", income=1_000_000)
    with db.uow() as uow:
        credit.grant_consent(uow, tenant.id, party.applicant_id, scope=["bureau_report"], actor="test")
        uow.commit()
    report_id = flows.pull_report(db, tenant.id, party.applicant_id, actor="test")
    clock.advance(timedelta(hours=1))
    with db.uow(read_only=True) as uow:
        applicant = credit.get_applicant(uow, tenant.id, party.applicant_id)
        report = credit.get_report(uow, tenant.id, report_id)
        got = features.compute(uow, tenant.id, [applicant], clock.now())[applicant.id]
        stale = features.compute(uow, tenant.id, [applicant], clock.now() + features.BUREAU_MAX_AGE)[applicant.id]
        before = features.compute(uow, tenant.id, [applicant], T0 - DAY)[applicant.id]
        uow.session.expunge(report)
    assert report.status == "completed"
    thin = bool(report.is_thin_file)
    assert got["bureau_thin_file"] == ("yes" if thin else "no")
    assert got["bureau_score"] == (None if thin else float(report.bureau_score or 0))
    assert got["bureau_enquiries_30d"] == report.enquiries_30d and got["bureau_enquiries_90d"] == report.enquiries_90d
    assert got["debt_to_income"] == round((report.open_loan_balance_amount or 0) / (12 * 1_000_000), 4)
    assert stale["bureau_thin_file"] is None and before["bureau_thin_file"] is None


def test_features_are_computed_set_wise(db: Database, tenant: TenantHandle) -> None:
    parties = [make_applicant(db, tenant.id, f"c{i}", national_id=f"3301061985010{i:05d}") for i in range(12)]
    ids = [p.applicant_id for p in parties]
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.uow(read_only=True) as uow:
            applicants = credit.list_applicants(uow, tenant.id, limit=100)
            statements.clear()
            few = features.compute(uow, tenant.id, applicants[:2], T0)
            used_for_two = len(statements)
            statements.clear()
            many = features.compute(uow, tenant.id, applicants, T0)
            used_for_twelve = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert used_for_two == used_for_twelve <= 8
    assert sorted(many) == sorted(ids) and all(many[i] == few[i] for i in few)
    assert many[ids[5]]["order_count_365d"] == 0.0 and many[ids[5]]["order_amount_avg_365d"] is None


@pytest.mark.parametrize("kind", ["merchant"])
def test_merchants_are_scored_on_their_sales_without_logins(db: Database, tenant: TenantHandle, kind: str) -> None:
    with db.uow() as uow:
        merchant = payments.create_merchant(uow, tenant.id, reference="shop", name="Shop").id
        buyer = payments.create_customer(uow, tenant.id, reference="buyer").id
        for days_ago in (50, 20, 2):
            payment(uow, tenant.id, merchant, buyer, amount=40_000, days_ago=days_ago)
        applicant = credit.create_applicant(uow, tenant.id, party_kind=kind, party_id=merchant,
                                            declared_income_amount=5_000_000, currency="CNY",
                                            employment="business_owner", national_id="91330106MA2B3C4D5E",
                                            actor="test")
        got = features.compute(uow, tenant.id, [applicant], T0)[applicant.id]
    assert got["order_count_365d"] == 3.0 and got["order_count_90d"] == 3.0 and got["login_count_30d"] is None
    assert got["repurchase_interval_days"] == 24.0 and got["tenure_days"] == 0.0
