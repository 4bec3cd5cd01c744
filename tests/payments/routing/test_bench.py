"""The routing micro-benchmark runs and reports its figures beside its anchors."""

from __future__ import annotations

import json

from finloop.bench.routing import run


def test_bench_reports_decision_and_anchor_figures_as_json():
    result = run(seconds=0.15, seed=3)
    json.dumps(result)
    for name in ("decision", "anchor_random", "anchor_dict_lookup"):
        figures = result[name]
        assert figures["calls"] > 0 and figures["per_second"] > 0
        assert 0 < figures["p50_us"] <= figures["p99_us"]
    # A decision does far more than one draw from a generator; the ratio is what the bench is for.
    assert result["ratio_p50_decision_to_random"] > 1
    assert result["p99_under_1ms"] == (result["decision"]["p99_us"] < 1000)
