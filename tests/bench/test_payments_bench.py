"""``finloop bench payments`` runs end to end with tiny durations and reports its figures as JSON.

Timings are not asserted (the machine is shared); the shape, the accounting and the checks are.
"""

from __future__ import annotations

import json
import shutil

import pytest

from finloop.bench.ledger import DEFAULT_POSTGRES_URL, postgres_reachable
from finloop.bench.payments import PaymentsBenchConfig, choose_driver, run
from finloop.payments import postings


def test_an_unknown_driver_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown driver"):
        choose_driver("ab")
    assert choose_driver("httpx") == "httpx"
    assert choose_driver("auto") == ("wrk" if shutil.which("wrk") else "httpx")


@pytest.mark.skipif(postgres_reachable(DEFAULT_POSTGRES_URL) is not None, reason="needs PostgreSQL")
def test_a_tiny_run_reports_payments_anchor_routing_and_hot_accounts() -> None:
    config = PaymentsBenchConfig(seconds=1.0, warmup_seconds=0.0, connections=2, workers=1, merchants=2,
                                 routing_seconds=0.1, hot_seconds=0.2, hot_rounds=1, hot_threads=2)
    result = run(config)
    json.dumps(result)

    http = result["http"]
    assert http["driver"] == choose_driver("auto")
    for name in ("payments", "bare_insert"):
        figures = http[name]
        assert figures["ok"] == figures["statuses"].get("201", 0) <= figures["requests"]
        assert figures["failures"] == {}
        assert set(figures["cpu_ms_per_request"]) >= {"server", "database", "driver"}
        if figures["ok"]:
            assert figures["p50_ms"] is not None and figures["p50_ms"] <= figures["p99_ms"]
    assert "sandbox" in http["payments"]["cpu_ms_per_request"]
    # Every 201 is a succeeded payment (requests cut off by the end of the run may add more).
    assert http["payments"]["statuses_in_database"].get("succeeded", 0) >= http["payments"]["ok"]

    hot = result["hot_accounts"]
    assert hot["single_account"]["shards"] == hot["single_account"]["receivable_accounts"] == 1
    # Compared with the module's value after the run: the patch to one shard did not outlive its measurement.
    assert hot["sub_accounts"]["shards"] == hot["sub_accounts"]["receivable_accounts"] == postings.HOT_SHARDS > 1
    for name in ("single_account", "sub_accounts", "sub_accounts_one_merchant"):
        assert hot[name]["postings"] > 0 and hot[name]["failures"] == {}

    assert result["routing"]["decision"]["calls"] > 0
    assert set(result["goals"]) == {"payments_over_bare_insert", "payments_per_second", "routing_decision_p99_us"}
    assert result["problems"] == []
