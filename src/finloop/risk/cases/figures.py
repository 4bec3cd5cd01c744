"""Dashboard figures per rule and overall over time, from the stored decisions and their labels.

Definitions (fraud = label ``fraud_confirmed``; every other decision, labelled or not, is non-fraud, as in
backtests; flagged = outcome review or decline):

- overall, per bucket: ``decisions``; ``hits`` (decisions at least one rule fired on); ``hit_rate`` = hits /
  decisions; ``approval_rate``, ``review_rate``, ``decline_rate`` = decisions of that outcome / decisions;
  ``interception_rate`` = fraud flagged / fraud; ``false_positive_rate`` = non-fraud flagged / non-fraud;
  ``losses_prevented`` = per currency, the summed ``amount`` (minor units) of fraud declined;
- per rule, per bucket: ``hits`` (decisions the rule fired on); ``hit_rate`` = hits / the bucket's decisions;
  ``approval_rate``, ``review_rate``, ``decline_rate`` = the rule's hits of that outcome / its hits;
  ``interception_rate`` = fraud the rule fired on that was flagged / the bucket's fraud;
  ``false_positive_rate`` = non-fraud the rule fired on that was flagged / the bucket's non-fraud;
  ``losses_prevented`` = the amount of fraud declined that the rule fired on.

Rates are decimal strings of 4 places rounded half-even (``risk.domain.rate``), None on a zero denominator.
Amounts are integers of minor units, summed per currency (never converted; an event without a currency
counts under ``XXX``). Buckets are UTC days or hours from the bucket holding ``from_at``; empty buckets are
listed with zeros.

How it scales: one indexed range query (``ix_risk_decisions_tenant_decided``) reads four small columns per
decision into a polars frame (the fired rules' JSON is reduced to their ids while reading: one pass, no loop
per rule); the per-rule figures are one ``explode`` and one ``group_by``; the events themselves (for the
amounts) are read only for the fraud declined. Memory is linear in the decisions of the range, capped at
``MAX_DECISIONS`` (a larger range is a 400: narrow it or use day buckets over a shorter span).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import select

from finloop.core.errors import InvalidRequest
from finloop.db.uow import UnitOfWork
from finloop.risk.domain import rate
from finloop.risk.models import RiskDecision

BUCKETS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
MAX_BUCKETS = {"day": 366, "hour": 24 * 31}
MAX_DECISIONS = 2_000_000
NO_CURRENCY = "XXX"
FRAUD = "fraud_confirmed"

_COUNTS = ("decisions", "hits", "approvals", "reviews", "declines", "fraud", "fraud_caught", "non_fraud",
           "non_fraud_flagged")


def _start(at: datetime, bucket: str) -> datetime:
    at = at.astimezone(UTC)
    if bucket == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    return at.replace(minute=0, second=0, microsecond=0)


def bucket_starts(from_at: datetime, to_at: datetime, bucket: str) -> list[datetime]:
    step = BUCKETS[bucket]
    starts, at = [], _start(from_at, bucket)
    while at < to_at:
        starts.append(at)
        at += step
    return starts


def check_range(from_at: datetime, to_at: datetime, bucket: str) -> None:
    if bucket not in BUCKETS:
        raise InvalidRequest("bucket is day or hour.", code="invalid_bucket", param="bucket")
    if from_at.tzinfo is None or to_at.tzinfo is None:
        raise InvalidRequest("from_at and to_at carry a time zone.", code="invalid_range", param="from_at")
    if from_at >= to_at:
        raise InvalidRequest("from_at is before to_at.", code="invalid_range", param="from_at")
    if (to_at - _start(from_at, bucket)) > BUCKETS[bucket] * MAX_BUCKETS[bucket]:
        raise InvalidRequest(f"At most {MAX_BUCKETS[bucket]} {bucket} buckets: narrow the range.",
                             code="range_too_large", param="to_at")


def _rates(row: dict[str, Any], *, hits_base: bool) -> dict[str, Any]:
    """The rates of one row of counts; outcome rates over the hits (a rule) or the decisions (overall)."""
    base = row["hits"] if hits_base else row["decisions"]
    return {"hit_rate": rate(row["hits"], row["decisions"]),
            "approval_rate": rate(row["approvals"], base), "review_rate": rate(row["reviews"], base),
            "decline_rate": rate(row["declines"], base),
            "interception_rate": rate(row["fraud_caught"], row["fraud"]),
            "false_positive_rate": rate(row["non_fraud_flagged"], row["non_fraud"])}


def _counts(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    fraud = pl.col("label").fill_null("") == FRAUD
    flagged = pl.col("outcome") != "approve"
    return frame.group_by(keys).agg(
        pl.len().alias("hits_or_decisions"),
        (pl.col("rules").list.len() > 0).sum().alias("hits"),
        (pl.col("outcome") == "approve").sum().alias("approvals"),
        (pl.col("outcome") == "review").sum().alias("reviews"),
        (pl.col("outcome") == "decline").sum().alias("declines"),
        fraud.sum().alias("fraud"),
        (fraud & flagged).sum().alias("fraud_caught"),
        (~fraud).sum().alias("non_fraud"),
        (~fraud & flagged).sum().alias("non_fraud_flagged"),
    )


def _losses(frame: pl.DataFrame, keys: list[str]) -> dict[tuple[Any, ...], dict[str, int]]:
    if frame.is_empty():
        return {}
    grouped = frame.group_by([*keys, "currency"]).agg(pl.col("amount").sum())
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in grouped.iter_rows(named=True):
        out.setdefault(tuple(row[k] for k in keys), {})[row["currency"]] = int(row["amount"])
    return out


def figures(uow: UnitOfWork, tenant_id: str, *, from_at: datetime, to_at: datetime,
            bucket: str = "day") -> dict[str, Any]:
    """Per bucket and overall, and per rule per bucket and overall, for the decisions of ``[from_at, to_at)``
    (see the module docstring for the definitions)."""
    check_range(from_at, to_at, bucket)
    where = (RiskDecision.tenant_id == tenant_id, RiskDecision.decided_at >= from_at,
             RiskDecision.decided_at < to_at)
    ids: list[str] = []
    at: list[datetime] = []
    outcomes: list[str] = []
    labels: list[str | None] = []
    rules: list[list[str]] = []
    result = uow.session.execute(select(RiskDecision.id, RiskDecision.decided_at, RiskDecision.outcome,
                                        RiskDecision.label, RiskDecision.fired).where(*where)
                                 .limit(MAX_DECISIONS + 1).execution_options(yield_per=5000))
    for decision_id, decided_at, outcome, label, fired in result:
        ids.append(decision_id)
        at.append(decided_at)
        outcomes.append(outcome)
        labels.append(label)
        rules.append([f["rule_id"] for f in fired])
    if len(ids) > MAX_DECISIONS:
        raise InvalidRequest(f"The range holds more than {MAX_DECISIONS} decisions: narrow it.",
                             code="range_too_large", param="to_at")
    every = "1d" if bucket == "day" else "1h"
    frame = pl.DataFrame({"id": ids, "at": at, "outcome": outcomes, "label": labels, "rules": rules},
                         schema={"id": pl.String, "at": pl.Datetime("us", "UTC"), "outcome": pl.String,
                                 "label": pl.String, "rules": pl.List(pl.String)})
    frame = frame.with_columns(pl.col("at").dt.truncate(every).alias("bucket")).drop("at")

    # Amounts of the fraud declined (the only events read).
    money_ids, amounts, currencies = [], [], []
    for decision_id, event in uow.session.execute(select(RiskDecision.id, RiskDecision.event).where(
            *where, RiskDecision.label == FRAUD, RiskDecision.outcome == "decline")):
        amount = event.get("amount")
        if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
            currency = event.get("currency")
            money_ids.append(decision_id)
            amounts.append(amount)
            currencies.append(currency.upper() if isinstance(currency, str) and len(currency) == 3 else NO_CURRENCY)
    money = pl.DataFrame({"id": money_ids, "amount": amounts, "currency": currencies},
                         schema={"id": pl.String, "amount": pl.Int64, "currency": pl.String})
    money = money.join(frame.select("id", "bucket", "rules"), on="id", how="inner")

    overall = {row["bucket"]: row for row in _counts(frame, ["bucket"]).iter_rows(named=True)}
    overall_losses = _losses(money, ["bucket"])
    exploded = frame.explode("rules").filter(pl.col("rules").is_not_null()).rename({"rules": "rule_id"})
    per_rule = {(row["rule_id"], row["bucket"]): row for row in _counts(
        exploded.with_columns(pl.lit(["x"]).alias("rules")), ["rule_id", "bucket"]).iter_rows(named=True)}
    rule_losses = _losses(money.explode("rules").rename({"rules": "rule_id"}).filter(
        pl.col("rule_id").is_not_null()), ["rule_id", "bucket"])
    rule_ids = sorted({rule_id for rule_id, _ in per_rule})

    starts = bucket_starts(from_at, to_at, bucket)
    zero = dict.fromkeys(_COUNTS, 0)

    def bucket_row(counts: dict[str, Any] | None) -> dict[str, int]:
        if counts is None:
            return dict(zero)
        return {**{k: int(counts[k]) for k in _COUNTS if k != "decisions"},
                "decisions": int(counts["hits_or_decisions"])}

    def add(total: dict[str, int], row: dict[str, int]) -> None:
        for key in _COUNTS:
            total[key] += row[key]

    def merge(total: dict[str, int], losses: dict[str, int]) -> None:
        for currency, amount in losses.items():
            total[currency] = total.get(currency, 0) + amount

    overall_rows, overall_total, overall_money = [], dict(zero), dict[str, int]()
    for start in starts:
        row = bucket_row(overall.get(start))
        losses = overall_losses.get((start,), {})
        add(overall_total, row)
        merge(overall_money, losses)
        overall_rows.append({"start": start.isoformat(), **row, **_rates(row, hits_base=False),
                             "losses_prevented": losses})
    rule_out = []
    for rule_id in rule_ids:
        rows, total, total_money = [], dict(zero), dict[str, int]()
        for start, base in zip(starts, overall_rows, strict=True):
            counts = per_rule.get((rule_id, start))
            row = bucket_row(counts)
            # Denominators that are the bucket's: decisions, fraud, non-fraud.
            row["hits"] = row.pop("decisions")
            row.update(decisions=base["decisions"], fraud=base["fraud"], non_fraud=base["non_fraud"])
            losses = rule_losses.get((rule_id, start), {})
            add(total, row)
            merge(total_money, losses)
            rows.append({"start": start.isoformat(), **row, **_rates(row, hits_base=True),
                         "losses_prevented": losses})
        rule_out.append({"rule_id": rule_id, "total": {**total, **_rates(total, hits_base=True),
                                                       "losses_prevented": total_money}, "buckets": rows})
    return {"from": from_at.isoformat(), "to": to_at.isoformat(), "bucket": bucket,
            "total": {**overall_total, **_rates(overall_total, hits_base=False), "losses_prevented": overall_money},
            "buckets": overall_rows, "rules": rule_out}
