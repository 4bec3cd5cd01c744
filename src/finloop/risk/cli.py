"""`finloop risk` commands."""

from __future__ import annotations

import typer

import finloop.risk as package

risk_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
