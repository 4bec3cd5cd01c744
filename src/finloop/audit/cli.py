"""``finloop audit``: check the hash chains of the audit log.

``verify`` exits with 1 when any chain is broken, so a cron job or CI step can alarm on tampering.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from finloop.audit import service as audit

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
console = Console()


@audit_app.command("verify")
def verify(tenant: str | None = typer.Option(None, "--tenant", help="Check only this tenant's chain.")) -> None:
    """Walk every tenant's audit chain (or one) and report the first break in each."""
    from finloop.cli import database  # the CLI root imports this module, so import it when run

    db = database()
    try:
        with db.uow(read_only=True) as uow:
            known = audit.chain_tenant_ids(uow)
            if tenant is not None and tenant not in known:
                console.print(f"[red]No tenant {tenant!r} and no audit events for it.[/red]")
                raise typer.Exit(2)
            reports = [audit.verify(uow, tenant_id) for tenant_id in ([tenant] if tenant else known)]
    finally:
        db.dispose()
    table = Table(title="Audit chains")
    table.add_column("tenant", no_wrap=True)
    for heading in ("events", "chain", "broken at seq", "reason"):
        table.add_column(heading)
    for report in reports:
        table.add_row(report.tenant_id, str(report.events), "[green]ok[/green]" if report.ok else "[red]broken[/red]",
                      str(report.broken_at_seq) if report.broken_at_seq is not None else "", report.reason or "")
    console.print(table)
    broken = [r for r in reports if not r.ok]
    if broken:
        console.print(f"[red]{len(broken)} of {len(reports)} chains are broken.[/red]")
        raise typer.Exit(1)
    console.print(f"[green]{len(reports)} chains verified.[/green]")
