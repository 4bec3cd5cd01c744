"""Maker-checker approvals over HTTP."""

from __future__ import annotations

import pytest

from finloop.tenancy.service import Role
from tests.tenancy.helpers import error, make_user, sign_in, staff

REFUND = {"action": "refund.create", "required_role": "finance", "object_type": "payment",
          "object_id": "pay_01", "payload": {"amount": 500_000, "currency": "CNY", "reason": "damaged"}}


@pytest.fixture
def people(db, client, tenant):
    """A support agent who asks, two finance users who may decide, and a risk analyst who may not."""
    return {
        "maker": staff(db, client, tenant.id, "maker@example.com", Role.SUPPORT),
        "checker": staff(db, client, tenant.id, "checker@example.com", Role.FINANCE),
        "finance": staff(db, client, tenant.id, "fin2@example.com", Role.FINANCE, Role.SUPPORT),
        "risk": staff(db, client, tenant.id, "risk@example.com", Role.RISK_ANALYST),
    }


def _request(client, headers, body=REFUND):  # type: ignore[no-untyped-def]
    response = client.post("/v1/approvals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_another_user_with_the_role_approves_and_the_lifecycle_is_audited(db, client, tenant, people):
    asked = _request(client, people["maker"])
    assert asked["status"] == "pending" and asked["payload"] == REFUND["payload"]
    approved = client.post(f"/v1/approvals/{asked['id']}/approve", headers=people["checker"])
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["decided_at"], body["reason"]) == ("approved", "2026-03-02T09:00:00Z", None)
    assert body["decided_by"] != body["requested_by"]
    events = client.get("/v1/audit-events", params={"object_type": "approval", "object_id": asked["id"]},
                        headers=tenant.headers).json()["data"]
    assert [(e["action"], e["actor"], e["after"]["status"]) for e in events] == [
        ("approval.requested", f"user:{asked['requested_by']}", "pending"),
        ("approval.approved", f"user:{body['decided_by']}", "approved")]
    assert events[0]["after"]["payload"] == REFUND["payload"]


def test_rejection_records_its_reason(client, people):
    asked = _request(client, people["maker"])
    rejected = client.post(f"/v1/approvals/{asked['id']}/reject", json={"reason": "duplicate refund"},
                           headers=people["checker"]).json()
    assert (rejected["status"], rejected["reason"]) == ("rejected", "duplicate refund")


def test_nobody_approves_their_own_request(client, people):
    asked = _request(client, people["finance"])
    assert error(client.post(f"/v1/approvals/{asked['id']}/approve", headers=people["finance"])) == (
        403, "self_approval")


def test_approver_without_the_required_role_is_refused(client, people):
    asked = _request(client, people["maker"])
    for decide in ("approve", "reject"):
        assert error(client.post(f"/v1/approvals/{asked['id']}/{decide}", headers=people["risk"])) == (
            403, "role_not_allowed")
    assert client.get(f"/v1/approvals/{asked['id']}", headers=people["risk"]).json()["status"] == "pending"


def test_a_request_is_decided_once(client, people):
    asked = _request(client, people["maker"])
    client.post(f"/v1/approvals/{asked['id']}/reject", headers=people["checker"])
    for decide, who in (("approve", "finance"), ("reject", "checker")):
        assert error(client.post(f"/v1/approvals/{asked['id']}/{decide}", headers=people[who])) == (
            409, "approval_already_decided")


def test_api_keys_neither_request_nor_decide(db, client, tenant, people):
    assert error(client.post("/v1/approvals", json=REFUND, headers=tenant.headers)) == (403, "user_required")
    asked = _request(client, people["maker"])
    assert error(client.post(f"/v1/approvals/{asked['id']}/approve", headers=tenant.headers)) == (
        403, "user_required")


