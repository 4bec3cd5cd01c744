"""Wire types shared by every schema.

An amount on the wire is a strict JSON integer of minor units: booleans, floats (even ``100.0`` or
``1e2``) and strings are refused, and it lies between 1 (or 0 where meaningful) and 10^15 so that
running sums can never overflow a BIGINT.
"""

from __future__ import annotations

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
    return value


Metadata = Annotated[dict[str, Any], AfterValidator(_metadata),
                     WithJsonSchema({"type": "object", "additionalProperties": {"type": "string", "maxLength": 500},
                                     "maxProperties": 50})]
Description = Annotated[str, Field(max_length=1000)]
TransferKey = Annotated[str, Field(min_length=1, max_length=255)]
