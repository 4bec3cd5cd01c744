"""The console in a real browser: every navigation link as an admin, and a refund above the merchant's
threshold asked for by support and approved by finance (never by the person who asked)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import World, make_card_payment, sign_in


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"


def test_every_navigation_link_opens_a_page(world: World, new_page: Callable[..., Page], screenshots: Path) -> None:
    page = new_page()
    sign_in(page, world, "admin")
    links = page.locator("nav.side a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert len(links) >= 10 and "/console/payments" in links and "/console/approvals" in links
    failures = []
    for href in links:
        response = page.goto(world.url(href))
        assert response is not None
        page.screenshot(path=str(screenshots / f"nav-{_slug(href)}.png"), full_page=True)
        errors = page.locator("[data-error-code]")
        if response.status >= 400 or errors.count():
            failures.append(f"{href}: HTTP {response.status} "
                            f"{errors.first.inner_text() if errors.count() else ''}".strip())
        elif not page.locator("main h1").count():
            failures.append(f"{href}: no heading")
    assert failures == []


def test_a_refund_above_the_threshold_waits_for_finance(world: World, new_page: Callable[..., Page],
                                                        screenshots: Path) -> None:
    payment_id = make_card_payment(world, 20_000, "browser-refund-1")
    payment_path = f"/console/payments/{payment_id}"

    support = new_page()
    sign_in(support, world, "support")
    support.goto(world.url(payment_path))
    expect(support.locator("h1")).to_contain_text("succeeded")
    support.get_by_label("Amount").fill("150.00")
    support.get_by_label("Reason").fill("Customer returned the tea set")
    support.get_by_role("button", name="Refund").click()  # the page asks confirm(): accepted
    expect(support.locator(".flash")).to_contain_text("Refund recorded")
    refund_row = support.locator("tr", has=support.locator("a[href^='/console/approvals/']"))
    expect(refund_row).to_contain_text("CNY 150.00")
    expect(refund_row).to_contain_text("requires approval")
    approval_href = refund_row.locator("a[href^='/console/approvals/']").get_attribute("href")
    assert approval_href
    support.screenshot(path=str(screenshots / "refund-requested.png"), full_page=True)
    # The one who asked may not decide.
    support.goto(world.url(approval_href))
    expect(support.locator("[data-blocked]")).to_be_visible()
    assert support.get_by_role("button", name="Approve").count() == 0
    support.screenshot(path=str(screenshots / "refund-approval-blocked.png"), full_page=True)

    finance = new_page()
    sign_in(finance, world, "finance")
    finance.goto(world.url("/console/approvals?status=pending"))
    finance.locator(f"a[href='{approval_href}']").first.click()
    finance.wait_for_url(world.url(approval_href))
    expect(finance.locator("main")).to_contain_text("payments.refund")
    finance.screenshot(path=str(screenshots / "refund-approval.png"), full_page=True)
    finance.get_by_role("button", name="Approve").click()
    expect(finance.locator(".flash")).to_contain_text("Approved")
    expect(finance.locator("h1")).to_contain_text("approved")

    finance.goto(world.url(payment_path))
    row = finance.locator("tr", has=finance.locator(f"a[href='{approval_href}']"))
    expect(row.locator(".badge")).to_have_text(re.compile("succeeded|processing"))
    finance.screenshot(path=str(screenshots / "refund-done.png"), full_page=True)
