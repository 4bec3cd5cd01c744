"""The borrower portal: a one-time link signs a borrower in (its own cookie, never the staff one), every page is a
phone page of that borrower's own records, and applying, signing and repaying change the records through the
credit services; another applicant's loan is a 404, a form without its CSRF token a 403, a bad amount a 400, and
a refused request writes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.audit.models import AuditEvent
from finloop.core.clock import FrozenClock
from finloop.credit import contracts, disbursement
from finloop.credit import service as credit
from finloop.credit.models import LoanApplication, LoanContract
from finloop.credit.portal import service as portal
from finloop.credit.portal.models import PortalMessage
from finloop.credit.repayment_channels.models import RepaymentPayment
from finloop.credit.servicing import service as servicing
from finloop.db.uow import Database
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.vault import service as vault
from tests.conftest import TenantHandle
from tests.credit.conftest import sandbox_bureau  # noqa: F401 - autouse: a bureau that does not sleep, fresh keys
from tests.credit.repayment_channels.conftest import SUCCEEDS, register_channels, reliable, sandbox  # noqa: F401
from tests.credit.servicing.conftest import bank, make_loan  # noqa: F401 - the bank fixture disburses the loan
from tests.credit.test_disbursement import borrower
from tests.credit.test_funding import source
from tests.credit.test_limits import product

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SHA = re.compile(r'name="sha256" value="([0-9a-f]{64})"')
OTHER_NATIONAL_ID = "110101199003070038"


@dataclass
class PortalBrowser:
    """A borrower's phone: GET pages, POST forms with the token of the page posted from."""

    client: TestClient
    applicant_id: str

    def get(self, path: str):  # type: ignore[no-untyped-def]
        return self.client.get(path)

    def csrf(self, page: str) -> str:
        found = _CSRF.search(self.client.get(page).text)
        assert found, f"no form on {page}"
        return found.group(1)

    def post(self, path: str, data: dict[str, str], *, page: str = "/console/portal/messages"):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={**data, "csrf_token": self.csrf(page)}, follow_redirects=False)


def issue(db: Database, tenant_id: str, applicant_id: str) -> str:
    with db.uow() as uow:
        _, token = portal.issue_link(uow, tenant_id, applicant_id, actor="test")
        uow.commit()
        return token


def use_link(client: TestClient, token: str):  # type: ignore[no-untyped-def]
    landing = client.get(f"/console/portal/sign-in?token={token}")
    assert landing.status_code == 200
    form_token = _CSRF.search(landing.text).group(1)  # type: ignore[union-attr]
    carried = re.search(r'name="token" value="([^"]*)"', landing.text)
    assert carried is not None and carried.group(1) == token  # the page's form posts the link's token
    return client.post("/console/portal/sign-in", data={"token": carried.group(1), "csrf_token": form_token},
                       follow_redirects=False)


SignIn = Callable[[str], "PortalBrowser"]


@pytest.fixture
def sign_in(app, db: Database, tenant: TenantHandle) -> Iterator[SignIn]:  # type: ignore[no-untyped-def]
    clients: list[TestClient] = []

    def make(applicant_id: str) -> PortalBrowser:
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        answer = use_link(client, issue(db, tenant.id, applicant_id))
        assert answer.status_code == 303, answer.text
        return PortalBrowser(client, applicant_id)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def offered(db: Database, tenant: TenantHandle) -> None:
    product(db, tenant.id, "consumer_installment")
    source(db, tenant.id, "bank_portal", "0.06", 50_000_000)


