"""Customer-facing pages: the borrower portal, phone first, under ``/console/portal``.

A borrower is a credit applicant, not a staff user: they arrive through a one-time sign-in link the platform
issued (``POST /v1/credit/applicants/{id}/portal-links``), which opens a borrower session held in its own cookie
(``fl_portal``: HttpOnly, SameSite=Strict, path ``/console/portal``, expiring with the session), never the staff
``fl_console`` one. Every page shows the session's applicant only: another applicant's loan or application is a
404. Every form carries a CSRF token, an HMAC of the borrower session's id; the sign-in form, before any session,
uses a random value also set as a cookie (double submit). Changes go through the credit domain's own services
(applications, contracts, repayment payments, servicing), which write their audit events naming the borrower.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from finloop.console import auth
from finloop.console.auth import check_csrf, database, form_of
from finloop.console.web import flash, html, parse_amount
from finloop.core.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from finloop.credit import applications, contracts, limits, products
from finloop.credit import service as credit
from finloop.credit.domain import ApplicationPurpose, ApplicationStatus, LoanStatus
from finloop.credit.models import CreditLine, Loan, LoanProduct
from finloop.credit.portal import service as portal
from finloop.credit.portal.service import BorrowerSession
from finloop.credit.repayment_channels import flows as repayment_flows
from finloop.credit.repayment_channels import service as repayment_channels
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.domain import OPEN_STATES
from finloop.credit.servicing.models import LoanAccount
from finloop.db.uow import UnitOfWork
from finloop.vault import service as vault

router = APIRouter()

PATH = "/console/portal"
SESSION_COOKIE = "fl_portal"
#: The double-submit token of the sign-in form (there is no session to bind it to yet).
SIGN_IN_CSRF_COOKIE = "fl_portal_csrf"
_COOKIE: dict[str, Any] = {"httponly": True, "samesite": "strict", "path": PATH}


def _csrf_of(session_id: str) -> str:
    return auth.sign("portal_csrf", session_id)


@dataclass(frozen=True)
class Borrower:
    """The signed-in borrower of a portal request, with their form token."""

    session: BorrowerSession
    csrf: str

    @property
    def tenant_id(self) -> str:
        return self.session.tenant_id

    @property
    def applicant_id(self) -> str:
        return self.session.applicant_id

    @property
    def actor(self) -> str:
        return self.session.actor


def _load(request: Request) -> Borrower:
    with database(request).uow(read_only=True) as uow:
        session = portal.session_of(uow, request.cookies.get(SESSION_COOKIE))
    borrower = Borrower(session, _csrf_of(session.session_id))
    request.state.borrower = borrower
    request.state.tenant_id = session.tenant_id
    return borrower


def current_borrower(request: Request) -> Borrower:
    """Dependency of every portal page: the signed-in borrower, or a 401 asking for a new link."""
    return _load(request)


async def acting_borrower(request: Request) -> Borrower:
    """Dependency of every portal form post: the borrower, whose form carries their session's CSRF token."""
    form = await request.form()
    borrower = await run_in_threadpool(_load, request)
    check_csrf(form, borrower.csrf)
    request.state.form = form
    return borrower


async def posted_form(request: Request) -> FormData:
    return await request.form()


CurrentBorrower = Annotated[Borrower, Depends(current_borrower)]
ActingBorrower = Annotated[Borrower, Depends(acting_borrower)]


def _page(request: Request, template: str, borrower: Borrower | None, **values: Any) -> HTMLResponse:
    """A portal page: personal data, so never cached nor sent onwards as a referrer."""
    response = html(request, template, borrower=borrower, **values)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _done(target: str, message: str) -> Response:
    return flash(RedirectResponse(target, status_code=303), message)


