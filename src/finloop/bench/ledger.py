"""``finloop bench ledger``: how fast the posting path runs, each figure beside its anchor.

The workload is hot: a few accounts (half of them liabilities that must not go negative) take part
in every transfer, so the row locks on the running sums matter. Measured in one run:

- in process, on SQLite (a temporary file) and on PostgreSQL (a scratch database, dropped after):
  transfers per second one per transaction and in batches;
- the database anchor: raw psycopg inserts of the same rows (one entry and two postings per transfer)
  into tables of the same shape (columns, defaults, checks, indexes and foreign keys), with
  executemany and with COPY, in batches of the same size; and our rate over each;
- over HTTP: ``finloop serve`` in a subprocess on a free loopback port, driven by a bounded number of
  concurrent connections, with p50/p99 latency; and the anchor, a bare FastAPI endpoint with the same
  request and response shapes served and driven the same way. The load generator is ``wrk`` when it is
  on PATH (a C program that costs the machine a few per cent), else threads of httpx clients (which
  take most of a core on their own, so the server gets less); the result names the one used.

Every in-process measurement is split into rounds that alternate with its anchors, so a neighbour's
burst of load hits both sides alike. The books are verified (running sums against postings) after
each run: a fast ledger that drifts would be worth nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb
from rich.progress import Progress, TaskID
from sqlalchemy import distinct, func, select
from sqlalchemy.engine import make_url

from finloop.core.ids import IdFactory
from finloop.db.migrate import scratch_database, upgrade
from finloop.db.uow import Database
from finloop.ledger import service
from finloop.ledger.domain import AccountType, BalanceRule, TransferSpec
from finloop.ledger.models import Entry

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CURRENCY = "CNY"
#: What each liability of the workload starts with: enough that no run of the bench drains one.
OPENING_BALANCE = 10**12
LARGEST_TRANSFER = 10_000

GOAL_BATCHED_PER_SECOND = 10_000
GOAL_BATCHED_OVER_RAW_EXECUTEMANY = 1 / 3
GOAL_HTTP_PER_SECOND = 1_000


@dataclass(frozen=True)
class LedgerBenchConfig:
    postgres_url: str | None = DEFAULT_POSTGRES_URL
    sqlite: bool = True
    http: bool = True
    #: Measured seconds per in-process figure (spent in posting calls, set-up excluded).
    seconds: float = 3.0
    #: Each figure is measured in this many slices that alternate with its anchors.
    rounds: int = 3
    batch_sizes: tuple[int, ...] = (100, 1000)
    accounts: int = 16
    http_seconds: float = 8.0
    http_warmup_seconds: float = 1.5
    http_concurrency: int = 16
    http_workers: int = 2
    #: ``auto`` (wrk when on PATH, else httpx), ``wrk`` or ``httpx``.
    http_driver: str = "auto"
    seed: int = 1


# ---------------------------------------------------------------------------------------------- figures


@dataclass
class Rate:
    """Transfers done, the seconds spent doing them (preparing the next batch excluded), and the CPU
    that took in this process and in the database server process serving it, when it can be read."""

    transfers: int = 0
    seconds: float = 0.0
    python_cpu: float = 0.0
    database_cpu: float | None = None

    def add(self, transfers: int, seconds: float, python_cpu: float = 0.0, database_cpu: float | None = None) -> None:
        self.transfers += transfers
        self.seconds += seconds
        self.python_cpu += python_cpu
        if database_cpu is not None:
            self.database_cpu = (self.database_cpu or 0.0) + database_cpu

    @property
    def per_second(self) -> float:
        return self.transfers / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        def micros(cpu: float | None) -> float | None:
            return round(cpu / self.transfers * 1e6, 1) if cpu is not None and self.transfers else None

        return {"transfers_per_second": round(self.per_second), "transfers": self.transfers,
                "seconds": round(self.seconds, 2),
                "cpu_us_per_transfer": {"python": micros(self.python_cpu), "database": micros(self.database_cpu)}}


class _Stopwatch:
    """Wall time, this process's CPU and a local server process's CPU over one measured call.

    The CPU figures hold when the machine is busy with other work, where wall time does not.
    The server's comes from /proc (``None`` when the database runs elsewhere).
    """

    def __init__(self, server_pid: int | None) -> None:
        self._stat = Path(f"/proc/{server_pid}/stat") if server_pid else None
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _server_cpu(self) -> float | None:
        try:
            fields = self._stat.read_text().rsplit(")", 1)[1].split() if self._stat else None
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self._ticks if fields else None

    def measure(self, work: Callable[[], None]) -> tuple[float, float, float | None]:
        server_before = self._server_cpu()
        cpu_before, started = time.process_time(), time.perf_counter()
        work()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
        server_after = self._server_cpu()
        server = server_after - server_before if server_after is not None and server_before is not None else None
        return elapsed, cpu, server


def _ratio(ours: float, anchor: float) -> float | None:
    return round(ours / anchor, 3) if anchor else None


def _label(size: int) -> str:
    return "single" if size == 1 else f"batch_{size}"


class _Ticker:
    """A rich progress task that accepts seconds of work done."""

    def __init__(self, progress: Progress | None, description: str, total: float) -> None:
        self._progress = progress
        self._task: TaskID | None = progress.add_task(description, total=total) if progress else None

    def advance(self, amount: float) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def done(self) -> None:
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[self._task]
            self._progress.update(self._task, completed=task.total)


# ---------------------------------------------------------------------------------------------- workload


@dataclass
class Books:
    """A tenant whose hot accounts the workload moves money between."""

    database: Database
    tenant_id: str
    account_ids: list[str]
    api_key: str


def open_books(database: Database, accounts: int) -> Books:
    from finloop.tenancy import service as tenancy
    from finloop.tenancy.service import Role

    with database.uow() as uow:
        tenant = tenancy.create_tenant(uow, name="bench", actor="bench")
        _, secret = tenancy.issue_api_key(uow, tenant.id, name="bench", role=Role.ADMIN, actor="bench")
        funding = service.create_account(uow, tenant.id, code="assets:bench:funding", type=AccountType.ASSET,
                                         currency_code=CURRENCY)
        hot: list[str] = []
        wallets: list[str] = []
        for index in range(accounts):
            if index % 2:
                account = service.create_account(
                    uow, tenant.id, code=f"liabilities:bench:wallet{index}", type=AccountType.LIABILITY,
                    currency_code=CURRENCY, balance_rule=BalanceRule.DEBITS_MUST_NOT_EXCEED_CREDITS)
                wallets.append(account.id)
            else:
                account = service.create_account(uow, tenant.id, code=f"assets:bench:hot{index}",
                                                 type=AccountType.ASSET, currency_code=CURRENCY)
            hot.append(account.id)
        service.post_transfers(uow, tenant.id, [
            TransferSpec.simple(f"opening:{wallet}", funding.id, wallet, OPENING_BALANCE, CURRENCY)
            for wallet in wallets])
        uow.commit()
    return Books(database, tenant.id, hot, secret)


class Workload:
    """Random transfers between the hot accounts, each with a fresh key."""

    def __init__(self, account_ids: list[str], seed: int, prefix: str) -> None:
        self._accounts = account_ids
        self._random = random.Random(seed)
        self._prefix = prefix
        self._count = 0

    def _next(self) -> tuple[str, str, str, int]:
        self._count += 1
        debit, credit = self._random.sample(self._accounts, 2)
        return f"{self._prefix}-{self._count}", debit, credit, self._random.randint(1, LARGEST_TRANSFER)

    def specs(self, count: int) -> list[TransferSpec]:
        return [TransferSpec.simple(key, debit, credit, amount, CURRENCY)
                for key, debit, credit, amount in (self._next() for _ in range(count))]

    def body(self) -> dict[str, Any]:
        key, debit, credit, amount = self._next()
        return {"key": key, "debit_account_id": debit, "credit_account_id": credit, "amount": amount,
                "currency": CURRENCY}

    def raw_rows(self, count: int, tenant_id: str, ids: IdFactory,
                 ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The rows our posting path would write for ``count`` transfers (running sums aside)."""
        now = datetime.now(UTC)
        today = now.date()
        entries: list[tuple[Any, ...]] = []
        postings: list[tuple[Any, ...]] = []
        for key, debit, credit, amount in (self._next() for _ in range(count)):
            entry_id = ids.new("entry")
            content_hash = hashlib.sha256(key.encode()).hexdigest()
            entries.append((entry_id, tenant_id, key, content_hash, "transfer", "", now, today, now, None, None,
                            None, Jsonb({})))
            postings.append((tenant_id, entry_id, debit, CURRENCY, amount, now))
            postings.append((tenant_id, entry_id, credit, CURRENCY, -amount, now))
        return entries, postings


