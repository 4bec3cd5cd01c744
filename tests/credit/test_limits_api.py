"""The credit-line API: the limit policy, opening a line, reading it with its calculation and sub-limits,
availability for a product, review, manual adjustment, freeze and unfreeze, the change log; bad input writes
nothing; Idempotency-Key replays; roles, authentication and tenant isolation."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.credit.models import CreditLimitChange, CreditLine, LimitPolicy
from finloop.db.uow import Database
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.conftest import make_applicant
from tests.credit.test_limits import rated, reported
from tests.credit.test_products_api import key, refused


def counts(db: Database) -> tuple[int, int, int]:
    with db.uow(read_only=True) as uow:
        return tuple(int(uow.session.scalar(select(func.count()).select_from(t)) or 0)  # type: ignore[return-value]
                     for t in (CreditLine, CreditLimitChange, LimitPolicy))


def test_credit_lines_api(client: TestClient, db: Database, tenant: TenantHandle,
                          other_tenant: TenantHandle) -> None:
    h = tenant.headers
    party = make_applicant(db, tenant.id, "alice", phone=None, bank_account=None)
    aid = party.applicant_id
    rated(db, tenant.id, aid, "B")
    reported(db, tenant.id, aid, debt=2_000_000, delinquencies=1)

    # The policy.
    policy = client.get("/v1/credit/limit-policy", headers=h).json()
    assert policy["updated_by"] == "default" and policy["policy"]["dti_cap"] == "0.5"
    before = counts(db)
    for bad, code, param in (({"dti_cap": 0.5}, "invalid_rate", "dti_cap"),
                             ({"dti_cap": "11"}, "invalid_limit_policy", "dti_cap"),
                             ({"step": 0}, "invalid_limit_policy", "step"),
                             ({"step": "100"}, "int_type", "step"),
                             ({"income_multiples": {"A": "6"}}, "invalid_limit_policy", "income_multiples"),
                             ({"group_shares": {"cash": "2"}}, "invalid_limit_policy", "group_shares.cash"),
                             ({"colour": "red"}, "unknown_field", "colour")):
        refused(client.put("/v1/credit/limit-policy", headers=h, json=bad), 400, code, param)
    assert counts(db) == before
    put = client.put("/v1/credit/limit-policy", headers=h, json={"group_shares": {"bnpl": "0.5", "cash": "0.25"}})
    assert put.status_code == 200 and put.json()["policy"]["group_shares"] == {"bnpl": "0.5", "cash": "0.25"}

    # Open the line.
    for bad, status, code in (({"requested_amount": 0}, 400, "invalid_amount"),
                              ({"requested_amount": "5"}, 400, "invalid_amount"),
                              ({"x": 1}, 400, "unknown_field")):
        refused(client.post(f"/v1/credit/applicants/{aid}/credit-line", headers=h, json=bad), status, code)
    refused(client.post("/v1/credit/applicants/apl_nobody/credit-line", headers=h), 404, "applicant_not_found")
    assert counts(db)[0] == 0
    opened = client.post(f"/v1/credit/applicants/{aid}/credit-line", headers={**h, "Idempotency-Key": "l1"},
                         json={"requested_amount": 3_000_000})
    assert opened.status_code == 201, opened.text
    line = opened.json()
    assert (line["object"], line["limit_amount"], line["available_amount"], line["status"]) == (
        "credit_line", 3_000_000, 3_000_000, "active")
    assert {s["limit_group"]: s["limit_amount"] for s in line["sub_limits"]} == {
        "bnpl": 1_500_000, "cash": 750_000}
    assert [f["code"] for f in line["calculation"]["factors"]] == [
        "rating_income_multiple", "debt_to_income_cap", "bureau_delinquencies", "requested_need"]
    assert client.post(f"/v1/credit/applicants/{aid}/credit-line", headers={**h, "Idempotency-Key": "l1"},
                       json={"requested_amount": 3_000_000}).json() == line
    refused(client.post(f"/v1/credit/applicants/{aid}/credit-line", headers=h), 409, "credit_line_exists")
    lid = line["id"]
    assert client.get(f"/v1/credit/lines/{lid}", headers=h).json() == line
    assert [x["id"] for x in client.get("/v1/credit/lines", headers=h, params={"applicant_id": aid}).json()["data"]] \
        == [lid]

    # A product and what it can draw.
    cash = client.post("/v1/credit/products", headers=h, json={
        "code": "cash_30", "kind": "cash", "name": "Cash", "currency": "CNY", "rate": "0.0005", "min_term": 7,
        "max_term": 30, "min_principal_amount": 10_000, "max_principal_amount": 1_000_000}).json()
    available = client.get(f"/v1/credit/lines/{lid}/availability", headers=h, params={"product_id": cash["id"]})
    assert available.json() == {"object": "credit_availability", "product_id": cash["id"], "line_id": lid,
                                "limit_group": "cash", "currency": "CNY", "line_available_amount": 3_000_000,
                                "group_available_amount": 750_000, "available_amount": 750_000, "reasons": []}
    refused(client.get(f"/v1/credit/lines/{lid}/availability", headers=h, params={"product_id": "lpr_x"}), 404,
            "product_not_found")
    assert client.get(f"/v1/credit/lines/{lid}/availability", headers=h).status_code == 400

    # By hand: adjust, freeze, unfreeze; the log.
    for bad, status, code, param in (
            ({"limit_amount": 100}, 400, "missing_field", "note"),
            ({"limit_amount": -1, "note": "x"}, 400, "invalid_amount", "limit_amount"),
            ({"limit_amount": 100, "note": " "}, 400, "note_required", "note"),
            ({"limit_amount": 4_000_000, "limit_group": "cash", "note": "x"}, 400, "sub_limit_exceeds_line",
             "limit_amount"),
            ({"limit_amount": 1, "limit_group": "gold", "note": "x"}, 404, "sub_limit_not_found", "limit_group")):
        refused(client.post(f"/v1/credit/lines/{lid}/adjust", headers=h, json=bad), status, code, param)
    adjusted = client.post(f"/v1/credit/lines/{lid}/adjust", headers={**h, "Idempotency-Key": "a1"},
                           json={"limit_amount": 2_000_000, "note": "asked for less"})
    assert adjusted.status_code == 200 and adjusted.json()["limit_amount"] == 2_000_000
    frozen = client.post(f"/v1/credit/lines/{lid}/freeze", headers=h, json={"note": "review"})
    assert frozen.json()["status"] == "frozen" and frozen.json()["frozen_reason"] == "manual"
    assert client.get(f"/v1/credit/lines/{lid}/availability", headers=h,
                      params={"product_id": cash["id"]}).json()["reasons"] == ["line_frozen"]
    refused(client.post(f"/v1/credit/lines/{lid}/freeze", headers=h), 409, "credit_line_not_active")
    assert client.post(f"/v1/credit/lines/{lid}/unfreeze", headers=h).json()["status"] == "active"
    refused(client.post(f"/v1/credit/lines/{lid}/unfreeze", headers=h), 409, "credit_line_not_frozen")
    reviewed = client.post(f"/v1/credit/lines/{lid}/review", headers=h)
    assert reviewed.status_code == 200 and reviewed.json()["limit_amount"] == 3_000_000
    log = client.get(f"/v1/credit/lines/{lid}/changes", headers=h).json()["data"]
    assert [(c["limit_group"], c["kind"], c["reason"]) for c in log] == [
        (None, "granted", "calculation"), (None, "lowered", "manual"), (None, "frozen", "manual"),
        (None, "unfrozen", "manual"), (None, "raised", "on_demand_review")]  # the sub-limits stayed under 20,000.00
    assert log[1]["note"] == "asked for less" and log[1]["actor"].startswith("key:key_")

    # Roles, authentication, tenants.
    support, auditor = key(db, tenant.id, Role.SUPPORT), key(db, tenant.id, Role.AUDITOR)
    refused(client.put("/v1/credit/limit-policy", headers=support, json={"step": 10}), 403, "role_not_allowed")
    refused(client.post(f"/v1/credit/lines/{lid}/adjust", headers=support, json={"limit_amount": 1, "note": "x"}),
            403, "role_not_allowed")
    refused(client.post(f"/v1/credit/lines/{lid}/freeze", headers=support), 403, "role_not_allowed")
    assert client.post(f"/v1/credit/lines/{lid}/review", headers=support).status_code == 200
    refused(client.post(f"/v1/credit/lines/{lid}/review", headers=auditor), 403, "role_not_allowed")
    assert client.get(f"/v1/credit/lines/{lid}", headers=auditor).status_code == 200
    assert client.get(f"/v1/credit/lines/{lid}").status_code == 401
    other: dict[str, Any] = other_tenant.headers
    refused(client.get(f"/v1/credit/lines/{lid}", headers=other), 404, "credit_line_not_found")
    refused(client.get(f"/v1/credit/lines/{lid}/changes", headers=other), 404, "credit_line_not_found")
    refused(client.post(f"/v1/credit/lines/{lid}/freeze", headers=other), 404, "credit_line_not_found")
    refused(client.post(f"/v1/credit/applicants/{aid}/credit-line", headers=other), 404, "applicant_not_found")
    assert client.get("/v1/credit/lines", headers=other).json()["data"] == []
    assert client.get("/v1/credit/limit-policy", headers=other).json()["updated_by"] == "default"
