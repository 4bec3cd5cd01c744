"""Staff users and their sign-in sessions over HTTP."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from finloop.tenancy.models import User
from finloop.tenancy.service import Role
from tests.tenancy.helpers import PASSWORD, error, make_user, sign_in

USER_FIELDS = {"id", "object", "email", "name", "roles", "status", "created_at"}


def _create(client, tenant, email="ana@example.com", roles=("finance",)):  # type: ignore[no-untyped-def]
    response = client.post("/v1/users", headers=tenant.headers, json={
        "email": email, "password": PASSWORD, "roles": list(roles), "name": "Ana"})
    assert response.status_code == 201, response.text
    return response.json()


def test_created_user_never_shows_a_password_and_stores_only_an_argon2_hash(db, client, tenant):
    user = _create(client, tenant, email=" Ana@Example.com ", roles=("support", "finance", "support"))
    assert set(user) == USER_FIELDS
    assert (user["email"], user["roles"], user["status"]) == ("ana@example.com", ["finance", "support"], "active")
    assert client.get(f"/v1/users/{user['id']}", headers=tenant.headers).json() == user
    with db.uow(read_only=True) as uow:
        stored = uow.session.scalar(select(User.password_hash).where(User.id == user["id"]))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_duplicate_email_is_a_409(client, tenant):
    _create(client, tenant)
    response = client.post("/v1/users", headers=tenant.headers, json={
        "email": "ANA@example.com", "password": PASSWORD, "roles": ["support"]})
    assert error(response) == (409, "user_exists")


def test_bad_user_input_is_a_400(client, tenant):
    cases = [
        ({"email": "ana@example.com", "password": "short", "roles": ["finance"]}, "too_short"),
        ({"email": "not-an-email", "password": PASSWORD, "roles": ["finance"]}, "invalid_email"),
        ({"email": "ana@example.com", "password": PASSWORD, "roles": ["root"]}, "invalid_choice"),
        ({"email": "ana@example.com", "password": PASSWORD, "roles": []}, "too_few_items"),
        ({"email": "ana@example.com", "password": PASSWORD, "roles": ["finance"], "password_hash": "x"},
         "unknown_field"),
    ]
    for body, code in cases:
        assert error(client.post("/v1/users", json=body, headers=tenant.headers)) == (400, code), body
    assert client.get("/v1/users", headers=tenant.headers).json()["data"] == []


def test_users_list_pages_by_cursor(client, tenant):
    first, second = _create(client, tenant, "a@example.com"), _create(client, tenant, "b@example.com")
    page = client.get("/v1/users", params={"limit": 1}, headers=tenant.headers).json()
    assert [u["id"] for u in page["data"]] == [first["id"]] and page["has_more"]
    rest = client.get("/v1/users", params={"starting_after": page["next_cursor"]}, headers=tenant.headers).json()
    assert [u["id"] for u in rest["data"]] == [second["id"]] and not rest["has_more"]


def test_role_change_applies_to_the_next_request_of_a_signed_in_user(db, client, tenant):
    user = _create(client, tenant, roles=("admin",))
    session = sign_in(client, tenant.id, user["email"])
    assert client.put("/v1/tenant/holidays/2026-12-25", headers=session).status_code == 200
    changed = client.patch(f"/v1/users/{user['id']}", json={"roles": ["auditor"]}, headers=tenant.headers)
    assert changed.json()["roles"] == ["auditor"]
    assert error(client.put("/v1/tenant/holidays/2026-12-26", headers=session)) == (403, "role_not_allowed")
    events = client.get("/v1/audit-events", params={"object_id": user["id"]}, headers=tenant.headers).json()["data"]
    assert [(e["action"], (e["before"] or {}).get("roles"), e["after"]["roles"]) for e in events] == [
        ("user.created", None, ["admin"]), ("user.updated", ["admin"], ["auditor"])]
    assert "password" not in str(events) and PASSWORD not in str(events)


def test_bad_or_unknown_user_update_is_refused(client, tenant):
    user = _create(client, tenant)
    for body, code in [({"status": "deleted"}, "invalid_choice"), ({"roles": []}, "too_few_items"),
                       ({"email": "x@example.com"}, "unknown_field")]:
        assert error(client.patch(f"/v1/users/{user['id']}", json=body, headers=tenant.headers)) == (400, code)
    assert error(client.get("/v1/users/usr_nope", headers=tenant.headers)) == (404, "user_not_found")
    assert error(client.patch("/v1/users/usr_nope", json={"status": "disabled"}, headers=tenant.headers)) == (
        404, "user_not_found")


# ---------------------------------------------------------------------------------------------- sessions


def test_signed_in_user_acts_as_themselves(db, client, tenant):
    user_id = make_user(db, tenant.id, "ana@example.com", Role.ADMIN)
    response = client.post("/v1/sessions", json={"tenant_id": tenant.id, "email": "ana@example.com",
                                                 "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("fl_ss_") and body["user_id"] == user_id
    assert body["expires_at"] == "2026-03-02T17:00:00Z"
    headers = {"Authorization": f"Bearer {body['token']}"}
    client.put("/v1/tenant/holidays/2026-12-25", headers=headers)
    event = client.get("/v1/audit-events", params={"object_type": "holiday"}, headers=headers).json()["data"][0]
    assert event["actor"] == f"user:{user_id}"


def test_wrong_password_unknown_email_and_unknown_tenant_get_the_same_answer(db, client, tenant):
    make_user(db, tenant.id, "ana@example.com", Role.ADMIN)
    attempts = [(tenant.id, "ana@example.com", "wrong password!"), (tenant.id, "bob@example.com", PASSWORD),
                ("ten_nope", "ana@example.com", PASSWORD)]
    answers = set()
    for tenant_id, email, password in attempts:
        response = client.post("/v1/sessions", json={"tenant_id": tenant_id, "email": email, "password": password})
        assert response.status_code == 401
        answers.add(response.text)
    assert answers == {'{"error":{"type":"authentication_error","code":"invalid_credentials",'
                       '"message":"Wrong email or password.","param":null}}'}


def test_session_expires_after_its_ttl(db, client, tenant, clock, settings):
    make_user(db, tenant.id, "ana@example.com", Role.FINANCE)
    headers = sign_in(client, tenant.id, "ana@example.com")
    clock.advance(timedelta(seconds=settings.session_ttl_seconds - 1))
    assert client.get("/v1/tenant", headers=headers).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert error(client.get("/v1/tenant", headers=headers)) == (401, "session_expired")


def test_disabled_user_loses_their_session_and_cannot_sign_in(db, client, tenant):
    user_id = make_user(db, tenant.id, "ana@example.com", Role.FINANCE)
    headers = sign_in(client, tenant.id, "ana@example.com")
    assert client.patch(f"/v1/users/{user_id}", json={"status": "disabled"}, headers=tenant.headers).status_code == 200
    assert error(client.get("/v1/tenant", headers=headers)) == (401, "session_expired")
    response = client.post("/v1/sessions", json={"tenant_id": tenant.id, "email": "ana@example.com",
                                                 "password": PASSWORD})
    assert error(response) == (401, "invalid_credentials")
    client.patch(f"/v1/users/{user_id}", json={"status": "active"}, headers=tenant.headers)
    assert client.get("/v1/tenant", headers=headers).status_code == 200


def test_sign_out_ends_only_that_session(db, client, tenant):
    make_user(db, tenant.id, "ana@example.com", Role.FINANCE)
    first, second = sign_in(client, tenant.id, "ana@example.com"), sign_in(client, tenant.id, "ana@example.com")
    response = client.delete("/v1/sessions/current", headers=first)
    assert response.status_code == 200 and response.json()["revoked_at"] == "2026-03-02T09:00:00Z"
    assert error(client.get("/v1/tenant", headers=first)) == (401, "session_expired")
    assert client.get("/v1/tenant", headers=second).status_code == 200


def test_bad_session_requests_are_400s(client, tenant):
    assert error(client.delete("/v1/sessions/current", headers=tenant.headers)) == (400, "session_required")
    assert error(client.post("/v1/sessions", json={"tenant_id": tenant.id, "email": "a@example.com"})) == (
        400, "missing_field")
    assert error(client.post("/v1/sessions", content=b"not json", headers={"Content-Type": "application/json"})) == (
        400, "malformed_json")
