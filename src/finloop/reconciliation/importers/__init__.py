"""Parsers of channel bills and bank statements into the canonical line frame.

``parse(format, content, source=..., mapping=...)`` is the one entry point; see ``base`` for the
canonical columns and the rejection error.
"""

from __future__ import annotations

from finloop.reconciliation.importers import alipay, camt053, csv_mapping, generic, mt940, stripe, wechat
from finloop.reconciliation.importers.base import (
    CANONICAL_COLUMNS,
    CANONICAL_SCHEMA,
    ColumnMapping,
    ImportRejected,
    ParsedFile,
)

#: Formats and whether they are a channel bill or a bank statement.
FORMATS: dict[str, str] = {
    "wechat": "channel", "alipay": "channel", "stripe": "channel", "generic": "channel",
    "camt053": "bank", "mt940": "bank", "csv": "channel",
}

_PARSERS = {"wechat": wechat.parse, "alipay": alipay.parse, "stripe": stripe.parse, "generic": generic.parse,
            "camt053": camt053.parse, "mt940": mt940.parse}


def parse(format: str, content: bytes, *, source: str, mapping: ColumnMapping | None = None) -> ParsedFile:
    """Parse one file; raises :class:`ImportRejected` (code ``file_rejected``) naming the bad line."""
    nul = content.find(b"\x00")
    if nul >= 0 and not content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRejected("the file holds a NUL byte (binary, or UTF-16 without a byte-order mark)",
                             line=content.count(b"\n", 0, nul) + 1)
    if format == "csv":
        return csv_mapping.parse(content, source=source, mapping=mapping)
    parser = _PARSERS.get(format)
    if parser is None:
        raise ImportRejected(f"unknown format {format[:40]!r}")
    return parser(content, source=source)


__all__ = ["CANONICAL_COLUMNS", "CANONICAL_SCHEMA", "FORMATS", "ColumnMapping", "ImportRejected", "ParsedFile",
           "parse"]
