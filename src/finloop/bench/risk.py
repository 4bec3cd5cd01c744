"""``finloop bench risk``: decisions per second and latency beside a single bare rule evaluation.

Measured in one run, in-process:

- ``decide()`` end to end on a temporary SQLite database, and on a scratch PostgreSQL database (beside
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) when that server answers: a published rule set of
  ``rules`` generated rules of mixed cost (comparisons, string functions, regular expressions, list
  macros, velocity features), random events of a pool of customers, cards, devices and IPs; one
  transaction per decision holding the list lookup, the velocity read, the evaluation, the decision insert
  and the velocity update, committed. p50/p99 per decision and decisions per second;
- the same on SQLite with the velocity counters in Redis (``127.0.0.1:6379``, or
  ``FINLOOP_BENCH_REDIS_URL``) when it answers;
- the engine alone: context built once plus every live rule evaluated (no database);
- the anchor: one bare compiled rule (``event.amount > 100000``) evaluated against a built context.

The latency goal is p99 under 5 ms in-process for 100 rules plus one model: each database variant's tenant
has a LightGBM champion trained on a simulated labelled history (``risk.ml.bench.install_champion``), so
every ``decide()`` also scores the model.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from finloop.db import migrate
from finloop.db.uow import Database

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
GOAL_P99_MS = 5.0

_TEMPLATES: list[Callable[[random.Random], str]] = [
    lambda r: f"event.amount > {r.randrange(10_000, 1_000_000)}",
    lambda r: f"event.amount > {r.randrange(1000, 50_000)} && event.currency == 'USD'",
    lambda r: f"event.hour < {r.randrange(1, 7)} && event.method == 'card'",
    lambda r: "event.card_country != '' && event.card_country != event.ip_country",
    lambda r: f"customer.age_days < {r.randrange(1, 30)} && event.amount > {r.randrange(1000, 100_000)}",
    lambda r: f"features['customer.count.1h'] > {r.randrange(2, 20)}",
    lambda r: f"features['card.sum.24h'] + event.amount > {r.randrange(100_000, 5_000_000)}",
    lambda r: f"features['device.distinct_cards.24h'] > {r.randrange(2, 6)}",
    lambda r: "'grey:ip' in lists || 'grey:device' in lists",
    lambda r: "lists.exists(l, l.startsWith('grey:'))",
    lambda r: f"event.merchant_id.startsWith('m_{r.randrange(0, 10)}')",
    lambda r: f"event.ip.matches('^10[.]{r.randrange(0, 256)}[.]')",
    lambda r: f"event.method in ['wallet', 'bank'] && event.amount % {r.choice([1000, 5000, 10000])} == 0",
    lambda r: f"device.is_new && customer.is_new && event.amount > {r.randrange(1000, 20_000)}",
]


def generate_rules(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rules = []
    for i in range(count):
        expression = _TEMPLATES[i % len(_TEMPLATES)](rng)
        forced = "review" if i % 25 == 24 else None
        rules.append({"id": f"r{i:04d}", "description": f"generated {i}", "expression": expression,
                      "score": 0 if forced else rng.randrange(1, 8), "outcome": forced, "event_types": ["payment"]})
    return rules


def _event(rng: random.Random) -> dict[str, Any]:
    return {
        "amount": rng.randrange(100, 500_000), "currency": rng.choice(["CNY", "USD"]),
        "method": rng.choice(["card", "wallet", "bank"]), "channel": "generic",
        "merchant_id": f"m_{rng.randrange(100)}", "customer_id": f"cus_{rng.randrange(1000)}",
        "card_token": f"card_{rng.randrange(2000)}", "device_id": f"dev_{rng.randrange(800)}",
        "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "ip_country": rng.choice(["CN", "US", "GB"]), "card_country": rng.choice(["CN", "US", "GB", ""]),
        "phone": f"+86138{rng.randrange(10**8):08d}",
        "customer": {"age_days": rng.randrange(0, 2000), "is_new": rng.random() < 0.1, "segment": "retail"},
        "device": {"is_new": rng.random() < 0.05},
    }


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    if not ordered:
        return {"samples": 0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 2)

    return {"samples": len(ordered), "p50_us": at(0.50), "p99_us": at(0.99), "max_us": round(ordered[-1] / 1000, 2)}


def _timed(step: Callable[[], object], seconds: float) -> tuple[list[int], float]:
    samples: list[int] = []
    began = time.perf_counter()
    deadline = began + seconds
    while True:
        start = time.perf_counter_ns()
        step()
        samples.append(time.perf_counter_ns() - start)
        if time.perf_counter() >= deadline:
            break
    return samples, time.perf_counter() - began


def _setup(db: Database, rules: list[dict[str, Any]]) -> str:
    from finloop.risk import lists, service
    from finloop.risk.ml.bench import install_champion
    from finloop.tenancy import service as tenancy
    from finloop.tenancy.service import Principal, Role

    with db.uow() as uow:
        tenant = tenancy.create_tenant(uow, name="Risk bench", actor="bench")
        tenant_id = tenant.id
        maker = Principal(tenant_id, "user:bench-maker", frozenset({Role.RISK_ANALYST}), user_id="usr_bench_maker")
        checker = Principal(tenant_id, "user:bench-checker", frozenset({Role.RISK_ANALYST}),
                            user_id="usr_bench_checker")
        rule_set = service.create_rule_set(uow, tenant_id, name="bench", actor="bench")
        version = service.create_version(uow, tenant_id, rule_set.id, rules=rules, actor="bench",
                                         thresholds={"payment": {"review": 40, "decline": 80}})
        version = service.request_publish(uow, maker, rule_set.id, version.id)
        tenancy.decide_approval(uow, checker, version.approval_id or "", approve=True)
        service.request_publish(uow, maker, rule_set.id, version.id)
        for i in range(20):
            lists.add_entry(uow, tenant_id, kind="grey", level="ip", value=f"10.{i}.0.1", reason="bench",
                            actor="bench")
        install_champion(uow, tenant_id)
        uow.commit()
    return tenant_id


def _bench_database(url: str, rules: list[dict[str, Any]], seconds: float, seed: int,
                    redis_url: str | None = None) -> dict[str, Any]:
    """``redis_url``: velocity counters in Redis (keys under a run-specific prefix, deleted afterwards)."""
    if redis_url is None:
        return _bench_decide(url, rules, seconds, seed)
    import redis

    from finloop.risk import velocity

    client = redis.Redis.from_url(redis_url)
    prefix = f"finloop:bench-risk:{os.getpid()}:{time.time_ns()}"
    try:
        with velocity.use_store(velocity.RedisStore(client, prefix=prefix)):
            return _bench_decide(url, rules, seconds, seed)
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


def _redis_reachable(url: str) -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as error:
        return str(error) or type(error).__name__
    return None


def _bench_decide(url: str, rules: list[dict[str, Any]], seconds: float, seed: int) -> dict[str, Any]:
    from finloop.risk import service

    db = Database(url)
    try:
        tenant_id = _setup(db, rules)
        rng = random.Random(seed)
        outcomes = {"approve": 0, "review": 0, "decline": 0}
        clock_offset = [0]
        base = db.clock.now()

        def one() -> None:
            clock_offset[0] += 1
            with db.uow() as uow:
                decision = service.decide(uow, tenant_id, event_type="payment", event=_event(rng),
                                          at=base + timedelta(milliseconds=clock_offset[0] * 50))
                uow.commit()
            outcomes[decision.outcome.value] += 1

        _timed(one, min(0.5, seconds / 4))  # warm: caches, compiled rules, connections
        if db.engine.dialect.name == "postgresql":
            # The scratch tables were just filled: without statistics the planner scans what an index would find.
            with db.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        for key in outcomes:
            outcomes[key] = 0
        samples, elapsed = _timed(one, seconds)
        return {**_percentiles(samples), "decisions_per_second": round(len(samples) / elapsed, 1),
                "outcomes": outcomes}
    finally:
        db.dispose()


def _engine_only(rules: list[dict[str, Any]], seconds: float, seed: int) -> dict[str, Any]:
    from finloop.risk import rules as risk_rules
    from finloop.risk import service, velocity
    from finloop.risk.domain import parse_rules, parse_thresholds

    compiled = service.compile_version("bench", parse_rules(rules), parse_thresholds(None))
    rng = random.Random(seed)
    features = dict.fromkeys(velocity.FEATURE_NAMES, 1)
    events = [_event(rng) for _ in range(256)]
    now = time.gmtime()
    from datetime import UTC, datetime

    at = datetime(now.tm_year, now.tm_mon, now.tm_mday, tzinfo=UTC)
    index = [0]

    def one() -> None:
        index[0] += 1
        event = events[index[0] % len(events)]
        context = risk_rules.make_context(service.context_values("payment", event, at=at, features=features,
                                                                 lists=["grey:ip"], model={}))
        service.evaluate(compiled, context, event_type="payment")

    _timed(one, min(0.3, seconds / 4))
    samples, elapsed = _timed(one, seconds)
    bare = risk_rules.compile_rule("event.amount > 100000")
    context = risk_rules.make_context(service.context_values("payment", events[0], at=at, features=features,
                                                             lists=[], model={}))
    anchor_samples, anchor_elapsed = _timed(lambda: bare.evaluate(context), min(1.0, seconds / 2))
    return {"engine": {**_percentiles(samples), "per_second": round(len(samples) / elapsed, 1)},
            "anchor": {"what": "one bare compiled rule evaluation (event.amount > 100000)",
                       **_percentiles(anchor_samples), "per_second": round(len(anchor_samples) / anchor_elapsed, 1)}}


def run(*, seconds: float, rules: int, seed: int, postgres_url: str | None = None,
        postgres: bool = True, redis: bool = True) -> dict[str, Any]:
    """The figures as a dict (JSON-ready); ``postgres=False`` / ``redis=False`` skip those variants."""
    generated = generate_rules(rules, seed)
    result: dict[str, Any] = {"rules": rules, "seed": seed, "seconds": seconds, "model": "LightGBM champion (80 trees)",
                              "goal_p99_ms": GOAL_P99_MS}
    result.update(_engine_only(generated, seconds, seed))
    with tempfile.TemporaryDirectory(prefix="finloop-bench-risk-") as directory:
        url = f"sqlite:///{Path(directory) / 'risk.db'}"
        migrate.upgrade(url)
        result["sqlite"] = _bench_database(url, generated, seconds, seed)
    redis_url = os.environ.get("FINLOOP_BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    redis_why_not = _redis_reachable(redis_url) if redis else "not asked for"
    if redis_why_not is None:
        with tempfile.TemporaryDirectory(prefix="finloop-bench-risk-") as directory:
            url = f"sqlite:///{Path(directory) / 'risk.db'}"
            migrate.upgrade(url)
            result["sqlite_redis_velocity"] = _bench_database(url, generated, seconds, seed, redis_url=redis_url)
    else:
        result["sqlite_redis_velocity"] = {"skipped": redis_why_not}
    server = postgres_url or os.environ.get("FINLOOP_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    from finloop.bench.ledger import postgres_reachable

    why_not = postgres_reachable(server) if postgres else "not asked for"
    if why_not is None:
        with migrate.scratch_database(server, "finloop_bench_risk") as url:
            result["postgresql"] = _bench_database(url, generated, seconds, seed)
    else:
        result["postgresql"] = {"skipped": why_not}
    for backend in ("sqlite", "sqlite_redis_velocity", "postgresql"):
        p99 = result[backend].get("p99_us")
        if p99 is not None:
            result[backend]["meets_goal"] = p99 / 1000 < GOAL_P99_MS
    return result
