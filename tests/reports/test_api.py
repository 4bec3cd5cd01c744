"""The reports API: every report answers on an empty book, is tenant-scoped, rejects bad parameters with a stable
code and names them, and gives CSV with its header."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from finloop.reports.service import REPORTS
from tests.conftest import TenantHandle
from tests.reports.builders import FROM, TO, ledger_day, pay

WINDOW = {"from": FROM, "to": TO}


def test_every_report_answers_with_its_columns_on_an_empty_book(client: TestClient, tenant: TenantHandle) -> None:
    listed = client.get("/v1/reports", headers=tenant.headers)
    assert listed.status_code == 200
    assert [r["name"] for r in listed.json()["data"]] == [r.name for r in REPORTS]
    for report in REPORTS:
        answer = client.get(f"/v1/reports/{report.name}", headers=tenant.headers, params=WINDOW)
        assert answer.status_code == 200, (report.name, answer.text)
        body = answer.json()
        assert body["name"] == report.name
        assert body["params"]["from"] == FROM and body["params"]["to"] == TO
        assert [c["name"] for c in body["columns"]] == [c.name for c in report.columns]


def test_reports_need_an_api_key(client: TestClient) -> None:
    assert client.get("/v1/reports/large-transactions").status_code == 401


def test_the_openapi_document_lists_each_report(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for report in REPORTS:
        assert f"/v1/reports/{report.name}" in paths


@pytest.mark.parametrize(("params", "code", "param"), [
    ({"from": "2026-13-01"}, "invalid_date", "from"),
    ({"to": "yesterday"}, "invalid_date", "to"),
    ({"from": "2026-03-10", "to": "2026-03-01"}, "invalid_range", "from"),
    ({"from": "2024-01-01", "to": "2026-03-01"}, "invalid_range", "from"),
    ({"currency": "XXQ"}, "invalid_currency", "currency"),
    ({"threshold_amount": "ten"}, "invalid_threshold", "threshold_amount"),
    ({"threshold_amount": "0"}, "invalid_threshold", "threshold_amount"),
])
def test_bad_parameters_are_400_with_a_code_and_the_parameter(client: TestClient, tenant: TenantHandle,
                                                              params: dict[str, str], code: str, param: str) -> None:
    answer = client.get("/v1/reports/large-transactions", headers=tenant.headers, params=params)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == (code, param)


def test_an_unknown_format_is_refused(client: TestClient, tenant: TenantHandle) -> None:
    answer = client.get("/v1/reports/refund-rate", headers=tenant.headers, params={"format": "xml"})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "format"


def test_months_out_of_range_is_refused(client: TestClient, tenant: TenantHandle) -> None:
    answer = client.get("/v1/reports/revenue-forecast", headers=tenant.headers, params={"months": "61"})
    assert answer.status_code == 400
    assert (answer.json()["error"]["code"], answer.json()["error"]["param"]) == ("invalid_months", "months")


def test_another_tenant_sees_nothing_of_yours(db, client: TestClient, tenant: TenantHandle,  # type: ignore[no-untyped-def]
                                               other_tenant: TenantHandle) -> None:
    pay(db, tenant.id, amount=9_000_000, channel="alipay")
    ledger_day(db, tenant.id)
    for name in ("large-transactions", "financial-income-statement", "channel-statements", "payment-success"):
        mine = client.get(f"/v1/reports/{name}", headers=tenant.headers, params=WINDOW).json()["rows"]
        theirs = client.get(f"/v1/reports/{name}", headers=other_tenant.headers, params=WINDOW).json()["rows"]
        assert mine and theirs == [], name


def test_csv_has_the_header_and_the_rows(db, client: TestClient, tenant: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    first = pay(db, tenant.id, amount=6_000_000, channel="alipay")
    second = pay(db, tenant.id, amount=7_500_000, channel="wechat")
    pay(db, tenant.id, amount=100, channel="wechat")
    answer = client.get("/v1/reports/large-transactions", headers=tenant.headers,
                        params={**WINDOW, "format": "csv", "threshold_amount": "5000000"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["payment_id", "created_at", "merchant_id", "customer_id", "channel", "method", "amount",
                       "currency", "status"]
    assert [(r[0], r[6]) for r in rows[1:]] == [(first, "6000000"), (second, "7500000")]
