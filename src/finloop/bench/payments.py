"""``finloop bench payments``: payments created and confirmed per second over HTTP, beside their anchor.

Measured in one run, against a scratch PostgreSQL database (created beside ``--postgres-url``'s, dropped
after):

- over HTTP: ``finloop serve --workers 2`` and the sandbox (``finloop sandbox serve``, one ``generic``
  channel ``instant`` set to 100 % success and zero latency through its control API), each its own process
  on a free loopback port, started together with the anchor's (an idle server costs nothing);
  ``POST /v1/payments`` with ``confirm: true``, a card token and a fresh Idempotency-Key per request,
  driven by ``wrk`` (a Lua script) when it is on PATH, else by httpx threads. Only 201s count; p50/p99
  are per request;
- the anchor, with the same driver, connections and workers, measured right after ours: a bare FastAPI
  endpoint that parses the same body and does one psycopg INSERT (committed) per request into a scratch
  table of the same database (``finloop.bench.bare_insert_api``). Goal: ours ≥ half of it;
- the CPU each process spent per request (our server, the sandbox, the database backends serving the
  scratch database, the load generator), so a busy machine still says where the time goes;
- routing: ``finloop.bench.routing.run``'s decision p99 (goal < 1 ms);
- hot accounts (ADR 0002): threads posting payment successes through the real posting function, with
  the channel's receivable and fee expense in one account each (``HOT_SHARDS`` patched to 1, in this
  process only) against sub-accounts (the default), and with every thread on one merchant.

Afterwards the ledger is verified (``verify_integrity``) and every succeeded payment must have exactly one
ledger entry and every other payment none; the problems found are listed (the list must be empty).
"""

from __future__ import annotations

import base64
import itertools
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
from rich.progress import Progress
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from finloop.bench import bare_insert_api
from finloop.bench.ledger import (
    DEFAULT_POSTGRES_URL,
    HttpFigures,
    _goal,
    _ratio,
    _Ticker,
    drive,
    free_port,
    libpq_url,
    machine,
    postgres_reachable,
    scratch_postgres,
)
from finloop.core.errors import FinloopError
from finloop.db.uow import Database

CURRENCY = "CNY"
CHANNEL = "instant"
#: A sandbox test card that always succeeds, whatever the profile (docs/sandbox.md).
SUCCEEDING_CARD = "4000000000000077"
PAYMENT_AMOUNT = 10_000
#: What the hot-account threads post per payment (fee at the channel's 0.6 %).
HOT_AMOUNT, HOT_FEE = 10_000, 60

GOAL_OVER_ANCHOR = 0.5
GOAL_PAYMENTS_PER_SECOND = 1_000
GOAL_ROUTING_P99_US = 1_000

#: The sandbox channel's behaviour during the run: every payment succeeds at once.
INSTANT_PROFILE: dict[str, Any] = {"success_share": "1", "timeout_share": "0", "latency_ms": [0, 0, 0]}


@dataclass(frozen=True)
class PaymentsBenchConfig:
    postgres_url: str = DEFAULT_POSTGRES_URL
    #: Measured seconds per HTTP figure (ours, then the anchor), each after ``warmup_seconds``.
    seconds: float = 15.0
    warmup_seconds: float = 3.0
    connections: int = 16
    workers: int = 2
    #: Payments are spread over this many merchants (each merchant's pending balance is one row).
    merchants: int = 4
    #: "auto" (wrk when on PATH), "wrk" or "httpx".
    driver: str = "auto"
    #: Keep the sandbox's asynchronous notifications (they are POSTed to our server during the run).
    notifications: bool = False
    routing_seconds: float = 2.0
    hot: bool = True
    #: Measured seconds per hot-account variant, in ``hot_rounds`` slices alternating with the others.
    hot_seconds: float = 4.0
    hot_rounds: int = 2
    hot_threads: int = 8
    seed: int = 0


