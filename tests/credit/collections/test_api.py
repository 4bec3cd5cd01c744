"""The collections API: every endpoint authenticated and tenant-scoped; working a case needs credit.collect and
the strategy credit.configure; bad input is a 4xx with its code and param and writes nothing; POSTs replay under an
Idempotency-Key; the bureau file downloads with its SHA-256; no response carries a phone number."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.config import Settings
from finloop.credit.collections import service
from finloop.credit.collections.models import CollectionNote, CollectionPolicy, PromiseToPay
from finloop.db.uow import Database
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.collections.conftest import lending, loan, month_closed, set_account
from tests.credit.test_products_api import key, refused

BASE = "/v1/credit/collections"
MONDAY = date(2026, 3, 2)


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    """The application with the collections router, mounted here until the lead adds it to ``api/router.py``."""
    from finloop.app import create_app
    from finloop.credit.collections.endpoints import router

    made = create_app(settings, database=db, access_log=False)
    if not any(getattr(route, "path", "").startswith(BASE) for route in made.routes):
        made.include_router(router, prefix="/v1")
    return made


def count(db: Database, model: Any) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def case_id(db: Database, tenant: TenantHandle, bank: SandboxBank) -> str:
    lending(db, tenant.id)
    loan_id = loan(db, tenant.id)
    set_account(db, loan_id, dpd=3)
    service.run_day(db, tenant.id, MONDAY)
    with db.uow(read_only=True) as uow:
        return service.list_cases(uow, tenant.id)[0].id


def test_reads_need_a_key_and_see_only_the_tenants_cases(client: TestClient, tenant: TenantHandle,
                                                        other_tenant: TenantHandle, case_id: str) -> None:
    refused(client.get(f"{BASE}/cases"), 401, "missing_api_key")
    refused(client.post(f"{BASE}/cases/{case_id}/notes", json={"text": "x"}), 401, "missing_api_key")
    listed = client.get(f"{BASE}/cases", headers=tenant.headers, params={"status": "open", "bucket": "M1"})
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["data"]] == [case_id]
    shown = client.get(f"{BASE}/cases/{case_id}", headers=tenant.headers).json()
    assert (shown["status"], shown["queue"], shown["dpd"], shown["bucket"]) == ("open", "automatic", 3, "M1")
    assert client.get(f"{BASE}/cases", headers=other_tenant.headers).json()["data"] == []
    refused(client.get(f"{BASE}/cases/{case_id}", headers=other_tenant.headers), 404, "collection_case_not_found",
            "case_id")
    refused(client.post(f"{BASE}/cases/{case_id}/notes", headers=other_tenant.headers, json={"text": "x"}), 404,
            "collection_case_not_found")
    actions = client.get(f"{BASE}/cases/{case_id}/actions", headers=tenant.headers).json()["data"]
    assert [(a["kind"], a["status"], a["outcome"]) for a in actions] == [("sms", "sent", "delivered")]
    reminders = client.get(f"{BASE}/reminders", headers=tenant.headers)
    assert reminders.status_code == 200 and "8005" not in reminders.text
    assert "8005" not in shown.__repr__() and "phone" not in shown
    refused(client.get(f"{BASE}/cases", headers=tenant.headers, params={"bucket": "M9"}), 400, "invalid_choice",
            "bucket")


def test_working_a_case_needs_credit_collect(client: TestClient, db: Database, tenant: TenantHandle,
                                             case_id: str) -> None:
    finance = key(db, tenant.id, Role.FINANCE)
    refused(client.post(f"{BASE}/cases/{case_id}/notes", headers=finance, json={"text": "x"}), 403,
            "role_not_allowed")
    refused(client.post(f"{BASE}/cases/{case_id}/promises", headers=finance,
                        json={"amount": 100, "promised_on": "2026-03-05"}), 403, "role_not_allowed")
    support = key(db, tenant.id, Role.SUPPORT)
    refused(client.put(f"{BASE}/policy", headers=support, json={"rules": {}}), 403, "role_not_allowed")
    assert (count(db, CollectionNote), count(db, PromiseToPay), count(db, CollectionPolicy)) == (0, 0, 0)
    made = client.post(f"{BASE}/cases/{case_id}/notes", headers=support, json={"text": "Spoke to the borrower."})
    assert made.status_code == 201, made.text
    assert made.json()["seq"] == 1


def test_bad_input_is_refused_with_its_param_and_writes_nothing(client: TestClient, db: Database,
                                                                tenant: TenantHandle, case_id: str) -> None:
    h = tenant.headers
    for body, code, param in (
            ({"amount": 1.5, "promised_on": "2026-03-05"}, "invalid_amount", "amount"),
            ({"amount": "100", "promised_on": "2026-03-05"}, "invalid_amount", "amount"),
            ({"amount": 100, "promised_on": "2026-02-01"}, "invalid_promise_date", "promised_on"),
            ({"amount": 100, "promised_on": "tomorrow"}, None, "promised_on"),
            ({"amount": 100, "promised_on": "2026-03-05", "note": "x"}, "unknown_field", "note")):
        response = client.post(f"{BASE}/cases/{case_id}/promises", headers=h, json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == param and (code is None or error["code"] == code), response.text
    refused(client.post(f"{BASE}/cases/{case_id}/assign", headers=h, json={"assignee_id": "usr_nobody"}), 404,
            "user_not_found", "assignee_id")
    refused(client.post(f"{BASE}/cases/{case_id}/notes", headers=h, json={"text": ""}), 400, "too_short", "text")
    refused(client.put(f"{BASE}/policy", headers=h, json={"rules": {"M1": {"sms_on_dpd": [40]}}}), 400,
            "invalid_strategy", "rules.M1.sms_on_dpd")
    refused(client.put(f"{BASE}/policy", headers=h, json={"rules": {"M7": {}}}), 400, "invalid_strategy",
            "rules.M7")
    refused(client.post(f"{BASE}/bureau-exports", headers=h, json={"cycle": "2026-3"}), 400, "invalid_cycle",
            "cycle")
    refused(client.get(f"{BASE}/cases/{case_id}/notes", headers=h, params={"starting_after": "x"}), 400,
            "invalid_cursor", "starting_after")
    assert (count(db, CollectionNote), count(db, PromiseToPay), count(db, CollectionPolicy)) == (0, 0, 0)
    assert client.get(f"{BASE}/cases/{case_id}", headers=h).json()["queue"] == "automatic"


def test_promises_assignment_and_escalation_replay_under_an_idempotency_key(
        client: TestClient, db: Database, tenant: TenantHandle, case_id: str) -> None:
    h = tenant.headers
    body = {"amount": 5_000, "promised_on": "2026-03-06"}
    first = client.post(f"{BASE}/cases/{case_id}/promises", headers={**h, "Idempotency-Key": "p1"}, json=body)
    again = client.post(f"{BASE}/cases/{case_id}/promises", headers={**h, "Idempotency-Key": "p1"}, json=body)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert (first.json()["status"], first.json()["amount"], first.json()["currency"]) == ("pending", 5_000, "CNY")
    refused(client.post(f"{BASE}/cases/{case_id}/promises", headers=h, json=body), 409, "promise_pending",
            "case_id")
    assert count(db, PromiseToPay) == 1
    listed = client.get(f"{BASE}/promises", headers=h, params={"case_id": case_id, "status": "pending"})
    assert [p["id"] for p in listed.json()["data"]] == [first.json()["id"]]
    with db.uow() as uow:
        user = tenancy.create_user(uow, tenant.id, email="c@example.com", password="correct horse battery",
                                   roles=["support"], actor="test")
        uow.commit()
    assigned = client.post(f"{BASE}/cases/{case_id}/assign", headers=h, json={"assignee_id": user.id})
    assert assigned.status_code == 200, assigned.text
    assert (assigned.json()["assignee_id"], assigned.json()["queue"]) == (user.id, "manual")
    refused(client.post(f"{BASE}/cases/{case_id}/escalate", headers=h), 409, "case_already_escalated")
    queue = client.get(f"{BASE}/cases", headers=h, params={"queue": "manual", "assignee_id": user.id})
    assert [c["id"] for c in queue.json()["data"]] == [case_id]


def test_the_policy_reads_its_defaults_and_is_replaced(client: TestClient, tenant: TenantHandle) -> None:
    shown = client.get(f"{BASE}/policy", headers=tenant.headers).json()
    assert shown["updated_by"] == "default" and shown["rules"]["M1"]["sms_on_dpd"] == [1, 7, 15, 25]
    put = client.put(f"{BASE}/policy", headers=tenant.headers,
                     json={"rules": {"M1": {"sms_on_dpd": [3]}, "M2": {"escalate": True}}})
    assert put.status_code == 200, put.text
    rules = client.get(f"{BASE}/policy", headers=tenant.headers).json()["rules"]
    assert rules["M1"]["sms_on_dpd"] == [3] and rules["M2"]["escalate"] is True
    assert rules["M3"] == {"sms_on_dpd": [], "sms_every_days": None, "call_every_days": None, "escalate": False}


def test_the_bureau_file_is_exported_once_and_downloaded_with_its_digest(
        client: TestClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
        bank: SandboxBank) -> None:
    h = tenant.headers
    lending(db, tenant.id)
    loan_id = loan(db, tenant.id)
    refused(client.post(f"{BASE}/bureau-exports", headers=h, json={"cycle": "2026-03"}), 409, "cycle_not_closed",
            "cycle")
    month_closed(db, tenant.id, loan_id, "2026-03", date(2026, 4, 1))
    made = client.post(f"{BASE}/bureau-exports", headers={**h, "Idempotency-Key": "b1"}, json={"cycle": "2026-03"})
    assert made.status_code == 201, made.text
    again = client.post(f"{BASE}/bureau-exports", headers=h, json={"cycle": "2026-03"})
    assert again.json()["id"] == made.json()["id"] and again.json()["sha256"] == made.json()["sha256"]
    export_id = made.json()["id"]
    file = client.get(f"{BASE}/bureau-exports/{export_id}/file", headers=h)
    assert file.status_code == 200 and file.headers["content-type"].startswith("text/csv")
    assert hashlib.sha256(file.content).hexdigest() == file.headers["x-content-sha256"] == made.json()["sha256"]
    assert file.text.splitlines()[0].startswith("H,FL-CB-1,")
    assert [e["cycle"] for e in client.get(f"{BASE}/bureau-exports", headers=h).json()["data"]] == ["2026-03"]
    refused(client.get(f"{BASE}/bureau-exports/{export_id}", headers=other_tenant.headers), 404,
            "bureau_export_not_found")
    refused(client.get(f"{BASE}/bureau-exports/{export_id}/file", headers=other_tenant.headers), 404,
            "bureau_export_not_found")
