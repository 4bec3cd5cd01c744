"""The anti-fraud model: labelled generator, training metrics on held-out days, tree walk against LightGBM,
PSI, the registry (promote, retire, rollback), scoring in decisions, explanations, drift, bad input and
tenant isolation."""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from finloop.cli import app
from finloop.core.errors import InvalidRequest
from finloop.db.uow import Database
from finloop.risk import service as risk
from finloop.risk.ml import drift, service, train
from finloop.risk.ml.models import RiskModel
from finloop.sim import fraud


@functools.lru_cache(maxsize=2)
def history(days: int = 12, customers: int = 150) -> tuple[fraud.LabelledEvent, ...]:
    return tuple(fraud.generate(seed=1, days=days, customers=customers))


def test_generator_plants_labelled_patterns_deterministically() -> None:
    events = history()
    assert list(events) == fraud.generate(seed=1, days=12, customers=150)
    assert [e.at for e in events] == sorted(e.at for e in events)
    patterns = Counter(e.pattern for e in events)
    assert set(fraud.PATTERNS) <= set(patterns) and patterns[fraud.NORMAL] > 0.9 * len(events)
    assert all(e.fraud == (e.pattern != fraud.NORMAL) for e in events)
    for e in events[:200]:
        assert risk.check_event(e.event) == e.event  # what decide() takes
    testing = [e for e in events if e.pattern == "card_testing"]
    by_device = Counter(e.event["device_id"] for e in testing)
    device, n = by_device.most_common(1)[0]
    cards = {e.event["card_token"] for e in testing if e.event["device_id"] == device}
    assert n >= 12 and len(cards) == n and all(e.event["amount"] < 300 for e in testing)
    takeover = [e for e in events if e.pattern == "account_takeover"]
    assert all(e.event["device"]["is_new"] or e.event["device_id"] == takeover[0].event["device_id"]
               for e in takeover[:1]) and all(e.event["customer"]["age_days"] > 180 for e in takeover)
    abuse = [e for e in events if e.pattern == "promotion_abuse"]
    assert all(e.event["customer"]["is_new"] and e.event.get("promo_code") for e in abuse)
    with pytest.raises(ValueError):
        fraud.generate(days=0)


def test_training_on_held_out_days_and_the_tree_walk_match_lightgbm() -> None:
    events = history()
    frame = train.build_frame("tnt_pure", events)
    assert frame.x.shape == (len(events), len(frame.columns)) and int(frame.y.sum()) == sum(e.fraud for e in events)
    split = events[0].at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=8)
    fitted = train.fit(frame, split_at=split, seed=1)
    m = fitted.metrics
    assert m["auc"] > 0.9 and m["recall"] > 0.6 and m["precision"] > 0.5, m
    assert m["test_rows"] + m["train_rows"] == len(events) and 1 <= fitted.threshold <= 1000
    text = fitted.booster.model_to_string()
    row = RiskModel(id="mdl_x", name="fraud", threshold=fitted.threshold, encoding=frame.encoding,
                    features=frame.columns, model_text=text, digest=hashlib.sha256(text.encode()).hexdigest())
    model = service.Compiled(row)
    sample = frame.x[::7]
    expected = fitted.booster.predict(sample)
    walked = np.asarray([model.probability(list(x)) for x in sample])
    assert np.allclose(walked, expected, atol=1e-9)
    top = model.explain(list(frame.x[int(np.argmax(frame.y))]))
    assert 1 <= len(top) <= 3 and all(name in frame.columns for name, _ in top)


def test_psi() -> None:
    base = [float(v % 100) for v in range(1000)]
    ref = drift.reference(base)
    assert drift.compare(ref, base)["psi"] == pytest.approx(0.0, abs=1e-9)
    shifted = drift.compare(ref, [v + 60 for v in base])
    assert shifted["psi"] > 0.25 and shifted["level"] == "significant"
    assert drift.shares([0.0, 10.0, 11.0], [10.0]) == [2 / 3, 1 / 3]
    assert train.to_score(0.0) == 0 and train.to_score(0.0005) == 1 and train.to_score(1.0) == 1000


