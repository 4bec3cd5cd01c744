"""Stripe-like balance change report (``payments/connectors/stripe/sandbox.py`` ``bill``).

A header row naming the columns (any order, extra columns ignored); ``gross``/``fee`` are signed
major-unit decimals in the lowercase ``currency``; ``created_utc`` is UTC. ``reporting_category``
gives the kind: charge → payment (credit), refund → refund (debit), payout, fee, adjustment, …; the
sign of ``gross`` gives the direction. Our reference: ``refund_metadata[reference]`` on refunds,
``payment_metadata[reference]`` otherwise. The channel reference: the payment intent on charges,
the source id (``re_…``) on refunds.
"""

from __future__ import annotations

import polars as pl

from finloop.reconciliation.importers.base import (
    ImportRejected,
    ParsedFile,
    canonical,
    clip_text,
    decimal_minor,
    decimal_ok,
    exponent_expr,
    file_exponent,
    read_text_csv,
    reject_bad_rows,
)

FORMAT = "stripe"
REQUIRED = ("balance_transaction_id", "created_utc", "currency", "gross", "fee", "reporting_category")
_TIME = "%Y-%m-%d %H:%M:%S"
_KINDS = {"charge": "payment", "refund": "refund", "payout": "payout", "payout_reversal": "payout_return",
          "fee": "fee", "stripe_fee": "fee", "dispute": "chargeback", "dispute_reversal": "chargeback",
          "adjustment": "adjustment", "transfer": "settlement", "topup": "settlement", "other_adjustment": "adjustment"}


def parse(content: bytes, *, source: str) -> ParsedFile:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    if not content.strip():
        raise ImportRejected("empty file", line=1)
    frame = read_text_csv(content, columns=REQUIRED)
    for optional in ("source_id", "description", "payment_intent_id", "payment_metadata[reference]",
                     "refund_metadata[reference]"):
        if optional not in frame.columns:
            frame = frame.with_columns(pl.lit("").alias(optional))
    currency = pl.col("currency").str.strip_chars().str.to_uppercase()
    exp = file_exponent(frame, currency)
    category = pl.col("reporting_category").str.strip_chars()
    checks = [
        (exponent_expr(currency).is_null(), "unknown currency"),
        (~decimal_ok(pl.col("gross"), exp), "bad amount in gross"),
        (~decimal_ok(pl.col("fee"), exp), "bad amount in fee"),
        (pl.col("created_utc").str.strptime(pl.Datetime("us"), _TIME, strict=False).is_null(),
         "bad time in created_utc"),
        (category == "", "missing reporting_category"),
    ]
    reject_bad_rows(frame, checks)
    at = pl.col("created_utc").str.strptime(pl.Datetime("us"), _TIME, strict=False)
    gross = decimal_minor(pl.col("gross"), exp)
    is_refund = category == "refund"
    is_charge = category == "charge"
    lines = frame.lazy().select(
        pl.col("line_no"),
        at.dt.date().alias("value_on"),
        at.dt.replace_time_zone("UTC").alias("occurred_at"),
        category.replace_strict(_KINDS, default="other", return_dtype=pl.Utf8).alias("kind"),
        clip_text(pl.when(is_refund).then(pl.col("refund_metadata[reference]"))
                  .otherwise(pl.col("payment_metadata[reference]"))).alias("our_reference"),
        clip_text(pl.when(is_charge).then(pl.col("payment_intent_id")).otherwise(pl.col("source_id")))
        .alias("channel_reference"),
        gross.abs().alias("amount"),
        pl.when(gross < 0).then(pl.lit("debit")).otherwise(pl.lit("credit")).alias("direction"),
        decimal_minor(pl.col("fee"), exp).abs().alias("fee_amount"),
        currency.alias("currency"),
        pl.lit("available").alias("status"),
        clip_text(pl.col("description")).alias("description"),
    ).collect()
    lines = canonical(lines)
    currencies = lines["currency"].unique().to_list()
    return ParsedFile(format=FORMAT, source=source, lines=lines,
                      currency=currencies[0] if len(currencies) == 1 else None,
                      business_date=lines["value_on"].min() if lines.height else None)  # type: ignore[arg-type]
