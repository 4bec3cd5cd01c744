"""Risk jobs: pruning velocity buckets that no window reads any more; the champion models' drift after
each closed business day.

``risk.model_drift`` records, for every champion model of the tenant, the population stability index of
its score and key features over the decisions of the last ``DRIFT_DAYS`` days (``risk.ml.drift.record``,
stored on the model) and, when the score's or any feature's PSI is significant (``drift.level``), publishes
the webhook event ``risk.model_drift`` through the outbox. Each model is one step: its drift, its event and
the checkpoint naming it commit together, so a resumed or retried run never records a model twice nor
publishes its event twice, and the runner runs each business date once.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from finloop.db.uow import UnitOfWork
from finloop.risk import velocity
from finloop.risk.ml import drift
from finloop.risk.ml.models import RiskModel
from finloop.worker.registry import AfterClose, Every, job
from finloop.worker.runner import JobContext

#: The webhook event published when a champion's drift is significant.
DRIFT_EVENT = "risk.model_drift"
#: The recent decisions compared with the training data.
DRIFT_DAYS = 7
SIGNIFICANT = "significant"


@job("risk.velocity_prune", schedule=Every(3600.0))
def velocity_prune(ctx: JobContext) -> None:
    # The SQL counters only: Redis keys carry their own EXPIRE.
    with ctx.step() as uow:
        ctx.processed += velocity.prune(uow, now=uow.clock.now(), store=velocity.SqlStore())


def champion_ids(uow: UnitOfWork, tenant_id: str) -> list[str]:
    return list(uow.session.scalars(select(RiskModel.id).where(
        RiskModel.tenant_id == tenant_id, RiskModel.status == "champion").order_by(RiskModel.id)))


def drift_event(model: RiskModel, result: dict[str, Any], business_date: date) -> dict[str, Any] | None:
    """The event's data when the score's or a key feature's PSI is significant, else None."""
    score = result.get("score")
    features = {name: part["psi"] for name, part in (result.get("features") or {}).items()
                if part["level"] == SIGNIFICANT}
    if score is None or (score["level"] != SIGNIFICANT and not features):
        return None
    return {"model_id": model.id, "name": model.name, "version": model.version,
            "business_date": business_date.isoformat(), "decisions": result["decisions"], "since": result["since"],
            "score_psi": score["psi"], "score_level": score["level"], "significant_features": features}


def record_drift(uow: UnitOfWork, tenant_id: str, model_id: str, business_date: date) -> bool:
    """Record one champion's drift; publish the event if it is significant. True when it was published."""
    from finloop.risk.ml import service as models
    from finloop.webhooks import service as webhooks

    result = drift.record(uow, tenant_id, model_id, days=DRIFT_DAYS)
    data = drift_event(models.get_model(uow, tenant_id, model_id), result, business_date)
    if data is None:
        return False
    webhooks.publish_event(uow, tenant_id, type=DRIFT_EVENT, data=data)
    return True


@job("risk.model_drift", schedule=AfterClose(), lease_seconds=600.0)
def model_drift(ctx: JobContext) -> None:
    tenant_id, business_date = ctx.tenant_day()
    with ctx.db.uow(read_only=True) as uow:
        champions = champion_ids(uow, tenant_id)
    done: list[str] = list(ctx.checkpoint.get("models", []))
    for model_id in champions:
        if model_id in done:
            continue
        with ctx.step() as uow:
            published = record_drift(uow, tenant_id, model_id, business_date)
            done.append(model_id)
            ctx.checkpoint["models"] = done
            ctx.checkpoint["published"] = list(ctx.checkpoint.get("published", [])) + ([model_id] if published
                                                                                        else [])
            ctx.processed += 1
