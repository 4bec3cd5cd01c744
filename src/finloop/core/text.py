"""Checks of free text and bank account details as they arrive at the boundary, with the stable error codes
every domain answers with."""

from __future__ import annotations

import re

from finloop.core.errors import InvalidRequest

_ACCOUNT_NUMBER = re.compile(r"^[A-Za-z0-9]{6,34}$")


def check_text(value: str | None, *, param: str, max_length: int, required: bool = False) -> str:
    """``value`` stripped; at most ``max_length`` printable characters, and not empty when ``required``."""
    value = (value or "").strip()
    if required and not value:
        raise InvalidRequest(f"{param} is required.", code="parameter_missing", param=param)
    if len(value) > max_length or not value.isprintable():
        raise InvalidRequest(f"{param} is at most {max_length} printable characters.", code="invalid_text",
                             param=param)
    return value


def check_account_number(value: str, *, param: str = "account_number") -> str:
    """A bank account number (domestic or IBAN) without its spaces and dashes: 6 to 34 letters and digits."""
    number = value.replace(" ", "").replace("-", "")
    if not _ACCOUNT_NUMBER.match(number):
        raise InvalidRequest("An account number is 6 to 34 letters and digits.", code="invalid_account_number",
                             param=param)
    return number


def check_holder_name(value: str, *, param: str) -> str:
    name = value.strip()
    if not name or len(name) > 200 or not name.isprintable():
        raise InvalidRequest(f"{param} is 1 to 200 printable characters.", code="invalid_text", param=param)
    return name
