"""`finloop splits` commands."""

from __future__ import annotations

import typer

import finloop.splits as package

splits_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