# ---------------------------------------------------------------------------------------------- processes


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (uvicorn's workers), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


class _CpuMeter:
    """CPU seconds of named process trees and of the database backends serving one database."""

    def __init__(self, roots: dict[str, int], database_url: str | None) -> None:
        self._roots = roots
        self._database_url = database_url

    def _backends(self) -> list[int]:
        if self._database_url is None:
            return []
        try:
            with psycopg.connect(self._database_url) as connection:
                rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                          " AND pid <> pg_backend_pid()").fetchall()
        except psycopg.Error:
            return []
        return [int(row[0]) for row in rows]

    def sample(self) -> dict[str, dict[int, float]]:
        sample = {name: {pid: _cpu_seconds(pid) for pid in _descendants(root)} for name, root in self._roots.items()}
        sample["database"] = {pid: _cpu_seconds(pid) for pid in self._backends()}
        sample["driver"] = {0: _children_cpu()}
        return sample

    @staticmethod
    def spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        # A process born during the slice counts from zero; one that ended during it is lost (rare).
        return {name: sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
                for name, pids in after.items()}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class _Server:
    argv: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Running:
    pid: int
    log: IO[bytes]

    def log_tail(self, limit: int = 2000) -> str:
        """The end of what the server wrote (warnings and errors: the servers log at WARNING)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]


@contextmanager
def serving(servers: dict[str, _Server], timeout: float = 90.0) -> Iterator[dict[str, _Running]]:
    """Start every server at once, wait until each health URL answers 200; stop them (and only them) after.

    Yields each server's pid and output. Started together because each spends seconds importing on a busy machine;
    ``finloop.bench.ledger.served`` starts one and waits on ``/healthz``, which the sandbox does not serve.
    """
    with ExitStack() as stack:
        started: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}
        try:
            for name, server in servers.items():
                output: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
                started[name] = (subprocess.Popen(server.argv, env={**os.environ, **server.env},  # noqa: S603
                                                  stdout=output, stderr=subprocess.STDOUT), output)
            pending = dict(servers)
            deadline = time.monotonic() + timeout
            while pending:
                for name in list(pending):
                    process, log = started[name]
                    if process.poll() is not None:
                        log.seek(0)
                        raise RuntimeError(f"{name} ({' '.join(servers[name].argv)}) exited with "
                                           f"{process.returncode}: {log.read().decode(errors='replace')[-2000:]}")
                    try:
                        if httpx.get(pending[name].health_url, timeout=1.0).status_code == 200:
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise RuntimeError(f"{', '.join(pending)} did not answer within {timeout:.0f} s")
                if pending:
                    time.sleep(0.2)
            yield {name: _Running(process.pid, output) for name, (process, output) in started.items()}
        finally:
            for process, _ in started.values():
                process.terminate()
            for process, _ in started.values():
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# ---------------------------------------------------------------------------------------------- set-up


@dataclass
class Shop:
    tenant_id: str
    api_key: str
    merchant_ids: list[str]
    card_id: str
    channel_id: str


def open_tenant(database: Database) -> tuple[str, str]:
    """A tenant and an admin API key, in process (as ``finloop.bench.ledger.open_books`` does)."""
    from finloop.tenancy import service as tenancy
    from finloop.tenancy.service import Role

    with database.uow() as uow:
        tenant = tenancy.create_tenant(uow, name="bench payments", actor="bench")
        _, secret = tenancy.issue_api_key(uow, tenant.id, name="bench", role=Role.ADMIN, actor="bench")
        uow.commit()
    return tenant.id, secret


def _created(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 201:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def open_shop(api: str, sandbox: str, tenant_id: str, api_key: str, merchants: int, notifications: bool) -> Shop:
    """Merchants, the sandbox channel and a card, through the API; the channel set to instant success."""
    from finloop.payments.connectors.sandbox.provider import sandbox_provider

    profile = {**INSTANT_PROFILE, **({} if notifications else {"notify_loss_share": "1"})}
    response = httpx.put(f"{sandbox}/_control/channels/{CHANNEL}/profile", json=profile, timeout=10.0)
    response.raise_for_status()
    config = sandbox_provider("generic").channel_config(CHANNEL, f"{sandbox}/{CHANNEL}")
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {api_key}"}, timeout=30.0) as client:
        channel = _created(client.post("/v1/channels", json={
            "code": CHANNEL, "provider": config.provider, "base_url": config.base_url, "methods": ["card"],
            "currencies": [CURRENCY], "fee_rate": "0.006", "settings": {k: str(v) for k, v in config.settings.items()},
            "credentials": dict(config.credentials)}))
        merchant_ids = [_created(client.post("/v1/merchants", json={"reference": f"M{index}",
                                                                    "name": f"Bench merchant {index}"}))["id"]
                        for index in range(merchants)]
        card = _created(client.post("/v1/cards", json={"number": SUCCEEDING_CARD, "exp_month": 12,
                                                       "exp_year": 2035}))
    return Shop(tenant_id, api_key, merchant_ids, card["id"], channel["id"])


# ---------------------------------------------------------------------------------------------- load


def payment_body(shop: Shop, index: int) -> dict[str, Any]:
    return {"merchant_id": shop.merchant_ids[index % len(shop.merchant_ids)], "amount": PAYMENT_AMOUNT + index % 997,
            "currency": CURRENCY, "method": "card", "card_id": shop.card_id, "confirm": True}


_WRK_SCRIPT = """
-- Generated by finloop.bench.payments: one payment per request, a fresh Idempotency-Key each.
local merchants = {%(merchants)s}
local card = "%(card)s"
local run = "%(run)s"
local auth = "Bearer %(api_key)s"
local threads = {}
local counter = 0
statuses = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"merchant_id":"%%s","amount":%%d,"currency":"%(currency)s","method":"card","card_id":"%%s","confirm":true}',
    merchants[(counter %% #merchants) + 1], %(amount)d + counter %% 997, card)
  local headers = {["Authorization"] = auth, ["Content-Type"] = "application/json",
                   ["Idempotency-Key"] = run .. "-" .. tid .. "-" .. counter}
  return wrk.format("POST", "/v1/payments", headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("FINLOOP summary %%d %%d\\n", summary.requests, summary.duration))
  local e = summary.errors
  io.write(string.format("FINLOOP errors %%d %%d %%d %%d %%d\\n", e.connect, e.read, e.write, e.status, e.timeout))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("FINLOOP latency %%g %%d\\n", p, latency:percentile(p)))
  end
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("FINLOOP status %%d %%d\\n", status, count))
    end
  end
