"""ISO 20022 camt.053 bank-to-customer statements, parsed streaming and defused.

``defusedxml.ElementTree.iterparse`` with DTDs, entities and external references forbidden (a
billion-laughs file is rejected, never expanded). Any ``camt.053.001.0X`` namespace is accepted. One
statement (``Stmt``) per file: the account (IBAN or ``Othr/Id``), the OPBD and CLBD balances (signed
by ``CdtDbtInd``), and the entries. Each ``Ntry`` is cleared once read, so memory stays flat.

An entry maps to: ``Amt``/``@Ccy`` → amount/currency, ``CdtDbtInd`` CRDT → credit, DBIT → debit,
``ValDt`` (else ``BookgDt``) → value_on, ``BookgDt/DtTm`` → occurred_at, ``AcctSvcrRef`` →
channel_reference, ``NtryDtls/TxDtls/Refs/EndToEndId`` → our_reference, ``RmtInf/Ustrd`` →
description, ``BkTxCd`` → kind. The opening balance plus the entries must equal the closing balance.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import polars as pl
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, iterparse

from finloop.reconciliation.importers.base import (
    CANONICAL_SCHEMA,
    MAX_TEXT,
    ImportRejected,
    ParsedFile,
    to_minor,
)

FORMAT = "camt053"
NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.053.001."
_LINE = "{finloop}line"
#: Bank transaction codes (ISO domain/family/sub-family, or proprietary) → canonical kind.
_SUBFAMILY_KINDS = {"CHRG": "fee", "COMM": "fee", "FEES": "fee", "RRTN": "payout_return", "ARET": "payout_return",
                    "CHBK": "chargeback", "ADJT": "adjustment"}
_FAMILY_KINDS = {"RCDT": "settlement", "ICDT": "payout", "CCRD": "payment", "MCRD": "payment", "CHRG": "fee"}


class _LineBuilder(TreeBuilder):
    """A tree builder that stamps each element with the line it starts on (expat knows it exactly)."""

    parser: Any = None

    def start(self, tag: Any, attrs: Any) -> Element:
        element = super().start(tag, attrs)
        if self.parser is not None:
            element.set(_LINE, str(self.parser.parser.CurrentLineNumber))
        return element


@dataclass
class _Statement:
    namespace: str = ""
    account: str | None = None
    currency: str | None = None
    opening: tuple[int, date | None] | None = None
    closing: tuple[int, date | None] | None = None
    statements: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def parse(content: bytes, *, source: str) -> ParsedFile:
    builder = _LineBuilder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.parser = parser
    state = _Statement()
    stack: list[Element] = []
    try:
        for event, element in iterparse(io.BytesIO(content), events=("start", "end"), parser=parser,
                                        forbid_dtd=True):
            namespace, name = _local(element.tag)
            if event == "start":
                if not stack:
                    if name != "Document" or not namespace.startswith(NAMESPACE_PREFIX):
                        raise ImportRejected("not a camt.053 document (root Document in a camt.053.001 namespace)",
                                             line=_line(element))
                    state.namespace = namespace
                stack.append(element)
                continue
            stack.pop()
            if namespace != state.namespace:
                continue
            if name == "Ntry":
                state.rows.append(_entry(element, state.namespace))
                if stack:
                    stack[-1].remove(element)
            elif name == "Bal":
                _balance(element, state)
            elif name == "Acct" and stack and _local(stack[-1].tag)[1] == "Stmt":
                _account(element, state)
            elif name == "Stmt":
                state.statements += 1
                if state.statements > 1:
                    raise ImportRejected("more than one statement (Stmt) in the file", line=_line(element))
    except ImportRejected:
        raise
    except DefusedXmlException as error:
        raise ImportRejected(f"forbidden XML construct ({type(error).__name__}): DTDs and entities are refused",
                             line=_expat_line(parser)) from None
    except ParseError as error:
        raise ImportRejected(f"malformed XML: {error}", line=error.position[0]) from None
    if state.statements == 0:
        raise ImportRejected("no statement (Stmt) in the file")
    if state.account is None:
        raise ImportRejected("the statement has no account id (IBAN or Othr/Id)")
    frame = pl.DataFrame(state.rows, schema=CANONICAL_SCHEMA) if state.rows else pl.DataFrame(schema=CANONICAL_SCHEMA)
    currency = state.currency or (str(frame["currency"][0]) if frame.height else None)
    if currency is not None and frame.height and frame.filter(pl.col("currency") != currency).height:
        bad = frame.filter(pl.col("currency") != currency)
        raise ImportRejected(f"entry currency differs from the account's {currency}", line=int(bad["line_no"][0]),
                             bad_lines=bad.height)
    opening = state.opening[0] if state.opening else None
    closing = state.closing[0] if state.closing else None
    if opening is not None and closing is not None:
        signed = frame.select(pl.when(pl.col("direction") == "credit").then(pl.col("amount"))
                              .otherwise(-pl.col("amount")).sum()).item() or 0
        if opening + int(signed) != closing:
            raise ImportRejected("opening balance plus entries does not equal the closing balance")
    business_date = (state.closing[1] if state.closing and state.closing[1] else
                     (frame["value_on"].max() if frame.height else None))
    return ParsedFile(format=FORMAT, source=source, lines=frame, account=state.account, currency=currency,
                      business_date=business_date, opening_balance=opening,  # type: ignore[arg-type]
                      closing_balance=closing)


def _line(element: Element) -> int:
    return int(element.get(_LINE, "0"))


def _expat_line(parser: Any) -> int:
    try:
        return int(parser.parser.CurrentLineNumber)
    except AttributeError:
        return 0


def _child(element: Element | None, namespace: str, *path: str) -> Element | None:
    for name in path:
        if element is None:
            return None
        element = element.find(f"{{{namespace}}}{name}")
    return element


def _text(element: Element | None, namespace: str, *path: str) -> str | None:
    found = _child(element, namespace, *path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value[:MAX_TEXT] if value else None


def _amount(element: Element, namespace: str, where: str) -> tuple[int, str]:
    amt = _child(element, namespace, "Amt")
    if amt is None or amt.text is None:
        raise ImportRejected(f"{where} without an amount (Amt)", line=_line(element))
    currency = (amt.get("Ccy") or "").strip().upper()
    try:
        value = to_minor(amt.text, currency)
    except ValueError as error:
        raise ImportRejected(f"bad amount in {where}: {error}", line=_line(amt)) from None
    if value < 0:
        raise ImportRejected(f"negative amount in {where} (the sign is CdtDbtInd)", line=_line(amt))
    return value, currency


def _indicator(element: Element, namespace: str, where: str) -> str:
    indicator = _text(element, namespace, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise ImportRejected(f"{where} CdtDbtInd must be CRDT or DBIT", line=_line(element))
    return "credit" if indicator == "CRDT" else "debit"


def _date(element: Element, namespace: str, name: str) -> tuple[date | None, datetime | None]:
    holder = _child(element, namespace, name)
    if holder is None:
        return None, None
    text_date = _text(holder, namespace, "Dt")
    text_time = _text(holder, namespace, "DtTm")
    try:
        if text_date is not None:
            return date.fromisoformat(text_date), None
        if text_time is not None:
            moment = datetime.fromisoformat(text_time)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
            return moment.date(), moment
    except ValueError:
        raise ImportRejected(f"bad date in {name}", line=_line(holder)) from None
    raise ImportRejected(f"{name} has neither Dt nor DtTm", line=_line(holder))


def _balance(element: Element, state: _Statement) -> None:
    ns = state.namespace
    code = _text(element, ns, "Tp", "CdOrPrtry", "Cd")
    if code not in ("OPBD", "CLBD"):
        return
    amount, currency = _amount(element, ns, f"balance {code}")
    signed = amount if _indicator(element, ns, f"balance {code}") == "credit" else -amount
    on, _ = _date(element, ns, "Dt")
    if state.currency is not None and currency != state.currency:
        raise ImportRejected(f"balance {code} currency {currency} differs from the account's", line=_line(element))
    state.currency = state.currency or currency
    if code == "OPBD":
        state.opening = (signed, on)
    else:
        state.closing = (signed, on)


def _account(element: Element, state: _Statement) -> None:
    ns = state.namespace
    state.account = _text(element, ns, "Id", "IBAN") or _text(element, ns, "Id", "Othr", "Id")
    currency = _text(element, ns, "Ccy")
    if currency:
        state.currency = currency.upper()


def _entry(element: Element, ns: str) -> dict[str, Any]:
    amount, currency = _amount(element, ns, "entry")
    direction = _indicator(element, ns, "entry")
    booked_on, booked_at = _date(element, ns, "BookgDt")
    value_on, value_at = _date(element, ns, "ValDt")
    value_on = value_on or booked_on
    if value_on is None:
        raise ImportRejected("entry without ValDt or BookgDt", line=_line(element))
    details = _child(element, ns, "NtryDtls", "TxDtls")
    our_reference = _text(details, ns, "Refs", "EndToEndId")
    if our_reference == "NOTPROVIDED":
        our_reference = None
    status = _text(element, ns, "Sts", "Cd") or _text(element, ns, "Sts")
    description = _text(details, ns, "RmtInf", "Ustrd") or _text(element, ns, "AddtlNtryInf")
    return {
        "line_no": _line(element), "value_on": value_on, "occurred_at": booked_at or value_at,
        "kind": _kind(element, ns, direction), "our_reference": our_reference,
        "channel_reference": _text(element, ns, "AcctSvcrRef"), "amount": amount, "direction": direction,
        "fee_amount": 0, "currency": currency, "status": status, "counterparty": None, "description": description,
    }


def _kind(element: Element, ns: str, direction: str) -> str:
    code = _child(element, ns, "BkTxCd")
    family = _text(code, ns, "Domn", "Fmly", "Cd")
    subfamily = _text(code, ns, "Domn", "Fmly", "SubFmlyCd")
    proprietary = (_text(code, ns, "Prtry", "Cd") or "").lower()
    if proprietary in ("payment", "refund", "fee", "settlement", "payout", "payout_return", "chargeback",
                       "adjustment"):
        return proprietary
    if subfamily in _SUBFAMILY_KINDS:
        return _SUBFAMILY_KINDS[subfamily]
    if family in _FAMILY_KINDS:
        return _FAMILY_KINDS[family]
    return "other"
