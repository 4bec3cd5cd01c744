"""Transaction-monitoring scenarios: pure functions over a polars frame of transactions.

The frame (``COLUMNS``) has one row per movement of money on one account at us (a customer's wallet or
card, a merchant's or promoter's balance):

- ``id`` the payment, withdrawal or payout id; ``source`` payment | top_up | withdrawal | payout;
- ``customer_id`` the monitored account (the alert's subject), ``account_kind`` customer | merchant | promoter,
  ``customer_type`` the account's segment (``individual``, ``business``, ``merchant``, ...);
- ``counterparty_id`` who paid or was paid (a merchant, a customer, a payout account), may be null;
- ``direction`` ``in`` (money to the account) | ``out``; ``amount`` integer minor units (> 0); ``currency``;
- ``at`` when the money moved (UTC); ``country`` ISO 3166 alpha-2, may be null;
- ``account_created_at`` and ``last_activity_at`` (the account's last movement before the frame), may be null.

Every scenario takes the frame and an :class:`AmlConfig` and returns :class:`Alert` values; nothing reads a
database or the clock. An alert's ``window_key`` (the scenario's subject, currency and the UTC date of its
last transaction) makes storing it idempotent: the same activity found by overlapping runs is one alert.
Amounts are compared as integers only (thresholds are minor units; shares are compared by cross
multiplication with integer per-mille values, no float).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

COLUMNS: dict[str, Any] = {
    "id": pl.Utf8, "source": pl.Utf8, "customer_id": pl.Utf8, "account_kind": pl.Utf8, "customer_type": pl.Utf8,
    "counterparty_id": pl.Utf8, "direction": pl.Utf8, "amount": pl.Int64, "currency": pl.Utf8,
    "at": pl.Datetime("us", "UTC"), "country": pl.Utf8, "account_created_at": pl.Datetime("us", "UTC"),
    "last_activity_at": pl.Datetime("us", "UTC"),
}

SCENARIOS = ("large_transaction", "structuring", "rapid_movement", "round_amounts", "high_risk_geography",
             "dormant_reactivated", "funnelling")

#: Reporting thresholds of large cash-like transactions, minor units, by currency then customer type
#: (``*``: any type). CNY 50,000.00 and USD 10,000.00.
DEFAULT_LARGE: dict[str, dict[str, int]] = {"CNY": {"*": 5_000_000}, "USD": {"*": 1_000_000}}
#: Round amounts: multiples of 1,000.00.
DEFAULT_ROUND_UNIT: dict[str, int] = {"CNY": 100_000, "USD": 100_000}
#: Rapid movement: the smallest incoming amount considered.
DEFAULT_RAPID_MIN: dict[str, int] = {"CNY": 1_000_000, "USD": 100_000}
#: FATF "call for action" jurisdictions (illustrative; configure the tenant's own list).
DEFAULT_HIGH_RISK = ("KP", "IR", "MM")


@dataclass(frozen=True, slots=True)
class AmlConfig:
    """Every scenario's knobs, with the shipped defaults. ``enabled`` lists the scenarios that run."""

    enabled: tuple[str, ...] = SCENARIOS
    #: Customer types no scenario looks at (a merchant's sales and payouts, by default).
    exempt_types: tuple[str, ...] = ("merchant",)
    large_thresholds: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: DEFAULT_LARGE)
    #: Structuring: amounts in [band_permille/1000 × threshold, threshold), at least ``count`` within ``window``.
    structuring_band_permille: int = 900
    structuring_count: int = 3
    structuring_window_hours: int = 168
    #: Rapid movement: out-going within ``hours`` of an incoming amount ≥ ``share_permille``/1000 of it.
    rapid_hours: int = 24
    rapid_share_permille: int = 800
    rapid_min_amount: Mapping[str, int] = field(default_factory=lambda: DEFAULT_RAPID_MIN)
    #: Round amounts: at least ``count`` multiples of the unit within ``window``.
    round_units: Mapping[str, int] = field(default_factory=lambda: DEFAULT_ROUND_UNIT)
    round_count: int = 3
    round_window_hours: int = 168
    high_risk_countries: tuple[str, ...] = DEFAULT_HIGH_RISK
    dormant_days: int = 180
    #: Funnelling: at least ``payers`` distinct counterparties paying in within ``window``.
    funnel_payers: int = 10
    funnel_window_hours: int = 72
    funnel_exempt_types: tuple[str, ...] = ("merchant",)

    def threshold(self, currency: str, customer_type: str | None) -> int | None:
        by_type = self.large_thresholds.get(currency)
        if not by_type:
            return None
        if customer_type is not None and customer_type in by_type:
            return by_type[customer_type]
        return by_type.get("*")

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": list(self.enabled), "exempt_types": list(self.exempt_types),
            "large_thresholds": {c: dict(v) for c, v in self.large_thresholds.items()},
            "structuring_band_permille": self.structuring_band_permille,
            "structuring_count": self.structuring_count,
            "structuring_window_hours": self.structuring_window_hours,
            "rapid_hours": self.rapid_hours, "rapid_share_permille": self.rapid_share_permille,
            "rapid_min_amount": dict(self.rapid_min_amount), "round_units": dict(self.round_units),
            "round_count": self.round_count, "round_window_hours": self.round_window_hours,
            "high_risk_countries": list(self.high_risk_countries), "dormant_days": self.dormant_days,
            "funnel_payers": self.funnel_payers, "funnel_window_hours": self.funnel_window_hours,
            "funnel_exempt_types": list(self.funnel_exempt_types),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AmlConfig:
        """Defaults overridden by ``data`` (already validated by the API schema)."""
        config = cls()
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, list):
                value = tuple(value)
            changes[key] = value
        return replace(config, **changes)


