"""Two more workflows in a real browser: a risk rule published only after a backtest and another analyst's
approval, and a reconciliation discrepancy worked to a resolution."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import World, sign_in


def test_a_rule_is_published_after_a_backtest_and_a_second_analysts_approval(
        world: World, new_page: Callable[..., Page], screenshots: Path) -> None:
    maker = new_page()
    sign_in(maker, world, "risk_analyst")
    maker.goto(world.url("/console/risk/rule-sets"))
    maker.locator("table a[href^='/console/risk/rule-sets/']").first.click()
    expect(maker.locator("h1")).to_contain_text("Rule set")
    editor = maker.locator("textarea[name=body]")
    body = editor.input_value()
    assert '"rules"' in body  # the live version, to start the draft from
    new_rule = ('{"id": "browser_big_amount", "description": "Very large amounts", '
                '"expression": "event.amount > 5000000", "score": 40, "outcome": "review"}, ')
    editor.fill(body.replace('"rules": [', '"rules": [' + new_rule, 1))
    maker.get_by_role("button", name="Validate").click()
    expect(maker.locator("main")).to_contain_text(re.compile("valid|rules checked", re.I))
    maker.get_by_role("button", name="Create draft").click()
    maker.wait_for_url(re.compile(r".*/console/risk/versions/\w+$"))
    version_url = maker.url
    # No publication before a backtest.
    assert maker.get_by_role("button", name="Request publication").count() == 0
    maker.get_by_role("button", name="Backtest").click()
    expect(maker.locator("main")).to_contain_text(re.compile("would decline|interception", re.I))
    maker.screenshot(path=str(screenshots / "risk-backtest.png"), full_page=True)
    maker.get_by_role("button", name="Request publication").click()  # confirm() accepted
    expect(maker.locator(".flash")).to_be_visible()
    approval = maker.locator("a[href^='/console/approvals/']").first.get_attribute("href")
    assert approval

    maker.goto(world.url(approval))
    expect(maker.locator("[data-blocked]")).to_be_visible()  # nobody approves their own

    checker = new_page()
    sign_in(checker, world, "risk_checker")
    checker.goto(world.url(approval))
    checker.get_by_role("button", name="Approve").click()
    expect(checker.locator(".flash")).to_contain_text("Approved")

    maker.goto(version_url)
    maker.get_by_role("button", name="Publish").click()
    expect(maker.locator(".flash")).to_contain_text("live")
    expect(maker.locator("h1")).to_contain_text("published")
    maker.screenshot(path=str(screenshots / "risk-published.png"), full_page=True)


def test_a_discrepancy_is_worked_to_a_resolution(world: World, new_page: Callable[..., Page],
                                                screenshots: Path) -> None:
    page = new_page()
    sign_in(page, world, "finance")
    page.goto(world.url("/console/reconciliation/discrepancies?status=open"))
    page.screenshot(path=str(screenshots / "discrepancy-queue.png"), full_page=True)
    first = page.locator("table a[href^='/console/reconciliation/discrepancies/']").first
    expect(first).to_be_visible()
    first.click()
    page.wait_for_url(re.compile(r".*/console/reconciliation/discrepancies/\w+$"))
    item_url = page.url
    page.locator("form[data-action=note] textarea[name=text]").fill("Checked with the channel's support desk.")
    page.locator("form[data-action=note]").get_by_role("button", name="Add note").click()
    expect(page.locator(".flash")).to_be_visible()
    form = page.locator("form[data-action=mark_no_action]")
    form.locator("input[name=reason]").fill("Known channel rounding; nothing to post.")
    form.get_by_role("button", name="Mark no action").click()
    expect(page.locator(".flash")).to_be_visible()
    page.goto(item_url)
    expect(page.locator("main")).to_contain_text("Checked with the channel's support desk.")
    expect(page.locator("h1")).to_contain_text(re.compile("resolved|closed|no action", re.I))
    page.screenshot(path=str(screenshots / "discrepancy-resolved.png"), full_page=True)
