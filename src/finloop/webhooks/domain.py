"""Pure webhook rules: event types, endpoint URLs and filters, secrets, Standard Webhooks signing, retries.

Invariants owned here:
- an event type is one of ``EVENT_TYPES``; an endpoint's filter names only such types, and an empty filter
  means every type;
- an endpoint bound to a merchant receives only that merchant's events; an unbound one receives all of its
  tenant's events (``endpoint_wants``);
- an endpoint URL is https, except plain http to this machine (127.0.0.1, ::1, localhost) for development;
- a secret is ``whsec_`` + base64 of 32 random bytes;
- a signature follows the Standard Webhooks specification: ``v1,`` + base64(HMAC-SHA256(secret bytes,
  "{webhook-id}.{webhook-timestamp}.{body}")); during a rotation's grace period the header carries one
  signature per valid secret, separated by spaces, so receivers holding either secret accept it;
- an endpoint whose attempts have all failed for ``AUTO_DISABLE_AFTER`` is disabled;
- a failed delivery is retried on ``RETRY_SCHEDULE`` (the Svix ladder, stretched to about three days), each
  wait shortened by at most ``RETRY_JITTER`` so endpoints failing together do not retry together.

No I/O here: randomness comes in as a function, time as a value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from finloop.core.errors import InvalidRequest

#: Every event a webhook endpoint can subscribe to. Add new types at the end; a type never changes meaning.
EVENT_TYPES: tuple[str, ...] = (
    "payment.succeeded",
    "payment.failed",
    "payment.canceled",
    "payment.requires_capture",
    "payment.processing",
    "refund.succeeded",
    "refund.failed",
    "dispute.opened",
    "dispute.closed",
    "routing.channel_health_changed",
    "payout.paid",
    "payout.failed",
    "payout.returned",
    "safeguarding.shortfall",
    "risk.model_drift",
    "credit.repayment.applied",
    "credit.repayment.reminder",
    "credit.loan.paid_off",
    "credit.loan.overdue",
    "credit.loan.written_off",
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32
#: After a rotation the previous secret still signs for this long.
ROTATION_GRACE = timedelta(hours=24)
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500
#: Response bodies are kept up to this many bytes in the delivery log.
MAX_RESPONSE_SNIPPET = 1024
MAX_ERROR_LENGTH = 1000
#: One HTTP attempt gives up after this long (connect, write, read, pool).
DELIVERY_TIMEOUT_SECONDS = 10.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

#: Waits after the 1st, 2nd, ... failed attempt. The first attempt is immediate; 13 attempts in all, the
#: last about 3 days and 5½ hours after the first.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    *(timedelta(hours=10),) * 7,
)
RETRY_JITTER = 0.1
#: An endpoint whose every attempt has failed for this long is disabled (its owner re-enables it).
AUTO_DISABLE_AFTER = timedelta(days=5)


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RetryLadder:
    """A fixed ladder of waits (the outbox's per-topic retry policy for webhook deliveries)."""

    delays: tuple[timedelta, ...] = RETRY_SCHEDULE
    jitter: float = RETRY_JITTER

    def __post_init__(self) -> None:
        if not self.delays or any(d <= timedelta(0) for d in self.delays):
            raise ValueError("a retry ladder has at least one positive wait")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay(self, failures: int, rng: random.Random) -> timedelta:
        step = self.delays[min(max(failures, 1), len(self.delays)) - 1]
        return step * (1.0 - self.jitter * rng.random())

    def total(self) -> timedelta:
        """From the first attempt to the last, without jitter."""
        return sum(self.delays, timedelta(0))


# ------------------------------------------------------------------------------------------ validation


def check_event_type(value: str, *, param: str = "type") -> str:
    if value not in EVENT_TYPES:
        raise InvalidRequest(f"Unknown event type {value[:100]!r}; known types: {', '.join(EVENT_TYPES)}.",
                             code="unknown_event_type", param=param)
    return value


def check_event_types(values: Sequence[str], *, param: str = "event_types") -> list[str]:
    """The filter as stored: known types, each once, in the order given."""
    chosen: list[str] = []
    for index, value in enumerate(values):
        check_event_type(value, param=f"{param}[{index}]")
        if value not in chosen:
            chosen.append(value)
    return chosen


def check_url(value: str, *, param: str = "url") -> str:
    url = value.strip()
    if not url or len(url) > MAX_URL_LENGTH or any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise InvalidRequest(f"An endpoint URL is 1 to {MAX_URL_LENGTH} characters without spaces or control "
                             "characters.", code="invalid_url", param=param)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError as error:
        raise InvalidRequest("The endpoint URL cannot be parsed.", code="invalid_url", param=param) from error
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidRequest("An endpoint URL looks like https://example.com/webhooks.", code="invalid_url",
                             param=param)
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("An endpoint URL must not carry credentials; authenticate with the signature.",
                             code="invalid_url", param=param)
    if parts.scheme == "http" and host.lower() not in LOCAL_HOSTS:
        raise InvalidRequest("Endpoint URLs must use https (plain http only to 127.0.0.1 or localhost, for "
                             "development).", code="https_required", param=param)
    return url


def endpoint_wants(event_types: Sequence[str], endpoint_merchant_id: str | None, *, type: str,
                   merchant_id: str | None) -> bool:
    """Whether an endpoint with this filter and binding receives an event of ``type`` for ``merchant_id``."""
    if event_types and type not in event_types:
        return False
    return endpoint_merchant_id is None or endpoint_merchant_id == merchant_id


# ------------------------------------------------------------------------------------- secrets, signing


def new_secret(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    return SECRET_PREFIX + base64.b64encode(random_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after ``whsec_``."""
    body = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(body)


def sign(secret: str, *, message_id: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret_key(secret), f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Sequence[str], *, message_id: str, timestamp: int, body: str) -> str:
    return " ".join(sign(secret, message_id=message_id, timestamp=timestamp, body=body) for secret in secrets)


def signing_secrets(secret: str, previous_secret: str | None, previous_expires_at: datetime | None,
                    now: datetime) -> list[str]:
    """The current secret, plus the previous one while its grace period lasts."""
    secrets = [secret]
    if previous_secret and in_grace(previous_expires_at, now):
        secrets.append(previous_secret)
    return secrets


def in_grace(previous_expires_at: datetime | None, now: datetime) -> bool:
    """Whether a rotated-out secret still signs."""
    return previous_expires_at is not None and now < previous_expires_at


def delivery_headers(secrets: Sequence[str], *, message_id: str, sent_at: datetime, body: str) -> dict[str, str]:
    timestamp = int(sent_at.timestamp())
    return {
        "content-type": "application/json",
        "user-agent": "finloop-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, message_id=message_id, timestamp=timestamp, body=body),
    }


# --------------------------------------------------------------------------------------- message bodies


def message_body(type: str, timestamp: datetime, data: Mapping[str, Any]) -> str:
    """The exact JSON sent to every endpoint (and stored): ``{"type", "timestamp", "data"}``."""
    try:
        return json.dumps({"type": type, "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
                           "data": dict(data)}, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidRequest(f"Event data must be plain JSON: {error}.", code="invalid_event_data",
                             param="data") from error


def should_disable(failing_since: datetime | None, now: datetime) -> bool:
    return failing_since is not None and now - failing_since >= AUTO_DISABLE_AFTER


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300


def snippet(content: bytes) -> str:
    """The start of a response body for the log: at most 1 KB, valid text, no NUL (PostgreSQL refuses it)."""
    text = content[:MAX_RESPONSE_SNIPPET].decode("utf-8", "replace").replace("\x00", "\ufffd")
    # A replacement character takes three bytes where the broken byte took one: trim back to the limit.
    return text.encode()[:MAX_RESPONSE_SNIPPET].decode("utf-8", "ignore")


def clean_error(text: str) -> str:
    return text.replace("\x00", "\ufffd")[:MAX_ERROR_LENGTH]
