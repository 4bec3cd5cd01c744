"""`finloop splits` commands: the split rules in force and what an order would be split into."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

import finloop.splits as package
from finloop.db.uow import Database

splits_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


@splits_app.command("rules")
def list_rules(tenant: str = typer.Option(..., help="The tenant id."),
               all_versions: bool = typer.Option(False, "--all",
                                                 help="Include superseded and retired versions.")) -> None:
    """List the tenant's split rules (active ones unless --all)."""
    from finloop.splits import service

    with _database().uow(read_only=True) as uow:
        rules = service.list_split_rules(uow, tenant, limit=500,
                                         status=None if all_versions else service.RuleStatus.ACTIVE)
        table = Table("id", "scope", "merchant", "category", "version", "status", "platform", "promoters", "refunds")
        for rule in rules[:500]:
            platform = rule.terms.get("platform", {})
            table.add_row(rule.id, rule.scope, rule.merchant_id or "", rule.category or "", str(rule.version),
                          rule.status, f"{platform.get('kind')} {platform.get('ratio')} {platform.get('amount')}",
                          ",".join(rule.terms.get("promoter_ratios", [])), rule.terms.get("refund_policy", ""))
    console.print(table)


@splits_app.command("preview")
def preview(tenant: str = typer.Option(..., help="The tenant id."),
            merchant: str = typer.Option(..., help="The merchant id."),
            amount: int = typer.Option(..., help="The order amount in minor units."),
            currency: str = typer.Option("CNY", help="ISO 4217 code."),
            category: str | None = typer.Option(None, help="The product category."),
            promoter: str | None = typer.Option(None, help="The order's promoter id."),
            fee: int = typer.Option(0, help="The channel fee in minor units (borne by the platform).")) -> None:
    """Show how an order would be split by the rules in force now."""
    from finloop.core.errors import FinloopError
    from finloop.core.money import check_amount
    from finloop.core.money import currency as check_currency
    from finloop.payments import service as payments
    from finloop.splits import service

    try:
        check_amount(amount, allow_zero=False, allow_negative=False)
        check_amount(fee, allow_negative=False)
        check_currency(currency)
        with _database().uow(read_only=True) as uow:
            payments.get_merchant(uow, tenant, merchant)
            plan = service.plan_split(uow, tenant, amount=amount, currency_code=currency, merchant_id=merchant,
                                      fee=fee, category=category, promoter_id=promoter)
            rule = plan.rule
            heading = f"rule: {rule.id} v{rule.version} ({rule.scope})" if rule else \
                "rule: none (the merchant takes all)"
    except FinloopError as error:
        console.print(f"error: {error}")
        raise typer.Exit(1) from error
    console.print(heading)
    table = Table("party", "id", "level", "amount", "fee", "net")
    for part in plan.allocation.parts:
        table.add_row(part.role.value, part.party_id, str(part.level), str(part.amount), str(part.fee), str(part.net))
    console.print(table)
