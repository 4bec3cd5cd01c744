"""`finloop reconciliation` commands."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

import finloop.reconciliation as package
from finloop.core.errors import FinloopError
from finloop.db.uow import Database

reconciliation_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


def _day(value: str | None, hint: str = "--date") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date is YYYY-MM-DD", param_hint=hint) from None


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.code}[/red]: {error.message}")
    return typer.Exit(code=1)


@reconciliation_app.command("import")
def import_command(tenant: str = typer.Option(..., help="The tenant id."),
                   format: str = typer.Option(..., help="wechat, alipay, stripe, generic, camt053, mt940 or csv."),
                   source: str = typer.Option(..., help="The channel code or bank account name (custody: custody)."),
                   file: Path = typer.Option(..., exists=True, dir_okay=False, readable=True, help="The file."),
                   date_: str | None = typer.Option(None, "--date", help="Business date YYYY-MM-DD."),
                   mapping: str | None = typer.Option(None, help="The saved mapping id (format csv).")) -> None:
    """Import a channel bill or bank statement; a bad file is rejected with its line and reason."""
    from finloop.reconciliation import service

    content = file.read_bytes()
    with _database().uow() as uow:
        try:
            record = service.import_file(uow, tenant, format=format, content=content, source=source,
                                         business_date=_day(date_), filename=file.name, mapping_id=mapping)
        except FinloopError as error:
            raise _fail(error) from None
        uow.commit()
        console.print(f"{record.id} {record.format} {record.source} {record.business_date} "
                      f"{record.line_count} lines")


@reconciliation_app.command("files")
def files_command(tenant: str = typer.Option(..., help="The tenant id."),
                  source: str | None = typer.Option(None, help="Only this source.")) -> None:
    """List imported files, newest first."""
    from finloop.reconciliation import service

    with _database().uow(read_only=True) as uow:
        table = Table("id", "source", "kind", "format", "date", "lines", "currency", "closing", "imported")
        for f in service.list_files(uow, tenant, source=source, limit=500)[:500]:
            table.add_row(f.id, f.source, f.source_kind, f.format, f.business_date.isoformat(), str(f.line_count),
                          f.currency or "", "" if f.closing_balance is None else str(f.closing_balance),
                          f.imported_at.isoformat())
    console.print(table)


@reconciliation_app.command("mapping")
def mapping_command(tenant: str = typer.Option(..., help="The tenant id."),
                    name: str = typer.Option(..., help="A name unique for the tenant."),
                    columns: str = typer.Option(..., help='JSON: canonical field → header, e.g. '
                                                '\'{"value_on": "Date", "amount": "Amount"}\'.'),
                    delimiter: str = typer.Option(",", help="One character."),
                    date_format: str = typer.Option("%Y-%m-%d", help="strftime format of value_on."),
                    amount_style: str = typer.Option("major", help="major (12.34) or minor (1234)."),
                    sign: str = typer.Option("signed", help="signed or direction."),
                    credit_values: str = typer.Option("credit", help="Comma-separated credit values (direction)."),
                    debit_values: str = typer.Option("debit", help="Comma-separated debit values (direction)."),
                    currency: str | None = typer.Option(None, help="Default currency when no currency column."),
                    ) -> None:
    """Save a generic CSV column mapping."""
    from finloop.reconciliation import service

    try:
        parsed = json.loads(columns)
    except json.JSONDecodeError:
        raise typer.BadParameter("columns is a JSON object", param_hint="--columns") from None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise typer.BadParameter("columns is a JSON object of strings", param_hint="--columns")
    with _database().uow() as uow:
        try:
            mapping = service.save_mapping(
                uow, tenant, name=name, columns=parsed, delimiter=delimiter, date_format=date_format,
                amount_style=amount_style, sign=sign, credit_values=credit_values.split(","),
                debit_values=debit_values.split(","), default_currency=currency)
        except FinloopError as error:
            raise _fail(error) from None
        uow.commit()
        console.print(mapping.id)


@reconciliation_app.command("safeguard")
def safeguard_command(tenant: str = typer.Option(..., help="The tenant id."),
                      date_: str | None = typer.Option(None, "--date", help="Business date (default: today's)."),
                      source: str = typer.Option("custody", help="The custody account's statement source.")) -> None:
    """Run the safeguarding check: custody statement balance against what the ledger owes, per currency."""
    from finloop.reconciliation import safeguarding
    from finloop.tenancy.service import current_business_date

    with _database().uow() as uow:
        on = _day(date_) or current_business_date(uow, tenant)
        try:
            checks = safeguarding.run_check(uow, tenant, on=on, custody_source=source)
        except FinloopError as error:
            raise _fail(error) from None
        uow.commit()
        table = Table("currency", "date", "statement", "bank balance", "owed", "shortfall", "status")
        for c in checks:
            table.add_row(c.currency, c.checked_on.isoformat(),
                          c.statement_on.isoformat() if c.statement_on else "",
                          "" if c.bank_balance is None else str(c.bank_balance), str(c.owed_amount),
                          str(c.shortfall_amount), c.status)
    console.print(table)
    if any(c.status == "shortfall" for c in checks):
        raise typer.Exit(code=2)