@dataclass(frozen=True, slots=True)
class Alert:
    scenario: str
    subject_kind: str
    subject_id: str
    currency: str
    window_start: datetime
    window_end: datetime
    transaction_ids: tuple[str, ...]
    total_amount: int
    figures: dict[str, Any]
    description: str

    @property
    def window_key(self) -> str:
        return f"{self.currency}:{self.window_end.date().isoformat()}"


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=COLUMNS)


def frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """A frame of ``rows`` (missing optional columns are null), sorted by time."""
    return pl.DataFrame([{name: row.get(name) for name in COLUMNS} for row in rows], schema=COLUMNS).sort("at", "id")


Row = dict[str, Any]


def _groups(df: pl.DataFrame, *keys: str) -> Iterable[list[Row]]:
    if df.is_empty():
        return []
    return [part.sort("at", "id").to_dicts() for part in df.partition_by(list(keys), maintain_order=True)]


def _alert(scenario: str, rows: list[Row], figures: dict[str, Any], description: str) -> Alert:
    first, last = rows[0], rows[-1]
    return Alert(scenario=scenario, subject_kind=first["account_kind"] or "customer", subject_id=first["customer_id"],
                 currency=first["currency"], window_start=first["at"], window_end=last["at"],
                 transaction_ids=tuple(r["id"] for r in rows), total_amount=sum(r["amount"] for r in rows),
                 figures=figures, description=description)


def _per_day(scenario: str, rows: list[Row], figures: Callable[[list[Row]], dict[str, Any]],
             description: str) -> list[Alert]:
    """One alert per (subject, currency, UTC day) of the flagged rows."""
    out: list[Alert] = []
    by_day: dict[Any, list[Row]] = {}
    for row in rows:
        by_day.setdefault(row["at"].date(), []).append(row)
    for day_rows in by_day.values():
        out.append(_alert(scenario, day_rows, figures(day_rows), description))
    return out


def _clusters(rows: list[Row], window: timedelta, count: int) -> list[list[Row]]:
    """For each UTC day, the window ending at that day's last row at which ``count`` or more rows fell
    within ``window`` (the latest such cluster of the day): one cluster per day at most."""
    found: dict[Any, list[Row]] = {}
    start = 0
    for end, row in enumerate(rows):
        while row["at"] - rows[start]["at"] > window:
            start += 1
        if end - start + 1 >= count:
            found[row["at"].date()] = rows[start:end + 1]
    return list(found.values())


# ---------------------------------------------------------------------------------------------- scenarios


def large_transactions(df: pl.DataFrame, config: AmlConfig) -> list[Alert]:
    """Transactions at or above the reporting threshold of their currency and customer type."""
    out: list[Alert] = []
    for rows in _groups(df, "customer_id", "currency"):
        flagged = [r for r in rows if (t := config.threshold(r["currency"], r["customer_type"])) is not None
                   and r["amount"] >= t]
        out += _per_day("large_transaction", flagged, lambda rs: {
            "threshold": config.threshold(rs[0]["currency"], rs[0]["customer_type"]), "count": len(rs),
            "largest_amount": max(r["amount"] for r in rs)},
            "Transactions at or above the reporting threshold.")
    return out


def structuring(df: pl.DataFrame, config: AmlConfig) -> list[Alert]:
    """Several transactions just below the threshold (within the band) inside the window."""
    out: list[Alert] = []
    window = timedelta(hours=config.structuring_window_hours)
    for rows in _groups(df, "customer_id", "currency"):
        band = []
        for r in rows:
            t = config.threshold(r["currency"], r["customer_type"])
            if t is not None and r["amount"] < t and r["amount"] * 1000 >= t * config.structuring_band_permille:
                band.append(r)
        for cluster in _clusters(band, window, config.structuring_count):
            threshold = config.threshold(cluster[0]["currency"], cluster[0]["customer_type"])
            out.append(_alert("structuring", cluster, {
                "threshold": threshold, "band_permille": config.structuring_band_permille, "count": len(cluster),
                "window_hours": config.structuring_window_hours},
                f"{len(cluster)} transactions just below the reporting threshold within "
                f"{config.structuring_window_hours} h."))
    return out


