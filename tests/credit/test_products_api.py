"""The products and schedule-preview API: create, list, get, revise, retire, preview; bad input is a 4xx naming the
field that writes nothing; Idempotency-Key replays; roles, authentication and tenant isolation."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.audit.models import AuditEvent
from finloop.credit.models import LoanProduct
from finloop.credit.products import EXAMPLES
from finloop.db.uow import Database
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle


def key(db: Database, tenant_id: str, role: Role) -> dict[str, str]:
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant_id, name=role.value, role=role, actor="test")
        uow.commit()
    return {"Authorization": f"Bearer {secret}"}


def counts(db: Database) -> tuple[int, int]:
    with db.uow(read_only=True) as uow:
        return (int(uow.session.scalar(select(func.count()).select_from(LoanProduct)) or 0),
                int(uow.session.scalar(select(func.count()).select_from(AuditEvent)) or 0))


def refused(response: Any, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, response.text
    if param is not None:
        assert error["param"] == param, response.text


def test_products_api(client: TestClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    h = tenant.headers
    body = dict(EXAMPLES["bnpl_3"])
    before = counts(db)
    for change, status, code, param in (
            ({"rate": 0.12}, 400, "invalid_rate", "rate"),
            ({"rate": "twelve"}, 400, "invalid_rate", "rate"),
            ({"subsidy_payer": None}, 400, "subsidy_required", "subsidy_payer"),
            ({"merchant_fee_rate": None}, 400, "merchant_fee_rate_required", "merchant_fee_rate"),
            ({"grace_days": -1}, 400, "invalid_grace_days", "grace_days"),
            ({"terms": [3, 3]}, 400, "invalid_term", "terms"),
            ({"terms": [0]}, 400, "greater_than_equal", "terms[0]"),
            ({"method": "revolving"}, 400, "method_not_allowed", "method"),
            ({"kind": "loan"}, 400, "invalid_choice", "kind"),
            ({"currency": "XXZ"}, 400, "unknown_currency", "currency"),
            ({"max_principal_amount": "100"}, 400, "invalid_amount", "max_principal_amount"),
            ({"allocation_order": ["fees", "principal"]}, 400, "invalid_allocation_order", "allocation_order"),
            ({"name": "a\x00b"}, 400, "invalid_text", "name"),
            ({"extra": 1}, 400, "unknown_field", "extra")):
        refused(client.post("/v1/credit/products", headers=h, json={**body, **change}), status, code, param)
    missing = {k: v for k, v in body.items() if k != "rate"}
    refused(client.post("/v1/credit/products", headers=h, json=missing), 400, "invalid_rate", "rate")
    assert counts(db) == before

    created = client.post("/v1/credit/products", headers={**h, "Idempotency-Key": "p1"}, json=body)
    assert created.status_code == 201, created.text
    product = created.json()
    assert (product["object"], product["code"], product["version"], product["status"]) == (
        "loan_product", "bnpl_3", 1, "active")
    assert (product["rate"], product["customer_rate"], product["merchant_fee_rate"]) == ("0.12", "0", "0.03")
    assert product["rates"] == [{"term": 3, "principal_amount": 1_000_000, "total_repaid_amount": 1_000_000,
                                 "apr": "0.000000", "effective_annual_rate": "0.000000"}]
    replay = client.post("/v1/credit/products", headers={**h, "Idempotency-Key": "p1"}, json=body)
    assert replay.json() == product and counts(db)[0] == 1
    refused(client.post("/v1/credit/products", headers=h, json=body), 409, "product_code_exists", "code")
    pid = product["id"]
    assert client.get(f"/v1/credit/products/{pid}", headers=h).json() == product

    # Revise: a new version; the old one is superseded and keeps its terms.
    refused(client.post(f"/v1/credit/products/{pid}/revise", headers=h, json={"kind": "cash"}), 400,
            "immutable_field", "kind")
    refused(client.post(f"/v1/credit/products/{pid}/revise", headers=h, json={"grace_days": 91}), 400,
            "invalid_grace_days", "grace_days")
    revised = client.post(f"/v1/credit/products/{pid}/revise", headers={**h, "Idempotency-Key": "r1"},
                          json={"merchant_fee_rate": "0.025", "terms": [3, 6]})
    assert revised.status_code == 201, revised.text
    v2 = revised.json()
    assert (v2["version"], v2["merchant_fee_rate"], v2["terms"]) == (2, "0.025", [3, 6])
    old = client.get(f"/v1/credit/products/{pid}", headers=h).json()
    assert (old["status"], old["merchant_fee_rate"]) == ("superseded", "0.03")
    refused(client.post(f"/v1/credit/products/{pid}/revise", headers=h, json={"grace_days": 1}), 409,
            "product_not_active")
    listed = client.get("/v1/credit/products", headers=h, params={"code": "bnpl_3"}).json()["data"]
    assert [p["version"] for p in listed] == [1, 2]
    assert [p["id"] for p in client.get("/v1/credit/products", headers=h,
                                        params={"status": "active"}).json()["data"]] == [v2["id"]]

    # Preview by the product: the customer pays no interest, the merchant pays 2.5%.
    previewed = client.post("/v1/credit/schedules/preview", headers={**h, "Idempotency-Key": "s1"},
                            json={"product_id": v2["id"], "principal_amount": 300_000, "term": 6,
                                  "start_date": "2026-01-31"})
    assert previewed.status_code == 200, previewed.text
    shown = previewed.json()
    assert [i["due_date"] for i in shown["installments"]][:2] == ["2026-02-28", "2026-03-31"]
    assert [i["total_amount"] for i in shown["installments"]] == [50_000] * 6 and shown["apr"] == "0.000000"
    assert shown["installments"][0]["decimal"] == {"principal": "500.00", "interest": "0.00", "fees": "0.00",
                                                   "total": "500.00", "balance": "2500.00"}
    assert shown["totals"]["decimal"]["repaid"] == "3000.00"
    assert shown["subsidy"] == {"payer": "merchant", "amount": 7_500, "merchant_fee_rate": "0.025",
                                "interest_covered": 10_500}
    for extra, status, code, param in (
            ({"term": 12}, 400, "term_not_offered", "term"),
            ({"principal_amount": 5_000}, 400, "principal_out_of_range", "principal_amount"),
            ({"annual_rate": "0.1"}, 400, "conflicting_field", "annual_rate"),
            ({"currency": "USD"}, 400, "currency_mismatch", "currency"),
            ({"product_id": pid}, 409, "product_not_active", "product_id"),
            ({"product_id": "lpr_nope"}, 404, "product_not_found", "product_id")):
        refused(client.post("/v1/credit/schedules/preview", headers=h,
                            json={"product_id": v2["id"], "principal_amount": 300_000, "term": 6, **extra}),
                status, code, param)

    # Retire.
    retired = client.post(f"/v1/credit/products/{v2['id']}/retire", headers={**h, "Idempotency-Key": "x1"})
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    refused(client.post(f"/v1/credit/products/{v2['id']}/retire", headers=h), 409, "product_not_active")

    # Roles, authentication, tenants.
    support, auditor = key(db, tenant.id, Role.SUPPORT), key(db, tenant.id, Role.AUDITOR)
    refused(client.post("/v1/credit/products", headers=support, json={**body, "code": "other"}), 403,
            "role_not_allowed")
    refused(client.post(f"/v1/credit/products/{pid}/revise", headers=support, json={}), 403, "role_not_allowed")
    assert client.get(f"/v1/credit/products/{pid}", headers=auditor).status_code == 200
    refused(client.post("/v1/credit/schedules/preview", headers=auditor,
                        json={"principal_amount": 100, "term": 1, "currency": "CNY", "method": "flat",
                              "annual_rate": "0.1"}), 403, "role_not_allowed")
    assert client.get("/v1/credit/products").status_code == 401
    assert client.post("/v1/credit/schedules/preview", json={}).status_code == 401
    refused(client.get(f"/v1/credit/products/{pid}", headers=other_tenant.headers), 404, "product_not_found")
    refused(client.post(f"/v1/credit/products/{v2['id']}/revise", headers=other_tenant.headers, json={}), 404,
            "product_not_found")
    assert client.get("/v1/credit/products", headers=other_tenant.headers).json()["data"] == []
    refused(client.post("/v1/credit/schedules/preview", headers=other_tenant.headers,
                        json={"product_id": v2["id"], "principal_amount": 300_000, "term": 6}), 404,
            "product_not_found")


def test_schedule_preview_from_stated_terms(client: TestClient, db: Database, tenant: TenantHandle) -> None:
    h = tenant.headers
    body = {"principal_amount": 1_000_000, "currency": "CNY", "annual_rate": "0.18", "term": 12, "method": "flat",
            "start_date": "2026-01-01"}
    response = client.post("/v1/credit/schedules/preview", headers={**h, "Idempotency-Key": "f1"}, json=body)
    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["object"], shown["product_id"], shown["subsidy"]) == ("credit_schedule", None, None)
    assert {k: v for k, v in shown["totals"].items() if k != "decimal"} == {
        "principal_amount": 1_000_000, "interest_amount": 180_000, "fee_amount": 0, "upfront_fee_amount": 0,
        "repaid_amount": 1_180_000}
    assert (shown["totals"]["decimal"]["repaid"], shown["installments"][-1]["decimal"]["total"]) == ("11800.00",
                                                                                                    "983.37")
    assert (shown["apr"], shown["effective_annual_rate"]) == ("0.317163", "0.367582")
    assert shown["installments"][0] == {"number": 1, "due_date": "2026-02-01", "days": 31, "principal_amount": 83_333,
                                        "interest_amount": 15_000, "fee_amount": 0, "total_amount": 98_333,
                                        "balance_amount": 916_667,
                                        "decimal": {"principal": "833.33", "interest": "150.00", "fees": "0.00",
                                                    "total": "983.33", "balance": "9166.67"}}
    assert client.post("/v1/credit/schedules/preview", headers={**h, "Idempotency-Key": "f1"},
                       json=body).json() == shown
    daily = client.post("/v1/credit/schedules/preview", headers=h, json={
        "principal_amount": 100_000, "currency": "CNY", "daily_rate": "0.0005", "term": 30, "term_unit": "day",
        "method": "interest_only", "start_date": "2026-03-02"}).json()
    assert (daily["installments"][0]["total_amount"], daily["apr"], daily["day_count"]) == (101_500, "0.182500",
                                                                                           "actual_365")
    today = client.post("/v1/credit/schedules/preview", headers=h,
                        json={**{k: v for k, v in body.items() if k != "start_date"}, "day_count": "30_360"}).json()
    assert today["start_date"] == "2026-03-02"  # today's business date
    for change, code, param in (
            ({"annual_rate": 0.18}, "invalid_rate", "annual_rate"),
            ({"annual_rate": "10.5"}, "invalid_rate", "annual_rate"),
            ({"annual_rate": None}, "missing_field", "annual_rate"),
            ({"daily_rate": "0.001"}, "missing_field", "annual_rate"),
            ({"method": "balloon"}, "invalid_choice", "method"),
            ({"method": None}, "missing_field", "method"),
            ({"currency": None}, "missing_field", "currency"),
            ({"day_count": "act/360"}, "invalid_choice", "day_count"),
            ({"term": 0}, "greater_than_equal", "term"),
            ({"term": 361}, "invalid_term", "term"),
            ({"term": 30, "term_unit": "day"}, "method_not_allowed", "method"),
            ({"principal_amount": 100.5}, "invalid_amount", "principal_amount"),
            ({"principal_amount": 0}, "invalid_amount", "principal_amount"),
            ({"upfront_fee_amount": 1_000_000}, "fee_exceeds_principal", "principal_amount"),
            ({"start_date": "1999-12-31"}, "greater_than_equal", "start_date"),
            ({"start_date": "2026-02-30"}, "invalid_date", "start_date"),
            ({"rounding": "nearest"}, "invalid_choice", "rounding"),
            ({"color": "red"}, "unknown_field", "color")):
        refused(client.post("/v1/credit/schedules/preview", headers=h, json={**body, **change}), 400, code, param)
    assert counts(db)[0] == 0
