from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select, update

from finloop.audit import service as audit
from finloop.core.errors import InvalidRequest, NotFound
from finloop.vault import service
from finloop.vault.crypto import DecryptionFailed, MasterKey, VaultMisconfigured
from finloop.vault.domain import Brand
from finloop.vault.models import Card, VaultKey
from tests.conftest import make_tenant

PAN = "4242424242424242"


def tokenize(db, tenant_id, number=PAN, **kwargs):
    with db.uow() as uow:
        card = service.tokenize_card(uow, tenant_id, number=number, exp_month=kwargs.pop("exp_month", 12),
                                     exp_year=kwargs.pop("exp_year", 2030), **kwargs)
        uow.commit()
    return card


def reveal(db, tenant_id, card_id):
    with db.uow(read_only=True) as uow:
        return service.reveal_card(uow, tenant_id, card_id)


def test_tokenize_stores_only_ciphertext_and_reveals_the_card(db, tenant):
    card = tokenize(db, tenant.id, "4242 4242 4242 4242", holder="  Ada Lovelace ", customer_id="cus_1")
    assert card.id.startswith("card_") and card.brand is Brand.VISA and card.last4 == "4242"
    assert (card.exp_month, card.exp_year, card.customer_id, card.deleted_at) == (12, 2030, "cus_1", None)
    with db.uow(read_only=True) as uow:
        row = uow.session.get(Card, card.id)
        assert row is not None and row.ciphertext is not None
        assert PAN.encode() not in row.ciphertext and b"Ada" not in row.ciphertext
        assert row.key_id is not None and row.key_id.startswith("vk_")
    revealed = reveal(db, tenant.id, card.id)
    assert (revealed.number, revealed.exp_month, revealed.exp_year, revealed.holder, revealed.cvc) == (
        PAN, 12, 2030, "Ada Lovelace", None)
    assert PAN not in repr(revealed)


def test_fingerprint_is_the_same_card_within_a_tenant_only(db, tenant, other_tenant):
    first, again = tokenize(db, tenant.id), tokenize(db, tenant.id, "4242-4242-4242-4242", exp_year=2031)
    other_card = tokenize(db, tenant.id, "5555555555554444")
    elsewhere = tokenize(db, other_tenant.id)
    assert first.id != again.id and first.fingerprint == again.fingerprint
    assert other_card.fingerprint != first.fingerprint and elsewhere.fingerprint != first.fingerprint
    with db.uow(read_only=True) as uow:
        found = service.list_cards(uow, tenant.id, fingerprint=first.fingerprint)
    assert [c.id for c in found] == [first.id, again.id]


@pytest.mark.parametrize(("kwargs", "code", "param"), [
    ({"number": "4242424242424241"}, "invalid_card_number", "number"),
    ({"number": "42424242424"}, "invalid_card_number", "number"),
    ({"number": "4242abcd42424242"}, "invalid_card_number", "number"),
    ({"exp_month": 2, "exp_year": 2026}, "card_expired", "exp_year"),
    ({"exp_month": 13}, "invalid_expiry", "exp_month"),
    ({"holder": "bad\nname"}, "invalid_holder", "holder"),
    ({"customer_id": "c" * 41}, "invalid_customer", "customer_id"),
])
def test_invalid_input_writes_nothing(db, tenant, kwargs, code, param):
    with pytest.raises(InvalidRequest) as caught:
        tokenize(db, tenant.id, **kwargs)
    assert (caught.value.code, caught.value.param) == (code, param)
    if "number" in kwargs:
        assert kwargs["number"] not in caught.value.message
    with db.uow(read_only=True) as uow:
        assert uow.session.scalars(select(Card)).all() == []


def test_the_clock_decides_expiry(db, tenant, clock):
    tokenize(db, tenant.id, exp_month=3, exp_year=2026)  # T0 is March 2026: good through the month
    clock.advance(clock.now().replace(month=4, day=1) - clock.now())
    with pytest.raises(InvalidRequest, match="expired"):
        tokenize(db, tenant.id, exp_month=3, exp_year=2026)


