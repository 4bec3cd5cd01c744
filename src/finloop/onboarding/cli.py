"""`finloop onboarding` commands."""

from __future__ import annotations

import typer

import finloop.onboarding as package

onboarding_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
