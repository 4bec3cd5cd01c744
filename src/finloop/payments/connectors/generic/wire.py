"""The generic provider's wire: JSON bodies, HMAC-SHA256 signatures, and its statuses in finloop's words.

The protocol (shared by the UnionPay-like and PayPal-like sandbox channels):

- every request and every reply body is signed: ``X-Signature: t=<unix seconds>,v1=<hex>`` where
  ``v1 = HMAC-SHA256(api_secret, f"{t}.".encode() + body)``; requests also carry
  ``Authorization: Bearer <api_key>``; notifications are signed the same way;
- amounts are integers of minor units beside an ISO 4217 ``currency``;
- errors are ``{"error": {"type", "code", "message"}}`` with the HTTP status telling the class:
  402 declined, 429 retryable channel error, 400/404/409 invalid request, 503 outage (not processed),
  504 timeout (outcome unknown).

Invariants owned here: a reply that does not verify is never trusted (the connector returns UNKNOWN);
a 503 is the only 5xx that means "not processed" (FAILED, retryable); every other 5xx is UNKNOWN;
``redact`` removes card numbers, account numbers and secrets from anything kept in ``raw``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from finloop.payments.connectors.base import InvalidSignature, Outcome

SIGNATURE_HEADER = "X-Signature"
API_PREFIX = "/v1"

# ---------------------------------------------------------------------------------------- statuses

#: The generic payment statuses.
PAYMENT_STATUSES = ("requires_action", "processing", "authorized", "succeeded", "refunded", "failed", "canceled")
REFUND_STATUSES = ("processing", "succeeded", "failed")
PAYOUT_STATUSES = ("processing", "succeeded", "failed")

#: Error ``type`` values.
DECLINED = "declined"
CHANNEL_ERROR = "channel_error"
INVALID_REQUEST = "invalid_request"
UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"

ERROR_HTTP_STATUS = {DECLINED: 402, CHANNEL_ERROR: 429, INVALID_REQUEST: 400, UNAVAILABLE: 503, TIMEOUT: 504}
#: Invalid requests whose code has a more precise status.
INVALID_CODE_STATUS = {"not_found": 404, "duplicate_reference": 409, "invalid_state": 409,
                       "refund_exceeds_captured": 409}

_PAYMENT_OUTCOMES = {
    "requires_action": Outcome.REQUIRES_ACTION,
    "processing": Outcome.PROCESSING,
    "authorized": Outcome.AUTHORIZED,
    "succeeded": Outcome.SUCCEEDED,
    "refunded": Outcome.SUCCEEDED,   # money was taken; refunds are their own objects
    "canceled": Outcome.CANCELED,
}
_SETTLEMENT_OUTCOMES = {"processing": Outcome.PROCESSING, "succeeded": Outcome.SUCCEEDED}


def payment_outcome(status: str, error_type: str | None = None) -> Outcome:
    """A payment object's status in finloop's words; ``failed`` splits on the error type."""
    if status == "failed":
        return Outcome.DECLINED if error_type == DECLINED else Outcome.FAILED
    return _PAYMENT_OUTCOMES.get(status, Outcome.UNKNOWN)


def settlement_outcome(status: str, error_type: str | None = None) -> Outcome:
    """A refund's or payout's status in finloop's words."""
    if status == "failed":
        return Outcome.DECLINED if error_type == DECLINED else Outcome.FAILED
    return _SETTLEMENT_OUTCOMES.get(status, Outcome.UNKNOWN)


def error_status(error_type: str, code: str) -> int:
    """The HTTP status the sandbox answers for an error."""
    if error_type == INVALID_REQUEST:
        return INVALID_CODE_STATUS.get(code, 400)
    return ERROR_HTTP_STATUS[error_type]


def error_outcome(http_status: int, error_type: str | None) -> tuple[Outcome, bool]:
    """(outcome, retryable) of an error reply to a state-changing call (pay, capture, refund, payout)."""
    if http_status == 503:
        return Outcome.FAILED, True          # an outage: nothing was processed, safe to fail over
    if http_status >= 500:
        return Outcome.UNKNOWN, False        # it may have happened: query first
    if http_status == 402 or error_type == DECLINED:
        return Outcome.DECLINED, False
    if http_status == 429 or error_type == CHANNEL_ERROR:
        return Outcome.FAILED, True
    return Outcome.FAILED, False             # our request was wrong: retrying elsewhere won't help


# ---------------------------------------------------------------------------------------- signing


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str | None, body: bytes, *, tolerance_seconds: int | None = None,
           now: int | None = None) -> int:
    """Check ``header`` against ``body``; return its timestamp or raise ``InvalidSignature``.

    ``tolerance_seconds`` (with ``now``) refuses stale signatures; it is off by default because the
    sandbox may run on simulated time, and receivers de-duplicate on notification ids anyway."""
    if not header:
        raise InvalidSignature("missing signature")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError) as error:
        raise InvalidSignature("malformed signature") from error
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise InvalidSignature("signature does not match")
    if tolerance_seconds is not None and now is not None and abs(now - timestamp) > tolerance_seconds:
        raise InvalidSignature("signature timestamp outside tolerance")
    return timestamp


def encode(payload: Mapping[str, Any]) -> bytes:
    """The canonical body bytes: compact JSON, keys sorted (so a signature is over stable text)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def decode(body: bytes) -> dict[str, Any]:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a JSON object was expected")
    return data


# ---------------------------------------------------------------------------------------- helpers

_SECRET_KEYS = frozenset({"card", "number", "card_number", "cvc", "account_number", "api_key", "api_secret",
                          "secret", "authorization"})


def redact(data: Any) -> Any:
    """A copy with card data, account numbers and secrets removed (for ``raw`` and logs)."""
    if isinstance(data, Mapping):
        return {key: ("[redacted]" if str(key).lower() in _SECRET_KEYS else redact(value))
                for key, value in data.items()}
    if isinstance(data, list):
        return [redact(value) for value in data]
    return data


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