def test_another_tenants_card_is_not_found(db, tenant, other_tenant):
    card = tokenize(db, tenant.id)
    with db.uow() as uow:
        for call in (service.get_card, service.reveal_card):
            with pytest.raises(NotFound):
                call(uow, other_tenant.id, card.id)
        with pytest.raises(NotFound):
            service.delete_card(uow, other_tenant.id, card.id, actor="test")


@pytest.mark.parametrize("tamper", ["ciphertext", "nonce", "other_row", "other_tenant"])
def test_tampered_or_moved_ciphertext_fails_to_decrypt(db, tenant, other_tenant, tamper):
    card, victim = tokenize(db, tenant.id), tokenize(db, tenant.id, "5555555555554444")
    foreign = tokenize(db, other_tenant.id, "5555555555554444")
    with db.uow() as uow:
        row = uow.session.get(Card, card.id)
        assert row is not None and row.ciphertext is not None and row.nonce is not None
        if tamper == "ciphertext":
            row.ciphertext = bytes([row.ciphertext[0] ^ 0x01]) + row.ciphertext[1:]
        elif tamper == "nonce":
            row.nonce = row.nonce[:-1] + bytes([row.nonce[-1] ^ 0x80])
        # Copying a ciphertext is changing the associated data it is checked against (tenant, card id).
        target = {"other_row": victim.id, "other_tenant": foreign.id}.get(tamper)
        if target is not None:
            uow.session.execute(update(Card).where(Card.id == target).values(
                nonce=row.nonce, ciphertext=row.ciphertext, key_id=row.key_id))
        uow.commit()
    broken = {"other_row": (tenant.id, victim.id), "other_tenant": (other_tenant.id, foreign.id)}.get(
        tamper, (tenant.id, card.id))
    with pytest.raises(DecryptionFailed) as caught:
        reveal(db, *broken)
    assert caught.value.code == "vault_decryption_failed" and broken[1] in caught.value.message


def test_rotation_keeps_old_cards_readable_and_rewrap_moves_them(db, tenant, other_tenant):
    old_cards = [tokenize(db, tenant.id), tokenize(db, other_tenant.id, "5555555555554444"),
                 tokenize(db, tenant.id, "378282246310005", exp_month=1, exp_year=2027)]
    with db.uow() as uow:
        first_key = service.key_status(uow)[0]
        new = service.rotate_data_key(uow, actor="test")
        uow.commit()
    assert new.version == 2 and new.status == "active" and new.id != first_key.id
    fresh = tokenize(db, tenant.id, "6011111111111117")
    with db.uow(read_only=True) as uow:
        assert uow.session.get(Card, fresh.id).key_id == new.id  # type: ignore[union-attr]
        statuses = {k.id: (k.status, k.cards) for k in service.key_status(uow) if k.purpose == "data"}
        assert service.pending_rewrap(uow) == 3
    assert statuses == {first_key.id: ("retired", 3), new.id: ("active", 1)}
    assert reveal(db, other_tenant.id, old_cards[1].id).number == "5555555555554444"  # before rewrap
    moved = []
    while True:
        with db.uow() as uow:
            count = service.rewrap(uow, batch_size=2)
            uow.commit()
        if not count:
            break
        moved.append(count)
    assert moved == [2, 1]
    with db.uow(read_only=True) as uow:
        assert {c.key_id for c in uow.session.scalars(select(Card))} == {new.id}
        assert service.pending_rewrap(uow) == 0
        statuses = {k.id: (k.status, k.cards) for k in service.key_status(uow) if k.purpose == "data"}
    assert statuses == {first_key.id: ("retired", 0), new.id: ("active", 4)}
    assert [reveal(db, c.tenant_id, c.id).number for c in old_cards] == [
        PAN, "5555555555554444", "378282246310005"]