# ---------------------------------------------------------------------------------------------- in process


def _post_slice(books: Books, workload: Workload, size: int, seconds: float, rate: Rate, ticker: _Ticker,
                stopwatch: _Stopwatch) -> None:
    spent = 0.0
    while spent < seconds:
        specs = workload.specs(size)

        def post(specs: list[TransferSpec] = specs) -> None:
            with books.database.uow() as uow:
                service.post_transfers(uow, books.tenant_id, specs)
                uow.commit()

        elapsed, cpu, server = stopwatch.measure(post)
        spent += elapsed
        rate.add(size, elapsed, cpu, server)
        ticker.advance(elapsed)


def _verify(database: Database) -> list[str]:
    with database.uow(read_only=True) as uow:
        return service.verify_integrity(uow)


def bench_in_process(books: Books, config: LedgerBenchConfig, progress: Progress | None, backend: str,
                     anchors: dict[str, Callable[[int, float, _Ticker], Rate]] | None = None,
                     server_pid: int | None = None) -> dict[str, Any]:
    """Posting rates per batch size; with ``anchors``, each slice of ours alternates with theirs."""
    results: dict[str, Any] = {}
    workload = Workload(books.account_ids, config.seed, f"{backend}-inproc")
    stopwatch = _Stopwatch(server_pid)
    for size in (1, *config.batch_sizes):
        label = _label(size)
        ticker = _Ticker(progress, f"{backend} {label}", config.seconds)
        ours = Rate()
        theirs: dict[str, Rate] = {name: Rate() for name in anchors or {}}
        anchor_tickers = {name: _Ticker(progress, f"raw {name} {label}", config.seconds) for name in theirs}
        for _ in range(config.rounds):
            _post_slice(books, workload, size, config.seconds / config.rounds, ours, ticker, stopwatch)
            for name, run in (anchors or {}).items():
                measured = run(size, config.seconds / config.rounds, anchor_tickers[name])
                theirs[name].add(measured.transfers, measured.seconds, measured.python_cpu,
                                 measured.database_cpu)
        ticker.done()
        for anchor_ticker in anchor_tickers.values():
            anchor_ticker.done()
        results[label] = ours.as_dict()
        if theirs:
            results[label]["raw"] = {name: rate.as_dict() for name, rate in theirs.items()}
            results[label]["ours_over_raw"] = {name: _ratio(ours.per_second, rate.per_second)
                                               for name, rate in theirs.items()}
    results["integrity_problems"] = _verify(books.database)
    return results


