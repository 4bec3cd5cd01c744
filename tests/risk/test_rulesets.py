"""Rule sets: versions, validation with positions, maker-checker publication, rollback, shadow, backtest."""

from __future__ import annotations

from datetime import timedelta

import pytest

from finloop.core.errors import Conflict, InvalidRequest, PermissionDenied
from finloop.db.uow import Database
from finloop.risk import service
from finloop.risk.domain import Outcome
from finloop.risk.models import RuleSetVersion
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal, Role

RULES_V1 = [
    {"id": "big_amount", "description": "Large payment", "expression": "event.amount > 100000", "score": 5},
    {"id": "huge_amount", "description": "Very large payment", "expression": "event.amount > 1000000",
     "score": 30},
    {"id": "foreign_card", "description": "Card country differs from IP country",
     "expression": "event.card_country != '' && event.card_country != event.ip_country", "score": 1},
    {"id": "bad_segment", "description": "Forced review", "expression": "customer.segment == 'watch'",
     "outcome": "review", "event_types": ["payment"]},
]
THRESHOLDS = {"payment": {"review": 5, "decline": 20}, "*": {"review": 1, "decline": 10}}


def _maker(tenant_id: str) -> Principal:
    return Principal(tenant_id, "user:maker", frozenset({Role.RISK_ANALYST}), user_id="usr_maker")


def _checker(tenant_id: str) -> Principal:
    return Principal(tenant_id, "user:checker", frozenset({Role.RISK_ANALYST}), user_id="usr_checker")


def _publish(db: Database, tenant_id: str, rule_set_id: str, version_id: str) -> RuleSetVersion:
    with db.uow() as uow:
        version = service.request_publish(uow, _maker(tenant_id), rule_set_id, version_id)
        assert version.status == "pending_approval"
        approval_id = version.approval_id
        assert approval_id is not None
        uow.commit()
    with db.uow() as uow:
        tenancy.decide_approval(uow, _checker(tenant_id), approval_id, approve=True)
        uow.commit()
    with db.uow() as uow:
        version = service.request_publish(uow, _maker(tenant_id), rule_set_id, version_id)
        uow.commit()
    return version