def rapid_movement(df: pl.DataFrame, config: AmlConfig) -> list[Alert]:
    """Money in, then most of it out again within ``rapid_hours``."""
    out: list[Alert] = []
    window = timedelta(hours=config.rapid_hours)
    for rows in _groups(df, "customer_id", "currency"):
        found: dict[Any, Alert] = {}
        for i, incoming in enumerate(rows):
            minimum = config.rapid_min_amount.get(incoming["currency"], 0)
            if incoming["direction"] != "in" or incoming["amount"] < minimum:
                continue
            outgoing = [r for r in rows[i + 1:] if r["direction"] == "out"
                        and r["at"] - incoming["at"] <= window]
            moved = sum(r["amount"] for r in outgoing)
            if outgoing and moved * 1000 >= incoming["amount"] * config.rapid_share_permille:
                cluster = [incoming, *outgoing]
                alert = _alert("rapid_movement", cluster, {
                    "in_amount": incoming["amount"], "out_amount": moved, "hours": config.rapid_hours,
                    "share_permille": moved * 1000 // incoming["amount"]},
                    f"Funds received and moved out again within {config.rapid_hours} h.")
                found[alert.window_end.date()] = alert
        out += found.values()
    return out


def round_amounts(df: pl.DataFrame, config: AmlConfig) -> list[Alert]:
    """Repeated amounts that are exact multiples of the round unit (1,000.00 by default)."""
    out: list[Alert] = []
    window = timedelta(hours=config.round_window_hours)
    for rows in _groups(df, "customer_id", "currency"):
        unit = config.round_units.get(rows[0]["currency"])
        if not unit:
            continue
        flagged = [r for r in rows if r["amount"] % unit == 0]
        for cluster in _clusters(flagged, window, config.round_count):
            out.append(_alert("round_amounts", cluster, {"unit": unit, "count": len(cluster),
                                                         "window_hours": config.round_window_hours},
                              f"{len(cluster)} round amounts within {config.round_window_hours} h."))
    return out


def high_risk_geography(df: pl.DataFrame, config: AmlConfig) -> list[Alert]:
    """Transactions from or to a configured high-risk country."""
    countries = set(config.high_risk_countries)
    out: list[Alert] = []
    if not countries:
        return out
    for rows in _groups(df.filter(pl.col("country").is_in(list(countries))), "customer_id", "currency"):
        out += _per_day("high_risk_geography", rows, lambda rs: {
            "countries": sorted({r["country"] for r in rs}), "count": len(rs)},
            "Transactions involving a high-risk country.")
    return out


def dormant_reactivated(df: pl.DataFrame, config: AmlConfig) -> list[Alert]:
    """An account without movement for more than ``dormant_days`` that moves money again."""
    out: list[Alert] = []
    gap = timedelta(days=config.dormant_days)
    for rows in _groups(df, "customer_id"):
        previous = rows[0]["last_activity_at"] or rows[0]["account_created_at"]
        for row in rows:
            if previous is not None and row["at"] - previous > gap:
                alert = _alert("dormant_reactivated", [row], {
                    "idle_days": (row["at"] - previous).days, "previous_activity_at": previous.isoformat(),
                    "dormant_days": config.dormant_days},
                    f"Account idle for more than {config.dormant_days} days became active.")
                out.append(alert)
            previous = row["at"]
    return out


def funnelling(df: pl.DataFrame, config: AmlConfig) -> list[Alert]:
    """Many distinct payers paying into one account within the window."""
    out: list[Alert] = []
    window = timedelta(hours=config.funnel_window_hours)
    incoming = df.filter((pl.col("direction") == "in") & pl.col("counterparty_id").is_not_null()
                         & ~pl.col("customer_type").fill_null("").is_in(list(config.funnel_exempt_types)))
    for rows in _groups(incoming, "customer_id", "currency"):
        found: dict[Any, list[Row]] = {}
        start = 0
        for end, row in enumerate(rows):
            while row["at"] - rows[start]["at"] > window:
                start += 1
            cluster = rows[start:end + 1]
            if len({r["counterparty_id"] for r in cluster}) >= config.funnel_payers:
                found[row["at"].date()] = cluster
        for cluster in found.values():
            payers = len({r["counterparty_id"] for r in cluster})
            out.append(_alert("funnelling", cluster, {"payers": payers,
                                                      "window_hours": config.funnel_window_hours},
                              f"{payers} distinct payers into one account within {config.funnel_window_hours} h."))
    return out


RUNNERS: dict[str, Callable[[pl.DataFrame, AmlConfig], list[Alert]]] = {
    "large_transaction": large_transactions, "structuring": structuring, "rapid_movement": rapid_movement,
    "round_amounts": round_amounts, "high_risk_geography": high_risk_geography,
    "dormant_reactivated": dormant_reactivated, "funnelling": funnelling,
}


def run_all(df: pl.DataFrame, config: AmlConfig, *, since: datetime | None = None) -> list[Alert]:
    """Every enabled scenario; with ``since``, only alerts whose last transaction is at or after it (the
    frame may reach back further so that windows spanning the start are seen whole)."""
    alerts: list[Alert] = []
    if config.exempt_types:
        df = df.filter(~pl.col("customer_type").fill_null("").is_in(list(config.exempt_types)))
    for name in config.enabled:
        alerts += RUNNERS[name](df, config)
    if since is not None:
        alerts = [a for a in alerts if a.window_end >= since]
    return alerts