# ---------------------------------------------------------------------------------------------- raw anchor

_RAW_ENTRY_COLUMNS = ("id, tenant_id, transfer_key, content_hash, kind, description, effective_at, business_date,"
                      " created_at, batch_id, hold_id, reverses_id, metadata")
_RAW_POSTING_COLUMNS = "tenant_id, entry_id, account_id, currency, amount, effective_at"
_RAW_INSERT_ENTRY = (f"INSERT INTO bench_raw_entries ({_RAW_ENTRY_COLUMNS})"
                     " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
_RAW_INSERT_POSTING = f"INSERT INTO bench_raw_postings ({_RAW_POSTING_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
_RAW_COPY_ENTRIES = f"COPY bench_raw_entries ({_RAW_ENTRY_COLUMNS}) FROM STDIN"
_RAW_COPY_POSTINGS = f"COPY bench_raw_postings ({_RAW_POSTING_COLUMNS}) FROM STDIN"


def _create_raw_tables(connection: psycopg.Connection[Any]) -> None:
    """Copies of ``entries`` and ``postings``: same columns, defaults, checks, indexes and foreign keys."""
    connection.execute("CREATE TABLE bench_raw_entries (LIKE entries INCLUDING ALL)")
    connection.execute("CREATE TABLE bench_raw_postings (LIKE postings INCLUDING ALL)")
    connection.execute("ALTER TABLE bench_raw_entries ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id),"
                       " ADD FOREIGN KEY (reverses_id) REFERENCES bench_raw_entries (id)")
    connection.execute("ALTER TABLE bench_raw_postings ADD FOREIGN KEY (entry_id) REFERENCES bench_raw_entries (id),"
                       " ADD FOREIGN KEY (account_id) REFERENCES accounts (id)")
    connection.commit()


class RawInserts:
    """The database anchor: the same rows through psycopg with nothing of ours around them."""

    def __init__(self, connection: psycopg.Connection[Any], books: Books, seed: int) -> None:
        self._connection = connection
        self._tenant_id = books.tenant_id
        self._workload = Workload(books.account_ids, seed, "raw")
        self._ids = IdFactory()
        self._stopwatch = _Stopwatch(connection.info.backend_pid)

    def executemany(self, size: int, seconds: float, ticker: _Ticker) -> Rate:
        def write(cursor: psycopg.Cursor[Any], entries: list[tuple[Any, ...]],
                  postings: list[tuple[Any, ...]]) -> None:
            cursor.executemany(_RAW_INSERT_ENTRY, entries)
            cursor.executemany(_RAW_INSERT_POSTING, postings)
        return self._run(size, seconds, ticker, write)

    def copy(self, size: int, seconds: float, ticker: _Ticker) -> Rate:
        def write(cursor: psycopg.Cursor[Any], entries: list[tuple[Any, ...]],
                  postings: list[tuple[Any, ...]]) -> None:
            with cursor.copy(_RAW_COPY_ENTRIES) as copy:
                for row in entries:
                    copy.write_row(row)
            with cursor.copy(_RAW_COPY_POSTINGS) as copy:
                for row in postings:
                    copy.write_row(row)
        return self._run(size, seconds, ticker, write)

    def _run(self, size: int, seconds: float, ticker: _Ticker,
             write: Callable[[psycopg.Cursor[Any], list[tuple[Any, ...]], list[tuple[Any, ...]]], None]) -> Rate:
        rate = Rate()
        while rate.seconds < seconds:
            entries, postings = self._workload.raw_rows(size, self._tenant_id, self._ids)

            def insert(entries: list[tuple[Any, ...]] = entries, postings: list[tuple[Any, ...]] = postings) -> None:
                with self._connection.cursor() as cursor:
                    write(cursor, entries, postings)
                self._connection.commit()

            elapsed, cpu, server = self._stopwatch.measure(insert)
            rate.add(size, elapsed, cpu, server)
            ticker.advance(elapsed)
        return rate


# ---------------------------------------------------------------------------------------------- PostgreSQL


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def scratch_postgres(admin_url: str) -> AbstractContextManager[str]:
    """A fresh, migrated database beside ``admin_url``'s, dropped (connections and all) afterwards."""
    return scratch_database(admin_url, "finloop_bench")


def postgres_reachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        psycopg.connect(libpq_url(url), connect_timeout=3).close()
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


def bench_postgres(url: str, config: LedgerBenchConfig, progress: Progress | None) -> dict[str, Any]:
    # One pooled connection, so one server process does all our work and its CPU can be read.
    database = Database(url, pool_size=1, max_overflow=0)
    try:
        books = open_books(database, config.accounts)
        with database.uow(read_only=True) as uow:
            server_pid = uow.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with psycopg.connect(libpq_url(url)) as connection:
            _create_raw_tables(connection)
            raw = RawInserts(connection, books, config.seed)
            results = bench_in_process(books, config, progress, "postgresql",
                                       anchors={"executemany": raw.executemany, "copy": raw.copy},
                                       server_pid=server_pid)
            results["server_version"] = connection.info.parameter_status("server_version")
        return results
    finally:
        database.dispose()


def bench_sqlite(config: LedgerBenchConfig, progress: Progress | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="finloop-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        database = Database(url)
        try:
            results = bench_in_process(open_books(database, config.accounts), config, progress, "sqlite")
        finally:
            database.dispose()
    results["version"] = sqlite3.sqlite_version
    return results


# ---------------------------------------------------------------------------------------------- HTTP


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(argv: list[str], port: int, env: dict[str, str] | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Run a server subprocess until its /healthz answers; stop it (and only it) afterwards."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=log,  # noqa: S603
                                   stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}: "
                                       f"{log.read().decode(errors='replace')[-2000:]}")
                try:
                    if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(argv)} did not answer on {base_url} within {timeout:.0f} s")
                time.sleep(0.2)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class HttpFigures:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    #: Set by a driver that reports its own (p50, p99) in ms and request count instead of every latency.
    quantiles_ms: tuple[float, float] | None = None
    requests: int | None = None

    def as_dict(self, ok_status: int) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def quantile(q: float) -> float | None:
            if self.quantiles_ms is not None:
                return round(self.quantiles_ms[0 if q == 0.50 else 1], 2)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else None

        ok = self.statuses.get(ok_status, 0)
        requests = self.requests if self.requests is not None else len(ordered)
        return {"requests_per_second": round(ok / self.seconds) if self.seconds else 0, "requests": requests,
                "ok": ok, "seconds": round(self.seconds, 2), "p50_ms": quantile(0.50), "p99_ms": quantile(0.99),
                "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
                "failures": dict(self.failures)}