def count(db: Database, model: type) -> int:
    with db.uow(read_only=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def loan_owner(db: Database, tenant_id: str, loan_id: str) -> tuple[str, str]:
    with db.uow(read_only=True) as uow:
        loan = disbursement.get_loan(uow, tenant_id, loan_id)
        return loan.applicant_id, loan.application_id


# ---------------------------------------------------------------------------------------------- signing in


def test_a_link_signs_a_borrower_in_once_with_their_own_cookie(app, db: Database, tenant: TenantHandle,  # type: ignore[no-untyped-def]
                                                               clock: FrozenClock) -> None:
    applicant_id, _ = borrower(db, tenant.id)
    token = issue(db, tenant.id, applicant_id)
    with TestClient(app, raise_server_exceptions=False) as phone:
        assert phone.get("/console/portal").status_code == 401  # no session yet
        landing = phone.get(f"/console/portal/sign-in?token={token}")
        assert landing.headers["referrer-policy"] == "no-referrer"
        signed = use_link(phone, token)
        assert signed.status_code == 303 and signed.headers["location"] == "/console/portal"
        cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("fl_portal="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console/portal" in cookie
        assert f"Max-Age={portal.SESSION_SECONDS}" in cookie
        assert "fl_console" not in phone.cookies
        home = phone.get("/console/portal")
        assert home.status_code == 200 and "36,000.00" in home.text  # the line: rating B, one delinquency
        assert home.headers["cache-control"] == "no-store"
        # The staff console is not open to a borrower.
        assert phone.get("/console/payments", follow_redirects=False).status_code == 303

    with TestClient(app, raise_server_exceptions=False) as thief:
        reused = use_link(thief, token)
        assert reused.status_code == 401 and "portal_link_used" in reused.text
        assert thief.get("/console/portal").status_code == 401

    late = issue(db, tenant.id, applicant_id)
    clock.advance(timedelta(seconds=portal.LINK_SECONDS + 1))
    with TestClient(app, raise_server_exceptions=False) as phone:
        expired = use_link(phone, late)
        assert expired.status_code == 401 and "portal_link_expired" in expired.text


def test_the_sign_in_form_needs_its_token_and_signing_out_ends_the_session(  # type: ignore[no-untyped-def]
        app, db: Database, tenant: TenantHandle) -> None:
    applicant_id, _ = borrower(db, tenant.id)
    token = issue(db, tenant.id, applicant_id)
    with TestClient(app, raise_server_exceptions=False) as phone:
        forged = phone.post("/console/portal/sign-in", data={"token": token, "csrf_token": "forged"},
                            follow_redirects=False)
        assert forged.status_code == 403
    # The forged attempt spent nothing: the link still signs in.
    me = PortalBrowser(TestClient(app, raise_server_exceptions=False), applicant_id)
    assert use_link(me.client, token).status_code == 303
    out = me.post("/console/portal/sign-out", {}, page="/console/portal")
    assert out.status_code == 303 and out.headers["location"] == "/console/portal/signed-out"
    assert me.get("/console/portal").status_code == 401
    assert me.get("/console/portal/signed-out").status_code == 200
    with db.uow(read_only=True) as uow:
        assert uow.session.scalar(select(AuditEvent.actor).where(
            AuditEvent.action == "credit.portal.signed_out")) == f"borrower:{applicant_id}"
    me.client.close()


# ---------------------------------------------------------------------------------------------- the pages


def test_every_page_is_a_phone_page_of_the_borrowers_records(
        db: Database, tenant: TenantHandle, bank: object, sign_in: SignIn) -> None:  # noqa: F811
    loan_id = make_loan(db, tenant.id)
    applicant_id, application_id = loan_owner(db, tenant.id, loan_id)
    with db.uow() as uow:
        portal.post_message(uow, tenant.id, applicant_id, sender="staff", body="Welcome to your loans.",
                            actor="user:support")
        uow.commit()
    me = sign_in(applicant_id)
    pages = {
        "/console/portal": f'data-loan="{loan_id}"',
        "/console/portal/limit": 'data-offer="consumer_installment"',
        "/console/portal/apply": 'name="product_id"',
        f"/console/portal/applications/{application_id}": "contract signed",
        f"/console/portal/applications/{application_id}/contract": "Signed ",
        f"/console/portal/loans/{loan_id}": 'data-installment="12"',
        f"/console/portal/loans/{loan_id}/repay": "You have no card saved",
        f"/console/portal/loans/{loan_id}/payoff": "data-payoff",
        "/console/portal/messages": "Welcome to your loans.",
    }
    for path, shown in pages.items():
        page = me.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert 'class="customer"' in page.text and 'class="phone"' in page.text, path
        assert 'name="viewport"' in page.text and shown in page.text, path
        assert 'class="side"' not in page.text, path  # no staff navigation
    with db.uow(read_only=True) as uow:
        quote = servicing.payoff_quote(uow, tenant.id, loan_id)
    assert f"CNY {quote.total / 100:,.2f}" in me.get(f"/console/portal/loans/{loan_id}/payoff").text


def test_a_borrower_applies_signs_and_repays_through_the_credit_services(
        db: Database, tenant: TenantHandle, offered: None, bank: object,  # noqa: F811
        sandbox: InProcessSandbox, sign_in: SignIn) -> None:  # noqa: F811
    applicant_id, _ = borrower(db, tenant.id)
    me = sign_in(applicant_id)
    apply_page = me.get("/console/portal/apply").text
    product_id = re.search(r'name="product_id" value="([^"]+)"', apply_page).group(1)  # type: ignore[union-attr]
    applied = me.post("/console/portal/apply", {"product_id": product_id, "amount": "5,000.00", "term": "12",
                                                "purpose": "education"}, page="/console/portal/apply")
    assert applied.status_code == 303, applied.text
    with db.uow(read_only=True) as uow:
        [application] = uow.session.scalars(select(LoanApplication))
        assert (application.applicant_id, application.principal_amount, application.term, application.purpose,
                application.status, application.created_by) == (applicant_id, 500_000, 12, "education", "approved",
                                                                f"borrower:{applicant_id}")
    decision = me.get(applied.headers["location"])
    assert "Approved: read and sign your contract." in decision.text and "approved" in decision.text

    contract_path = f"/console/portal/applications/{application.id}/contract"
    sha = _SHA.search(me.get(contract_path).text).group(1)  # type: ignore[union-attr]
    unticked = me.post(f"/console/portal/applications/{application.id}/sign", {"sha256": sha}, page=contract_path)
    assert unticked.status_code == 400 and "agreement_required" in unticked.text
    signed = me.post(f"/console/portal/applications/{application.id}/sign", {"sha256": sha, "agree": "yes"},
                     page=contract_path)
    assert signed.status_code == 303, signed.text
    with db.uow(read_only=True) as uow:
        contract = contracts.get_contract(uow, tenant.id, application.id)
        assert (contract.status, contract.accepted_sha256, contract.accepted_channel) == ("signed", sha, "web")

    loan_id = disbursement.disburse(db, tenant.id, application.id, actor="test")
    reliable(sandbox)
    register_channels(db, tenant.id, sandbox)
    with db.uow() as uow:
        customer_id = credit.get_applicant(uow, tenant.id, applicant_id).party_id
        card = vault.tokenize_card(uow, tenant.id, number=SUCCEEDS, exp_month=12, exp_year=2030,
                                   customer_id=customer_id)
        uow.commit()
    repay_page = f"/console/portal/loans/{loan_id}/repay"
    assert "···· 0077" in me.get(repay_page).text
    paid = me.post(repay_page, {"amount": "300.00", "card_id": card.id}, page=repay_page)
    assert paid.status_code == 303, paid.text
    with db.uow(read_only=True) as uow:
        [repayment] = servicing.repayments(uow, tenant.id, loan_id)
        [link] = uow.session.scalars(select(RepaymentPayment))
        assert (repayment.amount, repayment.source, repayment.reference) == (30_000, "payment", link.payment_id)
        assert (link.status, link.repayment_id, link.customer_id, link.created_by) == (
            "applied", repayment.id, customer_id, f"borrower:{applicant_id}")
    loan_page = me.get(f"/console/portal/loans/{loan_id}")
    assert "Thank you: your repayment was received." in loan_page.text
    assert f'data-repayment="{repayment.id}"' in loan_page.text
    with db.uow(read_only=True) as uow:
        actions = set(uow.session.scalars(select(AuditEvent.action).where(
            AuditEvent.actor == f"borrower:{applicant_id}")))
    assert {"credit.portal.signed_in", "credit.application.approved", "credit.contract.signed"} <= actions


def test_messages_go_to_support_and_answers_come_back(db: Database, tenant: TenantHandle, sign_in: SignIn) -> None:
    applicant_id, _ = borrower(db, tenant.id)
    me = sign_in(applicant_id)
    sent = me.post("/console/portal/messages", {"body": "Can I change my due date?"})
    assert sent.status_code == 303
    with db.uow() as uow:
        portal.post_message(uow, tenant.id, applicant_id, sender="staff", body="Yes: from next month.",
                            actor="user:support")
        uow.commit()
    page = me.get("/console/portal/messages").text
    assert page.index("Can I change my due date?") < page.index("Yes: from next month.")
    assert 'data-sender="borrower"' in page and 'data-sender="staff"' in page


# ---------------------------------------------------------------------------------------------- refusals


def test_another_applicants_loan_is_not_found(db: Database, tenant: TenantHandle, bank: object,  # noqa: F811
                                              sign_in: SignIn) -> None:
    loan_id = make_loan(db, tenant.id)
    _, application_id = loan_owner(db, tenant.id, loan_id)
    other_id, _ = borrower(db, tenant.id, "bob", national_id=OTHER_NATIONAL_ID)
    stranger = sign_in(other_id)
    for path in (f"/console/portal/loans/{loan_id}", f"/console/portal/loans/{loan_id}/repay",
                 f"/console/portal/loans/{loan_id}/payoff", f"/console/portal/applications/{application_id}",
                 f"/console/portal/applications/{application_id}/contract"):
        assert stranger.get(path).status_code == 404, path
    assert loan_id not in stranger.get("/console/portal").text
    refused = stranger.post(f"/console/portal/loans/{loan_id}/repay", {"amount": "100.00", "card_id": "card_x"})
    assert refused.status_code == 404
    with db.uow(read_only=True) as uow:
        sha = uow.session.scalar(select(LoanContract.sha256).where(LoanContract.application_id == application_id))
    assert stranger.post(f"/console/portal/applications/{application_id}/sign",
                         {"sha256": sha or "", "agree": "yes"}).status_code == 404
    assert count(db, RepaymentPayment) == 0


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(
        db: Database, tenant: TenantHandle, offered: None, sign_in: SignIn) -> None:
    applicant_id, _ = borrower(db, tenant.id)
    me = sign_in(applicant_id)
    product_id = re.search(r'name="product_id" value="([^"]+)"',  # type: ignore[union-attr]
                           me.get("/console/portal/apply").text).group(1)
    for path, data in (("/console/portal/messages", {"body": "hello"}),
                       ("/console/portal/apply", {"product_id": product_id, "amount": "5000", "term": "12"})):
        missing = me.client.post(path, data=data, follow_redirects=False)
        assert missing.status_code == 403 and "csrf_failed" in missing.text
        wrong = me.client.post(path, data={**data, "csrf_token": "x" * 43}, follow_redirects=False)
        assert wrong.status_code == 403
    # Another borrower's token is worthless in this session.
    other = sign_in(borrower(db, tenant.id, "bob", national_id=OTHER_NATIONAL_ID)[0])
    stolen = me.client.post("/console/portal/messages",
                            data={"body": "hello", "csrf_token": other.csrf("/console/portal/messages")},
                            follow_redirects=False)
    assert stolen.status_code == 403
    assert count(db, PortalMessage) == 0 and count(db, LoanApplication) == 0


@pytest.mark.parametrize("amount", ["12.345", "abc", "-5", "0", ""])
def test_a_bad_amount_is_refused_and_writes_nothing(db: Database, tenant: TenantHandle, offered: None,
                                                    sign_in: SignIn, amount: str) -> None:
    applicant_id, _ = borrower(db, tenant.id)
    me = sign_in(applicant_id)
    product_id = re.search(r'name="product_id" value="([^"]+)"',  # type: ignore[union-attr]
                           me.get("/console/portal/apply").text).group(1)
    refused = me.post("/console/portal/apply", {"product_id": product_id, "amount": amount, "term": "12"},
                      page="/console/portal/apply")
    assert refused.status_code == 400 and "invalid_amount" in refused.text
    assert count(db, LoanApplication) == 0


def test_a_bad_repayment_amount_is_refused_and_writes_nothing(db: Database, tenant: TenantHandle, bank: object,  # noqa: F811
                                                              sign_in: SignIn) -> None:
    loan_id = make_loan(db, tenant.id)
    me = sign_in(loan_owner(db, tenant.id, loan_id)[0])
    for amount in ("1.001", "-1", "lots"):
        refused = me.post(f"/console/portal/loans/{loan_id}/repay", {"amount": amount, "card_id": "card_x"})
        assert refused.status_code == 400 and "invalid_amount" in refused.text
    outside = me.post("/console/portal/apply", {"product_id": "", "amount": "10", "term": "12"})
    assert outside.status_code == 400
    assert count(db, RepaymentPayment) == 0 and count(db, LoanApplication) == 1
