"""The ``finloop`` command line: set-up, administration, serving, the worker, demo and benchmarks."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from finloop.audit.cli import audit_app
from finloop.bench.cli import bench_app
from finloop.clearing.cli import clearing_app
from finloop.config import get_settings
from finloop.console.cli import console_app
from finloop.credit.cli import credit_app
from finloop.db.uow import Database
from finloop.ledger.cli import export_app
from finloop.onboarding.cli import onboarding_app
from finloop.payments.cli import payments_app
from finloop.payments.connectors.cli import sandbox_app
from finloop.payments.routing.cli import routing_app
from finloop.payouts.cli import payouts_app
from finloop.reconciliation import match_cli
from finloop.reconciliation.cli import reconciliation_app
from finloop.reports.cli import export_parquet, reports_app
from finloop.risk.aml import cli as aml_cli
from finloop.risk.cases import cli as cases_cli
from finloop.risk.cli import risk_app
from finloop.risk.ml import cli as ml_cli
from finloop.risk.network import cli as network_cli
from finloop.settlement.cli import settlement_app
from finloop.splits.cli import splits_app
from finloop.vault.cli import vault_app
from finloop.wealth.cli import wealth_app
from finloop.webhooks.cli import webhooks_app
from finloop.worker.cli import jobs_app, worker

app = typer.Typer(help="finloop: fund infrastructure with a double-entry ledger.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
admin_app = typer.Typer(help="Tenants, API keys and staff users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(bench_app, name="bench")
app.add_typer(audit_app, name="audit")
app.add_typer(export_app, name="export")
app.add_typer(jobs_app, name="jobs")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(payments_app, name="payments")
app.add_typer(routing_app, name="routing")
app.add_typer(vault_app, name="vault")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(clearing_app, name="clearing")
app.add_typer(splits_app, name="splits")
app.add_typer(settlement_app, name="settlement")
app.add_typer(payouts_app, name="payouts")
app.add_typer(reconciliation_app, name="reconciliation")
app.add_typer(wealth_app, name="wealth")
app.add_typer(risk_app, name="risk")
app.add_typer(onboarding_app, name="onboarding")
app.add_typer(credit_app, name="credit")
app.add_typer(reports_app, name="reports")
app.add_typer(console_app, name="console")
export_app.command("parquet")(export_parquet)
app.command("worker")(worker)
assert match_cli  # its commands register themselves on the reconciliation app
assert aml_cli and cases_cli and ml_cli and network_cli  # theirs on the risk app
console = Console(emoji=False)


def database() -> Database:
    settings = get_settings()
    return Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from finloop.db.migrate import upgrade

    upgrade(get_settings().database_url, revision)
    console.print(f"[green]Database at {revision}.[/green]")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision the database is at."""
    from finloop.db.migrate import current_revision, head_revision

    url = get_settings().database_url
    db = database()
    console.print(f"current: {current_revision(db.engine)}  head: {head_revision(url)}")


@admin_app.command("create-tenant")
def create_tenant(name: str, timezone: str = typer.Option("UTC", help="IANA zone of the tenant's business day."),
                  cutoff: str = typer.Option("00:00", help="Local time HH:MM at which the business day ends."),
                  ) -> None:
    """Create a tenant and print its first API key (shown once)."""
    from finloop.db.migrate import upgrade
    from finloop.tenancy import service as tenancy
    from finloop.tenancy.service import Role

    upgrade(get_settings().database_url)
    db = database()
    with db.uow() as uow:
        tenant = tenancy.create_tenant(uow, name=name, timezone=timezone, cutoff=cutoff, actor="cli")
        key, secret = tenancy.issue_api_key(uow, tenant.id, name="initial", role=Role.ADMIN, actor="cli")
        uow.commit()
    console.print(f"tenant [bold]{tenant.id}[/bold] ({tenant.name})")
    console.print(f"API key {key.id}: [bold]{secret}[/bold]")
    console.print("[yellow]Store the key now: it is not shown again.[/yellow]")


@admin_app.command("list-tenants")
def list_tenants() -> None:
    from finloop.tenancy import service as tenancy

    with database().uow(read_only=True) as uow:
        table = Table("id", "name", "timezone", "cut-off")
        for tenant in tenancy.list_tenants(uow):
            table.add_row(tenant.id, tenant.name, tenant.timezone, tenant.cutoff)
    console.print(table)


