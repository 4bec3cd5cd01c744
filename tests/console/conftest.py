"""Console test helpers: staff users who sign in through the real pages (password, then TOTP) and post
forms with their session's CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyotp
import pytest
from fastapi.testclient import TestClient

from finloop.db.uow import Database
from finloop.tenancy import service as tenancy
from tests.conftest import TenantHandle
from tests.payments.conftest import sandbox, shop  # noqa: F401  (fixtures of the payments pages' tests)
from tests.tenancy.helpers import fast_passwords  # noqa: F401  (autouse: cheap argon2 for sign-ins)

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SECRET = re.compile(r"data-totp-secret>([A-Z2-7]+)<")


@dataclass
class StaffBrowser:
    """A signed-in console user: GET pages, POST forms (the CSRF token is taken from the page posted from)."""

    client: TestClient
    user_id: str
    email: str
    secret: str

    def get(self, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.client.get(path, **kwargs)  # type: ignore[arg-type]

    def csrf(self, page: str = "/console") -> str:
        found = _CSRF.search(self.client.get(page).text)
        assert found, f"no form on {page}: {self.client.get(page).text[-1500:]}"
        return found.group(1)

    def post(self, path: str, data: dict[str, str] | None = None, *, page: str = "/console"):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={**(data or {}), "csrf_token": self.csrf(page)}, follow_redirects=False)


def totp_code(db: Database, secret: str, offset_steps: int = 0) -> str:
    """The code for the database clock's current 30-second step (plus ``offset_steps``)."""
    with db.uow(read_only=True) as uow:
        now = uow.clock.now()
    return pyotp.TOTP(secret).at(int(now.timestamp()) + 30 * offset_steps)


def make_staff(db: Database, tenant_id: str, email: str, roles: list[str]) -> str:
    with db.uow() as uow:
        user = tenancy.create_user(uow, tenant_id, email=email, password=PASSWORD, roles=roles, actor="test")
        uow.commit()
        return user.id


def sign_in(app, db: Database, tenant_id: str, email: str, roles: list[str]) -> StaffBrowser:  # type: ignore[no-untyped-def]
    """Create a user and sign them in through the console's pages, enrolling their authenticator."""
    user_id = make_staff(db, tenant_id, email, roles)
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/console/sign-in")
    token = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    answer = client.post("/console/sign-in", data={"tenant_id": tenant_id, "email": email, "password": PASSWORD,
                                                   "csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    enrol = client.get("/console/sign-in/second-factor")
    secret = _SECRET.search(enrol.text).group(1)  # type: ignore[union-attr]
    token = _CSRF.search(enrol.text).group(1)  # type: ignore[union-attr]
    done = client.post("/console/sign-in/second-factor", data={"code": totp_code(db, secret), "csrf_token": token},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    return StaffBrowser(client, user_id, email, secret)


@pytest.fixture
def staff_factory(app, db: Database, tenant: TenantHandle):  # type: ignore[no-untyped-def]
    """``staff_factory("finance")`` signs in a new user with that role (or roles, comma-separated)."""
    count = 0

    def make(roles: str) -> StaffBrowser:
        nonlocal count
        count += 1
        return sign_in(app, db, tenant.id, f"{roles.replace(',', '-')}{count}@example.com", roles.split(","))

    return make
