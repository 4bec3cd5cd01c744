"""The credit reports over a small book: loan-level classes, the forecast and the stress test, by hand."""

from __future__ import annotations

from datetime import date
from typing import Any

from finloop.db.uow import Database
from finloop.reports import service
from finloop.reports.service import Params
from tests.conftest import TenantHandle
from tests.credit.portfolio.conftest import book, parents

DISBURSED = date(2025, 12, 1)
MARCH = Params(date(2026, 3, 1), date(2026, 3, 31), months=2)


def rows(db: Database, tenant_id: str, name: str, params: Params = MARCH) -> list[dict[str, Any]]:
    with db.uow(read_only=True) as uow:
        return service.run(uow, tenant_id, name, params).rows


def small_book(db: Database, tenant_id: str) -> dict[str, str]:
    """Four loans of December (the product's rate is 18 % a year, the funding source's 6 %): 2,000,000 open, and
    200,000 of the 3,000,000 lent went 90+ days past due in its first month on book."""
    p = parents(db, tenant_id, applicants=1)
    return {
        "current": book(db, p, principal=1_200_000, disbursed_on=DISBURSED),
        "late": book(db, p, principal=600_000, disbursed_on=DISBURSED, state="overdue", dpd=45),
        "defaulted": book(db, p, principal=200_000, disbursed_on=DISBURSED, state="overdue", dpd=120,
                          snapshots=[{"month": "2026-01", "dpd": 95}]),
        "repaid": book(db, p, principal=1_000_000, disbursed_on=DISBURSED, state="paid_off",
                       closed_on=date(2026, 2, 1)),
    }


def test_loan_level_classes_days_past_due(db: Database, tenant: TenantHandle) -> None:
    loans = small_book(db, tenant.id)
    found = {r["loan_id"]: (r["dpd_class"], r["bucket"], r["principal_outstanding"])
             for r in rows(db, tenant.id, "loan-level")}
    assert found == {loans["current"]: ("current", "M0", 1_200_000), loans["late"]: ("31-60", "M2", 600_000),
                     loans["defaulted"]: ("90+", "M4", 200_000), loans["repaid"]: ("current", "M0", 0)}
    summary = {(r["figure"], r["bucket"]): r["value"] for r in rows(db, tenant.id, "credit-portfolio")}
    assert summary[("principal_outstanding", "")] == "2000000"
    assert summary[("bucket_principal_outstanding", "M4")] == "200000"


def test_the_forecast_projects_interest_and_losses_month_by_month(db: Database, tenant: TenantHandle) -> None:
    small_book(db, tenant.id)
    # Monthly rate 0.18 / 12 = 0.015; default rate 200,000 / (3,000,000 x 1 month on book) = 0.066667 (half up).
    forecast = rows(db, tenant.id, "revenue-forecast")
    assert [(r["month"], r["opening_amount"], r["interest_amount"], r["loss_amount"], r["closing_amount"])
            for r in forecast] == [(1, 2_000_000, 30_000, 133_334, 1_866_666),
                                   (2, 1_866_666, 28_000, 124_445, 1_742_221)]  # 27,999.99 and 124,445.02 rounded


def test_the_stress_test_moves_net_profit_and_capital(db: Database, tenant: TenantHandle) -> None:
    small_book(db, tenant.id)
    found = {r["scenario"]: r for r in rows(db, tenant.id, "stress-test")}
    base = found["base"]
    # Funding: 6 % a year on the opening book: 10,000 then 9,333.33.
    assert (base["interest_amount"], base["loss_amount"], base["funding_cost_amount"]) == (58_000, 257_779, 19_333)
    assert base["net_profit_amount"] == 58_000 - 257_779 - 19_333
    assert base["capital_after_amount"] == base["capital_amount"] + base["net_profit_amount"]
    # Twice the defaults: 266,668 in month 1, then 1,733,332 x 0.133334 = 231,112.09.
    assert found["defaults_doubled"]["loss_amount"] == 266_668 + 231_112
    # 8 % a year: 13,333.33 then 1,866,666 x 0.08 / 12 = 12,444.44.
    assert found["funding_cost_plus_2pts"]["funding_cost_amount"] == 13_333 + 12_444
    # Half as much again lent: 3,000,000 at 1.5 % = 45,000 in month 1.
    # then (3,000,000 - 200,001 lost) x 0.015 = 41,999.985, rounded to 42,000.
    assert found["approvals_plus_50pct"]["interest_amount"] == 45_000 + 42_000