def test_registry_scoring_decisions_drift_and_isolation(cli, client: TestClient, db: Database,  # type: ignore[no-untyped-def]
                                                        tenant, other_tenant, clock) -> None:
    h = tenant.headers
    event = dict(history()[5].event)
    with db.uow() as uow:
        assert service.score(uow, tenant.id, features={}, event=event) == service.ModelScores()
        decided = risk.decide(uow, tenant.id, event_type="payment", event=event)
        assert decided.model_scores == {} and decided.model_versions == {}
        uow.commit()

    trained = cli.invoke(app, ["risk", "train", "--tenant", tenant.id, "--days", "6", "--customers", "60",
                               "--rounds", "30", "--json"])
    assert trained.exit_code == 0, trained.output
    first = json.loads(trained.output)
    assert first["status"] == "challenger" and first["version"] == 1 and 0 <= first["metrics"]["auc"] <= 1
    second = json.loads(cli.invoke(app, ["risk", "train", "--tenant", tenant.id, "--days", "6", "--customers",
                                         "60", "--rounds", "30", "--seed", "2", "--promote", "--json"]).output)
    assert second["version"] == 2
    listed = client.get("/v1/risk/models", headers=h).json()["data"]
    assert [m["id"] for m in listed] == [first["id"], second["id"]]
    assert client.get(f"/v1/risk/models/{second['id']}", headers=h).json()["status"] == "champion"

    promoted = client.post(f"/v1/risk/models/{first['id']}/promote", headers=h)
    assert promoted.status_code == 200 and promoted.json()["status"] == "champion"
    assert client.get(f"/v1/risk/models/{second['id']}", headers=h).json()["status"] == "retired"
    again = client.post(f"/v1/risk/models/{first['id']}/promote", headers=h)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_model_transition"
    assert client.get("/v1/risk/models?status=champion", headers=h).json()["data"][0]["id"] == first["id"]
    assert client.get("/v1/risk/models?status=nope", headers=h).status_code == 400
    assert client.post("/v1/risk/models/mdl_missing/promote", headers=h).status_code == 404
    assert client.get(f"/v1/risk/models/{first['id']}", headers=other_tenant.headers).status_code == 404
    assert client.post(f"/v1/risk/models/{first['id']}/promote", headers=other_tenant.headers).status_code == 404
    assert client.get(f"/v1/risk/models/{first['id']}/drift?days=0", headers=h).status_code == 400

    with db.uow() as uow:
        features = {"customer.count.30d": 2, "customer.sum.30d": 1000}
        scored = service.score(uow, tenant.id, features=features, event=event, explain=True)
        row = service.get_model(uow, tenant.id, first["id"])
        model = service.Compiled(row)
        x = train.encode_row(row.encoding, features, event)
        assert scored.versions == {"fraud": first["id"]}
        assert scored.scores["fraud"] == train.to_score(float(model.booster.predict(np.asarray([x]))[0]))
        assert 1 <= len(scored.explanation) <= 3
        assert service.score(uow, other_tenant.id, features=features, event=event).scores == {}
        decided = risk.decide(uow, tenant.id, event_type="payment", event=event)
        assert decided.model_versions == {"fraud": first["id"]} and set(decided.model_scores) == {"fraud"}
        uow.commit()
    api = client.post("/v1/risk/decisions", headers=h, json={"event_type": "payment", "event": event})
    assert api.status_code == 201 and api.json()["model_versions"] == {"fraud": first["id"]}
    explained = client.get(f"/v1/risk/decisions/{decided.id}/explanation", headers=h)
    assert explained.status_code == 200 and explained.json()["models"][0]["model_id"] == first["id"]
    assert client.get(f"/v1/risk/decisions/{decided.id}/explanation",
                      headers=other_tenant.headers).status_code == 404
    drifted = client.get(f"/v1/risk/models/{first['id']}/drift", headers=h)
    assert drifted.status_code == 200 and drifted.json()["decisions"] == 2
    assert drifted.json()["score"]["psi"] >= 0
    stored = cli.invoke(app, ["risk", "drift", "--tenant", tenant.id, "--model", first["id"], "--days", "366"])
    assert stored.exit_code == 0 and json.loads(stored.output)["decisions"] == 2
    assert client.get(f"/v1/risk/models/{first['id']}", headers=h).json()["drift"]["decisions"] == 2

    # Confirmed outcomes become labels: a frame from the stored decisions (the CLI's --from).
    with db.uow() as uow:
        risk.label_decision(uow, tenant.id, decided.id, "fraud_confirmed", actor="test")
        labelled = train.frame_from_decisions(uow, tenant.id, from_at=datetime(2026, 3, 1, tzinfo=UTC),
                                              to_at=datetime(2026, 3, 3, tzinfo=UTC))
        assert labelled.x.shape == (3, len(labelled.columns)) and int(labelled.y.sum()) == 1
        uow.commit()
    too_few = cli.invoke(app, ["risk", "train", "--tenant", tenant.id, "--from", "2026-03-01", "--to", "2026-03-03"])
    assert too_few.exit_code == 1 and "fraud and normal" in too_few.output

    retired = client.post(f"/v1/risk/models/{first['id']}/retire", headers=h)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    with db.uow() as uow:
        assert service.score(uow, tenant.id, features={}, event=event).scores == {}
        assert risk.decide(uow, tenant.id, event_type="payment", event=event,
                           at=datetime(2026, 3, 2, 10, tzinfo=UTC)).model_scores == {}
        with pytest.raises(InvalidRequest) as caught:
            train.train(uow, tenant.id, events=history(), actor="t", name="bad name")
        assert caught.value.code == "invalid_name"
        with pytest.raises(InvalidRequest) as caught:
            train.train(uow, tenant.id, events=list(reversed(history())), actor="t")
        assert caught.value.code == "unsorted_events"
        assert service.list_models(uow, tenant.id, status="challenger") == []