end
"""


def _lua_list(values: list[str]) -> str:
    return ", ".join(f'"{value}"' for value in values)


@dataclass
class DriverFigures:
    """One measured slice, whichever the driver; ``as_dict`` has ``HttpFigures.as_dict``'s shape."""

    seconds: float = 0.0
    requests: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    #: Statuses and failures of the unmeasured warm-up before this slice.
    warmup: dict[str, Any] | None = None

    @classmethod
    def of(cls, figures: HttpFigures) -> DriverFigures:
        shaped = figures.as_dict(201)
        return cls(figures.seconds, len(figures.latencies), shaped["p50_ms"], shaped["p99_ms"],
                   Counter(figures.statuses), Counter(figures.failures))

    @property
    def ok(self) -> int:
        return self.statuses.get(201, 0)

    def as_dict(self) -> dict[str, Any]:
        ok = self.ok
        return {"requests_per_second": round(ok / self.seconds) if self.seconds else 0, "requests": self.requests,
                "ok": ok, "seconds": round(self.seconds, 2), "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
                "failures": dict(self.failures),
                "cpu_ms_per_request": {name: round(seconds / ok * 1000, 2) if ok else None
                                       for name, seconds in self.cpu.items()},
                "warmup": self.warmup}


def _run_wrk(base_url: str, shop: Shop, *, seconds: float, connections: int, ticker: _Ticker | None) -> DriverFigures:
    script = _WRK_SCRIPT % {"merchants": _lua_list(shop.merchant_ids), "card": shop.card_id,
                            "run": secrets.token_hex(6), "api_key": shop.api_key, "currency": CURRENCY,
                            "amount": PAYMENT_AMOUNT}
    duration = max(1, round(seconds))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="finloop-bench-") as file:
        file.write(script)
        file.flush()
        argv = ["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d", f"{duration}s",
                "--timeout", "30s", "-s", file.name, base_url]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
        last = time.perf_counter()
        while process.poll() is None:
            time.sleep(0.25)
            now = time.perf_counter()
            if ticker is not None:
                ticker.advance(now - last)
            last = now
        out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}: {err[-2000:]}")
    figures = DriverFigures()
    for line in out.splitlines():
        parts = line.split()
        if not parts or parts[0] != "FINLOOP":
            continue
        if parts[1] == "summary":
            figures.requests, figures.seconds = int(parts[2]), int(parts[3]) / 1e6
        elif parts[1] == "errors":
            for name, count in zip(("connect", "read", "write", "status", "timeout"), parts[2:], strict=True):
                if int(count) and name != "status":  # non-2xx statuses are counted by status below
                    figures.failures[name] = int(count)
        elif parts[1] == "latency":
            value = round(int(parts[3]) / 1000, 2)
            if parts[2] == "50":
                figures.p50_ms = value
            elif parts[2] == "99":
                figures.p99_ms = value
        elif parts[1] == "status":
            figures.statuses[int(parts[2])] += int(parts[3])
    return figures


