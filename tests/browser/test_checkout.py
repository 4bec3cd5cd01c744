"""The hosted checkout on a phone-sized screen: the order and its amount, a way to pay chosen, and the status
following the channel until the result, without reloading the page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from finloop.payments import hosted
from finloop.payments import service as payments
from finloop.payments.models import Attempt
from tests.browser.conftest import CUSTOMER_CHANNEL, World

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"}


def _order(world: World) -> tuple[str, str]:
    with world.db.uow() as uow:
        payment = payments.create_payment(uow, world.tenant_id, payments.PaymentDraft(
            merchant_id=world.merchant_id, amount=4_280, currency="CNY", order_reference="table-12",
            description="Two pots of oolong", metadata={"return_url": "https://tea.example/orders/12"}))
        token = hosted.make_token(world.tenant_id, payment.id, uow.clock.now())
        uow.commit()
        return payment.id, token


def test_a_customer_pays_on_a_phone(world: World, new_page: Callable[..., Page], screenshots: Path) -> None:
    payment_id, token = _order(world)
    page = new_page(**PHONE)
    page.goto(world.url(f"/console/checkout/{token}"))
    expect(page.locator("[data-amount]")).to_have_text("CNY 42.80")
    expect(page.locator("[data-merchant]")).to_have_text("Demo Tea House")
    expect(page.locator("[data-order]")).to_have_text("table-12")
    expect(page.locator("[data-unified-qr] svg")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    page.screenshot(path=str(screenshots / "checkout-choose.png"), full_page=True)

    page.locator(f"input[value='qr:{CUSTOMER_CHANNEL}']").check()
    page.get_by_role("button", name="Pay CNY 42.80").click()
    status = page.locator("[data-status]")
    expect(status).to_have_attribute("data-status", "requires_action")
    expect(page.locator("[data-channel-qr] svg")).to_be_visible()
    expect(page.locator("[data-after-final]")).to_be_hidden()
    page.screenshot(path=str(screenshots / "checkout-scan.png"), full_page=True)

    # The customer pays in their app; the channel notifies the server; the page's poll shows the result.
    with world.db.uow(read_only=True) as uow:
        attempt = uow.session.query(Attempt).filter_by(tenant_id=world.tenant_id, payment_id=payment_id).one()
    world.sandbox.engine.customer_acts(CUSTOMER_CHANNEL, attempt.id)
    assert world.deliver_notifications() >= 1
    expect(status).to_have_attribute("data-status", "succeeded")
    expect(status).to_have_text("Paid")
    expect(page.locator("[data-after-final]")).to_be_visible()
    expect(page.locator("[data-return]")).to_have_attribute("href", "https://tea.example/orders/12")
    page.screenshot(path=str(screenshots / "checkout-paid.png"), full_page=True)
