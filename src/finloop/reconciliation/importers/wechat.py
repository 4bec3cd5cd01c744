"""WeChat-Pay-like ALL trade bill (see ``payments/connectors/wechat/wire.py`` ``format_trade_bill``).

Layout: the header line, one line per row with every field prefixed by a backtick and fields joined by
``,``` , then the summary header and the summary line. Times are Beijing time. A SUCCESS row is a
payment (应结订单金额, fee 手续费 charged); a REFUND row is a refund (退款金额, fee negative = returned).
The summary must agree with the rows (count, settlement, refund and fee totals).
"""

from __future__ import annotations

import polars as pl

from finloop.payments.connectors.wechat.wire import BILL_HEADER, SUMMARY_HEADER
from finloop.reconciliation.importers.base import (
    ImportRejected,
    ParsedFile,
    build_lines,
    clip_text,
    decimal_minor,
    decimal_ok,
    exponent_expr,
    file_exponent,
    read_text_csv,
    to_minor,
)

FORMAT = "wechat"
COLUMNS = tuple(BILL_HEADER.split(","))
_TIME = "%Y-%m-%d %H:%M:%S"


def parse(content: bytes, *, source: str) -> ParsedFile:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    header = BILL_HEADER.encode()
    if not content.startswith(header):
        raise ImportRejected("not a WeChat Pay trade bill: the header line is missing or different", line=1)
    summary_at = content.rfind(b"\n" + SUMMARY_HEADER.encode())
    if summary_at < 0:
        raise ImportRejected("the summary header is missing (truncated file?)", line=0)
    body = content[len(header):summary_at + 1].lstrip(b"\r\n")
    summary_lines = [line for line in content[summary_at + 1:].splitlines() if line.strip()]
    summary_line_no = content.count(b"\n", 0, summary_at + 1) + 1
    if len(summary_lines) != 2:
        raise ImportRejected("the summary line is missing", line=summary_line_no)
    # Every field starts with a backtick: read with the backtick as the separator, so each field but the
    # last keeps a trailing comma (checked, then cut) and the line's leading empty field proves the tick.
    count = len(COLUMNS)
    names = ["lead", *(f"c{i}" for i in range(count))]
    frame = read_text_csv("`".join(names).encode() + b"\n" + body, columns=names, separator="`",
                          quote_char=None, first_line=1)
    used = (0, 5, 6, 9, 11, 12, 14, 15, 16, 19, 20, 22)
    derived = {
        # Short rows miss the trailing comma of field 25; a missing backtick merges two fields.
        # (A field holding a backtick makes too many fields: polars refuses the file, the scan names the line.)
        "_ok": pl.col("lead").is_null() & pl.col(f"c{count - 2}").str.ends_with(","),
        **{f"c{i}": pl.col(f"c{i}").str.strip_suffix(",") for i in used},
    }
    frame = frame.lazy().with_columns(**derived).collect()
    exponent = file_exponent(frame, pl.col("c11"))
    derived2 = {
        "_exp": exponent_expr(pl.col("c11")),
        "_at": pl.col("c0").str.strptime(pl.Datetime("us"), _TIME, strict=False),
        "_refund": pl.col("c9") == "REFUND",
    }
    derived3 = {
        "_amount": pl.when(pl.col("_refund")).then(decimal_minor(pl.col("c16"), exponent))
        .otherwise(decimal_minor(pl.col("c12"), exponent)),
        "_fee": decimal_minor(pl.col("c22"), exponent),
    }
    is_refund = pl.col("_refund")
    checks = [
        (~pl.col("_ok"), f"a bill line must have {count} backtick-prefixed fields"),
        (~pl.col("c9").is_in(["SUCCESS", "REFUND"]), "unknown trade state (交易状态)"),
        (pl.col("_exp").is_null(), "unknown currency (货币种类)"),
        (~decimal_ok(pl.col("c12"), exponent), "bad amount in 应结订单金额"),
        (~decimal_ok(pl.col("c16"), exponent), "bad amount in 退款金额"),
        (~decimal_ok(pl.col("c22"), exponent), "bad amount in 手续费"),
        (pl.col("_at").is_null(), "bad time in 交易时间"),
        (pl.col("_amount") < 0, "negative amount"),
        (pl.when(is_refund).then(pl.col("c15").is_in(["", "0"])).otherwise(pl.col("c6").is_null()),
         "missing our reference (商户订单号/商户退款单号)"),
    ]
    # Beijing time is a fixed +08:00 (no daylight saving): shift, then mark as UTC.
    output = {
        "value_on": pl.col("_at").dt.date(),
        "occurred_at": (pl.col("_at") - pl.duration(hours=8)).dt.replace_time_zone("UTC"),
        "kind": pl.when(is_refund).then(pl.lit("refund")).otherwise(pl.lit("payment")),
        "our_reference": clip_text(pl.when(is_refund).then(pl.col("c15")).otherwise(pl.col("c6"))),
        "channel_reference": clip_text(pl.when(is_refund).then(pl.col("c14")).otherwise(pl.col("c5"))),
        "amount": pl.col("_amount"),
        "direction": pl.when(is_refund).then(pl.lit("debit")).otherwise(pl.lit("credit")),
        "fee_amount": pl.col("_fee").abs(),
        "currency": pl.col("c11"),
        "status": clip_text(pl.when(is_refund).then(pl.col("c19")).otherwise(pl.col("c9"))),
        "description": clip_text(pl.col("c20")),
    }
    frame = frame.with_columns(**derived2)
    lines = build_lines(frame, derived=derived3, checks=checks, output=output)
    _check_summary(lines, frame, summary_lines[1].decode("utf-8", "replace"), summary_line_no + 1)
    currencies = lines["currency"].unique().to_list()
    return ParsedFile(format=FORMAT, source=source, lines=lines,
                      currency=currencies[0] if len(currencies) == 1 else None,
                      business_date=lines["value_on"].min() if lines.height else None)  # type: ignore[arg-type]


def _check_summary(lines: pl.DataFrame, frame: pl.DataFrame, text: str, line_no: int) -> None:
    values = [v[1:] if v.startswith("`") else v for v in text.strip().split(",`")]
    if len(values) != 7:
        raise ImportRejected("the summary line has the wrong number of fields", line=line_no)
    currency = str(lines["currency"][0]) if lines.height else "CNY"
    try:
        count = int(values[0])
        settled, refunded, fees = (to_minor(values[1], currency), to_minor(values[2], currency),
                                   to_minor(values[4], currency))
    except ValueError as error:
        raise ImportRejected(f"bad summary: {error}", line=line_no) from None
    payments = lines.filter(pl.col("kind") == "payment")
    refunds = lines.filter(pl.col("kind") == "refund")
    fee_total = int(payments["fee_amount"].sum() or 0) - int(refunds["fee_amount"].sum() or 0)
    if (count, settled, refunded, fees) != (lines.height, int(payments["amount"].sum() or 0),
                                            int(refunds["amount"].sum() or 0), fee_total):
        raise ImportRejected("the summary does not agree with the rows (truncated or altered file?)", line=line_no)
