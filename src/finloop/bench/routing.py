"""Routing micro-benchmark: the in-process cost of one decision, beside its anchor measured in the same run.

What is timed is what ``service.decide`` does besides the database: snapshot five warm windows and breakers,
derive the rng seed, and rank (``domain.route``) with success-rate routing, exploration and a fallback chain.
Each call is timed on its own (``perf_counter_ns``), so p50 and p99 include the timer's own cost; the anchor
is timed the same way: a bare ``random.Random().random()`` call, and a dict lookup. Slices of the decision
and the anchors alternate, so a noisy neighbour slows both. The figure that survives a noisy machine is the
ratio decision / anchor.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from finloop.payments.routing.domain import (
    BreakerBoard,
    Candidate,
    DecisionInputs,
    RoutingConfig,
    WindowSet,
    rng_seed,
    route,
)

CHANNELS = ("wxpay", "alipay", "unionpay", "stripe", "adyen")
RATES = (0.97, 0.95, 0.92, 0.90, 0.85)
ROUNDS = 3


def _warm(config: RoutingConfig, seed: int) -> tuple[WindowSet, BreakerBoard]:
    world = random.Random(seed)
    windows, board = WindowSet(config.success_rate), BreakerBoard(config.breaker)
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for _ in range(config.success_rate.window_size):
        for channel, rate in zip(CHANNELS, RATES, strict=True):
            outcome = "success" if world.random() < rate else "failure"
            windows.feed(channel, outcome, world.randint(80, 400), at)
            board.feed(channel, outcome, at)
    return windows, board


def _time(step: Callable[[int], object], seconds: float, start: int) -> list[int]:
    """Nanoseconds per call of ``step(i)`` for ``seconds``."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    i = start
    while True:
        for _ in range(200):
            t0 = clock()
            step(i)
            samples.append(clock() - t0)
            i += 1
        if clock() >= deadline:
            return samples


def _figures(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "calls": len(ordered),
        "per_second": round(1e9 / statistics.fmean(ordered)),
        "p50_us": round(ordered[len(ordered) // 2] / 1000, 3),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000, 3),
    }


def run(seconds: float = 3.0, seed: int = 0) -> dict[str, Any]:
    """Decisions per second and p50/p99 of one decision with 5 candidates and warm windows, with anchors."""
    config = RoutingConfig.model_validate({
        "strategy": {"type": "success_rate"}, "fallback": ["unionpay"],
        "success_rate": {"window_size": 100, "epsilon": 0.05, "floor": 0.5},
        "rules": [{"name": "cards", "match": {"methods": ["card"]}, "strategy": {"type": "lowest_cost"}},
                  {"name": "big", "match": {"min_amount": 1_000_000}, "strategy": {"type": "lowest_latency"}}],
    })
    windows, board = _warm(config, seed)
    candidates = tuple(Candidate(channel, 30 + 5 * index) for index, channel in enumerate(CHANNELS))
    now = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)

    def decide(i: int) -> object:
        inputs = DecisionInputs(method="wallet", amount=10_000, currency="CNY", customer_segment=None,
                                candidates=candidates, windows=windows.snapshot(CHANNELS),
                                breakers=board.states(CHANNELS, now), now=now,
                                rng_seed=rng_seed(config.seed, "ten_bench", f"pay_{seed}_{i}"))
        return route(config, inputs)

    rng = random.Random(seed)
    draw = rng.random
    table = {channel: index for index, channel in enumerate(CHANNELS)}

    def anchor_random(_i: int) -> object:
        return draw()

    def anchor_lookup(i: int) -> object:
        return table[CHANNELS[i % 5]]

    slice_seconds = max(seconds / ROUNDS, 0.01)
    decision: list[int] = []
    random_calls: list[int] = []
    lookups: list[int] = []
    for round_ in range(ROUNDS):
        decision += _time(decide, slice_seconds * 0.6, round_ * 10_000_000)
        random_calls += _time(anchor_random, slice_seconds * 0.2, 0)
        lookups += _time(anchor_lookup, slice_seconds * 0.2, 0)
    result: dict[str, Any] = {
        "what": "one routing decision in-process (5 candidates, warm windows, success rate + exploration + "
                "fallback), without the database insert; each call timed alone",
        "decision": _figures(decision),
        "anchor_random": _figures(random_calls),
        "anchor_dict_lookup": _figures(lookups),
        "seconds": seconds,
        "seed": seed,
    }
    d, a = result["decision"], result["anchor_random"]
    result["ratio_p50_decision_to_random"] = round(d["p50_us"] / a["p50_us"], 1) if a["p50_us"] else None
    result["ratio_p99_decision_to_random"] = round(d["p99_us"] / a["p99_us"], 1) if a["p99_us"] else None
    result["p99_under_1ms"] = d["p99_us"] < 1000
    return result


if __name__ == "__main__":  # pragma: no cover - handy without the CLI wiring
    import json
    import sys

    sys.stdout.write(json.dumps(run(), indent=2) + "\n")