def _run_httpx(base_url: str, shop: Shop, *, seconds: float, connections: int,
               ticker: _Ticker | None) -> DriverFigures:
    """The fallback driver: the ledger bench's httpx threads, with a fresh Idempotency-Key per payment."""
    run = secrets.token_hex(6)
    count = itertools.count(1)

    def next_payment() -> tuple[dict[str, Any], dict[str, str]]:
        index = next(count)
        return payment_body(shop, index), {"Idempotency-Key": f"{run}-{index}"}

    figures = drive(base_url, "/v1/payments", {"Authorization": f"Bearer {shop.api_key}"}, next_payment,
                    seconds=seconds, concurrency=connections, ticker=ticker)
    return DriverFigures.of(figures)


def choose_driver(requested: str) -> str:
    if requested == "auto":
        return "wrk" if shutil.which("wrk") else "httpx"
    if requested not in ("wrk", "httpx"):
        raise ValueError(f"unknown driver {requested!r}: auto, wrk or httpx")
    if requested == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not on PATH (Debian: apt-get install wrk); use --driver httpx")
    return requested


def measure(driver: str, base_url: str, shop: Shop, config: PaymentsBenchConfig, meter: _CpuMeter,
            ticker: _Ticker | None) -> DriverFigures:
    """A warm-up (not counted), then the measured slice with the CPU each process spent on it."""
    run = _run_wrk if driver == "wrk" else _run_httpx
    warmup = None
    if config.warmup_seconds > 0:
        unmeasured = run(base_url, shop, seconds=config.warmup_seconds, connections=config.connections,
                         ticker=ticker)
        warmup = {"statuses": {str(code): count for code, count in sorted(unmeasured.statuses.items())},
                  "failures": dict(unmeasured.failures)}
    python_before = time.process_time()
    before = meter.sample()
    figures = run(base_url, shop, seconds=config.seconds, connections=config.connections, ticker=ticker)
    spent = meter.spent(before, meter.sample())
    if driver == "httpx":
        spent["driver"] = time.process_time() - python_before
    figures.cpu = spent
    figures.warmup = warmup
    return figures


# ---------------------------------------------------------------------------------------------- hot accounts


