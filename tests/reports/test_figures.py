"""Each report's figures against records built here, computed by hand."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from finloop.db.uow import Database
from finloop.reports import service
from finloop.reports.service import Params
from tests.conftest import T0, TenantHandle
from tests.reports.builders import alert, batch, decide, dispute, ledger_day, pay, payout, refund

MARCH = Params(date(2026, 3, 1), date(2026, 3, 31))


def rows(db: Database, tenant_id: str, name: str, params: Params = MARCH) -> list[dict[str, Any]]:
    with db.uow(read_only=True) as uow:
        return service.run(uow, tenant_id, name, params).rows


def pick(found: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in found]


def test_income_statement_balance_sheet_and_revenue_by_source(db: Database, tenant: TenantHandle) -> None:
    ledger_day(db, tenant.id)
    income = rows(db, tenant.id, "financial-income-statement")
    assert pick(income, "section", "account_code", "amount") == [
        ("income", "income:commission:0", 10_000), ("income", "income:credit:installment:interest", 5_000),
        ("total_income", "", 15_000), ("expenses", "expenses:channel_fees", 2_000), ("total_expenses", "", 2_000),
        ("net_income", "", 13_000)]
    # February saw none of it.
    february = Params(date(2026, 2, 1), date(2026, 2, 28))
    assert pick(rows(db, tenant.id, "financial-income-statement", february), "section", "amount") == [
        ("total_income", 0), ("total_expenses", 0), ("net_income", 0)]
    sheet = rows(db, tenant.id, "financial-balance-sheet")
    assert ("total_assets", 13_000) in pick(sheet, "section", "amount")
    assert ("retained_earnings", 13_000) in pick(sheet, "section", "amount")
    sources = {r["source"]: (r["amount"], r["share_rate"]) for r in rows(db, tenant.id, "revenue-by-source")}
    assert sources["commission"] == (10_000, "0.6667")
    assert sources["credit_interest"] == (5_000, "0.3333")
    assert sources["platform_fees"] == (0, "0.0000")
    assert sources["total"] == (15_000, "1.0000")


def test_channel_statements_success_and_refund_rates(db: Database, tenant: TenantHandle) -> None:
    first = pay(db, tenant.id, amount=10_000, channel="alipay", fee=60, refunded=4_000)
    pay(db, tenant.id, amount=5_000, channel="alipay", fee=30, at=T0 + timedelta(days=1))
    pay(db, tenant.id, amount=7_000, channel="wechat", method="qr", fee=42)
    pay(db, tenant.id, amount=9_000, channel="wechat", method="qr", status="failed")
    pay(db, tenant.id, amount=1_000, channel="alipay", at=T0 - timedelta(days=40))  # before the period
    refund(db, tenant.id, first, amount=4_000, channel="alipay", fee_returned=24)
    statements = rows(db, tenant.id, "channel-statements")
    assert pick(statements, "day", "channel", "payments", "payment_amount", "refunds", "refund_amount", "fee_amount",
                "net_amount") == [
        ("2026-03-02", "alipay", 1, 10_000, 1, 4_000, 36, 5_964),
        ("2026-03-02", "wechat", 1, 7_000, 0, 0, 42, 6_958),
        ("2026-03-03", "alipay", 1, 5_000, 0, 0, 30, 4_970)]
    success = rows(db, tenant.id, "payment-success")
    assert pick(success, "dimension", "value", "payments", "succeeded", "failed", "success_rate") == [
        ("channel", "alipay", 2, 2, 0, "1.0000"), ("channel", "wechat", 2, 1, 1, "0.5000"),
        ("method", "qr", 2, 1, 1, "0.5000"), ("method", "wallet", 2, 2, 0, "1.0000"),
        ("hour", "09", 4, 3, 1, "0.7500")]
    refunds = rows(db, tenant.id, "refund-rate")
    assert pick(refunds, "channel", "payments", "captured_amount", "refunded_payments", "refunded_amount",
                "count_rate", "amount_rate") == [
        ("alipay", 2, 15_000, 1, 4_000, "0.5000", "0.2667"), ("wechat", 1, 7_000, 0, 0, "0.0000", "0.0000")]


def test_large_transactions_keep_the_threshold_and_currency(db: Database, tenant: TenantHandle) -> None:
    big = pay(db, tenant.id, amount=5_000_000, channel="alipay")
    pay(db, tenant.id, amount=4_999_999, channel="alipay")
    usd = pay(db, tenant.id, amount=8_000_000, channel="card", currency="USD")
    assert pick(rows(db, tenant.id, "large-transactions"), "payment_id") == [(big,), (usd,)]
    in_cny = Params(MARCH.start, MARCH.end, currency="CNY", threshold_amount=4_999_999)
    assert len(rows(db, tenant.id, "large-transactions", in_cny)) == 2


def test_settlement_and_payout_timeliness(db: Database, tenant: TenantHandle) -> None:
    batch(db, tenant.id, settle_date=date(2026, 3, 3), settled_on=date(2026, 3, 3))
    batch(db, tenant.id, settle_date=date(2026, 3, 3), settled_on=date(2026, 3, 6), party_id="mer_2")
    batch(db, tenant.id, settle_date=date(2026, 3, 9), settled_on=date(2026, 3, 10))
    payout(db, tenant.id, requested_at=T0, executed_on=date(2026, 3, 2))
    payout(db, tenant.id, requested_at=T0, executed_on=date(2026, 3, 4))
    payout(db, tenant.id, requested_at=T0 - timedelta(days=30), executed_on=date(2026, 2, 2))  # before the period
    assert pick(rows(db, tenant.id, "timeliness"), "kind", "items", "on_time", "late", "max_days_late",
                "total_days_late", "on_time_rate") == [("payout", 2, 1, 1, 2, 2, "0.5000"),
                                                       ("settlement", 3, 1, 2, 3, 4, "0.3333")]


def test_rule_performance_fraud_losses_and_aml(db: Database, tenant: TenantHandle) -> None:
    decide(db, tenant.id, rules=["velocity", "new_device"], outcome="decline", label="fraud_confirmed")
    decide(db, tenant.id, rules=["velocity"], outcome="decline", label="succeeded")
    decide(db, tenant.id, rules=["velocity"], outcome="review")
    decide(db, tenant.id, rules=[], outcome="approve", label="fraud_confirmed")
    assert pick(rows(db, tenant.id, "rule-performance"), "rule_id", "hits", "declines", "reviews", "labelled",
                "fraud", "precision_rate") == [("new_device", 1, 1, 0, 1, 1, "1.0000"),
                                              ("velocity", 3, 2, 1, 2, 1, "0.3333")]
    paid = pay(db, tenant.id, amount=30_000, channel="alipay")
    dispute(db, tenant.id, paid, amount=10_000, status="lost", fee=1_500)
    dispute(db, tenant.id, paid, amount=8_000, status="won")
    dispute(db, tenant.id, paid, amount=2_000, status="needs_response")
    assert pick(rows(db, tenant.id, "fraud-losses"), "reason", "disputes", "disputed_amount", "open", "won", "lost",
                "lost_amount", "fee_amount", "loss_amount") == [
        ("fraudulent", 3, 20_000, 1, 1, 1, 10_000, 1_500, 11_500)]
    alert(db, tenant.id, scenario="structuring", amount=40_000)
    escalated = alert(db, tenant.id, scenario="structuring", amount=60_000, case="confirmed_fraud")
    still_open = alert(db, tenant.id, scenario="large_transaction", amount=90_000, case="open")
    assert pick(rows(db, tenant.id, "aml-alerts"), "scenario", "alerts", "total_amount", "escalated",
                "case_outcomes") == [("large_transaction", 1, 90_000, 1, "open: 1"),
                                     ("structuring", 2, 100_000, 1, "confirmed_fraud: 1")]
    assert sorted(pick(rows(db, tenant.id, "suspicious-activity"), "alert_id", "case_status", "case_outcome")) == \
        sorted([(escalated, "closed", "confirmed_fraud"), (still_open, "open", None)])