def test_lifecycle_publish_rollback_shadow_and_thresholds(db: Database, tenant, other_tenant) -> None:  # type: ignore[no-untyped-def]
    t = tenant.id
    with db.uow() as uow:
        rule_set = service.create_rule_set(uow, t, name="payments", actor="test", event_types=["payment", "refund"])
        with pytest.raises(Conflict) as overlap:
            service.create_rule_set(uow, t, name="other", actor="test", event_types=["refund"])
        assert overlap.value.code == "event_types_overlap"
        bad = service.create_version(uow, t, rule_set.id, actor="test", rules=[
            {"id": "typo", "description": "", "expression": "event.amount > '5'", "score": 1}])
        v1 = service.create_version(uow, t, rule_set.id, actor="test", rules=RULES_V1, thresholds=THRESHOLDS)
        uow.commit()
    rs_id = rule_set.id
    # Validation: type error with its position; nothing published.
    with db.uow() as uow:
        with pytest.raises(InvalidRequest) as invalid:
            service.validate_version(uow, t, rs_id, bad.id)
        issues = invalid.value.details["issues"]
        assert invalid.value.code == "invalid_rule" and issues[0]["rule_id"] == "typo"
        assert issues[0]["position"] >= 0 and issues[0]["line"] == 1 and issues[0]["column"] >= 1
        with pytest.raises(InvalidRequest):
            service.request_publish(uow, _maker(t), rs_id, bad.id)
    # Structure errors are refused at creation.
    with db.uow() as uow, pytest.raises(InvalidRequest) as structure:
        service.create_version(uow, t, rs_id, actor="test", rules=[{"id": "x", "expression": "true"}])
    assert structure.value.param == "rules[0].score"

    # Maker-checker: the maker may not approve their own request; pending publication is a 409.
    with db.uow() as uow:
        pending = service.request_publish(uow, _maker(t), rs_id, v1.id)
        uow.commit()
    with db.uow() as uow:
        with pytest.raises(PermissionDenied):
            tenancy.decide_approval(uow, _maker(t), pending.approval_id or "", approve=True)
        with pytest.raises(Conflict) as waiting:
            service.request_publish(uow, _maker(t), rs_id, v1.id)
        assert waiting.value.code == "approval_pending"
    with db.uow() as uow:
        tenancy.decide_approval(uow, _checker(t), pending.approval_id or "", approve=True)
        uow.commit()
    with db.uow() as uow:
        live = service.request_publish(uow, _maker(t), rs_id, v1.id)
        assert live.status == "published"
        uow.commit()

    def decide(event: dict, event_type: str = "payment") -> service.Decision:  # type: ignore[type-arg]
        with db.uow() as uow:
            decision = service.decide(uow, t, event_type=event_type, event=event)
            uow.commit()
        return decision

    small = decide({"amount": 500, "customer_id": "c1"})
    assert small.outcome is Outcome.APPROVE and small.fired == () and small.rule_set_version_id == v1.id
    big = decide({"amount": 200_000, "customer_id": "c1"})
    assert big.outcome is Outcome.REVIEW and big.score == 5 and big.reasons[0]["rule_id"] == "big_amount"
    huge = decide({"amount": 2_000_000, "customer_id": "c1"})
    assert huge.outcome is Outcome.DECLINE and huge.score == 35
    assert {f.rule_id for f in huge.fired} == {"big_amount", "huge_amount"}
    # The "*" thresholds apply to refunds: review at 1.
    refund = decide({"amount": 10, "card_country": "US", "ip_country": "FR"}, "refund")
    assert refund.outcome is Outcome.REVIEW and refund.score == 1
    # A forced outcome beats a low score; the rule applies to payments only.
    forced = decide({"amount": 10, "customer": {"segment": "watch"}})
    assert forced.outcome is Outcome.REVIEW and forced.reasons == ({"rule_id": "bad_segment",
                                                                     "description": "Forced review"},)
    assert decide({"amount": 10, "customer": {"segment": "watch"}}, "refund").outcome is Outcome.APPROVE
    # No rule set decides logins: approved, no version.
    assert decide({"customer_id": "c1"}, "login").rule_set_version_id is None
    # Bad events are refused before anything is written.
    with db.uow() as uow:
        for event in ({"amount": 1.5}, {"amount": True}, {"x": "\x00"}, {"a": {"b": {"c": {"d": 1}}}}):
            with pytest.raises(InvalidRequest):
                service.decide(uow, t, event_type="payment", event=event)
        with pytest.raises(InvalidRequest):
            service.decide(uow, t, event_type="teleport", event={})

    # Immutability: a published version cannot be re-published or changed; a change is a new draft.
    with db.uow() as uow, pytest.raises(Conflict):
        service.request_publish(uow, _maker(t), rs_id, v1.id)
    rules_v2 = [*RULES_V1[:1], {"id": "any_amount", "description": "Everything", "expression": "event.amount > 0",
                                "score": 50}]
    with db.uow() as uow:
        v2 = service.create_version(uow, t, rs_id, actor="test", rules=rules_v2, thresholds=THRESHOLDS)
        assert v2.number == 3 and v2.based_on_version_id == v1.id
        service.set_shadow(uow, t, rs_id, v2.id, actor="test")
        uow.commit()
    shadowed = decide({"amount": 500})
    assert shadowed.outcome is Outcome.APPROVE and shadowed.shadow_outcome is Outcome.DECLINE
    assert shadowed.shadow_version_id == v2.id and shadowed.shadow_score == 50

    _publish(db, t, rs_id, v2.id)
    with db.uow() as uow:
        rs = service.get_rule_set(uow, t, rs_id)
        assert rs.live_version_id == v2.id and rs.shadow_version_id is None
        assert service.get_version(uow, t, rs_id, v1.id).status == "retired"
    assert decide({"amount": 500}).outcome is Outcome.DECLINE
    with db.uow() as uow:
        service.rollback(uow, t, rs_id, actor="test")
        uow.commit()
    with db.uow() as uow:
        assert service.get_rule_set(uow, t, rs_id).live_version_id == v1.id
        assert service.get_version(uow, t, rs_id, v2.id).status == "rolled_back"
        assert service.get_version(uow, t, rs_id, v1.id).status == "published"
        with pytest.raises(Conflict) as nothing:
            service.rollback(uow, t, rs_id, actor="test")
        assert nothing.value.code == "nothing_to_roll_back"
    after = decide({"amount": 500})
    assert after.outcome is Outcome.APPROVE and after.rule_set_version_id == v1.id

    # Tenant isolation.
    with db.uow() as uow:
        with pytest.raises(Exception) as missing:
            service.get_rule_set(uow, other_tenant.id, rs_id)
        assert getattr(missing.value, "code", "") == "rule_set_not_found"
        assert service.list_decisions(uow, other_tenant.id) == []


