"""`finloop payments` commands: the operator's view of payments and the channels' open questions."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from finloop.db.uow import Database

payments_app = typer.Typer(help="Payments: channels, payments, and resolving open attempts.", no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


@payments_app.command("channels")
def list_channels(tenant: str = typer.Option(..., help="The tenant id.")) -> None:
    """List a tenant's channels (never their credentials)."""
    from finloop.payments import service

    with _database().uow(read_only=True) as uow:
        channels = service.list_channels(uow, tenant)
        table = Table("code", "provider", "methods", "currencies", "fee", "status")
        for channel in channels:
            table.add_row(channel.code, channel.provider, ",".join(channel.methods), ",".join(channel.currencies),
                          f"{channel.fee_rate} + {channel.fee_fixed_amount}", channel.status)
    console.print(table)


@payments_app.command("show")
def show_payment(payment_id: str, tenant: str = typer.Option(..., help="The tenant id.")) -> None:
    """A payment with its attempts: where it went, what each channel answered."""
    from finloop.payments import service

    with _database().uow(read_only=True) as uow:
        payment = service.get_payment(uow, tenant, payment_id)
        console.print(f"{payment.id} {payment.status} {payment.amount} {payment.currency} "
                      f"channel={payment.channel} captured={payment.captured_amount} "
                      f"refunded={payment.refunded_amount}")
        table = Table("#", "attempt", "channel", "status", "latency ms", "error")
        for attempt in service.list_attempts(uow, tenant, payment_id):
            table.add_row(str(attempt.sequence), attempt.id, attempt.channel, attempt.status,
                          str(attempt.latency_ms or ""), attempt.error_code or "")
    console.print(table)


@payments_app.command("resolve")
def resolve(limit: int = typer.Option(500, min=1, max=10_000)) -> None:
    """Query the channels about every attempt and refund whose result is overdue (the worker does this too)."""
    from finloop.payments import flows

    asked = flows.resolve_open(_database(), limit=limit)
    console.print(f"queried {asked} open attempts and refunds")
