"""A generic CSV read through a saved :class:`ColumnMapping` (any bank's or channel's export).

The mapping names, per canonical field, the header of the column holding it; ``value_on`` and
``amount`` are required. Amounts are major-unit decimals (``12.34``) or integer minor units, either
signed (positive = money to us) or positive with a direction column whose values the mapping lists.
"""

from __future__ import annotations

import polars as pl

from finloop.reconciliation.importers.base import (
    KINDS,
    AmountStyle,
    ColumnMapping,
    ImportRejected,
    ParsedFile,
    SignConvention,
    canonical,
    clip_text,
    decimal_minor,
    decimal_ok,
    exponent_expr,
    file_exponent,
    integer_minor,
    integer_ok,
    read_text_csv,
    reject_bad_rows,
)

FORMAT = "csv"


def parse(content: bytes, *, source: str, mapping: ColumnMapping | None) -> ParsedFile:
    try:
        return _parse(content, source=source, mapping=mapping)
    except (pl.exceptions.PolarsError, OverflowError) as error:
        raise ImportRejected(f"the file does not fit the mapping ({type(error).__name__})") from None


def _parse(content: bytes, *, source: str, mapping: ColumnMapping | None) -> ParsedFile:
    if mapping is None:
        raise ImportRejected("the csv format needs a saved column mapping (mapping_id)")
    if "value_on" not in mapping.columns or "amount" not in mapping.columns:
        raise ImportRejected("the mapping must name the value_on and amount columns")
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    if not content.strip():
        raise ImportRejected("empty file", line=1)
    frame = read_text_csv(content, columns=list(dict.fromkeys(mapping.columns.values())),
                          separator=mapping.delimiter)
    col = {name: pl.col(header) for name, header in mapping.columns.items()}
    currency = (col["currency"].str.strip_chars().str.to_uppercase() if "currency" in col
                else pl.lit(mapping.default_currency, dtype=pl.Utf8))
    exp = file_exponent(frame, currency)
    raw = col["amount"]
    if mapping.amount_style == AmountStyle.MAJOR:
        amount_ok, signed = decimal_ok(raw, exp), decimal_minor(raw, exp)
    else:
        amount_ok, signed = integer_ok(raw), integer_minor(raw)
    value_on = col["value_on"].str.strip_chars().str.strptime(pl.Date, mapping.date_format, strict=False)
    checks: list[tuple[pl.Expr, str]] = [
        (exponent_expr(currency).is_null(), "unknown currency"),
        (~amount_ok, "bad amount"),
        (value_on.is_null(), "bad date"),
    ]
    if mapping.sign == SignConvention.DIRECTION:
        if "direction" not in col:
            raise ImportRejected("the mapping's sign convention needs a direction column")
        value = col["direction"].str.strip_chars()
        is_credit = value.is_in(list(mapping.credit_values))
        checks.append((~(is_credit | value.is_in(list(mapping.debit_values))), "unknown direction value"))
        checks.append((signed < 0, "negative amount with a direction column"))
        direction = pl.when(is_credit).then(pl.lit("credit")).otherwise(pl.lit("debit"))
    else:
        direction = pl.when(signed < 0).then(pl.lit("debit")).otherwise(pl.lit("credit"))
    fee = pl.lit(0, dtype=pl.Int64)
    if "fee_amount" in col:
        if mapping.amount_style == AmountStyle.MAJOR:
            checks.append((~decimal_ok(col["fee_amount"], exp), "bad fee"))
            fee = decimal_minor(col["fee_amount"], exp).abs()
        else:
            checks.append((~integer_ok(col["fee_amount"]), "bad fee"))
            fee = integer_minor(col["fee_amount"]).abs()
    kind = pl.lit(mapping.default_kind, dtype=pl.Utf8)
    if "kind" in col:
        kind = col["kind"].str.strip_chars().str.to_lowercase()
        checks.append((~kind.is_in(list(KINDS)), "unknown kind"))
    occurred = pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    if "occurred_at" in col:
        occurred = col["occurred_at"].str.strip_chars().str.to_datetime(
            mapping.datetime_format, strict=False, time_zone="UTC", time_unit="us")
        checks.append((occurred.is_null() & (col["occurred_at"].str.strip_chars() != ""), "bad time"))
    reject_bad_rows(frame, checks)
    text = {name: (clip_text(col[name]) if name in col else pl.lit(None, dtype=pl.Utf8))
            for name in ("our_reference", "channel_reference", "status", "counterparty", "description")}
    lines = frame.lazy().select(
        pl.col("line_no"), value_on.alias("value_on"), occurred.alias("occurred_at"), kind.alias("kind"),
        signed.abs().alias("amount"), direction.alias("direction"), fee.alias("fee_amount"),
        currency.alias("currency"), *(expr.alias(name) for name, expr in text.items()),
    ).collect()
    lines = canonical(lines)
    currencies = lines["currency"].unique().to_list()
    return ParsedFile(format=FORMAT, source=source, lines=lines,
                      currency=currencies[0] if len(currencies) == 1 else None,
                      business_date=lines["value_on"].max() if lines.height else None)  # type: ignore[arg-type]
