"""`finloop clearing` commands: fee schedules and the daily clearing batches per channel."""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console
from rich.table import Table

import finloop.clearing as package
from finloop.db.uow import Database

clearing_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date is YYYY-MM-DD", param_hint="--date") from None


@clearing_app.command("schedules")
def schedules(tenant: str = typer.Option(..., help="The tenant id."),
              channel: str | None = typer.Option(None, help="Only this channel's schedules.")) -> None:
    """List a tenant's fee schedules, newest first."""
    from finloop.clearing import service

    with _database().uow(read_only=True) as uow:
        table = Table("id", "channel", "method", "currency", "kind", "rate", "fixed", "min", "max", "bearer",
                      "refunds", "from", "status")
        for s in service.list_schedules(uow, tenant, channel=channel, limit=500)[:500]:
            table.add_row(s.id, s.channel_code, s.method or "*", s.currency or "*", s.kind, f"{s.rate.normalize():f}",
                          str(s.fixed_amount), str(s.minimum_amount or ""), str(s.maximum_amount or ""), s.bearer,
                          s.refund_fee_policy, s.effective_from.isoformat(), s.status)
    console.print(table)


def _batch_table(batches: list) -> Table:  # type: ignore[type-arg]
    table = Table("id", "channel", "currency", "date", "payments", "gross", "fees", "refunds", "refunded",
                  "fee back", "chargebacks", "expected net", "settled", "status")
    for b in batches:
        table.add_row(b.id, b.channel_code, b.currency, b.business_date.isoformat(), str(b.payments_count),
                      str(b.payments_gross_amount), str(b.payment_fees_amount), str(b.refunds_count),
                      str(b.refunds_gross_amount), str(b.refund_fee_returns_amount), str(b.chargebacks_amount),
                      str(b.expected_net_amount), "" if b.settled_amount is None else str(b.settled_amount), b.status)
    return table


@clearing_app.command("run")
def run(tenant: str = typer.Option(..., help="The tenant id."),
        date_: str = typer.Option(..., "--date", help="The business date, YYYY-MM-DD.")) -> None:
    """Build (or refresh) the clearing batches of a business date (the worker does this after the close)."""
    from finloop.clearing import service

    day = _day(date_)
    assert day is not None
    with _database().uow() as uow:
        batches = service.build_batches(uow, tenant, business_date=day)
        table = _batch_table(batches)
        uow.commit()
    console.print(table)
    console.print(f"{len(batches)} clearing batches for {day}")


@clearing_app.command("batches")
def batches(tenant: str = typer.Option(..., help="The tenant id."),
            date_: str | None = typer.Option(None, "--date", help="Only this business date, YYYY-MM-DD.")) -> None:
    """List clearing batches, newest first."""
    from finloop.clearing import service

    day = _day(date_)
    with _database().uow(read_only=True) as uow:
        table = _batch_table(service.list_batches(uow, tenant, from_on=day, to_on=day, limit=500)[:500])
    console.print(table)
