"""The reconciliation benchmark finds exactly the breaks it injected, through the real WeChat importer."""

from __future__ import annotations

from finloop.bench.recon import BREAKS, run


def test_recon_bench_finds_every_injected_break_and_nothing_else() -> None:
    result = run(rows=10_000, seed=3)
    assert result["precision"] == 1.0 and result["recall"] == 1.0
    assert result["injected"] == result["found"] == 70
    assert set(result["discrepancies_by_class"]) == {
        "amount_mismatch", "fee_mismatch", "status_mismatch", "duplicate", "missing_on_platform",
        "missing_at_channel", "settlement_timing"}
    # The lines that lost a reference were matched by the channel reference or by tolerance.
    assert result["matches_by_rule"]["exact_channel_reference"] == 10
    assert result["matches_by_rule"]["tolerance"] == 10
    assert result["anchor"]["seconds"] > 0 and result["rows_per_second"] > 0
    assert len(BREAKS) == 9
