"""`finloop risk network` commands (registered on the risk app): show a customer's component, rebuild the
components from the links."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.risk.cli import _database, _fail, console, risk_app

network_app = typer.Typer(help="The association network: customers linked by shared values.", no_args_is_help=True)
risk_app.add_typer(network_app, name="network")


@network_app.command("show")
def show(customer: str = typer.Argument(..., help="The customer id (as in the events)."),
         tenant: str = typer.Option(..., help="The tenant id."),
         as_json: bool = typer.Option(False, "--json", help="Print the component as JSON.")) -> None:
    """A customer's component: size, fraud members, members, the values that link them (masked), hubs."""
    from finloop.risk.network import service
    from finloop.risk.network.schemas import read_network

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            read = read_network(service.view(uow, tenant, customer))
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    if as_json:
        typer.echo(read.model_dump_json(indent=2))
        return
    component = read.component
    console.print(f"{read.customer_id}{' (fraud: ' + ', '.join(read.fraud_sources) + ')' if read.is_fraud else ''} "
                  f"is in component {component.id}: {component.size} customer(s), {component.fraud_members} known "
                  f"fraud; hub limit {read.hub_limit}", markup=False, highlight=False)
    members = Table("member", "fraud", "first seen", "last seen", title="members")
    for m in component.members:
        members.add_row(m.customer_id, "yes" if m.is_fraud else "", _when(m.first_seen_at), _when(m.last_seen_at))
    console.print(members)
    if component.members_truncated:
        console.print(f"... {component.members_total - len(component.members)} more", markup=False)
    values = Table("kind", "value", "customers", "rank", "hub", "last seen", title="this customer's values")
    for kind, items in read.links.items():
        for v in items:
            values.add_row(kind, v.value, str(v.customers), str(v.rank or ""), "hub" if v.hub else "",
                           _when(v.last_seen_at))
    console.print(values)
    shared = Table("kind", "value", "members carrying it", "customers", title="shared inside the component")
    for kind, items in component.shared.items():
        for v in items:
            shared.add_row(kind, v.value, str(v.carriers), str(v.customers))
    console.print(shared)
    if component.hubs:
        hubs = Table("kind", "value", "customers", "members carrying it", title="hubs (link nobody further)")
        for v in component.hubs:
            hubs.add_row(v.kind, v.value, str(v.customers), str(v.carriers))
        console.print(hubs)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


@network_app.command("rebuild")
def rebuild(tenant: str = typer.Option(..., help="The tenant id.")) -> None:
    """Recompute the tenant's components from its links with the hub limit in force (after changing
    FINLOOP_RISK_NETWORK_HUB_LIMIT) and the fraud counts from the marks; one transaction."""
    from finloop.risk.network import service

    db = _database()
    try:
        with Progress(TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            tasks = {"links": bar.add_task("links", total=None), "components": bar.add_task("components", total=None)}

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(tasks[stage], completed=done, total=total)

            with db.uow() as uow:
                result = service.rebuild(uow, tenant, progress=progress)
                uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    finally:
        db.dispose()
    console.print(f"{result.customers} customers, {result.links} links (hub limit {result.hub_limit}): "
                  f"{result.components} components, the largest {result.largest}; {result.fraud_members} known fraud; "
                  f"{result.relabelled} customer(s) moved", markup=False, highlight=False)
