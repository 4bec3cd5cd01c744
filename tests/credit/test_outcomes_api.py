"""The outcome API: labelling (a rerun adds nothing), listing and reading outcomes, the labelling policy, comparing
a model with the champion and reading the comparison back, retraining from outcomes; bad input answers 4xx with
its code and param and writes nothing; Idempotency-Key replays; roles, authentication and tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.audit.models import AuditEvent
from finloop.credit import registry
from finloop.credit.models import CreditModel
from finloop.credit.outcomes.models import LoanOutcome, OutcomePolicy
from finloop.credit.outcomes_endpoints import router as outcomes_router
from finloop.credit.scorecard import Trained
from finloop.db.uow import Database
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.credit.conftest import install
from tests.credit.test_outcomes import add_loans as add
from tests.credit.test_outcomes import parents, simulated_book
from tests.credit.test_products_api import key, refused


@pytest.fixture
def api(app: FastAPI) -> Iterator[TestClient]:
    """The app with the outcome routes (mounted here until the API router includes them)."""
    if not any(getattr(route, "path", "") == "/v1/credit/outcomes" for route in app.routes):
        app.include_router(outcomes_router, prefix="/v1")
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def counts(db: Database) -> tuple[int, int, int, int]:
    with db.uow(read_only=True) as uow:
        return tuple(int(uow.session.scalar(select(func.count()).select_from(t)) or 0)  # type: ignore[return-value]
                     for t in (LoanOutcome, OutcomePolicy, CreditModel, AuditEvent))


def test_outcomes_api(api: TestClient, db: Database, tenant: TenantHandle, other_tenant: TenantHandle,
                      platform: Trained) -> None:
    h = tenant.headers
    p = parents(db, tenant.id)
    loan_ids = add(db, p, simulated_book(120, seed=81))

    # The policy.
    policy = api.get("/v1/credit/outcomes/policy", headers=h).json()
    assert policy == {**policy, "object": "credit_outcome_policy", "updated_by": "default",
                      "policy": {"default_dpd": 90, "window_days": 365, "recovery_share": "1"}}
    before = counts(db)
    for bad, code, param in (({"default_dpd": 0}, "invalid_outcome_policy", "default_dpd"),
                             ({"default_dpd": "90"}, "int_type", "default_dpd"),
                             ({"window_days": 5000}, "invalid_outcome_policy", "window_days"),
                             ({"recovery_share": 0.5}, "invalid_rate", "recovery_share"),
                             ({"recovery_share": "2"}, "invalid_outcome_policy", "recovery_share"),
                             ({"colour": "red"}, "unknown_field", "colour")):
        refused(api.put("/v1/credit/outcomes/policy", headers=h, json=bad), 400, code, param)
    assert counts(db) == before
    put = api.put("/v1/credit/outcomes/policy", headers=h, json={"recovery_share": "0.9"})
    assert put.status_code == 200 and put.json()["policy"]["recovery_share"] == "0.9"

    # Labelling.
    for body, code, param in (({"as_of": "2026-02-30"}, "invalid_date", "as_of"),
                              ({"as_of": "2026-03-02", "x": 1}, "unknown_field", "x"),
                              ({"as_of": "2026-04-01"}, "as_of_in_future", "as_of")):
        refused(api.post("/v1/credit/outcomes/label", headers=h, json=body), 400, code, param)
    assert counts(db)[0] == 0
    labelled = api.post("/v1/credit/outcomes/label", headers={**h, "Idempotency-Key": "label-1"},
                        json={"as_of": "2026-03-02"})
    assert labelled.status_code == 200, labelled.text
    run = labelled.json()
    assert (run["object"], run["as_of"], run["labelled"]) == ("credit_outcome_labelling", "2026-03-02", 120)
    assert sum(run["outcomes"].values()) == 120 and run["outcomes"]["recovered"] == 0
    replay = api.post("/v1/credit/outcomes/label", headers={**h, "Idempotency-Key": "label-1"},
                      json={"as_of": "2026-03-02"})
    assert replay.json() == run
    again = api.post("/v1/credit/outcomes/label", headers=h)
    assert again.status_code == 200 and again.json()["labelled"] == 0 and again.json()["as_of"] == "2026-03-02"

    listed = api.get("/v1/credit/outcomes", headers=h, params={"label": "default", "limit": 100}).json()["data"]
    assert len(listed) == run["outcomes"]["default"] and all(o["bad"] for o in listed)
    first = listed[0]
    assert first["object"] == "credit_loan_outcome" and first["loan_id"] in loan_ids
    assert api.get(f"/v1/credit/outcomes/{first['id']}", headers=h).json() == first
    assert [o["id"] for o in api.get("/v1/credit/outcomes", headers=h,
                                     params={"loan_id": first["loan_id"]}).json()["data"]] == [first["id"]]
    refused(api.get("/v1/credit/outcomes", headers=h, params={"label": "great"}), 400, "invalid_choice", "label")
    refused(api.get("/v1/credit/outcomes/lou_nothing", headers=h), 404, "loan_outcome_not_found", "outcome_id")

    # Comparing: without a champion, then the champion against a draft.
    with db.uow() as uow:
        draft, _ = registry.register(uow, tenant.id, platform, name="applicant", actor="test")
        uow.commit()
    before = counts(db)
    refused(api.post(f"/v1/credit/models/{draft.id}/compare", headers=h), 409, "no_champion_model", "against")
    refused(api.post(f"/v1/credit/models/{draft.id}/compare", headers=h, json={"against": draft.id}), 400,
            "same_model", "against")
    refused(api.post(f"/v1/credit/models/{draft.id}/compare", headers=h, json={"against": ""}), 400,
            "too_short", "against")
    refused(api.post("/v1/credit/models/cmd_nothing/compare", headers=h), 404, "credit_model_not_found",
            "model_id")
    refused(api.get(f"/v1/credit/models/{draft.id}/comparison", headers=h), 404, "comparison_not_found",
            "model_id")
    assert counts(db) == before
    champion, _ = install(db, tenant.id, platform, challenger=False)
    compared = api.post(f"/v1/credit/models/{draft.id}/compare", headers={**h, "Idempotency-Key": "cmp-1"})
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert body["object"] == "credit_model_comparison" and body["against"]["model_id"] == champion.id
    # The same tables score the same loans alike: no AUC gained, nobody swapped.
    assert body["candidate"]["auc"] == body["against"]["auc"] and body["psi"] == 0.0
    assert body["recommendation"] == "keep_champion" and body["holdout"]["loans"] == 120
    assert api.get(f"/v1/credit/models/{draft.id}/comparison", headers=h).json() == body
    assert api.post(f"/v1/credit/models/{draft.id}/compare", headers={**h, "Idempotency-Key": "cmp-1"}).json() \
        == body

    # Retraining: bad settings write nothing; then drafts compared with the champion.
    before = counts(db)
    for bad, status, code, param in (({"holdout_share": 0.25}, 400, "invalid_rate", "holdout_share"),
                                     ({"holdout_share": "0.9"}, 400, "invalid_holdout_share", "holdout_share"),
                                     ({"rounds": 5}, 400, "greater_than_equal", "rounds"),
                                     ({"test_share": "0.9"}, 400, "invalid_test_share", "test_share"),
                                     ({"name": "9x"}, 400, "invalid_model_name", "name"),
                                     ({"seed": "1"}, 400, "int_type", "seed")):
        refused(api.post("/v1/credit/models/retrain-from-outcomes", headers=h, json=bad), status, code, param)
    assert counts(db) == before
    retrained = api.post("/v1/credit/models/retrain-from-outcomes", headers={**h, "Idempotency-Key": "rt-1"},
                         json={"rounds": 10, "holdout_share": "0"})
    assert retrained.status_code == 201, retrained.text
    result = retrained.json()
    assert result["object"] == "credit_retraining" and result["version"] == 3
    assert set(result["comparisons"]) == {"scorecard", "gbm"}
    assert result["comparisons"]["gbm"]["against"]["model_id"] == champion.id
    assert api.post("/v1/credit/models/retrain-from-outcomes", headers={**h, "Idempotency-Key": "rt-1"},
                    json={"rounds": 10, "holdout_share": "0"}).json() == result  # replayed, not retrained
    with db.uow(read_only=True) as uow:
        assert registry.get_model(uow, tenant.id, result["scorecard_id"]).status == "draft"
        assert len(registry.list_models(uow, tenant.id, name="applicant")) == 6

    # Roles, authentication, tenants.
    support, auditor = key(db, tenant.id, Role.SUPPORT), key(db, tenant.id, Role.AUDITOR)
    refused(api.post("/v1/credit/outcomes/label", headers=support), 403, "role_not_allowed")
    refused(api.put("/v1/credit/outcomes/policy", headers=support, json={"window_days": 400}), 403,
            "role_not_allowed")
    refused(api.post(f"/v1/credit/models/{draft.id}/compare", headers=auditor), 403, "role_not_allowed")
    refused(api.post("/v1/credit/models/retrain-from-outcomes", headers=support), 403, "role_not_allowed")
    assert api.get("/v1/credit/outcomes", headers=auditor).status_code == 200
    assert api.get(f"/v1/credit/models/{draft.id}/comparison", headers=auditor).status_code == 200
    for path in ("/v1/credit/outcomes", f"/v1/credit/outcomes/{first['id']}", "/v1/credit/outcomes/policy"):
        assert api.get(path).status_code == 401
    other: dict[str, Any] = other_tenant.headers
    refused(api.get(f"/v1/credit/outcomes/{first['id']}", headers=other), 404, "loan_outcome_not_found")
    refused(api.get(f"/v1/credit/models/{draft.id}/comparison", headers=other), 404, "credit_model_not_found")
    refused(api.post(f"/v1/credit/models/{draft.id}/compare", headers=other), 404, "credit_model_not_found")
    assert api.get("/v1/credit/outcomes", headers=other).json()["data"] == []
    assert api.post("/v1/credit/outcomes/label", headers=other).json()["labelled"] == 0
    refused(api.post("/v1/credit/models/retrain-from-outcomes", headers=other, json={"rounds": 10}), 400,
            "no_training_data", "dataset")
