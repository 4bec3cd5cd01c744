"""Stripe's wire vocabulary: bracket-notation forms, amounts, PaymentIntent and Refund statuses, errors.

Invariants owned here:
- amounts are integers in Stripe's smallest unit; conversion to and from finloop minor units is exact
  integer scaling by the currency exponent, refusing what Stripe cannot represent (a three-decimal amount
  not ending in 0; ISK/UGX, which Stripe takes as two-decimal, not whole) instead of rounding it;
- currencies go out lowercase and come back uppercase;
- every PaymentIntent status, Refund status and error class maps to exactly one ``Outcome`` here;
- ``redact`` removes client secrets and card data before anything becomes ``raw``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from finloop.core.money import currency as iso_currency
from finloop.payments.connectors.base import Outcome

#: Where Stripe's unit differs from ISO 4217's minor unit: these are taken with two decimals (x100).
_STRIPE_EXPONENT = {"ISK": 2, "UGX": 2}
_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

#: PaymentIntent.status -> Outcome (requires_payment_method depends on the error, see ``intent_outcome``).
INTENT_STATUS = {
    "succeeded": Outcome.SUCCEEDED,
    "requires_capture": Outcome.AUTHORIZED,
    "requires_action": Outcome.REQUIRES_ACTION,
    "requires_confirmation": Outcome.REQUIRES_ACTION,
    "processing": Outcome.PROCESSING,
    "canceled": Outcome.CANCELED,
}
REFUND_STATUS = {
    "succeeded": Outcome.SUCCEEDED,
    "pending": Outcome.PROCESSING,
    "requires_action": Outcome.PROCESSING,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}
#: card_error codes that say "try again" rather than "the customer's card said no".
RETRYABLE_CARD_CODES = frozenset({"processing_error", "try_again_later", "issuer_not_available"})

#: Keys whose values must never be kept: secrets and card data.
SECRET_KEYS = frozenset({"client_secret", "number", "cvc", "payment_method_data", "card_number", "secret"})

REPORT_TYPE = "balance_change_from_activity.itemized.3"
REPORT_COLUMNS = (
    "balance_transaction_id", "created_utc", "available_on_utc", "currency", "gross", "fee", "net",
    "reporting_category", "source_id", "description", "payment_intent_id",
    "payment_metadata[reference]", "refund_metadata[reference]",
)
REPORT_MEDIA_TYPE = "text/csv"
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


# ------------------------------------------------------------------------------------------ amounts


def _exponents(currency: str) -> tuple[int, int]:
    code = currency.upper()
    iso = iso_currency(code).exponent
    return iso, _STRIPE_EXPONENT.get(code, iso)


def to_stripe_amount(amount: int, currency: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("amounts are int minor units")
    iso, stripe = _exponents(currency)
    value: int = amount * 10 ** (stripe - iso)
    if currency.upper() in _THREE_DECIMAL and value % 10:
        raise ValueError(f"Stripe takes {currency.upper()} amounts in multiples of 10 (0.010)")
    return value


def from_stripe_amount(value: object, currency: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a Stripe amount: {value!r}")
    iso, stripe = _exponents(currency)
    factor = 10 ** (stripe - iso)
    if value % factor:
        raise ValueError(f"{value} is not a whole {currency.upper()} minor unit")
    whole: int = value // factor
    return whole


def to_major(amount: int, currency: str) -> str:
    """Minor units as the decimal major-unit string Stripe's reports use ("88.88", "-1.20")."""
    exponent = iso_currency(currency.upper()).exponent
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f}"


def from_major(text: str, currency: str) -> int:
    exponent = iso_currency(currency.upper()).exponent
    scaled = Decimal(text.strip()).scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more than {exponent} decimals")
    return int(scaled)


# ------------------------------------------------------------------------------------------ forms


def encode_form(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten to Stripe's bracket notation: ``{"a": {"b": 1}, "c": [x, y]}`` -> ``a[b]=1, c[0]=x, c[1]=y``."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        pairs.extend(_encode_value(name, value))
    return pairs


def _encode_value(name: str, value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return encode_form(value, name)
    if isinstance(value, list | tuple):
        out: list[tuple[str, str]] = []
        for index, item in enumerate(value):
            out.extend(_encode_value(f"{name}[{index}]", item))
        return out
    if isinstance(value, bool):
        return [(name, "true" if value else "false")]
    if isinstance(value, float):
        raise TypeError("floats never go on the wire")
    return [(name, str(value))]


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Rebuild nested values from bracket notation (the sandbox's side). ``a[]`` appends to a list;
    numeric keys stay dict keys (``lists`` below turns all-numeric dicts into lists)."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        head, _, rest = name.partition("[")
        parts = [head] + ([p for p in rest.rstrip("]").split("][")] if rest else [])
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "" and isinstance(node, list):
                node.append(value)
                break
            if last:
                node[part] = value
                break
            following = parts[index + 1]
            node = node.setdefault(part, [] if following == "" else {})
    result: dict[str, Any] = _lists(root)
    return result


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {key: _lists(item) for key, item in value.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    if isinstance(value, list):
        return [_lists(item) for item in value]
    return value


# ------------------------------------------------------------------------------------------ outcomes


def intent_outcome(intent: Mapping[str, Any]) -> tuple[Outcome, bool]:
    """(outcome, retryable) of a PaymentIntent."""
    status = str(intent.get("status", ""))
    if status == "requires_payment_method":
        error = intent.get("last_payment_error")
        if isinstance(error, Mapping):
            if error.get("type") == "card_error" and error.get("code") not in RETRYABLE_CARD_CODES:
                return Outcome.DECLINED, False
            return Outcome.FAILED, True
        return Outcome.REQUIRES_ACTION, False  # created but never confirmed
    return INTENT_STATUS.get(status, Outcome.UNKNOWN), False


def error_outcome(status_code: int, error: Mapping[str, Any]) -> tuple[Outcome, bool]:
    """(outcome, retryable) of an HTTP error reply."""
    if status_code >= 500 or status_code == 409:
        # 5xx: Stripe may have acted. 409: the same Idempotency-Key is still being processed.
        return Outcome.UNKNOWN, True
    if status_code == 429:
        return Outcome.FAILED, True
    if status_code == 402 or error.get("type") == "card_error":
        if error.get("code") in RETRYABLE_CARD_CODES or error.get("decline_code") in RETRYABLE_CARD_CODES:
            return Outcome.FAILED, True
        return Outcome.DECLINED, False
    if status_code == 404:
        return Outcome.NOT_FOUND, False
    return Outcome.FAILED, False


def redact(value: Any) -> Any:
    """A copy without secrets or card data (client_secret, card numbers, CVCs)."""
    if isinstance(value, Mapping):
        return {key: redact(item) for key, item in value.items() if key not in SECRET_KEYS}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def metadata_reference(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        value = metadata.get("reference")
        return str(value) if value else None
    return None


def newest(items: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return max(items, key=lambda item: int(item.get("created", 0) or 0), default=None)
