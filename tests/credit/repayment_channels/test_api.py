"""The repayment channels API under /v1/credit: repayment payments, mandates, direct debits and the policy —
authentication, roles, tenant isolation, 4xx naming the field and writing nothing, Idempotency-Key replays."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.credit.repayment_channels import flows
from finloop.credit.repayment_channels.endpoints import router
from finloop.credit.repayment_channels.models import DebitMandate, RepaymentPayment
from finloop.db.uow import Database
from finloop.payments.models import Payment
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.repayment_channels.conftest import DECLINED, Borrower, card, first_due_on
from tests.credit.servicing.conftest import at


@pytest.fixture
def api(app: FastAPI, client: TestClient) -> TestClient:
    # Until the lead mounts the router in finloop.api.router, the test mounts it itself.
    if not any(getattr(route, "path", "") == "/v1/credit/mandates" for route in app.routes):
        app.include_router(router, prefix="/v1")
    return client


def key(db: Database, tenant_id: str, role: Role) -> dict[str, str]:
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant_id, name=role.value, role=role, actor="test")
        uow.commit()
    return {"Authorization": f"Bearer {secret}"}


def refused(response: Any, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, response.text
    if param is not None:
        assert error["param"] == param, response.text


def counts(db: Database) -> tuple[int, int, int]:
    with db.uow(read_only=True) as uow:
        return tuple(int(uow.session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[return-value]
                     for model in (Payment, RepaymentPayment, DebitMandate))


def test_repayment_payments_api(api: TestClient, db: Database, borrower: Borrower, tenant: TenantHandle,
                                other_tenant: TenantHandle) -> None:
    path = f"/v1/credit/loans/{borrower.loan_id}/repayment-payments"
    body = {"amount": 25_000, "method": "card", "card_id": card(db, borrower), "confirm": True}
    before = counts(db)
    refused(api.post(path, json=body), 401, "missing_api_key")
    refused(api.post(path, headers=key(db, tenant.id, Role.RISK_ANALYST), json=body), 403, "role_not_allowed")
    refused(api.post(path, headers=other_tenant.headers, json=body), 404, "loan_not_found", "loan_id")
    for change, status, code, param in (
            ({"amount": 0}, 400, "invalid_amount", "amount"),
            ({"amount": "250.00"}, 400, "invalid_amount", "amount"),
            ({"method": "wallet_balance"}, 400, "invalid_choice", "method"),
            ({"method": None}, 400, "parameter_missing", "method"),
            ({"card_id": None}, 400, "parameter_missing", "card_id"),
            ({"confirm": False, "amount": None}, 409, "nothing_due", "amount")):
        refused(api.post(path, headers=tenant.headers, json={**body, **change}), status, code, param)
    assert counts(db) == before

    headers = {**tenant.headers, "Idempotency-Key": "repay-1"}
    created = api.post(path, headers=headers, json=body)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert (answer["status"], answer["payment_status"], answer["source"], answer["amount"]) == (
        "applied", "succeeded", "payment", 25_000)
    assert answer["repayment_id"] is not None
    replay = api.post(path, headers=headers, json=body)
    assert replay.status_code == 201 and replay.json() == answer
    assert counts(db)[0] == before[0] + 1

    got = api.get(f"/v1/credit/repayment-payments/{answer['payment_id']}", headers=tenant.headers)
    assert got.status_code == 200 and got.json() == answer
    listed = api.get("/v1/credit/repayment-payments", headers=tenant.headers, params={"loan_id": borrower.loan_id})
    assert [p["payment_id"] for p in listed.json()["data"]] == [answer["payment_id"]]
    refused(api.get(f"/v1/credit/repayment-payments/{answer['payment_id']}", headers=other_tenant.headers), 404,
            "repayment_payment_not_found")
    assert api.get("/v1/credit/repayment-payments", headers=other_tenant.headers).json()["data"] == []
    refused(api.get("/v1/credit/repayment-payments"), 401, "missing_api_key")

    # Without confirm: the payment to complete through the payments API, its money applied once it succeeds.
    pending = api.post(path, headers=tenant.headers, json={"amount": 1_000})
    assert pending.status_code == 201, pending.text
    assert (pending.json()["status"], pending.json()["payment_status"]) == ("pending", "requires_payment_method")


def test_mandates_direct_debits_and_policy_api(api: TestClient, db: Database, borrower: Borrower,
                                               tenant: TenantHandle, other_tenant: TenantHandle) -> None:
    body = {"applicant_id": borrower.applicant_id, "card_id": card(db, borrower, DECLINED), "reference": "M-7"}
    before = counts(db)
    refused(api.post("/v1/credit/mandates", json=body), 401, "missing_api_key")
    refused(api.post("/v1/credit/mandates", headers=key(db, tenant.id, Role.AUDITOR), json=body), 403,
            "role_not_allowed")
    refused(api.post("/v1/credit/mandates", headers=other_tenant.headers, json=body), 404, "applicant_not_found",
            "applicant_id")
    refused(api.post("/v1/credit/mandates", headers=tenant.headers, json={**body, "card_id": "card_nope"}), 404,
            "card_not_found", "card_id")
    refused(api.post("/v1/credit/mandates", headers=tenant.headers, json={**body, "max_amount": -5}), 400,
            "invalid_amount", "max_amount")
    refused(api.post("/v1/credit/mandates", headers=tenant.headers, json={**body, "pin": "1234"}), 400,
            "unknown_field", "pin")
    assert counts(db) == before

    headers = {**tenant.headers, "Idempotency-Key": "mandate-1"}
    created = api.post("/v1/credit/mandates", headers=headers, json=body)
    assert created.status_code == 201, created.text
    mandate = created.json()
    assert mandate["status"] == "active" and len(mandate["card_last4"]) == 4 and "number" not in mandate
    assert api.post("/v1/credit/mandates", headers=headers, json=body).json() == mandate
    refused(api.post("/v1/credit/mandates", headers=tenant.headers, json=body), 409, "mandate_exists")
    assert api.get(f"/v1/credit/mandates/{mandate['id']}", headers=tenant.headers).json() == mandate
    refused(api.get(f"/v1/credit/mandates/{mandate['id']}", headers=other_tenant.headers), 404, "mandate_not_found")
    assert [m["id"] for m in api.get("/v1/credit/mandates", headers=tenant.headers,
                                     params={"applicant_id": borrower.applicant_id}).json()["data"]] == [mandate["id"]]

    refused(api.put("/v1/credit/direct-debit-policy", headers=key(db, tenant.id, Role.SUPPORT),
                    json={"max_attempts": 2}), 403, "role_not_allowed")
    refused(api.put("/v1/credit/direct-debit-policy", headers=tenant.headers,
                    json={"max_attempts": 3, "retry_offsets_hours": [24, 4]}), 400, "invalid_retry_offsets",
            "retry_offsets_hours")
    put = api.put("/v1/credit/direct-debit-policy", headers=tenant.headers, json={"max_attempts": 2})
    assert put.status_code == 200, put.text
    assert (put.json()["max_attempts"], put.json()["retry_offsets_hours"]) == (2, [4])
    assert api.get("/v1/credit/direct-debit-policy", headers=other_tenant.headers).json()["max_attempts"] == 4

    at(db.clock, first_due_on(db, borrower), 8)  # type: ignore[arg-type]
    flows.run_direct_debits(db)
    listed = api.get("/v1/credit/direct-debits", headers=tenant.headers, params={"loan_id": borrower.loan_id})
    [debit] = listed.json()["data"]
    assert (debit["status"], debit["failure_code"], debit["attempt_number"]) == ("failed", "card_declined", 1)
    assert api.get(f"/v1/credit/direct-debits/{debit['id']}", headers=tenant.headers).json() == debit
    refused(api.get(f"/v1/credit/direct-debits/{debit['id']}", headers=other_tenant.headers), 404,
            "direct_debit_not_found")

    revoked = api.post(f"/v1/credit/mandates/{mandate['id']}/revoke", headers=tenant.headers)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused(api.post(f"/v1/credit/mandates/{mandate['id']}/revoke", headers=tenant.headers), 409, "mandate_revoked")
    refused(api.post(f"/v1/credit/mandates/{mandate['id']}/revoke", headers=other_tenant.headers), 404,
            "mandate_not_found")
