"""Vault use cases: tokenize and reveal cards, seal and unseal secrets, rotate keys, rewrap.

Invariants owned here:
- a card number is validated (Luhn, 12-19 digits, expiry) before anything is written, and is written
  only as AES-GCM ciphertext whose associated data binds the tenant and the card id: a ciphertext
  copied to another row or tenant does not decrypt;
- the CVC is never stored: it is not a parameter of anything that writes;
- at most one data key is active; new ciphertexts use it, retired keys only decrypt and are kept
  while anything may still be sealed under them (cards are moved off by ``rewrap``; sealed secrets
  live in other domains' tables and move when they call ``reseal_secret``);
- the fingerprint key is never rotated (rotating it would change every fingerprint), only re-wrapped
  when the master key changes;
- key rotation and master-key rotation are written to the platform audit chain (``PLATFORM_CHAIN``),
  card deletion to the tenant's;
- nothing here logs a number, a holder, a CVC, a secret or a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Sequence
from enum import StrEnum

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from finloop.audit import service as audit
from finloop.core.errors import InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.payments.connectors.base import CardData
from finloop.vault import crypto
from finloop.vault.crypto import DecryptionFailed, MasterKey, VaultMisconfigured
from finloop.vault.domain import (
    Brand,
    CardRecord,
    check_expiry,
    detect_brand,
    last4,
    normalize_number,
)
from finloop.vault.domain import fingerprint as card_fingerprint
from finloop.vault.models import Card, VaultKey
from finloop.vault.schemas import VaultKeyRead, VaultKeyStatus

log = structlog.get_logger("finloop.vault")

#: The audit chain of platform-wide events (vault keys belong to no tenant). Tenant ids are "ten_…".
PLATFORM_CHAIN = "platform"
SEALED_PREFIX = "vault:v1"
MAX_HOLDER_LENGTH = 200


class KeyPurpose(StrEnum):
    DATA = "data"
    FINGERPRINT = "fingerprint"


class KeyStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


# ---------------------------------------------------------------------------------------------- keys

_cache: dict[tuple[str, str], bytes] = {}
_cache_lock = threading.Lock()


def _unwrap(row: VaultKey, master: MasterKey | None = None) -> bytes:
    master = master or crypto.master_key()
    if row.master_key_id != master.id:
        raise VaultMisconfigured(
            f"Vault key {row.id} is wrapped by master key {row.master_key_id}, but the configured master key is "
            f"{master.id}: set FINLOOP_VAULT_MASTER_KEY (or FINLOOP_VAULT_KEY_FILE) to this vault's master key.")
    with _cache_lock:
        key = _cache.get((master.id, row.id))
    if key is None:
        key = crypto.unwrap_key(master, row.id, row.wrapped_key)
        with _cache_lock:
            _cache[(master.id, row.id)] = key
    return key


def _new_key(uow: UnitOfWork, purpose: KeyPurpose, version: int, master: MasterKey) -> VaultKey:
    key_id = uow.ids.new("vault_key")
    data_key = crypto.new_data_key()
    row = VaultKey(id=key_id, purpose=purpose.value, version=version, status=KeyStatus.ACTIVE.value,
                   wrapped_key=crypto.wrap_key(master, key_id, data_key), master_key_id=master.id,
                   created_at=uow.clock.now())
    with _cache_lock:
        _cache[(master.id, key_id)] = data_key
    return row


def _active_rows(uow: UnitOfWork) -> dict[str, VaultKey]:
    rows = uow.session.scalars(select(VaultKey).where(VaultKey.status == KeyStatus.ACTIVE.value))
    return {row.purpose: row for row in rows}


def _active_key(uow: UnitOfWork, purpose: KeyPurpose, known: dict[str, VaultKey] | None = None) -> VaultKey:
    """The purpose's active key, made (version 1) on first use."""
    row = (known if known is not None else _active_rows(uow)).get(purpose.value)
    if row is not None:
        return row
    master = crypto.master_key()
    row = _new_key(uow, purpose, 1, master)
    try:
        # Two first requests at once on PostgreSQL: the loser's insert fails on the unique version and
        # it takes the winner's key instead of failing the request.
        with uow.session.begin_nested():
            uow.session.add(row)
            uow.session.flush()
    except IntegrityError:
        existing = _active_rows(uow).get(purpose.value)
        if existing is None:
            raise
        return existing
    log.info("vault_key_created", key_id=row.id, purpose=purpose.value, version=1)
    return row


