"""Latency of model scoring, outside the tests: ``python -m finloop.risk.ml.bench``.

Trains a champion on a simulated history in a temporary SQLite database, then times, per event of the
history: ``encode_row`` alone, the pure-Python tree walk, ``Booster.predict`` on a 1×n array, the
``pred_contrib`` explanation, and ``service.score`` end to end (champion cache warm, one transaction).
``install_champion`` is for other benchmarks (``finloop bench risk``) that want "rules plus one model".
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from finloop.db.uow import Database, UnitOfWork
from finloop.risk.ml.models import RiskModel


def install_champion(uow: UnitOfWork, tenant_id: str, *, seed: int = 1, days: int = 14, customers: int = 150,
                     rounds: int = 80) -> RiskModel:
    """Train a model on a simulated history and make it the tenant's champion (caller commits)."""
    from finloop.risk.ml import service, train
    from finloop.sim import fraud

    events = fraud.generate(seed=seed, days=days, customers=customers)
    model = train.train(uow, tenant_id, events=events, actor="bench", seed=seed, rounds=rounds)
    return service.promote(uow, tenant_id, model.id, actor="bench")


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_us": round(ordered[len(ordered) // 2] * 1e6, 1),
            "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6, 1)}


def _time(items: Sequence[Any], step: Callable[[Any], object]) -> dict[str, float]:
    samples = []
    for item in items:
        began = time.perf_counter()
        step(item)
        samples.append(time.perf_counter() - began)
    return _percentiles(samples)


def run(*, events: int = 3000, seed: int = 1) -> dict[str, Any]:
    import numpy as np

    from finloop.db import migrate
    from finloop.risk.ml import service, train
    from finloop.sim import fraud
    from finloop.tenancy import service as tenancy

    history = fraud.generate(seed=seed + 1, days=3, customers=400)[:events]
    replayed = list(train.replay_features("bench", history))
    with tempfile.TemporaryDirectory(prefix="finloop-bench-ml-") as directory:
        url = f"sqlite:///{Path(directory) / 'ml.db'}"
        migrate.upgrade(url)
        db = Database(url)
        with db.uow() as uow:
            tenant_id = tenancy.create_tenant(uow, name="ML bench", actor="bench").id
            model_row = install_champion(uow, tenant_id, seed=seed)
            uow.commit()
        pairs = list(zip(replayed, (e.event for e in history), strict=True))
        with db.uow(read_only=True) as uow:
            model = service.compiled(uow, tenant_id, model_row.id)
            service.score(uow, tenant_id, features=pairs[0][0], event=pairs[0][1])
            rows = [model.row(f, e) for f, e in pairs]
            result = {
                "events": len(pairs), "trees": len(model.trees), "columns": len(model.columns),
                "encode_row": _time(pairs, lambda p: model.row(p[0], p[1])),
                "tree_walk": _time(rows, model.probability),
                "booster_predict": _time(rows, lambda x: model.booster.predict(np.asarray([x], dtype=np.float64),
                                                                                  num_threads=1)),
                "explain_pred_contrib": _time(rows[:500], model.explain),
                "score": _time(pairs, lambda p: service.score(uow, tenant_id, features=p[0], event=p[1])),
                "score_explain": _time(pairs[:500], lambda p: service.score(uow, tenant_id, features=p[0],
                                                                            event=p[1], explain=True)),
            }
        db.dispose()
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))  # noqa: T201
