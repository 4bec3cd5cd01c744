"""The credit benchmark runs end to end on a tiny workload and reports every figure beside its anchors."""

from __future__ import annotations

from finloop.bench.credit import run


def test_credit_bench_runs_briefly() -> None:
    result = run(seconds=0.05, rows=600, applicants=4, seed=2)
    for figure in (result["scorecard"], result["gbm"], result["anchor"]["logistic"], result["anchor"]["dict_lookup"],
                   result["score_applicant_sqlite"]):
        assert figure["samples"] > 0 and figure["per_second"] > 0 and figure["p99_us"] >= figure["p50_us"] > 0
    assert result["batch_rescore_sqlite"]["applicants"] == 4
    assert result["model"]["gbm_trees"] == 200 and result["model"]["scorecard_features"] > 3
    assert set(result["ratios"]) == {"scorecard_p50_vs_logistic", "gbm_p50_vs_logistic",
                                     "scorecard_p50_vs_dict_lookup"}
