"""The Idempotency-Key store.

A key is claimed in its own short transaction before the work starts (status ``in_flight`` with a
lease), and completed in the *same* transaction as the work, so a stored response always matches
what was committed. Rules:
- same key, same request, completed: the stored response is replayed and nothing is written;
- same key, different request: ``idempotency_key_reused`` (422);
- same key while the first request is in flight: ``idempotency_key_in_use`` (409);
- a claim whose lease ran out (its request crashed) is taken over by the next request;
- a completed key is kept ``ttl`` (at least 24 hours); after that the key may be used afresh.

The request is remembered as a salted HMAC-SHA256 of its method, path, query and body, keyed by a
secret that is not in the database (``idempotency_hash_key``, else a key derived from the vault master
key). A plain hash, even salted, let anyone holding a copy of the table confirm guesses: a card body
whose brand, last four digits and expiry are known leaves about 10^10 candidates: minutes on a GPU.
Stored form: ``h1$<salt>$<hex HMAC>``. Rows written before the HMAC (``<salt>$<hex SHA-256>``) are
still checked the old way until they expire (24 hours): a client retrying across the upgrade gets its
replay, not a spurious ``idempotency_key_reused``; no new row is written in that form.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Executable

from finloop.core.errors import Conflict, InvalidRequest, InvariantViolation
from finloop.db.models import IdempotencyKey
from finloop.db.uow import Database, UnitOfWork

if TYPE_CHECKING:
    from finloop.config import Settings
    from finloop.vault.crypto import MasterKey

MAX_KEY_LENGTH = 255
#: The version tag of a keyed request hash.
HASH_VERSION = "h1"


class KeyReused(InvariantViolation):
    code = "idempotency_key_reused"


class KeyInUse(Conflict):
    code = "idempotency_key_in_use"


@dataclass(frozen=True)
class Claim:
    tenant_id: str
    key: str
    #: Set when the key already completed: (status, body) to replay.
    replay: tuple[int, str] | None = None


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(f"Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters.",
                             code="invalid_idempotency_key", param="Idempotency-Key")


class HashKeyUnavailable(RuntimeError):
    """Neither ``FINLOOP_IDEMPOTENCY_HASH_KEY`` nor the vault's master key is available."""


def hash_key(settings: Settings | None = None) -> bytes:
    """The HMAC key of request hashes: ``idempotency_hash_key`` when set, else derived from the vault
    master key (imported here, so that ``db`` does not depend on the vault unless it is used)."""
    if settings is None:
        from finloop.config import get_settings

        settings = get_settings()
    if settings.idempotency_hash_key is not None and settings.idempotency_hash_key.get_secret_value():
        return settings.idempotency_hash_key.get_secret_value().encode()
    try:
        from finloop.vault.crypto import master_key
    except ImportError as error:  # pragma: no cover - the vault ships with finloop
        raise HashKeyUnavailable("Set FINLOOP_IDEMPOTENCY_HASH_KEY: there is no vault to derive it from.") from error
    return _derived_key(master_key())


@functools.lru_cache(maxsize=8)
def _derived_key(master: MasterKey) -> bytes:
    # HKDF per call costs more than the HMAC itself; the master key is the cache key, so a rotated
    # (or, in tests, a re-pinned) master key derives afresh.
    return master.derive("idempotency")


def fingerprint_hash(fingerprint: bytes, salt: str | None = None, *, key: bytes) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hmac.new(key, salt.encode() + fingerprint, hashlib.sha256).hexdigest()
    return f"{HASH_VERSION}${salt}${digest}"


def _legacy_hash(fingerprint: bytes, salt: str) -> str:
    """The unkeyed form written before ``h1``: only ever compared, never written."""
    return f"{salt}${hashlib.sha256(salt.encode() + fingerprint).hexdigest()}"


def same_request(stored_hash: str, fingerprint: bytes, *, key: bytes) -> bool:
    version, _, rest = stored_hash.partition("$")
    if version == HASH_VERSION:
        salt, _, _ = rest.partition("$")
        return hmac.compare_digest(stored_hash, fingerprint_hash(fingerprint, salt, key=key))
    return hmac.compare_digest(stored_hash, _legacy_hash(fingerprint, version))


