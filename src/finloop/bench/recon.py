"""``finloop bench recon``: reconciliation throughput beside a plain polars join of the same data.

Generated, seeded and vectorised (polars hashes and shuffles, no per-row Python): ``rows`` platform records
(payments and a twentieth of refunds) and a WeChat-Pay-like ALL trade bill of about as many rows in the
layout ``format_trade_bill`` writes, with injected breaks of every discrepancy class plus lines that lost
their references (matched by the channel reference or by tolerance, not breaks). Measured: the importer's
``parse("wechat", ...)`` of the bytes plus ``matching.match`` (all passes and the classification), wall
time. Anchor, in the same run: a plain polars inner join of the parsed lines and the records on the
reference. Precision and recall compare the discrepancies found with the injected ones.
"""

from __future__ import annotations

import gc
import os
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from finloop.payments.connectors.wechat.wire import BILL_HEADER, SUMMARY_HEADER
from finloop.reconciliation.matching import RECORD_SCHEMA, MatchConfig, match

DAY = date(2026, 3, 2)
#: The bill's day in Beijing time is 16:00 UTC the day before to 16:00 UTC on DAY.
DAY_STARTS = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
TIMING_FROM = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
GOAL_SECONDS = 15.0
GOAL_ROWS = 1_000_000
#: Injected breaks of each kind, per million rows (at least one each).
BREAKS_PER_MILLION = 1000
BREAKS = ("amount_mismatch", "fee_mismatch", "status_mismatch", "duplicate", "missing_on_platform",
          "missing_at_channel", "settlement_timing", "channel_reference_only", "reference_lost")


