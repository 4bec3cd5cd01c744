"""Risk decisions wired into payments, refunds and withdrawals, through the API against the in-process
sandbox, on both databases: declines never reach a channel, reviews park the object until a case is closed,
and the job continues what the case approved."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

import finloop.worker.jobs  # noqa: F401  (registers the jobs)
from finloop.db.uow import Database
from finloop.payments import flows
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.risk import lists
from finloop.risk import service as risk
from finloop.risk.cases import service as cases
from finloop.risk.models import RiskDecision, RuleSet
from finloop.worker.registry import registry
from tests.onboarding.helpers import verify_party
from tests.payments.conftest import Shop, sandbox, shop, tokenize  # noqa: F401

RULES = [
    {"id": "big_payment", "expression": "event.amount >= 50000", "score": 5, "event_types": ["payment"]},
    {"id": "no_refunds", "expression": "event.amount > 0", "outcome": "decline", "event_types": ["refund"]},
    {"id": "check_withdrawals", "expression": "event.amount >= 1000", "outcome": "review",
     "event_types": ["withdrawal"]},
]


def _live_rules(db: Database, tenant_id: str) -> None:
    """A live rule set (the pointer set directly: publishing's maker-checker is tested in test_rulesets)."""
    with db.uow() as uow:
        rule_set = risk.create_rule_set(uow, tenant_id, name="main", actor="test")
        version = risk.create_version(uow, tenant_id, rule_set.id, actor="test", rules=RULES,
                                      thresholds={"*": {"review": 1, "decline": 20}})
        uow.session.get(RuleSet, rule_set.id).live_version_id = version.id  # type: ignore[union-attr]
        uow.commit()


def _reliable(sandbox: InProcessSandbox, shop: Shop) -> None:  # noqa: F811
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20),
                                                      payout_async=False))


def _decisions(db: Database, tenant_id: str, **where: str) -> list[risk.Decision]:
    with db.uow(read_only=True) as uow:
        query = select(RiskDecision).where(RiskDecision.tenant_id == tenant_id)
        for key, value in where.items():
            query = query.where(getattr(RiskDecision, key) == value)
        return [risk.read_decision(row) for row in uow.session.scalars(query)]


