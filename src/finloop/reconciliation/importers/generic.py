"""The generic sandbox channel's bill (``payments/connectors/generic/sandbox.py`` ``bill``).

Header ``type,reference,channel_ref,refund_reference,amount,fee,currency,time[,status]``; amounts and fees
are integer minor units (positive; a refund's fee is the fee returned), ``time`` ISO 8601 with an offset,
``status`` (optional) the transaction's state when the bill was made (``succeeded``, ``refunded``).
"""

from __future__ import annotations

import polars as pl

from finloop.reconciliation.importers.base import (
    ImportRejected,
    ParsedFile,
    canonical,
    clip_text,
    exponent_expr,
    integer_minor,
    integer_ok,
    read_text_csv,
    reject_bad_rows,
)

FORMAT = "generic"
COLUMNS = ("type", "reference", "channel_ref", "refund_reference", "amount", "fee", "currency", "time")
_TIME = "%Y-%m-%dT%H:%M:%S%.f%:z"


def parse(content: bytes, *, source: str) -> ParsedFile:
    if not content.strip():
        raise ImportRejected("empty file", line=1)
    frame = read_text_csv(content, columns=COLUMNS)
    kind = pl.col("type").str.strip_chars()
    is_refund = kind == "refund"
    at = pl.col("time").str.to_datetime(_TIME, strict=False, time_zone="UTC", time_unit="us")
    checks = [
        (~kind.is_in(["payment", "refund"]), "type must be payment or refund"),
        (exponent_expr(pl.col("currency")).is_null(), "unknown currency"),
        (~integer_ok(pl.col("amount")), "bad amount"),
        (~integer_ok(pl.col("fee")), "bad fee"),
        (integer_minor(pl.col("amount")) < 0, "negative amount"),
        (integer_minor(pl.col("fee")) < 0, "negative fee"),
        (at.is_null(), "bad time"),
        (pl.when(is_refund).then(pl.col("refund_reference")).otherwise(pl.col("reference")).str.strip_chars() == "",
         "missing reference"),
    ]
    reject_bad_rows(frame, checks)
    lines = frame.lazy().select(
        pl.col("line_no"),
        at.dt.date().alias("value_on"),
        at.alias("occurred_at"),
        kind.alias("kind"),
        clip_text(pl.when(is_refund).then(pl.col("refund_reference")).otherwise(pl.col("reference")))
        .alias("our_reference"),
        clip_text(pl.col("channel_ref")).alias("channel_reference"),
        integer_minor(pl.col("amount")).alias("amount"),
        pl.when(is_refund).then(pl.lit("debit")).otherwise(pl.lit("credit")).alias("direction"),
        integer_minor(pl.col("fee")).alias("fee_amount"),
        pl.col("currency").alias("currency"),
        clip_text(pl.col("status") if "status" in frame.columns else pl.lit(None, pl.Utf8)).alias("status"),
    ).collect()
    lines = canonical(lines)
    currencies = lines["currency"].unique().to_list()
    return ParsedFile(format=FORMAT, source=source, lines=lines,
                      currency=currencies[0] if len(currencies) == 1 else None,
                      business_date=lines["value_on"].min() if lines.height else None)  # type: ignore[arg-type]
