"""API keys over HTTP: issue, list, rotate with a grace period, revoke."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select

from finloop.tenancy.models import ApiKey
from tests.tenancy.helpers import error

READ_FIELDS = {"id", "object", "name", "prefix", "role", "status", "created_at", "expires_at", "revoked_at",
               "rotated_from_id"}


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _create(client, tenant, role="finance"):  # type: ignore[no-untyped-def]
    response = client.post("/v1/api-keys", json={"name": "payments bot", "role": role}, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_issued_key_shows_its_secret_once_and_works(client, tenant):
    created = _create(client, tenant)
    assert set(created) == READ_FIELDS | {"secret"}
    assert created["secret"].startswith("fl_sk_") and created["prefix"] == created["secret"][:12]
    assert (created["role"], created["status"]) == ("finance", "active")
    assert client.get("/v1/tenant", headers=_bearer(created["secret"])).json()["id"] == tenant.id
    listed = client.get("/v1/api-keys", headers=tenant.headers).json()["data"]
    assert all(set(key) == READ_FIELDS for key in listed)
    assert created["secret"] not in str(listed)


def test_stored_digest_is_the_sha256_not_the_secret(db, client, tenant):
    created = _create(client, tenant)
    with db.uow(read_only=True) as uow:
        row = uow.session.scalar(select(ApiKey).where(ApiKey.id == created["id"]))
        stored = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
        assert row.digest == hashlib.sha256(created["secret"].encode()).hexdigest()
    assert not any(created["secret"] in value for value in stored)


def test_key_list_pages_by_cursor(client, tenant):
    ids = [tenant_key["id"] for tenant_key in (_create(client, tenant), _create(client, tenant))]
    first = client.get("/v1/api-keys", params={"limit": 2}, headers=tenant.headers).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    second = client.get("/v1/api-keys", params={"limit": 2, "starting_after": first["next_cursor"]},
                        headers=tenant.headers).json()
    assert second["has_more"] is False
    assert [k["id"] for k in first["data"] + second["data"]][-2:] == ids


def test_bad_key_requests_are_400s_and_issue_nothing(client, tenant):
    cases = [({"name": "x", "role": "root"}, {}, "invalid_choice"), ({"name": "", "role": "admin"}, {}, "too_short"),
             ({"name": "x"}, {}, "missing_field")]
    for body, headers, code in cases:
        response = client.post("/v1/api-keys", json=body, headers={**tenant.headers, **headers})
        assert error(response) == (400, code), body
    assert len(client.get("/v1/api-keys", headers=tenant.headers).json()["data"]) == 1


def test_replayed_key_creation_issues_one_key_and_never_stores_the_secret(client, tenant, db):
    from finloop.db.models import IdempotencyKey

    headers = {**tenant.headers, "Idempotency-Key": "new-key-1"}
    first = client.post("/v1/api-keys", json={"name": "ci", "role": "finance"}, headers=headers)
    again = client.post("/v1/api-keys", json={"name": "ci", "role": "finance"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["secret"].startswith("fl_sk_")
    assert again.json()["id"] == first.json()["id"] and again.json()["secret"] is None
    assert len(client.get("/v1/api-keys", headers=tenant.headers).json()["data"]) == 2
    with db.uow(read_only=True) as uow:
        stored = uow.session.query(IdempotencyKey).filter_by(key="new-key-1").one().response_body or ""
    assert '"id"' in stored and first.json()["secret"] not in stored


def test_rotated_key_works_during_the_grace_period_and_not_after(client, tenant, clock):
    old = _create(client, tenant)
    rotated = client.post(f"/v1/api-keys/{old['id']}/rotate", json={"grace_seconds": 3600}, headers=tenant.headers)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["rotated_from_id"] == old["id"] and new["role"] == "finance" and new["secret"] != old["secret"]
    clock.advance(timedelta(seconds=3599))
    assert client.get("/v1/tenant", headers=_bearer(old["secret"])).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert error(client.get("/v1/tenant", headers=_bearer(old["secret"]))) == (401, "invalid_api_key")
    assert client.get("/v1/tenant", headers=_bearer(new["secret"])).status_code == 200
    statuses = {k["id"]: k["status"] for k in client.get("/v1/api-keys", headers=tenant.headers).json()["data"]}
    assert (statuses[old["id"]], statuses[new["id"]]) == ("expired", "active")


def test_rotation_without_grace_ends_the_old_key_at_once(client, tenant):
    old = _create(client, tenant)
    new = client.post(f"/v1/api-keys/{old['id']}/rotate", headers=tenant.headers).json()
    assert error(client.get("/v1/tenant", headers=_bearer(old["secret"]))) == (401, "invalid_api_key")
    assert client.get("/v1/tenant", headers=_bearer(new["secret"])).status_code == 200


def test_a_key_is_rotated_once(client, tenant):
    old = _create(client, tenant)
    client.post(f"/v1/api-keys/{old['id']}/rotate", json={"grace_seconds": 60}, headers=tenant.headers)
    again = client.post(f"/v1/api-keys/{old['id']}/rotate", json={"grace_seconds": 86400}, headers=tenant.headers)
    assert error(again) == (409, "api_key_already_rotated")
    assert len(client.get("/v1/api-keys", headers=tenant.headers).json()["data"]) == 3


def test_bad_grace_periods_are_refused(client, tenant):
    old = _create(client, tenant)
    for grace in (-1, 31 * 86400, 1.5, "60"):
        response = client.post(f"/v1/api-keys/{old['id']}/rotate", json={"grace_seconds": grace},
                               headers=tenant.headers)
        assert response.status_code == 400, grace
    assert client.get("/v1/tenant", headers=_bearer(old["secret"])).status_code == 200


def test_revoked_key_is_refused_and_cannot_be_revoked_or_rotated_again(client, tenant):
    key = _create(client, tenant)
    revoked = client.post(f"/v1/api-keys/{key['id']}/revoke", headers=tenant.headers)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert revoked.json()["revoked_at"] == "2026-03-02T09:00:00Z"
    assert error(client.get("/v1/tenant", headers=_bearer(key["secret"]))) == (401, "invalid_api_key")
    assert error(client.post(f"/v1/api-keys/{key['id']}/revoke", headers=tenant.headers)) == (409, "api_key_revoked")
    assert error(client.post(f"/v1/api-keys/{key['id']}/rotate", headers=tenant.headers)) == (409, "api_key_revoked")
    assert error(client.post("/v1/api-keys/key_nope/revoke", headers=tenant.headers)) == (404, "api_key_not_found")


def test_key_lifecycle_lands_in_the_audit_log(client, tenant):
    key = _create(client, tenant)
    new = client.post(f"/v1/api-keys/{key['id']}/rotate", json={"grace_seconds": 60}, headers=tenant.headers).json()
    client.post(f"/v1/api-keys/{new['id']}/revoke", headers=tenant.headers)
    events = client.get("/v1/audit-events", params={"object_type": "api_key"}, headers=tenant.headers).json()["data"]
    admin_key = events[0]["object_id"]
    actor = f"key:{admin_key}"
    assert [(e["action"], e["object_id"], e["actor"]) for e in events[1:]] == [
        ("api_key.created", key["id"], actor), ("api_key.rotated", key["id"], actor),
        ("api_key.created", new["id"], actor), ("api_key.revoked", new["id"], actor)]
    assert events[2]["after"]["expires_at"] == "2026-03-02T09:01:00+00:00"
    assert key["secret"] not in str(events) and new["secret"] not in str(events)
