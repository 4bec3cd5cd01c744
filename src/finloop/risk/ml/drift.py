"""Drift monitoring: the population stability index (PSI) of the score and the key features between the
training data (the reference stored with the model) and recent decisions scored by that model.

``PSI = Σ (a_i - e_i) · ln(a_i / e_i)`` over bins, with ``e_i`` the reference share and ``a_i`` the recent
share of bin ``i`` (shares floored at 0.0001 so an empty bin does not divide by zero). Reading: below 0.1
stable, 0.1-0.25 moderate shift, above 0.25 significant (retrain).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from finloop.core.errors import InvalidRequest
from finloop.db.uow import UnitOfWork

#: Score bins (0..1000): most traffic scores near 0, so the low end is finer.
SCORE_EDGES = (10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 700.0)
FLOOR = 0.0001
MAX_RECENT = 20_000
MIN_RECENT = 1


def quantile_edges(values: Sequence[float], bins: int = 10) -> list[float]:
    """Inner bin edges at the deciles of ``values`` (duplicates dropped)."""
    ordered = sorted(values)
    if not ordered:
        return []
    edges = {ordered[min(len(ordered) - 1, (len(ordered) * k) // bins)] for k in range(1, bins)}
    return sorted(edges)


def shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """The share of ``values`` in each bin: bin ``i`` holds ``edges[i-1] < v <= edges[i]``; the last is above
    every edge."""
    counts = [0] * (len(edges) + 1)
    for v in values:
        i = 0
        while i < len(edges) and v > edges[i]:
            i += 1
        counts[i] += 1
    total = len(values) or 1
    return [c / total for c in counts]


def reference(values: Sequence[float], *, edges: Sequence[float] | None = None) -> dict[str, Any]:
    chosen = list(edges) if edges is not None else quantile_edges(values)
    return {"edges": chosen, "shares": [round(s, 6) for s in shares(values, chosen)]}


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    if len(expected) != len(actual):
        raise ValueError("PSI needs the same bins on both sides")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, FLOOR), max(a, FLOOR)
        total += (a - e) * math.log(a / e)
    return round(total, 6)


def level(value: float) -> str:
    return "stable" if value < 0.1 else "moderate" if value < 0.25 else "significant"


def compare(ref: Mapping[str, Any], values: Sequence[float]) -> dict[str, Any]:
    actual = shares(values, ref["edges"])
    value = psi(ref["shares"], actual)
    return {"psi": value, "level": level(value), "edges": list(ref["edges"]), "expected": list(ref["shares"]),
            "actual": [round(s, 6) for s in actual]}


def compute(uow: UnitOfWork, tenant_id: str, model_id: str, *, since: datetime | None = None,
            days: int = 7) -> dict[str, Any]:
    """PSI of the score and of each key feature between the model's training data and the decisions it
    scored since ``since`` (default: the last ``days`` days, at most the latest 20 000 of them)."""
    from finloop.risk.ml import train
    from finloop.risk.ml.service import get_model
    from finloop.risk.models import RiskDecision

    if not 1 <= days <= 366:
        raise InvalidRequest("days is 1-366.", code="invalid_days", param="days")
    model = get_model(uow, tenant_id, model_id)
    now = uow.clock.now()
    since = since or now - timedelta(days=days)
    rows = uow.session.execute(
        select(RiskDecision.features, RiskDecision.event, RiskDecision.model_scores, RiskDecision.model_versions)
        .where(RiskDecision.tenant_id == tenant_id, RiskDecision.decided_at >= since)
        .order_by(RiskDecision.decided_at.desc()).limit(MAX_RECENT)).all()
    scores: list[float] = []
    by_feature: dict[str, list[float]] = {name: [] for name in model.reference.get("features", {})}
    column = {name: model.features.index(name) for name in by_feature if name in model.features}
    for features, event, model_scores, versions in rows:
        if (versions or {}).get(model.name) != model.id:
            continue
        scores.append(float((model_scores or {}).get(model.name, 0)))
        if column:
            row = train.encode_row(model.encoding, features or {}, event or {})
            for name, index in column.items():
                by_feature[name].append(row[index])
    result: dict[str, Any] = {"model_id": model.id, "since": since.isoformat(), "at": now.isoformat(),
                              "decisions": len(scores)}
    if len(scores) < MIN_RECENT:
        result.update(score=None, features={})
        return result
    result["score"] = compare(model.reference["score"], scores)
    result["features"] = {name: compare(model.reference["features"][name], values)
                          for name, values in by_feature.items() if name in column}
    return result


def record(uow: UnitOfWork, tenant_id: str, model_id: str, *, days: int = 7) -> dict[str, Any]:
    """Compute the drift and store it on the model (``drift``, ``drift_at``)."""
    from finloop.risk.ml.service import get_model

    result = compute(uow, tenant_id, model_id, days=days)
    model = get_model(uow, tenant_id, model_id)
    model.drift = result
    model.drift_at = uow.clock.now()
    uow.session.flush()
    return result
