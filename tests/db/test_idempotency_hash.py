"""The Idempotency-Key store remembers a request as a keyed HMAC, never as a plain (guessable) hash."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from finloop.config import Settings
from finloop.db import idempotency
from finloop.db.models import IdempotencyKey
from finloop.vault import crypto

#: What a card tokenization body looks like: the fingerprint the store must not give away.
CARD_FINGERPRINT = b'POST\n/v1/cards\n\n{"number":"4242424242424242","exp_month":12,"exp_year":2030,"cvc":"123"}'
KEY = b"k" * 32


def claim(db, key: str, fingerprint: bytes, *, hash_key: bytes = KEY) -> idempotency.Claim:
    return idempotency.claim(db, tenant_id="ten_x", key=key, method="POST", path="/v1/cards",
                             fingerprint=fingerprint, ttl_seconds=86_400, lease_seconds=30, hash_key=hash_key)


def stored_hash(db, key: str) -> str:
    with db.uow(read_only=True) as uow:
        return uow.session.scalars(select(IdempotencyKey.request_hash).where(IdempotencyKey.key == key)).one()


@pytest.fixture
def tenant_x(db) -> None:
    from finloop.tenancy.models import Tenant

    with db.uow() as uow:
        uow.session.add(Tenant(id="ten_x", name="x", timezone="UTC", cutoff="00:00", weekend=[5, 6], is_demo=False,
                               created_at=uow.clock.now()))
        uow.commit()


def test_stored_hash_is_not_the_unkeyed_sha256_of_salt_and_fingerprint(db, tenant_x):
    claim(db, "card-1", CARD_FINGERPRINT)
    stored = stored_hash(db, "card-1")
    version, salt, digest = stored.split("$")
    assert version == idempotency.HASH_VERSION and len(salt) == 16 and len(digest) == 64
    assert len(stored) <= 100  # the column
    unkeyed = hashlib.sha256(salt.encode() + CARD_FINGERPRINT).hexdigest()
    assert digest != unkeyed and unkeyed not in stored
    # Whoever holds the table but not the key cannot confirm a guess of the card body.
    assert not idempotency.same_request(stored, CARD_FINGERPRINT, key=b"a guessed key")
    assert idempotency.same_request(stored, CARD_FINGERPRINT, key=KEY)


def test_same_key_and_body_replays_and_another_body_is_refused(db, tenant_x):
    first = claim(db, "card-2", CARD_FINGERPRINT)
    with db.uow() as uow:
        idempotency.complete(uow, first, 201, '{"id": "card_1"}')
        uow.commit()
    assert claim(db, "card-2", CARD_FINGERPRINT).replay == (201, '{"id": "card_1"}')
    with pytest.raises(idempotency.KeyReused):
        claim(db, "card-2", CARD_FINGERPRINT.replace(b"4242424242424242", b"4000056655665556"))
    # A store read with another key (a rotated secret) sees another request, never a replay of this one.
    with pytest.raises(idempotency.KeyReused):
        claim(db, "card-2", CARD_FINGERPRINT, hash_key=b"another key")


def test_a_row_written_before_the_hmac_is_still_recognised_until_it_expires(db, tenant_x, clock):
    salt = "0123456789abcdef"
    legacy = f"{salt}${hashlib.sha256(salt.encode() + CARD_FINGERPRINT).hexdigest()}"
    now = clock.now()
    with db.uow() as uow:
        uow.session.add(IdempotencyKey(
            tenant_id="ten_x", key="old", method="POST", path="/v1/cards", request_hash=legacy, status="completed",
            response_status=201, response_body="{}", locked_until=None, created_at=now - timedelta(hours=1),
            expires_at=now + timedelta(hours=23)))
        uow.commit()
    assert claim(db, "old", CARD_FINGERPRINT).replay == (201, "{}")
    with pytest.raises(idempotency.KeyReused):
        claim(db, "old", CARD_FINGERPRINT + b" ")
    # Once expired, the key is taken afresh and rewritten in the keyed form.
    clock.advance(timedelta(hours=24))
    assert claim(db, "old", CARD_FINGERPRINT).replay is None
    assert stored_hash(db, "old").startswith(f"{idempotency.HASH_VERSION}$")


def test_hash_key_comes_from_the_setting_else_from_the_vault_master_key():
    configured = Settings(idempotency_hash_key=SecretStr("s3cret"))
    assert idempotency.hash_key(configured) == b"s3cret"
    master = crypto.MasterKey.generate()
    crypto.use_master_key(master)
    derived = idempotency.hash_key(Settings(idempotency_hash_key=None))
    assert derived == master.derive("idempotency") and len(derived) == 32
    crypto.use_master_key(crypto.MasterKey.generate())
    assert idempotency.hash_key(Settings(idempotency_hash_key=None)) != derived
