"""The risk benchmark runs end to end and reports decide() figures beside the bare-rule anchor."""

from __future__ import annotations

from finloop.bench.risk import generate_rules, run
from finloop.risk import rules as risk_rules


def test_generated_rules_are_valid() -> None:
    assert all(not risk_rules.check(rule["expression"]) for rule in generate_rules(120, 7))


def test_risk_bench_runs_briefly() -> None:
    result = run(seconds=0.3, rules=30, seed=1, postgres=False, redis=False)
    sqlite = result["sqlite"]
    assert sqlite["samples"] > 0 and sqlite["decisions_per_second"] > 0 and sqlite["p99_us"] >= sqlite["p50_us"]
    assert sum(sqlite["outcomes"].values()) == sqlite["samples"]
    assert result["anchor"]["samples"] > 0 and result["anchor"]["p50_us"] > 0
    assert result["engine"]["samples"] > 0 and result["postgresql"] == {"skipped": "not asked for"}
