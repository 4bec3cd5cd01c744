"""`finloop risk` commands of ml (registered on the risk app): train, models, promote, drift."""

from __future__ import annotations

import json

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from finloop.core.errors import FinloopError
from finloop.risk.cli import _database, _fail, _instant, console, risk_app


@risk_app.command("train")
def train_model(tenant: str = typer.Option(..., help="The tenant id."),
                days: int = typer.Option(30, min=3, max=120, help="Days of simulated, labelled history."),
                customers: int = typer.Option(400, min=20, max=20_000, help="Simulated customers."),
                seed: int = typer.Option(1, help="Simulation and training seed."),
                name: str = typer.Option("fraud", help="Model name (the key in the decision context's model map)."),
                review_rate: float = typer.Option(0.05, min=0.001, max=0.5, help="Most events flagged."),
                precision: float = typer.Option(0.6, min=0.01, max=1.0, help="Least precision at the threshold."),
                rounds: int = typer.Option(80, min=1, max=2000, help="Boosting rounds."),
                from_: str | None = typer.Option(None, "--from", help="Train on the stored, labelled decisions "
                                                 "from this date (instead of a simulation)."),
                to: str | None = typer.Option(None, "--to", help="... up to this date (default: now)."),
                promote: bool = typer.Option(False, "--promote", help="Make the new model the champion."),
                as_json: bool = typer.Option(False, "--json", help="Print the model as JSON.")) -> None:
    """Train the anti-fraud model (LightGBM) on a simulated labelled history (or, with --from, on the stored
    decisions and their labels) and register it as a challenger."""
    from finloop.risk.ml import service, train
    from finloop.risk.ml.schemas import read_model
    from finloop.sim import fraud

    db = _database()
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=as_json, disable=as_json) as bar:
        tasks = {"generation": bar.add_task("generation", total=1), "features": bar.add_task("features", total=None),
                 "training": bar.add_task("training", total=rounds)}

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(tasks[stage], completed=done, total=total)

        try:
            with db.uow() as uow:
                events, frame = None, None
                if from_ is None:
                    events = fraud.generate(seed=seed, days=days, customers=customers)
                else:
                    frame = train.frame_from_decisions(uow, tenant, from_at=_instant(from_, "--from"),
                                                       to_at=_instant(to, "--to") if to else uow.clock.now())
                progress("generation", 1, 1)
                model = train.train(uow, tenant, events=events, frame=frame, actor="cli", name=name, seed=seed,
                                    review_rate=review_rate, target_precision=precision, rounds=rounds,
                                    progress=progress)
                if promote:
                    service.promote(uow, tenant, model.id, actor="cli")
                read = read_model(model)
                uow.commit()
        except FinloopError as error:
            raise _fail(error) from None
    if as_json:
        typer.echo(read.model_dump_json())
        return
    m = read.metrics
    console.print(f"{read.id} {read.name} v{read.version} {read.status}: AUC {m['auc']}, precision {m['precision']}, "
                  f"recall {m['recall']} at threshold {read.threshold} (review rate {m['review_rate']}) on "
                  f"{m['test_rows']} held-out events", markup=False, highlight=False)


@risk_app.command("models")
def models(tenant: str = typer.Option(..., help="The tenant id.")) -> None:
    """The tenant's models: versions, status, threshold and metrics."""
    from finloop.risk.ml import service

    db = _database()
    with db.uow(read_only=True) as uow:
        rows = service.list_models(uow, tenant, limit=500)
        table = Table("id", "name", "version", "status", "threshold", "auc", "precision", "recall", "data")
        for r in rows:
            table.add_row(r.id, r.name, str(r.version), r.status, str(r.threshold), str(r.metrics.get("auc")),
                          str(r.metrics.get("precision")), str(r.metrics.get("recall")),
                          f"{r.data_from:%Y-%m-%d}..{r.data_to:%Y-%m-%d}")
    console.print(table)


@risk_app.command("promote-model")
def promote_model(tenant: str = typer.Option(..., help="The tenant id."),
                  model: str = typer.Option(..., "--model", help="The model id.")) -> None:
    """Make a model the champion of its name (the previous champion retires)."""
    from finloop.risk.ml import service

    db = _database()
    try:
        with db.uow() as uow:
            row = service.promote(uow, tenant, model, actor="cli")
            console.print(f"{row.id} is the champion of {row.name}", markup=False, highlight=False)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None


@risk_app.command("drift")
def model_drift(tenant: str = typer.Option(..., help="The tenant id."),
                model: str = typer.Option(..., "--model", help="The model id."),
                days: int = typer.Option(7, min=1, max=366, help="Recent decisions of the last N days.")) -> None:
    """PSI of the score and key features, training data vs recent decisions; stored on the model."""
    from finloop.risk.ml import drift

    db = _database()
    try:
        with db.uow() as uow:
            result = drift.record(uow, tenant, model, days=days)
            uow.commit()
    except FinloopError as error:
        raise _fail(error) from None
    typer.echo(json.dumps(result))
