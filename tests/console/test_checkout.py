"""The hosted checkout page: the order and its ways to pay behind a signed link, a choice that confirms the
payment once through the hosted flow, the live status, and refused links (forged 404, expired 410)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from finloop.console.pages.checkout import safe_return_url, status_label
from finloop.core.clock import FrozenClock
from finloop.core.errors import NotFound
from finloop.db.uow import Database
from finloop.payments import gateway, hosted
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.state import PaymentStatus
from tests.conftest import TenantHandle
from tests.payments.conftest import SANDBOX_CHANNELS, Shop, register_channel, tokenize


@pytest.fixture
def sandbox(clock: FrozenClock) -> Iterator[InProcessSandbox]:
    box = InProcessSandbox(clock, seed=7, channels=SANDBOX_CHANNELS)
    for code in SANDBOX_CHANNELS:
        # Every customer who is shown a code pays it, a minute later at the latest.
        box.engine.configure(code, ChannelProfile(success_share=Decimal(1), customer_pays_share=Decimal(1),
                                                  latency_ms=(5, 10, 20)))
    with gateway.use_http_client(box.client):
        yield box


@pytest.fixture
def shop(client: TestClient, tenant: TenantHandle, sandbox: InProcessSandbox) -> Shop:
    channels = {code: register_channel(client, tenant, sandbox, code) for code in SANDBOX_CHANNELS}
    response = client.post("/v1/merchants", headers=tenant.headers, json={
        "reference": "M1", "name": "Tea House", "metadata": {"return_url": "https://tea.example/orders"}})
    assert response.status_code == 201, response.text
    return Shop(tenant, response.json()["id"], channels)


def _payment(client: TestClient, shop: Shop, **extra: Any) -> str:
    response = client.post("/v1/payments", headers=shop.tenant.headers, json={
        "merchant_id": shop.merchant_id, "amount": 2_500, "currency": "CNY", "order_reference": "table-7", **extra})
    assert response.status_code == 201, response.text
    payment_id: str = response.json()["id"]
    return payment_id


def _path(db: Database, shop: Shop, payment_id: str) -> str:
    with db.uow(read_only=True) as uow:
        _, url, _ = hosted.checkout_link(uow, shop.tenant.id, payment_id, "https://pay.example")
    assert url.startswith("https://pay.example/console/checkout/")
    return url.removeprefix("https://pay.example")


def _attempts(client: TestClient, shop: Shop, payment_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"/v1/payments/{payment_id}/attempts", headers=shop.tenant.headers).json()
    return found


def _status(client: TestClient, shop: Shop, payment_id: str) -> str:
    status: str = client.get(f"/v1/payments/{payment_id}", headers=shop.tenant.headers).json()["status"]
    return status


def test_the_page_shows_the_order_and_its_ways_to_pay_without_a_sign_in(client: TestClient, shop: Shop,
                                                                       db: Database) -> None:
    payment_id = _payment(client, shop, metadata={"return_url": "https://tea.example/table-7"})
    path = _path(db, shop, payment_id)
    page = TestClient(client.app).get(path)  # a customer's browser: no console cookies at all
    assert page.status_code == 200, page.text
    # The token in the address goes nowhere else: not in a Referer, not in a cache.
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    text = page.text
    assert 'class="customer"' in text and 'class="phone"' in text and 'nav class="side"' not in text
    assert "Tea House" in text and "CNY 25.00" in text and "table-7" in text
    # One choice per QR or browser method of each enabled channel; cards are never taken here.
    for value in ("qr:unionpay", "h5:unionpay", "qr:paypal", "h5:paypal"):
        assert f'value="{value}"' in text
    assert "card:" not in text
    assert "data-unified-qr" in text and "<svg" in text and "<?xml" not in text
    assert f'data-poll="{path}/status"' in text and 'data-final="succeeded,failed,canceled,expired"' in text
    # The payment's own return link wins over the merchant's.
    assert 'href="https://tea.example/table-7"' in text and "tea.example/orders" not in text
    status = client.get(f"{path}/status")
    assert status.status_code == 200
    assert status.json() == {"status": "requires_payment_method", "status_label": "Choose how to pay"}


def test_choosing_a_way_confirms_once_and_the_status_follows_the_channel(
        client: TestClient, shop: Shop, db: Database, sandbox: InProcessSandbox, clock: FrozenClock) -> None:
    payment_id = _payment(client, shop)
    path = _path(db, shop, payment_id)
    chosen = client.post(f"{path}/pay", data={"choice": "qr:paypal"}, follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == path
    attempts = _attempts(client, shop, payment_id)
    assert [(a["channel"], a["status"]) for a in attempts] == [("paypal", "requires_action")]
    waiting = client.get(path).text
    assert "data-channel-qr" in waiting and 'name="choice"' not in waiting and "data-unified-qr" not in waiting
    assert client.get(f"{path}/status").json() == {"status": "requires_action",
                                                   "status_label": "Waiting for you to pay"}
    # A second tap (or another tab) confirms nothing more.
    again = client.post(f"{path}/pay", data={"choice": "h5:unionpay"}, follow_redirects=False)
    assert again.status_code == 303 and len(_attempts(client, shop, payment_id)) == 1
    # The customer pays in their app; the channel tells us; the page's status settles.
    sandbox.engine.customer_acts("paypal", attempts[0]["id"])
    clock.advance(timedelta(seconds=10))
    assert sandbox.deliver_notifications(client) >= 1
    assert client.get(f"{path}/status").json() == {"status": "succeeded", "status_label": "Paid"}
    done = client.get(path).text
    assert 'data-status="succeeded"' in done and "data-poll" not in done
    assert "data-after-final>" in done and 'href="https://tea.example/orders"' in done


def test_a_payment_created_with_its_method_keeps_it(client: TestClient, shop: Shop, db: Database) -> None:
    payment_id = _payment(client, shop, method="h5")
    path = _path(db, shop, payment_id)
    page = client.get(path).text
    assert 'value="h5:unionpay"' in page and 'value="h5:paypal"' in page and "qr:" not in page
    assert client.post(f"{path}/pay", data={"choice": "h5:unionpay"}, follow_redirects=False).status_code == 303
    assert [a["channel"] for a in _attempts(client, shop, payment_id)] == ["unionpay"]
    continued = client.get(path).text
    assert "data-continue" in continued or "data-channel-qr" in continued


def test_a_card_payment_is_not_confirmed_here(client: TestClient, shop: Shop, db: Database) -> None:
    card_id = tokenize(client, shop.tenant)
    payment_id = _payment(client, shop, method="card", card_id=card_id)
    path = _path(db, shop, payment_id)
    page = client.get(path).text
    assert 'name="choice"' not in page and "No way to pay this order is available" in page
    assert "4242" not in page and card_id not in page
    refused = client.post(f"{path}/pay", data={"choice": "card:paypal"}, follow_redirects=False)
    assert refused.status_code == 400 and _attempts(client, shop, payment_id) == []


def test_every_status_reads_to_the_customer() -> None:
    assert all(status_label(status) for status in PaymentStatus)  # a new status without words fails here


def test_a_way_not_offered_is_refused_and_nothing_is_written(client: TestClient, shop: Shop, db: Database) -> None:
    payment_id = _payment(client, shop)
    path = _path(db, shop, payment_id)
    for choice in ("card:paypal", "qr:nowhere", ""):
        refused = client.post(f"{path}/pay", data={"choice": choice}, follow_redirects=False)
        assert refused.status_code == 400 and 'data-checkout-error="invalid_choice"' in refused.text
        assert 'name="choice"' in refused.text  # still the checkout, ready for another choice
    assert _attempts(client, shop, payment_id) == []
    assert _status(client, shop, payment_id) == "requires_payment_method"


def test_forged_and_expired_links_are_refused(client: TestClient, shop: Shop, db: Database,
                                              clock: FrozenClock) -> None:
    payment_id = _payment(client, shop)
    path = _path(db, shop, payment_id)
    body, mac = path.rsplit("/", 1)[1].split(".")
    forged = f"/console/checkout/{body}.{'A' * len(mac)}"
    page = client.get(forged)
    assert page.status_code == 404 and "data-error-code>payment_link_invalid<" in page.text
    assert payment_id not in page.text and "CNY" not in page.text
    assert client.get(f"{forged}/status").status_code == 404
    assert client.post(f"{forged}/pay", data={"choice": "qr:paypal"}).status_code == 404
    clock.advance(timedelta(minutes=16))
    expired = client.get(path)
    assert expired.status_code == 410 and "data-error-code>payment_link_expired<" in expired.text
    status = client.get(f"{path}/status")
    assert status.status_code == 410 and status.json()["status"] == "expired"
    assert client.post(f"{path}/pay", data={"choice": "qr:paypal"}).status_code == 410
    assert _attempts(client, shop, payment_id) == [] and _status(client, shop, payment_id) == \
        "requires_payment_method"


def test_only_http_links_lead_back_to_the_merchant(client: TestClient, shop: Shop, db: Database) -> None:
    payment_id = _payment(client, shop, metadata={"return_url": "javascript:alert(1)"})
    page = client.get(_path(db, shop, payment_id)).text
    assert "javascript:" not in page and 'href="https://tea.example/orders"' in page  # the merchant's instead
    assert [safe_return_url(v) for v in ("https://a.example/x", "http://a.example", "//a.example", "/relative",
                                         "ftp://a.example", "data:text/html,hi", 7)] == \
        ["https://a.example/x", "http://a.example", None, None, None, None, None]


def test_a_link_names_only_its_own_tenants_payment(client: TestClient, shop: Shop, db: Database,
                                                    other_tenant: TenantHandle) -> None:
    payment_id = _payment(client, shop)
    with db.uow(read_only=True) as uow, pytest.raises(NotFound):
        hosted.checkout_link(uow, other_tenant.id, payment_id, "https://pay.example")
    # A token naming a tenant the payment does not belong to opens nothing.
    with db.uow(read_only=True) as uow:
        token = hosted.make_token(other_tenant.id, payment_id, uow.clock.now())
    page = client.get(f"/console/checkout/{token}")
    assert page.status_code == 404 and "Tea House" not in page.text


def test_the_api_gives_a_checkout_link_to_the_payments_tenant_only(client: TestClient, shop: Shop,
                                                                   other_tenant: TenantHandle) -> None:
    payment_id = _payment(client, shop)
    link = client.get(f"/v1/payments/{payment_id}/checkout-link", headers=shop.tenant.headers)
    assert link.status_code == 200, link.text
    body = link.json()
    assert body["payment_id"] == payment_id and "/console/checkout/" in body["url"]
    page = client.get(urlsplit(body["url"]).path)
    assert page.status_code == 200 and 'class="phone"' in page.text
    assert client.get(f"/v1/payments/{payment_id}/checkout-link", headers=other_tenant.headers).status_code == 404
    assert client.get(f"/v1/payments/{payment_id}/checkout-link").status_code == 401
