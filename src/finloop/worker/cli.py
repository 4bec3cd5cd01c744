"""``finloop worker`` and ``finloop jobs``: run scheduled jobs and the outbox drain, and look at their runs."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from finloop.config import get_settings
from finloop.db.uow import Database

if TYPE_CHECKING:
    from finloop.worker.runner import Runner

jobs_app = typer.Typer(help="Scheduled job runs.", no_args_is_help=True)
console = Console()


def _database() -> Database:
    settings = get_settings()
    return Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C (or SIGTERM) finishes the current step and stops; a second Ctrl-C stops at once."""
    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        console.print("[yellow]Stopping after the current step (Ctrl-C again to stop at once)...[/yellow]")

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def worker(once: bool = typer.Option(False, "--once", help="Run one pass over the due jobs and exit."),
           jobs: list[str] = typer.Option([], "--job", help="Run only this job (repeatable)."),
           ) -> None:
    """Apply migrations, then run due jobs (end of day, expiry, outbox, ...) every poll interval."""
    from finloop.db.migrate import upgrade
    from finloop.logging import configure
    from finloop.worker.registry import load_jobs
    from finloop.worker.runner import Runner

    settings = get_settings()
    configure(settings.log_level, json=settings.log_json)
    upgrade(settings.database_url)
    registry = load_jobs()
    unknown = [name for name in jobs if name not in registry.names()]
    if unknown:
        console.print(f"[red]Unknown job {', '.join(unknown)}; known: {', '.join(registry.names())}[/red]")
        raise typer.Exit(2)
    stop = threading.Event()
    runner = Runner(_database(), registry, only=jobs or None, stop=stop)
    try:
        with _stop_on_signals(stop):
            _run(runner, once=once, poll_seconds=settings.worker_poll_seconds)
    except KeyboardInterrupt:
        console.print("[yellow]Stopped; an interrupted run is resumed by the next worker.[/yellow]")
        raise typer.Exit(130) from None


def _run(runner: Runner, *, once: bool, poll_seconds: float) -> None:
    if once:
        report = runner.run_pass()
        table = Table("job", "tenant", "business date", "status", "processed", "error")
        for outcome in report.outcomes:
            table.add_row(outcome.job, outcome.tenant_id or "(all)", outcome.business_date.isoformat(),
                          outcome.status, str(outcome.processed), outcome.error or "")
        console.print(table if report.outcomes else "Nothing was due.")
        if report.failed:
            raise typer.Exit(1)
        return
    console.print(f"worker running every {poll_seconds:g}s (Ctrl-C to stop)")
    runner.run_forever(poll_seconds)
    console.print("Worker stopped.")


@jobs_app.command("list")
def list_jobs(limit: int = typer.Option(20, min=1, max=1000), job: str | None = typer.Option(None),
              tenant: str | None = typer.Option(None, help="A tenant id, or '*' for interval jobs."),
              status: str | None = typer.Option(None, help="running, succeeded or failed")) -> None:
    """Show the most recent job runs."""
    from finloop.worker.runner import list_runs

    table = Table("run", "job", "tenant", "business date", "status", "attempts", "processed", "started", "finished",
                  "error")
    colours = {"succeeded": "green", "failed": "red", "running": "yellow"}
    # Rows are read inside the unit of work: leaving it expires the loaded objects.
    with _database().uow(read_only=True) as uow:
        runs = list_runs(uow, limit=limit, job=job, tenant_id=tenant, status=status)
        for run in runs:
            colour = colours.get(run.status, "white")
            table.add_row(run.id, run.job, "(all)" if run.tenant_id == "*" else run.tenant_id,
                          run.business_date.isoformat(), f"[{colour}]{run.status}[/{colour}]", str(run.attempts),
                          str(run.processed), run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                          run.finished_at.strftime("%Y-%m-%d %H:%M:%S") if run.finished_at else "",
                          (run.error or "")[:80])
    console.print(table if runs else "No job runs yet.")


@jobs_app.command("retry")
def retry(run_id: str) -> None:
    """Give a failed run one more attempt at the next worker pass (after its automatic retries ran out)."""
    from finloop.core.errors import FinloopError
    from finloop.worker.runner import retry_run

    with _database().uow() as uow:
        try:
            retry_run(uow, run_id)
        except FinloopError as error:
            console.print(f"[red]{error.message}[/red]")
            raise typer.Exit(1) from error
        uow.commit()
    console.print(f"Run {run_id} will be retried by the next worker pass.")