def _client_ip(request: Request) -> str | None:
    """The address the signature is recorded with, when the connection has a real one."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------- signing in and out


@router.get("/portal/sign-in")
def sign_in_page(request: Request, token: str = "") -> Response:
    """The link's landing page: a button that uses the link, so a link preview fetching it spends nothing."""
    form_token = request.cookies.get(SIGN_IN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = _page(request, "portal/sign_in.html", None, link_token=token[:200], form_token=form_token)
    response.set_cookie(SIGN_IN_CSRF_COOKIE, form_token, max_age=portal.LINK_SECONDS,
                        secure=request.url.scheme == "https", **_COOKIE)
    return response


@router.post("/portal/sign-in")
def sign_in(request: Request, form: Annotated[FormData, Depends(posted_form)]) -> Response:
    sent, expected = form.get("csrf_token"), request.cookies.get(SIGN_IN_CSRF_COOKIE)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise PermissionDenied("The form is stale; open the link again.", code="csrf_failed", param="csrf_token")
    token = form.get("token")
    with database(request).uow() as uow:
        link, session_token = portal.open_session(uow, token if isinstance(token, str) else "")
        expires_in = round((link.session_expires_at - uow.clock.now()).total_seconds()) \
            if link.session_expires_at else 0
        uow.commit()
    response = RedirectResponse(PATH, status_code=303)
    response.set_cookie(SESSION_COOKIE, session_token, max_age=expires_in, secure=request.url.scheme == "https",
                        **_COOKIE)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path=PATH)
    return response


