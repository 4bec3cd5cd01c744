"""Black, white and grey lists: forced declines, white bypass, expiry by the clock, blind-indexed values."""

from __future__ import annotations

from datetime import timedelta

import pytest

from finloop.core.errors import Conflict, InvalidRequest
from finloop.db.uow import Database
from finloop.risk import lists, service
from finloop.risk.domain import BLACKLIST_RULE, Outcome
from finloop.risk.models import RiskDecision, RiskListEntry
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal, Role


def _live(db: Database, tenant_id: str, rules: list[dict]) -> str:  # type: ignore[type-arg]
    maker = Principal(tenant_id, "user:a", frozenset({Role.RISK_ANALYST}), user_id="usr_a")
    checker = Principal(tenant_id, "user:b", frozenset({Role.RISK_ANALYST}), user_id="usr_b")
    with db.uow() as uow:
        rs = service.create_rule_set(uow, tenant_id, name="main", actor="test")
        version = service.create_version(uow, tenant_id, rs.id, actor="test", rules=rules)
        version = service.request_publish(uow, maker, rs.id, version.id)
        tenancy.decide_approval(uow, checker, version.approval_id or "", approve=True)
        service.request_publish(uow, maker, rs.id, version.id)
        uow.commit()
    return rs.id


def test_lists_force_bypass_expire_and_blind_index(db: Database, tenant, other_tenant, clock) -> None:  # type: ignore[no-untyped-def]
    t = tenant.id
    _live(db, t, [
        {"id": "grey_ip", "description": "Grey IP", "expression": "'grey:ip' in lists", "score": 7},
        {"id": "amount", "description": "Any amount", "expression": "event.amount > 0", "score": 1},
    ])

    def decide(event: dict) -> service.Decision:  # type: ignore[type-arg]
        with db.uow() as uow:
            decision = service.decide(uow, t, event_type="payment", event=event)
            uow.commit()
        return decision

    with db.uow() as uow:
        phone = lists.add_entry(uow, t, kind="black", level="phone", value="+44 7700 900123", reason="Mule",
                                actor="test", expires_at=clock.now() + timedelta(days=1))
        lists.add_entry(uow, t, kind="grey", level="ip", value="10.0.0.9", reason="Proxy", actor="test")
        lists.add_entry(uow, t, kind="white", level="customer", value="vip", reason="Known", actor="test",
                        bypass_rules=[BLACKLIST_RULE, "amount"])
        with pytest.raises(Conflict):
            lists.add_entry(uow, t, kind="black", level="phone", value="+447700900123", reason="Again", actor="test")
        for bad in ({"kind": "red"}, {"level": "planet"}, {"value": ""}, {"reason": ""},
                    {"expires_at": clock.now() - timedelta(seconds=1)}, {"bypass_rules": ["amount"]}):
            args = {"kind": "black", "level": "ip", "value": "1.2.3.4", "reason": "r", **bad}
            with pytest.raises(InvalidRequest):
                lists.add_entry(uow, t, actor="test", **args)  # type: ignore[arg-type]
        uow.commit()
    # The phone is stored only as a keyed blind index, displayed masked; another format of it matches.
    with db.uow() as uow:
        row = uow.session.get(RiskListEntry, phone.id)
        assert row is not None and "7700" not in row.value and len(row.value) == 64 and row.display == "****0123"
        assert lists.blind_index(uow, t, "phone", "+447700900123") == row.value
        assert lists.blind_index(uow, other_tenant.id, "phone", "+447700900123") != row.value
        found = lists.list_entries(uow, t, level="phone", value="+44-7700-900-123")
        assert [e.id for e in found] == [phone.id]
    black = decide({"amount": 10, "phone": "+447700900123", "customer_id": "c1"})
    assert black.outcome is Outcome.DECLINE and black.lists == ("black:phone",)
    assert black.fired[0].rule_id == BLACKLIST_RULE and black.reasons[0]["rule_id"] == BLACKLIST_RULE
    with db.uow() as uow:
        stored = uow.session.get(RiskDecision, black.id)
        assert stored is not None and stored.event["phone"] == "****0123"
    # White-listed customer: the black-list rule and "amount" are bypassed, the grey IP rule is not.
    white = decide({"amount": 10, "phone": "+447700900123", "customer_id": "vip", "ip": "10.0.0.9"})
    assert white.outcome is Outcome.REVIEW and [f.rule_id for f in white.fired] == ["grey_ip"]
    assert set(white.lists) == {"black:phone", "white:customer", "grey:ip"}
    # Another tenant's lists do not apply.
    with db.uow() as uow:
        other = service.decide(uow, other_tenant.id, event_type="payment", event={"phone": "+447700900123"})
        assert other.lists == () and other.outcome is Outcome.APPROVE
    # Expiry follows the clock; removal is immediate.
    clock.advance(timedelta(days=1))
    assert decide({"amount": 10, "phone": "+447700900123"}).outcome is Outcome.REVIEW
    with db.uow() as uow:
        grey = lists.list_entries(uow, t, kind="grey")[0]
        lists.remove_entry(uow, t, grey.id, actor="test")
        with pytest.raises(Conflict):
            lists.remove_entry(uow, t, grey.id, actor="test")
        uow.commit()
    assert decide({"amount": 10, "ip": "10.0.0.9"}).fired[0].rule_id == "amount"
    assert len(decide({"amount": 10, "ip": "10.0.0.9"}).fired) == 1
