"""Wire types shared by every schema.

An amount on the wire is a strict JSON integer of minor units: booleans, floats (even ``100.0`` or
``1e2``) and strings are refused, and it lies between 1 (or 0 where meaningful) and 10^15 so that
running sums can never overflow a BIGINT.

Text never holds NUL (PostgreSQL cannot store it, so SQLite must refuse it too); keys and names hold
no control characters at all. An instant carries its UTC offset and lies far enough inside the years
1 to 9999 that converting it to any timezone cannot overflow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from finloop.core.money import MAX_AMOUNT, is_currency


def _amount(minimum: int) -> Any:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PydanticCustomError("invalid_amount",
                                      "Amounts are JSON integers of minor units (no decimals, no strings).")
        if value > MAX_AMOUNT:
            raise PydanticCustomError("amount_too_large", f"Amounts are at most {MAX_AMOUNT} minor units.")
        if value < minimum:
            message = "Amount must be greater than zero." if minimum else "Amount must not be negative."
            raise PydanticCustomError("invalid_amount", message)
        return value

    return validate


Amount = Annotated[int, PlainValidator(_amount(1)),
                   WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT,
                                   "description": "Minor units (e.g. cents), a JSON integer."})]
NonNegativeAmount = Annotated[int, PlainValidator(_amount(0)),
                              WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT,
                                              "description": "Minor units, a JSON integer."})]


def _currency(value: str) -> str:
    if not is_currency(value):
        raise PydanticCustomError("unknown_currency", "Unknown currency; use an ISO 4217 code such as CNY.")
    return value


CurrencyCode = Annotated[str, Field(min_length=3, max_length=3, pattern="^[A-Z]{3}$",
                                    description="ISO 4217 code.", examples=["CNY"]),
                         AfterValidator(_currency)]


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 50:
        raise PydanticCustomError("invalid_metadata", "Metadata holds at most 50 keys.")
    for key, item in value.items():
        if len(key) > 40 or not isinstance(item, str) or len(item) > 500:
            raise PydanticCustomError("invalid_metadata",
                                      "Metadata maps keys of up to 40 characters to strings of up to 500.")
        if not _storable(key) or not _storable(item):
            raise PydanticCustomError("invalid_metadata",
                                      "Metadata keys and values are Unicode text without NUL characters.")
    return value


def _storable(value: str) -> bool:
    """Whether both databases can store the text: no NUL, and no unpaired surrogate (not UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def no_nul(value: str) -> str:
    if not _storable(value):
        raise PydanticCustomError("invalid_text", "Text is Unicode without NUL characters.")
    return value


def single_line(value: str) -> str:
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise PydanticCustomError("invalid_text", "Control characters are not allowed here.")
    return no_nul(value)


_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def utc_instant(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("invalid_datetime", "Give the time with its UTC offset.")
    try:
        instant = value.astimezone(UTC)
    except OverflowError:  # the offset pushed it past year 1 or 9999
        instant = None
    if instant is None or not _EARLIEST <= instant <= _LATEST:
        raise PydanticCustomError("invalid_datetime", "Times lie between 0001-01-02 and 9999-12-30 UTC.")
    return instant


Metadata = Annotated[dict[str, Any], AfterValidator(_metadata),
                     WithJsonSchema({"type": "object", "additionalProperties": {"type": "string", "maxLength": 500},
                                     "maxProperties": 50})]
Description = Annotated[str, Field(max_length=1000), AfterValidator(no_nul)]
TransferKey = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(single_line)]
#: Text on one line: names, identifiers and filters given in a query or path.
Line = Annotated[str, AfterValidator(single_line)]
#: An aware instant, normalised to UTC.
Instant = Annotated[datetime, AfterValidator(utc_instant)]
