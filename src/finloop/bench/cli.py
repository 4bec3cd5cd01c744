"""``finloop bench``: progress on stderr, the figures as JSON on stdout (so they can be piped or saved)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

bench_app = typer.Typer(help="Benchmarks that measure their anchor in the same run.", no_args_is_help=True)

# Repeated from finloop.bench.ledger so that the CLI does not import the benchmark until it runs.
_DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@bench_app.command("ledger")
def ledger(
    postgres_url: str = typer.Option(_DEFAULT_POSTGRES_URL, help="Server to run on; the bench creates a "
                                     "scratch database beside this one and drops it after."),
    postgres: bool = typer.Option(True, "--postgres/--no-postgres", help="Measure PostgreSQL (when reachable)."),
    sqlite: bool = typer.Option(True, "--sqlite/--no-sqlite", help="Measure SQLite in a temporary file."),
    http: bool = typer.Option(True, "--http/--no-http", help="Measure single transfers over HTTP."),
    seconds: float = typer.Option(3.0, min=0.1, help="Measured seconds per in-process figure."),
    rounds: int = typer.Option(3, min=1, help="Slices per figure, alternating with its anchors."),
    batch_sizes: list[int] = typer.Option([100, 1000], "--batch-size", min=2, max=1000,
                                          help="Transfers per transaction for the batched figures (repeatable)."),
    accounts: int = typer.Option(16, min=2, max=1000, help="Hot accounts every transfer moves money between."),
    http_seconds: float = typer.Option(8.0, min=0.5, help="Measured seconds per HTTP figure."),
    http_concurrency: int = typer.Option(16, min=1, max=256, help="Concurrent HTTP clients."),
    http_workers: int = typer.Option(2, min=1, max=16, help="uvicorn worker processes (finloop serve --workers)."),
    seed: int = typer.Option(1, help="Seed of the random workload."),
) -> None:
    """Transfers per second on the posting path beside raw SQL and a bare FastAPI endpoint."""
    from finloop.bench.ledger import LedgerBenchConfig, run

    config = LedgerBenchConfig(
        postgres_url=postgres_url if postgres else None, sqlite=sqlite, http=http, seconds=seconds, rounds=rounds,
        batch_sizes=tuple(dict.fromkeys(batch_sizes)), accounts=accounts, http_seconds=http_seconds,
        http_concurrency=http_concurrency, http_workers=http_workers, seed=seed)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        results = run(config, progress)
    typer.echo(json.dumps(results, indent=2))
