"""The credit API end to end: applicants, consents, bureau pulls, scores, models and the rating policy; every
POST's bad input is a 4xx that writes nothing; roles, authentication and tenant isolation."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.credit.models import Applicant, BureauReport, Consent, CreditModel, CreditScore, RatingPolicy
from finloop.credit.scorecard import Trained
from finloop.db.uow import Database
from finloop.payments import service as payments
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.conftest import install

TABLES = (Applicant, Consent, BureauReport, CreditScore, CreditModel, RatingPolicy)


def counts(db: Database) -> dict[str, int]:
    with db.uow(read_only=True) as uow:
        return {t.__tablename__: int(uow.session.scalar(select(func.count()).select_from(t)) or 0) for t in TABLES}


def key(db: Database, tenant_id: str, role: Role) -> dict[str, str]:
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant_id, name=role.value, role=role, actor="test")
        uow.commit()
    return {"Authorization": f"Bearer {secret}"}


def customer(db: Database, tenant_id: str, reference: str) -> str:
    with db.uow() as uow:
        found = payments.create_customer(uow, tenant_id, reference=reference).id
        uow.commit()
    return found


def test_credit_api(client: TestClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                    platform: Trained) -> None:
    h = tenant.headers
    card, gbm = install(db, tenant.id, platform)
    alice = customer(db, tenant.id, "alice")
    body = {"party_kind": "customer", "party_id": alice, "declared_income_amount": 1_500_000, "currency": "CNY",
            "employment": "employed", "national_id": "110101199003070011", "phone": "13800138000"}
    before = counts(db)
    for change in ({"party_kind": "bank"}, {"party_id": "cus_nobody"}, {"declared_income_amount": "100"},
                   {"declared_income_amount": 1.5}, {"declared_income_amount": -1}, {"currency": "XXZ"},
                   {"employment": "pirate"}, {"national_id": "12"}, {"national_id": "x" * 65}, {"phone": "call"},
                   {"bank_account": "1"}, {"extra": 1}, {"national_id": None}):
        response = client.post("/v1/credit/applicants", headers=h, json={**body, **change})
        assert 400 <= response.status_code < 500 and response.json()["error"]["code"], (change, response.text)
        assert "110101199003070011" not in response.text
    assert counts(db) == before
    created = client.post("/v1/credit/applicants", headers={**h, "Idempotency-Key": "a1"}, json=body)
    assert created.status_code == 201, created.text
    applicant = created.json()
    assert applicant["national_id"] == "****0011" and applicant["phone"] == "****8000"
    assert applicant["bank_account"] is None and applicant["duplicates"] == {"national_id": [], "phone": []}
    assert client.post("/v1/credit/applicants", headers={**h, "Idempotency-Key": "a1"}, json=body).json() == applicant
    again = client.post("/v1/credit/applicants", headers=h, json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "applicant_exists"
    aid = applicant["id"]

    # Consents and the bureau.
    refused = client.post(f"/v1/credit/applicants/{aid}/bureau-reports", headers=h)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "consent_required"
    for bad in ({"scope": []}, {"scope": ["all"]}, {"scope": ["bureau_report"], "expires_at": "2025-01-01T00:00:00Z"},
                {"scope": ["bureau_report"], "given_at": "2026-03-02T09:00:00"}, {"scope": ["bureau_report"], "x": 1}):
        response = client.post(f"/v1/credit/applicants/{aid}/consents", headers=h, json=bad)
        assert response.status_code == 400, (bad, response.text)
    assert counts(db)["credit_consents"] == 0 and counts(db)["credit_bureau_reports"] == 0
    granted = client.post(f"/v1/credit/applicants/{aid}/consents", headers=h,
                          json={"scope": ["bureau_report", "behaviour_data"], "evidence": "sha256:ab12"})
    assert granted.status_code == 201 and granted.json()["is_valid"] is True
    assert granted.json()["expires_at"].startswith("2026-05-31")
    pulled = client.post(f"/v1/credit/applicants/{aid}/bureau-reports", headers={**h, "Idempotency-Key": "b1"},
                         json={"provider": "sandbox"})
    assert pulled.status_code == 201 and pulled.json()["status"] == "completed", pulled.text
    replay = client.post(f"/v1/credit/applicants/{aid}/bureau-reports", headers={**h, "Idempotency-Key": "b1"},
                         json={"provider": "sandbox"})
    assert replay.json()["id"] == pulled.json()["id"] and counts(db)["credit_bureau_reports"] == 1
    assert client.post(f"/v1/credit/applicants/{aid}/bureau-reports", headers=h,
                       json={"provider": "nope"}).status_code == 400
    listed = client.get("/v1/credit/bureau-reports", headers=h, params={"applicant_id": aid}).json()
    assert [r["id"] for r in listed["data"]] == [pulled.json()["id"]]
    assert client.get(f"/v1/credit/bureau-reports/{pulled.json()['id']}", headers=h).json()["detail"] is not None

    # Scores.
    scored = client.post(f"/v1/credit/applicants/{aid}/scores", headers={**h, "Idempotency-Key": "s1"})
    assert scored.status_code == 201, scored.text
    score = scored.json()
    assert score["model_id"] == card.id and score["rating"] in ("A", "B", "C", "D", "reject")
    assert score["challenger"]["model_id"] == gbm.id and len(score["probability"].split(".")[1]) == 6
    assert score["features"]["bureau_thin_file"] in ("yes", "no") and isinstance(score["reasons"], list)
    assert client.post(f"/v1/credit/applicants/{aid}/scores", headers=h,
                       json={"model_name": "bad name"}).status_code == 400
    missing = client.post(f"/v1/credit/applicants/{aid}/scores", headers=h, json={"model_name": "other"})
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "no_champion_model"
    assert counts(db)["credit_scores"] == 1
    assert client.get(f"/v1/credit/scores/{score['id']}", headers=h).json() == score
    assert [s["id"] for s in client.get("/v1/credit/scores", headers=h, params={"applicant_id": aid}).json()["data"]] \
        == [score["id"]]
    assert client.get("/v1/credit/scores", headers=h, params={"month": "2026-13"}).status_code == 400

    # Models.
    models = client.get("/v1/credit/models", headers=h, params={"status": "champion"}).json()["data"]
    assert [m["id"] for m in models] == [card.id] and models[0]["metrics"]["auc"] > 0.7
    table = client.get(f"/v1/credit/models/{card.id}/scorecard", headers=h).json()
    assert table["variables"] and all(v["bins"] for v in table["variables"])
    assert client.get(f"/v1/credit/models/{gbm.id}/scorecard", headers=h).status_code == 409
    stability = client.get(f"/v1/credit/models/{card.id}/stability", headers=h).json()
    assert stability["scores"] == 1 and stability["psi"] is not None
    assert client.post(f"/v1/credit/models/{gbm.id}/promote", headers=h, json={"to": "king"}).status_code == 400
    promoted = client.post(f"/v1/credit/models/{gbm.id}/promote", headers=h, json={"to": "champion"})
    assert promoted.status_code == 200 and promoted.json()["status"] == "champion"
    assert client.get(f"/v1/credit/models/{card.id}", headers=h).json()["status"] == "retired"
    assert client.post(f"/v1/credit/models/{card.id}/retire", headers=h).status_code == 409

    # The rating policy.
    assert client.get("/v1/credit/rating-policy", headers=h).json()["bands"][0] == {"rating": "A", "min_score": 620}
    for bad in ({"bands": []}, {"bands": [{"rating": "A", "min_score": 1}] * 4},
                {"bands": [{"rating": r, "min_score": 700 - 10 * i} for i, r in enumerate("ABCD")] + [{"x": 1}]},
                {"bands": [{"rating": r, "min_score": 700 + 10 * i} for i, r in enumerate("ABCD")]},
                {"bands": [{"rating": r, "min_score": "700"} for r in "ABCD"]}):
        assert client.put("/v1/credit/rating-policy", headers=h, json=bad).status_code == 400, bad
    assert counts(db)["credit_rating_policies"] == 0
    bands = [{"rating": r, "min_score": 700 - 40 * i} for i, r in enumerate("ABCD")]
    assert client.put("/v1/credit/rating-policy", headers=h, json={"bands": bands}).json()["bands"] == bands

    # Tenant isolation.
    o = other_tenant.headers
    assert client.get(f"/v1/credit/applicants/{aid}", headers=o).status_code == 404
    assert client.post(f"/v1/credit/applicants/{aid}/scores", headers=o).status_code == 404
    assert client.post(f"/v1/credit/applicants/{aid}/consents", headers=o,
                       json={"scope": ["bureau_report"]}).status_code == 404
    assert client.get(f"/v1/credit/models/{card.id}", headers=o).status_code == 404
    assert client.post(f"/v1/credit/models/{card.id}/promote", headers=o, json={"to": "champion"}).status_code == 404
    assert client.get(f"/v1/credit/scores/{score['id']}", headers=o).status_code == 404
    assert client.get("/v1/credit/applicants", headers=o).json()["data"] == []
    assert client.get("/v1/credit/rating-policy", headers=o).json()["bands"][0]["min_score"] == 620
    foreign = customer(db, other_tenant.id, "mallory")
    assert client.post("/v1/credit/applicants", headers=h, json={**body, "party_id": foreign}).status_code == 404


def test_roles_and_authentication(client: TestClient, db: Database, tenant: TenantHandle, platform: Trained) -> None:
    card, _ = install(db, tenant.id, platform)
    support, auditor = key(db, tenant.id, Role.SUPPORT), key(db, tenant.id, Role.AUDITOR)
    alice = customer(db, tenant.id, "alice")
    body = {"party_kind": "customer", "party_id": alice, "declared_income_amount": 100_000, "currency": "CNY",
            "employment": "student", "national_id": "110101199003070011"}
    assert client.post("/v1/credit/applicants", json=body).status_code == 401
    assert client.get("/v1/credit/models").status_code == 401
    denied = client.post("/v1/credit/applicants", headers=auditor, json=body)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "role_not_allowed"
    created = client.post("/v1/credit/applicants", headers=support, json=body)
    assert created.status_code == 201
    aid = created.json()["id"]
    assert client.post(f"/v1/credit/applicants/{aid}/scores", headers=auditor).status_code == 403
    assert client.post(f"/v1/credit/applicants/{aid}/scores", headers=support).status_code == 201
    assert client.get(f"/v1/credit/applicants/{aid}", headers=auditor).status_code == 200
    # Support scores applicants; only an admin or risk analyst changes models and bands.
    assert client.post(f"/v1/credit/models/{card.id}/retire", headers=support).status_code == 403
    bands = [{"rating": r, "min_score": 700 - 40 * i} for i, r in enumerate("ABCD")]
    assert client.put("/v1/credit/rating-policy", headers=support, json={"bands": bands}).status_code == 403
    analyst = key(db, tenant.id, Role.RISK_ANALYST)
    assert client.put("/v1/credit/rating-policy", headers=analyst, json={"bands": bands}).status_code == 200