def test_rotation_is_audited_in_the_platform_chain_and_keeps_one_active_key(db, tenant):
    tokenize(db, tenant.id)
    with db.uow() as uow:
        service.rotate_data_key(uow, actor="ops")
        service.rotate_data_key(uow, actor="ops")
        uow.commit()
    with db.uow(read_only=True) as uow:
        events = audit.list_events(uow, service.PLATFORM_CHAIN)
        assert [(e.action, e.actor, e.after["version"]) for e in events] == [  # type: ignore[index]
            ("vault.data_key_rotated", "ops", 2), ("vault.data_key_rotated", "ops", 3)]
        assert audit.verify(uow, service.PLATFORM_CHAIN).ok
        active = uow.session.scalars(select(VaultKey).where(VaultKey.status == "active")).all()
        assert sorted((k.purpose, k.version) for k in active) == [("data", 3), ("fingerprint", 1)]


def test_fingerprints_survive_data_key_rotation(db, tenant):
    before = tokenize(db, tenant.id)
    with db.uow() as uow:
        service.rotate_data_key(uow, actor="test")
        uow.commit()
    assert tokenize(db, tenant.id).fingerprint == before.fingerprint


def test_delete_crypto_shreds_and_keeps_the_masked_record(db, tenant):
    card = tokenize(db, tenant.id)
    with db.uow() as uow:
        deleted = service.delete_card(uow, tenant.id, card.id, actor="key:test")
        again = service.delete_card(uow, tenant.id, card.id, actor="key:test")
        uow.commit()
    assert deleted.deleted_at is not None and again == deleted and deleted.last4 == "4242"
    with db.uow(read_only=True) as uow:
        row = uow.session.get(Card, card.id)
        assert row is not None and (row.ciphertext, row.nonce, row.key_id) == (None, None, None)
        assert service.get_card(uow, tenant.id, card.id) == deleted
        with pytest.raises(InvalidRequest) as caught:
            service.reveal_card(uow, tenant.id, card.id)
        assert caught.value.code == "card_deleted"
        assert [e.action for e in audit.list_events(uow, tenant.id, object_type="card")] == ["card.deleted"]


def test_seal_and_unseal_bind_the_tenant_and_the_purpose(db, tenant, other_tenant):
    with db.uow() as uow:
        sealed = service.seal_secret(uow, tenant.id, b"private-key-bytes", purpose="channel:wxpay")
        uow.commit()
    assert sealed.startswith("vault:v1:vk_") and "private-key-bytes" not in sealed
    with db.uow(read_only=True) as uow:
        assert service.unseal_secret(uow, tenant.id, sealed, purpose="channel:wxpay") == b"private-key-bytes"
        for tenant_id, purpose in [(tenant.id, "channel:alipay"), (other_tenant.id, "channel:wxpay")]:
            with pytest.raises(DecryptionFailed):
                service.unseal_secret(uow, tenant_id, sealed, purpose=purpose)
        prefix, version, key_id, nonce, ciphertext = sealed.split(":")
        tampered = ":".join([prefix, version, key_id, nonce, ("A" if ciphertext[0] != "A" else "B") + ciphertext[1:]])
        with pytest.raises(DecryptionFailed):
            service.unseal_secret(uow, tenant.id, tampered, purpose="channel:wxpay")
        for garbage in ["", "vault:v1:x", "vault:v2:a:b:c", "vault:v1:vk_x:!!:??"]:
            with pytest.raises(InvalidRequest) as caught:
                service.unseal_secret(uow, tenant.id, garbage, purpose="channel:wxpay")
            assert caught.value.code == "invalid_sealed_secret"
        with pytest.raises(DecryptionFailed):
            service.unseal_secret(uow, tenant.id, "vault:v1:vk_missing:AAAA:AAAA", purpose="channel:wxpay")
        with pytest.raises(InvalidRequest) as caught:
            service.unseal_secret(uow, tenant.id, sealed, purpose="")
        assert caught.value.code == "invalid_purpose"


