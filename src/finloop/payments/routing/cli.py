"""`finloop routing`: show and set per-merchant routing configs, and see channel health.

``MERCHANT`` is a merchant id, or ``default`` for the tenant-wide config. Changes are made with admin
authority as the actor ``cli`` and are written to the audit chain like changes through the API.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from finloop.config import get_settings
from finloop.core.errors import FinloopError
from finloop.db.uow import Database

routing_app = typer.Typer(help="Routing: per-merchant strategies, success-rate windows, channel health and "
                               "circuit breakers, stored decisions.", no_args_is_help=True)
out = Console(emoji=False)
err = Console(stderr=True, emoji=False)

TenantOption = typer.Option(None, "--tenant", help="Tenant id (needed when there are several).")


def _database() -> Database:
    settings = get_settings()
    return Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)


def _tenant(db: Database, tenant: str | None) -> str:
    from sqlalchemy import select

    from finloop.tenancy.models import Tenant

    with db.uow(read_only=True) as uow:
        if tenant is not None:
            if uow.session.get(Tenant, tenant) is None:
                err.print(f"[red]No tenant {tenant}.[/red]")
                raise typer.Exit(1)
            return tenant
        tenant_ids = list(uow.session.scalars(select(Tenant.id).order_by(Tenant.id).limit(2)))
    if len(tenant_ids) != 1:
        err.print("[red]Pass --tenant: " + ("there are no tenants." if not tenant_ids
                                            else "there are several tenants.") + "[/red]")
        raise typer.Exit(2)
    return tenant_ids[0]


def _merchant(merchant: str) -> str | None:
    return None if merchant == "default" else merchant


@routing_app.command("show")
def show(merchant: str = typer.Argument(..., help="Merchant id, or 'default'."),
         tenant: str | None = TenantOption) -> None:
    """Print the routing config that applies to MERCHANT, as JSON (its source and version on stderr)."""
    from finloop.payments.routing import service

    db = _database()
    tenant_id = _tenant(db, tenant)
    try:
        with db.uow(read_only=True) as uow:
            record = service.get_config(uow, tenant_id, _merchant(merchant))
    except FinloopError as error:
        err.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from error
    err.print(f"source: {record.source}, version {record.version}")
    typer.echo(json.dumps(record.config.model_dump(mode="json"), indent=2))


@routing_app.command("set")
def set_config(merchant: str = typer.Argument(..., help="Merchant id, or 'default'."),
               file: Path = typer.Option(..., "--file", exists=True, dir_okay=False, readable=True,
                                         help="A JSON file holding the whole config."),
               tenant: str | None = TenantOption) -> None:
    """Replace MERCHANT's routing config with the one in --file (validated; audited)."""
    from finloop.payments.routing import service
    from finloop.tenancy.service import system_principal

    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        err.print(f"[red]{file} is not valid JSON: {error}[/red]")
        raise typer.Exit(2) from error
    if not isinstance(body, dict):
        err.print("[red]A config is a JSON object.[/red]")
        raise typer.Exit(2)
    db = _database()
    tenant_id = _tenant(db, tenant)
    try:
        config = service.parse_config(body)
        with db.uow() as uow:
            record = service.set_config(uow, system_principal(tenant_id, "cli"), _merchant(merchant), config)
            uow.commit()
    except FinloopError as error:
        err.print(f"[red]{error.code}: {error.message}[/red]")
        raise typer.Exit(1) from error
    out.print(f"routing config for {merchant} is now version {record.version}")


@routing_app.command("health")
def health(tenant: str | None = TenantOption) -> None:
    """Every channel's circuit breaker."""
    from finloop.payments.routing import service

    db = _database()
    tenant_id = _tenant(db, tenant)
    with db.uow(read_only=True) as uow:
        rows = service.channel_health(uow, tenant_id)
    table = Table("channel", "state", "calls", "failures", "error rate", "consecutive", "opened at")
    for row in rows:
        table.add_row(row.channel, row.state.value, str(row.calls), str(row.failures), f"{row.error_rate:.2f}",
                      str(row.consecutive_failures), row.opened_at.isoformat() if row.opened_at else "")
    out.print(table)
    if not rows:
        out.print("no outcomes recorded yet")
