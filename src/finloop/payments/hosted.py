"""The unified QR code: one code per order that any payment app can scan.

The code encodes a link to a hosted page carrying a short-lived signed token (HMAC-SHA256 under a key
derived from the vault's master key; the token names the tenant, the payment and its expiry, and is
useless after it). The page looks at the scanning app's user agent, picks a channel of the matching
provider (WeChat's browser → a WeChat channel, Alipay's → Alipay, any other browser → routing's choice),
confirms the payment there as an H5 payment, and redirects the customer to the channel's page.

Invariants owned here: a token cannot be forged or extended (constant-time check, expiry inside the
signed part); a hosted page never confirms a payment twice (the payment's state machine refuses it and
the page shows the existing next action instead).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import segno

from finloop.core.errors import NotFound
from finloop.db.uow import Database, UnitOfWork
from finloop.payments import flows, service
from finloop.payments.connectors.base import PaymentMethod
from finloop.payments.state import PaymentStatus

TOKEN_TTL = timedelta(minutes=15)

#: User-agent markers of payment apps' in-app browsers, and the provider (or channel code prefix) they pay with.
APP_MARKERS: tuple[tuple[str, str], ...] = (
    ("MicroMessenger", "wechat"),
    ("AlipayClient", "alipay"),
    ("UnionPay", "unionpay"),
    ("PayPal", "paypal"),
)


def _key() -> bytes:
    from finloop.vault import crypto

    return crypto.master_key().derive("hosted_pages")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(tenant_id: str, payment_id: str, now: datetime, ttl: timedelta = TOKEN_TTL) -> str:
    body = f"{tenant_id}|{payment_id}|{int((now + ttl).timestamp())}".encode()
    mac = hmac.new(_key(), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def _invalid() -> NotFound:
    return NotFound("This payment link is not valid or has expired.", code="payment_link_invalid", param="token")


def open_token(token: str) -> tuple[str, str, int]:
    """The tenant, payment and expiry (Unix seconds) an authentic token names, expired or not; a forged or
    malformed token is a plain 404."""
    try:
        body_text, mac_text = token.split(".", 1)
        body, mac = _unb64(body_text), _unb64(mac_text)
    except ValueError:
        raise _invalid() from None
    if not hmac.compare_digest(mac, hmac.new(_key(), body, hashlib.sha256).digest()):
        raise _invalid()
    try:
        tenant_id, payment_id, expires = body.decode().split("|")
        return tenant_id, payment_id, int(expires)
    except ValueError:
        raise _invalid() from None


def read_token(token: str, now: datetime) -> tuple[str, str]:
    """The tenant and payment a token names; a forged, malformed or expired token is a plain 404."""
    tenant_id, payment_id, expires = open_token(token)
    if expires < now.timestamp():
        raise _invalid()
    return tenant_id, payment_id


def payment_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/v1/hosted/{token}"


def render_qr(data: str, kind: str) -> bytes:
    """The QR code of ``data`` as ``svg`` or ``png`` (error correction M, 4 modules of quiet zone)."""
    code = segno.make(data, error="m")
    buffer = io.BytesIO()
    code.save(buffer, kind=kind, scale=8 if kind == "png" else 4, border=4)
    return buffer.getvalue()


def preferred_channel(user_agent: str, channels: list[tuple[str, str]]) -> str | None:
    """The channel code for the scanning app: channels are (code, provider) pairs."""
    for marker, wanted in APP_MARKERS:
        if marker.lower() in user_agent.lower():
            for code, provider in channels:
                if provider == wanted or code.startswith(wanted):
                    return code
    return None


@dataclass(frozen=True, slots=True)
class HostedOutcome:
    status: str
    redirect_url: str | None
    qr_code: str | None
    message: str


def open_payment(db: Database, token: str, user_agent: str) -> HostedOutcome:
    tenant_id, payment_id = read_token(token, db.clock.now())
    with db.uow(read_only=True) as uow:
        payment = service.get_payment(uow, tenant_id, payment_id)
        status = PaymentStatus(payment.status)
        channels = [(c.code, c.provider) for c in service.eligible_channels(
            uow, tenant_id, method=PaymentMethod.H5.value, currency_code=payment.currency)]
    if status is PaymentStatus.REQUIRES_PAYMENT_METHOD:
        chosen = preferred_channel(user_agent, channels)
        flows.confirm_payment(db, tenant_id, payment_id, method=PaymentMethod.H5.value,
                              only_channels=[chosen] if chosen else None)
    with db.uow(read_only=True) as uow:
        payment = service.get_payment(uow, tenant_id, payment_id)
        status_now, action = payment.status, dict(payment.next_action or {})
    messages = {PaymentStatus.SUCCEEDED.value: "This order is paid.",
                PaymentStatus.CANCELED.value: "This order was canceled.",
                PaymentStatus.FAILED.value: "This payment failed; ask the merchant for a new code."}
    return HostedOutcome(status_now, action.get("redirect_url"), action.get("qr_code"),
                         messages.get(status_now, "Continue in your payment app."))


def checkout_path(token: str) -> str:
    """The console's hosted checkout page for a token (the customer chooses how to pay and follows the result)."""
    return f"/console/checkout/{token}"


def checkout_link(uow: UnitOfWork, tenant_id: str, payment_id: str, public_url: str) -> tuple[str, str, datetime]:
    """(payment id, the checkout page's address, when it stops working): valid for ``TOKEN_TTL``. Another
    tenant's payment is not found."""
    payment = service.get_payment(uow, tenant_id, payment_id)
    now = uow.clock.now()
    token = make_token(tenant_id, payment.id, now)
    return payment.id, public_url.rstrip("/") + checkout_path(token), now + TOKEN_TTL