def test_sealed_secrets_outlive_rotation_and_reseal_moves_them(db, tenant):
    with db.uow() as uow:
        sealed = service.seal_secret(uow, tenant.id, b"api-key", purpose="channel:stripe")
        new = service.rotate_data_key(uow, actor="test")
        assert service.unseal_secret(uow, tenant.id, sealed, purpose="channel:stripe") == b"api-key"
        resealed = service.reseal_secret(uow, tenant.id, sealed, purpose="channel:stripe")
        assert service.sealed_key_id(resealed) == new.id != service.sealed_key_id(sealed)
        assert service.reseal_secret(uow, tenant.id, resealed, purpose="channel:stripe") == resealed
        assert service.unseal_secret(uow, tenant.id, resealed, purpose="channel:stripe") == b"api-key"


def test_the_wrong_master_key_is_named_not_a_crash(db, tenant):
    from finloop.vault import crypto

    card = tokenize(db, tenant.id)
    crypto.use_master_key(MasterKey.generate())
    service._cache.clear()
    with pytest.raises(VaultMisconfigured) as caught:
        reveal(db, tenant.id, card.id)
    assert "FINLOOP_VAULT_MASTER_KEY" in caught.value.message


def test_master_key_rotation_rewraps_every_key(db, tenant, master_key):
    from finloop.vault import crypto

    card = tokenize(db, tenant.id)
    with db.uow() as uow:
        sealed = service.seal_secret(uow, tenant.id, b"s", purpose="p")
        uow.commit()
    new = MasterKey.generate()
    with db.uow() as uow:
        assert service.rotate_master_key(uow, old=master_key, new=new, actor="test") == 2
        assert service.rotate_master_key(uow, old=master_key, new=new, actor="test") == 0
        uow.commit()
    crypto.use_master_key(new)
    service._cache.clear()
    assert reveal(db, tenant.id, card.id).number == PAN
    with db.uow(read_only=True) as uow:
        assert service.unseal_secret(uow, tenant.id, sealed, purpose="p") == b"s"
        assert {k.master_key_id for k in service.key_status(uow)} == {new.id}
        assert audit.list_events(uow, service.PLATFORM_CHAIN)[-1].action == "vault.master_key_rotated"


def test_first_keys_are_made_once_even_when_two_transactions_race(db, tenant):
    if db.dialect == "sqlite":
        pytest.skip("SQLite serialises write transactions (BEGIN IMMEDIATE): two cannot both see no key")
    other = make_tenant(db, "Second")
    with db.uow() as late:
        assert service._active_rows(late) == {}  # this transaction saw an empty vault...
        with db.uow() as early:
            service.tokenize_card(early, tenant.id, number=PAN, exp_month=1, exp_year=2030)
            early.commit()
        # ...and makes its key after another made one: it takes that one instead of failing.
        key = service._active_key(late, service.KeyPurpose.DATA, known={})
        card = service.tokenize_card(late, other.id, number=PAN, exp_month=1, exp_year=2030)
        late.commit()
    with db.uow(read_only=True) as uow:
        keys = sorted((k.purpose, k.version, k.status) for k in uow.session.scalars(select(VaultKey)))
        assert uow.session.get(Card, card.id).key_id == key.id  # type: ignore[union-attr]
    assert keys == [("data", 1, "active"), ("fingerprint", 1, "active")]


def test_cvc_can_ride_along_to_a_connector_only_in_memory(db, tenant):
    card = reveal(db, tenant.id, tokenize(db, tenant.id).id)
    with_cvc = dataclasses.replace(card, cvc="123")
    assert with_cvc.cvc == "123" and "123" not in repr(with_cvc)


def test_concurrent_rotations_leave_one_active_key(db, tenant):
    import threading

    if db.dialect == "sqlite":
        pytest.skip("SQLite serialises write transactions (BEGIN IMMEDIATE)")
    tokenize(db, tenant.id)
    barrier, errors, made = threading.Barrier(4), [], []

    def rotate():
        try:
            barrier.wait()
            with db.uow() as uow:
                made.append(service.rotate_data_key(uow, actor="test").version)
                uow.commit()
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(made) == [2, 3, 4, 5]
    with db.uow(read_only=True) as uow:
        data = [(k.version, k.status) for k in service.key_status(uow) if k.purpose == "data"]
    assert data == [(5, "active"), (4, "retired"), (3, "retired"), (2, "retired"), (1, "retired")]