def _key_by_id(uow: UnitOfWork, key_id: str) -> VaultKey | None:
    return uow.session.get(VaultKey, key_id)


#: The purpose of each key read from the database. A key's id, purpose and material never change (rotation
#: makes a new key; a master-key rotation re-wraps the same material), so a key unwrapped once is not read again.
_purposes: dict[str, str] = {}


def _key_material(uow: UnitOfWork, key_id: str) -> tuple[str, bytes] | None:
    """(purpose, data key) of the key ``key_id``; None when there is no such key. Read and unwrapped on first
    use in this process (under the configured master key), then from memory."""
    master = crypto.master_key()
    with _cache_lock:
        key, purpose = _cache.get((master.id, key_id)), _purposes.get(key_id)
    if key is not None and purpose is not None:
        return purpose, key
    row = _key_by_id(uow, key_id)
    if row is None:
        return None
    key = _unwrap(row, master)
    with _cache_lock:
        _purposes[row.id] = row.purpose
    return row.purpose, key


def read_key(row: VaultKey) -> VaultKeyRead:
    return VaultKeyRead(id=row.id, purpose=row.purpose, version=row.version, status=row.status,
                        master_key_id=row.master_key_id, created_at=row.created_at, retired_at=row.retired_at)


def rotate_data_key(uow: UnitOfWork, *, actor: str) -> VaultKeyRead:
    """Make a new data key the active one; the old one is retired (it still decrypts)."""
    master = crypto.master_key()
    # The lock on the active row serialises rotations; the unique indexes catch anything else.
    active = select(VaultKey).where(VaultKey.purpose == KeyPurpose.DATA.value,
                                    VaultKey.status == KeyStatus.ACTIVE.value).with_for_update()
    old = uow.session.scalar(active)
    if old is None and uow.session.scalar(select(VaultKey.id).where(VaultKey.purpose == KeyPurpose.DATA.value)
                                          .limit(1)) is not None:
        # On PostgreSQL a rotation that waited for another's lock finds that row retired; the key the
        # other one made is now the active one to retire (and a third rotation may get there first).
        for _ in range(100):
            old = uow.session.scalar(active.execution_options(populate_existing=True))
            if old is not None:
                break
    latest = uow.session.scalar(select(func.max(VaultKey.version)).where(VaultKey.purpose == KeyPurpose.DATA.value))
    if old is not None:
        old.status, old.retired_at = KeyStatus.RETIRED.value, uow.clock.now()
        uow.session.flush()  # before the insert: the partial unique index allows one active key
    new = _new_key(uow, KeyPurpose.DATA, (latest or 0) + 1, master)
    uow.session.add(new)
    uow.session.flush()
    audit.record(uow, PLATFORM_CHAIN, actor=actor, action="vault.data_key_rotated", object_type="vault_key",
                 object_id=new.id,
                 before={"active_key_id": old.id, "version": old.version} if old is not None else None,
                 after={"active_key_id": new.id, "version": new.version, "master_key_id": master.id})
    log.info("vault_key_rotated", key_id=new.id, version=new.version, retired=old.id if old else None)
    return read_key(new)


def pending_rewrap(uow: UnitOfWork) -> int:
    """How many cards are still encrypted under a retired key."""
    active = _active_rows(uow).get(KeyPurpose.DATA.value)
    query = select(func.count()).select_from(Card).where(Card.key_id.is_not(None))
    if active is not None:
        query = query.where(Card.key_id != active.id)
    return int(uow.session.scalar(query) or 0)


