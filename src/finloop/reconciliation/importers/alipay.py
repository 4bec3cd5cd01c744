"""Alipay-like merchant trade bill (业务明细, ``payments/connectors/alipay/sandbox.py`` ``bill``).

GBK text: ``#`` comment lines around a CSV whose header is ``wire.BILL_COLUMNS``; number columns are
padded with a tab. 业务类型 交易 is a payment, 退款 a refund; 订单金额 is signed yuan (negative on a
refund), 服务费 the fee (negative when charged, positive when returned). Times are Shanghai time.
The currency is CNY (the bill has no currency column).
"""

from __future__ import annotations

import polars as pl

from finloop.payments.connectors.alipay.wire import BILL_COLUMNS, BILL_KIND_PAYMENT, BILL_KIND_REFUND
from finloop.reconciliation.importers.base import (
    ImportRejected,
    ParsedFile,
    canonical,
    clip_text,
    decimal_minor,
    decimal_ok,
    read_text_csv,
    reject_bad_rows,
)

FORMAT = "alipay"
CURRENCY = "CNY"
_TIME = "%Y-%m-%d %H:%M:%S"
(_TRADE_NO, _OUT_TRADE_NO, _KIND, _SUBJECT, _CREATED, _FINISHED) = BILL_COLUMNS[:6]
_GROSS, _FEE, _REQUEST_NO = BILL_COLUMNS[11], BILL_COLUMNS[22], BILL_COLUMNS[21]


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gbk"):
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if BILL_COLUMNS[0] in text:
            return text
    raise ImportRejected("not an Alipay trade bill: no header line (GBK or UTF-8)", line=1)


def parse(content: bytes, *, source: str) -> ParsedFile:
    text = _decode(content)
    all_lines = text.splitlines()
    start = 0
    while start < len(all_lines) and (all_lines[start].startswith("#") or not all_lines[start].strip()):
        start += 1
    if start == len(all_lines):
        raise ImportRejected("not an Alipay trade bill: no header line", line=1)
    end = start + 1
    while end < len(all_lines) and not all_lines[end].startswith("#"):
        end += 1
    if end == len(all_lines):
        raise ImportRejected("the closing comment lines are missing (truncated file?)", line=end)
    body = "\n".join(all_lines[start:end]) + "\n"
    frame = read_text_csv(body.encode(), columns=BILL_COLUMNS, first_line=start + 1)
    kind = pl.col(_KIND).str.strip_chars()
    is_refund = kind == BILL_KIND_REFUND
    exp = 2  # CNY
    at = pl.col(_FINISHED).str.strip_chars().str.strptime(pl.Datetime("us"), _TIME, strict=False)
    gross = decimal_minor(pl.col(_GROSS), exp)
    checks = [
        (~kind.is_in([BILL_KIND_PAYMENT, BILL_KIND_REFUND]), "unknown 业务类型"),
        (~decimal_ok(pl.col(_GROSS), exp), "bad amount in 订单金额"),
        (~decimal_ok(pl.col(_FEE), exp), "bad amount in 服务费"),
        (at.is_null(), "bad time in 完成时间"),
        (pl.when(is_refund).then(gross > 0).otherwise(gross < 0), "amount sign does not match 业务类型"),
        (pl.when(is_refund).then(pl.col(_REQUEST_NO)).otherwise(pl.col(_OUT_TRADE_NO)).str.strip_chars() == "",
         "missing our reference"),
    ]
    reject_bad_rows(frame, checks)
    lines = frame.lazy().select(
        pl.col("line_no"),
        at.dt.date().alias("value_on"),
        at.dt.replace_time_zone("Asia/Shanghai").dt.convert_time_zone("UTC").alias("occurred_at"),
        pl.when(is_refund).then(pl.lit("refund")).otherwise(pl.lit("payment")).alias("kind"),
        clip_text(pl.when(is_refund).then(pl.col(_REQUEST_NO)).otherwise(pl.col(_OUT_TRADE_NO)))
        .alias("our_reference"),
        clip_text(pl.col(_TRADE_NO)).alias("channel_reference"),
        gross.abs().alias("amount"),
        pl.when(is_refund).then(pl.lit("debit")).otherwise(pl.lit("credit")).alias("direction"),
        decimal_minor(pl.col(_FEE), exp).abs().alias("fee_amount"),
        pl.lit(CURRENCY).alias("currency"),
        clip_text(pl.col(_SUBJECT)).alias("description"),
    ).collect()
    lines = canonical(lines)
    return ParsedFile(format=FORMAT, source=source, lines=lines, currency=CURRENCY,
                      business_date=lines["value_on"].min() if lines.height else None)  # type: ignore[arg-type]
