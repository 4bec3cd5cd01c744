"""``finloop bench``: progress on stderr, the figures as JSON on stdout (so they can be piped or saved)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

bench_app = typer.Typer(help="Benchmarks that measure their anchor in the same run.", no_args_is_help=True)


@bench_app.callback()
def _quiet_logs() -> None:
    # The services' info logs (a vault key made, a tenant created) would land in the JSON on stdout.
    from finloop.logging import configure

    configure("WARNING")

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
    http_driver: str = typer.Option("auto", help="HTTP load generator: auto (wrk when installed), wrk or httpx."),
    seed: int = typer.Option(1, help="Seed of the random workload."),
) -> None:
    """Transfers per second on the posting path beside raw SQL and a bare FastAPI endpoint."""
    from finloop.bench.ledger import LedgerBenchConfig, run

    config = LedgerBenchConfig(
        postgres_url=postgres_url if postgres else None, sqlite=sqlite, http=http, seconds=seconds, rounds=rounds,
        batch_sizes=tuple(dict.fromkeys(batch_sizes)), accounts=accounts, http_seconds=http_seconds,
        http_concurrency=http_concurrency, http_workers=http_workers, http_driver=http_driver, seed=seed)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        results = run(config, progress)
    typer.echo(json.dumps(results, indent=2))


@bench_app.command("routing")
def routing(seconds: float = typer.Option(3.0, min=0.1, help="Measured seconds."),
            seed: int = typer.Option(0, help="Seed of the workload.")) -> None:
    """Routing decisions per second and p50/p99, beside a bare random() call and a dict lookup."""
    from finloop.bench.routing import run

    typer.echo(json.dumps(run(seconds=seconds, seed=seed), indent=2))


@bench_app.command("payments")
def payments(
    postgres_url: str = typer.Option(_DEFAULT_POSTGRES_URL, help="Server to run on; the bench creates a "
                                     "scratch database beside this one and drops it after."),
    seconds: float = typer.Option(15.0, min=0.5, help="Measured seconds per HTTP figure (ours, the anchor)."),
    warmup_seconds: float = typer.Option(3.0, min=0.0, help="Unmeasured seconds before each HTTP figure."),
    connections: int = typer.Option(16, min=1, max=256, help="Concurrent HTTP connections."),
    workers: int = typer.Option(2, min=1, max=16, help="uvicorn worker processes (ours and the anchor)."),
    merchants: int = typer.Option(4, min=1, max=100, help="Merchants the payments are spread over."),
    driver: str = typer.Option("auto", help="Load generator: auto (wrk when on PATH), wrk or httpx."),
    notifications: bool = typer.Option(False, "--notifications/--no-notifications",
                                       help="Let the sandbox send its payment notifications during the run."),
    routing_seconds: float = typer.Option(2.0, min=0.1, help="Measured seconds of the routing decision."),
    hot: bool = typer.Option(True, "--hot/--no-hot", help="Measure the hot-account strategy."),
    hot_seconds: float = typer.Option(4.0, min=0.1, help="Measured seconds per hot-account variant."),
    hot_rounds: int = typer.Option(2, min=1, help="Slices per hot-account variant, alternating with the others."),
    hot_threads: int = typer.Option(8, min=1, max=64, help="Threads posting payment successes."),
    seed: int = typer.Option(0, help="Seed of the sandbox and the routing workload."),
) -> None:
    """Payments created and confirmed per second over HTTP, beside a bare FastAPI endpoint doing one insert."""
    from finloop.bench.payments import PaymentsBenchConfig, run

    config = PaymentsBenchConfig(
        postgres_url=postgres_url, seconds=seconds, warmup_seconds=warmup_seconds, connections=connections,
        workers=workers, merchants=merchants, driver=driver, notifications=notifications,
        routing_seconds=routing_seconds, hot=hot, hot_seconds=hot_seconds, hot_rounds=hot_rounds,
        hot_threads=hot_threads, seed=seed)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        results = run(config, progress)
    typer.echo(json.dumps(results, indent=2))


@bench_app.command("recon")
def recon(rows: int = typer.Option(1_000_000, min=1000, help="Channel rows and as many platform records."),
          seed: int = typer.Option(0, help="Seed of the generated data.")) -> None:
    """Reconciliation rows per second, parse included, beside a plain polars join of the same data."""
    from finloop.bench.recon import run

    typer.echo(json.dumps(run(rows=rows, seed=seed), indent=2))


@bench_app.command("risk")
def risk(seconds: float = typer.Option(3.0, min=0.1, help="Measured seconds per figure."),
         rules: int = typer.Option(100, min=1, max=1000, help="Live rules in the rule set."),
         seed: int = typer.Option(0, help="Seed of the generated events.")) -> None:
    """Risk decisions per second and p50/p99 in-process, beside a single bare rule evaluation."""
    from finloop.bench.risk import run

    typer.echo(json.dumps(run(seconds=seconds, rules=rules, seed=seed), indent=2))


@bench_app.command("credit")
def credit(seconds: float = typer.Option(2.0, min=0.05, help="Measured seconds per figure."),
           rows: int = typer.Option(5000, min=200, max=200_000, help="Simulated applicants the models train on."),
           applicants: int = typer.Option(200, min=1, max=20_000, help="Applicants scored end to end on SQLite."),
           seed: int = typer.Option(1, help="Seed of the simulation and training.")) -> None:
    """Credit scores per second and p50/p99 in-process (scorecard and GBM), beside a dict lookup and a logistic."""
    from finloop.bench.credit import run

    typer.echo(json.dumps(run(seconds=seconds, rows=rows, applicants=applicants, seed=seed), indent=2))


@bench_app.command("credit-eod")
def credit_eod(loans: int = typer.Option(1_000_000, min=100, max=10_000_000, help="Open loans in the book."),
               days: int = typer.Option(2, min=1, max=31, help="Consecutive days closed, each timed alone."),
               sqlite: bool = typer.Option(True, "--sqlite/--no-sqlite", help="Measure on SQLite."),
               postgres: bool = typer.Option(True, "--postgres/--no-postgres", help="Measure on PostgreSQL.")
               ) -> None:
    """The loan book's end of day: loans per second, beside one bare UPDATE of every account row."""
    from finloop.bench.credit_eod import run

    typer.echo(json.dumps(run(loans=loans, days=days, sqlite=sqlite, postgres=postgres), indent=2))


@bench_app.command("console")
def console_pages(payments: int = typer.Option(20_000, min=100, max=1_000_000, help="Payments in the database."),
                  seconds: float = typer.Option(3.0, min=0.3, help="Measured seconds per page (and the anchor).")
                  ) -> None:
    """Console pages per second for a signed-in user on SQLite, beside a bare FastAPI HTML endpoint."""
    from finloop.bench.console import run

    typer.echo(json.dumps(run(payments=payments, seconds=seconds), indent=2))
