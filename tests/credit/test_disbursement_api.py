"""The disbursement API: funding sources configured (credit.configure) with bad input refused and nothing written;
a signed application disbursed (by application or ``POST /credit/loans``) with Idempotency-Key replay; a batch
with a failing item; the in-flight query; roles and tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.credit import applications
from finloop.credit.models import FundingSource, Loan
from finloop.db.uow import Database
from finloop.payouts import flows as payout_flows
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.test_disbursement import borrower, signed
from tests.credit.test_limits import product
from tests.credit.test_products_api import key, refused


@pytest.fixture
def bank(db: Database) -> Iterator[SandboxBank]:
    sandbox = SandboxBank(db.clock)
    with payout_flows.use_bank(sandbox):
        yield sandbox


def counts(db: Database) -> tuple[int, int]:
    with db.uow(read_only=True) as uow:
        return tuple(int(uow.session.scalar(select(func.count()).select_from(t)) or 0)  # type: ignore[return-value]
                     for t in (FundingSource, Loan))


def test_disbursement_api(client: TestClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                          bank: SandboxBank) -> None:
    h, o = tenant.headers, other_tenant.headers
    body = {"code": "bank_a", "kind": "partner_bank", "currency": "CNY", "annual_rate": "0.045",
            "quota_amount": 10_000_000}
    for change, status, code, param in (
            ({"annual_rate": 0.045}, 400, "invalid_rate", "annual_rate"),
            ({"annual_rate": "2"}, 400, "invalid_rate", "annual_rate"),
            ({"quota_amount": -5}, 400, "invalid_amount", "quota_amount"),
            ({"kind": "friend"}, 400, "invalid_choice", "kind"),
            ({"currency": "ZZZ"}, 400, "unknown_currency", "currency"),
            ({"colour": "red"}, 400, "unknown_field", "colour")):
        refused(client.post("/v1/credit/funding-sources", headers=h, json={**body, **change}), status, code, param)
    support = key(db, tenant.id, Role.SUPPORT)
    refused(client.post("/v1/credit/funding-sources", headers=support, json=body), 403, "role_not_allowed")
    assert counts(db) == (0, 0)

    created = client.post("/v1/credit/funding-sources", headers={**h, "Idempotency-Key": "fs-1"}, json=body)
    assert created.status_code == 201, created.text
    source = created.json()
    assert (source["annual_rate"], source["remaining_quota"], source["kind"]) == ("0.045", 10_000_000,
                                                                                  "partner_bank")
    again = client.post("/v1/credit/funding-sources", headers={**h, "Idempotency-Key": "fs-1"}, json=body)
    assert again.json()["id"] == source["id"] and counts(db) == (1, 0)
    refused(client.post("/v1/credit/funding-sources", headers=h, json=body), 409, "funding_source_exists")

    product(db, tenant.id, "consumer_installment")
    applicant_id, _ = borrower(db, tenant.id)
    application_id = signed(db, tenant.id, applicant_id)
    refused(client.post(f"/v1/credit/applications/{application_id}/disburse", headers=h,
                        json={"merchant_id": 5}), 400, "string_type", "merchant_id")
    refused(client.post("/v1/credit/loans", headers=h, json={"application_id": "lap_nope"}), 404,
            "application_not_found")
    assert counts(db) == (1, 0)

    headers = {**h, "Idempotency-Key": "loan-1"}
    made = client.post(f"/v1/credit/applications/{application_id}/disburse", headers=headers)
    assert made.status_code == 201, made.text
    loan = made.json()
    assert (loan["status"], loan["principal_amount"], loan["funding_source_id"]) == ("active", 500_000,
                                                                                    source["id"])
    assert loan["funding_choice"]["candidates"][0]["verdict"] == "chosen"
    replay = client.post(f"/v1/credit/applications/{application_id}/disburse", headers=headers)
    assert replay.json()["id"] == loan["id"] and bank.calls == 1
    assert client.get(f"/v1/credit/funding-sources/{source['id']}", headers=h).json()["used_amount"] == 500_000
    refused(client.post(f"/v1/credit/funding-sources/{source['id']}", headers=h, json={"quota_amount": 1}), 400,
            "quota_below_used", "quota_amount")
    cheaper = client.post(f"/v1/credit/funding-sources/{source['id']}", headers=h, json={"annual_rate": "0.04"})
    assert cheaper.status_code == 200 and cheaper.json()["annual_rate"] == "0.04"
    refused(client.post(f"/v1/credit/funding-sources/{source['id']}", headers=support, json={"active": False}),
            403, "role_not_allowed")
    listed = client.get("/v1/credit/loans?status=active", headers=h).json()
    assert [row["id"] for row in listed["data"]] == [loan["id"]]
    queried = client.post(f"/v1/credit/loans/{loan['id']}/query", headers=h)
    assert queried.status_code == 200 and queried.json()["status"] == "active" and bank.calls == 1

    with db.uow() as uow:  # a third open loan would otherwise go to review
        applications.set_policy(uow, tenant.id, {"own_open_review": 10, "own_open_decline": 10}, actor="test")
        uow.commit()
    # A batch: one paid, one declined by the bank, one that does not exist; each answered on its own.
    first, second = signed(db, tenant.id, applicant_id, amount=200_000), signed(db, tenant.id, applicant_id,
                                                                                 amount=300_000)
    bank.queue("success", "fail")
    batch = client.post("/v1/credit/disbursements/batch", headers=h, json={"items": [
        {"application_id": first}, {"application_id": second}, {"application_id": "lap_nope"}]})
    assert batch.status_code == 200, batch.text
    items = batch.json()["items"]
    assert [(i["status"], i["error"] and i["error"]["code"]) for i in items] == [
        ("active", None), ("failed", None), (None, "application_not_found")]
    refused(client.post("/v1/credit/disbursements/batch", headers=h, json={"items": []}), 400, "too_few_items",
            "items")

    assert client.get("/v1/credit/disbursement-policy", headers=h).json()["automatic"] is False
    refused(client.put("/v1/credit/disbursement-policy", headers=h, json={"automatic": "sometimes"}), 400,
            "bool_parsing", "automatic")
    refused(client.put("/v1/credit/disbursement-policy", headers=support, json={"automatic": True}), 403,
            "role_not_allowed")
    turned = client.put("/v1/credit/disbursement-policy", headers=h, json={"automatic": True})
    assert turned.status_code == 200 and turned.json()["automatic"] is True
    assert client.get("/v1/credit/disbursement-policy", headers=o).json()["automatic"] is False

    # Another tenant sees none of it; an auditor cannot disburse.
    refused(client.get(f"/v1/credit/loans/{loan['id']}", headers=o), 404, "loan_not_found")
    refused(client.get(f"/v1/credit/funding-sources/{source['id']}", headers=o), 404, "funding_source_not_found")
    assert client.get("/v1/credit/loans", headers=o).json()["data"] == []
    refused(client.post("/v1/credit/loans", headers=o, json={"application_id": application_id}), 404,
            "application_not_found")
    auditor = key(db, tenant.id, Role.AUDITOR)
    refused(client.post("/v1/credit/loans", headers=auditor, json={"application_id": first}), 403,
            "role_not_allowed")
    assert client.get("/v1/credit/loans", headers=auditor).status_code == 200
