"""The unified QR code: one link per order, resolved to the scanning app's channel by a signed, expiring token."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from finloop.core.clock import FrozenClock
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from tests.payments.conftest import Shop


def _order(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> tuple[str, str]:
    for code in shop.channels:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(5, 10, 20)))
    payment = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": 2_500, "currency": "CNY", "order_reference": "table-7"})
    assert payment.status_code == 201 and payment.json()["status"] == "requires_payment_method"
    svg = client.get(f"/v1/payments/{payment.json()['id']}/qr.svg", headers=shop.tenant.headers)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.content.lstrip().startswith(b"<?xml") or b"<svg" in svg.content[:200]
    return payment.json()["id"], svg.headers["x-payment-link"]


def test_the_scanning_app_picks_its_channel(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> None:
    payment_id, link = _order(client, shop, sandbox)
    path = link.split("127.0.0.1:8000", 1)[1]
    opened = client.get(path, headers={"User-Agent": "Mozilla/5.0 (Linux) UnionPay/1.0 CloudPay"},
                        follow_redirects=False)
    assert opened.status_code == 303, opened.text
    attempts = client.get(f"/v1/payments/{payment_id}/attempts", headers=shop.tenant.headers).json()
    assert [a["channel"] for a in attempts] == ["unionpay"]
    again = client.get(path, headers={"User-Agent": "Mozilla/5.0 PayPal"}, follow_redirects=False)
    assert again.status_code == 303  # the same next action; never a second confirmation
    assert len(client.get(f"/v1/payments/{payment_id}/attempts", headers=shop.tenant.headers).json()) == 1


def test_png_and_bad_kinds(client: TestClient, shop: Shop, sandbox: InProcessSandbox) -> None:
    payment_id, _ = _order(client, shop, sandbox)
    png = client.get(f"/v1/payments/{payment_id}/qr.png", headers=shop.tenant.headers)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client.get(f"/v1/payments/{payment_id}/qr.gif", headers=shop.tenant.headers).status_code in (400, 404)


def test_forged_and_expired_links_are_refused(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                              clock: FrozenClock) -> None:
    payment_id, link = _order(client, shop, sandbox)
    path = link.split("127.0.0.1:8000", 1)[1]
    body, mac = path.rsplit("/", 1)[1].split(".")
    forged = f"/v1/hosted/{body}.{'A' * len(mac)}"
    assert client.get(forged).status_code == 404
    clock.advance(timedelta(minutes=16))
    expired = client.get(path, follow_redirects=False)
    assert expired.status_code == 404 and expired.json()["error"]["code"] == "payment_link_invalid"
    assert client.get(f"/v1/payments/{payment_id}", headers=shop.tenant.headers).json()["status"] == \
        "requires_payment_method"
