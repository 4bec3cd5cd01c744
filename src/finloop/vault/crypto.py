"""Envelope encryption: a master key wraps data keys, data keys encrypt cards and secrets (AES-256-GCM).

Invariants owned here:
- every ciphertext is AES-256-GCM with a fresh random 96-bit nonce and associated data that names
  what it belongs to; anything altered (ciphertext, nonce, tag or associated data) fails to decrypt
  with ``DecryptionFailed``, never with a crash and never with wrong plaintext;
- a data key exists outside memory only wrapped by the master key, its wrapping bound to its own id;
- the master key comes from ``FINLOOP_VAULT_MASTER_KEY`` (base64 of 32 bytes) or, when that is not
  set, from a key file that is created once with mode 0600 and never overwritten;
- the master key is identified by a short HMAC of itself (``MasterKey.id``), so a vault opened with
  the wrong master key says so instead of failing every decryption obscurely;
- no key, plaintext or configured value appears in an error message or a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from finloop.core.errors import FinloopError, InvariantViolation

log = structlog.get_logger("finloop.vault")

KEY_BYTES = 32
NONCE_BYTES = 12
_WRAP_CONTEXT = b"finloop.vault.key\x00"


class DecryptionFailed(InvariantViolation):
    """A ciphertext does not authenticate: altered, copied to another record or tenant, or another purpose."""

    code = "vault_decryption_failed"


class VaultMisconfigured(FinloopError):
    """The master key is missing, malformed or not the one the vault's keys were wrapped with."""

    code = "vault_misconfigured"


@dataclass(frozen=True)
class MasterKey:
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise VaultMisconfigured(f"The vault master key must be {KEY_BYTES} bytes.")

    @property
    def id(self) -> str:
        """A public name for the key (16 hex characters) that reveals nothing about it."""
        return hmac.new(self.key, b"finloop.vault.master-key-id", hashlib.sha256).hexdigest()[:16]

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Base64 (standard or URL-safe, padding optional) of exactly 32 bytes."""
        value = text.strip().replace("-", "+").replace("_", "/")
        try:
            raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise VaultMisconfigured("The vault master key is not valid base64.") from None
        if len(raw) != KEY_BYTES:
            raise VaultMisconfigured(f"The vault master key must decode to {KEY_BYTES} bytes.")
        return cls(raw)

    def to_text(self) -> str:
        return base64.b64encode(self.key).decode()

    def derive(self, label: str) -> bytes:
        """A 32-byte key for one named use (HKDF-SHA256), e.g. keying a hash that must not be brute-forced.
        It changes when the master key is rotated."""
        return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                    info=b"finloop.vault.derived\x00" + label.encode()).derive(self.key)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext-with-tag)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes, *, what: str = "The stored value") -> bytes:
    if len(nonce) != NONCE_BYTES:
        raise DecryptionFailed(f"{what} cannot be decrypted: its nonce is damaged.")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise DecryptionFailed(f"{what} does not authenticate: it was altered, moved from another record "
                               "or tenant, or sealed for another purpose.") from None


def wrap_key(master: MasterKey, key_id: str, data_key: bytes) -> bytes:
    """nonce || AES-GCM(master, data key), bound to the key's id so wrapped keys cannot be swapped."""
    nonce, sealed = encrypt(master.key, data_key, _WRAP_CONTEXT + key_id.encode())
    return nonce + sealed


def unwrap_key(master: MasterKey, key_id: str, wrapped: bytes) -> bytes:
    return decrypt(master.key, wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _WRAP_CONTEXT + key_id.encode(),
                   what=f"Vault key {key_id}")


# ------------------------------------------------------------------------------------------ the master key


def load_key_file(path: Path) -> MasterKey:
    """Read the key file, creating it (0600, atomically, never overwriting) when it does not exist."""
    path = path.expanduser()
    if not path.exists():
        _create_key_file(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("vault_key_file_permissions", path=str(path), mode=oct(mode & 0o777),
                    advice="chmod 600: only the finloop user should read the vault master key")
    try:
        return MasterKey.from_text(path.read_text(encoding="ascii"))
    except (UnicodeDecodeError, VaultMisconfigured):
        raise VaultMisconfigured(f"The vault key file {path} does not hold a base64 32-byte key.") from None


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".vault-key-")  # mkstemp makes it 0600
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(MasterKey.generate().to_text() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() fails if the name exists: two processes starting at once agree on the first key.
            os.link(temporary, path)
        except FileExistsError:
            pass
        else:
            log.warning("vault_key_file_created", path=str(path),
                        advice="development only: production sets FINLOOP_VAULT_MASTER_KEY")
    finally:
        os.unlink(temporary)


_override: MasterKey | None = None
_loaded: dict[tuple[str | None, str], MasterKey] = {}
_fast: dict[tuple[str | None, str], MasterKey] = {}
_lock = threading.Lock()


def use_master_key(key: MasterKey | None) -> None:
    """Pin the master key for this process (tests, tools); ``None`` goes back to the settings."""
    global _override
    _override = key


def master_key() -> MasterKey:
    """The configured master key: the pinned one, else ``FINLOOP_VAULT_MASTER_KEY``, else the key file."""
    if _override is not None:
        return _override
    from finloop.config import get_settings

    settings = get_settings()
    secret = settings.vault_master_key.get_secret_value() if settings.vault_master_key is not None else None
    # Asked for on every unseal: a key already loaded for the same setting is found without hashing the
    # secret or resolving the key file's path. The secret, when set, is the key (the file is not read); else
    # the file a path names depends only on the path, the working directory and, with "~", the home directory.
    raw_path = str(settings.vault_key_file)
    fast_key = (secret, "") if secret else (None, "\x00".join((raw_path, os.getcwd(), os.environ.get("HOME", ""))))
    found = _fast.get(fast_key)
    if found is not None:
        return found
    cache_key = (hashlib.sha256(secret.encode()).hexdigest() if secret else None,
                 str(settings.vault_key_file.expanduser().resolve()))
    with _lock:
        if cache_key not in _loaded:
            if secret:
                try:
                    _loaded[cache_key] = MasterKey.from_text(secret)
                except VaultMisconfigured as error:
                    raise VaultMisconfigured(f"FINLOOP_VAULT_MASTER_KEY: {error.message}") from None
            else:
                _loaded[cache_key] = load_key_file(settings.vault_key_file)
        _fast[fast_key] = _loaded[cache_key]
        return _loaded[cache_key]
