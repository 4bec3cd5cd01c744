"""``risk.model_drift``: after each closed business day the champions' PSI is recorded; a significant drift
is published once per business date as the webhook event ``risk.model_drift`` (through the outbox); a
tenant without a champion is left alone. Both backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.db.models import OutboxMessage
from finloop.db.uow import Database
from finloop.risk import service as risk
from finloop.risk.ml import service as models
from finloop.risk.ml import train
from finloop.risk.ml.models import RiskModel
from finloop.sim import fraud
from finloop.webhooks import service as webhooks
from finloop.webhooks.domain import EVENT_TYPES
from finloop.webhooks.models import WebhookMessage
from finloop.worker.jobs import risk as risk_jobs
from finloop.worker.runner import Runner


def _champion(db: Database, tenant_id: str, clock: FrozenClock) -> str:
    history = fraud.generate(seed=1, days=6, customers=60, start=clock.now() - timedelta(days=7))
    with db.uow() as uow:
        model = train.train(uow, tenant_id, events=history, actor="test", rounds=30)
        models.promote(uow, tenant_id, model.id, actor="test")
        uow.commit()
        return model.id


def _messages(db: Database, tenant_id: str) -> list[dict[str, Any]]:
    """The data of the tenant's ``risk.model_drift`` events, oldest first."""
    with db.uow(read_only=True) as uow:
        return [webhooks.message_payload(m)["data"] for m in uow.session.scalars(select(WebhookMessage).where(
            WebhookMessage.tenant_id == tenant_id, WebhookMessage.type == risk_jobs.DRIFT_EVENT)
            .order_by(WebhookMessage.id))]


def _run(db: Database) -> dict[str, list[tuple[str, str, int]]]:
    """One pass of the job: per tenant, (business date, status, models processed)."""
    by_tenant: dict[str, list[tuple[str, str, int]]] = {}
    for o in Runner(db, only=["risk.model_drift"]).run_pass().outcomes:
        by_tenant.setdefault(o.tenant_id or "", []).append((o.business_date.isoformat(), o.status, o.processed))
    return by_tenant


def test_drift_is_recorded_after_each_closed_day_and_published_once_when_significant(
        db: Database, clock: FrozenClock, tenant, other_tenant) -> None:  # type: ignore[no-untyped-def]
    assert risk_jobs.DRIFT_EVENT in EVENT_TYPES
    model_id = _champion(db, tenant.id, clock)
    with db.uow() as uow:
        endpoint, _ = webhooks.create_endpoint(uow, tenant.id, url="https://hooks.example.com/risk", actor="test",
                                               event_types=[risk_jobs.DRIFT_EVENT])
        endpoint_id = endpoint.id
        uow.commit()

    # Monday closes with no decision scored: the drift is recorded (nothing to compare), no event.
    clock.set(clock.now().replace(hour=0, minute=30) + timedelta(days=1))
    ran = _run(db)
    assert ran[tenant.id] == [("2026-03-02", "succeeded", 1)]
    assert ran[other_tenant.id] == [("2026-03-02", "succeeded", 0)]  # no champion, nothing to do
    with db.uow(read_only=True) as uow:
        model = models.get_model(uow, tenant.id, model_id)
        assert model.drift is not None and model.drift["decisions"] == 0 and model.drift_at == clock.now()
    assert _messages(db, tenant.id) == []

    # Tuesday: the traffic is all card testing, scored far above what the model was trained on.
    attack = [e for e in fraud.generate(seed=4, days=12, customers=30, start=clock.now() - timedelta(days=12))
              if e.pattern == "card_testing"][:60]
    assert len(attack) >= 30
    with db.uow() as uow:
        for index, labelled in enumerate(attack):
            risk.decide(uow, tenant.id, event_type="payment", event=labelled.event,
                        at=clock.now() + timedelta(hours=1, seconds=index))
        uow.commit()
    clock.advance(timedelta(days=1))
    assert _run(db)[tenant.id] == [("2026-03-03", "succeeded", 1)]
    messages = _messages(db, tenant.id)
    assert len(messages) == 1
    data = messages[0]
    assert data["model_id"] == model_id and data["business_date"] == "2026-03-03"
    assert data["score_level"] == "significant" and data["score_psi"] > 0.25 and data["decisions"] == len(attack)
    with db.uow(read_only=True) as uow:
        scheduled = uow.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.topic == webhooks.DELIVER_TOPIC,
            OutboxMessage.payload["endpoint_id"].as_string() == endpoint_id))
        assert scheduled == 1
        assert uow.session.get(RiskModel, model_id).drift["score"]["level"] == "significant"  # type: ignore[union-attr]

    # The same business date never runs twice: no second record, no second event.
    assert _run(db) == {}
    assert len(_messages(db, tenant.id)) == 1
    # The next closed day still drifts: its own event.
    clock.advance(timedelta(days=1))
    assert _run(db)[tenant.id] == [("2026-03-04", "succeeded", 1)]
    assert [m["business_date"] for m in _messages(db, tenant.id)] == [
        "2026-03-03", "2026-03-04"]
    assert _messages(db, other_tenant.id) == []


def test_only_a_significant_score_or_feature_makes_an_event() -> None:
    model = RiskModel(id="rm_1", name="fraud", version=3)
    day = fraud.DEFAULT_START.date()

    def result(score: str | None, **features: str) -> dict[str, object]:
        return {"decisions": 10, "since": "2026-02-01T00:00:00+00:00",
                "score": None if score is None else {"psi": 0.3 if score == "significant" else 0.05, "level": score},
                "features": {name: {"psi": 0.4 if level == "significant" else 0.01, "level": level}
                             for name, level in features.items()}}

    assert risk_jobs.drift_event(model, result(None), day) is None
    assert risk_jobs.drift_event(model, result("stable", amount="moderate"), day) is None
    event = risk_jobs.drift_event(model, result("stable", amount="significant", hour="stable"), day)
    assert event is not None and event["significant_features"] == {"amount": 0.4}
    event = risk_jobs.drift_event(model, result("significant"), day)
    assert event is not None and event["score_psi"] == 0.3 and event["version"] == 3
