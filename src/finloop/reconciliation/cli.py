"""`finloop reconciliation` commands."""

from __future__ import annotations

import typer

import finloop.reconciliation as package

reconciliation_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