#: The next request of a load: its JSON body and the headers of that one request (e.g. an Idempotency-Key).
NextRequest = Callable[[], tuple[dict[str, Any], dict[str, str]]]


def drive(base_url: str, path: str, headers: dict[str, str], next_request: NextRequest, *,
          seconds: float, concurrency: int, ticker: _Ticker | None = None) -> HttpFigures:
    """``concurrency`` threads, each an httpx client on its own keep-alive connection, post back to back.

    Threads rather than asyncio: httpx's sync client costs less CPU per request, and the load
    generator shares the machine with the server and the database.
    """
    figures = HttpFigures()
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def client_loop() -> None:
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        failures: Counter[str] = Counter()
        with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:
            while time.perf_counter() < deadline:
                with lock:
                    payload, request_headers = next_request()
                sent = time.perf_counter()
                try:
                    response = client.post(path, json=payload, headers=request_headers)
                except httpx.HTTPError as error:
                    failures[type(error).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                statuses[response.status_code] += 1
        with lock:
            figures.latencies.extend(latencies)
            figures.statuses.update(statuses)
            figures.failures.update(failures)

    clients = [threading.Thread(target=client_loop, name=f"bench-client-{n}", daemon=True)
               for n in range(concurrency)]
    for client in clients:
        client.start()
    last = started
    for client in clients:
        while client.is_alive():
            client.join(0.25)
            now = time.perf_counter()
            if ticker is not None:
                ticker.advance(now - last)
            last = now
    figures.seconds = time.perf_counter() - started
    return figures


# wrk runs this script in each of its threads: random transfers between the hot accounts with fresh keys
# (a thread and run prefix plus a counter), statuses counted per thread and gathered in ``done``.
_WRK_SCRIPT = r"""
local accounts = {%(accounts)s}
local threads = {}
local counter = 0
function setup(thread)
  table.insert(threads, thread)
  thread:set("prefix", "%(run)s-t" .. #threads .. "-")
  thread:set("seed", %(seed)d + #threads)
end
function init(args)
  math.randomseed(seed)
  statuses = {}
end
request = function()
  counter = counter + 1
  local a = math.random(#accounts)
  local b = math.random(#accounts - 1)
  if b >= a then b = b + 1 end
  local body = string.format(
    '{"key":"%%s%%d","debit_account_id":"%%s","credit_account_id":"%%s","amount":%%d,"currency":"%(currency)s"}',
    prefix, counter, accounts[a], accounts[b], math.random(1, %(largest)d))
  return wrk.format("POST", "%(path)s", %(headers)s, body)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local counts = {}
  for status, count in pairs(totals) do
    counts[#counts + 1] = string.format('"%%d":%%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'FINLOOP_WRK {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"statuses":{%%s},' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"timeout":%%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    table.concat(counts, ","), e.connect, e.read, e.write, e.timeout))
end
"""


def wrk_available() -> str | None:
    """The path of ``wrk`` when it is installed (Debian: ``apt-get install wrk``)."""
    return shutil.which("wrk")


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII is a valid Lua string literal


def drive_wrk(base_url: str, path: str, headers: dict[str, str], account_ids: list[str], *, seconds: float,
              concurrency: int, run: str, seed: int, threads: int = 2) -> HttpFigures:
    """``concurrency`` keep-alive connections posting back to back from ``wrk`` (at most ``threads``
    threads of its own), for ``seconds`` rounded up to whole seconds (wrk counts in seconds)."""
    wrk = wrk_available()
    if wrk is None:
        raise RuntimeError("wrk is not on PATH")
    script = _WRK_SCRIPT % {
        "accounts": ",".join(_lua_string(a) for a in account_ids), "run": run, "seed": seed,
        "currency": CURRENCY, "largest": LARGEST_TRANSFER, "path": path,
        "headers": "{" + ", ".join(f"[{_lua_string(k)}]={_lua_string(v)}" for k, v in
                                   {**headers, "Content-Type": "application/json"}.items()) + "}"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="finloop-bench-") as handle:
        handle.write(script)
        handle.flush()
        duration = max(1, math.ceil(seconds))
        completed = subprocess.run(  # noqa: S603 - our own arguments, no shell
            [wrk, f"-t{max(1, min(threads, concurrency))}", f"-c{concurrency}", f"-d{duration}s", "--timeout", "30s",
             "-s", handle.name, base_url + path], capture_output=True, text=True, timeout=duration + 60)
    found = re.search(r"^FINLOOP_WRK (.*)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {(completed.stderr or completed.stdout)[-1000:]}")
    report = json.loads(found.group(1))
    figures = HttpFigures(seconds=report["duration_us"] / 1e6)
    for status, count in report["statuses"].items():
        figures.statuses[int(status)] += count
    figures.failures.update({name: count for name, count in report["errors"].items() if count})
    figures.quantiles_ms = (report["p50_us"] / 1000, report["p99_us"] / 1000)
    figures.requests = report["requests"]
    return figures


def _serve_argv_finloop(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "finloop", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]


def _serve_argv_bare(port: int, workers: int) -> list[str]:
    # The same uvicorn settings as `finloop serve` (finloop/cli.py): warning log level, no access log.
    return [sys.executable, "-m", "uvicorn", "finloop.bench.bare_api:app", "--host", "127.0.0.1", "--port",
            str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]


def http_driver(config: LedgerBenchConfig) -> str:
    """``wrk`` or ``httpx``: the one ``config.http_driver`` asks for, ``auto`` picking wrk when installed."""
    if config.http_driver not in ("auto", "wrk", "httpx"):
        raise ValueError(f"unknown HTTP driver {config.http_driver!r}: auto, wrk or httpx")
    if config.http_driver == "wrk" and wrk_available() is None:
        raise RuntimeError("wrk is not on PATH (Debian: apt-get install wrk)")
    if config.http_driver == "auto":
        return "wrk" if wrk_available() else "httpx"
    return config.http_driver


def _wrk_version() -> str | None:
    wrk = wrk_available()
    if wrk is None:
        return None
    shown = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    return (shown.stdout or shown.stderr).splitlines()[0].strip() if (shown.stdout or shown.stderr) else "wrk"


def _transfers_per_commit(database: Database, since: datetime) -> float | None:
    """Entries per transaction since ``since``: the entries of one commit share their ``created_at``."""
    with database.uow(read_only=True) as uow:
        entries, commits = uow.session.execute(
            select(func.count(Entry.id), func.count(distinct(Entry.created_at))).where(Entry.created_at >= since)).one()
    return round(entries / commits, 2) if commits else None


def bench_http(url: str, backend: str, config: LedgerBenchConfig, progress: Progress | None) -> dict[str, Any]:
    database = Database(url)
    try:
        books = open_books(database, config.accounts)
        workload = Workload(books.account_ids, config.seed, "http")
        headers = {"Authorization": f"Bearer {books.api_key}"}
        driver = http_driver(config)
        results: dict[str, Any] = {"database": backend, "workers": config.http_workers,
                                   "concurrency": config.http_concurrency,
                                   "driver": _wrk_version() if driver == "wrk" else "httpx threads"}
        ledger_env = {"FINLOOP_DATABASE_URL": url, "FINLOOP_LOG_LEVEL": "WARNING"}
        # The same server with group commit turned off shows what gathering concurrent transfers gains.
        runs: list[tuple[str, Callable[[int, int], list[str]], dict[str, str]]] = [
            ("ledger", _serve_argv_finloop, ledger_env),
            ("ledger_one_transaction_each", _serve_argv_finloop, {**ledger_env, "FINLOOP_GROUP_COMMIT_MAX": "0"}),
            ("bare_fastapi", _serve_argv_bare, {})]
        for name, argv, env in runs:
            port = free_port()
            started_at = datetime.now(UTC)
            ticker = _Ticker(progress, f"http {name}", config.http_warmup_seconds + config.http_seconds)
            with served(argv(port, config.http_workers), port, env) as base_url:
                if driver == "wrk":
                    for phase, seconds in (("warm", config.http_warmup_seconds), ("run", config.http_seconds)):
                        figures = drive_wrk(base_url, "/v1/transfers", headers, books.account_ids, seconds=seconds,
                                            concurrency=config.http_concurrency, run=f"http-{name}-{phase}",
                                            seed=config.seed)
                        ticker.advance(seconds)
                else:
                    def transfer() -> tuple[dict[str, Any], dict[str, str]]:
                        return workload.body(), {}

                    drive(base_url, "/v1/transfers", headers, transfer, seconds=config.http_warmup_seconds,
                          concurrency=config.http_concurrency, ticker=ticker)
                    figures = drive(base_url, "/v1/transfers", headers, transfer, seconds=config.http_seconds,
                                    concurrency=config.http_concurrency, ticker=ticker)
            ticker.done()
            results[name] = figures.as_dict(201)
            if name != "bare_fastapi":
                results[name]["transfers_per_commit"] = _transfers_per_commit(database, started_at)
        results["ledger_over_bare"] = _ratio(results["ledger"]["requests_per_second"],
                                             results["bare_fastapi"]["requests_per_second"])
        results["integrity_problems"] = _verify(database)
        return results
    finally:
        database.dispose()


# ---------------------------------------------------------------------------------------------- the run


def machine() -> dict[str, Any]:
    model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])
        memory = round(total_kb / 1024 / 1024, 1)
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gib": memory, "platform": platform.platform(),
            "python": platform.python_version(), "load_average": [round(v, 2) for v in os.getloadavg()]}


