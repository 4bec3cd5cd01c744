"""Payments through the API against the in-process sandbox: the happy paths, failover, unknown outcomes,
refunds, cancellation, notifications, and bad input — each on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.ledger import service as ledger
from finloop.payments import flows
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile, Outage
from finloop.payments.postings import merchant_pending_code
from tests.conftest import TenantHandle, make_tenant
from tests.payments.conftest import Shop, tokenize


def always() -> ChannelProfile:
    """A fresh profile per channel: profiles are mutable (outages are appended to them)."""
    return ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20))


def _pay(client: TestClient, shop: Shop, *, amount: int = 10_000, method: str = "card", confirm: bool = True,
         headers: dict[str, str] | None = None, **extra: object) -> dict:  # type: ignore[type-arg]
    body = {"merchant_id": shop.merchant_id, "amount": amount, "currency": "CNY", "method": method,
            "order_reference": "order-1", "confirm": confirm, **extra}
    if method == "card" and "card_id" not in extra:
        body["card_id"] = tokenize(client, shop.tenant)
    response = client.post("/v1/payments", headers=headers or shop.tenant.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _merchant_pending(db: Database, shop: Shop) -> int:
    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, shop.tenant.id, merchant_pending_code(shop.merchant_id), "CNY")
        return 0 if account is None else account.credits_posted - account.debits_posted


def _attempts(client: TestClient, shop: Shop, payment_id: str) -> list[dict]:  # type: ignore[type-arg]
    response = client.get(f"/v1/payments/{payment_id}/attempts", headers=shop.tenant.headers)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_card_payment_succeeds_and_credits_the_merchant(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                        db: Database) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop)
    assert payment["status"] == "succeeded"
    assert payment["captured_amount"] == 10_000
    assert payment["fee_amount"] == sandbox.engine.fee(payment["channel"], 10_000)
    assert payment["ledger_entry_id"].startswith("je_")
    assert _merchant_pending(db, shop) == 10_000
    [attempt] = _attempts(client, shop, payment["id"])
    assert attempt["status"] == "succeeded" and attempt["routing_decision_id"].startswith("rtd_")


def test_retryable_failure_fails_over_to_the_next_channel(client: TestClient, shop: Shop,
                                                          sandbox: InProcessSandbox, clock: FrozenClock) -> None:
    now = clock.now()
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop, amount=500)
    first = payment["channel"]
    other = next(code for code in shop.channels if code != first)
    sandbox.engine.add_outage(first, now - timedelta(minutes=1), now + timedelta(hours=1))
    moved = _pay(client, shop, amount=700)
    attempts = _attempts(client, shop, moved["id"])
    if attempts[0]["channel"] == first:  # routing may already avoid it; when it did not, it failed over
        assert [a["status"] for a in attempts] == ["failed", "succeeded"], [
            (a["channel"], a["error_code"], a["error_message"]) for a in attempts]
        assert attempts[1]["channel"] == other
    assert moved["status"] == "succeeded" and moved["channel"] == other, (moved, [
        (a["channel"], a["status"], a["error_code"], a["error_message"]) for a in attempts])


def test_decline_does_not_fail_over(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> None:
    declining = ChannelProfile(success_share=Decimal(0), decline_share=Decimal(1), latency_ms=(5, 10, 20))
    for code in shop.channels:
        sandbox.engine.configure(code, declining)
    payment = _pay(client, shop)
    assert payment["status"] == "failed"
    assert [a["status"] for a in _attempts(client, shop, payment["id"])] == ["declined"]


def test_lost_reply_is_queried_and_never_charged_twice(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                       db: Database) -> None:
    lost_but_paid = ChannelProfile(success_share=Decimal(1), timeout_share=Decimal(1),
                                   timeout_success_share=Decimal(1), latency_ms=(5, 10, 20))
    for code in shop.channels:
        sandbox.engine.configure(code, lost_but_paid)
    payment = _pay(client, shop)
    attempts = _attempts(client, shop, payment["id"])
    assert len(attempts) == 1, "an unknown outcome must be resolved, not routed around"
    assert payment["status"] == "succeeded"
    assert len(sandbox.engine.transactions()) == 1
    assert _merchant_pending(db, shop) == 10_000


def test_partial_refunds_never_exceed_the_capture(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                  db: Database) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop, amount=10_000)
    headers = shop.tenant.headers
    first = client.post(f"/v1/payments/{payment['id']}/refunds", headers=headers, json={"amount": 3_000})
    assert first.status_code == 201 and first.json()["status"] == "succeeded", first.text
    too_much = client.post(f"/v1/payments/{payment['id']}/refunds", headers=headers, json={"amount": 7_001})
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "amount_too_large"
    rest = client.post(f"/v1/payments/{payment['id']}/refunds", headers=headers, json={})
    assert rest.status_code == 201 and rest.json()["amount"] == 7_000
    fee = payment["fee_amount"]
    assert first.json()["fee_returned_amount"] + rest.json()["fee_returned_amount"] == fee
    assert client.get(f"/v1/payments/{payment['id']}", headers=headers).json()["refunded_amount"] == 10_000
    assert _merchant_pending(db, shop) == 0


def test_qr_payment_waits_for_the_customer_then_the_notification_settles_it(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop, method="qr")
    assert payment["status"] == "requires_action"
    assert payment["next_action"]["type"] == "qr_code"
    [attempt] = _attempts(client, shop, payment["id"])
    sandbox.engine.customer_acts(attempt["channel"], attempt["id"], pays=True)
    clock.advance(timedelta(seconds=10))
    assert sandbox.deliver_notifications(client) >= 1
    settled = client.get(f"/v1/payments/{payment['id']}", headers=shop.tenant.headers).json()
    assert settled["status"] == "succeeded"
    assert _merchant_pending(db, shop) == 10_000


def test_query_job_settles_a_payment_whose_notification_was_lost(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20),
                                                      notify_loss_share=Decimal(1)))
    payment = _pay(client, shop, method="qr")
    [attempt] = _attempts(client, shop, payment["id"])
    sandbox.engine.customer_acts(attempt["channel"], attempt["id"], pays=True)
    sandbox.deliver_notifications(client)
    clock.advance(timedelta(seconds=10))
    assert flows.resolve_open(db) >= 1
    assert client.get(f"/v1/payments/{payment['id']}", headers=shop.tenant.headers).json()["status"] == "succeeded"
    assert _merchant_pending(db, shop) == 10_000


def test_late_success_on_a_canceled_payment_is_refunded(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                        db: Database) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop, method="qr")
    [attempt] = _attempts(client, shop, payment["id"])
    # The customer pays at the channel; before any notification arrives the merchant cancels.
    sandbox.engine.customer_acts(attempt["channel"], attempt["id"], pays=True)
    canceled = client.post(f"/v1/payments/{payment['id']}/cancel", headers=shop.tenant.headers, json={})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    refunds = client.get("/v1/refunds", headers=shop.tenant.headers, params={"payment_id": payment["id"]}).json()
    assert "data" in refunds, refunds
    assert [(r["is_automatic"], r["status"], r["amount"]) for r in refunds["data"]] == [(True, "succeeded", 10_000)]
    assert [a["status"] for a in _attempts(client, shop, payment["id"])] == ["succeeded"]
    assert _merchant_pending(db, shop) == 0


def test_manual_capture_in_part(client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop, capture_method="manual")
    assert payment["status"] == "requires_capture"
    captured = client.post(f"/v1/payments/{payment['id']}/capture", headers=shop.tenant.headers,
                           json={"amount": 6_000})
    assert captured.status_code == 200, captured.text
    assert captured.json()["status"] == "succeeded" and captured.json()["captured_amount"] == 6_000
    assert _merchant_pending(db, shop) == 6_000
    again = client.post(f"/v1/payments/{payment['id']}/capture", headers=shop.tenant.headers, json={})
    assert again.status_code == 409


def test_illegal_transition_is_a_conflict(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop)
    response = client.post(f"/v1/payments/{payment['id']}/confirm", headers=shop.tenant.headers, json={})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_state_conflict"
    canceled = client.post(f"/v1/payments/{payment['id']}/cancel", headers=shop.tenant.headers, json={})
    assert canceled.status_code == 409


def test_idempotency_key_replays_a_confirmation(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    card = tokenize(client, shop.tenant)
    body = {"merchant_id": shop.merchant_id, "amount": 1234, "currency": "CNY", "method": "card", "card_id": card,
            "confirm": True}
    headers = {**shop.tenant.headers, "Idempotency-Key": "checkout-42"}
    first = client.post("/v1/payments", headers=headers, json=body)
    second = client.post("/v1/payments", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(sandbox.engine.transactions()) == 1
    reused = client.post("/v1/payments", headers=headers, json={**body, "amount": 1235})
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


def test_bad_input_is_refused_and_writes_nothing(client: TestClient, shop: Shop) -> None:
    headers = shop.tenant.headers
    cases = [
        ({"merchant_id": shop.merchant_id, "amount": 10.5, "currency": "CNY"}, 400, "amount"),
        ({"merchant_id": shop.merchant_id, "amount": 0, "currency": "CNY"}, 400, "amount"),
        ({"merchant_id": shop.merchant_id, "amount": 100, "currency": "XXQ"}, 400, "currency"),
        ({"merchant_id": shop.merchant_id, "amount": 100, "currency": "CNY", "method": "telepathy"}, 400, "method"),
        ({"merchant_id": "mer_nope", "amount": 100, "currency": "CNY"}, 404, "merchant_id"),
        ({"merchant_id": shop.merchant_id, "amount": 100, "currency": "CNY", "method": "qr",
          "capture_method": "manual"}, 400, "capture_method"),
    ]
    for body, status, param in cases:
        response = client.post("/v1/payments", headers=headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["param"] == param, (body, response.json())
    assert client.get("/v1/payments", headers=headers).json()["data"] == []


def test_tenants_never_see_each_other(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                     db: Database) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop)
    other: TenantHandle = make_tenant(db, "Rival")
    assert client.get(f"/v1/payments/{payment['id']}", headers=other.headers).status_code == 404
    assert client.post(f"/v1/payments/{payment['id']}/refunds", headers=other.headers, json={}).status_code == 404
    assert client.get(f"/v1/merchants/{shop.merchant_id}", headers=other.headers).status_code == 404
    assert client.get("/v1/payments", headers=other.headers).json()["data"] == []
    assert client.get("/v1/payments").status_code == 401


def test_channel_credentials_are_never_returned(client: TestClient, shop: Shop) -> None:
    listed = client.get("/v1/channels", headers=shop.tenant.headers)
    assert listed.status_code == 200
    for channel in listed.json():
        assert channel["has_credentials"] is True
        assert "credentials" not in channel


def test_forged_notification_is_rejected(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> None:
    for code in shop.channels:
        sandbox.engine.configure(code, always())
    payment = _pay(client, shop, method="qr")
    [attempt] = _attempts(client, shop, payment["id"])
    channel_id = shop.channels[attempt["channel"]]["id"]
    forged = client.post(f"/v1/channels/{channel_id}/notifications",
                         content=b'{"reference": "%s", "status": "succeeded"}' % attempt["id"].encode(),
                         headers={"content-type": "application/json"})
    assert forged.status_code >= 400
    assert client.get(f"/v1/payments/{payment['id']}", headers=shop.tenant.headers).json()["status"] == \
        "requires_action"


def test_outage_window_is_respected_by_the_engine(sandbox: InProcessSandbox, clock: FrozenClock) -> None:
    outage = Outage(clock.now(), clock.now() + timedelta(minutes=10))
    assert outage.end - outage.start == timedelta(minutes=10)
