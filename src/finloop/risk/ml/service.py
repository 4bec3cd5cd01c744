"""The model registry and in-process scoring.

Registry: a trained model is a ``challenger``; ``promote`` makes it the ``champion`` of its name (the
previous champion is ``retired``); ``retire`` takes any model out; a retired model can be promoted again
(a rollback). Transitions are the table ``TRANSITIONS``; an illegal move is a 409.

Scoring (``score``): the champions of a tenant are looked up at most once per second per process
(``CHAMPION_TTL`` on a monotonic clock; ``promote``/``retire`` forget the tenant at once in this process,
other processes see the change within a second); a model is parsed once per process and cached by the
SHA-256 of its bytes. One row is scored by a pure-Python walk of the trees (measured faster than
``Booster.predict`` for a single row, see docs/risk-models.md); the explanation (``pred_contrib``, top 3)
is computed only when asked (``explain=True``) or later from a stored decision (``explain_decision``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, NotFound
from finloop.db.uow import UnitOfWork
from finloop.risk.ml import train
from finloop.risk.ml.models import RiskModel

STATUSES = ("challenger", "champion", "retired")
TRANSITIONS: dict[str, frozenset[str]] = {
    "challenger": frozenset({"champion", "retired"}),
    "champion": frozenset({"retired"}),
    "retired": frozenset({"champion"}),
}
CHAMPION_TTL = 1.0
EXPLAIN_TOP = 3
MAX_NAME = 40


@dataclass(frozen=True, slots=True)
class ModelScores:
    scores: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    explanation: list[tuple[str, float]] = field(default_factory=list)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not all(
            ch.isalnum() or ch == "_" for ch in name) or not name[0].isalpha():
        raise InvalidRequest("name is 1-40 letters, digits or underscores, starting with a letter.",
                             code="invalid_name", param="name")
    return name


# ---------------------------------------------------------------------------------------------- registry


def get_model(uow: UnitOfWork, tenant_id: str, model_id: str, *, lock: bool = False) -> RiskModel:
    query = select(RiskModel).where(RiskModel.tenant_id == tenant_id, RiskModel.id == model_id)
    if lock:
        query = query.with_for_update()
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound(f"No such model: {model_id}.", code="model_not_found", param="model_id")
    return row


def list_models(uow: UnitOfWork, tenant_id: str, *, name: str | None = None, status: str | None = None,
                after: str | None = None, limit: int = 50) -> list[RiskModel]:
    query = select(RiskModel).where(RiskModel.tenant_id == tenant_id)
    if name:
        query = query.where(RiskModel.name == name)
    if status:
        query = query.where(RiskModel.status == status)
    if after:
        query = query.where(RiskModel.id > after)
    return list(uow.session.scalars(query.order_by(RiskModel.id).limit(limit)))


def snapshot(row: RiskModel) -> dict[str, Any]:
    return {"name": row.name, "version": row.version, "status": row.status}


def _move(uow: UnitOfWork, row: RiskModel, to: str) -> None:
    if to not in TRANSITIONS[row.status]:
        raise Conflict(f"A {row.status} model cannot become {to}.", code="invalid_model_transition",
                       param="model_id")
    row.status = to
    if to == "champion":
        row.promoted_at = uow.clock.now()
        row.retired_at = None
    else:
        row.retired_at = uow.clock.now()


def promote(uow: UnitOfWork, tenant_id: str, model_id: str, *, actor: str) -> RiskModel:
    """Make the model the champion of its name; the previous champion is retired."""
    row = get_model(uow, tenant_id, model_id, lock=True)
    before = snapshot(row)
    if row.status == "champion":
        raise Conflict("This model is already the champion.", code="invalid_model_transition", param="model_id")
    current = uow.session.scalars(select(RiskModel).where(
        RiskModel.tenant_id == tenant_id, RiskModel.name == row.name, RiskModel.status == "champion")
        .with_for_update()).all()
    for old in current:
        _move(uow, old, "retired")
        audit.record(uow, tenant_id, actor=actor, action="risk.model.retired", object_type="risk_model",
                     object_id=old.id, before={**snapshot(old), "status": "champion"}, after=snapshot(old))
    _move(uow, row, "champion")
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="risk.model.promoted", object_type="risk_model",
                 object_id=row.id, before=before, after=snapshot(row))
    forget(tenant_id)
    return row


def retire(uow: UnitOfWork, tenant_id: str, model_id: str, *, actor: str) -> RiskModel:
    row = get_model(uow, tenant_id, model_id, lock=True)
    before = snapshot(row)
    _move(uow, row, "retired")
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="risk.model.retired", object_type="risk_model",
                 object_id=row.id, before=before, after=snapshot(row))
    forget(tenant_id)
    return row


def champion_counts(uow: UnitOfWork, tenant_id: str) -> dict[str, int]:
    rows = uow.session.execute(select(RiskModel.name, func.count()).where(
        RiskModel.tenant_id == tenant_id, RiskModel.status == "champion").group_by(RiskModel.name)).all()
    return {name: int(n) for name, n in rows}


# ---------------------------------------------------------------------------------------------- scoring


class Compiled:
    """A model ready to score one row: its encoding and its trees as flat lists for a pure-Python walk."""

    __slots__ = ("booster", "columns", "encoding", "id", "name", "threshold", "trees")

    def __init__(self, row: RiskModel) -> None:
        import lightgbm as lgb

        self.id, self.name, self.threshold = row.id, row.name, row.threshold
        self.encoding = dict(row.encoding)
        self.columns = list(row.features)
        self.booster = lgb.Booster(model_str=row.model_text)
        self.trees = [flatten_tree(tree["tree_structure"]) for tree in self.booster.dump_model()["tree_info"]]

    def row(self, features: Mapping[str, int], event: Mapping[str, Any]) -> list[float]:
        return train.encode_row(self.encoding, features, event)

    def raw(self, x: list[float]) -> float:
        total = 0.0
        for feature, threshold, zero_missing, default_left, left, right, leaf in self.trees:
            node = 0
            if feature:
                while node >= 0:
                    value = x[feature[node]]
                    if zero_missing[node] and value == 0.0:
                        node = left[node] if default_left[node] else right[node]
                    else:
                        node = left[node] if value <= threshold[node] else right[node]
                total += leaf[~node]
            else:
                total += leaf[0]
        return total

    def probability(self, x: list[float]) -> float:
        raw = self.raw(x)
        return 1.0 / (1.0 + math.exp(-raw)) if raw > -700 else 0.0

    def explain(self, x: list[float], top: int = EXPLAIN_TOP) -> list[tuple[str, float]]:
        import numpy as np

        contributions = self.booster.predict(np.asarray([x], dtype=np.float64), pred_contrib=True,
                                             num_threads=1)[0][:-1]
        order = sorted(range(len(contributions)), key=lambda i: -abs(contributions[i]))[:top]
        return [(self.columns[i], round(float(contributions[i]), 4)) for i in order if contributions[i] != 0]


Tree = tuple[list[int], list[float], list[bool], list[bool], list[int], list[int], list[float]]


def flatten_tree(root: Mapping[str, Any]) -> Tree:
    """Internal nodes numbered 0.. in visit order; a child ``c < 0`` is leaf ``~c``."""
    feature: list[int] = []
    threshold: list[float] = []
    zero_missing: list[bool] = []
    default_left: list[bool] = []
    left: list[int] = []
    right: list[int] = []
    leaf: list[float] = []
    if "split_index" not in root:
        return [], [], [], [], [], [], [float(root["leaf_value"])]

    def visit(node: Mapping[str, Any]) -> int:
        if "split_index" not in node:
            leaf.append(float(node["leaf_value"]))
            return ~(len(leaf) - 1)
        if node.get("decision_type", "<=") != "<=":
            raise ValueError("only numerical splits are supported")
        index = len(feature)
        feature.append(int(node["split_feature"]))
        threshold.append(float(node["threshold"]))
        zero_missing.append(node.get("missing_type") == "Zero")
        default_left.append(bool(node.get("default_left", True)))
        left.append(0)
        right.append(0)
        left[index] = visit(node["left_child"])
        right[index] = visit(node["right_child"])
        return index

    visit(root)
    return feature, threshold, zero_missing, default_left, left, right, leaf


_lock = threading.Lock()
#: tenant -> (expires at (monotonic), [(model id, name, digest)]).
_champions: dict[str, tuple[float, list[tuple[str, str, str]]]] = {}
#: digest -> compiled model.
_models: dict[str, Compiled] = {}
_MAX_MODELS = 32


def forget(tenant_id: str | None = None) -> None:
    """Drop a tenant's (or every) cached champion list; compiled models stay (they never change)."""
    with _lock:
        if tenant_id is None:
            _champions.clear()
        else:
            _champions.pop(tenant_id, None)


