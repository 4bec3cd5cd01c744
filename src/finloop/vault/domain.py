"""Pure card rules: Luhn, brand by IIN range, masking, expiry and the keyed fingerprint.

Invariants owned here:
- a card number is 12 to 19 digits (spaces and dashes removed first) with a correct Luhn check digit;
  anything else is ``invalid_card_number`` and the message never repeats what was sent;
- a card is good through the last day of its expiry month (UTC), so a card expiring this month is valid;
- the fingerprint is an HMAC of the digits under a key derived per tenant: the same card gives the same
  fingerprint within a tenant, different fingerprints in different tenants, and cannot be reversed or
  brute-forced without the vault's fingerprint key (a plain hash of a 16-digit PAN could be);
- no function here returns or formats more of a number than its last four digits (``mask_pan``).

No I/O, no database, no clock: the caller passes "now".
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from finloop.core.errors import InvalidRequest

MIN_LENGTH = 12
MAX_LENGTH = 19
#: Further out than this an expiry is a typing mistake, not a card.
MAX_YEARS_AHEAD = 50


class Brand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    JCB = "jcb"
    DINERS = "diners"
    UNIONPAY = "unionpay"
    MAESTRO = "maestro"
    MIR = "mir"
    UNKNOWN = "unknown"


#: IIN ranges as (first, last) over a prefix of len(str(first)) digits. The most specific (longest)
#: matching prefix wins, so the Discover co-brand 622126-622925 beats UnionPay's 62 and Maestro's 6759
#: beats nothing broader by accident.
IIN_RANGES: tuple[tuple[Brand, int, int], ...] = (
    (Brand.VISA, 4, 4),
    (Brand.MASTERCARD, 51, 55),
    (Brand.MASTERCARD, 2221, 2720),
    (Brand.AMEX, 34, 34),
    (Brand.AMEX, 37, 37),
    (Brand.DISCOVER, 6011, 6011),
    (Brand.DISCOVER, 644, 649),
    (Brand.DISCOVER, 65, 65),
    (Brand.DISCOVER, 622126, 622925),
    (Brand.JCB, 3528, 3589),
    (Brand.DINERS, 300, 305),
    (Brand.DINERS, 3095, 3095),
    (Brand.DINERS, 36, 36),
    (Brand.DINERS, 38, 39),
    (Brand.UNIONPAY, 62, 62),
    (Brand.UNIONPAY, 81, 81),
    (Brand.MAESTRO, 5018, 5018),
    (Brand.MAESTRO, 5020, 5020),
    (Brand.MAESTRO, 5038, 5038),
    (Brand.MAESTRO, 5893, 5893),
    (Brand.MAESTRO, 6304, 6304),
    (Brand.MAESTRO, 6759, 6759),
    (Brand.MAESTRO, 6761, 6763),
    (Brand.MIR, 2200, 2204),
)


def invalid_number() -> InvalidRequest:
    # One message for every kind of bad number, and never the number: error bodies get logged by clients.
    return InvalidRequest("The card number is not valid: it must be 12 to 19 digits with a correct check digit.",
                          code="invalid_card_number", param="number")


def luhn_check_digit(partial: str) -> int:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    total = 0
    # Walking from the right, the digit next to the (missing) check digit is doubled.
    for position, char in enumerate(reversed(partial)):
        digit = ord(char) - 48
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def luhn_valid(digits: str) -> bool:
    if len(digits) < 2 or not (digits.isascii() and digits.isdigit()):
        return False
    return luhn_check_digit(digits[:-1]) == ord(digits[-1]) - 48


def normalize_number(number: str) -> str:
    """The digits of a card number, or ``invalid_card_number``: spaces and dashes are dropped first."""
    digits = number.replace(" ", "").replace("-", "")
    # isascii first: str.isdigit accepts other scripts' digits and superscripts, which are not card numbers.
    if not (digits.isascii() and digits.isdigit()) or not MIN_LENGTH <= len(digits) <= MAX_LENGTH:
        raise invalid_number()
    if not luhn_valid(digits):
        raise invalid_number()
    return digits


def detect_brand(digits: str) -> Brand:
    best: Brand = Brand.UNKNOWN
    best_width = 0
    for brand, first, last in IIN_RANGES:
        width = len(str(first))
        if width <= best_width or len(digits) < width:
            continue
        if first <= int(digits[:width]) <= last:
            best, best_width = brand, width
    return best


def last4(digits: str) -> str:
    return digits[-4:]


def mask_pan(digits: str) -> str:
    """Every digit but the last four hidden: ``************4242``."""
    return "*" * (len(digits) - 4) + digits[-4:]


def check_expiry(exp_month: int, exp_year: int, now: datetime) -> None:
    """Reject an impossible expiry (``invalid_expiry``) or a past one (``card_expired``)."""
    if isinstance(exp_month, bool) or not isinstance(exp_month, int) or not 1 <= exp_month <= 12:
        raise InvalidRequest("The expiry month is 1 to 12.", code="invalid_expiry", param="exp_month")
    latest = now.year + MAX_YEARS_AHEAD
    if isinstance(exp_year, bool) or not isinstance(exp_year, int) or not 2000 <= exp_year <= latest:
        raise InvalidRequest(f"The expiry year is a four-digit year no later than {latest}.",
                             code="invalid_expiry", param="exp_year")
    if (exp_year, exp_month) < (now.year, now.month):
        raise InvalidRequest("The card has expired.", code="card_expired", param="exp_year")


def tenant_fingerprint_key(fingerprint_key: bytes, tenant_id: str) -> bytes:
    """The tenant's own HMAC key: fingerprints cannot be matched across tenants."""
    return hmac.new(fingerprint_key, b"finloop.vault.fingerprint\x00" + tenant_id.encode(), hashlib.sha256).digest()


def fingerprint(fingerprint_key: bytes, tenant_id: str, digits: str) -> str:
    """32 hex characters (128 bits of HMAC-SHA256): the same card in one tenant, the same value."""
    mac = hmac.new(tenant_fingerprint_key(fingerprint_key, tenant_id), digits.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class CardRecord:
    """A tokenized card as the rest of finloop sees it: never more than brand, last four and expiry."""

    id: str
    tenant_id: str
    customer_id: str | None
    brand: Brand
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    created_at: datetime
    deleted_at: datetime | None = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def display(self) -> str:
        return f"{self.brand.value} •••• {self.last4}"
