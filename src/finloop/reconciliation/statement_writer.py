"""Bank statement writers (camt.053 and MT940) from a list of movements — for tests and the demo.

Amounts are integer minor units; the text is written exactly (no float) with the currency's
exponent. Movements carry our reference (EndToEndId in camt.053, ``/EREF/`` in MT940 ``:86:``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from xml.sax.saxutils import escape

from finloop.core.money import currency as iso_currency

#: Kind → (camt.053 domain, family, sub-family) and MT940 type code.
_CAMT_CODES = {
    "settlement": ("PMNT", "RCDT", "ESCT"), "payout": ("PMNT", "ICDT", "ESCT"),
    "payout_return": ("PMNT", "ICDT", "RRTN"), "fee": ("ACMT", "MDOP", "CHRG"),
    "payment": ("PMNT", "CCRD", "POSD"), "adjustment": ("ACMT", "MDOP", "ADJT"),
}
_MT940_CODES = {"fee": "NCHG", "payout_return": "NRTI"}


@dataclass(frozen=True, slots=True)
class Movement:
    """One booked movement on the account: ``amount`` > 0, ``direction`` credit (in) or debit (out)."""

    amount: int
    direction: str
    value_on: date
    our_reference: str | None = None
    bank_reference: str | None = None
    description: str = ""
    kind: str = "settlement"


def _major(amount: int, code: str, separator: str = ".") -> str:
    exponent = iso_currency(code).exponent
    whole, part = divmod(abs(amount), 10**exponent)
    return f"{whole}{separator}{part:0{exponent}d}" if exponent else f"{whole}{separator}"


def closing_of(opening: int, movements: Sequence[Movement]) -> int:
    return opening + sum(m.amount if m.direction == "credit" else -m.amount for m in movements)


def camt053(*, account: str, currency: str, opening_balance: int, movements: Sequence[Movement],
            statement_id: str, created_at: datetime, opening_on: date, closing_on: date,
            version: str = "08") -> bytes:
    """A camt.053.001.<version> statement of one account (IBAN when it looks like one, else Othr/Id)."""
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
    closing = closing_of(opening_balance, movements)
    account_id = (f"<IBAN>{escape(account)}</IBAN>" if account[:2].isalpha() and len(account) >= 15
                  else f"<Othr><Id>{escape(account)}</Id></Othr>")

    def balance(code: str, amount: int, on: date) -> str:
        indicator = "CRDT" if amount >= 0 else "DBIT"
        return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
                f'<Amt Ccy="{currency}">{_major(amount, currency)}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>'
                f"<Dt><Dt>{on.isoformat()}</Dt></Dt></Bal>")

    parts = ['<?xml version="1.0" encoding="UTF-8"?>', f'<Document xmlns="{ns}">', "<BkToCstmrStmt>",
             f"<GrpHdr><MsgId>{escape(statement_id)}</MsgId><CreDtTm>{created_at.isoformat()}</CreDtTm></GrpHdr>",
             f"<Stmt><Id>{escape(statement_id)}</Id><CreDtTm>{created_at.isoformat()}</CreDtTm>",
             f"<Acct><Id>{account_id}</Id><Ccy>{currency}</Ccy></Acct>",
             balance("OPBD", opening_balance, opening_on), balance("CLBD", closing, closing_on)]
    for index, m in enumerate(movements, start=1):
        domain, family, sub = _CAMT_CODES.get(m.kind, ("PMNT", "OTHR", "OTHR"))
        reference = escape(m.bank_reference or f"{statement_id}-{index}")
        e2e = escape(m.our_reference) if m.our_reference else "NOTPROVIDED"
        parts.append(
            "<Ntry>"
            f'<Amt Ccy="{currency}">{_major(m.amount, currency)}</Amt>'
            f"<CdtDbtInd>{'CRDT' if m.direction == 'credit' else 'DBIT'}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
            f"<BookgDt><Dt>{m.value_on.isoformat()}</Dt></BookgDt><ValDt><Dt>{m.value_on.isoformat()}</Dt></ValDt>"
            f"<AcctSvcrRef>{reference}</AcctSvcrRef>"
            f"<BkTxCd><Domn><Cd>{domain}</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub}</SubFmlyCd></Fmly></Domn>"
            "</BkTxCd>"
            f"<NtryDtls><TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
            f"<RmtInf><Ustrd>{escape(m.description)}</Ustrd></RmtInf></TxDtls></NtryDtls>"
            "</Ntry>")
    parts += ["</Stmt>", "</BkToCstmrStmt>", "</Document>"]
    return "\n".join(parts).encode()


def mt940(*, account: str, currency: str, opening_balance: int, movements: Sequence[Movement],
          statement_id: str, opening_on: date, closing_on: date) -> bytes:
    """An MT940 statement (one message): :20: :25: :28C: :60F: then :61:/:86: pairs, :62F:."""
    closing = closing_of(opening_balance, movements)

    def balance(tag: str, amount: int, on: date) -> str:
        return f":{tag}:{'C' if amount >= 0 else 'D'}{on:%y%m%d}{currency}{_major(amount, currency, ',')}"

    lines = [f":20:{statement_id[:16]}", f":25:{account[:35]}", ":28C:1/1", balance("60F", opening_balance,
                                                                                         opening_on)]
    for index, m in enumerate(movements, start=1):
        code = _MT940_CODES.get(m.kind, "NTRF")
        bank_reference = (m.bank_reference or f"{statement_id}-{index}")[:16]
        mark = "C" if m.direction == "credit" else "D"
        lines.append(f":61:{m.value_on:%y%m%d}{m.value_on:%m%d}{mark}{_major(m.amount, currency, ',')}"
                     f"{code}NONREF//{bank_reference}")
        details = (f"/EREF/{m.our_reference}" if m.our_reference else "") + (
            f"/REMI/{m.description}" if m.description else "")
        lines.append(f":86:{details[:390] or 'NONREF'}")
    lines += [balance("62F", closing, closing_on), "-"]
    return ("\r\n".join(lines) + "\r\n").encode()
