"""Routing services on SQLite and PostgreSQL: configs, stored decisions, outcomes, breakers and their events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from finloop.audit.models import AuditEvent
from finloop.core.errors import InvalidRequest, NotFound, PermissionDenied
from finloop.db.models import OutboxMessage
from finloop.db.uow import Database
from finloop.payments.routing import service
from finloop.payments.routing.domain import BreakerState, Candidate, RoutingConfig
from finloop.payments.routing.models import RoutingOutcome
from finloop.tenancy.service import Principal, Role, system_principal
from tests.conftest import make_tenant

CANDIDATES = [Candidate("wxpay", 60), Candidate("alipay", 55), Candidate("unionpay", 80)]
BREAKER = {"window_size": 10, "min_calls": 5, "error_rate": 0.5, "consecutive_failures": 3, "cooldown_seconds": 30,
           "probe_share": 1.0, "probe_successes": 2}


def _decide(db: Database, tenant_id: str, payment_id: str = "pay_1", merchant_id: str = "mer_1",
            candidates: list[Candidate] | None = None, **kwargs: object) -> service.RouteDecision:
    with db.uow() as uow:
        decision = service.decide(uow, tenant_id, merchant_id=merchant_id, payment_id=payment_id,
                                  method=str(kwargs.get("method", "wallet")), amount=int(kwargs.get("amount", 10_000)),  # type: ignore[call-overload]
                                  currency="CNY", customer_segment=None,
                                  candidates=CANDIDATES if candidates is None else candidates)
        uow.commit()
    return decision


def _outcome(db: Database, tenant_id: str, channel: str, outcome: str, merchant_id: str = "mer_1") -> None:
    with db.uow() as uow:
        service.record_outcome(uow, tenant_id, merchant_id=merchant_id, method="wallet", channel=channel,
                               outcome=outcome, latency_ms=150)
        uow.commit()


def _set(db: Database, tenant_id: str, merchant_id: str | None, body: dict[str, object]) -> service.ConfigRecord:
    with db.uow() as uow:
        record = service.set_config(uow, system_principal(tenant_id, "test"), merchant_id,
                                    RoutingConfig.model_validate(body))
        uow.commit()
    return record


def _events(db: Database, tenant_id: str) -> list[tuple[str, str, str]]:
    with db.uow(read_only=True) as uow:
        rows = uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant_id, OutboxMessage.topic == "routing.channel_health_changed")
            .order_by(OutboxMessage.id))
        return [(r.payload["channel"], r.payload["from_state"], r.payload["to_state"]) for r in rows]


def test_a_decision_is_stored_with_its_inputs_and_replays_to_the_same_ranking(db, tenant):
    decision = _decide(db, tenant.id)
    assert decision.id.startswith("rtd_")
    assert decision.strategy == "success_rate"
    assert sorted(decision.ranked) == ["alipay", "unionpay", "wxpay"]
    with db.uow(read_only=True) as uow:
        stored = service.get_decision(uow, tenant.id, decision.id)
        result = service.replay(uow, tenant.id, decision.id)
    assert stored.decision == decision
    assert stored.payment_id == "pay_1" and stored.config_scope == "builtin"
    assert [c.channel for c in stored.inputs.candidates] == ["wxpay", "alipay", "unionpay"]
    assert result.matches and result.replayed.ranked == decision.ranked


def test_the_same_payment_draws_the_same_numbers(db, tenant):
    assert _decide(db, tenant.id, "pay_x").ranked == _decide(db, tenant.id, "pay_x").ranked


def test_no_candidates_is_refused_and_stores_nothing(db, tenant):
    with pytest.raises(InvalidRequest) as caught:
        _decide(db, tenant.id, candidates=[])
    assert caught.value.code == "no_channel_available"


def test_another_tenants_decision_is_not_found(db, tenant, other_tenant):
    decision = _decide(db, tenant.id)
    with db.uow(read_only=True) as uow, pytest.raises(NotFound):
        service.get_decision(uow, other_tenant.id, decision.id)


def test_merchant_config_wins_over_the_tenant_default_which_wins_over_the_builtin(db, tenant):
    _set(db, tenant.id, None, {"strategy": {"type": "priority", "channels": ["unionpay"]}})
    assert _decide(db, tenant.id, "p1").ranked[0] == "unionpay"
    _set(db, tenant.id, "mer_1", {"strategy": {"type": "lowest_cost"}})
    assert _decide(db, tenant.id, "p2").ranked == ("alipay", "wxpay", "unionpay")
    assert _decide(db, tenant.id, "p3", merchant_id="mer_2").ranked[0] == "unionpay"
    with db.uow(read_only=True) as uow:
        assert service.get_config(uow, tenant.id, "mer_2").source == "default"
        assert service.get_config(uow, tenant.id, "mer_1").source == "merchant"


def test_a_config_change_bumps_the_version_and_is_audited_once(db, tenant):
    body = {"strategy": {"type": "lowest_cost"}}
    assert _set(db, tenant.id, "mer_1", body).version == 1
    assert _set(db, tenant.id, "mer_1", body).version == 1  # no change, no new version, no event
    record = _set(db, tenant.id, "mer_1", {"strategy": {"type": "lowest_latency"}})
    assert record.version == 2
    with db.uow(read_only=True) as uow:
        events = list(uow.session.scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == "routing.config_set").order_by(AuditEvent.seq)))
        assert [(e.before or {}).get("version") for e in events] == [None, 1]
        assert events[1].after["config"]["strategy"] == {"type": "lowest_latency", "default_latency_ms": 1000}
        assert events[1].actor == "test"


def test_only_a_role_with_tenant_configure_may_change_a_config(db, tenant):
    finance = Principal(tenant.id, "key:x", frozenset({Role.FINANCE}))
    with db.uow() as uow, pytest.raises(PermissionDenied):
        service.set_config(uow, finance, "mer_1", RoutingConfig())


def test_reserved_or_malformed_merchant_ids_are_refused(db, tenant):
    for merchant_id in ["default", "", "x" * 41, "mer-1"]:
        with db.uow() as uow, pytest.raises(InvalidRequest) as caught:
            service.set_config(uow, system_principal(tenant.id, "t"), merchant_id, RoutingConfig())
        assert caught.value.code == "invalid_merchant_id"


def test_parse_config_names_the_field_at_fault():
    with pytest.raises(InvalidRequest) as caught:
        service.parse_config({"success_rate": {"epsilon": 2}})
    assert (caught.value.code, caught.value.param) == ("less_than_equal", "success_rate.epsilon")


def test_outcomes_are_appended_and_feed_the_success_rate_windows(db, tenant):
    _set(db, tenant.id, None, {"success_rate": {"epsilon": 0, "min_samples": 5, "window_size": 20},
                               "breaker": {"consecutive_failures": 100, "min_calls": 100}})
    for _ in range(6):
        _outcome(db, tenant.id, "wxpay", "failure")
        _outcome(db, tenant.id, "alipay", "success")
        _outcome(db, tenant.id, "unionpay", "decline")
    decision = _decide(db, tenant.id)
    assert decision.ranked == ("alipay", "unionpay", "wxpay")
    # wxpay fell far below the best once alipay had min_samples outcomes: reset, resting at its rate then.
    assert decision.scores == {"alipay": 1.0, "unionpay": 1.0, "wxpay": 0.0}
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(RoutingOutcome)
                                  .where(RoutingOutcome.tenant_id == tenant.id)) == 18
        stored = service.get_decision(uow, tenant.id, decision.id)
    assert stored.inputs.windows["alipay"].calls == 6
    assert stored.inputs.windows["wxpay"].calls == 0 and stored.inputs.windows["wxpay"].rate_at_reset == 0.0


def test_outcomes_recorded_by_another_process_are_seen_after_a_refresh(db, tenant):
    _set(db, tenant.id, None, {"success_rate": {"epsilon": 0, "min_samples": 5}})
    _decide(db, tenant.id, "p0")  # warm this process's cache
    with db.engine.begin() as connection:  # another process: straight into the table
        for _ in range(5):
            connection.execute(RoutingOutcome.__table__.insert().values(
                tenant_id=tenant.id, merchant_id="mer_1", method="wallet", channel="unionpay", outcome="success",
                latency_ms=10, at=db.clock.now()))
            connection.execute(RoutingOutcome.__table__.insert().values(
                tenant_id=tenant.id, merchant_id="mer_1", method="wallet", channel="wxpay", outcome="failure",
                latency_ms=10, at=db.clock.now()))
    assert _decide(db, tenant.id, "p1").ranked[0] == "unionpay"


def test_breaker_opens_half_opens_and_closes_with_events(db, tenant):
    _set(db, tenant.id, None, {"breaker": BREAKER, "strategy": {"type": "priority",
                                                                "channels": ["wxpay", "alipay", "unionpay"]}})
    for _ in range(3):
        _outcome(db, tenant.id, "wxpay", "unknown")
    assert _events(db, tenant.id) == [("wxpay", "closed", "open")]
    with db.uow(read_only=True) as uow:
        (health,) = service.channel_health(uow, tenant.id)
    assert (health.channel, health.state, health.consecutive_failures) == ("wxpay", BreakerState.OPEN, 3)
    decision = _decide(db, tenant.id, "p1")
    assert decision.ranked == ("alipay", "unionpay") and "wxpay (breaker open)" in decision.reason

    db.clock.advance(timedelta(seconds=30))
    probe = _decide(db, tenant.id, "p2")  # probe_share 1.0: every payment probes
    assert probe.ranked[0] == "wxpay" and probe.explored
    assert _events(db, tenant.id)[-1] == ("wxpay", "open", "half_open")
    _decide(db, tenant.id, "p3")
    assert len(_events(db, tenant.id)) == 2  # announced once
    _outcome(db, tenant.id, "wxpay", "success")
    _outcome(db, tenant.id, "wxpay", "decline")
    assert _events(db, tenant.id)[-1] == ("wxpay", "half_open", "closed")
    assert _decide(db, tenant.id, "p4").ranked == ("wxpay", "alipay", "unionpay")


def test_every_channel_down_leaves_them_all_as_last_resorts(db, tenant):
    _set(db, tenant.id, None, {"breaker": BREAKER})
    for channel in ("wxpay", "alipay"):
        for _ in range(3):
            _outcome(db, tenant.id, channel, "failure")
    decision = _decide(db, tenant.id, candidates=[Candidate("wxpay", 1), Candidate("alipay", 1)])
    assert sorted(decision.ranked) == ["alipay", "wxpay"]
    assert "last resort" in decision.reason


def test_bad_outcomes_are_refused(db, tenant):
    with db.uow() as uow:
        with pytest.raises(InvalidRequest) as caught:
            service.record_outcome(uow, tenant.id, merchant_id="m", method="w", channel="c", outcome="maybe",
                                   latency_ms=1)
        assert caught.value.code == "invalid_outcome"
        with pytest.raises(InvalidRequest) as caught:
            service.record_outcome(uow, tenant.id, merchant_id="m", method="w", channel="c", outcome="success",
                                   latency_ms=-1)
        assert caught.value.code == "invalid_latency"


def test_tenants_do_not_share_windows_or_breakers(db, tenant):
    other = make_tenant(db, "Other")
    _set(db, tenant.id, None, {"breaker": BREAKER})
    for _ in range(3):
        _outcome(db, tenant.id, "wxpay", "failure")
    with db.uow(read_only=True) as uow:
        assert [h.state for h in service.channel_health(uow, tenant.id)] == [BreakerState.OPEN]
        assert service.channel_health(uow, other.id) == []


def _insert_elsewhere(db: Database, tenant_id: str, channel: str, outcome: str, at, n: int = 1) -> None:  # type: ignore[no-untyped-def]
    with db.engine.begin() as connection:
        for _ in range(n):
            connection.execute(RoutingOutcome.__table__.insert().values(
                tenant_id=tenant_id, merchant_id="mer_1", method="wallet", channel=channel, outcome=outcome,
                latency_ms=10, at=at))


def test_a_row_committed_late_within_the_slack_is_still_counted(db, tenant):
    _set(db, tenant.id, None, {"success_rate": {"epsilon": 0, "min_samples": 1, "reset_gap": 1.0}})
    db.clock.advance(timedelta(seconds=10))
    _decide(db, tenant.id, "p0")  # the cache's watermark is now T0 + 10 s
    _insert_elsewhere(db, tenant.id, "unionpay", "success", db.clock.now() - timedelta(seconds=1))
    _insert_elsewhere(db, tenant.id, "wxpay", "failure", db.clock.now() - timedelta(seconds=1))
    with db.uow() as uow:
        decision = service.decide(uow, tenant.id, merchant_id="mer_1", payment_id="p1", method="wallet",
                                  amount=100, currency="CNY", customer_segment=None, candidates=CANDIDATES)
        stored_windows = service.build_inputs(
            uow, tenant.id, service.effective_config(uow, tenant.id, "mer_1"), merchant_id="mer_1",
            payment_id="p1", method="wallet", amount=100, currency="CNY", customer_segment=None,
            candidates=CANDIDATES)[0].windows
    assert decision.ranked[0] == "unionpay"
    assert stored_windows["unionpay"].calls == 1 and stored_windows["wxpay"].calls == 1  # each counted once


def test_within_the_ttl_the_cache_is_not_refreshed(db, tenant):
    _set(db, tenant.id, None, {"success_rate": {"epsilon": 0, "min_samples": 1}})
    service.cache_settings.ttl_seconds = 3600.0
    first = _decide(db, tenant.id, "p0")
    _insert_elsewhere(db, tenant.id, first.ranked[-1], "success", db.clock.now(), n=3)
    _insert_elsewhere(db, tenant.id, first.ranked[0], "failure", db.clock.now(), n=3)
    assert _decide(db, tenant.id, "p1").ranked == first.ranked
    service.cache_settings.ttl_seconds = 0.0
    assert _decide(db, tenant.id, "p2").ranked[0] == first.ranked[-1]
