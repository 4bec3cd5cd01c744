"""`finloop credit` commands."""

from __future__ import annotations

import typer

import finloop.credit as package

credit_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
