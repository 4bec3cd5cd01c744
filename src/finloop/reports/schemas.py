"""The JSON of a report: what it is, the parameters it ran with, its typed columns and its rows."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

#: A cell: money in integer minor units (beside a ``currency`` column), counts as integers, rates and dates as
#: strings (rates are decimals, ``0.1234`` = 12.34 %).
Cell = str | int | None


class ReportColumn(BaseModel):
    name: str
    label: str
    kind: Literal["text", "integer", "money", "rate", "date"]


class ReportParams(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    currency: str | None = None
    threshold_amount: int | None = None
    months: int | None = None

    model_config = {"populate_by_name": True}


class ReportRead(BaseModel):
    name: str
    title: str
    group: Literal["financial", "operations", "risk", "credit", "regulatory"]
    description: str
    params: ReportParams
    notes: list[str]
    columns: list[ReportColumn]
    rows: list[dict[str, Cell]]


class ReportSummary(BaseModel):
    name: str
    title: str
    group: str
    description: str
    parameters: list[str]
    href: str


class ReportList(BaseModel):
    data: list[ReportSummary]
