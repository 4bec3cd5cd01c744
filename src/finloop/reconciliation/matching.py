"""The matching engine: channel or bank lines against our records, as pure functions over polars frames.

No database here: ``match(lines, records, config)`` takes the canonical line frame of the importers
(plus ``id``) and the record frame of ``platform.py`` (``RECORD_SCHEMA``) and returns the matches and
the discrepancies. Everything that touches all rows is a polars join or group-by; only the small
remainder of the fuzzy pass (candidate pairs after the amount and time filters) is scored in Python.

Passes, each on what the previous ones left:

1. exact keys: the line's ``our_reference`` = the record's (what we sent the counterparty: the attempt
   id of a payment, the refund id, the payout id; the record id when not given), then
   ``channel_reference`` = the channel's reference, both kind-aware (a payment line never matches a
   refund). Several lines with one reference whose amounts sum to the record's are one record paid in
   parts (rule ``one_to_many``); otherwise the first line matches and the others are ``duplicate``.
2. aggregates (``many_to_one``): one settlement or payout line against the records sharing a
   ``group_key`` (a clearing batch's expected settlement, a day's payouts) whose amounts sum to it.
   This exact-sum pass runs before the fuzzy one, since an exact sum is stronger evidence.
3. tolerance (``tolerance``): same kind, currency and direction, amount within the tolerance, time within
   the window, and either a reference of one side (6+ characters) contained in a text of the other
   (vectorised), or, for a line without references, the only candidate both ways with the exact
   amount, or, for a small remainder (``max_scored_pairs``), a difflib similarity of the descriptions
   of at least ``min_similarity``. Pairs are then taken greedily, smallest amount difference and best
   score first, each line and record once.

A matched pair whose amounts differ is an ``amount_mismatch``; a payment the channel reports refunded
or failed that we hold as succeeded (or a refund it reports failed or closed) is a ``status_mismatch``;
equal amounts with different fees is a ``fee_mismatch``. Lines left over are ``missing_on_platform``
(``duplicate`` for repeats of a reference); records left over are ``missing_at_channel``, or
``settlement_timing`` when they happened after ``timing_from`` (close to the cut-off, the channel books
them on its next day: not a break). Records carried from open discrepancies of earlier days
(``carried_from`` set) that match now are matched with
rule ``late_match``; unmatched, they produce nothing new.

``difference`` is what the counterparty owes us by its lines minus what our books say, net of fees and
signed by direction (credit: money to us): ``net(line) - net(record)``, a missing side counting 0.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import polars as pl


class DiscrepancyClass(StrEnum):
    MISSING_AT_CHANNEL = "missing_at_channel"
    MISSING_ON_PLATFORM = "missing_on_platform"
    AMOUNT_MISMATCH = "amount_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    FEE_MISMATCH = "fee_mismatch"
    DUPLICATE = "duplicate"
    SETTLEMENT_TIMING = "settlement_timing"


class Rule(StrEnum):
    OUR_REFERENCE = "exact_our_reference"
    CHANNEL_REFERENCE = "exact_channel_reference"
    ONE_TO_MANY = "one_to_many"
    MANY_TO_ONE = "many_to_one"
    TOLERANCE = "tolerance"
    LATE_MATCH = "late_match"


UTC_US = pl.Datetime("us", "UTC")

LINE_SCHEMA: dict[str, Any] = {
    "id": pl.Int64, "line_no": pl.Int64, "value_on": pl.Date, "occurred_at": UTC_US, "kind": pl.Utf8,
    "our_reference": pl.Utf8, "channel_reference": pl.Utf8, "amount": pl.Int64, "direction": pl.Utf8,
    "fee_amount": pl.Int64, "currency": pl.Utf8, "status": pl.Utf8, "counterparty": pl.Utf8,
    "description": pl.Utf8,
}

RECORD_SCHEMA: dict[str, Any] = {
    "record_id": pl.Utf8, "kind": pl.Utf8, "payment_id": pl.Utf8, "our_reference": pl.Utf8,
    "channel_reference": pl.Utf8,
    "channel": pl.Utf8, "amount": pl.Int64, "fee_amount": pl.Int64, "currency": pl.Utf8, "direction": pl.Utf8,
    "status": pl.Utf8, "occurred_at": UTC_US, "merchant_id": pl.Utf8, "method": pl.Utf8,
    "description": pl.Utf8, "group_key": pl.Utf8, "carried_from": pl.Utf8,
}

MATCH_SCHEMA: dict[str, Any] = {"line_id": pl.Int64, "record_id": pl.Utf8, "record_kind": pl.Utf8,
                                "rule": pl.Utf8, "carried_from": pl.Utf8}

DISCREPANCY_SCHEMA: dict[str, Any] = {
    "natural_key": pl.Utf8, "class": pl.Utf8, "kind": pl.Utf8, "line_id": pl.Int64, "record_id": pl.Utf8,
    "payment_id": pl.Utf8, "our_reference": pl.Utf8, "channel_reference": pl.Utf8, "currency": pl.Utf8,
    "line_amount": pl.Int64, "record_amount": pl.Int64, "line_fee": pl.Int64, "record_fee": pl.Int64,
    "difference": pl.Int64, "line_status": pl.Utf8, "record_status": pl.Utf8,
}

#: Line statuses (lower-cased) that say a payment was given back, or never went through, at the channel.
REFUNDED_STATUSES = frozenset({"refund", "refunded", "revoked", "reversed", "chargeback"})
FAILED_STATUSES = frozenset({"failed", "fail", "closed", "payerror", "canceled", "cancelled", "declined",
                             "refundclose", "change", "abnormal"})
#: Our record statuses under which a line saying "refunded" agrees with us.
RECORD_REFUNDED_STATUSES = ("refunded", "partially_refunded")


@dataclass(frozen=True)
class MatchConfig:
    """Tolerances of pass 3 and the settlement-timing boundary.

    The tolerance of an amount is ``max(amount_tolerance, record amount * amount_tolerance_bps / 10000)``
    minor units, truncated toward zero (rule: a tolerance is never rounded up).
    """

    amount_tolerance: int = 0
    amount_tolerance_bps: int = 100
    time_window: timedelta = timedelta(hours=36)
    min_similarity: float = 0.6
    #: Records that happened at or after this instant may be booked by the channel on its next day.
    timing_from: datetime | None = None
    #: Line kinds that are information, not money to match (a channel bill's separate fee lines); a bank's
    #: charges are money that left the account, so nothing is ignored unless the caller says so.
    ignored_kinds: frozenset[str] = frozenset()
    #: Candidate pairs of the fuzzy pass above which it falls back to a nearest-amount as-of join.
    max_fuzzy_pairs: int = 2_000_000
    #: Candidate pairs without a contained reference scored one by one (difflib); more are left unmatched.
    max_scored_pairs: int = 20_000


@dataclass
class MatchResult:
    matches: pl.DataFrame        # MATCH_SCHEMA
    discrepancies: pl.DataFrame  # DISCREPANCY_SCHEMA
    ignored_lines: int = 0

    def counts(self) -> dict[str, Any]:
        by_rule = dict(self.matches.group_by("rule").len().iter_rows()) if self.matches.height else {}
        by_class = (dict(self.discrepancies.group_by("class").len().iter_rows())
                    if self.discrepancies.height else {})
        return {"matches": self.matches.height, "by_rule": {str(k): int(v) for k, v in sorted(by_rule.items())},
                "discrepancies": self.discrepancies.height,
                "by_class": {str(k): int(v) for k, v in sorted(by_class.items())},
                "ignored_lines": self.ignored_lines}


def empty_lines() -> pl.DataFrame:
    return pl.DataFrame(schema=LINE_SCHEMA)


def empty_records() -> pl.DataFrame:
    return pl.DataFrame(schema=RECORD_SCHEMA)


def conform(frame: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame:
    """The frame with exactly the schema's columns, in order and type; missing columns are null."""
    return frame.select([
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()])


