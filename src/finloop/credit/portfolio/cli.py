"""`finloop credit portfolio` commands: the book's summary, vintage curves, roll rates, profit and loss, the unit
economics of one loan and the operating cost policy. Each report prints Rich tables, or writes CSV with
``--csv PATH`` (``-`` for standard output)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.db.uow import Database

portfolio_app = typer.Typer(help="Portfolio reports: summary, vintage, roll rates, P&L and unit economics.",
                            no_args_is_help=True)
console = Console(emoji=False)

TENANT = typer.Option(..., help="The tenant id.")
CSV = typer.Option(None, "--csv", help="Write the report as CSV to this path ('-' for standard output).")


def _database() -> Database:
    from finloop.cli import database

    return database()


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.code}: {error.message}[/red]", markup=True, highlight=False)
    return typer.Exit(1)


def _read(work: Any) -> Any:
    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            return work(uow)
    except FinloopError as error:
        raise _fail(error) from None


def _write_csv(path: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    from finloop.credit.portfolio import service

    text = service.to_csv(rows, columns)
    if path == "-":
        typer.echo(text, nl=False)
        return
    Path(path).write_text(text, encoding="utf-8")
    console.print(f"wrote {len(rows)} rows to {path}", markup=False, highlight=False)


def _major(amount: int, code: str) -> str:
    """Minor units shown to people in major units (CNY 1234567 -> 12345.67)."""
    from finloop.credit.schedule import major

    return major(amount, code)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _day(value: str | None, hint: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date such as 2026-03-31", param_hint=hint) from None


@portfolio_app.command("summary")
def summary_command(tenant: str = TENANT,
                    as_of: str | None = typer.Option(None, "--as-of", help="The date (default today)."),
                    since: str | None = typer.Option(None, help="Period start for approvals (default all time)."),
                    product: str | None = typer.Option(None, "--product", help="A product code."),
                    csv_path: str | None = CSV) -> None:
    """Outstanding principal by bucket, overdue and bad debt rates, approval, reborrow and limit utilisation."""
    from finloop.credit.portfolio import endpoints, service

    day, start = _day(as_of, "--as-of"), _day(since, "--since")
    found = _read(lambda uow: service.portfolio_summary(uow, tenant, as_of=day or uow.clock.now().date(),
                                                        product_code=product, since=start))
    if csv_path:
        _write_csv(csv_path, service.summary_rows(found), endpoints.SUMMARY_COLUMNS)
        return
    for block in found["currencies"]:
        table = Table("bucket", "loans", "principal outstanding", "share",
                      title=f"{block['currency']} book on {found['as_of']} ({found['source']})")
        for bucket in block["buckets"]:
            table.add_row(bucket["bucket"], str(bucket["loans"]),
                          _major(bucket["principal_outstanding"], block["currency"]), _cell(bucket["rate"]))
        table.add_row("total", str(block["open_loans"]), _major(block["principal_outstanding"], block["currency"]),
                      "")
        console.print(table)
        figures = Table("figure", "value", title=f"{block['currency']} figures")
        for name in ("overdue_rate", "m4_rate", "disbursed_loans", "disbursed_principal", "written_off_amount",
                     "bad_debt_rate", "limit_used_amount", "limit_amount", "limit_utilisation_rate"):
            value = block[name]
            shown = _major(value, block["currency"]) if name.endswith(("_amount", "_principal")) \
                else _cell(value)
            figures.add_row(name, shown)
        console.print(figures)
    period = Table("figure", "value", title="Applications and reborrowing")
    for group in ("applications", "reborrow"):
        for name, value in found[group].items():
            period.add_row(name, _cell(value))
    console.print(period)


@portfolio_app.command("vintage")
def vintage(tenant: str = TENANT,
            threshold_dpd: int = typer.Option(30, "--threshold-dpd", min=1, help="Days past due counted as bad."),
            basis: str = typer.Option("count", help="count (share of loans) or principal."),
            product: str | None = typer.Option(None, "--product", help="A product code."),
            currency: str | None = typer.Option(None, help="Only this currency."),
            from_month: str | None = typer.Option(None, "--from", help="First origination month (YYYY-MM)."),
            to_month: str | None = typer.Option(None, "--to", help="Last origination month (YYYY-MM)."),
            csv_path: str | None = CSV) -> None:
    """Vintage curves: per origination month, the share ever at or past the threshold by months on book."""
    from finloop.credit.portfolio import endpoints, service

    found = _read(lambda uow: service.vintage(uow, tenant, threshold_dpd=threshold_dpd, basis=basis,
                                              product_code=product, currency_code=currency, from_month=from_month,
                                              to_month=to_month))
    if csv_path:
        _write_csv(csv_path, service.vintage_rows(found), endpoints.VINTAGE_COLUMNS)
        return
    mobs = sorted({p["months_on_book"] for c in found["curves"] for p in c["points"]})
    table = Table("currency", "vintage", "loans", *(f"MOB {m}" for m in mobs),
                  title=f"Ever {threshold_dpd}+ days past due ({found['basis']})")
    for curve in found["curves"]:
        rates = {p["months_on_book"]: p["rate"] for p in curve["points"]}
        table.add_row(curve["currency"], curve["origination_month"], str(curve["loans"]),
                      *(_cell(rates.get(m)) if m in rates else "" for m in mobs))
    console.print(table)


@portfolio_app.command("roll-rates")
def roll_rates(tenant: str = TENANT, month_from: str = typer.Option(..., "--from", help="First month end (YYYY-MM)."),
               month_to: str = typer.Option(..., "--to", help="Last month end (YYYY-MM)."),
               product: str | None = typer.Option(None, "--product", help="A product code."),
               currency: str | None = typer.Option(None, help="Only this currency."),
               csv_path: str | None = CSV) -> None:
    """Roll-rate matrix: from each bucket at a month end to where the loan stood at the next."""
    from finloop.credit.portfolio import endpoints, service

    found = _read(lambda uow: service.roll_rates(uow, tenant, month_from=month_from, month_to=month_to,
                                                 product_code=product, currency_code=currency))
    if csv_path:
        _write_csv(csv_path, service.roll_rows(found), endpoints.ROLL_COLUMNS)
        return
    for matrix in found["matrices"]:
        table = Table("from", "loans", *found["columns"],
                      title=f"{matrix['currency']} roll rates {found['month_from']} to {found['month_to']} (count "
                            "share)")
        for row in matrix["rows"]:
            shares = row["count_shares"] or {}
            table.add_row(row["bucket"], str(row["loans"]), *(_cell(shares.get(c)) for c in found["columns"]))
        console.print(table)
    if found["unmatched_loans"]:
        console.print(f"{found['unmatched_loans']} loans had no next month-end snapshot", markup=False,
                      highlight=False)


def _pnl_table(title: str, rows: Sequence[Mapping[str, Any]], label: str) -> Table:
    from finloop.credit.portfolio import service

    table = Table(label, "currency", *service.PNL_COLUMNS, title=title)
    for row in rows:
        table.add_row(str(row.get(label, "")), row["currency"], *(
            _cell(row[c]) if c.endswith("_rate") else _major(row[c], row["currency"]) for c in service.PNL_COLUMNS))
    return table


@portfolio_app.command("pnl")
def pnl(tenant: str = TENANT, loan: str | None = typer.Option(None, "--loan", help="One loan's P&L."),
        month: str | None = typer.Option(None, help="The portfolio's P&L of one month (YYYY-MM), from the ledger."),
        product: str | None = typer.Option(None, "--product", help="A product code."),
        limit: int = typer.Option(50, min=1, max=10_000, help="At most this many loans listed."),
        csv_path: str | None = CSV) -> None:
    """Profit and loss per loan and for the portfolio, reconciled against the general ledger."""
    from finloop.credit.portfolio import endpoints, service

    found = _read(lambda uow: service.pnl(uow, tenant, loan_id=loan, month=month, product_code=product,
                                          limit=limit))
    found["loans"] = found["loans"][:limit]
    if csv_path:
        _write_csv(csv_path, service.pnl_rows(found), endpoints.PNL_COLUMNS)
        return
    if found["loans"]:
        console.print(_pnl_table("Loans", found["loans"], "loan_id"))
    portfolio = [{**p, "loans": str(p["loans"])} for p in found["portfolio"]]
    console.print(_pnl_table(f"Portfolio ({found['scope']}{' ' + month if month else ''})", portfolio, "loans"))
    if found["reconciliation"] is not None:
        table = Table("currency", "line", "sub-ledger", "ledger", "difference", "matches",
                      title="Reconciliation with the general ledger")
        for r in found["reconciliation"]:
            table.add_row(r["currency"], r["line"], str(r["subledger_amount"]), str(r["ledger_amount"]),
                          str(r["difference"]), "yes" if r["matches"] else "NO")
        console.print(table)
    console.print(f"operating cost: {json.dumps(found['operating_cost_policy'])}", markup=False, highlight=False)


@portfolio_app.command("unit-economics")
def unit_economics(principal: int = typer.Option(1_000_000, min=1, help="Principal in minor units."),
                   currency: str = typer.Option("CNY", help="ISO 4217 code."),
                   annual_rate: str = typer.Option("0.18", "--annual-rate", help="Flat annual interest rate."),
                   term: int = typer.Option(12, min=1, max=600, help="Term in months."),
                   funding_rate: str = typer.Option("0.06", "--funding-rate", help="Annual cost of funds."),
                   provision_rate: str = typer.Option("0.02", "--provision-rate",
                                                      help="Provision, share of principal."),
                   operating_cost_rate: str = typer.Option("0.01", "--operating-cost-rate",
                                                           help="Annual operating cost, share of principal."),
                   csv_path: str | None = CSV) -> None:
    """One loan's economics with bullet and with amortising funding (defaults: the worked example)."""
    from finloop.credit.portfolio import domain, endpoints

    try:
        found = domain.unit_economics(principal_amount=principal, currency_code=currency, annual_rate=annual_rate,
                                      term_months=term, funding_rate=funding_rate, provision_rate=provision_rate,
                                      operating_cost_rate=operating_cost_rate).to_json()
    except FinloopError as error:
        raise _fail(error) from None
    rows = endpoints.unit_rows(found)
    if csv_path:
        _write_csv(csv_path, rows, endpoints.UNIT_COLUMNS)
        return
    console.print(_pnl_table(f"Unit economics of {principal} {currency} over {term} months", rows, "funding"))
    saved = _major(found["cost_of_funds_saved"], currency)
    console.print(f"amortising funding saves {saved} of cost of funds", markup=False, highlight=False)


