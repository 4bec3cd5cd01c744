"""Every tenancy endpoint: 401 without credentials, 403 for a role that may not act, 404 for another
tenant's object. The auditor reads everything and acts on nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from finloop.audit.models import AuditEvent
from finloop.tenancy.service import Role
from tests.tenancy.helpers import error, key_headers, make_user, staff

READS = ["/v1/tenant", "/v1/tenant/holidays", "/v1/api-keys", "/v1/users", "/v1/users/{user}",
         "/v1/approvals", "/v1/approvals/{approval}", "/v1/audit-events", "/v1/audit-events/verify"]

WRITES = [
    ("PATCH", "/v1/tenant/business-time", {"cutoff": "17:00"}),
    ("PUT", "/v1/tenant/holidays/2026-12-25", {"name": "Christmas"}),
    ("DELETE", "/v1/tenant/holidays/2026-01-01", None),
    ("POST", "/v1/api-keys", {"name": "ci", "role": "finance"}),
    ("POST", "/v1/api-keys/{key}/rotate", {"grace_seconds": 60}),
    ("POST", "/v1/api-keys/{key}/revoke", None),
    ("POST", "/v1/users", {"email": "new@example.com", "password": "a long enough secret", "roles": ["support"]}),
    ("PATCH", "/v1/users/{user}", {"status": "disabled"}),
    ("POST", "/v1/approvals", {"action": "refund.create", "required_role": "finance"}),
    ("POST", "/v1/approvals/{approval}/approve", None),
    ("POST", "/v1/approvals/{approval}/reject", {"reason": "no"}),
]


@pytest.fixture
def world(db, client, tenant):
    """A tenant with a holiday, a finance user, a pending approval and a spare key."""
    admin = staff(db, client, tenant.id, "admin@example.com", Role.ADMIN)
    assert client.put("/v1/tenant/holidays/2026-01-01", json={"name": "New Year"}, headers=admin).status_code == 200
    finance = make_user(db, tenant.id, "fin@example.com", Role.FINANCE)
    approval = client.post("/v1/approvals", json={"action": "payout.create", "required_role": "finance"},
                           headers=admin).json()["id"]
    key = client.post("/v1/api-keys", json={"name": "spare", "role": "support"}, headers=admin).json()["id"]
    return {"user": finance, "approval": approval, "key": key}


def _events(db) -> int:
    with db.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(AuditEvent))


def test_every_endpoint_but_sign_in_needs_credentials(client, world):
    for path in READS:
        assert error(client.get(path.format(**world))) == (401, "missing_api_key"), path
    for method, path, body in WRITES:
        response = client.request(method, path.format(**world), json=body)
        assert error(response) == (401, "missing_api_key"), (method, path)
    assert error(client.delete("/v1/sessions/current")) == (401, "missing_api_key")


def test_unknown_bearer_token_is_refused(client):
    response = client.get("/v1/tenant", headers={"Authorization": "Bearer fl_sk_not-a-real-key"})
    assert error(response) == (401, "invalid_api_key")


def test_auditor_reads_everything(db, client, tenant, world):
    auditor = staff(db, client, tenant.id, "audit@example.com", Role.AUDITOR)
    for path in READS:
        response = client.get(path.format(**world), headers=auditor)
        assert response.status_code == 200, (path, response.text)


def test_auditor_acts_on_nothing_and_changes_nothing(db, client, tenant, world):
    auditor = staff(db, client, tenant.id, "audit@example.com", Role.AUDITOR)
    before = _events(db)
    for method, path, body in WRITES:
        response = client.request(method, path.format(**world), json=body, headers=auditor)
        assert error(response) == (403, "role_not_allowed"), (method, path, response.text)
    assert _events(db) == before
    assert client.get("/v1/tenant", headers=auditor).json()["cutoff"] == "00:00"


def test_only_admins_configure_the_tenant_keys_and_users(db, client, tenant, world):
    admin_only = [w for w in WRITES if "approvals" not in w[1]]
    for role in (Role.FINANCE, Role.SUPPORT, Role.RISK_ANALYST):
        headers = key_headers(db, tenant.id, role)
        for method, path, body in admin_only:
            response = client.request(method, path.format(**world), json=body, headers=headers)
            assert error(response) == (403, "role_not_allowed"), (role, method, path)


def test_another_tenants_objects_are_not_found(db, client, tenant, other_tenant, world):
    other = staff(db, client, other_tenant.id, "boss@other.example", Role.ADMIN, Role.FINANCE)
    expected = {
        ("GET", "/v1/users/{user}"): "user_not_found",
        ("PATCH", "/v1/users/{user}"): "user_not_found",
        ("GET", "/v1/approvals/{approval}"): "approval_not_found",
        ("POST", "/v1/approvals/{approval}/approve"): "approval_not_found",
        ("POST", "/v1/approvals/{approval}/reject"): "approval_not_found",
        ("POST", "/v1/api-keys/{key}/rotate"): "api_key_not_found",
        ("POST", "/v1/api-keys/{key}/revoke"): "api_key_not_found",
        ("DELETE", "/v1/tenant/holidays/2026-01-01"): "holiday_not_found",
    }
    bodies = {("PATCH", "/v1/users/{user}"): {"status": "disabled"}}
    for (method, path), code in expected.items():
        response = client.request(method, path.format(**world), json=bodies.get((method, path)), headers=other)
        assert error(response) == (404, code), (method, path)
    # And nothing of the first tenant changed.
    admin = key_headers(db, tenant.id, Role.ADMIN)
    assert client.get(f"/v1/users/{world['user']}", headers=admin).json()["status"] == "active"
    assert client.get(f"/v1/approvals/{world['approval']}", headers=admin).json()["status"] == "pending"
    assert [h["day"] for h in client.get("/v1/tenant/holidays", headers=admin).json()] == ["2026-01-01"]
    keys = {k["id"]: k["status"] for k in client.get("/v1/api-keys", headers=admin).json()["data"]}
    assert keys[world["key"]] == "active"


def test_lists_never_show_another_tenants_rows(db, client, tenant, other_tenant, world):
    other = key_headers(db, other_tenant.id, Role.AUDITOR)
    assert client.get("/v1/users", headers=other).json()["data"] == []
    assert client.get("/v1/approvals", headers=other).json()["data"] == []
    events = client.get("/v1/audit-events", headers=other).json()["data"]
    assert events and {e["object_id"] for e in events}.isdisjoint(set(world.values()) | {tenant.id})
    keys = client.get("/v1/api-keys", headers=other).json()["data"]
    assert world["key"] not in {k["id"] for k in keys}
    assert client.get("/v1/tenant", headers=other).json()["id"] == other_tenant.id
    assert client.get("/v1/tenant/holidays", headers=other).json() == []