def _champions_of(uow: UnitOfWork, tenant_id: str) -> list[tuple[str, str, str]]:
    now = time.monotonic()
    with _lock:
        cached = _champions.get(tenant_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    found = [(i, n, d) for i, n, d in uow.session.execute(select(RiskModel.id, RiskModel.name, RiskModel.digest).where(
        RiskModel.tenant_id == tenant_id, RiskModel.status == "champion").order_by(RiskModel.name)).all()]
    with _lock:
        if len(_champions) > 10_000:
            _champions.clear()
        _champions[tenant_id] = (now + CHAMPION_TTL, found)
    return found


def compiled(uow: UnitOfWork, tenant_id: str, model_id: str, digest: str | None = None) -> Compiled:
    if digest is not None:
        with _lock:
            found = _models.get(digest)
        if found is not None and found.id == model_id:
            return found
    row = get_model(uow, tenant_id, model_id)
    with _lock:
        found = _models.get(row.digest)
    if found is not None and found.id == row.id:
        return found
    model = Compiled(row)
    with _lock:
        if len(_models) >= _MAX_MODELS:
            _models.clear()
        _models[row.digest] = model
    return model


def score(uow: UnitOfWork, tenant_id: str, *, features: Mapping[str, int], event: Mapping[str, Any],
          explain: bool = False) -> ModelScores:
    """The champion models' scores (0..1000, by model name) of one event; empty without a champion. With
    ``explain``, the top 3 feature contributions (log-odds) of the first model."""
    champions = _champions_of(uow, tenant_id)
    if not champions:
        return ModelScores()
    scores: dict[str, int] = {}
    versions: dict[str, str] = {}
    explanation: list[tuple[str, float]] = []
    for model_id, name, digest in champions:
        try:
            model = compiled(uow, tenant_id, model_id, digest)
        except NotFound:  # promoted elsewhere and rolled back since: look again next time
            forget(tenant_id)
            continue
        x = model.row(features, event)
        scores[name] = train.to_score(model.probability(x))
        versions[name] = model.id
        if explain and not explanation:
            explanation = model.explain(x)
    return ModelScores(scores=scores, versions=versions, explanation=explanation)


def explain_decision(uow: UnitOfWork, tenant_id: str, decision_id: str) -> dict[str, Any]:
    """The top feature contributions of each model that scored a stored decision (recomputed from the
    features and event the decision stored, with the model version it used)."""
    from finloop.risk import service as risk

    decision = risk.get_decision(uow, tenant_id, decision_id)
    out: dict[str, Any] = {"decision_id": decision.id, "models": []}
    for name, model_id in sorted((decision.model_versions or {}).items()):
        model = compiled(uow, tenant_id, model_id)
        x = model.row(decision.features or {}, decision.event or {})
        out["models"].append({"name": name, "model_id": model_id, "score": (decision.model_scores or {}).get(name),
                              "threshold": model.threshold,
                              "top": [{"feature": f, "contribution": c} for f, c in model.explain(x)]})
    return out