@portfolio_app.command("policy")
def policy(tenant: str = TENANT,
           annual_rate: str | None = typer.Option(None, "--annual-rate", help="principal_rate: annual rate."),
           per_loan_month: list[str] = typer.Option([], "--per-loan-month",
                                                    help="per_loan_month: CUR=AMOUNT in minor units (repeat).")
           ) -> None:
    """Show (or set) how operating cost is allocated to loans; prints the policy as JSON."""
    from finloop.credit.portfolio import service

    data: dict[str, Any] | None = None
    if annual_rate is not None and per_loan_month:
        raise typer.BadParameter("one of --annual-rate or --per-loan-month", param_hint="--annual-rate")
    if annual_rate is not None:
        data = {"method": "principal_rate", "annual_rate": annual_rate}
    elif per_loan_month:
        amounts: dict[str, int] = {}
        for item in per_loan_month:
            code, _, amount = item.partition("=")
            if not amount.isdigit():
                raise typer.BadParameter("CUR=AMOUNT, e.g. CNY=800", param_hint="--per-loan-month")
            amounts[code] = int(amount)
        data = {"method": "per_loan_month", "amounts": amounts}
    db = _database()
    try:
        with db.uow() as uow:
            if data is not None:
                service.set_operating_cost_policy(uow, tenant, data, actor="cli")
            found, row = service.operating_cost_policy(uow, tenant)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps({"policy": found.to_json(), "is_default": row is None}))
