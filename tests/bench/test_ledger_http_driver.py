"""``finloop bench ledger`` drives HTTP with wrk when it is installed, else with httpx threads."""

from __future__ import annotations

import pytest

from finloop.bench import ledger
from finloop.bench.ledger import LedgerBenchConfig, drive_wrk, free_port, http_driver, served, wrk_available


def test_auto_picks_wrk_when_installed_and_httpx_otherwise(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ledger, "wrk_available", lambda: "/usr/bin/wrk")
    assert http_driver(LedgerBenchConfig()) == "wrk"
    assert http_driver(LedgerBenchConfig(http_driver="httpx")) == "httpx"
    monkeypatch.setattr(ledger, "wrk_available", lambda: None)
    assert http_driver(LedgerBenchConfig()) == "httpx"
    with pytest.raises(RuntimeError, match="wrk is not on PATH"):
        http_driver(LedgerBenchConfig(http_driver="wrk"))
    with pytest.raises(ValueError, match="unknown HTTP driver"):
        http_driver(LedgerBenchConfig(http_driver="ab"))


@pytest.mark.skipif(wrk_available() is None, reason="wrk is not installed (apt-get install wrk)")
def test_wrk_posts_fresh_transfers_and_reports_statuses_and_latency():
    port = free_port()
    with served(ledger._serve_argv_bare(port, 1), port) as base_url:
        figures = drive_wrk(base_url, "/v1/transfers", {"Authorization": "Bearer fl_sk_x"}, ["acc_a", "acc_b"],
                            seconds=1, concurrency=2, run="test", seed=1)
    result = figures.as_dict(201)
    assert result["requests"] > 0 and result["ok"] == result["requests"], result
    assert result["statuses"] == {"201": result["ok"]}
    assert result["p50_ms"] is not None and result["p99_ms"] >= result["p50_ms"] > 0
    assert result["seconds"] >= 1
