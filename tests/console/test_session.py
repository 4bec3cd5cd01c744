"""Signing in to the console: password, then TOTP (enrolled at the first sign-in), CSRF, expiry, sign-out."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from fastapi.testclient import TestClient

from finloop.audit.models import AuditEvent
from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from tests.conftest import TenantHandle
from tests.console.conftest import _CSRF, PASSWORD, make_staff, sign_in, totp_code


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    answer = client.get("/console/payments", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in?next=/console/payments")


def test_sign_in_enrols_then_asks_for_the_code(app, db: Database, tenant: TenantHandle, clock: FrozenClock) -> None:  # type: ignore[no-untyped-def]
    staff = sign_in(app, db, tenant.id, "ana@example.com", ["finance"])
    overview = staff.get("/console")
    assert overview.status_code == 200 and "Overview" in overview.text
    # A second sign-in does not show the secret again and refuses the code already used.
    client = TestClient(app, raise_server_exceptions=False)
    token = _CSRF.search(client.get("/console/sign-in").text).group(1)  # type: ignore[union-attr]
    client.post("/console/sign-in", data={"tenant_id": tenant.id, "email": "ana@example.com", "password": PASSWORD,
                                          "csrf_token": token})
    page = client.get("/console/sign-in/second-factor")
    assert "data-totp-secret" not in page.text
    replay = client.post("/console/sign-in/second-factor",
                         data={"code": totp_code(db, staff.secret), "csrf_token": token}, follow_redirects=False)
    assert replay.status_code == 401 and "already used" in replay.text
    clock.advance(timedelta(seconds=30))
    ok = client.post("/console/sign-in/second-factor",
                     data={"code": totp_code(db, staff.secret), "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303


def test_wrong_password_and_missing_csrf_write_nothing(app, db: Database, tenant: TenantHandle) -> None:  # type: ignore[no-untyped-def]
    make_staff(db, tenant.id, "bo@example.com", ["support"])
    client = TestClient(app, raise_server_exceptions=False)
    token = _CSRF.search(client.get("/console/sign-in").text).group(1)  # type: ignore[union-attr]
    wrong = client.post("/console/sign-in", data={"tenant_id": tenant.id, "email": "bo@example.com",
                                                  "password": "nope", "csrf_token": token}, follow_redirects=False)
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    forged = client.post("/console/sign-in", data={"tenant_id": tenant.id, "email": "bo@example.com",
                                                   "password": PASSWORD, "csrf_token": "forged"},
                         follow_redirects=False)
    assert forged.status_code == 401 and "csrf_failed" in forged.text


def test_a_form_without_the_session_token_is_refused(staff_factory, db: Database) -> None:  # type: ignore[no-untyped-def]
    staff = staff_factory("admin")
    with db.uow(read_only=True) as uow:
        before = uow.session.query(AuditEvent).count()
    answer = staff.client.post("/console/sign-out", data={"csrf_token": "not-the-token"}, follow_redirects=False)
    assert answer.status_code == 403 and "csrf_failed" in answer.text
    with db.uow(read_only=True) as uow:
        assert uow.session.query(AuditEvent).count() == before
    assert staff.get("/console").status_code == 200  # still signed in


def test_sessions_expire_when_idle_and_at_sign_out(staff_factory, clock: FrozenClock) -> None:  # type: ignore[no-untyped-def]
    staff = staff_factory("auditor")
    clock.advance(timedelta(minutes=29))
    assert staff.get("/console").status_code == 200
    clock.advance(timedelta(minutes=31))
    assert staff.get("/console", follow_redirects=False).status_code == 303
    other = staff_factory("auditor")
    out = other.post("/console/sign-out")
    assert out.status_code == 303
    assert other.get("/console", follow_redirects=False).status_code == 303


def test_the_api_asks_an_enrolled_user_for_the_code(staff_factory, client: TestClient, tenant: TenantHandle,
                                                     db: Database, clock: FrozenClock) -> None:  # type: ignore[no-untyped-def]
    staff = staff_factory("finance")
    body = {"tenant_id": tenant.id, "email": staff.email, "password": PASSWORD}
    missing = client.post("/v1/sessions", json=body)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "totp_required"
    clock.advance(timedelta(seconds=30))
    ok = client.post("/v1/sessions", json={**body, "totp_code": pyotp.TOTP(staff.secret).at(clock.now())})
    assert ok.status_code == 201, ok.text


def test_pages_are_never_framed_and_run_only_the_consoles_own_script(staff_factory) -> None:  # type: ignore[no-untyped-def]
    page = staff_factory("auditor").get("/console")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and "javascript:" not in page.text