def _signed_net(amount: pl.Expr, fee: pl.Expr, direction: pl.Expr) -> pl.Expr:
    net = amount.fill_null(0) - fee.fill_null(0)
    return pl.when(direction == "debit").then(-net).otherwise(net)


# --- pass 1 ----------------------------------------------------------------------------------------------

def _line_key(frame: pl.DataFrame) -> pl.Expr:
    """A line's reference for duplicate detection and natural keys; lines without one use their content."""
    return pl.coalesce(pl.col("our_reference"), pl.col("channel_reference"),
                       pl.concat_str([pl.col("value_on").cast(pl.Utf8), pl.col("amount").cast(pl.Utf8),
                                      pl.col("description").fill_null("")], separator=":"))


def _exact(lines: pl.DataFrame, records: pl.DataFrame, line_col: str, record_col: str, rule: Rule
           ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Join lines to records on one key. Returns (pairs, one_to_many pairs, duplicates): ``pairs`` has the
    line and record columns (record ones prefixed ``r_``) and ``rule``."""
    keyed = lines.filter(pl.col(line_col).is_not_null()).with_columns(
        _n=pl.len().over("kind", line_col),
        _sum=pl.col("amount").sum().over("kind", line_col),
        _rank=pl.col("id").rank("ordinal").over("kind", line_col),
    )
    unique_records = records.filter(pl.col(record_col).is_not_null()).filter(
        pl.len().over("kind", record_col) == 1)
    right = unique_records.rename({c: f"r_{c}" for c in unique_records.columns if c != "kind"})
    joined = keyed.join(right, left_on=["kind", line_col], right_on=["kind", f"r_{record_col}"], how="inner",
                        coalesce=False)
    split = (pl.col("_n") > 1) & (pl.col("_sum") == pl.col("r_amount")) & (pl.col("amount") < pl.col("r_amount"))
    parts = joined.filter(split).with_columns(rule=pl.lit(Rule.ONE_TO_MANY.value))
    rest = joined.filter(~split)
    pairs = rest.filter(pl.col("_rank") == 1).with_columns(rule=pl.lit(rule.value))
    duplicates = rest.filter(pl.col("_rank") > 1)
    return pairs, parts, duplicates


# --- pass 2 (aggregates) ---------------------------------------------------------------------------------

def _many_to_one(lines: pl.DataFrame, records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(matches, matched line ids): one line against a group of records summing to its amount."""
    grouped = (records.filter(pl.col("group_key").is_not_null())
               .group_by("group_key", "kind", "currency", "direction")
               .agg(_sum=pl.col("amount").sum(), _ids=pl.col("record_id"), _carried=pl.col("carried_from")))
    if grouped.height == 0 or lines.height == 0:
        return pl.DataFrame(schema=MATCH_SCHEMA), pl.DataFrame(schema={"id": pl.Int64})
    candidates = lines.filter(pl.col("kind").is_in(["settlement", "payout"])).select(
        "id", "kind", "currency", "direction", "amount")
    joined = candidates.join(grouped, left_on=["kind", "currency", "direction", "amount"],
                             right_on=["kind", "currency", "direction", "_sum"], how="inner")
    # One group per line and one line per group: the first of each, in a stable order.
    joined = (joined.sort("id", "group_key").unique("id", keep="first", maintain_order=True)
              .unique("group_key", keep="first", maintain_order=True))
    matches = (joined.explode("_ids", "_carried")
               .select(line_id=pl.col("id"), record_id=pl.col("_ids"), record_kind=pl.col("kind"),
                       rule=pl.lit(Rule.MANY_TO_ONE.value), carried_from=pl.col("_carried")))
    return conform(matches, MATCH_SCHEMA), joined.select("id")


# --- pass 3 (tolerance) ----------------------------------------------------------------------------------

_WORD = re.compile(r"[^0-9a-z]+")


def _norm(value: str | None) -> str:
    return _WORD.sub("", value.lower()) if value else ""


def similarity(line_refs: list[str | None], line_texts: list[str | None], record_refs: list[str | None],
               record_texts: list[str | None]) -> float:
    """How alike a line and a record are, 0..1: 1 when a reference of one side (6+ characters) is contained
    in a reference or text of the other; else the best difflib ratio between free texts (descriptions).
    References are never compared fuzzily: ids of one format look alike while naming different objects."""
    line_all = [_norm(t) for t in [*line_refs, *line_texts] if t]
    record_all = [_norm(t) for t in [*record_refs, *record_texts] if t]
    for ref in (_norm(t) for t in record_refs if t):
        if len(ref) >= 6 and any(ref in text for text in line_all):
            return 1.0
    for ref in (_norm(t) for t in line_refs if t):
        if len(ref) >= 6 and any(ref in text for text in record_all):
            return 1.0
    best = 0.0
    for a in (_norm(t) for t in line_texts if t):
        for b in (_norm(t) for t in record_texts if t):
            if a and b:
                best = max(best, difflib.SequenceMatcher(None, a, b).ratio())
    return best


def _tolerance(lines: pl.DataFrame, records: pl.DataFrame, config: MatchConfig) -> pl.DataFrame:
    """Pairs (line columns + ``r_`` record columns) matched within the tolerance, one-to-one."""
    lines = lines.filter(pl.col("kind").is_in(["payment", "refund", "settlement", "payout"]))
    if lines.height == 0 or records.height == 0:
        return pl.DataFrame()
    right = records.rename({c: f"r_{c}" for c in records.columns if c not in ("kind", "currency", "direction")})
    sizes = (lines.group_by("kind", "currency", "direction").len()
             .join(records.group_by("kind", "currency", "direction").len(), on=["kind", "currency", "direction"]))
    pair_count = int((sizes["len"] * sizes["len_right"]).sum()) if sizes.height else 0
    tol = pl.max_horizontal(pl.lit(config.amount_tolerance, pl.Int64),
                            pl.col("r_amount") * config.amount_tolerance_bps // 10_000)
    if pair_count <= config.max_fuzzy_pairs:
        candidates = lines.join(right, on=["kind", "currency", "direction"], how="inner")
    else:  # too many: only the nearest record by amount for each line
        candidates = lines.sort("amount").join_asof(
            right.sort("r_amount"), left_on="amount", right_on="r_amount", by=["kind", "currency", "direction"],
            strategy="nearest", check_sortedness=False).filter(pl.col("r_record_id").is_not_null())
    line_time = pl.coalesce(pl.col("occurred_at"), pl.col("value_on").cast(UTC_US) + pl.duration(hours=12))
    window = config.time_window
    candidates = candidates.with_columns(
        _diff=(pl.col("amount") - pl.col("r_amount")).abs(),
        _dt=(line_time - pl.col("r_occurred_at")).abs(),
    ).filter((pl.col("_diff") <= tol) & (pl.col("_dt") <= pl.lit(window)))
    if candidates.height == 0:
        return pl.DataFrame()
    contains = pl.lit(False)
    for line_text in ("our_reference", "channel_reference", "description", "counterparty"):
        for record_text in ("r_record_id", "r_our_reference", "r_payment_id", "r_channel_reference"):
            contains = contains | (pl.col(record_text).str.len_chars() >= 6).fill_null(False) & pl.col(
                line_text).str.contains(pl.col(record_text), literal=True).fill_null(False)
    candidates = candidates.with_columns(
        _line_n=pl.len().over("id"), _record_n=pl.len().over("r_record_id"), _contains=contains)
    # The amount alone decides only for a line without any reference: a line naming another object is not ours.
    unreferenced = pl.col("our_reference").is_null() & pl.col("channel_reference").is_null()
    sure = pl.col("_contains") | (unreferenced & (pl.col("_diff") == 0) & (pl.col("_line_n") == 1)
                                  & (pl.col("_record_n") == 1))
    scored: list[tuple[int, float, timedelta, int, str]] = [
        (diff, -1.0, dt, line_id, record_id) for line_id, record_id, diff, dt in
        candidates.filter(sure).select("id", "r_record_id", "_diff", "_dt").iter_rows()]
    doubtful = candidates.filter(~sure)
    # Only a small remainder is scored one pair at a time (difflib); a large one is left unmatched.
    if 0 < doubtful.height <= config.max_scored_pairs:
        for (line_id, record_id, diff, dt, our_ref, ch_ref, desc, cp, r_our, r_ch, r_desc) in doubtful.select(
                "id", "r_record_id", "_diff", "_dt", "our_reference", "channel_reference", "description",
                "counterparty", "r_our_reference", "r_channel_reference", "r_description").iter_rows():
            score = similarity([our_ref, ch_ref], [desc, cp], [record_id, r_our, r_ch], [r_desc])
            if score >= config.min_similarity:
                scored.append((diff, -score, dt, line_id, record_id))
    scored.sort()
    used_lines: set[int] = set()
    used_records: set[str] = set()
    chosen: list[tuple[int, str]] = []
    for _diff, _score, _dt, line_id, record_id in scored:
        if line_id in used_lines or record_id in used_records:
            continue
        used_lines.add(line_id)
        used_records.add(record_id)
        chosen.append((line_id, record_id))
    if not chosen:
        return pl.DataFrame()
    picked = pl.DataFrame(chosen, schema={"id": pl.Int64, "r_record_id": pl.Utf8}, orient="row")
    pairs = candidates.join(picked, on=["id", "r_record_id"], how="semi")
    return pairs.with_columns(rule=pl.lit(Rule.TOLERANCE.value), r_currency=pl.col("currency"),
                              r_direction=pl.col("direction"))


# --- classification --------------------------------------------------------------------------------------

def _classify(pairs: pl.DataFrame) -> pl.DataFrame:
    """Discrepancies of matched pairs (line columns plus ``r_`` record columns)."""
    status = pl.col("status").str.to_lowercase().fill_null("")
    refunded_there = status.is_in(list(REFUNDED_STATUSES))
    failed_there = status.is_in(list(FAILED_STATUSES))
    refunded_here = pl.col("r_status").fill_null("").is_in(list(RECORD_REFUNDED_STATUSES))
    payment = pl.col("kind") == "payment"
    refund = pl.col("kind") == "refund"
    cls = (pl.when(pl.col("amount") != pl.col("r_amount")).then(pl.lit(DiscrepancyClass.AMOUNT_MISMATCH.value))
           .when((payment & ((refunded_there & ~refunded_here) | failed_there)) | (refund & failed_there))
           .then(pl.lit(DiscrepancyClass.STATUS_MISMATCH.value))
           .when(pl.col("fee_amount") != pl.col("r_fee_amount")).then(pl.lit(DiscrepancyClass.FEE_MISMATCH.value))
           .otherwise(pl.lit(None, pl.Utf8)))
    record_net = _signed_net(pl.col("r_amount"), pl.col("r_fee_amount"), pl.col("r_direction"))
    line_net = _signed_net(pl.col("amount"), pl.col("fee_amount"), pl.col("direction"))
    flagged = pairs.with_columns(**{"class": cls}).filter(pl.col("class").is_not_null())
    return flagged.select(
        natural_key=pl.concat_str([pl.col("class"), pl.col("kind"), pl.col("r_record_id")], separator="|"),
        **{"class": pl.col("class")}, kind=pl.col("kind"), line_id=pl.col("id"), record_id=pl.col("r_record_id"),
        payment_id=pl.col("r_payment_id"), our_reference=pl.col("our_reference"),
        channel_reference=pl.coalesce(pl.col("channel_reference"), pl.col("r_channel_reference")),
        currency=pl.col("currency"), line_amount=pl.col("amount"), record_amount=pl.col("r_amount"),
        line_fee=pl.col("fee_amount"), record_fee=pl.col("r_fee_amount"),
        difference=pl.when(pl.col("class") == DiscrepancyClass.STATUS_MISMATCH.value).then(-record_net)
        .otherwise(line_net - record_net),
        line_status=pl.col("status"), record_status=pl.col("r_status"))


def _pairs_to_matches(pairs: pl.DataFrame) -> pl.DataFrame:
    if pairs.height == 0:
        return pl.DataFrame(schema=MATCH_SCHEMA)
    rule = pl.when(pl.col("r_carried_from").is_not_null()).then(pl.lit(Rule.LATE_MATCH.value)).otherwise(pl.col("rule"))
    return pairs.select(line_id=pl.col("id"), record_id=pl.col("r_record_id"), record_kind=pl.col("kind"),
                        rule=rule, carried_from=pl.col("r_carried_from"))


def _line_only(frame: pl.DataFrame, cls: DiscrepancyClass) -> pl.DataFrame:
    """Discrepancies of lines without a record (``_rank`` numbers repeats of one reference)."""
    return frame.select(
        natural_key=pl.concat_str([pl.lit(cls.value), pl.col("kind"), _line_key(frame),
                                   pl.col("_rank").cast(pl.Utf8)], separator="|"),
        **{"class": pl.lit(cls.value)}, kind=pl.col("kind"), line_id=pl.col("id"),
        record_id=pl.col("r_record_id") if "r_record_id" in frame.columns else pl.lit(None, pl.Utf8),
        payment_id=pl.col("r_payment_id") if "r_payment_id" in frame.columns else pl.lit(None, pl.Utf8),
        our_reference=pl.col("our_reference"), channel_reference=pl.col("channel_reference"),
        currency=pl.col("currency"), line_amount=pl.col("amount"), record_amount=pl.lit(None, pl.Int64),
        line_fee=pl.col("fee_amount"), record_fee=pl.lit(None, pl.Int64),
        difference=_signed_net(pl.col("amount"), pl.col("fee_amount"), pl.col("direction")),
        line_status=pl.col("status"), record_status=pl.lit(None, pl.Utf8))


def _record_only(frame: pl.DataFrame, cls: pl.Expr) -> pl.DataFrame:
    return frame.select(
        natural_key=pl.concat_str([cls, pl.col("kind"), pl.col("record_id")], separator="|"),
        **{"class": cls}, kind=pl.col("kind"), line_id=pl.lit(None, pl.Int64), record_id=pl.col("record_id"),
        payment_id=pl.col("payment_id"), our_reference=pl.col("our_reference"),
        channel_reference=pl.col("channel_reference"), currency=pl.col("currency"),
        line_amount=pl.lit(None, pl.Int64), record_amount=pl.col("amount"), line_fee=pl.lit(None, pl.Int64),
        record_fee=pl.col("fee_amount"),
        difference=-_signed_net(pl.col("amount"), pl.col("fee_amount"), pl.col("direction")),
        line_status=pl.lit(None, pl.Utf8), record_status=pl.col("status"))


def match(lines: pl.DataFrame, records: pl.DataFrame, config: MatchConfig | None = None) -> MatchResult:
    """Match ``lines`` (the importers' canonical columns plus ``id``) against ``records`` (RECORD_SCHEMA)."""
    config = config or MatchConfig()
    lines = conform(lines, LINE_SCHEMA)
    records = conform(records, RECORD_SCHEMA).with_columns(
        our_reference=pl.coalesce(pl.col("our_reference"), pl.col("record_id")))
    ignored = lines.filter(pl.col("kind").is_in(list(config.ignored_kinds)))
    lines = lines.filter(~pl.col("kind").is_in(list(config.ignored_kinds)))

    match_parts: list[pl.DataFrame] = []
    discrepancy_parts: list[pl.DataFrame] = []
    pair_frames: list[pl.DataFrame] = []
    remaining_lines, remaining_records = lines, records

    for line_col, record_col, rule in (("our_reference", "our_reference", Rule.OUR_REFERENCE),
                                       ("channel_reference", "channel_reference", Rule.CHANNEL_REFERENCE)):
        pairs, parts, duplicates = _exact(remaining_lines, remaining_records, line_col, record_col, rule)
        pair_frames.append(pairs)
        match_parts += [_pairs_to_matches(pairs), _pairs_to_matches(parts)]
        if duplicates.height:
            discrepancy_parts.append(_line_only(duplicates.with_columns(_rank=pl.col("_rank") - 1),
                                                DiscrepancyClass.DUPLICATE))
        used_lines = pl.concat([pairs.select("id"), parts.select("id"), duplicates.select("id")])
        used_records = pl.concat([pairs.select(record_id="r_record_id"), parts.select(record_id="r_record_id")])
        remaining_lines = remaining_lines.join(used_lines, on="id", how="anti")
        remaining_records = remaining_records.join(used_records, on="record_id", how="anti")

    aggregate, aggregate_lines = _many_to_one(remaining_lines, remaining_records)
    match_parts.append(aggregate)
    remaining_lines = remaining_lines.join(aggregate_lines, on="id", how="anti")
    remaining_records = remaining_records.join(aggregate.select("record_id"), on="record_id", how="anti")

    fuzzy = _tolerance(remaining_lines, remaining_records, config)
    if fuzzy.height:
        pair_frames.append(fuzzy)
        match_parts.append(_pairs_to_matches(fuzzy))
        remaining_lines = remaining_lines.join(fuzzy.select("id"), on="id", how="anti")
        remaining_records = remaining_records.join(fuzzy.select(record_id="r_record_id"), on="record_id",
                                                   how="anti")

    for pairs in pair_frames:
        if pairs.height:
            discrepancy_parts.append(_classify(pairs))

    # Lines left: the first of each reference is missing on our side, its repeats are duplicates.
    leftover = remaining_lines.with_columns(_rank=pl.col("id").rank("ordinal").over("kind", _line_key(remaining_lines)))
    discrepancy_parts.append(_line_only(leftover.filter(pl.col("_rank") == 1).with_columns(_rank=pl.lit(0)),
                                        DiscrepancyClass.MISSING_ON_PLATFORM))
    discrepancy_parts.append(_line_only(leftover.filter(pl.col("_rank") > 1).with_columns(_rank=pl.col("_rank") - 1),
                                        DiscrepancyClass.DUPLICATE))

    # Records left, except those carried from earlier days (they stay open where they are).
    own = remaining_records.filter(pl.col("carried_from").is_null())
    timing = pl.lit(False)
    if config.timing_from is not None:
        timing = (pl.col("occurred_at") >= pl.lit(config.timing_from).cast(UTC_US)) & pl.col("kind").is_in(
            ["payment", "refund"])
    cls = pl.when(timing).then(pl.lit(DiscrepancyClass.SETTLEMENT_TIMING.value)).otherwise(
        pl.lit(DiscrepancyClass.MISSING_AT_CHANNEL.value))
    discrepancy_parts.append(_record_only(own, cls))

    matches = pl.concat([conform(m, MATCH_SCHEMA) for m in match_parts], how="vertical")
    discrepancies = pl.concat([conform(d, DISCREPANCY_SCHEMA) for d in discrepancy_parts], how="vertical")
    return MatchResult(matches=matches, discrepancies=discrepancies, ignored_lines=ignored.height)
