"""Stripe's webhook signature: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.

Invariants owned here:
- the MAC is over the exact raw body bytes, prefixed by the timestamp and a dot; never a re-serialisation;
- any one ``v1`` entry matching is enough (Stripe sends several while a secret is rolled); other schemes
  (``v0``) are ignored;
- a timestamp further than the tolerance from the injected clock, either way, is refused, so a captured
  webhook cannot be replayed later;
- comparisons are constant-time; every refusal raises ``InvalidSignature``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from finloop.payments.connectors.base import InvalidSignature

SIGNATURE_HEADER = "Stripe-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def build_header(secret: str, payload: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={compute_signature(secret, timestamp, payload)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) from a ``Stripe-Signature`` value."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError as error:
                raise InvalidSignature("Stripe-Signature timestamp is not an integer") from error
        elif key == "v1":
            signatures.append(value)
    if timestamp is None:
        raise InvalidSignature("Stripe-Signature carries no timestamp")
    if not signatures:
        raise InvalidSignature("Stripe-Signature carries no v1 signature")
    return timestamp, signatures


def verify_header(payload: bytes, header: str | None, secrets: str | Iterable[str], *, now: int,
                  tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> int:
    """Verify a webhook; return its timestamp. ``now`` is the injected clock's unix time."""
    if not header:
        raise InvalidSignature("no Stripe-Signature header")
    timestamp, signatures = parse_header(header)
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    matched = any(hmac.compare_digest(compute_signature(key, timestamp, payload), candidate)
                  for key in keys if key for candidate in signatures)
    if not matched:
        raise InvalidSignature("no Stripe-Signature v1 entry matches the payload")
    if tolerance > 0 and abs(now - timestamp) > tolerance:
        raise InvalidSignature("Stripe-Signature timestamp is outside the tolerance")
    return timestamp
