"""The console benchmark runs end to end: every page answers 200 and is reported beside the bare anchor."""

from __future__ import annotations

from finloop.bench.console import run


def test_console_bench_runs_briefly() -> None:
    result = run(payments=300, seconds=0.3)
    assert result["anchor_bare_fastapi_html_per_s"] > 0
    for page in ("payments_list", "payment_detail", "overview", "payments_csv_export"):
        figures = result[page]
        assert figures["per_s"] > 0 and figures["p99_ms"] >= figures["p50_ms"] and figures["bytes"] > 0
    # The export holds every payment: a header and one line each.
    assert result["payments_csv_export"]["bytes"] > 300 * 40
