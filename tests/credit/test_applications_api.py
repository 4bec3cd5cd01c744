"""The loan-application API: submit (answered with the decision), get, list with filters and cursor, cancel, the
contract and its acceptance, the figures and the review policy; bad input is a 4xx and writes nothing;
Idempotency-Key replays; roles, authentication and tenant isolation."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.credit.models import CreditScore, LoanApplication, LoanContract
from finloop.db.uow import Database
from finloop.risk.models import RiskDecision
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.test_limits import customer_line, product, rated
from tests.credit.test_products_api import key, refused


def counts(db: Database) -> tuple[int, ...]:
    with db.uow(read_only=True) as uow:
        return tuple(int(uow.session.scalar(select(func.count()).select_from(t)) or 0)
                     for t in (LoanApplication, LoanContract, RiskDecision, CreditScore))


def test_loan_applications_api(client: TestClient, db: Database, tenant: TenantHandle,
                               other_tenant: TenantHandle) -> None:
    h = tenant.headers
    offered = product(db, tenant.id, "consumer_installment")
    applicant_id, _ = customer_line(db, tenant.id)
    body = {"applicant_id": applicant_id, "product_code": "consumer_installment", "principal_amount": 500_000,
            "term": 12, "purpose": "purchase", "device_id": "dev-1", "ip": "203.0.113.7"}

    before = counts(db)
    for change, status, code, param in (
            ({"principal_amount": 50}, 400, "principal_out_of_range", "principal_amount"),
            ({"principal_amount": 5_000_001}, 400, "principal_out_of_range", "principal_amount"),
            ({"principal_amount": "500000"}, 400, "invalid_amount", "principal_amount"),
            ({"principal_amount": 10.5}, 400, "invalid_amount", "principal_amount"),
            ({"term": 7}, 400, "term_not_offered", "term"),
            ({"term": "12"}, 400, "int_type", "term"),
            ({"purpose": "gambling"}, 400, "invalid_choice", "purpose"),
            ({"ip": "999.1.1.1"}, 400, "invalid_ip", "ip"),
            ({"colour": "red"}, 400, "unknown_field", "colour"),
            ({"product_code": "nope"}, 404, "product_not_found", None),
            ({"product_id": offered.id}, 400, "invalid_product", "product_id"),
            ({"applicant_id": "apl_nobody"}, 404, "applicant_not_found", "applicant_id")):
        refused(client.post("/v1/credit/applications", headers=h, json={**body, **change}), status, code, param)
    missing = {k: v for k, v in body.items() if k != "product_code"}
    refused(client.post("/v1/credit/applications", headers=h, json=missing), 400, "invalid_product", "product_id")
    assert counts(db) == before

    # Submitted and decided at once; the Idempotency-Key replays the same answer.
    headers = {**h, "Idempotency-Key": "app-1"}
    first = client.post("/v1/credit/applications", headers=headers, json=body)
    assert first.status_code == 201, first.text
    app = first.json()
    assert (app["status"], app["auto_outcome"], app["final_outcome"], app["reasons"]) == (
        "approved", "approve", "approve", [])
    assert app["reserved_amount"] == 500_000 and app["decision_latency_us"] > 0 and app["rating"] == "B"
    again = client.post("/v1/credit/applications", headers=headers, json=body)
    assert again.json()["id"] == app["id"] and counts(db)[0] == 1
    assert client.get(f"/v1/credit/applications/{app['id']}", headers=h).json()["status"] == "approved"

    # A decline carries reasons the applicant can be shown.
    rated(db, tenant.id, applicant_id, "reject", score=300)
    declined = client.post("/v1/credit/applications", headers=h, json=body).json()
    assert declined["status"] == "declined" and declined["reasons"][0]["code"] == "rating_reject"
    assert declined["reasons"][0]["message"]

    # List with filters and a cursor.
    listed = client.get("/v1/credit/applications", headers=h, params={"status": "declined"}).json()
    assert [a["id"] for a in listed["data"]] == [declined["id"]]
    page1 = client.get("/v1/credit/applications", headers=h, params={"limit": 1}).json()
    assert page1["has_more"] is True
    page2 = client.get("/v1/credit/applications", headers=h,
                       params={"limit": 1, "starting_after": page1["data"][0]["id"]}).json()
    assert {page1["data"][0]["id"], page2["data"][0]["id"]} == {app["id"], declined["id"]}
    refused(client.get("/v1/credit/applications", headers=h, params={"status": "lost"}), 400, "invalid_choice")

    # The contract: text and hash; accepting needs the same hash; once.
    contract = client.get(f"/v1/credit/applications/{app['id']}/contract", headers=h).json()
    assert contract["status"] == "issued" and len(contract["sha256"]) == 64 and "APR" in contract["document"]
    refused(client.get(f"/v1/credit/applications/{declined['id']}/contract", headers=h), 409, "contract_not_issued")
    accept = f"/v1/credit/applications/{app['id']}/contract/accept"
    for bad, code in (({"sha256": "xyz"}, "too_short"), ({"sha256": "G" * 64}, "invalid_format"),
                      ({"channel": "fax"}, "invalid_choice"),
                      ({"ip": "nope"}, "invalid_ip")):
        refused(client.post(accept, headers=h, json={"sha256": contract["sha256"], "channel": "app", **bad}), 400,
                code)
    refused(client.post(accept, headers=h, json={"sha256": "0" * 64, "channel": "app"}), 409,
            "contract_hash_mismatch", "sha256")
    signed = client.post(accept, headers={**h, "Idempotency-Key": "sign-1"},
                         json={"sha256": contract["sha256"], "channel": "app", "ip": "203.0.113.7"})
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "signed" and signed.json()["accepted_sha256"] == contract["sha256"]
    refused(client.post(accept, headers=h, json={"sha256": contract["sha256"], "channel": "app"}), 409,
            "contract_already_signed")
    assert client.get(f"/v1/credit/applications/{app['id']}", headers=h).json()["status"] == "contract_signed"
    refused(client.post(f"/v1/credit/applications/{app['id']}/cancel", headers=h), 409,
            "application_state_conflict")

    # Figures.
    figures = client.get("/v1/credit/applications/figures", headers=h).json()
    assert (figures["applications"], figures["approved"], figures["approval_rate"],
            figures["automatic_approval_rate"]) == (2, 1, "0.5000", "0.5000")
    assert figures["latency_p50_us"] is not None
    refused(client.get("/v1/credit/applications/figures", headers=h, params={"since": "yesterday"}), 400,
            "invalid_datetime")

    # The review policy.
    assert client.get("/v1/credit/application-policy", headers=h).json()["updated_by"] == "default"
    refused(client.put("/v1/credit/application-policy", headers=h, json={"own_open_review": 9, "own_open_decline": 2}),
            400, "invalid_application_policy", "own_open_review")
    refused(client.put("/v1/credit/application-policy", headers=h, json={"expiry_days": "3"}), 400, "int_type")
    put = client.put("/v1/credit/application-policy", headers=h, json={"expiry_days": 7, "review_ratings": ["C"]})
    assert put.status_code == 200 and put.json()["policy"]["review_ratings"] == ["C"]

    # Roles: the auditor reads but cannot apply; support cannot change the policy.
    auditor, support = key(db, tenant.id, Role.AUDITOR), key(db, tenant.id, Role.SUPPORT)
    refused(client.post("/v1/credit/applications", headers=auditor, json=body), 403, "role_not_allowed")
    refused(client.put("/v1/credit/application-policy", headers=support, json={"expiry_days": 3}), 403,
            "role_not_allowed")
    assert client.get(f"/v1/credit/applications/{app['id']}", headers=auditor).status_code == 200
    assert client.get("/v1/credit/applications").status_code == 401

    # Tenant isolation.
    o = other_tenant.headers
    refused(client.get(f"/v1/credit/applications/{app['id']}", headers=o), 404, "application_not_found")
    refused(client.get(f"/v1/credit/applications/{app['id']}/contract", headers=o), 404, "application_not_found")
    refused(client.post(f"/v1/credit/applications/{app['id']}/cancel", headers=o), 404, "application_not_found")
    assert client.get("/v1/credit/applications", headers=o).json()["data"] == []
    assert client.get("/v1/credit/applications/figures", headers=o).json()["applications"] == 0
    refused(client.post("/v1/credit/applications", headers=o, json=body), 404, "applicant_not_found")
