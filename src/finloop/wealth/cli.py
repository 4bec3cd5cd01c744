"""`finloop wealth` commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import typer
from rich.console import Console

import finloop.wealth as package
from finloop.config import get_settings
from finloop.core.errors import FinloopError
from finloop.db.uow import Database, UnitOfWork

wealth_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
errors = Console(stderr=True)
T = TypeVar("T")


def _run(work: Callable[[UnitOfWork], T], *, write: bool) -> T:
    settings = get_settings()
    db = Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    try:
        with db.uow(read_only=not write) as uow:
            result = work(uow)
            if write:
                uow.commit()
            return result
    except FinloopError as error:
        errors.print(f"[red]{error.code}: {error.message}[/red]")
        raise typer.Exit(1) from error
    finally:
        db.dispose()


def _date(value: str, param: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date as YYYY-MM-DD", param_hint=param) from None
    if not date(2000, 1, 1) <= day <= date(2999, 12, 31):
        raise typer.BadParameter("a date from 2000 to 2999", param_hint=param)
    return day


def _decimal(value: str, param: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter("a decimal number such as 0.6523", param_hint=param) from None


def _fund_id(uow: UnitOfWork, tenant: str, fund: str) -> str:
    from finloop.wealth import service

    found = service.find_fund(uow, tenant, fund)
    return found.id if found is not None else service.get_fund_by_code(uow, tenant, fund).id


@wealth_app.command("create-fund")
def create_fund_command(
        tenant: str = typer.Option(..., "--tenant", help="Tenant id."),
        code: str = typer.Option(..., "--code", help="Fund code, e.g. MMF1."),
        name: str = typer.Option(..., "--name"),
        currency: str = typer.Option(..., "--currency", help="ISO 4217 code."),
        fast_limit: int = typer.Option(..., "--fast-limit", help="Fast redemptions per holder per day (minor units)."),
        min_subscription: int = typer.Option(1, "--min-subscription", help="Minor units."),
) -> None:
    """Create a money-market fund."""
    from finloop.wealth import service

    fund = _run(lambda uow: service.create_fund(
        uow, tenant, code=code, name=name, currency_code=currency, fast_redemption_daily_limit=fast_limit,
        min_subscription_amount=min_subscription, actor="cli"), write=True)
    typer.echo(f"{fund.id} {fund.code} {fund.currency}")


@wealth_app.command("publish")
def publish_command(
        tenant: str = typer.Option(..., "--tenant", help="Tenant id."),
        fund: str = typer.Option(..., "--fund", help="Fund id or code."),
        on: str = typer.Option(..., "--date", help="The day the yield is for (YYYY-MM-DD)."),
        per_10k: str = typer.Option(..., "--per-10k", help="Income per 10,000 units, e.g. 0.6523."),
        annualised: str | None = typer.Option(None, "--annualised",
                                              help="Seven-day annualised yield, e.g. 0.0238 (computed if left out)."),
) -> None:
    """Publish a day's yield of a fund."""
    from finloop.wealth import service
    from finloop.wealth.schemas import decimal_text

    day = _date(on, "--date")
    income = _decimal(per_10k, "--per-10k")
    yearly = _decimal(annualised, "--annualised") if annualised is not None else None
    price = _run(lambda uow: service.publish_price(uow, tenant, _fund_id(uow, tenant, fund), price_on=day,
                                                   income_per_10k=income, annualised_7d=yearly, actor="cli"),
                 write=True)
    typer.echo(f"{price.price_on} income/10k {decimal_text(price.income_per_10k)} "
               f"7-day annualised {decimal_text(price.annualised_7d)}")


@wealth_app.command("accrue")
def accrue_command(
        tenant: str = typer.Option(..., "--tenant", help="Tenant id."),
        on: str = typer.Option(..., "--date", help="Business date whose income to post (YYYY-MM-DD)."),
) -> None:
    """Post the daily income of every fund for a closed business date (what the wealth.accrue job does)."""
    from finloop.wealth import service

    day = _date(on, "--date")
    results = _run(lambda uow: service.accrue(uow, tenant, business_date=day), write=True)
    for result in results:
        typer.echo(f"{result.fund_id} {result.income_on} days={result.days} holders={result.holders} "
                      f"income={result.amount}" + (" (already accrued)" if result.replayed else ""))


@wealth_app.command("statement")
def statement_command(
        tenant: str = typer.Option(..., "--tenant", help="Tenant id."),
        holder_kind: str = typer.Option(..., "--holder-kind", help="customer or merchant."),
        holder_id: str = typer.Option(..., "--holder-id"),
        from_on: str = typer.Option(..., "--from", help="YYYY-MM-DD"),
        to_on: str = typer.Option(..., "--to", help="YYYY-MM-DD"),
) -> None:
    """Print a holder's holdings, orders and income."""
    from finloop.wealth import service

    start, end = _date(from_on, "--from"), _date(to_on, "--to")

    def work(uow: UnitOfWork) -> list[str]:
        s = service.statement(uow, tenant, holder_kind=holder_kind, holder_id=holder_id, from_on=start, to_on=end)
        lines = [f"statement of {s.holder_kind.value} {s.holder_id} from {s.from_on} to {s.to_on}", "holdings:"]
        lines += [f"  {h.fund_code} {h.amount} {h.currency}" for h in s.holdings]
        lines.append("orders:")
        lines += [f"  {o.trade_date} {o.kind} {o.amount} {o.currency} {o.status}"
                  for o in sorted([*s.subscriptions, *s.redemptions], key=lambda o: (o.trade_date, o.id))]
        lines.append("income:")
        lines += [f"  {i.income_on} {i.fund_id} days={i.days} basis={i.basis_amount} {i.amount} {i.currency}"
                  for i in s.income]
        lines += [f"total income: {amount} {code}" for code, amount in sorted(s.total_income.items())]
        return lines

    for line in _run(work, write=False):
        typer.echo(line)