def test_auditors_neither_request_nor_decide(db, client, tenant, people):
    auditor = staff(db, client, tenant.id, "audit@example.com", Role.AUDITOR)
    assert error(client.post("/v1/approvals", json=REFUND, headers=auditor)) == (403, "role_not_allowed")
    asked = _request(client, people["maker"], {**REFUND, "required_role": "finance"})
    assert error(client.post(f"/v1/approvals/{asked['id']}/approve", headers=auditor)) == (403, "role_not_allowed")


def test_bad_approval_requests_are_400s_and_write_nothing(client, people):
    cases = [
        ({"required_role": "auditor"}, "invalid_role", "required_role"),
        ({"required_role": "boss"}, "invalid_choice", "required_role"),
        ({"payload": {"amount": 12.5}}, "invalid_payload", "payload"),
        ({"payload": {"note": "a\u0000b"}}, "invalid_payload", "payload"),
        ({"payload": {"blob": "x" * 20_000}}, "invalid_payload", "payload"),
        ({"payload": {"amount": 2**63}}, "invalid_payload", "payload"),
        ({"payload": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}}, "invalid_payload", "payload"),
        ({"action": ""}, "too_short", "action"),
        ({"object_id": "x" * 41}, "too_long", "object_id"),
    ]
    for change, code, param in cases:
        response = client.post("/v1/approvals", json={**REFUND, **change}, headers=people["maker"])
        assert error(response) == (400, code), change
        assert response.json()["error"]["param"] == param
    assert client.get("/v1/approvals", headers=people["maker"]).json()["data"] == []


def test_unknown_approval_is_a_404(client, people):
    assert error(client.get("/v1/approvals/apr_nope", headers=people["checker"])) == (404, "approval_not_found")
    assert error(client.post("/v1/approvals/apr_nope/approve", headers=people["checker"])) == (
        404, "approval_not_found")


def test_list_filters_by_status_and_pages_by_cursor(client, people):
    first, second, third = (_request(client, people["maker"]) for _ in range(3))
    client.post(f"/v1/approvals/{second['id']}/approve", headers=people["checker"])
    pending = client.get("/v1/approvals", params={"status": "pending", "limit": 1}, headers=people["risk"]).json()
    assert [a["id"] for a in pending["data"]] == [first["id"]] and pending["has_more"]
    rest = client.get("/v1/approvals", params={"status": "pending", "starting_after": pending["next_cursor"]},
                      headers=people["risk"]).json()
    assert [a["id"] for a in rest["data"]] == [third["id"]] and not rest["has_more"]
    approved = client.get("/v1/approvals", params={"status": "approved"}, headers=people["risk"]).json()["data"]
    assert [a["id"] for a in approved] == [second["id"]]
    assert error(client.get("/v1/approvals", params={"status": "done"}, headers=people["risk"])) == (
        400, "invalid_choice")


def test_decision_replays_under_the_same_idempotency_key(db, client, tenant, people):
    asked = _request(client, people["maker"])
    headers = {**people["checker"], "Idempotency-Key": "decide-1"}
    first = client.post(f"/v1/approvals/{asked['id']}/approve", json={"reason": "ok"}, headers=headers)
    again = client.post(f"/v1/approvals/{asked['id']}/approve", json={"reason": "ok"}, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


def test_maker_may_be_a_user_the_checker_cannot_impersonate(db, client, tenant):
    # Two users with the same roles: each may decide the other's request, never their own.
    make_user(db, tenant.id, "one@example.com", Role.FINANCE)
    make_user(db, tenant.id, "two@example.com", Role.FINANCE)
    one, two = sign_in(client, tenant.id, "one@example.com"), sign_in(client, tenant.id, "two@example.com")
    mine, theirs = _request(client, one), _request(client, two)
    assert error(client.post(f"/v1/approvals/{mine['id']}/approve", headers=one)) == (403, "self_approval")
    assert client.post(f"/v1/approvals/{theirs['id']}/approve", headers=one).json()["status"] == "approved"
