"""The demo's people: one staff user per role, and work waiting for them in the console (a refund above the
merchant's threshold, asked for by support, which only finance may approve)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from rich.console import Console
from sqlalchemy import select

from finloop.db.uow import Database
from finloop.payments import flows
from finloop.payments import service as payments
from finloop.payments.models import Payment
from finloop.payments.state import PaymentStatus
from finloop.tenancy import service as tenancy
from finloop.tenancy.service import Principal, Role

STAFF_DOMAIN = "demo.finloop.dev"
#: Refunds of the demo merchant above CNY 100.00 wait for a finance user.
REFUND_APPROVAL_AMOUNT = 100_00


@dataclass(frozen=True)
class ConsoleStaff:
    tenant_id: str
    password: str
    emails: dict[str, str]
    parked_refund_id: str | None


def staff_and_work(db: Database, tenant_id: str, merchant_id: str) -> ConsoleStaff:
    password = secrets.token_urlsafe(12)
    emails = {role.value: f"{role.value.replace('_', '.')}@{STAFF_DOMAIN}" for role in Role}
    with db.uow() as uow:
        users = {role: tenancy.create_user(uow, tenant_id, email=emails[role.value], password=password,
                                           roles=[role.value], name=f"Demo {role.value.replace('_', ' ')}",
                                           actor="demo") for role in Role}
        payments.set_refund_approval_amount(uow, tenant_id, merchant_id, REFUND_APPROVAL_AMOUNT, actor="demo")
        payment = uow.session.scalar(select(Payment).where(
            Payment.tenant_id == tenant_id, Payment.merchant_id == merchant_id,
            Payment.status == PaymentStatus.SUCCEEDED.value, Payment.refunded_amount == 0,
            Payment.captured_amount > REFUND_APPROVAL_AMOUNT).order_by(Payment.id).limit(1))
        uow.commit()
    support = users[Role.SUPPORT]
    parked = None
    if payment is not None:
        requester = Principal(tenant_id, f"user:{support.id}", frozenset({Role.SUPPORT}), user_id=support.id)
        parked = flows.refund_payment(db, tenant_id, payment.id, reason="customer returned the goods",
                                      requested_by=requester)
    return ConsoleStaff(tenant_id, password, emails, parked)


def print_console(console: Console, staff: ConsoleStaff, public_url: str) -> None:
    console.rule("[bold]the console[/bold]")
    console.print(f"Start it with [bold]./dev serve[/bold] (or [bold]finloop serve --sandbox[/bold]: the demo's "
                  "sandbox channels answered in the same process), then open "
                  f"[link]{public_url}/console/sign-in?tenant={staff.tenant_id}[/link]")
    console.print(f"Staff users, each with password [bold]{staff.password}[/bold]:")
    for role, email in staff.emails.items():
        console.print(f"  {role:<13} {email}")
    console.print("The first sign-in enrols an authenticator app (scan the QR code); without one, "
                  f"[bold]finloop console code --tenant {staff.tenant_id} --email <email>[/bold] prints the "
                  "current code for this demo tenant.")
    if staff.parked_refund_id:
        console.print(f"Waiting for finance: refund {staff.parked_refund_id}, asked for by support "
                      "(Approvals page).")
