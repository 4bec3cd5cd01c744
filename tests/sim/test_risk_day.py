"""The demo's risk day on a small traffic: every planted laundering pattern alerted and no look-alike; the
fraud figures are the ones the stored decisions and their labels give; the starter rules went live through
maker-checker; the model is champion. Both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.risk.aml.models import AmlAlert
from finloop.risk.cases import figures as case_figures
from finloop.risk.domain import Label, rate
from finloop.risk.ml.models import RiskModel
from finloop.risk.models import RiskDecision, RuleSet, RuleSetVersion
from finloop.sim import risk_day
from finloop.sim.payments_day import trading_world
from finloop.tenancy.models import ApprovalRequest
from tests.conftest import make_tenant

#: Friday 23:10 in Shanghai: the week's last cut-off has passed.
AFTER_THE_WEEK = datetime(2026, 3, 6, 15, 10, tzinfo=UTC)


def test_the_risk_day_figures_come_from_the_decisions(db: Database, clock: FrozenClock) -> None:
    tenant = make_tenant(db, "Risk Day Shop", timezone="Asia/Shanghai", cutoff="23:00")
    with trading_world(db, clock, tenant.id, seed=7) as world:
        clock.set(AFTER_THE_WEEK)
        day = risk_day.run_risk_day(world, training_days=7, training_customers=80, traffic_days=2,
                                    traffic_customers=60)

    # Laundering: each scenario planted once and alerted; the innocent look-alikes are not.
    aml = day.aml
    assert set(aml.planted) == set(aml.innocent) == {
        "structuring", "large_transaction", "rapid_movement", "round_amounts", "high_risk_geography",
        "dormant_reactivated", "funnelling"}
    assert aml.found == aml.planted and all(n == 1 for n in aml.planted.values())
    assert sum(aml.false_alerts.values()) == 0 and aml.other_alerts == 0 and aml.failed_movements == 0
    with db.uow(read_only=True) as uow:
        alerts = uow.session.scalars(select(AmlAlert).where(AmlAlert.tenant_id == tenant.id)).all()
        assert len(alerts) == aml.alerts == aml.cases and all(a.case_id for a in alerts)

    # Fraud: recount everything from the stored decisions and their labels.
    f = day.fraud
    assert f.traffic_from is not None and f.traffic_to is not None
    window = {"from_at": f.traffic_from, "to_at": f.traffic_to + timedelta(microseconds=1)}
    with db.uow(read_only=True) as uow:
        rows = uow.session.execute(select(RiskDecision.outcome, RiskDecision.label, RiskDecision.fired).where(
            RiskDecision.tenant_id == tenant.id, RiskDecision.decided_at >= window["from_at"],
            RiskDecision.decided_at < window["to_at"])).all()
        stored = case_figures.figures(uow, tenant.id, bucket="day", **window)["total"]
        rule_set = uow.session.scalar(select(RuleSet).where(RuleSet.tenant_id == tenant.id))
        assert rule_set is not None
        version = uow.session.get(RuleSetVersion, rule_set.live_version_id)
        assert version is not None and version.id == f.rule_set_version_id and version.status == "published"
        approval = uow.session.get(ApprovalRequest, version.approval_id)
        assert approval is not None and approval.status == "approved"
        assert approval.decided_by and approval.decided_by != approval.requested_by
        champion = uow.session.scalar(select(RiskModel).where(RiskModel.tenant_id == tenant.id,
                                                              RiskModel.status == "champion"))
        assert champion is not None and champion.id == f.model["id"]
    assert len(rows) == f.events > 0 and all(label is not None for _, label, _ in rows)
    fraud = [outcome for outcome, label, _ in rows if label == Label.FRAUD_CONFIRMED.value]
    legit = [outcome for outcome, label, _ in rows if label == Label.SUCCEEDED.value]
    assert len(fraud) == f.fraud > 0 and len(legit) == f.legit and f.fraud + f.legit == f.events
    assert sum(o != "approve" for o in fraud) == f.fraud_caught
    assert sum(o != "approve" for o in legit) == f.legit_flagged
    assert sum(o == "review" for o, _, _ in rows) == f.outcomes["review"]
    assert sum(o == "decline" for o, _, _ in rows) == f.outcomes["decline"]
    assert f.interception_rate == pytest.approx(f.fraud_caught / f.fraud)
    assert f.review_rate == pytest.approx(f.outcomes["review"] / f.events)
    assert stored["interception_rate"] == rate(f.fraud_caught, f.fraud)
    assert stored["false_positive_rate"] == rate(f.legit_flagged, f.legit)
    assert stored["review_rate"] == rate(f.outcomes["review"], f.events)
    assert sum(total for _, total in f.by_pattern.values()) == f.fraud
    assert sum(caught for caught, _ in f.by_pattern.values()) == f.fraud_caught
    hits = {}
    for _, _, fired in rows:
        for item in fired:
            hits[item["rule_id"]] = hits.get(item["rule_id"], 0) + 1
    assert [(rule_id, n) for rule_id, n, _ in f.top_rules] == sorted(
        hits.items(), key=lambda item: (-item[1], item[0]))[:risk_day.TOP_RULES]
    assert 0 < f.latency_p50_ms <= f.latency_p99_ms

    result = day.as_dict()
    assert result["risk_events"] == f.events and result["aml_found"] == aml.planted
    assert result["risk_interception_rate"] == f.interception_rate


def test_the_traffic_is_never_the_training_seed(db: Database, clock: FrozenClock) -> None:
    tenant = make_tenant(db)
    with pytest.raises(ValueError, match="not built on"):
        risk_day.run_fraud_day(db, clock, tenant.id, training_seed=3, traffic_seed=3)
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(RiskModel).where(RiskModel.tenant_id == tenant.id)) is None
