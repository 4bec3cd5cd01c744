"""Card numbers for tests."""

from __future__ import annotations

from finloop.vault.domain import luhn_check_digit


def valid_number(prefix: str, length: int = 16, fill: str = "0") -> str:
    """``prefix`` padded with ``fill`` to ``length`` digits, with a correct Luhn check digit."""
    body = (prefix + fill * length)[: length - 1]
    return body + str(luhn_check_digit(body))
