"""`finloop credit outcomes` commands: label loan outcomes, list them, retrain on them and compare a model with
the champion."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.db.uow import Database

outcomes_app = typer.Typer(help="Loan outcomes: labels (on time, late, default, recovered), retraining on them, "
                                "and comparing a model with the champion.", no_args_is_help=True)
console = Console(emoji=False)


def _database() -> Database:
    from finloop.cli import database

    return database()


def _fail(error: FinloopError) -> typer.Exit:
    console.print(f"[red]{error.code}: {error.message}[/red]", markup=True, highlight=False)
    return typer.Exit(1)


def _comparison_table(result: dict[str, Any], title: str) -> None:
    table = Table("model", "kind", "AUC", "KS", "Gini", "mean score", "approval rate", title=title)
    for side in ("candidate", "against"):
        m = result[side]
        table.add_row(f"{side}: {m['model_id']} (v{m['version']}, {m['status']})", m["kind"], f"{m['auc']:.4f}",
                      f"{m['ks']:.4f}", f"{m['gini']:.4f}", f"{m['mean_score']:.1f}", f"{m['approval_rate']:.4f}")
    console.print(table)
    swaps = Table("segment", "loans", "bad", "bad rate", title=f"Swap set (approved from {result['reject_below']})")
    for cell in result["swap_set"]:
        rate = "-" if cell["bad_rate"] is None else f"{cell['bad_rate']:.4f}"
        swaps.add_row(cell["segment"], str(cell["loans"]), str(cell["bad"]), rate)
    console.print(swaps)
    holdout = result["holdout"]
    console.print(f"holdout: {holdout['kind']}, {holdout['loans']} loans, {holdout['bad']} bad; PSI "
                  f"{result['psi']:.4f} ({result['psi_level']}); recommendation: {result['recommendation']} "
                  f"({', '.join(result['reasons'])})", markup=False, highlight=False)


@outcomes_app.command("label")
def label(tenant: str = typer.Option(..., help="The tenant id."),
          as_of: str | None = typer.Option(None, "--as-of", help="The labelling date YYYY-MM-DD (default: today).")
          ) -> None:
    """Label every loan whose outcome became known (a rerun labels nothing twice); prints JSON."""
    from finloop.credit.outcomes import service as outcomes

    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise typer.BadParameter("a date YYYY-MM-DD", param_hint="--as-of") from None
    db = _database()
    labelled = 0
    try:
        while True:
            with db.uow() as uow:
                day = day or uow.clock.now().date()
                done = outcomes.label_outcomes(uow, tenant, day)
                uow.commit()
            labelled += done
            if done == 0:
                break
        with db.uow(read_only=True) as uow:
            counts = outcomes.summary(uow, tenant)
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps({"as_of": day.isoformat() if day else None, "labelled": labelled, "outcomes": counts}))


@outcomes_app.command("list")
def list_command(tenant: str = typer.Option(..., help="The tenant id."),
                 label: str | None = typer.Option(None, help="on_time, late, default or recovered."),
                 limit: int = typer.Option(50, min=1, max=500, help="At most this many.")) -> None:
    """Labelled outcomes, oldest label first, and the count of each label."""
    from finloop.credit.outcomes import service as outcomes
    from finloop.credit.outcomes.domain import OutcomeLabel

    if label is not None and label not in {x.value for x in OutcomeLabel}:
        raise typer.BadParameter("on_time, late, default or recovered", param_hint="--label")
    db = _database()
    table = Table("id", "loan", "label", "bad", "disbursed", "labelled", "max dpd", "written off", "recovered")
    with db.uow(read_only=True) as uow:
        for r in outcomes.list_outcomes(uow, tenant, label=label, limit=limit)[:limit]:
            table.add_row(r.id, r.loan_id, r.label, "yes" if r.bad else "no", r.disbursed_on.isoformat(),
                          r.labelled_on.isoformat(), str(r.max_dpd), str(r.written_off_amount),
                          str(r.recovered_amount))
        counts = outcomes.summary(uow, tenant)
    console.print(table)
    console.print(", ".join(f"{k} {v}" for k, v in counts.items()), markup=False, highlight=False)


@outcomes_app.command("retrain")
def retrain(tenant: str = typer.Option(..., help="The tenant id."),
            name: str = typer.Option("applicant", help="The model name to version."),
            holdout_share: float = typer.Option(0.25, min=0.0, max=0.5, help="The most recent share of labelled "
                                                "loans kept out of training for the comparison."),
            seed: int = typer.Option(1, help="Split and LightGBM seed."),
            rounds: int = typer.Option(200, min=10, max=5000, help="LightGBM boosting rounds."),
            min_iv: float = typer.Option(0.02, min=0.0, max=0.99, help="Features below this IV stay out."),
            test_share: float = typer.Option(0.3, min=0.05, max=0.5, help="Share of training loans held out."),
            as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Train the scorecard and GBM on labelled loans, register both as drafts, and compare each with the
    champion on the loans kept out. Promote with `finloop credit promote`."""
    from finloop.credit.outcomes import service as outcomes

    db = _database()
    with Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=as_json, disable=as_json) as bar:
        tasks = {"split": bar.add_task("fit", total=4), "gbm": bar.add_task("gbm", total=rounds)}

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(tasks[stage], completed=done, total=total)

        try:
            result = outcomes.retrain_from_outcomes(db, tenant, name=name, holdout_share=holdout_share, seed=seed,
                                                    rounds=rounds, min_iv=min_iv, test_share=test_share,
                                                    actor="cli", progress=progress)
        except FinloopError as error:
            raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    training = result.training
    console.print(f"{result.name} v{result.version}: scorecard {result.scorecard_id}, gbm {result.gbm_id} (drafts); "
                  f"trained on {training['loans']} loans ({training['bad']} bad) disbursed "
                  f"{training['first_disbursed_on']} to {training['last_disbursed_on']}", markup=False,
                  highlight=False)
    if result.comparisons is None:
        console.print("no champion to compare with", markup=False, highlight=False)
        return
    for kind, comparison in result.comparisons.items():
        _comparison_table(comparison, f"{kind} against the champion")


@outcomes_app.command("compare")
def compare(tenant: str = typer.Option(..., help="The tenant id."),
            model: str = typer.Option(..., "--model", help="The candidate model id."),
            against: str = typer.Option("champion", help="\"champion\" or another model id."),
            as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Compare a model with the champion on labelled loans; the result is recorded on the model."""
    from finloop.credit.outcomes import service as outcomes

    db = _database()
    try:
        with db.uow() as uow:
            result = outcomes.compare(uow, tenant, model, against=against, actor="cli")
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps(result))
        return
    _comparison_table(result, "Comparison on labelled loans")
