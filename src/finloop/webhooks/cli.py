"""``finloop webhooks``: look at endpoints and messages, and replay a message.

Operator commands: they act with the CLI's own authority and never print a signing secret.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from finloop.config import get_settings
from finloop.db.uow import Database

webhooks_app = typer.Typer(help="Merchant webhooks: endpoints, the message log, replays.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _database() -> Database:
    settings = get_settings()
    return Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)


def _tenant(db: Database, tenant: str | None) -> str:
    from sqlalchemy import select

    from finloop.tenancy.models import Tenant

    if tenant is not None:
        return tenant
    with db.uow(read_only=True) as uow:
        tenant_ids = list(uow.session.scalars(select(Tenant.id).order_by(Tenant.id).limit(2)))
    if len(tenant_ids) != 1:
        errors.print("[red]Pass --tenant: " + ("there are no tenants." if not tenant_ids
                                               else "there are several tenants.") + "[/red]")
        raise typer.Exit(2)
    return tenant_ids[0]


@webhooks_app.command("list")
def list_endpoints(tenant: str | None = typer.Option(None, "--tenant", help="Tenant id (needed when there are "
                                                                              "several)."),
                   messages: int = typer.Option(0, "--messages", min=0, max=500,
                                                help="Also show this many of the latest messages.")) -> None:
    """Show a tenant's webhook endpoints (and, with --messages N, its latest messages)."""
    from finloop.webhooks import service

    db = _database()
    tenant_id = _tenant(db, tenant)
    table = Table("endpoint", "url", "merchant", "events", "status", "description")
    with db.uow(read_only=True) as uow:
        endpoints = service.list_endpoints(uow, tenant_id, limit=500)
        for e in endpoints:
            colour = "green" if e.status == "enabled" else "yellow"
            table.add_row(e.id, e.url, e.merchant_id or "(all)", ", ".join(e.event_types) or "(all)",
                          f"[{colour}]{e.status}[/{colour}]", e.description)
        latest = service.list_messages(uow, tenant_id, limit=messages) if messages else []
        log = Table("message", "type", "merchant", "created")
        for m in latest:
            log.add_row(m.id, m.type, m.merchant_id or "", m.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table if endpoints else "No webhook endpoints.")
    if messages:
        console.print(log if latest else "No webhook messages.")


@webhooks_app.command("replay")
def replay(message_id: str,
           endpoint: str | None = typer.Option(None, "--endpoint", help="Only this endpoint (default: every "
                                                                        "endpoint subscribed to the message).")
           ) -> None:
    """Send a message again (same webhook-id, fresh signature); the worker delivers it."""
    from finloop.core.errors import FinloopError
    from finloop.webhooks import service

    db = _database()
    with db.uow() as uow:
        tenant_id = service.find_message_tenant(uow, message_id)
        if tenant_id is None:
            errors.print(f"[red]No such webhook message: {message_id}.[/red]")
            raise typer.Exit(1)
        try:
            endpoint_ids = service.replay_message(uow, tenant_id, message_id, endpoint_id=endpoint, actor="cli")
        except FinloopError as error:
            errors.print(f"[red]{error.message}[/red]")
            raise typer.Exit(1) from error
        uow.commit()
    if not endpoint_ids:
        console.print(f"No enabled endpoint is subscribed to {message_id}; nothing to send.")
        return
    console.print(f"{message_id} will be sent again to {', '.join(endpoint_ids)}.")
