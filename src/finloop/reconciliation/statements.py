"""Unified statements: a period's money across all channels, from our records, as JSON, CSV or XLSX.

A period is ``daily`` (the day ``on``), ``weekly`` (Monday to Sunday around ``on``) or ``monthly``
(the calendar month of ``on``). An event belongs to the day its tenant-calendar local date says
(``BusinessCalendar.local_date``: the tenant's zone, shifted by the cut-off): the statement covers
``[day_closes_at(first day - 1), day_closes_at(last day))``.

Rows are typed and signed from the platform's side: ``payment`` +captured amount, ``refund`` -refunded
amount, ``fee`` -fee charged on a payment and +fee returned on a refund; ``net`` is their sum. Totals are
per channel, merchant, payment method and type, each per currency (amounts of different currencies are
never added). All sums are integer minor units (polars Int64 group-bys); there is no rounding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import polars as pl
import xlsxwriter

from finloop.db.uow import UnitOfWork
from finloop.reconciliation import platform
from finloop.tenancy.calendar import get_calendar


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


ROW_SCHEMA: dict[str, Any] = {"date": pl.Date, "channel": pl.Utf8, "merchant_id": pl.Utf8, "method": pl.Utf8,
                              "type": pl.Utf8, "currency": pl.Utf8, "amount": pl.Int64}
DIMENSIONS = ("channel", "merchant_id", "method", "type")


def period_range(period: Period, on: date) -> tuple[date, date]:
    """First and last day (inclusive) of the period around ``on``."""
    if period == Period.DAILY:
        return on, on
    if period == Period.WEEKLY:
        start = on - timedelta(days=on.weekday())
        return start, start + timedelta(days=6)
    start = on.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following - timedelta(days=1)


@dataclass
class Statement:
    period: Period
    from_on: date
    to_on: date
    #: One row per day, channel, merchant, method, type and currency: ``count`` and signed ``amount``.
    lines: pl.DataFrame
    #: Per dimension: one row per value and currency with payments, refunds, fees, net and count.
    totals: dict[str, pl.DataFrame]


def rows_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ROW_SCHEMA) if rows else pl.DataFrame(schema=ROW_SCHEMA)


def summarize(raw: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """The grouped lines and the totals per dimension of typed, signed rows (``ROW_SCHEMA``)."""
    keys = ["date", "channel", "merchant_id", "method", "type", "currency"]
    lines = (raw.group_by(keys).agg(count=pl.len().cast(pl.Int64), amount=pl.col("amount").sum())
             .sort(keys, nulls_last=True))
    totals = {}
    for dimension in DIMENSIONS:
        totals[dimension] = (raw.group_by(dimension, "currency").agg(
            payments=pl.col("amount").filter(pl.col("type") == "payment").sum(),
            refunds=pl.col("amount").filter(pl.col("type") == "refund").sum(),
            fees=pl.col("amount").filter(pl.col("type") == "fee").sum(),
            net=pl.col("amount").sum(),
            count=pl.col("type").is_in(["payment", "refund"]).sum().cast(pl.Int64),
        ).sort(dimension, "currency", nulls_last=True))
    return lines, totals


def build(uow: UnitOfWork, tenant_id: str, *, period: Period, on: date) -> Statement:
    calendar = get_calendar(uow, tenant_id)
    from_on, to_on = period_range(period, on)
    start, end = calendar.day_closes_at(from_on - timedelta(days=1)), calendar.day_closes_at(to_on)
    raw: list[dict[str, Any]] = []
    for row in platform.payment_rows(uow, tenant_id, start=start, end=end):
        day = calendar.local_date(row["occurred_at"])
        common = {"date": day, "channel": row["channel"], "merchant_id": row["merchant_id"], "method": row["method"],
                  "currency": row["currency"]}
        raw.append({**common, "type": "payment", "amount": row["amount"]})
        if row["fee_amount"]:
            raw.append({**common, "type": "fee", "amount": -row["fee_amount"]})
    for row in platform.refund_rows(uow, tenant_id, start=start, end=end):
        day = calendar.local_date(row["occurred_at"])
        common = {"date": day, "channel": row["channel"], "merchant_id": row["merchant_id"], "method": row["method"],
                  "currency": row["currency"]}
        raw.append({**common, "type": "refund", "amount": -row["amount"]})
        if row["fee_amount"]:
            raw.append({**common, "type": "fee", "amount": row["fee_amount"]})
    lines, totals = summarize(rows_frame(raw))
    return Statement(period=period, from_on=from_on, to_on=to_on, lines=lines, totals=totals)


def to_json(statement: Statement) -> dict[str, Any]:
    return {"object": "statement", "period": statement.period.value, "from_on": statement.from_on.isoformat(),
            "to_on": statement.to_on.isoformat(),
            "lines": [{**row, "date": row["date"].isoformat()} for row in statement.lines.iter_rows(named=True)],
            "totals": {name: frame.to_dicts() for name, frame in statement.totals.items()}}


def to_csv(statement: Statement) -> bytes:
    """The statement's lines (one per day, channel, merchant, method, type, currency) as CSV."""
    return statement.lines.write_csv().encode()


def to_xlsx(statement: Statement) -> bytes:
    """A workbook: the lines, then one sheet of totals per dimension."""
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer, {"in_memory": True}) as workbook:
        statement.lines.write_excel(workbook=workbook, worksheet="lines", autofit=True)
        for name, frame in statement.totals.items():
            frame.write_excel(workbook=workbook, worksheet=f"by_{name}"[:31], autofit=True)
    return buffer.getvalue()


def filename(statement: Statement, fmt: Format) -> str:
    return f"statement-{statement.period.value}-{statement.from_on.isoformat()}.{fmt.value}"
