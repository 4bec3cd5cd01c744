"""`finloop wealth` commands."""

from __future__ import annotations

import typer

import finloop.wealth as package

wealth_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