def _create(client: TestClient, shop: Shop, amount: int, **extra: Any) -> dict[str, Any]:  # noqa: F811
    body = {"merchant_id": shop.merchant_id, "amount": amount, "currency": "CNY", "method": "card",
            "card_id": tokenize(client, shop.tenant), **extra}
    response = client.post("/v1/payments", headers=shop.tenant.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _close(db: Database, tenant_id: str, case_id: str, *, action: str) -> None:
    with db.uow() as uow:
        cases.close_case(uow, tenant_id, case_id, outcome="false_positive" if action == "approve" else
                         "confirmed_fraud", action=action, actor="analyst")
        uow.commit()


def test_payments_declined_reviewed_approved_and_declined(client: TestClient, shop: Shop,  # noqa: F811
                                                          sandbox: InProcessSandbox, db: Database) -> None:  # noqa: F811
    _reliable(sandbox, shop)
    tenant = shop.tenant
    _live_rules(db, tenant.id)
    assert registry.get("payments.resume_reviewed").name == "payments.resume_reviewed"

    # A small payment passes as before, and its decision carries the confirm request's fields.
    ok = _create(client, shop, 1_000)
    confirmed = client.post(f"/v1/payments/{ok['id']}/confirm", headers=tenant.headers,
                            json={"device_id": "dev-1", "ip": "203.0.113.9", "ip_country": "CN"})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "succeeded", confirmed.text
    [decided] = _decisions(db, tenant.id, object_ref=ok["id"])
    assert decided.outcome.value == "approve" and decided.event["ip"] == "203.0.113.9"
    assert decided.event["device_id"] == "dev-1" and decided.event["amount"] == 1_000

    # Bad new confirm fields: 400 with the param, nothing written (no decision, still confirmable).
    pending = _create(client, shop, 2_000)
    for field, value in (("ip", "999.1.1.1"), ("ip_country", "cn"), ("device_id", "a b"), ("ip", "x" * 60)):
        bad = client.post(f"/v1/payments/{pending['id']}/confirm", headers=tenant.headers, json={field: value})
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"]["param"] == field
    assert _decisions(db, tenant.id, object_ref=pending["id"]) == []

    # A black-listed card: declined before routing, no attempt, the channel never asked.
    card = tokenize(client, tenant)
    with db.uow() as uow:
        lists.add_entry(uow, tenant.id, kind="black", level="card", value=card, actor="test", reason="stolen")
        uow.commit()
    seen = len(sandbox.engine.transactions())
    declined = client.post("/v1/payments", headers=tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": 3_000, "currency": "CNY", "method": "card", "card_id": card})
    payment = client.post(f"/v1/payments/{declined.json()['id']}/confirm", headers=tenant.headers).json()
    assert payment["status"] == "failed" and payment["failure_code"] == "risk_declined"
    assert "builtin.blacklist" in payment["failure_message"]
    [decision] = _decisions(db, tenant.id, object_ref=payment["id"])
    assert decision.outcome.value == "decline" and payment["metadata"]["risk_decision_id"] == decision.id
    assert client.get(f"/v1/payments/{payment['id']}/attempts", headers=tenant.headers).json() == []
    assert len(sandbox.engine.transactions()) == seen

    # Reviewed: parked with its case, confirm again is a 409; the case approves, the job confirms (no 2nd decision).
    big = _create(client, shop, 60_000)
    parked = client.post(f"/v1/payments/{big['id']}/confirm", headers=tenant.headers).json()
    assert parked["status"] == "requires_confirmation", parked
    assert parked["next_action"]["type"] == "risk_review" and parked["next_action"]["case_id"]
    again = client.post(f"/v1/payments/{big['id']}/confirm", headers=tenant.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "payment_in_review"
    assert len(sandbox.engine.transactions()) == seen
    assert flows.resume_reviewed(db) == 0
    _close(db, tenant.id, parked["next_action"]["case_id"], action="approve")
    assert flows.resume_reviewed(db) == 1
    resumed = client.get(f"/v1/payments/{big['id']}", headers=tenant.headers).json()
    assert resumed["status"] == "succeeded" and resumed["next_action"] is None
    assert len(_decisions(db, tenant.id, object_ref=big["id"])) == 1
    assert flows.resume_reviewed(db) == 0

    # Reviewed through create-and-confirm, then declined by the case: failed, never sent.
    seen = len(sandbox.engine.transactions())
    other = _create(client, shop, 70_000, confirm=True)
    assert other["status"] == "requires_confirmation" and other["next_action"]["type"] == "risk_review"
    _close(db, tenant.id, other["next_action"]["case_id"], action="decline")
    assert flows.resume_reviewed(db) == 0
    final = client.get(f"/v1/payments/{other['id']}", headers=tenant.headers).json()
    assert final["status"] == "failed" and final["failure_code"] == "risk_declined"
    assert len(sandbox.engine.transactions()) == seen


def test_refund_declined_and_withdrawal_reviewed(client: TestClient, shop: Shop,  # noqa: F811
                                                 sandbox: InProcessSandbox, db: Database) -> None:  # noqa: F811
    _reliable(sandbox, shop)
    tenant = shop.tenant
    customer = client.post("/v1/customers", headers=tenant.headers, json={"reference": "C1"}).json()["id"]
    verify_party(db, tenant.id, "customer", customer)  # withdrawals need a verified customer
    top_up = client.post("/v1/payments", headers=tenant.headers, json={
        "purpose": "wallet_top_up", "customer_id": customer, "amount": 30_000, "currency": "CNY",
        "method": "card", "card_id": tokenize(client, tenant), "confirm": True}).json()
    assert top_up["status"] == "succeeded"
    _live_rules(db, tenant.id)

    # A refund declined: 422 risk_declined, no refund, nothing reserved; the decision is kept as evidence.
    paid = _create(client, shop, 5_000, confirm=True)
    assert paid["status"] == "succeeded"
    refused = client.post(f"/v1/payments/{paid['id']}/refunds", headers=tenant.headers, json={"amount": 1_000})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "risk_declined", refused.text
    assert client.get(f"/v1/refunds?payment_id={paid['id']}", headers=tenant.headers).json()["data"] == []
    assert client.get(f"/v1/payments/{paid['id']}", headers=tenant.headers).json()["refunded_amount"] == 0
    [refund_decision] = _decisions(db, tenant.id, event_type="refund")
    assert refund_decision.outcome.value == "decline" and refund_decision.object_ref == paid["id"]
    # A bad refund is still a 400, with nothing written (not even a decision).
    too_much = client.post(f"/v1/payments/{paid['id']}/refunds", headers=tenant.headers, json={"amount": 9_000})
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "amount_too_large"
    assert len(_decisions(db, tenant.id, event_type="refund")) == 1

    # A withdrawal reviewed: parked with its amount held, the case approves, the job pays it out.
    channel = next(iter(shop.channels))
    response = client.post(f"/v1/customers/{customer}/wallet/withdrawals", headers=tenant.headers, json={
        "channel": channel, "amount": 10_000, "currency": "CNY", "account_name": "Li Lei",
        "account_number": "6222021234567890"})
    assert response.status_code == 201, response.text
    withdrawal = response.json()
    assert withdrawal["status"] == "requires_approval"

    def wallet() -> dict[str, int]:
        [balance] = client.get(f"/v1/customers/{customer}/wallet", headers=tenant.headers).json()["balances"]
        return balance  # type: ignore[no-any-return]

    assert wallet()["balance"] == 30_000 and wallet()["available"] == 20_000
    [decision] = _decisions(db, tenant.id, event_type="withdrawal")
    assert decision.event["payout_account"] == "****7890"  # personal: stored masked
    with db.uow(read_only=True) as uow:
        [case] = [c for c in cases.list_cases(uow, tenant.id) if c.object_type == "withdrawal"]
        assert case.object_id == withdrawal["id"] and case.decision_id == decision.id
        case_id = case.id
        count = uow.session.scalar(select(func.count()).select_from(RiskDecision))
    flows.resolve_open(db)  # the query job leaves a parked withdrawal alone
    assert client.get(f"/v1/withdrawals/{withdrawal['id']}", headers=tenant.headers).json()["status"] == \
        "requires_approval"
    _close(db, tenant.id, case_id, action="approve")
    assert flows.resume_reviewed(db) == 1
    done = client.get(f"/v1/withdrawals/{withdrawal['id']}", headers=tenant.headers).json()
    assert done["status"] == "succeeded", done
    assert wallet()["balance"] == 20_000 and wallet()["available"] == 20_000
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(RiskDecision)) == count
