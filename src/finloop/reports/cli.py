"""``finloop reports ...`` and ``finloop export parquet``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.db.uow import Database

reports_app = typer.Typer(help="Reports: financial, operations, risk, credit, regulatory.", no_args_is_help=True)
console = Console(emoji=False)

TENANT = typer.Option(..., "--tenant", help="The tenant id.")


def _database() -> Database:
    from finloop.cli import database

    return database()


def _fail(error: FinloopError) -> typer.Exit:
    where = f" ({error.param})" if error.param else ""
    console.print(f"{error.code}{where}: {error.message}", markup=False, highlight=False)
    return typer.Exit(1)


@reports_app.command("list")
def list_command() -> None:
    """The reports there are."""
    from finloop.reports import service

    table = Table("name", "group", "title", "parameters")
    for report in service.REPORTS:
        table.add_row(report.name, report.group, report.title, ", ".join(["from", "to", *report.uses]))
    console.print(table)


@reports_app.command("show")
def show_command(name: str = typer.Argument(..., help="The report, e.g. income-statement (see `reports list`)."),
                 tenant: str = TENANT,
                 from_: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD (UTC)."),
                 to: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD (UTC); default today."),
                 currency: str | None = typer.Option(None, help="Only this currency."),
                 threshold_amount: str | None = typer.Option(None, help="large-transactions: minor units."),
                 months: str | None = typer.Option(None, help="revenue-forecast, stress-test: months ahead."),
                 output: str = typer.Option("table", "--format", help="table, csv or json.")) -> None:
    """Print one report as a table, CSV or JSON."""
    from finloop.reports import service
    from finloop.reports.endpoints import read

    if output not in ("table", "csv", "json"):
        raise typer.BadParameter("table, csv or json", param_hint="--format")
    values = {"from": from_, "to": to, "currency": currency, "threshold_amount": threshold_amount,
              "months": months}
    try:
        report = service.get_report(name)
        with _database().uow(read_only=True) as uow:
            result = read(report, uow, tenant, service.parse_params(values, uow.clock.now().date()))
    except FinloopError as error:
        raise _fail(error) from None
    names = [c.name for c in report.columns]
    if output == "json":
        typer.echo(result.model_dump_json(by_alias=True, indent=2))
    elif output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([_text(row.get(n)) for n in names] for row in result.rows)
        typer.echo(buffer.getvalue(), nl=False)
    else:
        table = Table(*names, title=f"{report.title} · {result.params.from_} to {result.params.to}")
        for row in result.rows:
            table.add_row(*(_text(row.get(n)) for n in names))
        console.print(table)
        for note in result.notes:
            console.print(note, markup=False, highlight=False)


def _text(value: Any) -> str:
    return "" if value is None else str(value) if not isinstance(value, dict | list) else json.dumps(value)


def export_parquet(tenant: str = TENANT,
                   out: Path = typer.Option(..., "--out", help="The folder to write into (made if missing)."),
                   chunk_size: int = typer.Option(50_000, min=1, help="Rows per part file.")) -> None:
    """Write the ledger, payments, loans and decisions as Parquet files for a data warehouse."""
    from finloop.reports.export import export_all

    columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, TaskID] = {}

        def advance(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total or 1)
            progress.update(tasks[name], completed=done if total else 1)

        with _database().uow(read_only=True) as uow:
            written = export_all(uow, tenant, out, chunk_size=chunk_size, progress=advance)
    for item in written:
        console.print(f"{item.name}: {item.rows} rows in {item.files} file(s) under {item.path}", markup=False,
                      highlight=False)
