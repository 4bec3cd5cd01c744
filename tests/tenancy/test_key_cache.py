"""The in-process API-key cache: answers from memory for a bounded time, never past a revocation made here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from finloop.tenancy import service as tenancy
from finloop.tenancy.models import ApiKey
from finloop.tenancy.service import ApiKeyCache, Role


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _issue(db, tenant, role: Role = Role.FINANCE) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with db.uow() as uow:
        key, secret = tenancy.issue_api_key(uow, tenant.id, name="bot", role=role, actor="test")
        uow.commit()
    return key.id, secret


def _revoke_elsewhere(db, key_id: str) -> None:  # type: ignore[no-untyped-def]
    """A revocation by another process (the CLI, the other worker): this process's cache is not told."""
    with db.uow() as uow:
        uow.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(status="revoked"))
        uow.commit()


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The cache's clock, moved by hand: no sleeping."""
    now = [1_000.0]
    monkeypatch.setattr(tenancy, "monotonic", lambda: now[0])
    return now


def test_a_resolved_key_is_answered_from_memory(db, client, tenant, monotonic):
    _, secret = _issue(db, tenant)
    assert tenancy.cached_principal(secret, db.clock.now()) is None
    assert client.get("/v1/tenant", headers=_bearer(secret)).status_code == 200
    principal = tenancy.cached_principal(secret, db.clock.now())
    assert principal is not None and principal.tenant_id == tenant.id and principal.roles == {Role.FINANCE}


def test_a_key_revoked_elsewhere_is_refused_within_the_bound(db, client, tenant, monotonic):
    key_id, secret = _issue(db, tenant)
    assert client.get("/v1/tenant", headers=_bearer(secret)).status_code == 200
    _revoke_elsewhere(db, key_id)
    # Inside the bound the cached answer stands (the documented trade-off) ...
    monotonic[0] += tenancy.KEY_CACHE_SECONDS - 0.01
    assert client.get("/v1/tenant", headers=_bearer(secret)).status_code == 200
    # ... and past it the key is read again and refused.
    monotonic[0] += 0.02
    response = client.get("/v1/tenant", headers=_bearer(secret))
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_api_key")


def test_a_key_revoked_through_this_process_is_refused_at_once(client, tenant, monotonic):
    created = client.post("/v1/api-keys", json={"name": "bot", "role": "finance"}, headers=tenant.headers).json()
    assert client.get("/v1/tenant", headers=_bearer(created["secret"])).status_code == 200
    assert client.post(f"/v1/api-keys/{created['id']}/revoke", headers=tenant.headers).status_code == 200
    assert client.get("/v1/tenant", headers=_bearer(created["secret"])).status_code == 401


def test_a_rotated_key_stops_at_the_end_of_its_grace_even_when_cached(client, tenant, clock, monotonic):
    old = client.post("/v1/api-keys", json={"name": "bot", "role": "finance"}, headers=tenant.headers).json()
    rotated = client.post(f"/v1/api-keys/{old['id']}/rotate", json={"grace_seconds": 60}, headers=tenant.headers)
    assert rotated.status_code == 201
    assert client.get("/v1/tenant", headers=_bearer(old["secret"])).status_code == 200  # cached with its end
    clock.advance(timedelta(seconds=60))
    assert client.get("/v1/tenant", headers=_bearer(old["secret"])).status_code == 401


def test_a_read_racing_a_revocation_is_not_kept(db, tenant, monotonic):
    key_id, secret = _issue(db, tenant)
    principal = tenancy.system_principal(tenant.id, "test")
    with db.uow() as revoking:
        tenancy.revoke_api_key(revoking, principal, key_id)
        # Another request reads the key before the revocation commits: it still sees it active ...
        with db.uow(single_statement=True) as reading:
            assert tenancy.authenticate(reading, secret).tenant_id == tenant.id
        revoking.commit()
    # ... but what it cached is dropped by the commit, so the next request reads the revoked row.
    assert tenancy.cached_principal(secret, db.clock.now()) is None
    with db.uow(single_statement=True) as reading, pytest.raises(tenancy.Unauthenticated):
        tenancy.authenticate(reading, secret)


def test_the_cache_drops_entries_stored_across_a_forget_and_stays_bounded(monotonic):
    from datetime import UTC, datetime

    cache = ApiKeyCache(ttl=2.0, max_entries=2)
    now = datetime(2026, 3, 2, tzinfo=UTC)
    principal = tenancy.system_principal("ten_1", "key:k1")
    generation = cache.generation
    cache.forget("k1")  # a revocation lands while a request was reading key k1
    cache.put("d1", tenancy._CachedKey(principal, "k1", None, monotonic[0] + 2), generation)
    assert cache.get("d1", now) is None
    for n in range(3):
        cache.put(f"d{n}", tenancy._CachedKey(principal, f"k{n}", None, monotonic[0] + 2), cache.generation)
    assert len(cache._entries) <= 2
    assert cache.get("d2", now) == principal


def test_sessions_are_never_cached(db, client, tenant):
    assert tenancy.cached_principal("fl_ss_whatever", db.clock.now()) is None