def test_rejected_approval_returns_to_draft(db: Database, tenant) -> None:  # type: ignore[no-untyped-def]
    t = tenant.id
    with db.uow() as uow:
        rs = service.create_rule_set(uow, t, name="all", actor="test")
        v = service.create_version(uow, t, rs.id, actor="test", rules=RULES_V1[:1])
        v = service.request_publish(uow, _maker(t), rs.id, v.id)
        uow.commit()
    with db.uow() as uow:
        tenancy.decide_approval(uow, _checker(t), v.approval_id or "", approve=False)
        uow.commit()
    with db.uow() as uow:
        back = service.request_publish(uow, _maker(t), rs.id, v.id)
        assert back.status == "draft" and back.approval_id is None
        uow.commit()


def test_backtest_figures_on_a_fixed_history(db: Database, tenant, clock) -> None:  # type: ignore[no-untyped-def]
    t = tenant.id
    with db.uow() as uow:
        rs = service.create_rule_set(uow, t, name="bt", actor="test", event_types=["payment"])
        uow.commit()
    start = clock.now()
    # 10 events: amounts 100..1000; labels: 3 fraud (the 3 largest), 2 refunded, 1 disputed, 4 unlabelled.
    labels = [None, "succeeded", None, "refunded", None, "disputed", "refunded", "fraud_confirmed",
              "fraud_confirmed", "fraud_confirmed"]
    with db.uow() as uow:
        for i, label in enumerate(labels):
            decision = service.decide(uow, t, event_type="payment", event={"amount": (i + 1) * 100,
                                                                           "customer_id": f"c{i % 2}"},
                                      at=start + timedelta(minutes=i))
            if label:
                service.label_decision(uow, t, decision.id, label, actor="test")
        # Outside the range.
        service.decide(uow, t, event_type="payment", event={"amount": 5000}, at=start + timedelta(days=3))
        draft = service.create_version(uow, t, rs.id, actor="test", thresholds={"payment": {"review": 1,
                                                                                            "decline": 10}}, rules=[
            {"id": "over_650", "description": "", "expression": "event.amount > 650", "score": 1},
            {"id": "over_850", "description": "", "expression": "event.amount > 850", "score": 10},
            {"id": "c1_customer", "description": "", "expression": "event.customer_id == 'c1'", "score": 0,
             "outcome": "review"},
            {"id": "never", "description": "", "expression": "features['customer.count.1h'] > 1000", "score": 1},
        ])
        uow.commit()
    with db.uow(read_only=True) as uow:
        result = service.backtest(uow, t, rs.id, draft.id, from_at=start, to_at=start + timedelta(days=1))
    assert result["events"] == 10
    rules = {r["rule_id"]: r for r in result["rules"]}
    assert rules["over_650"]["hits"] == 4 and rules["over_650"]["labels"]["fraud_confirmed"] == 3
    assert rules["over_650"]["labels"]["refunded"] == 1
    assert rules["over_850"]["hits"] == 2 and rules["never"]["hits"] == 0
    assert rules["c1_customer"]["hits"] == 5  # odd indexes: 1, 3, 5, 7, 9
    # Flagged: over_650 (700, 800, 900, 1000) plus c1 (200, 400, 600, 800, 1000) = 7 events; fraud 3 all caught.
    assert result["fraud"] == 3 and result["fraud_caught"] == 3 and result["interception_rate"] == "1.0000"
    assert result["non_fraud"] == 7 and result["non_fraud_flagged"] == 4
    assert result["false_positive_rate"] == "0.5714"
    assert result["outcomes"] == {"approve": 3, "review": 5, "decline": 2}
    with db.uow(read_only=True) as uow, pytest.raises(InvalidRequest):
        service.backtest(uow, t, rs.id, draft.id, from_at=start, to_at=start)
