"""``finloop console ...``: the role matrix as documented, and second-factor help for demo tenants."""

from __future__ import annotations

import pyotp
import typer
from rich.console import Console
from sqlalchemy import select

from finloop.config import get_settings
from finloop.db.uow import Database
from finloop.tenancy import service as tenancy
from finloop.tenancy.models import User
from finloop.tenancy.service import PERMISSIONS, Role

console_app = typer.Typer(help="The web console: role matrix, demo sign-in help.", no_args_is_help=True)
out = Console()


def role_matrix() -> str:
    """The role × action matrix as a Markdown table: the permissions every API endpoint and console form checks."""
    roles = list(Role)
    lines = ["| action | " + " | ".join(role.value for role in roles) + " |",
             "|---|" + "---|" * len(roles)]
    for permission, allowed in sorted(PERMISSIONS.items()):
        lines.append(f"| `{permission}` | " + " | ".join("✓" if role in allowed else "" for role in roles) + " |")
    lines.append("| read every page and report | " + " | ".join("✓" for _ in roles) + " |")
    return "\n".join(lines)


@console_app.command("matrix")
def matrix() -> None:
    """Print the role × action matrix (docs/console.md holds the same table)."""
    print(role_matrix())  # noqa: T201 - the table is the output, for pasting


@console_app.command("code")
def code(tenant: str = typer.Option(..., help="A demo tenant's id."), email: str = typer.Option(...)) -> None:
    """The current sign-in code of a demo tenant's user, for trying the console without an authenticator app.
    Refused for any tenant that is not a demo."""
    db = Database(get_settings().database_url)
    with db.uow(read_only=True) as uow:
        if not tenancy.get_tenant(uow, tenant).is_demo:
            out.print("[red]only a demo tenant's codes are shown; use an authenticator app[/red]")
            raise typer.Exit(2)
        user = uow.session.scalar(select(User).where(User.tenant_id == tenant, User.email == email.strip().lower()))
        if user is None or user.totp_secret is None:
            out.print("[red]no such user with a second factor; sign in once to enrol[/red]")
            raise typer.Exit(2)
        secret = tenancy.open_totp_secret(user)
    out.print(pyotp.TOTP(secret).now())
