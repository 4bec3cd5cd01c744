"""`finloop clearing` commands."""

from __future__ import annotations

import typer

import finloop.clearing as package

clearing_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
