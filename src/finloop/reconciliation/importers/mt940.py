"""SWIFT MT940 customer statements, parsed with the ``mt-940`` package.

``:25:`` is the account, ``:60F:``/``:62F:`` the opening and closing balances, each ``:61:`` a
movement (value date, C/D mark, amount, type code, customer reference, ``//`` bank reference) with its
``:86:`` details. The customer reference field holds 16 characters, so our (longer) references travel
in ``:86:`` as ``/EREF/<reference>``; a ``:61:`` customer reference other than NONREF is used when no
EREF is given. Type codes NCHG/FCHG/NCOM → fee, NRTI → payout_return; other credits are settlements,
other debits payouts. Only one statement per file; opening + movements must equal closing.
"""

from __future__ import annotations

import re
from typing import Any

import mt940 as mt940_lib
import polars as pl

from finloop.reconciliation.importers.base import (
    CANONICAL_SCHEMA,
    MAX_TEXT,
    ImportRejected,
    ParsedFile,
    to_minor,
)

FORMAT = "mt940"
_EREF = re.compile(r"/EREF/([^/\s]+)")
_REMI = re.compile(r"/REMI/(.*)$")
_CODE_KINDS = {"NCHG": "fee", "FCHG": "fee", "NCOM": "fee", "NRTI": "payout_return", "NCHK": "payment"}


def parse(content: bytes, *, source: str) -> ParsedFile:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = content.decode("latin-1")
    lines = text.splitlines()
    tags = [(number, line[:5]) for number, line in enumerate(lines, start=1) if line.startswith(":")]
    for required in (":20:", ":25:", ":60F:", ":62F:"):
        if not any(line.startswith(required) for _, line in ((n, lines[n - 1]) for n, _ in tags)):
            raise ImportRejected(f"missing {required} field", line=len(lines))
    if sum(1 for line in lines if line.startswith(":20:")) > 1:
        raise ImportRejected("more than one statement in the file")
    transaction_lines = [number for number, line in enumerate(lines, start=1) if line.startswith(":61:")]
    try:
        statement = mt940_lib.models.Transactions()
        statement.parse(text)
    except Exception as error:  # noqa: BLE001 - the package raises assorted errors on malformed input
        raise ImportRejected(f"malformed MT940: {error}") from None
    data = statement.data
    movements = list(statement)
    if len(movements) != len(transaction_lines):
        raise ImportRejected("a :61: statement line could not be read", line=transaction_lines[-1]
                             if transaction_lines else 0)
    opening = data.get("final_opening_balance") or data.get("opening_balance")
    closing = data.get("final_closing_balance") or data.get("closing_balance")
    if opening is None or closing is None:
        raise ImportRejected("unreadable :60F:/:62F: balance")
    currency = str(opening.amount.currency).upper()
    try:
        opening_minor = _signed(opening, currency)
        closing_minor = _signed(closing, currency)
    except ValueError as error:
        raise ImportRejected(f"bad balance: {error}") from None
    rows: list[dict[str, Any]] = []
    for number, movement in zip(transaction_lines, movements, strict=True):
        rows.append(_row(number, movement.data, currency))
    frame = pl.DataFrame(rows, schema=CANONICAL_SCHEMA) if rows else pl.DataFrame(schema=CANONICAL_SCHEMA)
    total = sum(r["amount"] if r["direction"] == "credit" else -r["amount"] for r in rows)
    if opening_minor + total != closing_minor:
        raise ImportRejected("opening balance plus movements does not equal the closing balance",
                             line=next(n for n, _ in tags if lines[n - 1].startswith(":62F:")))
    return ParsedFile(format=FORMAT, source=source, lines=frame,
                      account=str(data.get("account_identification") or "")[:MAX_TEXT] or None,
                      currency=currency, business_date=closing.date, opening_balance=opening_minor,
                      closing_balance=closing_minor)


def _signed(balance: Any, currency: str) -> int:
    value = to_minor(str(abs(balance.amount.amount)), currency)
    return -value if balance.status == "D" else value


def _row(number: int, data: dict[str, Any], currency: str) -> dict[str, Any]:
    amount = data.get("amount")
    if amount is None or data.get("date") is None:
        raise ImportRejected("unreadable :61: statement line", line=number)
    row_currency = str(amount.currency or currency).upper()
    try:
        minor = to_minor(str(abs(amount.amount)), row_currency)
    except ValueError as error:
        raise ImportRejected(f"bad amount: {error}", line=number) from None
    status = str(data.get("status") or "")
    direction = "credit" if status in ("C", "RD") else "debit"
    details = str(data.get("transaction_details") or "").replace("\n", "")
    match = _EREF.search(details)
    customer = str(data.get("customer_reference") or "").strip()
    our_reference = match.group(1) if match else (customer if customer and customer != "NONREF" else None)
    remittance = _REMI.search(details)
    description = (remittance.group(1) if remittance else _EREF.sub("", details)).strip(" /") or None
    code = str(data.get("id") or "")
    kind = _CODE_KINDS.get(code, "settlement" if direction == "credit" else "payout")
    return {
        "line_no": number, "value_on": data["date"], "occurred_at": None, "kind": kind,
        "our_reference": our_reference[:MAX_TEXT] if our_reference else None,
        "channel_reference": (str(data.get("bank_reference") or "").strip() or None), "amount": minor,
        "direction": direction, "fee_amount": 0, "currency": row_currency, "status": "booked",
        "counterparty": None, "description": description[:MAX_TEXT] if description else None,
    }
