"""Risk decisions wired into merchant payouts, on both databases: a decline writes no payout and no hold, a
review parks the payout (amount held) until its case approves (sent by payouts.process) or declines it."""

from __future__ import annotations

import pytest

from finloop.db.uow import Database
from finloop.payouts import flows
from finloop.payouts import service as payouts
from finloop.payouts.bank_sandbox import SandboxBank
from finloop.risk import service as risk
from finloop.risk.cases import service as cases
from finloop.risk.models import RuleSet
from finloop.risk.wiring import RiskDeclined
from finloop.settlement.accounts import PartyKind
from tests.payouts.conftest import Party, balances, bank, party  # noqa: F401

RULES = [{"id": "large_payout", "expression": "event.amount >= 50000", "score": 5, "event_types": ["payout"]},
         {"id": "huge_payout", "expression": "event.amount >= 90000", "outcome": "decline",
          "event_types": ["payout"]}]


def _request(db: Database, party: Party, amount: int) -> str:  # noqa: F811
    return flows.request_payout(db, party.tenant.id, party_kind=PartyKind.MERCHANT, party_id=party.merchant_id,
                                amount=amount, currency="CNY")


def _parked_case(db: Database, party: Party, payout_id: str) -> str:  # noqa: F811
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, party.tenant.id, payout_id)
        assert payout.status == "pending_approval" and payout.next_attempt_at is None
        [case] = [c for c in cases.list_cases(uow, party.tenant.id) if c.object_id == payout_id]
        return str(case.id)


def test_payout_declined_reviewed_then_declined_or_approved(db: Database, party: Party,  # noqa: F811
                                                            bank: SandboxBank) -> None:  # noqa: F811
    tenant_id = party.tenant.id
    with db.uow() as uow:
        rule_set = risk.create_rule_set(uow, tenant_id, name="main", actor="test")
        version = risk.create_version(uow, tenant_id, rule_set.id, actor="test", rules=RULES,
                                      thresholds={"*": {"review": 1, "decline": 20}})
        uow.session.get(RuleSet, rule_set.id).live_version_id = version.id  # type: ignore[union-attr]
        uow.commit()

    with pytest.raises(RiskDeclined) as refused:
        _request(db, party, 95_000)
    assert refused.value.code == "risk_declined" and refused.value.details["decision_id"]
    assert balances(db, tenant_id, party.merchant_id) == (100_000, 100_000, 0)
    with db.uow(read_only=True) as uow:
        assert payouts.list_payouts(uow, tenant_id) == []

    declined = _request(db, party, 60_000)
    assert balances(db, tenant_id, party.merchant_id) == (100_000, 40_000, 0)
    flows.process(db)  # a parked payout is not looked at
    with db.uow() as uow:
        cases.close_case(uow, tenant_id, _parked_case(db, party, declined), outcome="confirmed_fraud",
                         action="decline", actor="analyst")
        uow.commit()
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, tenant_id, declined)
        assert (payout.status, payout.error_code) == ("canceled", "risk_declined")
    assert balances(db, tenant_id, party.merchant_id) == (100_000, 100_000, 0)

    approved = _request(db, party, 60_000)
    with db.uow() as uow:
        cases.close_case(uow, tenant_id, _parked_case(db, party, approved), outcome="false_positive",
                         action="approve", actor="analyst")
        uow.commit()
    flows.process(db)
    with db.uow(read_only=True) as uow:
        payout = payouts.get_payout(uow, tenant_id, approved)
        assert payout.attempts == 1 and payout.status in ("processing", "succeeded", "failed")
