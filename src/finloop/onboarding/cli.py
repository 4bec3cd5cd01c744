"""`finloop onboarding` commands."""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import finloop.onboarding as package
from finloop.db.uow import Database

onboarding_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
review_app = typer.Typer(help="The periodic review of verified parties.", no_args_is_help=True)
onboarding_app.add_typer(review_app, name="review-due")
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


@onboarding_app.command("list")
def list_profiles(tenant: str = typer.Option(..., help="The tenant id."),
                  status: str | None = typer.Option(None, help="Only profiles in this status."),
                  tier: str | None = typer.Option(None, help="Only profiles of this risk tier."),
                  party_kind: str | None = typer.Option(None, help="customer, merchant or promoter."),
                  limit: int = typer.Option(50, min=1, max=500)) -> None:
    """A tenant's onboarding profiles, newest first (names and numbers masked)."""
    from finloop.onboarding import service

    with _database().uow(read_only=True) as uow:
        profiles = service.list_profiles(uow, tenant, status=status, risk_tier=tier, party_kind=party_kind,
                                         limit=limit)[:limit]
        table = Table("profile", "party", "type", "name", "identifier", "country", "status", "tier", "next review")
        for p in profiles:
            table.add_row(p.id, f"{p.party_kind}:{p.party_id}", p.profile_type, p.name_display, p.identifier_display,
                          p.country, p.status, p.risk_tier or "",
                          p.next_review_at.date().isoformat() if p.next_review_at else "")
    console.print(table)


@onboarding_app.command("show")
def show(profile_id: str = typer.Argument(..., help="The profile id."),
         tenant: str = typer.Option(..., help="The tenant id.")) -> None:
    """One profile: its checks, tier and why, review reasons and history (personal data masked)."""
    from finloop.core.errors import NotFound
    from finloop.onboarding import service

    with _database().uow(read_only=True) as uow:
        try:
            p = service.get_profile(uow, tenant, profile_id)
        except NotFound as error:
            console.print(f"[red]{error.message}[/red]")
            raise typer.Exit(1) from None
        console.print(f"{p.id}  {p.party_kind}:{p.party_id}  {p.profile_type}  {p.name_display}  "
                      f"{p.identifier_display}  {p.country}  status [bold]{p.status}[/bold]  "
                      f"tier {p.risk_tier or '-'}  case {p.case_id or '-'}")
        checks = Table("check", "verification", "status", "reason")
        for kind, check in p.checks.items():
            checks.add_row(kind, check["verification_id"], check["status"], check.get("reason_code") or "")
        console.print(checks)
        if p.tier_reasons:
            tiers = Table("tier factor", "value", "points", "reason")
            for f in p.tier_reasons:
                tiers.add_row(f["factor"], f["value"], str(f["points"]), f["reason"])
            console.print(tiers)
        for reason in p.review_reasons:
            console.print(f"review: {reason['code']}: {reason['message']}")
        moves = Table("#", "from", "to", "reason", "actor", "at")
        for t in service.history(uow, p):
            moves.add_row(str(t.seq), t.from_status or "", t.to_status, t.reason, t.actor, t.at.isoformat())
        console.print(moves)


@review_app.command("run")
def review_due_run(tenant: str = typer.Option(..., help="The tenant id."),
                   on: str | None = typer.Option(None, "--date", help="The business date (default: today's).")) -> None:
    """Move the profiles whose periodic review is due to review_due and screen them again (once per date)."""
    from finloop.onboarding import service
    from finloop.tenancy.calendar import get_calendar

    db = _database()
    try:
        business_date = date.fromisoformat(on) if on else None
    except ValueError:
        console.print("[red]--date is YYYY-MM-DD.[/red]")
        raise typer.Exit(2) from None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("periodic review", total=1)
        with db.uow() as uow:
            business_date = business_date or get_calendar(uow, tenant).business_date(uow.clock.now())
            result = service.run_periodic_review(uow, tenant, business_date=business_date,
                                                 actor="cli:onboarding.review_due")
            uow.commit()
        progress.advance(task)
    console.print(f"{business_date.isoformat()}: {result.due} due, {result.rescreened} re-screened, "
                  f"{result.in_review} sent to review")


@onboarding_app.command("resolve")
def resolve(limit: int = typer.Option(200, min=1, max=10_000)) -> None:
    """One round of the onboarding.resolve_checks job: query the checks whose answer is unknown."""
    from finloop.onboarding import flows

    console.print(f"looked at {flows.resolve_due(_database(), limit=limit)} checks")
