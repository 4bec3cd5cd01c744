"""`finloop settlement` commands."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import typer
from rich.console import Console

import finloop.settlement as package

if TYPE_CHECKING:
    from finloop.db.uow import Database

settlement_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
fx_rate_app = typer.Typer(help="FX rates used to settle in another currency.", no_args_is_help=True)
settlement_app.add_typer(fx_rate_app, name="fx-rate")
console = Console(stderr=True)


def _database() -> Database:
    from finloop.config import get_settings
    from finloop.db.uow import Database

    settings = get_settings()
    return Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        console.print(f"[red]{option} takes a date as YYYY-MM-DD.[/red]")
        raise typer.Exit(2) from None


@settlement_app.command("run")
def run_command(tenant: str = typer.Option(..., "--tenant", help="Tenant id."),
                on: str = typer.Option(..., "--date", help="The closed business date to settle (YYYY-MM-DD)."),
                ) -> None:
    """Settle the cohorts due on a business date and release the reserves and freezes due by then."""
    from finloop.core.errors import FinloopError
    from finloop.settlement import service

    business_date = _day(on, "--date")
    db = _database()
    try:
        with db.uow() as uow:
            result = service.run_settlement(uow, tenant, business_date=business_date)
            released = service.release_due(uow, tenant, business_date=business_date)
            uow.commit()
            summary = {"business_date": business_date.isoformat(), "batches": len(result.batches),
                       "entries": len(result.entry_ids), "deferred": result.deferred, "released": len(released)}
    except FinloopError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from error
    typer.echo(json.dumps(summary))


@settlement_app.command("statement")
def statement_command(tenant: str = typer.Option(..., "--tenant", help="Tenant id."),
                      party_kind: str = typer.Option(..., "--party-kind", help="merchant or promoter."),
                      party_id: str = typer.Option(..., "--party-id"),
                      from_on: str = typer.Option(..., "--from", help="First business date (YYYY-MM-DD)."),
                      to_on: str = typer.Option(..., "--to", help="Last business date (YYYY-MM-DD)."),
                      csv_format: bool = typer.Option(False, "--csv", help="CSV instead of JSON."),
                      ) -> None:
    """Print a party's statement."""
    from finloop.core.errors import FinloopError
    from finloop.settlement import endpoints, statement

    start, end = _day(from_on, "--from"), _day(to_on, "--to")
    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            result = statement.statement(uow, tenant, party_kind=party_kind, party_id=party_id, from_on=start,
                                         to_on=end)
    except FinloopError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from error
    typer.echo(statement.to_csv(result) if csv_format
               else endpoints.read_statement(result).model_dump_json(indent=2))


@fx_rate_app.command("add")
def fx_rate_add_command(tenant: str = typer.Option(..., "--tenant", help="Tenant id."),
                        base: str = typer.Option(..., "--base", help="The currency priced, e.g. USD."),
                        quote: str = typer.Option(..., "--quote", help="The currency of the price, e.g. CNY."),
                        rate: str = typer.Option(..., "--rate", help="Quote units per base unit, e.g. 7.2345."),
                        source: str = typer.Option(..., "--source", help="Who published the rate."),
                        as_of: str | None = typer.Option(None, "--as-of",
                                                         help="ISO instant with offset (default: now)."),
                        ) -> None:
    """Record an FX rate."""
    from finloop.core.errors import FinloopError
    from finloop.settlement import fx

    try:
        value = Decimal(rate)
    except InvalidOperation:
        console.print("[red]--rate takes a decimal such as 7.2345.[/red]")
        raise typer.Exit(2) from None
    at = None
    if as_of is not None:
        try:
            at = datetime.fromisoformat(as_of)
        except ValueError:
            console.print("[red]--as-of takes an ISO instant such as 2026-03-02T09:00:00+00:00.[/red]")
            raise typer.Exit(2) from None
    db = _database()
    try:
        with db.uow() as uow:
            row = fx.add_rate(uow, tenant, base=base, quote=quote, rate=value, source=source,
                              as_of=at or uow.clock.now())
            uow.commit()
            typer.echo(json.dumps({"id": row.id, "base": row.base, "quote": row.quote,
                                   "rate": format(row.rate, "f"), "source": row.source,
                                   "as_of": row.as_of.isoformat()}))
    except FinloopError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from error
