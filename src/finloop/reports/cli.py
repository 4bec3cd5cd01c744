"""``finloop reports ...`` and ``finloop export parquet``."""

from __future__ import annotations

import typer

reports_app = typer.Typer(help="Reports: financial, operations, risk, credit, regulatory.", no_args_is_help=True)


def export_parquet() -> None:
    """Write the ledger, payments, loans and decisions as Parquet files for a data warehouse."""
    raise typer.Exit(2)
