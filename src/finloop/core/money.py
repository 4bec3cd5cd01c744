"""Money: integer minor units with an ISO 4217 currency.

Invariants owned here:
- an amount is an ``int`` of minor units; floats and bools are refused everywhere;
- arithmetic never mixes currencies;
- every rounding goes through ``round_minor`` with a named mode;
- ``allocate`` splits a whole by the largest-remainder method, so parts always sum to the whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction

from finloop.core.errors import InvalidRequest

#: The largest amount accepted on the wire and in one posting; sums of many stay inside a BIGINT.
MAX_AMOUNT = 10**15


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int
    name: str

    @property
    def minor_per_major(self) -> int:
        return int(10**self.exponent)


# ISO 4217 codes and minor-unit exponents (a working subset; extend as channels need).
_CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("AED", 2, "UAE Dirham"),
        Currency("AUD", 2, "Australian Dollar"),
        Currency("BHD", 3, "Bahraini Dinar"),
        Currency("BRL", 2, "Brazilian Real"),
        Currency("CAD", 2, "Canadian Dollar"),
        Currency("CHF", 2, "Swiss Franc"),
        Currency("CLP", 0, "Chilean Peso"),
        Currency("CNY", 2, "Yuan Renminbi"),
        Currency("CZK", 2, "Czech Koruna"),
        Currency("DKK", 2, "Danish Krone"),
        Currency("EUR", 2, "Euro"),
        Currency("GBP", 2, "Pound Sterling"),
        Currency("HKD", 2, "Hong Kong Dollar"),
        Currency("IDR", 2, "Rupiah"),
        Currency("INR", 2, "Indian Rupee"),
        Currency("ISK", 0, "Iceland Krona"),
        Currency("JOD", 3, "Jordanian Dinar"),
        Currency("JPY", 0, "Yen"),
        Currency("KRW", 0, "Won"),
        Currency("KWD", 3, "Kuwaiti Dinar"),
        Currency("MOP", 2, "Pataca"),
        Currency("MXN", 2, "Mexican Peso"),
        Currency("MYR", 2, "Malaysian Ringgit"),
        Currency("NOK", 2, "Norwegian Krone"),
        Currency("NZD", 2, "New Zealand Dollar"),
        Currency("OMR", 3, "Rial Omani"),
        Currency("PHP", 2, "Philippine Peso"),
        Currency("PLN", 2, "Zloty"),
        Currency("SAR", 2, "Saudi Riyal"),
        Currency("SEK", 2, "Swedish Krona"),
        Currency("SGD", 2, "Singapore Dollar"),
        Currency("THB", 2, "Baht"),
        Currency("TND", 3, "Tunisian Dinar"),
        Currency("TWD", 2, "New Taiwan Dollar"),
        Currency("USD", 2, "US Dollar"),
        Currency("VND", 0, "Dong"),
        Currency("ZAR", 2, "Rand"),
    )
}


def currency(code: str) -> Currency:
    """Look up a currency by its ISO 4217 alphabetic code, or raise ``unknown_currency``."""
    found = _CURRENCIES.get(code) if isinstance(code, str) else None
    if found is None:
        raise InvalidRequest(f"Unknown currency {code!r}; use an ISO 4217 code such as CNY or USD.",
                             code="unknown_currency", param="currency")
    return found


def is_currency(code: str) -> bool:
    return code in _CURRENCIES


def currency_codes() -> list[str]:
    return sorted(_CURRENCIES)


class Rounding(StrEnum):
    """Named rounding rules. Each place that rounds names the rule it uses."""

    HALF_EVEN = "half_even"  # banker's rounding: interest accrual, FX
    HALF_UP = "half_up"  # commercial rounding: fees shown to people
    DOWN = "down"  # toward zero: amounts owed *to* a customer never exceed the exact value
    UP = "up"  # away from zero
    FLOOR = "floor"
    CEILING = "ceiling"


def check_amount(value: object, *, allow_zero: bool = True, allow_negative: bool = True) -> int:
    """Accept only a true ``int`` (never bool or float) inside the BIGINT-safe range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("Amounts are integers of minor units.", code="invalid_amount", param="amount")
    if abs(value) > MAX_AMOUNT:
        raise InvalidRequest(f"Amounts are at most {MAX_AMOUNT} minor units.", code="amount_too_large",
                             param="amount")
    if value == 0 and not allow_zero:
        raise InvalidRequest("Amount must be greater than zero.", code="invalid_amount", param="amount")
    if value < 0 and not allow_negative:
        raise InvalidRequest("Amount must not be negative.", code="invalid_amount", param="amount")
    return value


