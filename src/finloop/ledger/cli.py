"""``finloop export``: the books in other tools' formats."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console

from finloop.config import get_settings
from finloop.db.uow import Database

export_app = typer.Typer(help="Export the books.", no_args_is_help=True)
console = Console(stderr=True)


@export_app.command("beancount")
def export_beancount_command(
        out: str = typer.Option(..., "--out", help="File to write, or '-' for standard output."),
        tenant: str | None = typer.Option(None, "--tenant", help="Tenant id (needed when there are several)."),
) -> None:
    """Write a tenant's journal in Beancount syntax (check it with bean-check)."""
    from sqlalchemy import select

    from finloop.core.errors import FinloopError
    from finloop.ledger.export import export_beancount
    from finloop.tenancy.models import Tenant

    settings = get_settings()
    db = Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if tenant is None:
        with db.uow(read_only=True) as uow:
            tenant_ids = list(uow.session.scalars(select(Tenant.id).order_by(Tenant.id).limit(2)))
        if len(tenant_ids) != 1:
            console.print("[red]Pass --tenant: " + ("there are no tenants." if not tenant_ids
                                                    else "there are several tenants.") + "[/red]")
            raise typer.Exit(2)
        tenant = tenant_ids[0]
    try:
        if out == "-":
            with db.uow(read_only=True) as uow:
                summary = export_beancount(uow, tenant, sys.stdout)
        else:
            target = Path(out)
            # Write beside the target and rename, so a failed export never leaves half a file behind.
            handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream, db.uow(read_only=True) as uow:
                    summary = export_beancount(uow, tenant, stream)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
    except FinloopError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from error
    console.print(f"{summary.entries} entries, {summary.postings} postings, {summary.accounts} accounts, "
                  f"{summary.balance_assertions} balance assertions" + ("" if out == "-" else f" -> {out}"))
