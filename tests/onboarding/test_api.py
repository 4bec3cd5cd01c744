"""The onboarding API and CLI: submit with an Idempotency-Key, read masked, list with filters and cursors,
re-verify, review, the policy; bad input, permissions and tenant isolation; nothing personal in a response,
a log line or the CLI's output."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from finloop.cli import app as cli_app
from finloop.db.uow import Database
from finloop.onboarding.connectors.sandbox import SandboxVerifier
from finloop.onboarding.models import KycProfile
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.conftest import TenantHandle
from tests.onboarding.conftest import Parties, make_parties
from tests.onboarding.helpers import business, individual

SECRETS = ("Li Wei", "Tea House Ltd", "Wang Fang", "+8613800138000", "13800138000", "1990-05-17")


def _headers(db: Database, tenant: TenantHandle, role: Role) -> dict[str, str]:
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant.id, name=role.value, role=role, actor="test")
        uow.commit()
    return {"Authorization": f"Bearer {secret}"}


def _leaks(text: str, *extra: str) -> list[str]:
    return [s for s in (*SECRETS, *extra) if s in text]


def test_submit_read_list_and_replay(client: TestClient, db: Database, parties: Parties,
                                     verifier: SandboxVerifier, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h = {**parties.tenant.headers, "Idempotency-Key": "kyc-1"}
    person = individual(parties.customer_id)
    body = {"party_kind": "customer", "party_id": parties.customer_id, "individual": person}
    first = client.post("/v1/onboarding/profiles", headers=h, json=body)
    assert first.status_code == 201, first.text
    profile = first.json()
    assert (profile["status"], profile["is_verified"], profile["risk_tier"], profile["name"]) == (
        "approved", True, "low", "L***")
    assert profile["identifier"] == "****" + person["document_number"][-4:]
    assert [t["to_status"] for t in profile["history"]] == ["pending", "verifying", "approved"]
    assert {v["check"]: v["status"] for v in profile["verifications"]} == {"document": "passed",
                                                                           "liveness": "passed"}
    replay = client.post("/v1/onboarding/profiles", headers=h, json=body)
    assert replay.status_code == 201 and replay.json()["id"] == profile["id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert verifier.calls == 2  # the replay called nobody

    merchant = client.post("/v1/onboarding/profiles", headers=parties.tenant.headers, json={
        "party_kind": "merchant", "party_id": parties.merchant_id, "business": business(parties.merchant_id)})
    assert merchant.status_code == 201 and merchant.json()["beneficial_owners"] == 1, merchant.text
    promoter = client.post("/v1/onboarding/profiles", headers=parties.tenant.headers, json={
        "party_kind": "promoter", "party_id": parties.promoter_id,
        "individual": individual(parties.promoter_id, document_number="E12340001")})
    assert promoter.json()["status"] == "rejected"

    got = client.get(f"/v1/onboarding/profiles/{profile['id']}", headers=parties.tenant.headers)
    assert got.status_code == 200 and got.json()["id"] == profile["id"]
    everything = "".join(r.text for r in (first, replay, merchant, promoter, got))
    assert not _leaks(everything, person["national_id"], person["document_number"])
    assert not _leaks(caplog.text, person["national_id"], person["document_number"])

    def ids(**params: Any) -> list[str]:
        response = client.get("/v1/onboarding/profiles", headers=parties.tenant.headers, params=params)
        assert response.status_code == 200, response.text
        return [p["party_kind"] for p in response.json()["data"]]

    assert ids() == ["promoter", "merchant", "customer"]
    assert ids(status="approved") == ["merchant", "customer"]
    assert ids(risk_tier="low", party_kind="merchant") == ["merchant"]
    assert ids(status="rejected") == ["promoter"]
    page = client.get("/v1/onboarding/profiles", headers=parties.tenant.headers, params={"limit": 2}).json()
    assert page["has_more"] and len(page["data"]) == 2
    rest = client.get("/v1/onboarding/profiles", headers=parties.tenant.headers,
                      params={"limit": 2, "starting_after": page["next_cursor"]}).json()
    assert [p["party_kind"] for p in rest["data"]] == ["customer"] and not rest["has_more"]


def test_bad_input_is_a_4xx_with_nothing_written(client: TestClient, db: Database, parties: Parties,
                                                 verifier: SandboxVerifier) -> None:
    h = parties.tenant.headers
    person = individual(parties.customer_id)
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"party_kind": "shop", "party_id": parties.customer_id, "individual": person}, 400, "party_kind"),
        ({"party_kind": "customer", "party_id": "cus_nobody", "individual": person}, 404, "party_id"),
        ({"party_kind": "customer", "party_id": parties.customer_id}, 400, "individual"),
        ({"party_kind": "customer", "party_id": parties.customer_id, "individual": person,
          "business": business("x")}, 400, "individual"),
        ({"party_kind": "merchant", "party_id": parties.merchant_id, "individual": person}, 400, "individual"),
        ({"party_kind": "customer", "party_id": parties.customer_id,
          "individual": {**person, "date_of_birth": "1990-13-01"}}, 400, "individual.date_of_birth"),
        ({"party_kind": "customer", "party_id": parties.customer_id,
          "individual": {**person, "nationality": "cn"}}, 400, "individual.nationality"),
        ({"party_kind": "customer", "party_id": parties.customer_id,
          "individual": {**person, "legal_name": "Li\x00Wei"}}, 400, "individual.legal_name"),
        ({"party_kind": "customer", "party_id": parties.customer_id,
          "individual": {**person, "is_pep": "no"}}, 400, "individual.is_pep"),
        ({"party_kind": "merchant", "party_id": parties.merchant_id,
          "business": business("x", beneficial_owners=[{"name": "A", "date_of_birth": "1970-01-01",
                                                        "nationality": "CN", "ownership_percent": 101}])},
         400, "business.beneficial_owners[0].ownership_percent"),
        ({"party_kind": "customer", "party_id": parties.customer_id, "individual": person, "extra": 1}, 400, "extra"),
    ]
    for payload, status, param in bad:
        response = client.post("/v1/onboarding/profiles", headers=h, json=payload)
        assert response.status_code == status, (payload, response.text)
        assert response.json()["error"]["param"] == param, (payload, response.text)
        assert not _leaks(response.text, person["national_id"])
    with db.uow(read_only=True) as uow:
        assert uow.session.query(KycProfile).count() == 0
    assert verifier.calls == 0
    assert client.post("/v1/onboarding/profiles", json={}).status_code == 401
    assert client.get("/v1/onboarding/profiles/kyc_nope", headers=h).status_code == 404


def test_permissions_and_tenant_isolation(client: TestClient, db: Database, parties: Parties,
                                          other_tenant: TenantHandle, verifier: SandboxVerifier) -> None:
    body = {"party_kind": "customer", "party_id": parties.customer_id,
            "individual": individual(parties.customer_id)}
    finance = _headers(db, parties.tenant, Role.FINANCE)
    refused = client.post("/v1/onboarding/profiles", headers=finance, json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_not_allowed"
    support = _headers(db, parties.tenant, Role.SUPPORT)
    created = client.post("/v1/onboarding/profiles", headers=support, json=body)
    assert created.status_code == 201, created.text
    profile_id = created.json()["id"]
    assert client.patch("/v1/onboarding/policy", headers=support, json={"payout_gate": "off"}).status_code == 403

    # Another tenant sees nothing and cannot onboard this tenant's party.
    assert client.get(f"/v1/onboarding/profiles/{profile_id}", headers=other_tenant.headers).status_code == 404
    assert client.get("/v1/onboarding/profiles", headers=other_tenant.headers).json()["data"] == []
    assert client.post(f"/v1/onboarding/profiles/{profile_id}/reverify", headers=other_tenant.headers,
                       json={}).status_code == 404
    assert client.post("/v1/onboarding/profiles", headers=other_tenant.headers, json=body).status_code == 404
    other = make_parties(db, other_tenant)
    mine = client.post("/v1/onboarding/profiles", headers=other_tenant.headers, json={
        "party_kind": "customer", "party_id": other.customer_id, "individual": individual(parties.customer_id)})
    assert mine.json()["status"] == "approved"  # the same national id in another tenant is no duplicate


def test_reverify_review_and_illegal_moves(client: TestClient, db: Database, parties: Parties,
                                           verifier: SandboxVerifier) -> None:
    h = parties.tenant.headers
    approved = client.post("/v1/onboarding/profiles", headers=h, json={
        "party_kind": "customer", "party_id": parties.customer_id,
        "individual": individual(parties.customer_id)}).json()
    again = client.post(f"/v1/onboarding/profiles/{approved['id']}/reverify", headers=h, json={
        "document": {"document_type": "passport", "document_number": "E55550001"}})  # the new one has expired
    assert again.status_code == 200 and again.json()["status"] == "rejected", again.text
    assert again.json()["identifier"] == "****0001"
    conflict = client.post(f"/v1/onboarding/profiles/{approved['id']}/reverify", headers=h, json={})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "profile_state_conflict"
    bad = client.post(f"/v1/onboarding/profiles/{approved['id']}/reverify", headers=h,
                      json={"document": {"document_type": "selfie", "document_number": "E1"}})
    assert bad.status_code == 400

    review = client.post("/v1/onboarding/profiles", headers=h, json={
        "party_kind": "promoter", "party_id": parties.promoter_id,
        "individual": individual(parties.promoter_id, document_number="E12340002")}).json()
    assert review["status"] == "in_review" and review["case_id"]
    not_allowed = client.post(f"/v1/onboarding/profiles/{approved['id']}/review", headers=h,
                              json={"decision": "approve"})
    assert not_allowed.status_code == 409
    decided = client.post(f"/v1/onboarding/profiles/{review['id']}/review", headers=h,
                          json={"decision": "approve", "note": "document checked by hand"})
    assert decided.status_code == 200 and decided.json()["status"] == "approved", decided.text
    assert client.get(f"/v1/risk/cases/{review['case_id']}", headers=h).json()["status"] == "closed"
    assert client.post(f"/v1/onboarding/profiles/{review['id']}/review", headers=h,
                       json={"decision": "maybe"}).status_code == 400


def test_policy_read_and_change(client: TestClient, db: Database, tenant: TenantHandle) -> None:
    h = tenant.headers
    policy = client.get("/v1/onboarding/policy", headers=h).json()
    assert (policy["payout_gate"], policy["review_months"]) == ("required", {"low": 36, "medium": 24, "high": 12})
    assert policy["limits"]["CNY"]["high"] == {"per_payout": 5_000_000, "daily": 10_000_000}
    changed = client.patch("/v1/onboarding/policy", headers=h, json={
        "review_months": {"high": 6}, "limits": {"CNY": {"high": {"per_payout": 100}}}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["review_months"]["high"] == 6 and changed.json()["review_months"]["low"] == 36
    assert changed.json()["limits"] == {"CNY": {"high": {"per_payout": 100}}}
    for payload in ({"payout_gate": "sometimes"}, {"review_months": {"high": 0}}, {"provider": "nobody"},
                    {"limits": {"CNY": {"high": {"per_payout": 1.5}}}}, {"high_risk_countries": ["North Korea"]}):
        response = client.patch("/v1/onboarding/policy", headers=h, json=payload)
        assert response.status_code == 400, (payload, response.text)
    assert client.get("/v1/onboarding/policy", headers=h).json()["review_months"]["high"] == 6


def test_cli_lists_shows_and_runs_the_review(cli: CliRunner, db: Database, parties: Parties,
                                             verifier: SandboxVerifier) -> None:
    from tests.onboarding.helpers import verify_party

    profile_id = verify_party(db, parties.tenant.id, "merchant", parties.merchant_id)
    listed = cli.invoke(cli_app, ["onboarding", "list", "--tenant", parties.tenant.id])
    assert listed.exit_code == 0, listed.output
    assert profile_id in listed.output and "approved" in listed.output and "T***" in listed.output
    shown = cli.invoke(cli_app, ["onboarding", "show", profile_id, "--tenant", parties.tenant.id])
    assert shown.exit_code == 0 and "registry" in shown.output and "verifying" in shown.output, shown.output
    assert not _leaks(listed.output + shown.output)
    missing = cli.invoke(cli_app, ["onboarding", "show", "kyc_nope", "--tenant", parties.tenant.id])
    assert missing.exit_code == 1
    run = cli.invoke(cli_app, ["onboarding", "review-due", "run", "--tenant", parties.tenant.id,
                               "--date", "2029-03-05"])
    assert run.exit_code == 0 and "1 due, 1 re-screened, 0 sent to review" in run.output, run.output
    again = cli.invoke(cli_app, ["onboarding", "review-due", "run", "--tenant", parties.tenant.id,
                                 "--date", "2029-03-05"])
    assert "0 due" in again.output
    assert cli.invoke(cli_app, ["onboarding", "review-due", "run", "--tenant", parties.tenant.id,
                                "--date", "someday"]).exit_code == 2
    assert "looked at 0 checks" in cli.invoke(cli_app, ["onboarding", "resolve"]).output
