"""`finloop credit debits` commands: list a tenant's direct debit attempts and run one round of direct debits
(settle finished repayment payments, send the attempts due now) as the ``credit.direct_debit`` job does."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from finloop.db.uow import Database

debits_app = typer.Typer(help="Direct debits of loans: the attempts and a manual round.", no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


@debits_app.command("list")
def list_debits(tenant: str = typer.Option(..., help="The tenant id."),
                loan: str | None = typer.Option(None, help="Only this loan's attempts."),
                status: str | None = typer.Option(None, help="pending, processing, succeeded or failed."),
                limit: int = typer.Option(50, min=1, max=500, help="How many, newest first.")) -> None:
    """List direct debit attempts, newest first."""
    from finloop.credit.repayment_channels import service

    with _database().uow(read_only=True) as uow:
        rows = service.list_debits(uow, tenant, loan_id=loan, status=status, limit=limit)[:limit]
        table = Table("id", "loan", "due on", "attempt", "amount", "status", "failure", "next retry",
                      title=f"Direct debits of {tenant}")
        for row in rows:
            table.add_row(row.id, row.loan_id, row.due_on.isoformat(), str(row.attempt_number),
                          f"{row.amount} {row.currency}", row.status, row.failure_code or "",
                          row.next_retry_at.isoformat() if row.next_retry_at else "")
    console.print(table)


@debits_app.command("run")
def run_debits(limit: int = typer.Option(200, min=1, max=1000, help="At most this many loans per step.")) -> None:
    """One round of direct debits for every tenant: settle, confirm what was left recorded, send what is due."""
    from finloop.credit.repayment_channels import flows

    touched = flows.run_direct_debits(_database(), limit=limit)
    console.print(f"{touched} repayment payments settled or debits sent")
