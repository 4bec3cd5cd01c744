"""Payments: the list, and a payment's whole story (attempts, the routing decision with its scores, refunds,
ledger entries, webhooks sent), with refunds asked for here and approved on the approvals page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import or_, select

from finloop.console.actions import act_flow
from finloop.console.auth import ActingStaff, CurrentStaff, database, field, form_of
from finloop.console.web import Column, Filter, badge, choice, equals, html, listing, money, parse_amount, since, until
from finloop.ledger.models import Account, Entry, Posting
from finloop.payments import flows
from finloop.payments import service as payments
from finloop.payments.models import Attempt, Channel, Merchant, Payment, Refund
from finloop.payments.routing.models import RoutingDecision
from finloop.payments.state import PaymentStatus
from finloop.webhooks.models import WebhookDelivery, WebhookMessage

router = APIRouter()

COLUMNS = (
    Column("Payment", lambda p: p.id, link=lambda p: f"/console/payments/{p.id}"),
    Column("Created", lambda p: p.created_at),
    Column("Order", lambda p: p.order_reference),
    Column("Merchant", lambda p: p.merchant_id),
    Column("Amount", lambda p: p.amount, show=lambda p: money(p.amount, p.currency), numeric=True),
    Column("Currency", lambda p: p.currency),
    Column("Status", lambda p: p.status, show=lambda p: badge(p.status)),
    Column("Method", lambda p: p.method),
    Column("Channel", lambda p: p.channel),
    Column("Refunded", lambda p: p.refunded_amount, show=lambda p: money(p.refunded_amount, p.currency),
           numeric=True),
)


@router.get("/payments")
def payment_list(request: Request, staff: CurrentStaff) -> Response:
    with database(request).uow(read_only=True) as uow:
        channels = list(uow.session.scalars(select(Channel.code).where(Channel.tenant_id == staff.tenant_id)
                                            .order_by(Channel.code)))
        merchants = list(uow.session.execute(select(Merchant.id, Merchant.name)
                                             .where(Merchant.tenant_id == staff.tenant_id).order_by(Merchant.name)))
        filters = (
            Filter("status", "Status", equals(Payment.status), choice(*(s.value for s in PaymentStatus))),
            Filter("channel", "Channel", equals(Payment.channel), choice(*channels)),
            Filter("merchant", "Merchant", equals(Payment.merchant_id), [(m.id, m.name) for m in merchants]),
            Filter("method", "Method", equals(Payment.method), choice("card", "wallet", "qr", "bank_transfer")),
            Filter("from", "From", since(Payment.created_at), kind="date"),
            Filter("to", "To", until(Payment.created_at), kind="date"),
        )
        return listing(request, uow.session, select(Payment).where(Payment.tenant_id == staff.tenant_id),
                       title="Payments", columns=COLUMNS, order_by=(Payment.id.desc(),), filters=filters,
                       search=lambda q: or_(Payment.id == q, Payment.order_reference == q),
                       search_label="payment id or order reference")


@router.get("/payments/{payment_id}")
def payment_detail(request: Request, staff: CurrentStaff, payment_id: str) -> Response:
    with database(request).uow(read_only=True) as uow:
        payment = payments.get_payment(uow, staff.tenant_id, payment_id)
        attempts = list(uow.session.scalars(select(Attempt).where(Attempt.tenant_id == staff.tenant_id,
                                                                  Attempt.payment_id == payment.id)
                                            .order_by(Attempt.sequence)))
        decisions = list(uow.session.scalars(select(RoutingDecision).where(
            RoutingDecision.tenant_id == staff.tenant_id, RoutingDecision.payment_id == payment.id)
            .order_by(RoutingDecision.created_at)))
        refunds = list(uow.session.scalars(select(Refund).where(Refund.tenant_id == staff.tenant_id,
                                                                Refund.payment_id == payment.id).order_by(Refund.id)))
        entry_ids = [i for i in [payment.ledger_entry_id, *(r.ledger_entry_id for r in refunds)] if i]
        entries = list(uow.session.scalars(select(Entry).where(Entry.tenant_id == staff.tenant_id,
                                                               Entry.id.in_(entry_ids)).order_by(Entry.id)))
        postings = list(uow.session.execute(
            select(Posting.entry_id, Account.code, Posting.amount, Posting.currency)
            .join(Account, Account.id == Posting.account_id)
            .where(Posting.tenant_id == staff.tenant_id, Posting.entry_id.in_(entry_ids)).order_by(Posting.id)))
        messages = list(uow.session.scalars(select(WebhookMessage).where(
            WebhookMessage.tenant_id == staff.tenant_id, WebhookMessage.payload.contains(payment.id))
            .order_by(WebhookMessage.created_at).limit(50)))
        deliveries = list(uow.session.scalars(select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == staff.tenant_id,
            WebhookDelivery.message_id.in_([m.id for m in messages])).order_by(WebhookDelivery.at)))
        refundable = payment.captured_amount - payment.refunded_amount
        return html(request, "payments/detail.html", payment=payment, attempts=attempts, decisions=decisions,
                    refunds=refunds, entries=entries, postings=postings, messages=messages, deliveries=deliveries,
                    refundable=refundable)


@router.post("/payments/{payment_id}/refunds")
def refund(request: Request, staff: ActingStaff, payment_id: str) -> Response:
    form = form_of(request)
    with database(request).uow(read_only=True) as uow:
        payment = payments.get_payment(uow, staff.tenant_id, payment_id)
    amount = parse_amount(field(form, "amount"), payment.currency)
    reason = field(form, "reason", required=False) or ""
    db = database(request)

    def flow() -> str:
        return flows.refund_payment(db, staff.tenant_id, payment_id, amount=amount, reason=reason,
                                    requested_by=staff.principal)

    return act_flow(request, staff, action="refund.requested", object_type="refund", flow=flow, form=form,
                    permission="payments.refund", done="Refund recorded.", back=f"/console/payments/{payment_id}")


@router.get("/payments/refunds/{refund_id}")
def refund_detail(request: Request, staff: CurrentStaff, refund_id: str) -> Response:
    """A refund opens on its payment's page (approvals link here)."""
    with database(request).uow(read_only=True) as uow:
        found = payments.get_refund(uow, staff.tenant_id, refund_id)
    return RedirectResponse(f"/console/payments/{found.payment_id}", status_code=303)
