"""The risk API: rule sets through publication, decisions, labels, lists, bad input, tenant isolation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from finloop.db.uow import Database
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal, Role


def test_rule_set_decisions_and_lists_through_the_api(client: TestClient, db: Database, tenant,  # type: ignore[no-untyped-def]
                                                      other_tenant, clock) -> None:
    h = tenant.headers
    rs = client.post("/v1/risk/rule-sets", headers=h, json={"name": "payments", "event_types": ["payment"]})
    assert rs.status_code == 201, rs.text
    rs_id = rs.json()["id"]
    base = f"/v1/risk/rule-sets/{rs_id}"
    bad = client.post(f"{base}/versions", headers=h, json={"rules": [
        {"id": "r1", "expression": "event.amount > \"5\"", "score": 1}]})
    assert bad.status_code == 201
    invalid = client.post(f"{base}/versions/{bad.json()['id']}/validate", headers=h)
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid_rule"
    issue = invalid.json()["error"]["details"]["issues"][0]
    assert issue["rule_id"] == "r1" and issue["column"] >= 1 and "position" in issue
    draft = client.post(f"{base}/versions", headers=h, json={
        "rules": [{"id": "big", "description": "Big", "expression": "event.amount > 1000", "score": 25}],
        "thresholds": {"payment": {"review": 5, "decline": 20}}})
    version_id = draft.json()["id"]
    assert client.post(f"{base}/versions/{version_id}/validate", headers=h).json() == {"valid": True, "rules": 1}
    backtest = client.post(f"{base}/versions/{version_id}/backtest", headers=h,
                           json={"from": "2026-03-01T00:00:00Z", "to": "2026-03-03T00:00:00Z"})
    assert backtest.status_code == 200 and backtest.json()["events"] == 0
    assert backtest.json()["interception_rate"] is None
    pending = client.post(f"{base}/versions/{version_id}/publish", headers=h)
    assert pending.status_code == 200 and pending.json()["status"] == "pending_approval"
    waiting = client.post(f"{base}/versions/{version_id}/publish", headers=h)
    assert waiting.status_code == 409 and waiting.json()["error"]["code"] == "approval_pending"
    with db.uow() as uow:
        checker = Principal(tenant.id, "user:checker", frozenset({Role.RISK_ANALYST}), user_id="usr_checker")
        tenancy.decide_approval(uow, checker, pending.json()["approval_id"], approve=True)
        uow.commit()
    published = client.post(f"{base}/versions/{version_id}/publish", headers=h)
    assert published.json()["status"] == "published"
    assert client.get(base, headers=h).json()["live_version_id"] == version_id

    decision = client.post("/v1/risk/decisions", headers=h, json={
        "event_type": "payment", "event": {"amount": 5000, "currency": "CNY", "customer_id": "c1",
                                           "email": "someone@example.com"}, "object_ref": "pay_1"})
    assert decision.status_code == 201, decision.text
    body = decision.json()
    assert body["outcome"] == "decline" and body["score"] == 25 and body["fired"][0]["rule_id"] == "big"
    assert body["event"]["email"] == "s***@example.com" and body["rule_set_version_id"] == version_id
    labelled = client.post(f"/v1/risk/decisions/{body['id']}/label", headers=h, json={"label": "fraud_confirmed"})
    assert labelled.json()["label"] == "fraud_confirmed"
    listed = client.get("/v1/risk/decisions?outcome=decline&object_ref=pay_1", headers=h).json()
    assert [d["id"] for d in listed["data"]] == [body["id"]]
    assert client.get(f"/v1/risk/decisions/{body['id']}", headers=other_tenant.headers).status_code == 404
    assert client.get("/v1/risk/decisions", headers=other_tenant.headers).json()["data"] == []
    assert client.get(base, headers=other_tenant.headers).status_code == 404

    entry = client.post("/v1/risk/lists", headers=h, json={"kind": "black", "level": "email",
                                                           "value": "Bad@Example.com", "reason": "Chargebacks"})
    assert entry.status_code == 201 and entry.json()["display"] == "b***@example.com"
    hit = client.post("/v1/risk/decisions", headers=h, json={"event_type": "payment",
                                                            "event": {"amount": 1, "email": "bad@example.com"}})
    assert hit.json()["outcome"] == "decline" and hit.json()["lists"] == ["black:email"]
    found = client.get("/v1/risk/lists?level=email&value=BAD@example.com", headers=h).json()["data"]
    assert [e["id"] for e in found] == [entry.json()["id"]]
    assert client.delete(f"/v1/risk/lists/{entry.json()['id']}", headers=other_tenant.headers).status_code == 404
    assert client.delete(f"/v1/risk/lists/{entry.json()['id']}", headers=h).status_code == 200
    assert client.get("/v1/risk/lists", headers=h).json()["data"] == []

    # Bad input: 4xx with code and param, nothing written.
    for payload in ({"event_type": "payment", "event": {"amount": 1.5}},
                    {"event_type": "teleport", "event": {}},
                    {"event_type": "payment", "event": {"amount": "x" * 600}},
                    {"event_type": "payment", "event": {}, "extra": 1}):
        response = client.post("/v1/risk/decisions", headers=h, json=payload)
        assert response.status_code in (400, 422), response.text
    assert len(client.get("/v1/risk/decisions", headers=h).json()["data"]) == 2
    for rules in ([{"id": "Bad Id", "expression": "true", "score": 1}],
                  [{"id": "a", "expression": "true", "score": "5"}],
                  [{"id": "a", "expression": "true", "score": 1, "outcome": "approve"}],
                  [{"id": "a", "expression": "true", "score": 1}, {"id": "a", "expression": "true", "score": 1}]):
        response = client.post(f"{base}/versions", headers=h, json={"rules": rules})
        assert response.status_code in (400, 422), response.text
    assert client.post(f"{base}/versions", headers=h, json={
        "rules": [], "thresholds": {"payment": {"review": 30, "decline": 20}}}).status_code == 400
    assert client.post("/v1/risk/lists", headers=h, json={"kind": "black", "level": "ip", "value": "1.1.1.1",
                                                          "reason": "x", "bypass_rules": ["a"]}).status_code == 400
    assert client.post(f"{base}/rollback", headers=h).status_code == 409
