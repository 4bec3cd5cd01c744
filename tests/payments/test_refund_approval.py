"""Refunds above a merchant's threshold wait for a finance user's approval (maker-checker), then go out
or are canceled with their reservation released."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.payments import flows
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.tenancy.service import Role
from tests.payments.conftest import Shop, tokenize
from tests.tenancy.helpers import fast_passwords, staff  # noqa: F401  (fixture)


def _paid(client: TestClient, shop: Shop, sandbox: InProcessSandbox, threshold: int | None = 5_000) -> str:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    updated = client.patch(f"/v1/merchants/{shop.merchant_id}", headers=shop.tenant.headers,
                           json={"refund_approval_amount": threshold})
    assert updated.status_code == 200 and updated.json()["refund_approval_amount"] == threshold, updated.text
    payment = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": 20_000, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant), "confirm": True}).json()
    assert payment["status"] == "succeeded"
    return str(payment["id"])


def test_a_large_refund_waits_for_approval_then_goes_out(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                         db: Database, clock: FrozenClock) -> None:
    payment_id = _paid(client, shop, sandbox)
    small = client.post(f"/v1/payments/{payment_id}/refunds", headers=shop.tenant.headers, json={"amount": 5_000})
    assert small.json()["status"] == "succeeded"
    large = client.post(f"/v1/payments/{payment_id}/refunds", headers=shop.tenant.headers, json={"amount": 6_000})
    assert large.status_code == 201 and large.json()["status"] == "requires_approval", large.text
    # Reserved while it waits: nobody can refund the same money twice.
    rest = client.post(f"/v1/payments/{payment_id}/refunds", headers=shop.tenant.headers, json={"amount": 9_001})
    assert rest.status_code == 400 and rest.json()["error"]["code"] == "amount_too_large"

    approvals = client.get("/v1/approvals", headers=shop.tenant.headers, params={"status": "pending"}).json()["data"]
    [approval] = [a for a in approvals if a["object_id"] == large.json()["id"]]
    support = staff(db, client, shop.tenant.id, "support@shop.test", Role.SUPPORT)
    refused = client.post(f"/v1/approvals/{approval['id']}/approve", headers=support, json={})
    assert refused.status_code == 403
    finance = staff(db, client, shop.tenant.id, "finance@shop.test", Role.FINANCE)
    approved = client.post(f"/v1/approvals/{approval['id']}/approve", headers=finance, json={})
    assert approved.status_code == 200, approved.text

    clock.advance(timedelta(seconds=10))
    flows.resolve_open(db)
    refund = client.get(f"/v1/refunds/{large.json()['id']}", headers=shop.tenant.headers).json()
    assert refund["status"] == "succeeded"
    payment = client.get(f"/v1/payments/{payment_id}", headers=shop.tenant.headers).json()
    assert payment["refunded_amount"] == 11_000


def test_a_rejected_refund_is_canceled_and_released(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                    db: Database, clock: FrozenClock) -> None:
    payment_id = _paid(client, shop, sandbox, threshold=0)
    parked = client.post(f"/v1/payments/{payment_id}/refunds", headers=shop.tenant.headers, json={}).json()
    assert parked["status"] == "requires_approval"
    approval_id = next(a["id"] for a in client.get("/v1/approvals", headers=shop.tenant.headers).json()["data"]
                       if a["object_id"] == parked["id"])
    finance = staff(db, client, shop.tenant.id, "finance@shop.test", Role.FINANCE)
    assert client.post(f"/v1/approvals/{approval_id}/reject", headers=finance, json={"reason": "fraud"}).status_code \
        == 200
    clock.advance(timedelta(seconds=10))
    flows.resolve_open(db)
    assert client.get(f"/v1/refunds/{parked['id']}", headers=shop.tenant.headers).json()["status"] == "canceled"
    assert client.get(f"/v1/payments/{payment_id}", headers=shop.tenant.headers).json()["refunded_amount"] == 0
    assert len([t for t in sandbox.engine.refunds()]) == 0


def test_threshold_changes_are_validated(client: TestClient, shop: Shop) -> None:
    bad = client.patch(f"/v1/merchants/{shop.merchant_id}", headers=shop.tenant.headers,
                       json={"refund_approval_amount": -1})
    assert bad.status_code == 400
    assert client.patch("/v1/merchants/mer_nope", headers=shop.tenant.headers,
                        json={"refund_approval_amount": 1}).status_code == 404
    ok = client.patch(f"/v1/merchants/{shop.merchant_id}", headers=shop.tenant.headers,
                      json={"refund_approval_amount": None})
    assert ok.status_code == 200 and ok.json()["refund_approval_amount"] is None
