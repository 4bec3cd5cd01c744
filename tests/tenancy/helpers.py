"""Builders for tenancy tests: keys of a given role, staff users, and signed-in sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from finloop.db.uow import Database
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Role

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2 with the smallest cost: the real parameters take ~0.2 s a hash on this machine."""
    monkeypatch.setattr(tenancy, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    yield


def key_headers(db: Database, tenant_id: str, role: Role) -> dict[str, str]:
    with db.uow() as uow:
        _, secret = tenancy.issue_api_key(uow, tenant_id, name=f"{role.value} key", role=role, actor="test")
        uow.commit()
    return {"Authorization": f"Bearer {secret}"}


def make_user(db: Database, tenant_id: str, email: str, *roles: Role, password: str = PASSWORD) -> str:
    with db.uow() as uow:
        user = tenancy.create_user(uow, tenant_id, email=email, password=password,
                                   roles=[r.value for r in roles], actor="test")
        uow.commit()
        return user.id


def sign_in(client, tenant_id: str, email: str, password: str = PASSWORD) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = client.post("/v1/sessions", json={"tenant_id": tenant_id, "email": email, "password": password})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def staff(db: Database, client, tenant_id: str, email: str, *roles: Role) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Create a user and return the headers of a session (opened by the service: sign-in has its own tests)."""
    user_id = make_user(db, tenant_id, email, *roles)
    with db.uow() as uow:
        _, token = tenancy.start_session(uow, tenant_id, user_id, ttl_seconds=3600)
        uow.commit()
    return {"Authorization": f"Bearer {token}"}


def error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return response.status_code, response.json()["error"]["code"]