def _goal(measured: float | None, target: float, what: str) -> dict[str, Any]:
    return {"what": what, "target": target, "measured": measured,
            "met": measured is not None and measured >= target}


def goals(results: dict[str, Any], batch_sizes: tuple[int, ...]) -> dict[str, Any]:
    """The targets of the posting path, each with what this run measured (None: not measured)."""
    postgres = results.get("in_process", {}).get("postgresql") or {}
    measured = [_label(size) for size in batch_sizes if _label(size) in postgres]
    best = max(measured, key=lambda label: postgres[label]["transfers_per_second"]) if measured else None
    http = results.get("http") or {}
    return {
        "postgresql_batched_per_second": _goal(
            postgres[best]["transfers_per_second"] if best else None, GOAL_BATCHED_PER_SECOND,
            f"in-process posting on PostgreSQL, best batch size ({best})"),
        "postgresql_batched_over_raw_executemany": _goal(
            postgres[best]["ours_over_raw"]["executemany"] if best else None,
            round(GOAL_BATCHED_OVER_RAW_EXECUTEMANY, 3), f"our rate over raw executemany of the same rows ({best})"),
        "http_single_per_second": _goal(
            http["ledger"]["requests_per_second"] if "ledger" in http else None, GOAL_HTTP_PER_SECOND,
            f"single transfers per second over HTTP ({http.get('database')})"),
    }


