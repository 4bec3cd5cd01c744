"""The scorecard pipeline on real data (the German credit data) and on simulated applicants: held-out metrics
in a sane band, the stored tables scoring exactly as optbinning and LightGBM do, WoE/IV sanity, the points
scale, and reason codes."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from finloop.core.errors import InvalidRequest
from finloop.credit import sim
from finloop.credit.domain import PLATFORM_FEATURE_NAMES, Scaling
from finloop.credit.scorecard import (
    MISSING_VALUE,
    GbmModel,
    ScorecardModel,
    Trained,
    compile_model,
    digest,
    german_dataset,
    platform_dataset,
    train,
)


def test_german_metrics_are_in_a_sane_band(german: Trained) -> None:
    card, gbm = german.scorecard.metrics, german.gbm.metrics
    assert german.split == {"rows": 1000, "defaults": 300, "test_share": 0.3, "seed": 1, "train_rows": 700,
                            "test_rows": 300}
    assert 0.74 <= card["auc"] <= 0.82, card
    assert 0.70 <= gbm["auc"] <= 0.84, gbm
    for m in (card, gbm):
        assert m["gini"] == pytest.approx(2 * m["auc"] - 1, abs=2e-4)
        assert 0.3 <= m["ks"] <= 0.6 and m["test_rows"] == 300 and m["test_defaults"] == 90
        assert m["train_auc"] >= m["auc"] - 0.02  # no sign of a leak from the held-out rows into training


def test_the_same_seed_trains_the_same_models(german: Trained) -> None:
    again = train(german_dataset(), seed=1)
    assert again.scorecard.tables == german.scorecard.tables and again.gbm.tables == german.gbm.tables
    assert digest(again.gbm.tables) == digest(german.gbm.tables)
    other = train(german_dataset(), seed=2)
    assert other.scorecard.metrics["auc"] != german.scorecard.metrics["auc"]


def test_the_stored_scorecard_scores_exactly_as_optbinning(german: Trained) -> None:
    card = german.fitted["scorecard"]
    x_test = german.fitted["x_test"]
    model = ScorecardModel(german.scorecard.tables, german.scaling)
    mine = np.asarray([model.points(row) for row in x_test.to_dict("records")])
    assert np.allclose(mine, card.score(x_test), atol=1e-9)
    # The points are the scale applied to the logistic regression's odds: optbinning and our scale agree.
    probability = card.predict_proba(x_test)[:, 1]
    expected = np.asarray([german.scaling.points_for_odds((1 - p) / p) for p in probability])
    assert np.allclose(mine, expected, atol=1e-6)


def test_unknown_categories_and_missing_values_score_in_the_missing_bin(german: Trained) -> None:
    model = ScorecardModel(german.scorecard.tables, german.scaling)
    row = german.fitted["x_test"].to_dict("records")[0]
    for variable in model.variables:
        strange = {**row, variable.name: "never seen" if variable.kind == "categorical" else None}
        delta = model.points(strange) - model.points(row)
        assert delta == pytest.approx(variable.missing_points - variable.points_of(row[variable.name]))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # optbinning's table on pandas 3
def test_woe_and_iv_are_consistent_with_the_bin_counts(german: Trained) -> None:
    binning = german.fitted["binning"]
    for name in ("duration_in_month", "status_of_existing_checking_account", "credit_amount"):
        table = binning.get_binned_variable(name).binning_table.build()
        table = table[~table.index.isin(["Totals"])]
        good, bad = table["Non-event"].astype(float), table["Event"].astype(float)
        keep = (good > 0) & (bad > 0)
        share_good, share_bad = good / good.sum(), bad / bad.sum()
        woe = np.log(share_good[keep] / share_bad[keep])
        assert np.allclose(woe, table["WoE"][keep].astype(float), atol=1e-9)
        iv = float(((share_good[keep] - share_bad[keep]) * woe).sum())
        reported = next(e["iv"] for e in german.iv if e["feature"] == name)
        assert iv == pytest.approx(reported, abs=1e-3)
    # The well-known strongest predictor of the German data is the checking account status.
    assert german.iv[0]["feature"] == "status_of_existing_checking_account" and german.iv[0]["iv"] > 0.3
    assert german.iv == sorted(german.iv, key=lambda e: -e["iv"])
    assert all(e["selected"] == (e["iv"] >= 0.02) for e in german.iv)


def test_monotonic_trends_hold_where_the_spec_names_one(platform: Trained) -> None:
    tables = {v["name"]: v for v in platform.scorecard.tables["variables"]}
    rates = tables["bureau_score"]["event_rates"]
    assert len(rates) >= 3 and rates == sorted(rates, reverse=True)  # a higher bureau score, fewer defaults
    delinquent = tables["bureau_delinquencies_24m"]["event_rates"]
    assert delinquent == sorted(delinquent)
    assert all(t["points"] == sorted(t["points"]) for t in (tables["bureau_score"],))


def test_the_gbm_walk_and_its_path_contributions_match_lightgbm(german: Trained) -> None:
    booster = german.fitted["booster"]
    model = GbmModel(german.gbm.tables, german.scaling)
    rows = german.fitted["x_test"].to_dict("records")
    x = np.asarray([model.row(r) for r in rows])
    raw = booster.predict(x, raw_score=True)
    walked = np.asarray([model.raw(list(v)) for v in x])
    assert np.allclose(walked, raw, atol=1e-9)
    bias = sum(values[0] if values else tree["tree_structure"]["leaf_value"]
               for values, tree in zip(model.node_values, german.gbm.tables["trees"], strict=True))
    assert np.allclose([sum(model.contributions(list(v))) + bias for v in x[:50]], raw[:50], atol=1e-9)
    assert np.allclose([model.explained(list(v))[0] for v in x], raw, atol=1e-9)
    assert model.row({}) == [MISSING_VALUE if c["kind"] == "numerical" else c["missing_woe"] for c in model.columns]
    # Both models score on the one points scale: the GBM's points are the scale of its probability.
    evaluation = model.evaluate(rows[0])
    p = evaluation.probability
    assert evaluation.points == pytest.approx(german.scaling.points_for_odds((1 - p) / p), abs=1e-6)


def test_scorecard_reasons_are_the_points_furthest_below_the_best_bin(german: Trained) -> None:
    model = ScorecardModel(german.scorecard.tables, german.scaling,
                           {f["name"]: f["description"] for f in german.features})
    rows = german.fitted["x_test"].to_dict("records")
    worst = min(rows, key=model.points)
    evaluation = model.evaluate(worst)
    assert 1 <= len(evaluation.reasons) <= 4
    lost = {v.name: v.best - v.points_of(worst[v.name]) for v in model.variables}
    expected = sorted((n for n in lost if lost[n] > 1e-9), key=lambda n: (-lost[n], n))[:4]
    assert [r.feature for r in evaluation.reasons] == expected
    assert all(r.points_lost == pytest.approx(lost[r.feature]) for r in evaluation.reasons)
    first = evaluation.reasons[0].to_json()
    assert first["description"][0].isupper() and first["value"] != "" and first["points_lost"] > 0
    # An applicant in every feature's best bin has nothing to explain.
    best = {}
    for v in model.variables:
        index = v.points.index(v.best) if v.best in v.points else None
        if index is None:
            best[v.name] = None
        elif v.kind == "numerical":
            best[v.name] = (v.splits[index - 1] if index > 0 else (v.splits[0] - 1 if v.splits else 0.0))
        else:
            best[v.name] = next(c for c, i in v.categories.items() if i == index)
    assert model.evaluate(best).reasons == []


def test_gbm_reasons_are_the_largest_contributions_to_default(german: Trained) -> None:
    model = GbmModel(german.gbm.tables, german.scaling)
    row = german.fitted["x_test"].to_dict("records")[3]
    reasons = model.evaluate(row).reasons
    contributions = dict(zip(model.names, model.contributions(model.row(row)), strict=True))
    expected = sorted((n for n, c in contributions.items() if c > 1e-9 / model.scaling.factor),
                      key=lambda n: (-contributions[n], n))[:4]
    assert [r.feature for r in reasons] == expected
    assert all(r.points_lost == pytest.approx(model.scaling.factor * contributions[r.feature]) for r in reasons)


def test_the_platform_pipeline_trains_on_simulated_applicants(platform: Trained) -> None:
    assert platform.dataset == "platform"
    assert [f["name"] for f in platform.features] == list(PLATFORM_FEATURE_NAMES)
    assert platform.scorecard.metrics["auc"] > 0.75 and platform.gbm.metrics["auc"] > 0.72
    top = [e["feature"] for e in platform.iv[:6]]
    assert "bureau_score" in top and "bureau_delinquencies_24m" in top
    model = compile_model("scorecard", platform.scorecard.tables, platform.scaling)
    assert set(model.names) <= set(PLATFORM_FEATURE_NAMES)


def test_a_custom_scale_moves_every_score_as_the_arithmetic_says(german: Trained) -> None:
    scaled = train(german_dataset(), seed=1, scaling=Scaling(Decimal(500), Decimal(20), Decimal(40)))
    rows = german.fitted["x_test"].to_dict("records")[:30]
    default = ScorecardModel(german.scorecard.tables, german.scaling)
    custom = ScorecardModel(scaled.scorecard.tables, scaled.scaling)
    for row in rows:
        odds = math.exp((default.points(row) - german.scaling.offset) / german.scaling.factor)
        assert custom.points(row) == pytest.approx(scaled.scaling.points_for_odds(odds), abs=1e-6)
    assert scaled.scorecard.metrics["auc"] == german.scorecard.metrics["auc"]  # a scale changes no ranking


def test_training_refuses_bad_parameters_and_data() -> None:
    small = platform_dataset(40, seed=1)
    with pytest.raises(InvalidRequest) as caught:
        train(small)
    assert caught.value.code == "no_training_data"
    data = platform_dataset(300, seed=1)
    for kwargs, code in (({"test_share": 0.9}, "invalid_test_share"), ({"min_iv": 1.5}, "invalid_min_iv"),
                         ({"rounds": 1}, "invalid_rounds")):
        with pytest.raises(InvalidRequest) as caught:
            train(data, **kwargs)  # type: ignore[arg-type]
        assert caught.value.code == code


def test_the_simulator_is_seeded_and_plausible() -> None:
    first, again, other = sim.generate(500, seed=4), sim.generate(500, seed=4), sim.generate(500, seed=5)
    assert first == again and first != other
    assert 0.06 <= sim.generate(4000, seed=1).default_rate <= 0.2
    for row in first.rows:
        assert list(row) == list(PLATFORM_FEATURE_NAMES)
        assert row["order_count_90d"] <= row["order_count_365d"] + 30
        assert (row["order_amount_avg_365d"] is None) == (row["order_count_365d"] == 0)
        assert row["bureau_thin_file"] in ("yes", "no")
        assert (row["bureau_score"] is None) == (row["bureau_thin_file"] == "yes")
        assert row["bureau_enquiries_30d"] <= row["bureau_enquiries_90d"]
