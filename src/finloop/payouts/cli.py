"""`finloop payouts` commands."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

import finloop.payouts as package
from finloop.db.uow import Database

payouts_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


@payouts_app.command("list")
def list_payouts(tenant: str = typer.Option(..., help="The tenant id."),
                 status: str | None = typer.Option(None, help="Only payouts in this status."),
                 limit: int = typer.Option(50, min=1, max=500)) -> None:
    """A tenant's payouts, newest first (account numbers are never shown)."""
    from finloop.payouts import service

    with _database().uow(read_only=True) as uow:
        payouts = service.list_payouts(uow, tenant, status=status, limit=limit)[:limit]
        table = Table("payout", "party", "amount", "status", "attempts", "executed", "bank ref", "failure")
        for p in payouts:
            table.add_row(p.id, f"{p.party_kind}:{p.party_id}", f"{p.amount} {p.currency}", p.status,
                          str(p.attempts), str(p.executed_on or ""), p.bank_reference or "", p.error_code or "")
    console.print(table)


@payouts_app.command("process")
def process(limit: int = typer.Option(500, min=1, max=10_000)) -> None:
    """One round of the payouts.process job: approvals, sending, querying, retries and returns."""
    from finloop.payouts import flows

    touched = flows.process(_database(), limit=limit)
    console.print(f"processed {touched} payouts")
