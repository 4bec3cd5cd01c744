"""``finloop serve --sandbox``: a sandbox started after the charges were made (over the demo's database) answers
the channels the demo registered and refunds charges it never saw, as the channel that made them would."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient

from finloop.db.uow import Database
from finloop.payments import flows, gateway
from finloop.payments import service as payments
from finloop.payments.connectors.sandbox.app import InProcessSandbox, demo_channels_sandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from tests.payments.conftest import SANDBOX_CHANNELS, Shop, tokenize


def _charged(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> str:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    payment = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": 20_000, "currency": "CNY", "method": "card",
        "card_id": tokenize(client, shop.tenant), "confirm": True}).json()
    assert payment["status"] == "succeeded", payment
    return str(payment["id"])


def test_a_restarted_sandbox_refunds_a_charge_it_never_saw(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                            db: Database) -> None:
    payment_id = _charged(client, shop, sandbox)
    restarted = demo_channels_sandbox(db)
    assert set(restarted.providers) == set(SANDBOX_CHANNELS)
    assert restarted.engine.transactions() == []
    with gateway.use_http_client(restarted.client):
        refund_id = flows.refund_payment(db, shop.tenant.id, payment_id, amount=7_500, reason="returned")
    with db.uow(read_only=True) as uow:
        refund = payments.get_refund(uow, shop.tenant.id, refund_id)
        assert (refund.status, refund.amount) == ("succeeded", 7_500)
    [remembered] = restarted.engine.transactions()
    assert (remembered.captured, remembered.refunded, remembered.currency) == (20_000, 7_500, "CNY")


def test_an_ordinary_sandbox_refuses_a_refund_of_an_unknown_charge(client: TestClient, shop: Shop,
                                                                   sandbox: InProcessSandbox, db: Database) -> None:
    payment_id = _charged(client, shop, sandbox)
    forgetful = InProcessSandbox(sandbox.engine.clock, channels=SANDBOX_CHANNELS)
    with gateway.use_http_client(forgetful.client):
        refund_id = flows.refund_payment(db, shop.tenant.id, payment_id, amount=7_500)
    with db.uow(read_only=True) as uow:
        assert payments.get_refund(uow, shop.tenant.id, refund_id).status == "failed"
