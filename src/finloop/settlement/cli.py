"""`finloop settlement` commands."""

from __future__ import annotations

import typer

import finloop.settlement as package

settlement_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
