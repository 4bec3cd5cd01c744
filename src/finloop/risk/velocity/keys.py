"""Blind indexes: keyed HMAC-SHA256 of personal values, so counters and lookups never hold them in clear.

The key is tenant-scoped: ``HMAC-SHA256(master.derive("risk.blind-index"), tenant_id)``, the derived key
coming from the vault master key by HKDF (``MasterKey.derive``, as ``db.idempotency.hash_key`` does). The
same value gives the same index within a tenant and unrelated indexes across tenants; without the master
key an index cannot be confirmed by guessing (a plain hash of a phone number is brute-forced in seconds).
Rotating the master key changes every index: velocity counters then start afresh (see docs).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress

from finloop.vault.crypto import MasterKey, master_key

#: Fields that may be blind-indexed (velocity dimensions plus the encrypted personal fields other risk
#: features match on).
FIELDS = frozenset({"customer", "card", "device", "ip", "phone", "merchant", "email", "national_id",
                    "bank_account", "payout_account"})


@functools.lru_cache(maxsize=1024)
def _tenant_key(master: MasterKey, tenant_id: str) -> bytes:
    root = _root_key(master)
    return hmac.new(root, b"tenant\x00" + tenant_id.encode(), hashlib.sha256).digest()


@functools.lru_cache(maxsize=8)
def _root_key(master: MasterKey) -> bytes:
    # HKDF per call costs more than the HMAC; the master key is the cache key, so a re-pinned key derives afresh.
    return master.derive("risk.blind-index")


def normalize(field: str, value: str) -> str:
    """The canonical form matched: phones keep digits and a leading ``+``; IPs their compressed form; emails
    and national ids are case-folded and stripped; bank accounts lose spaces and dashes."""
    text = value.strip()
    if field == "phone":
        digits = "".join(ch for ch in text if ch.isdigit())
        return ("+" + digits) if text.startswith("+") else digits
    if field == "ip":
        try:
            return ipaddress.ip_address(text).compressed
        except ValueError:
            return text.lower()
    if field in ("email", "national_id"):
        return text.casefold()
    if field in ("bank_account", "payout_account"):
        return "".join(ch for ch in text if ch not in " -").upper()
    return text


def blind_index(tenant_id: str, field: str, value: str) -> str:
    """The hex HMAC-SHA256 blind index of ``value`` for ``field`` in ``tenant_id`` (64 characters)."""
    if field not in FIELDS:
        raise ValueError(f"unknown blind-index field {field!r}")
    key = _tenant_key(master_key(), tenant_id)
    message = field.encode() + b"\x00" + normalize(field, value).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