@dataclass
class _HotVariant:
    name: str
    shards: int
    one_merchant: bool
    channel: str
    posted: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def quantile(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else None

        return {"shards": self.shards, "merchants": "one" if self.one_merchant else "one per thread",
                "postings_per_second": round(self.posted / self.seconds) if self.seconds else 0,
                "postings": self.posted, "seconds": round(self.seconds, 2), "p50_ms": quantile(0.5),
                "p99_ms": quantile(0.99), "failures": dict(self.failures)}


@contextmanager
def _hot_shards(count: int) -> Iterator[None]:
    """``HOT_SHARDS`` patched in this process only, for one measurement."""
    from finloop.payments import postings

    saved = postings.HOT_SHARDS
    postings.HOT_SHARDS = count
    try:
        yield
    finally:
        postings.HOT_SHARDS = saved


def _post_success(database: Database, tenant_id: str, merchant_id: str, channel: str) -> None:
    from finloop.payments.models import Payment
    from finloop.payments.postings import post_payment_captured

    # The posting function reads only these attributes: no payment row is needed.
    payment = Payment(id=database.ids.new("payment"), tenant_id=tenant_id, merchant_id=merchant_id,
                      currency=CURRENCY)
    with database.uow() as uow:
        post_payment_captured(uow, payment, attempt_id=uow.ids.new("attempt"), channel=channel, amount=HOT_AMOUNT,
                              fee=HOT_FEE)
        uow.commit()


def _warm_hot(database: Database, tenant_id: str, variant: _HotVariant, merchants: list[str]) -> None:
    """Create every account the variant touches (first use creates it), so only postings are timed."""
    from finloop.payments import postings

    for merchant_id in merchants:
        _post_success(database, tenant_id, merchant_id, variant.channel)
    seen: set[int] = set()
    while len(seen) < variant.shards:
        payment_id = database.ids.new("payment")
        shard = postings.shard_of(payment_id)
        if shard in seen:
            continue
        seen.add(shard)
        from finloop.payments.models import Payment

        with database.uow() as uow:
            postings.post_payment_captured(
                uow, Payment(id=payment_id, tenant_id=tenant_id, merchant_id=merchants[0], currency=CURRENCY),
                attempt_id=uow.ids.new("attempt"), channel=variant.channel, amount=HOT_AMOUNT, fee=HOT_FEE)
            uow.commit()


def _hot_slice(database: Database, tenant_id: str, variant: _HotVariant, merchants: list[str], seconds: float,
               ticker: _Ticker | None) -> None:
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def worker(merchant_id: str) -> None:
        latencies: list[float] = []
        failures: Counter[str] = Counter()
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                _post_success(database, tenant_id, merchant_id, variant.channel)
            except (SQLAlchemyError, FinloopError) as error:  # reported: the list must stay empty
                failures[type(error).__name__] += 1
                continue
            latencies.append(time.perf_counter() - sent)
        with lock:
            variant.latencies.extend(latencies)
            variant.posted += len(latencies)
            variant.failures.update(failures)

    threads = [threading.Thread(target=worker, args=(merchant,), name=f"bench-hot-{n}", daemon=True)
               for n, merchant in enumerate(merchants)]
    for thread in threads:
        thread.start()
    last = started
    for thread in threads:
        while thread.is_alive():
            thread.join(0.25)
            now = time.perf_counter()
            if ticker is not None:
                ticker.advance(now - last)
            last = now
    variant.seconds += time.perf_counter() - started


def bench_hot_accounts(url: str, tenant_id: str, config: PaymentsBenchConfig,
                       progress: Progress | None) -> dict[str, Any]:
    """Successful payments posted by ``hot_threads`` threads: one account per hot account against sub-accounts."""
    from finloop.payments import postings
    from finloop.payments import service as payments

    default_shards = postings.HOT_SHARDS
    variants = [_HotVariant("single_account", 1, False, "hot-single"),
                _HotVariant("sub_accounts", default_shards, False, "hot-sharded"),
                _HotVariant("sub_accounts_one_merchant", default_shards, True, "hot-one-merchant")]
    database = Database(url, pool_size=config.hot_threads + 1, max_overflow=0)
    try:
        with database.uow() as uow:
            merchants = [payments.create_merchant(uow, tenant_id, reference=f"HOT{index}",
                                                  name=f"Hot merchant {index}").id
                         for index in range(config.hot_threads)]
            uow.commit()
        tickers = {variant.name: _Ticker(progress, f"hot {variant.name}", config.hot_seconds)
                   for variant in variants}
        for variant in variants:
            with _hot_shards(variant.shards):
                _warm_hot(database, tenant_id, variant, merchants)
        for _ in range(config.hot_rounds):
            for variant in variants:
                threads_merchants = [merchants[0]] * config.hot_threads if variant.one_merchant else merchants
                with _hot_shards(variant.shards):
                    _hot_slice(database, tenant_id, variant, threads_merchants, config.hot_seconds / config.hot_rounds,
                               tickers[variant.name])
        for ticker in tickers.values():
            ticker.done()
        with database.uow(read_only=True) as uow:
            # Proof of what each variant wrote to: receivable sub-accounts of its channel.
            receivables = {variant.name: int(uow.session.execute(
                text("SELECT count(*) FROM accounts WHERE tenant_id = :tenant AND code LIKE :prefix"),
                {"tenant": tenant_id, "prefix": postings.channel_receivable_code(variant.channel, 0)[:-1] + "%"},
            ).scalar_one()) for variant in variants}
    finally:
        database.dispose()
    results: dict[str, Any] = {
        "what": f"{config.hot_threads} threads posting payment successes through post_payment_captured (one "
                "transaction and commit each) on one channel; HOT_SHARDS patched in this process only",
        "threads": config.hot_threads}
    for variant in variants:
        results[variant.name] = {**variant.as_dict(), "receivable_accounts": receivables[variant.name]}
    results["sub_accounts_over_single_account"] = _ratio(results["sub_accounts"]["postings_per_second"],
                                                         results["single_account"]["postings_per_second"])
    results["one_merchant_over_sub_accounts"] = _ratio(results["sub_accounts_one_merchant"]["postings_per_second"],
                                                       results["sub_accounts"]["postings_per_second"])
    return results


# ---------------------------------------------------------------------------------------------- checks


_PAYMENT_ENTRIES = text("""
WITH posted AS (
    SELECT split_part(transfer_key, ':', 2) AS payment_id, count(*) AS entries, min(id) AS entry_id
    FROM entries WHERE tenant_id = :tenant AND transfer_key LIKE 'payment:%'
    GROUP BY 1)
SELECT p.id, p.status, coalesce(posted.entries, 0), p.ledger_entry_id, posted.entry_id
FROM payments p LEFT JOIN posted ON posted.payment_id = p.id
WHERE p.tenant_id = :tenant
  AND (coalesce(posted.entries, 0) <> CASE WHEN p.status = 'succeeded' THEN 1 ELSE 0 END
       OR (p.status = 'succeeded' AND p.ledger_entry_id IS DISTINCT FROM posted.entry_id))
ORDER BY p.id LIMIT 20
""")


_UNFINISHED = text("""
SELECT p.id, p.status, a.status, a.error_code, a.error_message
FROM payments p LEFT JOIN payment_attempts a ON a.payment_id = p.id
WHERE p.tenant_id = :tenant AND p.status <> 'succeeded'
ORDER BY p.id, a.sequence LIMIT 10
""")


def verify(url: str, tenant_id: str) -> tuple[dict[str, int], list[str], list[str]]:
    """Payment statuses; the problems (the ledger's own checks, then payments against their entries); and
    what became of a few payments that did not succeed (an open attempt is left for the resolve job)."""
    from finloop.ledger import service as ledger

    database = Database(url)
    try:
        with database.uow(read_only=True) as uow:
            problems = list(ledger.verify_integrity(uow))
            statuses = {str(status): int(count) for status, count in uow.session.execute(
                text("SELECT status, count(*) FROM payments WHERE tenant_id = :tenant GROUP BY status"),
                {"tenant": tenant_id})}
            for payment_id, status, entries, ledger_entry_id, entry_id in uow.session.execute(
                    _PAYMENT_ENTRIES, {"tenant": tenant_id}):
                problems.append(f"payment {payment_id} ({status}) has {entries} ledger entries"
                                f" (ledger_entry_id {ledger_entry_id}, entry {entry_id})")
            unfinished = [f"payment {payment_id} {status}: attempt {attempt_status} {code or ''} {message or ''}"
                          .rstrip() for payment_id, status, attempt_status, code, message
                          in uow.session.execute(_UNFINISHED, {"tenant": tenant_id})]
    finally:
        database.dispose()
    return statuses, problems, unfinished


# ---------------------------------------------------------------------------------------------- the run


def _goal_under(measured: float | None, limit: float, what: str) -> dict[str, Any]:
    return {"what": what, "limit": limit, "measured": measured, "met": measured is not None and measured < limit}


def goals(results: dict[str, Any]) -> dict[str, Any]:
    http = results.get("http") or {}
    ours = (http.get("payments") or {}).get("requests_per_second")
    routing = (results.get("routing") or {}).get("decision") or {}
    return {
        "payments_over_bare_insert": _goal(http.get("payments_over_bare_insert"), GOAL_OVER_ANCHOR,
                                           "payments created and confirmed per second over the bare FastAPI "
                                           "endpoint doing one PostgreSQL insert, same run, driver and workers"),
        "payments_per_second": _goal(ours, GOAL_PAYMENTS_PER_SECOND,
                                     "payments created and confirmed per second over HTTP (the issue's "
                                     "estimate of half the anchor on its machine)"),
        "routing_decision_p99_us": _goal_under(routing.get("p99_us"), GOAL_ROUTING_P99_US,
                                               "one routing decision in process, p99 in µs"),
    }


def bench_http(url: str, config: PaymentsBenchConfig, progress: Progress | None) -> dict[str, Any]:
    """Ours, then the anchor, each served on a free port and driven the same way."""
    driver = choose_driver(config.driver)
    database = Database(url)
    try:
        tenant_id, api_key = open_tenant(database)
    finally:
        database.dispose()
    with psycopg.connect(libpq_url(url)) as connection:
        connection.execute(bare_insert_api.CREATE_TABLE)
        connection.commit()
    results: dict[str, Any] = {"driver": driver, "workers": config.workers, "connections": config.connections,
                               "merchants": config.merchants, "tenant_id": tenant_id}
    measured = config.warmup_seconds + config.seconds
    api_port, sandbox_port, anchor_port = free_port(), free_port(), free_port()
    api_url, sandbox_url, anchor_url = (f"http://127.0.0.1:{port}" for port in (api_port, sandbox_port, anchor_port))
    master_key = base64.b64encode(secrets.token_bytes(32)).decode()
    database_backends = libpq_url(url)
    servers = {
        "finloop": _Server(
            [sys.executable, "-m", "finloop", "serve", "--host", "127.0.0.1", "--port", str(api_port),
             "--workers", str(config.workers)], f"{api_url}/healthz",
            {"FINLOOP_DATABASE_URL": url, "FINLOOP_LOG_LEVEL": "WARNING", "FINLOOP_PUBLIC_URL": api_url,
             "FINLOOP_VAULT_MASTER_KEY": master_key}),
        "sandbox": _Server(
            [sys.executable, "-m", "finloop", "sandbox", "serve", "--host", "127.0.0.1", "--port", str(sandbox_port),
             "--channel", f"{CHANNEL}=generic", "--seed", str(config.seed)], f"{sandbox_url}/_control/time"),
        # The same uvicorn settings as `finloop serve` (finloop/cli.py): warning log level, no access log.
        "anchor": _Server(
            [sys.executable, "-m", "uvicorn", "finloop.bench.bare_insert_api:app", "--host", "127.0.0.1", "--port",
             str(anchor_port), "--workers", str(config.workers), "--log-level", "warning", "--no-access-log"],
            f"{anchor_url}/healthz", {bare_insert_api.DATABASE_URL_ENV: database_backends}),
    }
    with serving(servers) as running:
        shop = open_shop(api_url, sandbox_url, tenant_id, api_key, config.merchants, config.notifications)
        # Each idles while the other is measured.
        meter = _CpuMeter({"server": running["finloop"].pid, "sandbox": running["sandbox"].pid}, database_backends)
        ours = measure(driver, api_url, shop, config, meter, _Ticker(progress, "http payments", measured))
        meter = _CpuMeter({"server": running["anchor"].pid}, database_backends)
        anchor = measure(driver, anchor_url, shop, config, meter, _Ticker(progress, "http bare insert", measured))
        # The sandbox prints its channel configurations when it starts: only the API servers' logs are kept.
        logs = {name: running[name].log_tail() for name in ("finloop", "anchor")}
    results["payments"] = ours.as_dict()
    results["bare_insert"] = anchor.as_dict()
    results["server_log_tails"] = {name: tail for name, tail in logs.items() if tail.strip()}
    results["payments_over_bare_insert"] = _ratio(ours.ok / ours.seconds if ours.seconds else 0.0,
                                                  anchor.ok / anchor.seconds if anchor.seconds else 0.0)
    return results


def run(config: PaymentsBenchConfig, progress: Progress | None = None) -> dict[str, Any]:
    from finloop.bench import routing

    started = time.perf_counter()
    results: dict[str, Any] = {"benchmark": "payments", "machine": machine(), "config": {
        "seconds": config.seconds, "warmup_seconds": config.warmup_seconds, "connections": config.connections,
        "workers": config.workers, "merchants": config.merchants, "driver": config.driver,
        "notifications": config.notifications, "routing_seconds": config.routing_seconds,
        "hot_seconds": config.hot_seconds, "hot_rounds": config.hot_rounds, "hot_threads": config.hot_threads,
        "seed": config.seed, "postgres_url": make_url(config.postgres_url).render_as_string(hide_password=True)}}
    problem = postgres_reachable(config.postgres_url)
    if problem is not None:
        raise RuntimeError(f"PostgreSQL is needed at {config.postgres_url}: {problem}")
    with scratch_postgres(config.postgres_url) as url:
        results["http"] = bench_http(url, config, progress)
        routing_ticker = _Ticker(progress, "routing", config.routing_seconds)
        results["routing"] = routing.run(seconds=config.routing_seconds, seed=config.seed)
        routing_ticker.done()
        tenant_id = results["http"]["tenant_id"]
        if config.hot:
            results["hot_accounts"] = bench_hot_accounts(url, tenant_id, config, progress)
        statuses, problems, unfinished = verify(url, tenant_id)
        results["http"]["payments"]["statuses_in_database"] = statuses
        results["http"]["payments"]["unfinished_in_database"] = unfinished
        results["problems"] = problems
    results["goals"] = goals(results)
    results["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    results["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    return results
