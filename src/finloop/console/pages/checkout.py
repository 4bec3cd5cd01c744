"""The hosted checkout: the page a customer opens from a merchant's link to pay one order, on a phone.

The signed hosted token in the path (``payments.hosted``: tenant, payment, expiry) is the only authority:
there is no staff sign-in, and no CSRF token either, since whoever can post the form already holds the
token that opens the page. The page shows the order, the ways to pay it (the methods of the tenant's enabled
channels that a customer completes at the channel), the order's unified QR code, and its status live (the
page's script polls ``/status`` until the result). Choosing a way confirms the payment through
``flows.confirm_payment`` narrowed to the chosen channel, as the unified QR code's hosted page does; a
payment already confirmed is never confirmed again (the page shows what the channel asks instead).

A forged token is a 404 page and an authentic but expired one a 410; neither says which payment it named.
Nothing the page shows comes from a card or a credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from finloop.api.errors import status_for
from finloop.console.auth import database
from finloop.console.web import html
from finloop.core.errors import FinloopError, InvalidRequest, NotFound
from finloop.db.uow import Database, UnitOfWork
from finloop.payments import flows, hosted, service
from finloop.payments.connectors.base import PaymentMethod
from finloop.payments.models import Payment
from finloop.payments.state import PaymentStatus
from finloop.tenancy import service as tenancy

router = APIRouter()

Token = Path(min_length=10, max_length=400)

#: The ways a customer completes on their own phone, in the order offered. Cards are not taken here (the
#: page never handles card numbers), nor the customer's wallet with us (it needs a signed-in customer).
CHECKOUT_METHODS = (PaymentMethod.QR, PaymentMethod.H5)
METHOD_LABELS = {PaymentMethod.QR.value: "Scan a QR code", PaymentMethod.H5.value: "Pay in the browser"}
PROVIDER_NAMES = {"wechat": "WeChat Pay", "alipay": "Alipay", "unionpay": "UnionPay", "paypal": "PayPal",
                  "stripe": "Stripe"}

STATUS_LABELS = {
    PaymentStatus.REQUIRES_PAYMENT_METHOD: "Choose how to pay",
    PaymentStatus.REQUIRES_CONFIRMATION: "Choose how to pay",
    PaymentStatus.PROCESSING: "Processing your payment…",
    PaymentStatus.REQUIRES_ACTION: "Waiting for you to pay",
    PaymentStatus.REQUIRES_CAPTURE: "Payment authorised",
    PaymentStatus.SUCCEEDED: "Paid",
    PaymentStatus.FAILED: "Payment failed",
    PaymentStatus.CANCELED: "Canceled",
}
#: Statuses after which nothing more happens on this page (``expired``: the link ran out while waiting).
FINAL_STATUSES = ("succeeded", "failed", "canceled", "expired")
EXPIRED_LABEL = "This link has expired; ask the merchant for a new one."
CHOOSABLE = frozenset({PaymentStatus.REQUIRES_PAYMENT_METHOD, PaymentStatus.REQUIRES_CONFIRMATION})

class LinkExpired(NotFound):
    """An authentic token past its expiry: the page answers 410 Gone rather than 404."""


def read_checkout_token(token: str, now: datetime) -> tuple[str, str]:
    """The tenant and payment the token names. A forged token raises ``NotFound``; an authentic one past
    its expiry ``LinkExpired``."""
    tenant_id, payment_id, expires = hosted.open_token(token)
    if expires < now.timestamp():
        raise LinkExpired("This payment link has expired; ask the merchant for a new one.",
                          code="payment_link_expired", param="token")
    return tenant_id, payment_id


# ------------------------------------------------------------------------------------------ what is shown


@dataclass(frozen=True, slots=True)
class Choice:
    """One way to pay: a method at a channel; ``value`` is what the form posts."""

    method: str
    channel: str
    label: str

    @property
    def value(self) -> str:
        return f"{self.method}:{self.channel}"


@dataclass(frozen=True, slots=True)
class Checkout:
    payment: Payment
    merchant_name: str
    choices: list[Choice]
    return_url: str | None

    @property
    def status(self) -> PaymentStatus:
        return PaymentStatus(self.payment.status)

    @property
    def is_final(self) -> bool:
        return self.status.value in FINAL_STATUSES


def status_label(status: PaymentStatus) -> str:
    return STATUS_LABELS[status]


def safe_return_url(value: object) -> str | None:
    """Only an absolute http(s) link: a ``javascript:`` or relative one (from metadata, or a channel's
    next action) is never rendered."""
    if not isinstance(value, str) or len(value) > 2_000:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme in ("http", "https") and parts.netloc:
        return value.strip()
    return None


def _choices(uow: UnitOfWork, payment: Payment) -> list[Choice]:
    status = PaymentStatus(payment.status)
    if status not in CHOOSABLE:
        return []
    # A payment created with its method keeps it: only the channel is still to choose, and only when the
    # method is one a customer completes here (a card or wallet payment is confirmed by the merchant).
    offered = [m.value for m in CHECKOUT_METHODS]
    methods = [m for m in ([payment.method] if payment.method else offered) if m in offered]
    found = []
    for method in methods:
        for channel in service.eligible_channels(uow, payment.tenant_id, method=method,
                                                 currency_code=payment.currency):
            provider = PROVIDER_NAMES.get(channel.provider) or PROVIDER_NAMES.get(channel.code) \
                or channel.code.replace("_", " ").title()
            found.append(Choice(method, channel.code, f"{provider} · {METHOD_LABELS.get(method, method)}"))
    return found


def load_checkout(uow: UnitOfWork, tenant_id: str, payment_id: str) -> Checkout:
    payment = service.get_payment(uow, tenant_id, payment_id)
    merchant = service.get_merchant(uow, tenant_id, payment.merchant_id) if payment.merchant_id else None
    name = merchant.name if merchant else tenancy.get_tenant(uow, tenant_id).name
    return_url = safe_return_url((payment.meta or {}).get("return_url")) \
        or (safe_return_url((merchant.meta or {}).get("return_url")) if merchant else None)
    return Checkout(payment, name, _choices(uow, payment), return_url)


def inline_qr(data: str) -> Markup:
    """``hosted.render_qr`` as SVG markup to put in the page (its XML declaration dropped). segno draws the
    code as paths and never writes ``data`` into the markup."""
    svg = hosted.render_qr(data, "svg").decode()
    return Markup(svg[svg.index("<svg"):])  # noqa: S704 - segno draws only squares


# ------------------------------------------------------------------------------------------ pages


#: The token in the address is the page's authority: no other site learns it from a link followed here (to
#: the merchant, or a channel), no cache keeps the page, no search engine lists it.
PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _private(response: Response) -> Response:
    response.headers.update(PRIVATE_HEADERS)
    return response


def _invalid_page(request: Request, error: NotFound) -> Response:
    status = 410 if isinstance(error, LinkExpired) else 404
    return _private(html(request, "checkout/invalid.html", status_code=status, status=status, code=error.code,
                         message=error.message))


def _render(request: Request, token: str, checkout: Checkout, *, error: FinloopError | None = None) -> Response:
    payment = checkout.payment
    action = dict(payment.next_action or {})
    public_url = request.app.state.settings.public_url
    unified = inline_qr(hosted.payment_link(public_url, token)) if checkout.status in CHOOSABLE else None
    channel_qr = inline_qr(action["qr_code"]) if isinstance(action.get("qr_code"), str) else None
    return _private(html(request, "checkout/page.html", status_code=status_for(error) if error else 200,
                         checkout=checkout, payment=payment, token=token, path=hosted.checkout_path(token),
                         label=status_label(checkout.status), final=",".join(FINAL_STATUSES), unified_qr=unified,
                         channel_qr=channel_qr, redirect_url=safe_return_url(action.get("redirect_url")),
                         error=error))


@router.get("/checkout/{token}")
def checkout_page(request: Request, token: str = Token) -> Response:
    db = database(request)
    try:
        tenant_id, payment_id = read_checkout_token(token, db.clock.now())
        with db.uow(read_only=True) as uow:
            checkout = load_checkout(uow, tenant_id, payment_id)
    except NotFound as error:
        # A payment gone from under a valid token reads like a bad link: nothing about it is shown.
        return _invalid_page(request, error)
    return _render(request, token, checkout)


@router.get("/checkout/{token}/status")
def checkout_status(request: Request, token: str = Token) -> JSONResponse:
    """What the page's script polls: ``status`` and the line shown to the customer."""
    db = database(request)
    try:
        tenant_id, payment_id = read_checkout_token(token, db.clock.now())
        with db.uow(read_only=True) as uow:
            payment = service.get_payment(uow, tenant_id, payment_id)
    except LinkExpired as error:
        return JSONResponse({"status": "expired", "status_label": EXPIRED_LABEL,
                             "error": {"code": error.code, "message": error.message}}, status_code=410,
                            headers=PRIVATE_HEADERS)
    except NotFound as error:
        return JSONResponse({"error": {"code": error.code, "message": error.message, "param": error.param}},
                            status_code=404, headers=PRIVATE_HEADERS)
    status = PaymentStatus(payment.status)
    return JSONResponse({"status": status.value, "status_label": status_label(status)}, headers=PRIVATE_HEADERS)


