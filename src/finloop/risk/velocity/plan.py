"""The pure part of velocity features: what to write for an event, which buckets a window reads, and the
features computed from the buckets a store returns. No database here.

Window semantics: window ``W`` read with buckets of ``g`` seconds at instant ``at`` sums the ``W / g``
buckets ending with the one that contains ``at``, i.e. bucket starts ``floor(at/g)*g - W + g`` ..
``floor(at/g)*g``: the events of ``[floor(at/g)*g - W + g, at]`` (for a past ``at``, also the later events
of ``at``'s own bucket: see the docs). The window is between ``W - g`` and ``W`` long: an event older than
``W`` is never counted, and events in the oldest partial bucket (less than ``g`` before the window's start)
are dropped. Granularities: 10 s for 1 min, 1 min for 10 min and 1 h, 1 h for 24 h, 1 day for 7 and 30 days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from finloop.core.errors import InvalidRequest
from finloop.risk.velocity.keys import blind_index

#: Dimension name -> the event key it is read from.
DIMENSIONS: dict[str, str] = {"customer": "customer_id", "card": "card_token", "device": "device_id",
                              "ip": "ip", "phone": "phone", "merchant": "merchant_id"}
#: Window name -> (length in seconds, bucket granularity in seconds).
WINDOWS: dict[str, tuple[int, int]] = {"1m": (60, 10), "10m": (600, 60), "1h": (3600, 60), "24h": (86400, 3600),
                                       "7d": (7 * 86400, 86400), "30d": (30 * 86400, 86400)}
COUNT_WINDOWS = tuple(WINDOWS)
SUM_WINDOWS = tuple(WINDOWS)
REFUND_WINDOWS = ("1h", "24h", "7d", "30d")
DISTINCT_WINDOWS = ("1h", "24h", "7d", "30d")
#: Distinct counts: dimension -> the member dimensions counted per key (``device.distinct_cards.24h``).
DISTINCT: dict[str, tuple[str, ...]] = {
    "customer": ("card", "device", "ip"),
    "card": ("customer", "device"),
    "device": ("card", "customer"),
    "ip": ("card", "customer"),
    "phone": ("customer",),
}
PLURAL = {"customer": "customers", "card": "cards", "device": "devices", "ip": "ips", "phone": "phones",
          "merchant": "merchants"}
SINGULAR = {plural: name for name, plural in PLURAL.items()}

#: Metrics of the counter rows: every event; refunds; events with an amount (``a:<currency>``).
EVERY, REFUNDS, AMOUNT_PREFIX = "n", "r", "a:"
REFUND_TYPES = frozenset({"refund"})


def _granularities(windows: Iterable[str]) -> tuple[int, ...]:
    return tuple(sorted({WINDOWS[name][1] for name in windows}))


COUNT_GRANULARITIES = _granularities(COUNT_WINDOWS + SUM_WINDOWS)
REFUND_GRANULARITIES = _granularities(REFUND_WINDOWS)
DISTINCT_GRANULARITIES = _granularities(DISTINCT_WINDOWS)
#: Per granularity, the longest window read with it: a bucket older than that is never read again.
RETENTION: dict[int, int] = {}
for _length, _granularity in WINDOWS.values():
    RETENTION[_granularity] = max(RETENTION.get(_granularity, 0), _length)


def feature_names() -> list[str]:
    """Every feature ``features`` returns, in a stable order."""
    names: list[str] = []
    for dimension in DIMENSIONS:
        names += [f"{dimension}.count.{w}" for w in COUNT_WINDOWS]
        names += [f"{dimension}.sum.{w}" for w in SUM_WINDOWS]
        names += [f"{dimension}.refunds.{w}" for w in REFUND_WINDOWS]
        for member in DISTINCT.get(dimension, ()):
            names += [f"{dimension}.distinct_{PLURAL[member]}.{w}" for w in DISTINCT_WINDOWS]
    return names


FEATURE_NAMES: tuple[str, ...] = tuple(feature_names())


def epoch(at: datetime) -> int:
    """Whole epoch seconds of an aware instant (floor)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("velocity instants must be timezone-aware")
    return int(at.timestamp() // 1)


def bucket_of(seconds: int, granularity: int) -> int:
    return seconds - seconds % granularity


def window_range(name: str, seconds: int) -> tuple[int, int, int]:
    """(granularity, first bucket start, last bucket start) read by window ``name`` at epoch ``seconds``."""
    length, granularity = WINDOWS[name]
    last = bucket_of(seconds, granularity)
    return granularity, last - length + granularity, last


@dataclass(frozen=True, slots=True, order=True)
class CounterDelta:
    dimension: str
    key_hash: str
    metric: str
    granularity: int
    bucket: int
    count: int
    amount: int


@dataclass(frozen=True, slots=True, order=True)
class MemberAdd:
    dimension: str
    key_hash: str
    metric: str
    granularity: int
    bucket: int
    member_hash: str


@dataclass(frozen=True, slots=True)
class Series:
    dimension: str
    key_hash: str
    metric: str


@dataclass
class ReadPlan:
    """What ``features`` reads: counter series with, per granularity, the bucket range; member sets with
    their windows."""

    seconds: int
    currency: str
    #: dimension -> key hash, for the dimensions present in the event.
    keys: dict[str, str]
    counter_series: list[Series] = field(default_factory=list)
    #: granularity -> (first bucket, last bucket) over every window read with it.
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    member_series: list[Series] = field(default_factory=list)
    #: window name -> (granularity, first bucket, last bucket) for distinct counts.
    distinct_windows: dict[str, tuple[int, int, int]] = field(default_factory=dict)


#: A counter row a store returns: (dimension, key hash, metric, granularity, bucket, count, amount sum).
CounterRow = tuple[str, str, str, int, int, int, int]
#: Distinct counts a store returns: (dimension, key hash, metric, window name) -> members.
DistinctCounts = dict[tuple[str, str, str, str], int]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def event_keys(tenant_id: str, event: Mapping[str, Any]) -> dict[str, str]:
    """dimension -> blind index of its value, for the dimensions present in ``event``."""
    keys: dict[str, str] = {}
    for dimension, event_key in DIMENSIONS.items():
        value = _text(event.get(event_key))
        if value is not None:
            keys[dimension] = blind_index(tenant_id, dimension, value)
    return keys


def event_amount(event: Mapping[str, Any]) -> int | None:
    amount = event.get("amount")
    if amount is None:
        return None
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest("amount is an integer of minor units.", code="invalid_amount", param="amount")
    return amount


def event_currency(event: Mapping[str, Any]) -> str:
    currency = event.get("currency")
    return currency.strip().upper()[:3] if isinstance(currency, str) else ""


def writes(tenant_id: str, event: Mapping[str, Any], seconds: int) -> tuple[list[CounterDelta], list[MemberAdd]]:
    """The counter increments and member insertions that record ``event`` at epoch ``seconds``, sorted (a fixed
    lock order: concurrent recorders on PostgreSQL cannot deadlock on each other)."""
    keys = event_keys(tenant_id, event)
    amount = event_amount(event)
    currency = event_currency(event)
    refund = event.get("type") in REFUND_TYPES
    counters: list[CounterDelta] = []
    members: list[MemberAdd] = []
    for dimension, key_hash in keys.items():
        for granularity in COUNT_GRANULARITIES:
            bucket = bucket_of(seconds, granularity)
            counters.append(CounterDelta(dimension, key_hash, EVERY, granularity, bucket, 1, 0))
            if amount is not None:
                counters.append(CounterDelta(dimension, key_hash, AMOUNT_PREFIX + currency, granularity, bucket,
                                             1, amount))
        if refund:
            for granularity in REFUND_GRANULARITIES:
                counters.append(CounterDelta(dimension, key_hash, REFUNDS, granularity,
                                             bucket_of(seconds, granularity), 1, 0))
        for member in DISTINCT.get(dimension, ()):
            member_hash = keys.get(member)
            if member_hash is None:
                continue
            for granularity in DISTINCT_GRANULARITIES:
                members.append(MemberAdd(dimension, key_hash, PLURAL[member], granularity,
                                         bucket_of(seconds, granularity), member_hash))
    return sorted(counters), sorted(members)


def read_plan(tenant_id: str, event: Mapping[str, Any], seconds: int) -> ReadPlan:
    keys = event_keys(tenant_id, event)
    currency = event_currency(event)
    plan = ReadPlan(seconds=seconds, currency=currency, keys=keys)
    for dimension, key_hash in keys.items():
        plan.counter_series += [Series(dimension, key_hash, EVERY), Series(dimension, key_hash, REFUNDS),
                                Series(dimension, key_hash, AMOUNT_PREFIX + currency)]
        plan.member_series += [Series(dimension, key_hash, PLURAL[m]) for m in DISTINCT.get(dimension, ())]
    for name in WINDOWS:
        granularity, first, last = window_range(name, seconds)
        low, high = plan.ranges.get(granularity, (first, last))
        plan.ranges[granularity] = (min(low, first), max(high, last))
    for name in DISTINCT_WINDOWS:
        plan.distinct_windows[name] = window_range(name, seconds)
    return plan


def compute(plan: ReadPlan, rows: Iterable[CounterRow], distinct: DistinctCounts) -> dict[str, int]:
    """The features from the rows a store returned for ``plan`` (rows outside the plan are ignored)."""
    values = dict.fromkeys(FEATURE_NAMES, 0)
    by_series: dict[tuple[str, str, int], list[tuple[int, int, int]]] = {}
    amount_metric = AMOUNT_PREFIX + plan.currency
    for dimension, key_hash, metric, granularity, bucket, count, amount in rows:
        if plan.keys.get(dimension) != key_hash:
            continue
        by_series.setdefault((dimension, metric, granularity), []).append((bucket, count, amount))

    def total(dimension: str, metric: str, window: str, *, amounts: bool = False) -> int:
        granularity, first, last = window_range(window, plan.seconds)
        return sum(amount if amounts else count
                   for bucket, count, amount in by_series.get((dimension, metric, granularity), ())
                   if first <= bucket <= last)

    for dimension, key_hash in plan.keys.items():
        for window in COUNT_WINDOWS:
            values[f"{dimension}.count.{window}"] = total(dimension, EVERY, window)
        for window in SUM_WINDOWS:
            values[f"{dimension}.sum.{window}"] = total(dimension, amount_metric, window, amounts=True)
        for window in REFUND_WINDOWS:
            values[f"{dimension}.refunds.{window}"] = total(dimension, REFUNDS, window)
        for member in DISTINCT.get(dimension, ()):
            for window in DISTINCT_WINDOWS:
                values[f"{dimension}.distinct_{PLURAL[member]}.{window}"] = distinct.get(
                    (dimension, key_hash, PLURAL[member], window), 0)
    return values
