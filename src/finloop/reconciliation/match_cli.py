"""`finloop reconciliation` commands of the matching engine (registered on the reconciliation app):
``run``, ``discrepancies`` and ``statement``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.db.uow import Database
from finloop.reconciliation.cli import reconciliation_app

console = Console(emoji=False)


def _date(value: str, hint: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date is YYYY-MM-DD", param_hint=hint) from None


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.code}[/red]: {error.message}")
    return typer.Exit(code=1)


def _database() -> Database:
    from finloop.cli import database

    return database()


@reconciliation_app.command("run")
def run_command(tenant: str = typer.Option(..., help="The tenant id."),
                source: str = typer.Option(..., help="The channel code, or bank:<account> / the bank source name."),
                date_: str = typer.Option(..., "--date", help="Business date YYYY-MM-DD.")) -> None:
    """Match a source's imported lines of a business date against our records (idempotent)."""
    from finloop.reconciliation import discrepancies

    day = _date(date_, "--date")
    with _database().uow() as uow:
        try:
            run = discrepancies.run_reconciliation(uow, tenant, source=source, business_date=day)
        except FinloopError as error:
            raise _fail(error) from None
        uow.commit()
        typer.echo(json.dumps({"id": run.id, "source": run.source, "business_date": run.business_date.isoformat(),
                               "lines": run.lines_count, "records": run.records_count,
                               "matched": run.matched_count, "late_matched": run.late_matched_count,
                               "counts": run.counts}, indent=2, sort_keys=True))


@reconciliation_app.command("discrepancies")
def discrepancies_command(tenant: str = typer.Option(..., help="The tenant id."),
                          status: str | None = typer.Option(None, help="open, investigating or resolved."),
                          class_: str | None = typer.Option(None, "--class", help="A discrepancy class."),
                          source: str | None = typer.Option(None, help="Only this source."),
                          limit: int = typer.Option(100, min=1, max=500, help="At most this many.")) -> None:
    """List discrepancies, newest first."""
    from finloop.reconciliation import discrepancies

    with _database().uow(read_only=True) as uow:
        try:
            items = discrepancies.list_discrepancies(uow, tenant, status=status, discrepancy_class=class_,
                                                     source=source, limit=limit)[:limit]
        except FinloopError as error:
            raise _fail(error) from None
        table = Table("id", "date", "source", "class", "status", "reference", "currency", "difference", "assignee")
        for d in items:
            table.add_row(d.id, d.business_date.isoformat(), d.source, d.discrepancy_class, d.status,
                          d.record_id or d.our_reference or d.channel_reference or "", d.currency,
                          str(d.difference), d.assignee or "")
    console.print(table)


@reconciliation_app.command("statement")
def statement_command(tenant: str = typer.Option(..., help="The tenant id."),
                      period: str = typer.Option("daily", help="daily, weekly or monthly."),
                      on: str = typer.Option(..., help="A day of the period, YYYY-MM-DD."),
                      format: str = typer.Option("csv", help="json, csv or xlsx."),
                      out: Path | None = typer.Option(None, help="Write here (default: stdout; xlsx needs --out).")
                      ) -> None:
    """The unified statement of a day, week or month across all channels."""
    from finloop.reconciliation import statements

    try:
        chosen_period, chosen_format = statements.Period(period), statements.Format(format)
    except ValueError:
        raise typer.BadParameter("period is daily|weekly|monthly, format json|csv|xlsx") from None
    if chosen_format == statements.Format.XLSX and out is None:
        raise typer.BadParameter("xlsx needs --out", param_hint="--out")
    with _database().uow(read_only=True) as uow:
        statement = statements.build(uow, tenant, period=chosen_period, on=_date(on, "--on"))
    if chosen_format == statements.Format.JSON:
        content = json.dumps(statements.to_json(statement), indent=2).encode()
    elif chosen_format == statements.Format.CSV:
        content = statements.to_csv(statement)
    else:
        content = statements.to_xlsx(statement)
    if out is None:
        typer.echo(content.decode())
    else:
        out.write_bytes(content)
        console.print(f"{out} {len(content)} bytes, {statement.lines.height} lines "
                      f"({statement.from_on} to {statement.to_on})")
