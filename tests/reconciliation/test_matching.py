"""The pure matching engine: every discrepancy class on a constructed scenario, and random breaks found."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from finloop.reconciliation.matching import (
    LINE_SCHEMA,
    RECORD_SCHEMA,
    DiscrepancyClass,
    MatchConfig,
    Rule,
    match,
    similarity,
)

DAY = date(2026, 3, 2)
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def line(i: int, ref: str | None, amount: int, *, kind: str = "payment", fee: int = 0, ch: str | None = None,
         status: str | None = "SUCCESS", desc: str | None = None, at: datetime = AT) -> dict[str, Any]:
    return {"id": i, "line_no": i, "value_on": DAY, "occurred_at": at, "kind": kind, "our_reference": ref,
            "channel_reference": ch, "amount": amount,
            "direction": "debit" if kind in ("refund", "payout") else "credit",
            "fee_amount": fee, "currency": "CNY", "status": status, "counterparty": None, "description": desc}


def record(rid: str, amount: int, *, kind: str = "payment", fee: int = 0, ch: str | None = None,
           status: str = "succeeded", at: datetime = AT, group: str | None = None,
           carried: str | None = None) -> dict[str, Any]:
    return {"record_id": rid, "kind": kind, "payment_id": rid if kind == "payment" else None,
            "channel_reference": ch, "channel": "wx", "amount": amount, "fee_amount": fee, "currency": "CNY",
            "direction": "debit" if kind in ("refund", "payout") else "credit", "status": status,
            "occurred_at": at, "merchant_id": "mer_1", "method": "wallet", "description": None,
            "group_key": group, "carried_from": carried}


def frames(lines: list[dict[str, Any]], records: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    return pl.DataFrame(lines, schema=LINE_SCHEMA), pl.DataFrame(records, schema=RECORD_SCHEMA)


def by_class(result: Any) -> dict[str, list[tuple[Any, Any]]]:
    out: dict[str, list[tuple[Any, Any]]] = {}
    for row in result.discrepancies.iter_rows(named=True):
        out.setdefault(row["class"], []).append((row["line_id"], row["record_id"]))
    return out


def test_every_class_and_rule_on_a_constructed_scenario() -> None:
    cutoff = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    lines, records = frames([
        line(1, "pay_ok", 1000, fee=6),                                     # exact, clean
        line(2, None, 2000, fee=12, ch="wx_2"),                             # channel reference, clean
        line(3, "pay_amount", 2990, fee=18),                                # amount mismatch
        line(4, "pay_status", 500, fee=3, status="REFUNDED"),               # refunded there
        line(5, "pay_fee", 700, fee=9),                                     # fee mismatch
        line(6, "pay_dup", 800, fee=5), line(7, "pay_dup", 800, fee=5),     # duplicate
        line(8, "pay_ghost", 900, fee=5),                                   # missing on platform
        line(9, "pay_split", 600), line(10, "pay_split", 400),              # one record paid in two lines
        line(11, None, 5000, kind="payout", desc="PAYOUT BATCH"),           # many payouts in one debit
        line(12, None, 1234, fee=7, desc="order pay_fuzzy_1 thanks"),       # tolerance (text + amount)
        line(13, "rf_ok", 300, kind="refund", fee=2),                       # refund, kind-aware
        line(14, "rf_fail", 100, kind="refund", status="REFUNDCLOSE"),      # refund failed there
        line(15, None, 50, kind="fee"),                                     # ignored
    ], [
        record("pay_ok", 1000, fee=6), record("pay_2", 2000, fee=12, ch="wx_2"),
        record("pay_amount", 3000, fee=18), record("pay_status", 500, fee=3),
        record("pay_fee", 700, fee=7), record("pay_dup", 800, fee=5), record("pay_split", 1000),
        record("po_1", 3000, kind="payout", group="payouts:2026-03-02"),
        record("po_2", 2000, kind="payout", group="payouts:2026-03-02"),
        record("pay_fuzzy_1", 1234, fee=7, at=AT + timedelta(hours=2)),
        record("rf_ok", 300, kind="refund", fee=2), record("rf_fail", 100, kind="refund"),
        record("pay_missing", 400, fee=2),                                  # missing at channel
        record("pay_late", 100, at=cutoff + timedelta(minutes=5)),          # settlement timing
    ])
    result = match(lines, records, MatchConfig(timing_from=cutoff, ignored_kinds=frozenset({"fee"})))
    found = {k: sorted(v, key=lambda pair: pair[0] or 0) for k, v in by_class(result).items()}
    assert found == {
        "amount_mismatch": [(3, "pay_amount")],
        "status_mismatch": [(4, "pay_status"), (14, "rf_fail")],
        "fee_mismatch": [(5, "pay_fee")],
        "duplicate": [(7, "pay_dup")],
        "missing_on_platform": [(8, None)],
        "missing_at_channel": [(None, "pay_missing")],
        "settlement_timing": [(None, "pay_late")],
    }
    rules = {(r["line_id"], r["record_id"]): r["rule"] for r in result.matches.iter_rows(named=True)}
    assert rules[(1, "pay_ok")] == Rule.OUR_REFERENCE
    assert rules[(2, "pay_2")] == Rule.CHANNEL_REFERENCE
    assert rules[(9, "pay_split")] == rules[(10, "pay_split")] == Rule.ONE_TO_MANY
    assert rules[(11, "po_1")] == rules[(11, "po_2")] == Rule.MANY_TO_ONE
    assert rules[(12, "pay_fuzzy_1")] == Rule.TOLERANCE
    assert rules[(13, "rf_ok")] == Rule.OUR_REFERENCE
    assert result.ignored_lines == 1
    differences = {r["class"]: r["difference"] for r in result.discrepancies.iter_rows(named=True)
                   if r["record_id"] != "rf_fail"}
    assert differences["amount_mismatch"] == -10       # the channel owes us 10 less
    assert differences["fee_mismatch"] == -2           # it kept 2 more in fees
    assert differences["missing_at_channel"] == -398   # net of fee
    assert differences["missing_on_platform"] == 895
    assert differences["status_mismatch"] == -497     # the channel will not pay it
    assert result.counts()["by_class"]["status_mismatch"] == 2
    # Natural keys are unique, so a re-run upserts instead of duplicating.
    assert result.discrepancies["natural_key"].n_unique() == result.discrepancies.height


def test_carried_records_match_late_and_stay_silent_when_unmatched() -> None:
    lines, records = frames([line(1, "pay_old", 100)], [
        record("pay_old", 100, carried="dis_1"), record("pay_older", 50, carried="dis_2")])
    result = match(lines, records)
    assert result.discrepancies.height == 0
    assert result.matches.row(0, named=True)["rule"] == Rule.LATE_MATCH
    assert result.matches.row(0, named=True)["carried_from"] == "dis_1"


def test_tolerance_needs_similar_text_unless_the_only_exact_candidate() -> None:
    lines, records = frames([line(1, None, 1000, desc="zzz"), line(2, None, 1000, desc="yyy")],
                            [record("pay_a", 1000), record("pay_b", 1000)])
    result = match(lines, records)
    assert result.matches.height == 0  # two equal candidates and nothing to tell them apart
    lines, records = frames([line(1, None, 1000, desc="zzz")], [record("pay_a", 1000)])
    assert match(lines, records).matches["rule"].to_list() == [Rule.TOLERANCE]
    # Outside the window: no match.
    lines, records = frames([line(1, None, 1000, desc="pay_a", at=AT + timedelta(days=3))], [record("pay_a", 1000)])
    assert match(lines, records).matches.height == 0
    assert similarity([], ["ORDER pay_abcdef"], ["pay_abcdef"], []) == 1.0
    assert similarity(["pay_000123"], [], ["pay_000124"], []) == 0.0  # ids are never compared fuzzily
    assert similarity([], ["Rent March ACME"], [], ["rent march acme ltd"]) > 0.8
    assert similarity([None], [], ["x"], []) == 0.0


def test_large_remainder_falls_back_to_the_nearest_amount() -> None:
    lines, records = frames([line(i, None, 1000 + i, desc=f"pay_{i:04d}") for i in range(1, 30)],
                            [record(f"pay_{i:04d}", 1000 + i) for i in range(1, 30)])
    result = match(lines, records, MatchConfig(max_fuzzy_pairs=10))
    assert result.matches.height == 29 and result.discrepancies.height == 0


BREAKS = ("clean", "amount", "fee", "status", "missing_line", "duplicate", "ghost", "channel_ref_only")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(BREAKS), st.integers(1, 10**9), st.integers(0, 1000)),
                min_size=1, max_size=40))
def test_random_breaks_are_all_found_and_no_line_is_matched_twice(plan: list[tuple[str, int, int]]) -> None:
    lines: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    expected: set[tuple[str, str]] = set()
    for n, (kind, amount, fee) in enumerate(plan):
        rid = f"pay_{n:06d}"
        i = len(lines) + 1
        if kind != "ghost":
            records.append(record(rid, amount, fee=fee, ch=f"wx_{n}"))
        if kind == "missing_line":
            expected.add(("missing_at_channel", rid))
            continue
        line_amount = amount + 1 if kind == "amount" else amount
        line_fee = fee + 1 if kind == "fee" else fee
        lines.append(line(i, None if kind == "channel_ref_only" else rid, line_amount, fee=line_fee, ch=f"wx_{n}",
                          status="REFUNDED" if kind == "status" else "SUCCESS"))
        if kind == "duplicate":
            lines.append(line(i + 1, rid, amount, fee=fee, ch=f"wx_{n}"))
        classes = {"amount": "amount_mismatch", "fee": "fee_mismatch", "status": "status_mismatch",
                   "duplicate": "duplicate", "ghost": "missing_on_platform"}
        if kind in classes:
            expected.add((classes[kind], rid))
    result = match(*frames(lines, records))
    found = {(row["class"], row["record_id"] or row["our_reference"])
             for row in result.discrepancies.iter_rows(named=True)}
    assert found == expected
    assert result.matches["line_id"].is_duplicated().sum() == 0
    assert all(c in {c.value for c in DiscrepancyClass} for c in result.discrepancies["class"])
