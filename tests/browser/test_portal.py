"""The borrower portal on a phone: a one-time link signs the borrower in; they see their loan, its plan and an
early repayment quote, and write to support."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from finloop.credit.portal import service as portal
from finloop.credit.servicing.domain import OPEN_STATES
from finloop.credit.servicing.models import LoanAccount
from tests.browser.conftest import World
from tests.browser.test_checkout import PHONE


def _borrower_link(world: World) -> tuple[str, str]:
    """(a loan of a borrower the demo lent to, the path of a fresh sign-in link for that borrower)."""
    with world.db.uow() as uow:
        loan = uow.session.scalars(select(LoanAccount).where(
            LoanAccount.tenant_id == world.tenant_id, LoanAccount.state.in_(sorted(OPEN_STATES)))
            .order_by(LoanAccount.loan_id)).first()
        assert loan is not None, "the demo lent to nobody"
        _, token = portal.issue_link(uow, world.tenant_id, loan.applicant_id, actor="browser-tests")
        uow.commit()
        return loan.loan_id, f"/console/portal/sign-in?token={token}"


def test_a_borrower_follows_their_loan_and_writes_to_support(world: World, new_page: Callable[..., Page],
                                                             screenshots: Path) -> None:
    loan_id, link = _borrower_link(world)
    page = new_page(**PHONE)
    page.goto(world.url(link))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(world.url("/console/portal"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    page.screenshot(path=str(screenshots / "portal-home.png"), full_page=True)
    page.locator(f"a[data-loan='{loan_id}']").click()
    expect(page.get_by_role("link", name="Repay now")).to_be_visible()
    page.screenshot(path=str(screenshots / "portal-loan.png"), full_page=True)
    page.get_by_role("link", name="Repay early: get a quote").click()
    expect(page.locator("main")).to_contain_text("CNY")
    page.screenshot(path=str(screenshots / "portal-payoff.png"), full_page=True)
    page.goto(world.url("/console/portal/messages"))
    page.get_by_label("Write to support").fill("Can I move my due date to the 15th?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("main")).to_contain_text("Can I move my due date to the 15th?")
    page.screenshot(path=str(screenshots / "portal-messages.png"), full_page=True)
    # The link was spent: opening it again signs nobody in.
    again = new_page(**PHONE)
    again.goto(world.url(link))
    again.get_by_role("button", name="Continue").click()
    expect(again.locator("[data-error-code]")).to_be_visible()