def run(config: LedgerBenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {"benchmark": "ledger", "machine": machine(), "config": {
        "accounts": config.accounts, "seconds": config.seconds, "rounds": config.rounds,
        "batch_sizes": list(config.batch_sizes), "http_seconds": config.http_seconds,
        "http_concurrency": config.http_concurrency, "http_workers": config.http_workers,
        "http_driver": config.http_driver, "seed": config.seed,
        "postgres_url": make_url(config.postgres_url).render_as_string(hide_password=True)
        if config.postgres_url else None}}
    in_process: dict[str, Any] = {}
    results["in_process"] = in_process
    if config.sqlite:
        in_process["sqlite"] = bench_sqlite(config, progress)
    postgres_problem = postgres_reachable(config.postgres_url) if config.postgres_url else "not requested"
    if postgres_problem is None and config.postgres_url:
        with scratch_postgres(config.postgres_url) as url:
            in_process["postgresql"] = bench_postgres(url, config, progress)
            if config.http:
                results["http"] = bench_http(url, "postgresql", config, progress)
    else:
        in_process["postgresql"] = {"skipped": postgres_problem}
        if config.http:
            with tempfile.TemporaryDirectory(prefix="finloop-bench-http-") as folder:
                url = f"sqlite:///{Path(folder) / 'http.db'}"
                upgrade(url)
                results["http"] = bench_http(url, "sqlite", config, progress)
    results["goals"] = goals(results, config.batch_sizes)
    results["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    return results
