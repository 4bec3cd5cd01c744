"""`finloop payouts` commands."""

from __future__ import annotations

import typer

import finloop.payouts as package

payouts_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
