"""The portfolio API: every report needs a key, answers JSON and CSV (``?format=csv`` and ``.csv``, text/csv),
sees only the caller's tenant, and refuses bad parameters with a 4xx naming the code and the parameter; the
operating cost policy is set by a configuring role only, with an Idempotency-Key replay."""

from __future__ import annotations

import csv
import io
from datetime import date

from fastapi.testclient import TestClient

from finloop.db.uow import Database
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.portfolio.conftest import book, parents
from tests.credit.test_api import key

BASE = "/v1/credit/portfolio"


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_reports_need_a_key_and_answer_json_and_csv(client: TestClient, db: Database, tenant: TenantHandle) -> None:
    p = parents(db, tenant.id, applicants=1)
    loan = book(db, p, principal=700_000, disbursed_on=date(2026, 1, 10), state="overdue", dpd=35, snapshots=[
        {"month": "2026-01", "dpd": 0}, {"month": "2026-02", "dpd": 19}])
    h = tenant.headers
    assert client.get(f"{BASE}/summary").json()["error"]["code"] == "missing_api_key"
    assert client.get(f"{BASE}/summary", headers={"Authorization": "Bearer fl_sk_nope"}).status_code == 401

    summary = client.get(f"{BASE}/summary", headers=h, params={"as_of": "2026-03-01"})
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["object"] == "credit_portfolio_summary" and body["currencies"][0]["overdue_rate"] == "1.0000"
    for url in (f"{BASE}/summary?format=csv&as_of=2026-03-01", f"{BASE}/summary.csv?as_of=2026-03-01"):
        answer = client.get(url, headers=h)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = _rows(answer.text)
        assert {"currency": "CNY", "figure": "bucket_principal_outstanding", "bucket": "M2",
                "value": "700000"} in rows

    vintage = client.get(f"{BASE}/vintage", headers=h, params={"threshold_dpd": 15}).json()
    assert [pt["rate"] for pt in vintage["curves"][0]["points"]] == ["0.0000", "1.0000"]
    vintage_csv = client.get(f"{BASE}/vintage.csv", headers=h, params={"threshold_dpd": 15})
    assert vintage_csv.headers["content-type"].startswith("text/csv")
    assert [r["rate"] for r in _rows(vintage_csv.text)] == ["0.0000", "1.0000"]

    rolls = client.get(f"{BASE}/roll-rates", headers=h, params={"month_from": "2026-01", "month_to": "2026-02"})
    assert rolls.status_code == 200 and rolls.json()["matrices"][0]["rows"][0]["counts"]["M1"] == 1
    rolls_csv = client.get(f"{BASE}/roll-rates", headers=h,
                           params={"month_from": "2026-01", "month_to": "2026-02", "format": "csv"})
    assert {"currency": "CNY", "from_bucket": "M0", "to": "M1", "loans": "1", "principal": "700000",
            "count_share": "1.000000", "principal_share": "1.000000"} in _rows(rolls_csv.text)

    pnl = client.get(f"{BASE}/pnl", headers=h).json()
    assert pnl["loans"][0]["loan_id"] == loan and pnl["reconciliation"] is not None and not pnl["has_more"]
    pnl_csv = _rows(client.get(f"{BASE}/pnl.csv", headers=h).text)
    assert [r["level"] for r in pnl_csv] == ["loan", "portfolio"]

    unit = client.get(f"{BASE}/unit-economics", headers=h).json()
    assert (unit["bullet"]["net_profit"], unit["amortising"]["cost_of_funds"]) == (90_000, 32_500)
    unit_csv = _rows(client.get(f"{BASE}/unit-economics?format=csv", headers=h).text)
    assert [(r["funding"], r["cost_of_funds"], r["net_profit"]) for r in unit_csv] == [
        ("bullet", "60000", "90000"), ("amortising", "32500", "117500")]


def test_another_tenant_sees_none_of_the_book(client: TestClient, db: Database, tenant: TenantHandle,
                                              other_tenant: TenantHandle) -> None:
    p = parents(db, tenant.id, applicants=1)
    loan = book(db, p, disbursed_on=date(2026, 1, 10), snapshots=[{"month": "2026-01", "dpd": 0}])
    h = other_tenant.headers
    assert client.get(f"{BASE}/summary", headers=h).json()["currencies"] == []
    assert client.get(f"{BASE}/vintage", headers=h).json()["curves"] == []
    missing = client.get(f"{BASE}/pnl", headers=h, params={"loan_id": loan})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "loan_not_found"
    unknown = client.get(f"{BASE}/summary", headers=h, params={"product_code": p.product_code})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "product_code"


def test_bad_parameters_are_4xx_with_code_and_param(client: TestClient, tenant: TenantHandle) -> None:
    h = tenant.headers
    for url, params, code, param in (
            ("roll-rates", {"month_from": "2026-13", "month_to": "2026-02"}, "invalid_format", "month_from"),
            ("roll-rates", {"month_to": "2026-02"}, "missing_field", "month_from"),
            ("roll-rates", {"month_from": "2026-03", "month_to": "2026-02"}, "invalid_range", "month_from"),
            ("vintage", {"threshold_dpd": 0}, "greater_than_equal", "threshold_dpd"),
            ("vintage", {"basis": "amount"}, "invalid_choice", "basis"),
            ("vintage", {"from_month": "2026-05", "to_month": "2026-01"}, "invalid_range", "from_month"),
            ("summary", {"as_of": "yesterday"}, "invalid_date", "as_of"),
            ("summary", {"as_of": "2026-01-01", "since": "2026-02-01"}, "invalid_range", "since"),
            ("summary", {"format": "xml"}, "invalid_choice", "format"),
            ("pnl", {"month": "2026-02", "loan_id": "loan_x"}, "invalid_combination", "month"),
            ("unit-economics", {"funding_rate": "six"}, "invalid_rate", "funding_rate"),
            ("unit-economics", {"term_months": 0}, "greater_than_equal", "term_months")):
        answer = client.get(f"{BASE}/{url}", headers=h, params=params)
        assert answer.status_code == 400, (url, params, answer.text)
        assert (answer.json()["error"]["code"], answer.json()["error"]["param"]) == (code, param), (url, params)


def test_the_operating_cost_policy_needs_a_configuring_role(client: TestClient, db: Database,
                                                            tenant: TenantHandle) -> None:
    url = f"{BASE}/operating-cost-policy"
    assert client.get(url, headers=tenant.headers).json() == {
        "object": "credit_operating_cost_policy", "policy": {"method": "principal_rate", "annual_rate": "0.01"},
        "is_default": True}
    body = {"method": "per_loan_month", "amounts": {"CNY": 800}}
    finance = key(db, tenant.id, Role.FINANCE)
    denied = client.put(url, headers=finance, json=body)
    assert denied.status_code == 403
    assert client.get(url, headers=finance).json()["is_default"] is True
    headers = {**tenant.headers, "Idempotency-Key": "ocp-1"}
    done = client.put(url, headers=headers, json=body)
    assert done.status_code == 200 and done.json()["policy"] == body and done.json()["is_default"] is False
    again = client.put(url, headers=headers, json=body)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == done.json()
    bad = client.put(url, headers=tenant.headers, json={"method": "per_loan_month", "amounts": {"CNY": -5}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "amounts.CNY"
    unknown = client.put(url, headers=tenant.headers, json={"method": "principal_rate", "rate": "0.1"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_field"
