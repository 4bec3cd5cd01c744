"""The servicing API: the account, installments and payoff quote of a loan; a repayment with Idempotency-Key
replay and bad input refused with nothing written; an early payoff; the end of day run and listed; the sub-ledger
check; the provisioning policy; a manual write-off and a recovery; roles and tenant isolation."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.credit.servicing.models import Repayment
from finloop.db.uow import Database
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.servicing.conftest import at
from tests.credit.test_products_api import key, refused


def repayments(db: Database) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Repayment)) or 0)


def test_servicing_api(client: TestClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                       loan: str) -> None:
    h, o = tenant.headers, other_tenant.headers
    base = f"/v1/credit/loans/{loan}"
    account = client.get(f"{base}/account", headers=h).json()
    assert (account["state"], account["principal_outstanding"], account["next_due_on"]) == (
        "performing", 1_000_000, "2026-04-02")
    assert len(client.get(f"{base}/installments", headers=h).json()) == 12
    refused(client.get(f"{base}/account", headers=o), 404, "loan_account_not_found", "loan_id")

    at(db.clock, date(2026, 3, 6), 1)  # type: ignore[arg-type]
    refused(client.post("/v1/credit/end-of-day", headers=h, json={"through": "2026-03-06"}), 400, "day_not_over",
            "through")
    refused(client.post("/v1/credit/end-of-day", headers=key(db, tenant.id, Role.FINANCE),
                        json={"through": "2026-03-05"}), 403, "role_not_allowed")
    ran = client.post("/v1/credit/end-of-day", headers={**h, "Idempotency-Key": "eod-1"},
                      json={"through": "2026-03-05"})
    assert ran.status_code == 200, ran.text
    assert [r["business_date"] for r in ran.json()["data"]] == ["2026-03-02", "2026-03-03", "2026-03-04",
                                                                 "2026-03-05"]
    assert client.get("/v1/credit/end-of-day", headers=h).json()[0]["business_date"] == "2026-03-05"
    assert client.get("/v1/credit/subledger-check", headers=h).json() == {"object": "subledger_check",
                                                                         "balanced": True, "differences": []}
    assert client.get(f"{base}/account", headers=h).json()["interest_accrued"] == 15_000 * 4 // 31

    body = {"amount": 10_000, "reference": "bank-1"}
    for change, code, param in (({"amount": 0}, "invalid_amount", "amount"),
                                ({"amount": "10"}, "invalid_amount", "amount"),
                                ({"reference": ""}, "too_short", "reference"),
                                ({"prepayment": "later"}, "invalid_choice", "prepayment"),
                                ({"tip": 1}, "unknown_field", "tip")):
        refused(client.post(f"{base}/repayments", headers=h, json={**body, **change}), 400, code, param)
    refused(client.post(f"{base}/repayments", headers=key(db, tenant.id, Role.RISK_ANALYST), json=body), 403,
            "role_not_allowed")
    refused(client.post(f"{base}/repayments", headers=o, json=body), 404, "loan_account_not_found", "loan_id")
    assert repayments(db) == 0

    paid = client.post(f"{base}/repayments", headers={**h, "Idempotency-Key": "r-1"}, json=body)
    assert paid.status_code == 201, paid.text
    again = client.post(f"{base}/repayments", headers={**h, "Idempotency-Key": "r-1"}, json=body)
    assert again.json()["id"] == paid.json()["id"] and repayments(db) == 1
    assert paid.json()["allocation"]["advance"] == 10_000  # nothing billed yet: held as an advance

    quote = client.get(f"{base}/payoff-quote", headers=h).json()
    assert quote["principal"] == 1_000_000 and quote["advance"] == 10_000
    assert quote["total"] == 1_000_000 + quote["interest"] + quote["prepayment_fee"] - 10_000
    payoff = client.post(f"{base}/repayments", headers=h,
                         json={"amount": quote["total"], "reference": "payoff", "prepayment": "payoff"})
    assert payoff.status_code == 201, payoff.text
    assert client.get(f"{base}/account", headers=h).json()["state"] == "paid_off"
    assert [r["kind"] for r in client.get(f"{base}/repayments", headers=h).json()] == ["regular", "payoff"]
    refused(client.post(f"{base}/write-off", headers=h, json={"reason": "fraud"}), 409, "loan_closed", "loan_id")
    refused(client.post(f"{base}/recoveries", headers=h, json={"amount": 5, "reference": "x"}), 409,
            "loan_not_written_off", "loan_id")


def test_write_off_and_recovery_over_the_api(client: TestClient, db: Database, tenant: TenantHandle,
                                             loan: str) -> None:
    h = tenant.headers
    base = f"/v1/credit/loans/{loan}"
    refused(client.post(f"{base}/write-off", headers=key(db, tenant.id, Role.SUPPORT), json={"reason": "fraud"}),
            403, "role_not_allowed")
    gone = client.post(f"{base}/write-off", headers=h, json={"reason": "identity fraud confirmed"})
    assert gone.status_code == 200, gone.text
    assert (gone.json()["state"], gone.json()["totals"]["written_off"]) == ("written_off", 1_000_000)
    recovered = client.post(f"{base}/recoveries", headers=h, json={"amount": 40_000, "reference": "agency-1"})
    assert recovered.status_code == 201 and recovered.json()["allocation"] == {"recovery": 40_000, "advance": 0}
    assert client.get("/v1/credit/subledger-check", headers=h).json()["balanced"] is True


def test_the_provision_policy_over_the_api(client: TestClient, db: Database, tenant: TenantHandle) -> None:
    h = tenant.headers
    assert client.get("/v1/credit/provision-policy", headers=h).json()["bucket_rates"]["M1"] == "0.1"
    refused(client.put("/v1/credit/provision-policy", headers=h, json={"method": "expected_loss", "lgd": "2"}), 400,
            "invalid_rate", "lgd")
    refused(client.put("/v1/credit/provision-policy", headers=key(db, tenant.id, Role.FINANCE),
                       json={"method": "expected_loss"}), 403, "role_not_allowed")
    changed = client.put("/v1/credit/provision-policy", headers=h, json={"method": "expected_loss", "lgd": "0.45"})
    assert changed.status_code == 200 and changed.json()["lgd"] == "0.45"
    assert client.get("/v1/credit/provision-policy", headers=h).json()["method"] == "expected_loss"
