"""`finloop risk` commands of aml (registered on the risk app): monitoring runs, screening, watchlists."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.risk.cli import _database, _fail, _instant, console, risk_app


@risk_app.command("aml-run")
def aml_run(tenant: str = typer.Option(..., help="The tenant id."),
            from_: str = typer.Option(..., "--from", help="Start (inclusive), YYYY-MM-DD or ISO time."),
            to: str = typer.Option(..., "--to", help="End (exclusive), YYYY-MM-DD or ISO time.")) -> None:
    """Run the AML monitoring scenarios over a range; new alerts open cases."""
    from finloop.risk.aml import service

    start, end = _instant(from_, "--from"), _instant(to, "--to")
    db = _database()
    try:
        with db.uow() as uow:
            result = service.run(uow, tenant, start=start, end=end)
            table = Table("alert", "scenario", "subject", "currency", "total", "transactions", "case")
            for a in result.alerts:
                table.add_row(a.id, a.scenario, f"{a.subject_kind} {a.subject_id}", a.currency, str(a.total_amount),
                              str(len(a.evidence.get("transaction_ids", []))), a.case_id or "")
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    console.print(table)
    console.print(f"{result.transactions} movements, {len(result.alerts)} alerts ({result.created} new).")


@risk_app.command("screen")
def screen(tenant: str = typer.Option(..., help="The tenant id."),
           name: str = typer.Option(..., help="The name to screen."),
           kind: str = typer.Option("individual", help="individual | entity."),
           subject_type: str = typer.Option("customer", "--subject-type",
                                            help="customer | merchant | beneficiary | promoter."),
           subject_id: str = typer.Option("cli", "--subject-id", help="The screened object's id.")) -> None:
    """Screen a name against the tenant's watchlists (stored; a hit opens a case)."""
    from finloop.risk.aml import service

    db = _database()
    try:
        with db.uow() as uow:
            result = service.screen(uow, tenant, name=name, kind=kind, subject_type=subject_type,
                                    subject_id=subject_id, actor="cli")
            row = result.screening
            table = Table("score", "source", "ref", "name", "matched", "program")
            for hit in row.hits:
                table.add_row(str(hit["score"]), hit["source"], hit["ref"], hit["name"], hit["matched_name"],
                              hit["program"])
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    console.print(f"{row.id}: {row.status} (threshold {row.threshold}){' case ' + row.case_id if row.case_id else ''}")
    if row.hits:
        console.print(table)


@risk_app.command("watchlist-import")
def watchlist_import(tenant: str = typer.Option(..., help="The tenant id."),
                     format: str = typer.Option(..., "--format", help="ofac_csv | un_xml."),
                     file: Path = typer.Option(..., "--file", exists=True, dir_okay=False)) -> None:
    """Replace the tenant's entries of a watchlist source with a file (OFAC sdn.csv or the UN XML)."""
    from finloop.risk.aml import service

    db = _database()
    try:
        with db.uow() as uow:
            result = service.import_watchlist(uow, tenant, format=format, content=file.read_bytes(), actor="cli")
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    state = "unchanged" if result.unchanged else "imported"
    console.print(f"{result.source} {result.list_version}: {result.entries} entries {state}.")
