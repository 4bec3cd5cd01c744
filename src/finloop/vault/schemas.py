"""Vault request and response schemas.

``CardRead`` is the only shape a card leaves finloop in: it has no field that could carry the number,
the CVC or the holder's name, so no code path can return them by accident.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from finloop.vault.domain import Brand


def _cvc(value: str | None) -> str | None:
    # The message never repeats the value: a CVC is as sensitive as the number.
    if value is not None and not (value.isascii() and value.isdigit() and 3 <= len(value) <= 4):
        raise PydanticCustomError("invalid_cvc", "The CVC is 3 or 4 digits.")
    return value


class CardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    number: str = Field(description="12 to 19 digits; spaces and dashes are ignored. Never returned or stored "
                                    "in clear.", examples=["4242 4242 4242 4242"])
    exp_month: int = Field(strict=True, description="1 to 12.", examples=[12])
    exp_year: int = Field(strict=True, description="Four digits.", examples=[2030])
    cvc: Annotated[str | None, AfterValidator(_cvc)] = Field(
        None, description="Checked and then discarded: the vault never stores a CVC (PCI DSS 3.2). Send it with "
                          "the payment instead.")
    holder: str | None = Field(None, description="The cardholder's name; stored only encrypted.")
    customer_id: str | None = Field(None, description="The customer this card belongs to.")


class CardRead(BaseModel):
    id: str
    object: str = "card"
    brand: Brand
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str = Field(description="The same card gives the same fingerprint within your tenant.")
    customer_id: str | None
    created_at: datetime
    deleted_at: datetime | None = Field(description="Set once the card was deleted: its encrypted number is gone.")


class VaultKeyRead(BaseModel):
    id: str
    purpose: str
    version: int
    status: str
    master_key_id: str
    created_at: datetime
    retired_at: datetime | None


class VaultKeyStatus(VaultKeyRead):
    cards: int = Field(description="Cards whose number is encrypted under this key.")
