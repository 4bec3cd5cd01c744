"""Rules of the tenancy service that the HTTP tests do not reach."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from finloop.core.errors import Conflict, InvalidRequest, Unauthenticated
from finloop.tenancy import service as tenancy
from tests.tenancy.helpers import PASSWORD, make_user


class CountingHasher(PasswordHasher):
    """The cheap hasher, counting how many passwords it checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=64, parallelism=1)
        self.checks = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.checks += 1
        return super().verify(hash, password)


def test_sign_in_costs_one_password_check_whether_or_not_the_email_exists(db, tenant, monkeypatch):
    hasher = CountingHasher()
    monkeypatch.setattr(tenancy, "_hasher", hasher)
    make_user(db, tenant.id, "ana@example.com", tenancy.Role.FINANCE)
    for email, password in [("ana@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)]:
        with db.uow(read_only=True) as uow, pytest.raises(Unauthenticated) as caught:
            tenancy.check_credentials(uow, tenant.id, email=email, password=password)
        assert caught.value.code == "invalid_credentials"
    assert hasher.checks == 2


def test_tenant_settings_are_checked_when_it_is_created(db):
    cases = [("cutoff", "0009:0", "invalid_cutoff"), ("cutoff", "+9:05", "invalid_cutoff"),
             ("timezone", "Not/AZone", "unknown_timezone"), ("weekend", [0, 7], "invalid_weekend"),
             ("name", "  ", "invalid_name")]
    for field, value, code in cases:
        with db.uow() as uow, pytest.raises(InvalidRequest) as caught:
            tenancy.create_tenant(uow, **{"name": "Acme", field: value})
        assert caught.value.code == code, field


def test_a_key_past_its_grace_period_cannot_be_rotated(db, tenant, clock):
    admin = tenancy.system_principal(tenant.id, "test")
    with db.uow() as uow:
        key, _ = tenancy.issue_api_key(uow, tenant.id, name="bot", actor="test")
        tenancy.rotate_api_key(uow, admin, key.id, grace_seconds=60)
        uow.commit()
    clock.advance(timedelta(seconds=60))
    with db.uow() as uow, pytest.raises(Conflict) as caught:
        tenancy.rotate_api_key(uow, admin, key.id)
    assert caught.value.code == "api_key_expired"


def test_a_user_disabled_between_password_check_and_session_gets_no_session(db, tenant):
    user_id = make_user(db, tenant.id, "ana@example.com", tenancy.Role.FINANCE)
    with db.uow(read_only=True) as uow:
        checked = tenancy.check_credentials(uow, tenant.id, email="ana@example.com", password=PASSWORD).id
    with db.uow() as uow:
        tenancy.update_user(uow, tenancy.system_principal(tenant.id, "test"), user_id, status="disabled")
        uow.commit()
    with db.uow() as uow, pytest.raises(Unauthenticated):
        tenancy.start_session(uow, tenant.id, checked, ttl_seconds=60)
