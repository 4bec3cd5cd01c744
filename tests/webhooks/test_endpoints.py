"""The webhooks HTTP API: auth, tenant isolation, validation errors, secrets shown once, the message log."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from finloop.db.outbox import drain
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role
from tests.webhooks.helpers import answering, endpoint, outbox_rows, publish, registry

BODY = {"url": "https://example.com/hooks", "event_types": ["payment.succeeded", "refund.failed"],
        "description": "orders service"}


def error(response) -> tuple[int, str, str | None]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["param"]


def role_headers(db, tenant_id: str, role: Role) -> dict[str, str]:
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant_id, name=role.value, role=role, actor="test")
        uow.commit()
    return {"Authorization": f"Bearer {secret}"}


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/v1/webhook_endpoints"), ("get", "/v1/webhook_endpoints"), ("get", "/v1/webhook_endpoints/we_1"),
    ("patch", "/v1/webhook_endpoints/we_1"), ("delete", "/v1/webhook_endpoints/we_1"),
    ("post", "/v1/webhook_endpoints/we_1/rotate_secret"), ("get", "/v1/webhook_messages"),
    ("get", "/v1/webhook_messages/msg_1"), ("get", "/v1/webhook_messages/msg_1/deliveries"),
    ("post", "/v1/webhook_messages/msg_1/replay"),
])
def test_every_route_needs_credentials(client, method, path):
    kwargs = {"json": BODY} if method in ("post", "patch") else {}
    assert error(client.request(method, path, **kwargs))[:2] == (401, "missing_api_key")


def test_create_shows_the_secret_once(client, tenant):
    created = client.post("/v1/webhook_endpoints", json=BODY, headers=tenant.headers)
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 32
    assert {k: body[k] for k in ("object", "url", "event_types", "merchant_id", "status", "description")} == {
        "object": "webhook_endpoint", "url": BODY["url"], "event_types": BODY["event_types"], "merchant_id": None,
        "status": "enabled", "description": "orders service"}
    fetched = client.get(f"/v1/webhook_endpoints/{body['id']}", headers=tenant.headers)
    listed = client.get("/v1/webhook_endpoints", headers=tenant.headers)
    assert fetched.status_code == listed.status_code == 200
    assert "secret" not in fetched.json() and body["secret"] not in fetched.text
    assert [e["id"] for e in listed.json()["data"]] == [body["id"]]
    assert body["secret"] not in listed.text


def test_an_idempotent_replay_of_a_create_does_not_show_the_secret_again(client, tenant):
    headers = {**tenant.headers, "Idempotency-Key": "create-1"}
    first = client.post("/v1/webhook_endpoints", json=BODY, headers=headers)
    again = client.post("/v1/webhook_endpoints", json=BODY, headers=headers)
    assert first.json()["secret"].startswith("whsec_")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["secret"] is None


@pytest.mark.parametrize(("body", "expected"), [
    ({"url": "http://example.com/hooks"}, (400, "https_required", "url")),
    ({"url": "ftp://example.com"}, (400, "invalid_url", "url")),
    ({"url": "https://example.com", "event_types": ["payment.succeeded", "payment.boom"]},
     (400, "unknown_event_type", "event_types[1]")),
    ({"url": "https://example.com", "merchant_id": "a b"}, (400, "invalid_merchant_id", "merchant_id")),
    ({"url": "https://example.com", "status": "paused"}, (400, "invalid_choice", "status")),
    ({"url": "https://example.com", "secret": "whsec_mine"}, (400, "unknown_field", "secret")),
    ({}, (400, "missing_field", "url")),
])
def test_create_validation_errors_name_the_field_and_write_nothing(client, tenant, body, expected):
    assert error(client.post("/v1/webhook_endpoints", json=body, headers=tenant.headers)) == expected
    assert client.get("/v1/webhook_endpoints", headers=tenant.headers).json()["data"] == []


def test_managing_endpoints_needs_the_configure_permission(client, db, tenant):
    finance = role_headers(db, tenant.id, Role.FINANCE)
    assert error(client.post("/v1/webhook_endpoints", json=BODY, headers=finance))[:2] == (403, "role_not_allowed")
    endpoint_id, _ = endpoint(db, tenant.id)
    assert client.get(f"/v1/webhook_endpoints/{endpoint_id}", headers=finance).status_code == 200
    assert error(client.post(f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret", headers=finance))[0] == 403
    assert error(client.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=finance))[0] == 403


def test_another_tenants_objects_are_not_found(client, db, tenant, other_tenant):
    endpoint_id, _ = endpoint(db, tenant.id)
    message_id = publish(db, tenant.id)
    other = other_tenant.headers
    assert error(client.get(f"/v1/webhook_endpoints/{endpoint_id}", headers=other)) == (
        404, "webhook_endpoint_not_found", "endpoint_id")
    assert error(client.patch(f"/v1/webhook_endpoints/{endpoint_id}", json={"description": "x"},
                              headers=other))[:2] == (404, "webhook_endpoint_not_found")
    assert error(client.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=other))[0] == 404
    assert error(client.post(f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret", headers=other))[0] == 404
    assert error(client.get(f"/v1/webhook_messages/{message_id}", headers=other)) == (
        404, "webhook_message_not_found", "message_id")
    assert error(client.get(f"/v1/webhook_messages/{message_id}/deliveries", headers=other))[0] == 404
    assert error(client.post(f"/v1/webhook_messages/{message_id}/replay", headers=other))[0] == 404
    assert client.post(f"/v1/webhook_messages/{message_id}/replay?endpoint_id={endpoint_id}",
                       headers=tenant.headers).status_code == 202  # while the owner can
    assert client.get("/v1/webhook_endpoints", headers=other).json()["data"] == []
    assert client.get("/v1/webhook_messages", headers=other).json()["data"] == []


def test_patch_changes_only_what_is_given(client, db, tenant):
    endpoint_id, _ = endpoint(db, tenant.id, event_types=["payment.failed"], merchant_id="mer_A")
    path = f"/v1/webhook_endpoints/{endpoint_id}"
    changed = client.patch(path, json={"status": "disabled", "description": "paused"}, headers=tenant.headers)
    assert changed.status_code == 200
    assert {k: changed.json()[k] for k in ("status", "description", "event_types", "merchant_id")} == {
        "status": "disabled", "description": "paused", "event_types": ["payment.failed"], "merchant_id": "mer_A"}
    unbound = client.patch(path, json={"merchant_id": None, "event_types": []}, headers=tenant.headers)
    assert (unbound.json()["merchant_id"], unbound.json()["event_types"]) == (None, [])
    assert error(client.patch(path, json={"url": None}, headers=tenant.headers)) == (400, "invalid_null", "url")
    assert error(client.patch(path, json={"url": "http://example.com"}, headers=tenant.headers)) == (
        400, "https_required", "url")
    assert client.get(path, headers=tenant.headers).json()["url"] == "https://example.com/hooks"


def test_delete_hides_the_endpoint(client, db, tenant):
    endpoint_id, _ = endpoint(db, tenant.id)
    deleted = client.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=tenant.headers)
    assert deleted.json() == {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}
    assert client.get(f"/v1/webhook_endpoints/{endpoint_id}", headers=tenant.headers).status_code == 404
    assert client.delete(f"/v1/webhook_endpoints/{endpoint_id}", headers=tenant.headers).status_code == 404


def test_rotate_secret_shows_the_new_secret_once(client, db, tenant, clock):
    created = client.post("/v1/webhook_endpoints", json=BODY, headers=tenant.headers).json()
    rotated = client.post(f"/v1/webhook_endpoints/{created['id']}/rotate_secret", headers=tenant.headers)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != created["secret"]
    fetched = client.get(f"/v1/webhook_endpoints/{created['id']}", headers=tenant.headers).json()
    assert fetched["previous_secret_expires_at"] == (clock.now() + timedelta(hours=24)).isoformat().replace(
        "+00:00", "Z")
    assert "secret" not in fetched


def test_messages_are_listed_newest_first_with_filters_and_cursor(client, db, tenant, clock):
    first = publish(db, tenant.id, "payment.succeeded", merchant_id="mer_A")
    clock.advance(timedelta(minutes=1))
    second = publish(db, tenant.id, "refund.failed", merchant_id="mer_B")
    clock.advance(timedelta(minutes=1))
    third = publish(db, tenant.id, "payment.succeeded", merchant_id="mer_B")

    def ids(query: str) -> list[str]:
        response = client.get(f"/v1/webhook_messages{query}", headers=tenant.headers)
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["data"]]

    page = client.get("/v1/webhook_messages?limit=2", headers=tenant.headers).json()
    assert [m["id"] for m in page["data"]] == [third, second] and page["has_more"]
    assert ids(f"?limit=2&starting_after={page['next_cursor']}") == [first]
    assert ids("?type=payment.succeeded") == [third, first]
    assert ids("?merchant_id=mer_B") == [third, second]
    start = (clock.now() - timedelta(minutes=1)).isoformat()
    assert ids(f"?created_from={start.replace('+', '%2B')}") == [third, second]
    assert ids(f"?created_to={start.replace('+', '%2B')}") == [first]
    message = client.get(f"/v1/webhook_messages/{first}", headers=tenant.headers).json()
    assert message["payload"] == {"type": "payment.succeeded", "timestamp": "2026-03-02T09:00:00Z",
                                  "data": {"id": "pay_1", "amount": 1250}}
    assert error(client.get("/v1/webhook_messages?type=payment.boom", headers=tenant.headers)) == (
        400, "unknown_event_type", "type")
    assert error(client.get("/v1/webhook_messages?created_from=yesterday", headers=tenant.headers))[:2] == (
        400, "invalid_datetime")


def test_deliveries_and_replay(client, db, tenant, clock):
    endpoint_id, _ = endpoint(db, tenant.id)
    bound, _ = endpoint(db, tenant.id, merchant_id="mer_Z")
    message_id = publish(db, tenant.id)
    drain(db, registry=registry(answering(500)))
    listed = client.get(f"/v1/webhook_messages/{message_id}/deliveries", headers=tenant.headers)
    assert listed.status_code == 200
    [attempt] = listed.json()["data"]
    assert {k: attempt[k] for k in ("object", "message_id", "endpoint_id", "attempt", "status", "status_code",
                                    "response_body", "error", "trigger")} == {
        "object": "webhook_delivery", "message_id": message_id, "endpoint_id": endpoint_id, "attempt": 1,
        "status": "failed", "status_code": 500, "response_body": "nope", "error": "HTTP 500",
        "trigger": "scheduled"}

    replayed = client.post(f"/v1/webhook_messages/{message_id}/replay?endpoint_id={endpoint_id}",
                           headers=tenant.headers)
    assert replayed.status_code == 202
    assert replayed.json() == {"message_id": message_id, "object": "webhook_replay", "endpoint_ids": [endpoint_id]}
    assert [r.payload["trigger"] for r in outbox_rows(db)] == ["scheduled", "replay"]
    drain(db, registry=registry(answering(200)))
    statuses = client.get(f"/v1/webhook_messages/{message_id}/deliveries?endpoint_id={endpoint_id}",
                          headers=tenant.headers).json()["data"]
    assert [(d["attempt"], d["status"], d["trigger"]) for d in statuses] == [
        (1, "failed", "scheduled"), (2, "succeeded", "replay")]

    assert error(client.post(f"/v1/webhook_messages/{message_id}/replay?endpoint_id={bound}",
                             headers=tenant.headers)) == (400, "endpoint_not_subscribed", "endpoint_id")
    assert error(client.post(f"/v1/webhook_messages/{message_id}/replay?endpoint_id=we_nope",
                             headers=tenant.headers)) == (404, "webhook_endpoint_not_found", "endpoint_id")
    everyone = client.post(f"/v1/webhook_messages/{message_id}/replay", headers=tenant.headers)
    assert everyone.json()["endpoint_ids"] == [endpoint_id]
    finance = role_headers(db, tenant.id, Role.FINANCE)
    assert error(client.post(f"/v1/webhook_messages/{message_id}/replay", headers=finance))[0] == 403