def claim(db: Database, *, tenant_id: str, key: str, method: str, path: str, fingerprint: bytes,
          ttl_seconds: int, lease_seconds: int, hash_key: bytes) -> Claim:
    check_key(key)
    secret = hash_key
    request_hash = fingerprint_hash(fingerprint, key=secret)
    for _ in range(3):
        with db.uow() as uow:
            now = uow.clock.now()
            if _insert_new(uow, tenant_id=tenant_id, key=key, method=method, path=path, request_hash=request_hash,
                           now=now, ttl_seconds=ttl_seconds, lease_seconds=lease_seconds):
                uow.commit()
                return Claim(tenant_id, key)
            row = uow.session.scalar(select(IdempotencyKey).where(
                IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key).with_for_update())
            if row is None:
                uow.session.add(IdempotencyKey(
                    tenant_id=tenant_id, key=key, method=method, path=path, request_hash=request_hash,
                    status="in_flight", locked_until=now + timedelta(seconds=lease_seconds), created_at=now,
                    expires_at=now + timedelta(seconds=ttl_seconds)))
                try:
                    uow.commit()
                except IntegrityError:
                    continue  # another request claimed it between our read and insert: look again
                return Claim(tenant_id, key)
            if row.expires_at <= now:
                row.request_hash, row.method, row.path = request_hash, method, path
                row.status, row.response_status, row.response_body = "in_flight", None, None
                row.locked_until = now + timedelta(seconds=lease_seconds)
                row.created_at, row.expires_at = now, now + timedelta(seconds=ttl_seconds)
                uow.commit()
                return Claim(tenant_id, key)
            if not same_request(row.request_hash, fingerprint, key=secret):
                raise KeyReused("This Idempotency-Key was used with a different request.",
                                param="Idempotency-Key")
            if row.status == "completed":
                assert row.response_status is not None and row.response_body is not None
                return Claim(tenant_id, key, replay=(row.response_status, row.response_body))
            if row.locked_until is not None and row.locked_until > now:
                raise KeyInUse("A request with this Idempotency-Key is still in progress.",
                               param="Idempotency-Key")
            row.locked_until = now + timedelta(seconds=lease_seconds)
            uow.commit()
            return Claim(tenant_id, key)
    raise KeyInUse("A request with this Idempotency-Key is still in progress.", param="Idempotency-Key")


def _insert_new(uow: UnitOfWork, *, tenant_id: str, key: str, method: str, path: str, request_hash: str,
                now: datetime, ttl_seconds: int, lease_seconds: int) -> bool:
    """The common case in one statement: a key not seen before is inserted in flight. False (nothing written)
    when the key exists: the caller reads it, locked, and decides as before."""
    values = {"tenant_id": tenant_id, "key": key, "method": method, "path": path, "request_hash": request_hash,
              "status": "in_flight", "locked_until": now + timedelta(seconds=lease_seconds), "created_at": now,
              "expires_at": now + timedelta(seconds=ttl_seconds)}
    dialect = uow.dialect
    if dialect == "postgresql":
        statement: Executable = postgresql.insert(IdempotencyKey).values(**values).on_conflict_do_nothing() \
            .returning(IdempotencyKey.key)
    elif dialect == "sqlite":
        statement = sqlite.insert(IdempotencyKey).values(**values).on_conflict_do_nothing() \
            .returning(IdempotencyKey.key)
    else:  # pragma: no cover - finloop runs on these two
        return False
    return uow.session.execute(statement).first() is not None


def complete(uow: UnitOfWork, claim_: Claim, status: int, body: str) -> None:
    """Store the response in the caller's transaction, beside the work it describes (one UPDATE)."""
    uow.session.flush()  # whatever the work left pending goes first, as the ORM flush did before this UPDATE
    result = uow.session.execute(
        update(IdempotencyKey).where(IdempotencyKey.tenant_id == claim_.tenant_id, IdempotencyKey.key == claim_.key)
        .values(status="completed", response_status=status, response_body=body, locked_until=None)
        .execution_options(synchronize_session=False))
    if not getattr(result, "rowcount", 0):
        raise KeyInUse("The Idempotency-Key claim was lost; retry the request.", param="Idempotency-Key")


def release(db: Database, claim_: Claim) -> None:
    """Forget an in-flight claim whose request failed, so the client may retry with the same key."""
    with db.uow() as uow:
        uow.session.execute(delete(IdempotencyKey).where(
            IdempotencyKey.tenant_id == claim_.tenant_id, IdempotencyKey.key == claim_.key,
            IdempotencyKey.status == "in_flight"))
        uow.commit()


def purge_expired(uow: UnitOfWork) -> int:
    result = uow.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= uow.clock.now()))
    return int(getattr(result, "rowcount", 0) or 0)