@router.post("/portal/sign-out")
def sign_out(request: Request, borrower: ActingBorrower) -> Response:
    with database(request).uow() as uow:
        portal.sign_out(uow, borrower.session)
        uow.commit()
    response = RedirectResponse(f"{PATH}/signed-out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PATH)
    return response


@router.get("/portal/signed-out")
def signed_out(request: Request) -> Response:
    return _page(request, "portal/signed_out.html", None)


# ---------------------------------------------------------------------------------------------- home and limit


def _offered(uow: UnitOfWork, borrower: Borrower, currency: str) -> list[LoanProduct]:
    rows = products.list_products(uow, borrower.tenant_id, status="active", limit=200)
    return [row for row in rows if row.currency == currency]


@router.get("/portal")
def home(request: Request, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        applicant = credit.get_applicant(uow, borrower.tenant_id, borrower.applicant_id)
        line = limits.find_line(uow, borrower.tenant_id, borrower.applicant_id)
        loans = [(loan, uow.session.get(LoanAccount, loan.id)) for loan in portal.loans_of(uow, borrower.session)]
        waiting = [a for a in portal.applications_of(uow, borrower.session)
                   if a.status in (ApplicationStatus.APPROVED.value, ApplicationStatus.IN_REVIEW.value)]
        return _page(request, "portal/home.html", borrower, title="My loans", applicant=applicant, line=line,
                     line_available=_line_available(line), loans=loans, waiting=waiting)


def _line_available(line: CreditLine | None) -> int:
    if line is None or line.status != limits.LineStatus.ACTIVE.value:
        return 0
    return max(0, line.limit_amount - line.reserved_amount - line.used_amount)


@router.get("/portal/limit")
def limit_inquiry(request: Request, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        applicant = credit.get_applicant(uow, borrower.tenant_id, borrower.applicant_id)
        line = limits.find_line(uow, borrower.tenant_id, borrower.applicant_id)
        offers = [(product, limits.available_for(uow, borrower.tenant_id, borrower.applicant_id, product))
                  for product in _offered(uow, borrower, applicant.currency)]
        return _page(request, "portal/limit.html", borrower, title="My credit limit", line=line,
                     line_available=_line_available(line), offers=offers, currency=applicant.currency)


# ---------------------------------------------------------------------------------------------- applying


@router.get("/portal/apply")
def apply_page(request: Request, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        applicant = credit.get_applicant(uow, borrower.tenant_id, borrower.applicant_id)
        offers = [(product, products.offered_terms(product),
                   limits.available_for(uow, borrower.tenant_id, borrower.applicant_id, product).available)
                  for product in _offered(uow, borrower, applicant.currency)]
        return _page(request, "portal/apply.html", borrower, title="Apply for a loan", offers=offers,
                     purposes=[p.value for p in ApplicationPurpose])


def _term(text: str | None) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        raise InvalidRequest("The term is a whole number.", code="invalid_term", param="term") from None


@router.post("/portal/apply")
def apply(request: Request, borrower: ActingBorrower) -> Response:
    form = form_of(request)
    with database(request).uow() as uow:
        product_id = form.get("product_id", "").strip()[:40]
        if not product_id:
            raise InvalidRequest("Choose a loan.", code="missing_field", param="product_id")
        product = products.get_product(uow, borrower.tenant_id, product_id)
        amount = parse_amount(form.get("amount"), product.currency)
        application = applications.submit(
            uow, borrower.tenant_id, applicant_id=borrower.applicant_id, principal_amount=amount,
            term=_term(form.get("term")), purpose=form.get("purpose") or ApplicationPurpose.PURCHASE.value,
            product_id=product.id, ip=_client_ip(request), actor=borrower.actor)
        application_id, status = application.id, application.status
        uow.commit()
    message = {ApplicationStatus.APPROVED.value: "Approved: read and sign your contract.",
               ApplicationStatus.IN_REVIEW.value: "Thank you: your application is being reviewed.",
               ApplicationStatus.DECLINED.value: "We cannot offer this loan now."}.get(status, status)
    return _done(f"{PATH}/applications/{application_id}", message)


@router.get("/portal/applications/{application_id}")
def application_page(request: Request, application_id: str, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        application = portal.get_application(uow, borrower.session, application_id)
        contract = contracts.find_contract(uow, borrower.tenant_id, application.id)
        loan = next((loan for loan in portal.loans_of(uow, borrower.session)
                     if loan.application_id == application.id), None)
        return _page(request, "portal/application.html", borrower, title="Your application",
                     application=application, contract=contract, loan=loan)


# ---------------------------------------------------------------------------------------------- the contract


@router.get("/portal/applications/{application_id}/contract")
def contract_page(request: Request, application_id: str, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        application = portal.get_application(uow, borrower.session, application_id)
        contract = contracts.get_contract(uow, borrower.tenant_id, application.id)
        can_sign = contract.status == "issued" and application.status == ApplicationStatus.APPROVED.value
        return _page(request, "portal/contract.html", borrower, title="Your loan agreement",
                     application=application, contract=contract, can_sign=can_sign)


@router.post("/portal/applications/{application_id}/sign")
def sign_contract(request: Request, application_id: str, borrower: ActingBorrower) -> Response:
    form = form_of(request)
    if form.get("agree") != "yes":
        raise InvalidRequest("Tick the box to agree to the contract.", code="agreement_required", param="agree")
    with database(request).uow() as uow:
        application = portal.get_application(uow, borrower.session, application_id)
        contracts.accept(uow, borrower.tenant_id, application.id, sha256=form.get("sha256", ""), channel="web",
                         ip=_client_ip(request), actor=borrower.actor)
        uow.commit()
    return _done(f"{PATH}/applications/{application_id}", "Signed: your loan will be paid out shortly.")


# ---------------------------------------------------------------------------------------------- loans


def _account(uow: UnitOfWork, borrower: Borrower, loan_id: str) -> tuple[Loan, LoanAccount | None]:
    loan = portal.get_loan(uow, borrower.session, loan_id)
    return loan, uow.session.get(LoanAccount, loan.id)


@router.get("/portal/loans/{loan_id}")
def loan_page(request: Request, loan_id: str, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        loan, account = _account(uow, borrower, loan_id)
        plan = servicing.installments(uow, borrower.tenant_id, loan.id) if account else []
        paid = servicing.repayments(uow, borrower.tenant_id, loan.id) if account else []
        due = servicing.amount_due(uow, borrower.tenant_id, loan.id) if account else 0
        return _page(request, "portal/loan.html", borrower, title="Repayment plan", loan=loan, account=account,
                     installments=plan, repayments=paid, due=due,
                     owed=servicing.owed(account) if account else 0)


@router.get("/portal/loans/{loan_id}/repay")
def repay_page(request: Request, loan_id: str, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        loan, account = _account(uow, borrower, loan_id)
        due = servicing.amount_due(uow, borrower.tenant_id, loan.id) if account else 0
        applicant = credit.get_applicant(uow, borrower.tenant_id, borrower.applicant_id)
        cards = vault.list_cards(uow, borrower.tenant_id, customer_id=applicant.party_id) \
            if applicant.party_kind == "customer" else []
        return _page(request, "portal/repay.html", borrower, title="Repay", loan=loan, account=account, due=due,
                     cards=[card for card in cards if card.deleted_at is None],
                     open=loan.status == LoanStatus.ACTIVE.value and account is not None
                     and account.state in OPEN_STATES)


@router.post("/portal/loans/{loan_id}/repay")
def repay(request: Request, loan_id: str, borrower: ActingBorrower) -> Response:
    """Charge one of the borrower's cards through the repayment channel; its success is applied to the loan in
    the transaction that records it (``repayment_channels.flows``)."""
    form = form_of(request)
    db = database(request)
    with db.uow(read_only=True) as uow:
        loan = portal.get_loan(uow, borrower.session, loan_id)
        amount = parse_amount(form.get("amount"), loan.currency)
        customer_id = repayment_channels.borrower_customer(uow, borrower.tenant_id, borrower.applicant_id)
        card_id = form.get("card_id", "")
        if card_id not in {c.id for c in vault.list_cards(uow, borrower.tenant_id, customer_id=customer_id)
                           if c.deleted_at is None}:
            raise NotFound("Choose one of your cards.", code="card_not_found", param="card_id")
    payment_id = repayment_flows.start_repayment_payment(
        db, borrower.tenant_id, loan.id, amount=amount, method="card", card_id=card_id, confirm=True,
        description="loan repayment", actor=borrower.actor)
    with db.uow(read_only=True) as uow:
        status = repayment_channels.get_repayment_payment(uow, borrower.tenant_id, payment_id).status
    message = {"applied": "Thank you: your repayment was received.",
               "failed": "The payment did not go through; nothing was taken. Try another card."}.get(
        status, "Your payment is being processed.")
    return _done(f"{PATH}/loans/{loan.id}", message)


@router.get("/portal/loans/{loan_id}/payoff")
def payoff_page(request: Request, loan_id: str, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        loan = portal.get_loan(uow, borrower.session, loan_id)
        quote, refused = None, None
        try:
            quote = servicing.payoff_quote(uow, borrower.tenant_id, loan.id)
        except (Conflict, NotFound) as error:
            refused = error.message
        return _page(request, "portal/payoff.html", borrower, title="Early repayment", loan=loan, quote=quote,
                     refused=refused)


# ---------------------------------------------------------------------------------------------- messages


@router.get("/portal/messages")
def messages_page(request: Request, borrower: CurrentBorrower) -> Response:
    with database(request).uow(read_only=True) as uow:
        rows = portal.recent_messages(uow, borrower.tenant_id, borrower.applicant_id)
        return _page(request, "portal/messages.html", borrower, title="Messages", messages=rows,
                     max_length=portal.MAX_MESSAGE_LENGTH)


@router.post("/portal/messages")
def send_message(request: Request, borrower: ActingBorrower) -> Response:
    with database(request).uow() as uow:
        portal.post_message(uow, borrower.tenant_id, borrower.applicant_id, sender="borrower",
                            body=form_of(request).get("body"), actor=borrower.actor)
        uow.commit()
    return _done(f"{PATH}/messages", "Sent: support will answer here.")
