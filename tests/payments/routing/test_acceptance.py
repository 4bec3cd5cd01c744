"""Acceptance: success-rate routing moves traffic off a degraded channel and brings it back when it recovers.

Three channels, A 98%, B 90%, C 85%. After 1,000 payments A drops to 60% for 1,500 payments, then recovers to
98% for 2,000. One payment every 100 ms; config: window 50, min_samples 10, epsilon 0.1, reset_gap 0.2,
retry_after 30 s. The bounds asserted (and stated in docs/routing.md):
- within 200 attempts of the drop, at least 90% of the traffic has moved away from A (A is primary for at most
  10% of attempts 200..1,500 after the drop);
- within 800 attempts of the recovery, exploration has brought A back (A is primary for at least 80% of the
  attempts from there to the end);
- replaying every stored decision from its stored config and inputs gives the same choices.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from finloop.db.uow import Database
from finloop.payments.routing import service
from finloop.payments.routing.domain import (
    BreakerBoard,
    Candidate,
    DecisionInputs,
    RoutingConfig,
    WindowSet,
    rng_seed,
    route,
)
from finloop.payments.routing.models import RoutingDecision
from finloop.tenancy.service import system_principal
from tests.conftest import make_tenant

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHANNELS = ["A", "B", "C"]
HEALTHY = {"A": 0.98, "B": 0.90, "C": 0.85}
DEGRADED = {**HEALTHY, "A": 0.60}
PHASES = [(1000, HEALTHY), (1500, DEGRADED), (2000, HEALTHY)]
CONFIG_BODY: dict[str, Any] = {"success_rate": {"window_size": 50, "min_samples": 10, "epsilon": 0.1,
                                                "reset_gap": 0.2, "retry_after_seconds": 30}}
MOVE_AWAY_WITHIN = 200
COME_BACK_WITHIN = 800


def simulate(config: RoutingConfig, phases: list[tuple[int, dict[str, float]]], seed: int,
             tenant_id: str = "ten_sim") -> tuple[list[str], list[tuple[dict[str, Any], tuple[str, ...]]]]:
    """Route every payment with the pure functions, try its primary, feed the outcome back."""
    windows, board = WindowSet(config.success_rate), BreakerBoard(config.breaker)
    world = random.Random(seed)
    now, primaries, stored, n = T0, [], [], 0
    for count, rates in phases:
        for _ in range(count):
            data = DecisionInputs(method="wallet", amount=10_000, currency="CNY", customer_segment=None,
                                  candidates=tuple(Candidate(c, 60) for c in CHANNELS),
                                  windows=windows.snapshot(CHANNELS), breakers=board.states(CHANNELS, now), now=now,
                                  rng_seed=rng_seed(config.seed, tenant_id, f"pay_{n}"))
            ranking = route(config, data)
            stored.append((json.loads(json.dumps(data.to_json())), ranking.ranked))
            primary = ranking.ranked[0]
            primaries.append(primary)
            outcome = "success" if world.random() < rates[primary] else "failure"
            windows.feed(primary, outcome, 120, now)
            board.feed(primary, outcome, now)
            now += timedelta(milliseconds=100)
            n += 1
    return primaries, stored


def share(primaries: list[str], start: int, end: int) -> float:
    block = primaries[start:end]
    return block.count("A") / len(block)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_traffic_moves_off_a_degraded_channel_and_comes_back_after_it_recovers(seed):
    config = RoutingConfig.model_validate(CONFIG_BODY)
    primaries, stored = simulate(config, PHASES, seed)
    drop, recovery = 1000, 2500
    assert share(primaries, 500, drop) >= 0.85  # healthy A carries the traffic (less the exploration share)
    assert share(primaries, drop + MOVE_AWAY_WITHIN, recovery) <= 0.10
    assert share(primaries, recovery + COME_BACK_WITHIN, len(primaries)) >= 0.80
    replayed = [route(config, DecisionInputs.from_json(data)).ranked for data, _ in stored]
    assert replayed == [ranked for _, ranked in stored]


def test_without_exploration_a_recovered_channel_is_only_retried_after_its_reset():
    # Exploration is what brings A back quickly: with epsilon 0 it gets no traffic while demoted.
    body = {"success_rate": {**CONFIG_BODY["success_rate"], "epsilon": 0.0}}
    primaries, _ = simulate(RoutingConfig.model_validate(body), PHASES, 0)
    assert share(primaries, 1200, 2500) <= 0.05


def test_the_service_on_a_database_makes_the_same_choices_and_replays_them(db: Database):
    """The DB-backed path equals the pure simulation: the cache is rebuilt from the outcome stream every 50
    payments and fed this process's own outcomes in between."""
    service.cache_settings.ttl_seconds = 3600.0
    tenant = make_tenant(db)
    config = RoutingConfig.model_validate(CONFIG_BODY)
    with db.uow() as uow:
        service.set_config(uow, system_principal(tenant.id, "test"), "mer_sim", config)
        uow.commit()
    phases = [(150, HEALTHY), (250, DEGRADED)]
    expected, _ = simulate(config, phases, 5, tenant_id=tenant.id)
    world = random.Random(5)
    primaries = []
    n = 0
    for count, rates in phases:
        for _ in range(count):
            if n % 50 == 0:
                service.reset_cache()
            with db.uow() as uow:
                decision = service.decide(uow, tenant.id, merchant_id="mer_sim", payment_id=f"pay_{n}",
                                          method="wallet", amount=10_000, currency="CNY", customer_segment=None,
                                          candidates=[Candidate(c, 60) for c in CHANNELS])
                primary = decision.ranked[0]
                outcome = "success" if world.random() < rates[primary] else "failure"
                service.record_outcome(uow, tenant.id, merchant_id="mer_sim", method="wallet", channel=primary,
                                       outcome=outcome, latency_ms=120)
                uow.commit()
            primaries.append(primary)
            db.clock.advance(timedelta(milliseconds=100))  # type: ignore[attr-defined]
            n += 1
    assert primaries == expected
    assert share(primaries, 150 + MOVE_AWAY_WITHIN, 400) <= 0.10
    with db.uow(read_only=True) as uow:
        ids = list(uow.session.scalars(select(RoutingDecision.id).where(RoutingDecision.tenant_id == tenant.id)))
        assert len(ids) == 400
        assert all(service.replay(uow, tenant.id, decision_id).matches for decision_id in ids)