def rewrap(uow: UnitOfWork, *, batch_size: int = 500) -> int:
    """Re-encrypt up to ``batch_size`` cards that use a retired key under the active key.

    One batch per call, so each batch is its own transaction: the caller commits and calls again
    until it returns 0. Rows locked by another rewrapper are skipped (PostgreSQL), not waited for.
    """
    if batch_size < 1:
        raise InvalidRequest("The batch size is at least 1.", code="invalid_batch_size", param="batch_size")
    active = _active_key(uow, KeyPurpose.DATA)
    new_key = _unwrap(active)
    cards = list(uow.session.scalars(
        select(Card).where(Card.key_id.is_not(None), Card.key_id != active.id).order_by(Card.id)
        .limit(batch_size).with_for_update(skip_locked=True)))
    old_keys: dict[str, bytes] = {}
    for card in cards:
        assert card.key_id is not None and card.nonce is not None and card.ciphertext is not None
        if card.key_id not in old_keys:
            row = _key_by_id(uow, card.key_id)
            if row is None:  # the foreign key makes this impossible; say so clearly if it happens anyway
                raise DecryptionFailed(f"Card {card.id} names vault key {card.key_id}, which does not exist.")
            old_keys[card.key_id] = _unwrap(row)
        aad = card_aad(card.tenant_id, card.id)
        plaintext = crypto.decrypt(old_keys[card.key_id], card.nonce, card.ciphertext, aad, what=f"Card {card.id}")
        card.nonce, card.ciphertext = crypto.encrypt(new_key, plaintext, aad)
        card.key_id = active.id
    uow.session.flush()
    if cards:
        log.info("vault_rewrapped", cards=len(cards), key_id=active.id)
    return len(cards)


def key_status(uow: UnitOfWork) -> list[VaultKeyStatus]:
    """Every key, newest first per purpose, with how many cards each protects."""
    counts: dict[str | None, int] = {key_id: count for key_id, count in uow.session.execute(
        select(Card.key_id, func.count()).where(Card.key_id.is_not(None)).group_by(Card.key_id))}
    rows = uow.session.scalars(select(VaultKey).order_by(VaultKey.purpose, VaultKey.version.desc()))
    return [VaultKeyStatus(**read_key(row).model_dump(), cards=int(counts.get(row.id, 0))) for row in rows]


def rotate_master_key(uow: UnitOfWork, *, old: MasterKey, new: MasterKey, actor: str) -> int:
    """Re-wrap every vault key from ``old`` to ``new``; returns how many changed.

    Commit, then switch the configuration to ``new``: until then running processes that have not
    cached a key cannot unwrap it (they report the master key mismatch).
    """
    rows = list(uow.session.scalars(select(VaultKey).order_by(VaultKey.id).with_for_update()))
    changed = 0
    for row in rows:
        if row.master_key_id == new.id:
            continue  # re-running after an interruption
        key = _unwrap(row, old)
        row.wrapped_key, row.master_key_id = crypto.wrap_key(new, row.id, key), new.id
        changed += 1
    uow.session.flush()
    audit.record(uow, PLATFORM_CHAIN, actor=actor, action="vault.master_key_rotated", object_type="vault_master_key",
                 object_id=new.id, before={"master_key_id": old.id}, after={"master_key_id": new.id, "keys": changed})
    return changed


# ---------------------------------------------------------------------------------------------- cards


def index_key(uow: UnitOfWork, label: bytes, *, create: bool = True) -> bytes | None:
    """A key for keyed (HMAC) indexes of personal data, derived from the fingerprint key under ``label``.
    That key is never rotated (only re-wrapped when the master key changes), so indexes made with it stay
    valid across rotations. None when there is no fingerprint key yet and ``create`` is false."""
    row = (_active_key(uow, KeyPurpose.FINGERPRINT) if create
           else _active_rows(uow).get(KeyPurpose.FINGERPRINT.value))
    if row is None:
        return None
    return hmac.new(_unwrap(row), label, hashlib.sha256).digest()


_index_keys: dict[tuple[str, bytes], bytes] = {}
_index_keys_lock = threading.Lock()


def cached_index_key(uow: UnitOfWork, label: bytes, *, create: bool = True) -> bytes | None:
    """``index_key``, kept in memory per database and label (the fingerprint key never rotates, so no query per
    look-up). A key made in this transaction is not kept: the transaction may still roll back, and a cached key
    that was never committed would index values no later transaction can find."""
    cache_key = (str(uow.session.get_bind().engine.url), label)
    with _index_keys_lock:
        key = _index_keys.get(cache_key)
    if key is not None:
        return key
    key = index_key(uow, label, create=False)
    if key is not None:
        with _index_keys_lock:
            _index_keys[cache_key] = key
        return key
    return index_key(uow, label, create=True) if create else None


def forget_index_keys() -> None:
    """Drop the cached index keys (a test that recreates its database's vault keys calls this)."""
    with _index_keys_lock:
        _index_keys.clear()