def exact(value: Decimal | Fraction | int, param: str = "amount") -> Fraction:
    """The exact rational value of an int, Decimal or Fraction; floats, bools and NaN/infinity are refused.

    Going through ``Fraction`` keeps every digit: Decimal arithmetic would round to its context's
    28 significant digits, silently for products and with an error for ``quantize``.
    """
    if isinstance(value, bool) or not isinstance(value, int | Decimal | Fraction):
        raise TypeError(f"exact amounts are int, Decimal or Fraction, never {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidRequest(f"{value} is not a finite number.", code="invalid_amount", param=param)
    return Fraction(value)


def round_minor(value: Decimal | Fraction | int, mode: Rounding) -> int:
    """Round an exact quantity of minor units to an integer by the named rule."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    fraction = exact(value)
    floor = fraction.numerator // fraction.denominator
    remainder = fraction - floor
    if remainder == 0:
        return floor
    if mode is Rounding.FLOOR:
        return floor
    if mode is Rounding.CEILING:
        return floor + 1
    if mode is Rounding.DOWN:
        return floor if fraction >= 0 else floor + 1
    if mode is Rounding.UP:
        return floor + 1 if fraction >= 0 else floor
    half = Fraction(1, 2)
    if remainder > half:
        return floor + 1
    if remainder < half:
        return floor
    if mode is Rounding.HALF_UP:
        return floor + 1 if fraction >= 0 else floor
    return floor if floor % 2 == 0 else floor + 1


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``minor`` units of ``currency`` (e.g. Money(12345, "CNY") is CNY 123.45)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise TypeError(f"Money takes an int of minor units, not {type(self.minor).__name__}")
        currency(self.currency)

    @classmethod
    def zero(cls, code: str) -> Money:
        return cls(0, code)

    @classmethod
    def from_major(cls, amount: Decimal | str | int, code: str, mode: Rounding = Rounding.HALF_EVEN) -> Money:
        """Build from a major-unit amount such as Decimal("123.45"); floats are refused."""
        if isinstance(amount, float | bool):
            raise TypeError("from_major refuses float and bool; pass a Decimal or a string")
        if isinstance(amount, str):
            try:
                amount = Decimal(amount.strip())
            except InvalidOperation as error:
                raise InvalidRequest(f"{amount!r} is not a decimal amount.", code="invalid_amount",
                                     param="amount") from error
        minor = exact(amount) * currency(code).minor_per_major
        return cls(round_minor(minor, mode), code)

    def to_major(self) -> Decimal:
        """The amount in major units, exactly (built from digits, so no context precision applies)."""
        exponent = currency(self.currency).exponent
        return Decimal(f"{self.minor}E-{exponent}")

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("Money arithmetic takes Money")
        if other.currency != self.currency:
            raise InvalidRequest(f"Cannot combine {self.currency} with {other.currency}.",
                                 code="currency_mismatch", param="currency")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def __bool__(self) -> bool:
        return self.minor != 0

    def multiply(self, rate: Decimal | Fraction | int, mode: Rounding) -> Money:
        """Scale by an exact rate (a Decimal or Fraction, never float) and round by ``mode``."""
        if isinstance(rate, float | bool):
            raise TypeError("rates are Decimal or Fraction, never float")
        return Money(round_minor(exact(rate, "rate") * self.minor, mode), self.currency)

    def allocate(self, weights: Sequence[int | Decimal | Fraction]) -> list[Money]:
        return [Money(part, self.currency) for part in allocate(self.minor, weights)]

    def format(self) -> str:
        return f"{self.currency} {self.to_major():,}"

    def __str__(self) -> str:
        return self.format()


def allocate(whole: int, weights: Sequence[int | Decimal | Fraction]) -> list[int]:
    """Split ``whole`` in proportion to ``weights`` by the largest-remainder method.

    Each part is first the floor of its exact share; the units left over go one by one to the parts
    with the largest fractional remainders (ties to the earlier part). The parts sum to ``whole``
    exactly, and for a non-negative whole no part is negative. A negative whole is split as the
    mirror image of its absolute value, so allocation commutes with negation.
    """
    if isinstance(whole, bool) or not isinstance(whole, int):
        raise TypeError("allocate splits an int of minor units")
    if not weights:
        raise InvalidRequest("allocate needs at least one weight.", code="invalid_weights", param="weights")
    exact_weights: list[Fraction] = []
    for weight in weights:
        if isinstance(weight, float | bool):
            raise TypeError("weights are int, Decimal or Fraction, never float")
        fraction = exact(weight, "weights")
        if fraction < 0:
            raise InvalidRequest("Weights must not be negative.", code="invalid_weights", param="weights")
        exact_weights.append(fraction)
    total = sum(exact_weights, Fraction(0))
    if total == 0:
        raise InvalidRequest("Weights must not all be zero.", code="invalid_weights", param="weights")
    if whole < 0:
        return [-part for part in allocate(-whole, weights)]
    shares = [whole * weight / total for weight in exact_weights]
    parts = [share.numerator // share.denominator for share in shares]
    leftover = whole - sum(parts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for index in by_remainder[:leftover]:
        parts[index] += 1
    return parts