def _yuan(fen: pl.Expr, places: int = 2) -> pl.Expr:
    """Fen as yuan text with ``places`` decimals (exact string arithmetic, no float)."""
    magnitude = fen.abs()
    text = (magnitude // 100).cast(pl.Utf8) + "." + (magnitude % 100).cast(pl.Utf8).str.zfill(2) + "0" * (places - 2)
    return pl.when(fen < 0).then("-" + text).otherwise(text)


def generate(rows: int, seed: int) -> tuple[pl.DataFrame, bytes, dict[tuple[str, str], str]]:
    """(records, bill bytes, injected): ``injected`` maps (class, reference) to the class expected."""
    per = max(1, rows * BREAKS_PER_MILLION // 1_000_000)
    # Ghost lines replace as many records and duplicates add as many lines as the three missing kinds
    # remove: with ``per`` more base rows the bill has exactly ``rows`` lines and we ``rows`` records.
    n = rows + per
    span = int((TIMING_FROM - DAY_STARTS).total_seconds())
    shuffled = pl.int_range(0, n, eager=True).shuffle(seed=seed)
    positions = pl.DataFrame({"i": shuffled}).with_row_index("position").with_columns(
        role=(pl.col("position") // per).cast(pl.Int64).replace_strict(
            dict(enumerate(BREAKS)), default="clean", return_dtype=pl.Utf8))
    base = pl.DataFrame({"i": pl.int_range(0, n, eager=True)}).with_columns(
        refund=(pl.col("i").hash(seed + 1) % 20) == 0,
        amount=(pl.col("i").hash(seed + 2) % 9_999_900 + 100).cast(pl.Int64),
        s=(pl.col("i").hash(seed + 3) % span).cast(pl.Int64),
    ).with_columns(fee=pl.col("amount") * 6 // 1000)  # 0.6 %, truncated
    base = base.join(positions.select(pl.col("i").cast(pl.Int64), "role"), on="i", how="left").sort("i")
    # Records that failed at the channel are refunds: a payment's REFUND row is a refund line in this layout.
    base = base.with_columns(refund=pl.when(pl.col("role") == "status_mismatch").then(True).otherwise(pl.col("refund")))
    base = base.with_columns(
        record_id=pl.when(pl.col("refund")).then(pl.format("rf_{}", pl.col("i").cast(pl.Utf8).str.zfill(12)))
        .otherwise(pl.format("pay_{}", pl.col("i").cast(pl.Utf8).str.zfill(12))),
        payment_id=pl.format("pay_{}", pl.col("i").cast(pl.Utf8).str.zfill(12)),
        channel_reference=pl.when(pl.col("refund")).then(pl.format("5030{}", pl.col("i").cast(pl.Utf8).str.zfill(16)))
        .otherwise(pl.format("4200{}", pl.col("i").cast(pl.Utf8).str.zfill(16))),
        occurred_at=pl.lit(DAY_STARTS) + pl.duration(seconds=pl.col("s")),
    ).with_columns(occurred_at=pl.when(pl.col("role") == "settlement_timing")
                   .then(pl.lit(TIMING_FROM) + pl.duration(minutes=5)).otherwise(pl.col("occurred_at")))
    records = base.filter(pl.col("role") != "missing_on_platform").select(
        record_id=pl.col("record_id"),
        kind=pl.when(pl.col("refund")).then(pl.lit("refund")).otherwise(pl.lit("payment")),
        payment_id=pl.col("payment_id"), our_reference=pl.col("record_id"),
        channel_reference=pl.col("channel_reference"),
        channel=pl.lit("wechat"),
        amount=pl.col("amount"), fee_amount=pl.col("fee"), currency=pl.lit("CNY"),
        direction=pl.when(pl.col("refund")).then(pl.lit("debit")).otherwise(pl.lit("credit")),
        status=pl.lit("succeeded"), occurred_at=pl.col("occurred_at"), merchant_id=pl.lit("mer_bench"),
        method=pl.lit("wallet"), description=pl.lit(None, pl.Utf8), group_key=pl.lit(None, pl.Utf8),
        carried_from=pl.lit(None, pl.Utf8))
    records = records.select([pl.col(c).cast(t) for c, t in RECORD_SCHEMA.items()])

    # Bill lines: every record except the missing ones; duplicates twice; plus ghost lines with no record.
    lines = base.filter(~pl.col("role").is_in(["missing_at_channel", "settlement_timing", "missing_on_platform"]))
    lines = pl.concat([lines, lines.filter(pl.col("role") == "duplicate")])
    ghosts = base.filter(pl.col("role") == "missing_on_platform").with_columns(
        record_id=pl.format("pay_ghost{}", pl.col("i").cast(pl.Utf8).str.zfill(12)),
        channel_reference=pl.format("4299{}", pl.col("i").cast(pl.Utf8).str.zfill(16)), refund=pl.lit(False))
    lines = pl.concat([lines, ghosts]).with_columns(
        amount=pl.when(pl.col("role") == "amount_mismatch").then(pl.col("amount") - 1).otherwise(pl.col("amount")),
        fee=pl.when(pl.col("role") == "fee_mismatch").then(pl.col("fee") + 1).otherwise(pl.col("fee")),
        our_ref=pl.when(pl.col("role").is_in(["channel_reference_only", "reference_lost"]))
        .then(pl.format("LEGACY{}", pl.col("i"))).otherwise(pl.col("record_id")),
        ch_ref=pl.when(pl.col("role") == "reference_lost").then(pl.format("UNKNOWN{}", pl.col("i")))
        .otherwise(pl.col("channel_reference")),
        description=pl.when(pl.col("role") == "reference_lost").then(pl.format("order {}", pl.col("record_id")))
        .otherwise(pl.lit("goods")),
        refund_status=pl.when(pl.col("role") == "status_mismatch").then(pl.lit("REFUNDCLOSE"))
        .when(pl.col("refund")).then(pl.lit("SUCCESS")).otherwise(pl.lit("")),
    ).sample(fraction=1.0, shuffle=True, seed=seed)
    china = (pl.col("occurred_at") + pl.duration(hours=8)).dt.strftime("%Y-%m-%d %H:%M:%S")
    refund = pl.col("refund")
    zero = pl.lit("0.00")
    bill = lines.select(
        c0="`" + china, c1=pl.lit("wx_bench_app"), c2=pl.lit("1900000001"), c3=pl.lit("0"), c4=pl.lit(""),
        c5=pl.when(refund).then(pl.format("4200{}", pl.col("i").cast(pl.Utf8).str.zfill(16)))
        .otherwise(pl.col("ch_ref")),
        c6=pl.when(refund).then(pl.col("payment_id")).otherwise(pl.col("our_ref")),
        c7=pl.lit("o_bench"), c8=pl.lit("NATIVE"),
        c9=pl.when(refund).then(pl.lit("REFUND")).otherwise(pl.lit("SUCCESS")),
        c10=pl.lit("OTHERS"), c11=pl.lit("CNY"),
        c12=pl.when(refund).then(zero).otherwise(_yuan(pl.col("amount"))), c13=zero,
        c14=pl.when(refund).then(pl.col("ch_ref")).otherwise(pl.lit("0")),
        c15=pl.when(refund).then(pl.col("our_ref")).otherwise(pl.lit("0")),
        c16=pl.when(refund).then(_yuan(pl.col("amount"))).otherwise(zero), c17=zero, c18=pl.lit(""),
        c19=pl.col("refund_status"), c20=pl.col("description"), c21=pl.lit(""),
        c22=_yuan(pl.when(refund).then(-pl.col("fee")).otherwise(pl.col("fee")), 5), c23=pl.lit("0.60%"),
        c24=_yuan(pl.col("amount")), c25=pl.when(refund).then(_yuan(pl.col("amount"))).otherwise(zero), c26=pl.lit(""),
    )
    body = bill.write_csv(include_header=False, separator="\x1f", quote_style="never", line_terminator="\r\n")
    body = body.replace("\x1f", ",`")
    payments = lines.filter(~refund)
    refunds = lines.filter(refund)
    fee_total = int(payments["fee"].sum() or 0) - int(refunds["fee"].sum() or 0)

    def fen(value: int, places: int = 2) -> str:
        sign = "-" if value < 0 else ""
        value = abs(value)
        return f"{sign}{value // 100}.{value % 100:02d}" + "0" * (places - 2)

    settled, refunded = int(payments["amount"].sum() or 0), int(refunds["amount"].sum() or 0)
    summary = ",".join(f"`{v}" for v in (str(lines.height), fen(settled), fen(refunded), "0.00", fen(fee_total, 5),
                                         fen(settled + refunded), fen(refunded)))
    content = (BILL_HEADER + "\r\n" + body + SUMMARY_HEADER + "\r\n" + summary + "\r\n").encode()

    injected: dict[tuple[str, str], str] = {}
    marks = base.filter(pl.col("role").is_in(["amount_mismatch", "fee_mismatch", "status_mismatch", "duplicate",
                                              "missing_at_channel", "settlement_timing"])).select("role", "record_id")
    for role_name, ref in marks.iter_rows():
        injected[(role_name, ref)] = role_name
    for ref in ghosts["record_id"]:
        injected[("missing_on_platform", ref)] = "missing_on_platform"
    return records, content, injected


def run(*, rows: int, seed: int) -> dict[str, Any]:
    from finloop.reconciliation.importers import parse

    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    records, content, injected = generate(rows, seed)
    generated = time.perf_counter() - started
    config = MatchConfig(timing_from=TIMING_FROM)

    gc.collect()
    t0 = time.perf_counter()
    parsed = parse("wechat", content, source="wechat")
    t1 = time.perf_counter()
    lines = parsed.lines.with_columns(id=pl.col("line_no"))
    result = match(lines, records, config)
    t2 = time.perf_counter()

    # Anchor: the same parsed lines and records, one plain inner join on the reference.
    gc.collect()
    a0 = time.perf_counter()
    anchor = lines.join(records, left_on="our_reference", right_on="record_id", how="inner")
    anchor_seconds = time.perf_counter() - a0

    found = {(row["class"], row["record_id"] or row["our_reference"]): row["class"]
             for row in result.discrepancies.select("class", "record_id", "our_reference").iter_rows(named=True)}
    true_positive = sum(1 for key in found if key in injected)
    seconds = t2 - t0
    counts = result.counts()
    return {
        "rows": lines.height, "records": records.height, "bill_bytes": len(content), "seed": seed,
        "seconds": round(seconds, 3), "parse_seconds": round(t1 - t0, 3), "match_seconds": round(t2 - t1, 3),
        "rows_per_second": round(lines.height / seconds), "generate_seconds": round(generated, 3),
        "anchor": {"what": "plain polars inner join of the parsed lines and the records on the reference",
                   "seconds": round(anchor_seconds, 3), "rows_joined": anchor.height},
        "ratio_to_anchor": round(seconds / anchor_seconds, 1) if anchor_seconds else None,
        "matches": counts["matches"], "matches_by_rule": counts["by_rule"],
        "discrepancies_by_class": counts["by_class"],
        "injected": len(injected), "found": len(found),
        "precision": round(true_positive / len(found), 6) if found else 1.0,
        "recall": round(true_positive / len(injected), 6) if injected else 1.0,
        "goal": {"what": f"parse + match of {GOAL_ROWS:,} rows under {GOAL_SECONDS:g} s",
                 "rows": lines.height, "seconds": round(seconds, 3),
                 "met": seconds < GOAL_SECONDS if lines.height >= GOAL_ROWS else None},
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
    }


__all__ = ["DAY", "generate", "run", "timedelta"]