@admin_app.command("create-key")
def create_key(tenant_id: str, name: str = typer.Option("cli"),
               role: str = typer.Option("admin", help="admin, finance, risk_analyst, support or auditor")) -> None:
    """Issue another API key for a tenant (shown once)."""
    from finloop.tenancy import service as tenancy
    from finloop.tenancy.service import Role

    with database().uow() as uow:
        tenancy.get_tenant(uow, tenant_id)
        key, secret = tenancy.issue_api_key(uow, tenant_id, name=name, role=Role(role), actor="cli")
        uow.commit()
    console.print(f"API key {key.id}: [bold]{secret}[/bold]")


@admin_app.command("revoke-key")
def revoke_key(tenant_id: str, key_id: str) -> None:
    """Revoke an API key at once."""
    from finloop.core.errors import FinloopError
    from finloop.tenancy import service as tenancy

    try:
        with database().uow() as uow:
            tenancy.revoke_api_key(uow, tenancy.system_principal(tenant_id, "cli"), key_id)
            uow.commit()
    except FinloopError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from error
    console.print(f"API key {key_id} revoked.")


@admin_app.command("rotate-key")
def rotate_key(tenant_id: str, key_id: str,
               grace_seconds: int = typer.Option(0, min=0, help="How long the old key keeps working.")) -> None:
    """Replace an API key; the new secret is shown once."""
    from finloop.core.errors import FinloopError
    from finloop.tenancy import service as tenancy

    try:
        with database().uow() as uow:
            key, secret = tenancy.rotate_api_key(uow, tenancy.system_principal(tenant_id, "cli"), key_id,
                                                 grace_seconds=grace_seconds)
            uow.commit()
    except FinloopError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(1) from error
    console.print(f"API key {key.id} replaces {key_id}: [bold]{secret}[/bold]")
    console.print("[yellow]Store the key now: it is not shown again.[/yellow]")


@admin_app.command("create-user")
def create_user(tenant_id: str, email: str, roles: list[str] = typer.Option(..., "--role"),
                password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True)) -> None:
    """Create a staff user with one or more roles."""
    from finloop.tenancy import service as tenancy

    with database().uow() as uow:
        tenancy.get_tenant(uow, tenant_id)
        user = tenancy.create_user(uow, tenant_id, email=email, password=password, roles=roles, actor="cli")
        uow.commit()
    console.print(f"user {user.id} <{user.email}> roles {', '.join(user.roles)}")


@app.command()
def demo(orders: int = typer.Option(2_000, min=1, max=1_000_000, help="How many orders to simulate.")) -> None:
    """Run the closed loop on the configured database (SQLite file by default) and prove the books."""
    from finloop.logging import configure
    from finloop.sim.demo import DemoRefused, run_demo

    configure("WARNING")  # the demo tells its own story; the services' info logs would drown it
    try:
        result = run_demo(get_settings(), console, orders=orders)
    except DemoRefused as refused:
        console.print(f"[red]{refused}[/red]")
        raise typer.Exit(2) from refused
    if not (result["trial_balanced"] and result["integrity"] and result["beancount_ok"]):
        raise typer.Exit(1)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
          port: int = typer.Option(8000), workers: int = typer.Option(1),
          sandbox: bool = typer.Option(False, "--sandbox", help="Also answer, in this process, the calls to the "
                                       "in-process sandbox channels the demo registered (one worker).")) -> None:
    """Apply migrations and serve the API (/v1) and the web console (/console)."""
    import uvicorn

    from finloop.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url)
    if not sandbox:
        uvicorn.run("finloop.asgi:app", host=host, port=port, workers=workers, log_level="warning",
                    access_log=False)
        return
    from finloop.payments import gateway
    from finloop.payments.connectors.sandbox.app import demo_channels_sandbox

    box = demo_channels_sandbox(database())
    console.print(f"sandbox channels answered in this process: {', '.join(sorted(box.providers)) or 'none'}")
    with gateway.use_http_client(box.client):
        uvicorn.run("finloop.asgi:app", host=host, port=port, workers=1, log_level="warning", access_log=False)


if __name__ == "__main__":
    app()