def card_aad(tenant_id: str, card_id: str) -> bytes:
    return b"finloop.vault.card.v1\x00" + tenant_id.encode() + b"\x00" + card_id.encode()


def _record(card: Card) -> CardRecord:
    return CardRecord(id=card.id, tenant_id=card.tenant_id, customer_id=card.customer_id, brand=Brand(card.brand),
                      last4=card.last4, exp_month=card.exp_month, exp_year=card.exp_year,
                      fingerprint=card.fingerprint, created_at=card.created_at, deleted_at=card.deleted_at)


def _line(value: str | None, *, param: str, code: str, what: str, max_length: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > max_length or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidRequest(f"{what} is at most {max_length} characters, without control characters.",
                             code=code, param=param)
    return value or None


def tokenize_card(uow: UnitOfWork, tenant_id: str, *, number: str, exp_month: int, exp_year: int,
                  holder: str | None = None, customer_id: str | None = None) -> CardRecord:
    """Validate a card and keep it encrypted; returns what may be shown (brand, last four, fingerprint)."""
    if not isinstance(number, str):
        raise InvalidRequest("The card number is a string of digits.", code="invalid_card_number", param="number")
    digits = normalize_number(number)
    check_expiry(exp_month, exp_year, uow.clock.now())
    holder = _line(holder, param="holder", code="invalid_holder", what="The holder's name",
                   max_length=MAX_HOLDER_LENGTH)
    customer_id = _line(customer_id, param="customer_id", code="invalid_customer", what="customer_id", max_length=40)
    active = _active_rows(uow)
    data_row = _active_key(uow, KeyPurpose.DATA, active)
    fingerprint_row = _active_key(uow, KeyPurpose.FINGERPRINT, active)
    card_id = uow.ids.new("card")
    plaintext = json.dumps({"number": digits, "holder": holder}, separators=(",", ":")).encode()
    nonce, ciphertext = crypto.encrypt(_unwrap(data_row), plaintext, card_aad(tenant_id, card_id))
    card = Card(id=card_id, tenant_id=tenant_id, customer_id=customer_id, brand=detect_brand(digits).value,
                last4=last4(digits), exp_month=exp_month, exp_year=exp_year,
                fingerprint=card_fingerprint(_unwrap(fingerprint_row), tenant_id, digits), key_id=data_row.id,
                nonce=nonce, ciphertext=ciphertext, created_at=uow.clock.now())
    uow.session.add(card)
    uow.session.flush()
    return _record(card)


_CARDS_READ = "finloop.vault.cards_read"


def _card(uow: UnitOfWork, tenant_id: str, card_id: str, *, for_update: bool = False) -> Card:
    query = select(Card).where(Card.id == card_id, Card.tenant_id == tenant_id)
    card = uow.session.scalar(query.with_for_update() if for_update else query)
    if card is None:
        raise NotFound(f"No card {card_id[:40]!r}.", code="card_not_found", param="card_id")
    # The session holds its rows weakly: kept for the unit of work, so that revealing a card this
    # transaction already read (a payment checked it, then charges it) does not read it again.
    uow.session.info.setdefault(_CARDS_READ, {})[card.id] = card
    return card


def get_card(uow: UnitOfWork, tenant_id: str, card_id: str) -> CardRecord:
    return _record(_card(uow, tenant_id, card_id))


def list_cards(uow: UnitOfWork, tenant_id: str, *, customer_id: str | None = None, fingerprint: str | None = None,
               limit: int = 100) -> Sequence[CardRecord]:
    query = select(Card).where(Card.tenant_id == tenant_id)
    if customer_id is not None:
        query = query.where(Card.customer_id == customer_id)
    if fingerprint is not None:
        query = query.where(Card.fingerprint == fingerprint)
    return [_record(card) for card in uow.session.scalars(query.order_by(Card.id).limit(limit))]


def reveal_card(uow: UnitOfWork, tenant_id: str, card_id: str) -> CardData:
    """The card in clear, for one connector call; add the CVC with ``dataclasses.replace`` if the payer gave one."""
    # By primary key: a card this transaction already read (the payment it pays was just checked) is not
    # read again; the tenant is checked all the same.
    card = uow.session.get(Card, card_id)
    if card is None or card.tenant_id != tenant_id:
        raise NotFound(f"No card {card_id[:40]!r}.", code="card_not_found", param="card_id")
    if card.ciphertext is None or card.nonce is None or card.key_id is None:
        raise InvalidRequest("The card was deleted: its number no longer exists.", code="card_deleted",
                             param="card_id")
    material = _key_material(uow, card.key_id)
    if material is None:
        raise DecryptionFailed(f"Card {card.id} names vault key {card.key_id}, which does not exist.")
    plaintext = crypto.decrypt(material[1], card.nonce, card.ciphertext, card_aad(tenant_id, card.id),
                               what=f"Card {card.id}")
    payload = json.loads(plaintext)
    return CardData(number=payload["number"], exp_month=card.exp_month, exp_year=card.exp_year,
                    holder=payload.get("holder"))


def delete_card(uow: UnitOfWork, tenant_id: str, card_id: str, *, actor: str) -> CardRecord:
    """Crypto-shred: the ciphertext is gone for good; the masked record stays. Deleting again is a no-op."""
    card = _card(uow, tenant_id, card_id, for_update=True)
    if card.deleted_at is None:
        card.key_id, card.nonce, card.ciphertext, card.deleted_at = None, None, None, uow.clock.now()
        uow.session.flush()
        audit.record(uow, tenant_id, actor=actor, action="card.deleted", object_type="card", object_id=card.id,
                     before={"brand": card.brand, "last4": card.last4})
    return _record(card)


# ---------------------------------------------------------------------------------------------- secrets


def _secret_aad(tenant_id: str, purpose: str) -> bytes:
    return b"finloop.vault.secret.v1\x00" + tenant_id.encode() + b"\x00" + purpose.encode()


def _check_purpose(purpose: str) -> None:
    if not purpose or len(purpose) > 100 or not purpose.isprintable() or "\x00" in purpose:
        raise InvalidRequest("A sealing purpose is 1 to 100 printable characters.", code="invalid_purpose",
                             param="purpose")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def seal_secret(uow: UnitOfWork, tenant_id: str, plaintext: bytes, *, purpose: str) -> str:
    """Encrypt a secret for storage elsewhere: ``vault:v1:<key id>:<nonce>:<ciphertext>`` (base64url).

    The tenant and the purpose are bound as associated data: unsealing for another tenant or purpose fails.
    """
    _check_purpose(purpose)
    row = _active_key(uow, KeyPurpose.DATA)
    nonce, ciphertext = crypto.encrypt(_unwrap(row), plaintext, _secret_aad(tenant_id, purpose))
    return f"{SEALED_PREFIX}:{row.id}:{_b64(nonce)}:{_b64(ciphertext)}"


def _parse_sealed(sealed: str) -> tuple[str, bytes, bytes]:
    parts = sealed.split(":")
    if len(parts) != 5 or ":".join(parts[:2]) != SEALED_PREFIX:
        raise InvalidRequest("Not a sealed vault secret.", code="invalid_sealed_secret", param="sealed")
    try:
        return parts[2], _unb64(parts[3]), _unb64(parts[4])
    except (binascii.Error, ValueError):
        raise InvalidRequest("Not a sealed vault secret.", code="invalid_sealed_secret", param="sealed") from None


def sealed_key_id(sealed: str) -> str:
    """The vault key a sealed secret depends on (to find secrets that still need ``reseal_secret``)."""
    return _parse_sealed(sealed)[0]


def unseal_secret(uow: UnitOfWork, tenant_id: str, sealed: str, *, purpose: str) -> bytes:
    _check_purpose(purpose)
    key_id, nonce, ciphertext = _parse_sealed(sealed)
    material = _key_material(uow, key_id)
    if material is None or material[0] != KeyPurpose.DATA.value:
        raise DecryptionFailed(f"The sealed secret names vault key {key_id[:40]!r}, which does not exist.")
    return crypto.decrypt(material[1], nonce, ciphertext, _secret_aad(tenant_id, purpose), what="The sealed secret")


def reseal_secret(uow: UnitOfWork, tenant_id: str, sealed: str, *, purpose: str) -> str:
    """The same secret sealed under the active key (unchanged if it already is), after a rotation."""
    if sealed_key_id(sealed) == _active_key(uow, KeyPurpose.DATA).id:
        return sealed
    return seal_secret(uow, tenant_id, unseal_secret(uow, tenant_id, sealed, purpose=purpose), purpose=purpose)