def parse_choice(value: str | None, choices: list[Choice]) -> Choice:
    chosen = next((c for c in choices if c.value == (value or "").strip()), None)
    if chosen is None:
        raise InvalidRequest("Choose one of the ways to pay shown.", code="invalid_choice", param="choice")
    return chosen


def pay(db: Database, tenant_id: str, payment_id: str, choice_value: str | None, *,
        client_ip: str | None) -> None:
    """Confirm the payment with the chosen method at the chosen channel, unless it was confirmed already
    (a second tap, or another tab): then nothing happens and the page shows where it stands."""
    with db.uow(read_only=True) as uow:
        checkout = load_checkout(uow, tenant_id, payment_id)
    if checkout.status not in CHOOSABLE:
        return
    chosen = parse_choice(choice_value, checkout.choices)
    # The customer reaches us directly here, so their address is the request's, not a merchant's report of it.
    context = {"ip": client_ip} if client_ip and _is_ip(client_ip) else None
    flows.confirm_payment(db, tenant_id, payment_id,
                          method=None if checkout.payment.method else chosen.method,
                          only_channels=[chosen.channel], risk_context=context)


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


@router.post("/checkout/{token}/pay")
async def checkout_pay(request: Request, token: str = Token) -> Response:
    form = await request.form()
    db = database(request)
    choice_value = form.get("choice")
    try:
        tenant_id, payment_id = read_checkout_token(token, db.clock.now())
    except NotFound as error:
        return _invalid_page(request, error)
    try:
        await run_in_threadpool(pay, db, tenant_id, payment_id, choice_value if isinstance(choice_value, str)
                                else None, client_ip=request.client.host if request.client else None)
    except FinloopError as error:
        # The customer stays on the page, told what went wrong in the page's own words and layout.
        with db.uow(read_only=True) as uow:
            checkout = load_checkout(uow, tenant_id, payment_id)
        return _render(request, token, checkout, error=error)
    return RedirectResponse(hosted.checkout_path(token), status_code=303)
