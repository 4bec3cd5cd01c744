"""The tenant's ledger, payments, loans and decisions as Parquet files for a data warehouse.

Each table is read in key order, ``chunk_size`` rows at a time, and each chunk is written as its own part file
(``<out>/<table>/part-00000.parquet`` ...), so a table of any size is exported in bounded memory. Read one back
with ``pl.read_parquet("<out>/<table>/*.parquet")``. Money stays in integer minor units; exact decimals (rates)
are written as their text so that nothing is rounded; JSON columns are JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

import polars as pl
from sqlalchemy import Column, Table, func, select

from finloop.credit.models import Loan, LoanApplication
from finloop.credit.servicing.models import LoanAccount
from finloop.db.uow import UnitOfWork
from finloop.ledger.models import Entry, Posting
from finloop.payments.models import Payment
from finloop.risk.models import RiskDecision

CHUNK_SIZE = 50_000
#: What is exported, under which name. Credit decisions are the loan applications with their outcomes.
TABLES: tuple[tuple[str, Table], ...] = (
    ("ledger_entries", cast(Table, Entry.__table__)),
    ("ledger_postings", cast(Table, Posting.__table__)),
    ("payments", cast(Table, Payment.__table__)),
    ("loans", cast(Table, Loan.__table__)),
    ("loan_accounts", cast(Table, LoanAccount.__table__)),
    ("risk_decisions", cast(Table, RiskDecision.__table__)),
    ("credit_decisions", cast(Table, LoanApplication.__table__)),
)

#: Called after each chunk with the table's name, the rows written so far and the table's total.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class Written:
    name: str
    rows: int
    files: int
    path: Path


def _polars_type(column: Column[Any]) -> tuple[pl.DataType, Callable[[Any], Any]]:
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = str
    if kind is bool:
        return pl.Boolean(), lambda v: v
    if kind is int:
        return pl.Int64(), lambda v: v
    if kind is datetime:
        return pl.Datetime("us", "UTC"), lambda v: v
    if kind is date:
        return pl.Date(), lambda v: v
    return pl.String(), _text


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _chunks(uow: UnitOfWork, table: Table, tenant_id: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
    key = next(iter(table.primary_key.columns))
    last: Any = None
    while True:
        query = select(*table.columns).where(table.c.tenant_id == tenant_id)
        if last is not None:
            query = query.where(key > last)
        rows = [tuple(r) for r in uow.session.execute(query.order_by(key).limit(size))]
        if not rows:
            return
        yield rows
        last = rows[-1][list(table.columns).index(key)]


def export_table(uow: UnitOfWork, tenant_id: str, name: str, table: Table, out: Path, *,
                 chunk_size: int = CHUNK_SIZE, progress: Progress | None = None) -> Written:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("part-*.parquet"):
        stale.unlink()
    columns = list(table.columns)
    types = [_polars_type(c) for c in columns]
    schema = {c.name: kind for c, (kind, _) in zip(columns, types, strict=True)}
    total = uow.session.scalar(select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)) or 0
    written = files = 0
    for rows in _chunks(uow, table, tenant_id, chunk_size):
        data = {c.name: [convert(row[i]) for row in rows] for i, (c, (_, convert)) in enumerate(zip(columns, types,
                                                                                                    strict=True))}
        pl.DataFrame(data, schema=schema).write_parquet(folder / f"part-{files:05d}.parquet")
        files += 1
        written += len(rows)
        if progress:
            progress(name, written, total)
    if files == 0:
        # An empty table still gets a file, so that readers find its columns.
        pl.DataFrame(schema=schema).write_parquet(folder / "part-00000.parquet")
        files = 1
        if progress:
            progress(name, 0, 0)
    return Written(name, written, files, folder)


def export_all(uow: UnitOfWork, tenant_id: str, out: Path, *, chunk_size: int = CHUNK_SIZE,
               progress: Progress | None = None) -> list[Written]:
    return [export_table(uow, tenant_id, name, table, out, chunk_size=chunk_size, progress=progress)
            for name, table in TABLES]
