"""Payments HTTP endpoints: merchants, customers, channels, payments, attempts, refunds, and the channels'
notification endpoint (authenticated by the channel's signature, not by a tenant's key)."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from finloop.api.deps import CurrentReader, CurrentWriter, Writer
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Instant, Line
from finloop.db.uow import UnitOfWork
from finloop.ledger import service as ledger
from finloop.ledger.endpoints import parse_statement_cursor, statement_cursor
from finloop.payments import flows, gateway, hosted, service, wallets
from finloop.payments.models import Attempt, Channel, Customer, Merchant, Payment, Refund, Withdrawal
from finloop.payments.schemas import (
    AttemptRead,
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    CheckoutLinkRead,
    CustomerCreate,
    CustomerRead,
    MerchantCreate,
    MerchantRead,
    MerchantUpdate,
    NextAction,
    PaymentCancel,
    PaymentCapture,
    PaymentConfirm,
    PaymentCreate,
    PaymentRead,
    RefundCreate,
    RefundRead,
    RefundRetry,
    WalletBalanceRead,
    WalletLineRead,
    WalletRead,
    WithdrawalCreate,
    WithdrawalRead,
)
from finloop.payments.state import PaymentStatus

router = APIRouter(tags=["payments"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
InstantQuery = Annotated[Instant | None, Query(description="An ISO 8601 instant with its offset.")]


def read_merchant(merchant: Merchant) -> MerchantRead:
    return MerchantRead(id=merchant.id, reference=merchant.reference, name=merchant.name, status=merchant.status,
                        refund_approval_amount=merchant.refund_approval_amount, metadata=merchant.meta,
                        created_at=merchant.created_at)


def read_customer(customer: Customer) -> CustomerRead:
    return CustomerRead(id=customer.id, reference=customer.reference, segment=customer.segment,
                        metadata=customer.meta, created_at=customer.created_at)


def read_channel(channel: Channel) -> ChannelRead:
    return ChannelRead(id=channel.id, code=channel.code, provider=channel.provider, base_url=channel.base_url,
                       methods=channel.methods, currencies=channel.currencies, fee_rate=str(channel.fee_rate),
                       fee_fixed_amount=channel.fee_fixed_amount, refund_fee_policy=channel.refund_fee_policy,
                       timeout_ms=channel.timeout_ms, settings=channel.settings,
                       has_credentials=bool(channel.credentials_sealed), status=channel.status,
                       notification_url=gateway.notify_url(channel), created_at=channel.created_at)


def read_payment(payment: Payment) -> PaymentRead:
    return PaymentRead(
        id=payment.id, merchant_id=payment.merchant_id, customer_id=payment.customer_id, purpose=payment.purpose,
        amount=payment.amount,
        currency=payment.currency, captured_amount=payment.captured_amount, refunded_amount=payment.refunded_amount,
        fee_amount=payment.fee_amount, method=payment.method, capture_method=payment.capture_method,
        status=PaymentStatus(payment.status), order_reference=payment.order_reference,
        description=payment.description, channel=payment.channel,
        next_action=NextAction(**payment.next_action) if payment.next_action else None,
        failure_code=payment.failure_code, failure_message=payment.failure_message, is_disputed=payment.is_disputed,
        ledger_entry_id=payment.ledger_entry_id, metadata=payment.meta, created_at=payment.created_at,
        updated_at=payment.updated_at, succeeded_at=payment.succeeded_at, canceled_at=payment.canceled_at)


def read_attempt(attempt: Attempt) -> AttemptRead:
    return AttemptRead(id=attempt.id, payment_id=attempt.payment_id, sequence=attempt.sequence,
                       channel=attempt.channel, status=attempt.status, amount=attempt.amount,
                       fee_amount=attempt.fee_amount, channel_ref=attempt.channel_ref,
                       routing_decision_id=attempt.routing_decision_id, latency_ms=attempt.latency_ms,
                       error_code=attempt.error_code, error_message=attempt.error_message,
                       created_at=attempt.created_at, updated_at=attempt.updated_at)


def read_refund(refund: Refund) -> RefundRead:
    return RefundRead(id=refund.id, payment_id=refund.payment_id, attempt_id=refund.attempt_id,
                      channel=refund.channel, amount=refund.amount, currency=refund.currency,
                      fee_returned_amount=refund.fee_returned_amount, status=refund.status, reason=refund.reason,
                      channel_refund_ref=refund.channel_refund_ref, failure_code=refund.error_code,
                      failure_message=refund.error_message, is_automatic=refund.is_automatic,
                      ledger_entry_id=refund.ledger_entry_id, created_at=refund.created_at,
                      updated_at=refund.updated_at)


# ------------------------------------------------------------------------------------------ merchants


@router.post("/merchants", status_code=201, response_model=MerchantRead, summary="Create a merchant")
def create_merchant(body: MerchantCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_merchant(service.create_merchant(
        uow, writer.tenant_id, reference=body.reference, name=body.name,
        refund_approval_amount=body.refund_approval_amount, metadata=body.metadata)),
        status_code=201, permission="payments.configure")


@router.patch("/merchants/{merchant_id}", response_model=MerchantRead, summary="Change a merchant's settings")
def update_merchant(merchant_id: Id, body: MerchantUpdate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_merchant(service.set_refund_approval_amount(
        uow, writer.tenant_id, merchant_id, body.refund_approval_amount, actor=writer.principal.actor)),
        permission="payments.configure")


@router.get("/merchants", response_model=Page[MerchantRead], summary="List merchants")
def list_merchants(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None) -> Page[MerchantRead]:
    return reader.run(lambda uow: page(service.list_merchants(uow, reader.tenant_id, after=starting_after,
                                                              limit=limit), limit, read_merchant, lambda m: m.id))


@router.get("/merchants/{merchant_id}", response_model=MerchantRead, summary="Get a merchant")
def get_merchant(merchant_id: Id, reader: CurrentReader) -> MerchantRead:
    return reader.run(lambda uow: read_merchant(service.get_merchant(uow, reader.tenant_id, merchant_id)))


@router.post("/customers", status_code=201, response_model=CustomerRead, summary="Create a customer")
def create_customer(body: CustomerCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_customer(service.create_customer(
        uow, writer.tenant_id, reference=body.reference, segment=body.segment, metadata=body.metadata)),
        status_code=201, permission="payments.write")


@router.get("/customers/{customer_id}", response_model=CustomerRead, summary="Get a customer")
def get_customer(customer_id: Id, reader: CurrentReader) -> CustomerRead:
    return reader.run(lambda uow: read_customer(service.get_customer(uow, reader.tenant_id, customer_id)))


# ------------------------------------------------------------------------------------------ channels


@router.post("/channels", status_code=201, response_model=ChannelRead, summary="Register a payment channel")
def create_channel(body: ChannelCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow: UnitOfWork) -> ChannelRead:
        return read_channel(service.create_channel(
            uow, writer.tenant_id, code=body.code, provider=body.provider, base_url=body.base_url,
            methods=[m.value for m in body.methods], currencies=body.currencies, fee_rate=body.fee_rate,
            fee_fixed_amount=body.fee_fixed_amount, refund_fee_policy=body.refund_fee_policy,
            timeout_ms=body.timeout_ms, settings=body.settings, credentials=body.credentials))
    # The request carried secrets: nothing of it is kept for replays beyond the (secret-free) answer.
    return writer.run(work, status_code=201, permission="payments.configure")


@router.get("/channels", response_model=list[ChannelRead], summary="List channels")
def list_channels(reader: CurrentReader) -> list[ChannelRead]:
    return reader.run(lambda uow: [read_channel(c) for c in service.list_channels(uow, reader.tenant_id)])


@router.get("/channels/{channel_id}", response_model=ChannelRead, summary="Get a channel")
def get_channel(channel_id: Id, reader: CurrentReader) -> ChannelRead:
    return reader.run(lambda uow: read_channel(service.get_channel(uow, reader.tenant_id, channel_id)))


@router.patch("/channels/{channel_id}", response_model=ChannelRead, summary="Enable or disable a channel")
def update_channel(channel_id: Id, body: ChannelUpdate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_channel(service.set_channel_status(uow, writer.tenant_id, channel_id,
                                                                          body.status)),
                      permission="payments.configure")


@router.post("/channels/{channel_id}/notifications", summary="A channel's asynchronous notification",
             description="Authenticated by the channel's own signature; answers in the channel's expected form.")
async def channel_notification(channel_id: Id, request: Request) -> Response:
    from fastapi.concurrency import run_in_threadpool

    body = await request.body()
    headers = {key.lower(): value for key, value in request.headers.items()}
    ack = await run_in_threadpool(flows.handle_notification, request.app.state.database, channel_id, headers, body)
    return Response(content=ack.body, status_code=ack.status_code, media_type=ack.media_type)


# ------------------------------------------------------------------------------------------ payments


def _payment_reader(tenant_id: str, payment_id: str):  # type: ignore[no-untyped-def]
    return lambda uow: read_payment(service.get_payment(uow, tenant_id, payment_id))


@router.post("/payments", status_code=201, response_model=PaymentRead, summary="Create a payment")
def create_payment(body: PaymentCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    draft = service.PaymentDraft(
        merchant_id=body.merchant_id, amount=body.amount, currency=body.currency, purpose=body.purpose,
        order_reference=body.order_reference, description=body.description, customer_id=body.customer_id,
        method=body.method.value if body.method else None, capture_method=body.capture_method, card_id=body.card_id,
        metadata=body.metadata)
    created: list[str] = []

    def flow() -> None:
        if body.confirm:
            # The answer is rendered and stored in the confirmation's last transaction: no extra read.
            created.append(flows.create_and_confirm(writer.db, writer.tenant_id, draft,
                                                    finish=_answer_with_payment(writer, 201)))
            return
        with writer.db.uow() as uow:
            created.append(service.create_payment(uow, writer.tenant_id, draft).id)
            uow.commit()

    return writer.run_flow(flow, lambda uow: read_payment(service.get_payment(uow, writer.tenant_id, created[0])),
                           status_code=201, permission="payments.write")


def _answer_with_payment(writer: Writer, status_code: int) -> flows.Finish:
    return lambda uow, payment: writer.answer_in(uow, read_payment(payment), status_code=status_code)


@router.get("/payments", response_model=Page[PaymentRead], summary="List payments, newest first")
def list_payments(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  status: PaymentStatus | None = None,
                  merchant_id: Annotated[Line | None, Query(max_length=40)] = None,
                  channel: Annotated[Line | None, Query(max_length=40)] = None,
                  created_gte: InstantQuery = None, created_lt: InstantQuery = None) -> Page[PaymentRead]:
    filters = service.PaymentFilter(status=status.value if status else None, merchant_id=merchant_id,
                                    channel=channel, created_gte=created_gte, created_lt=created_lt)
    return reader.run(lambda uow: page(service.list_payments(uow, reader.tenant_id, filters=filters,
                                                             after=starting_after, limit=limit),
                                       limit, read_payment, lambda p: p.id))


@router.get("/payments/{payment_id}", response_model=PaymentRead, summary="Get a payment")
def get_payment(payment_id: Id, reader: CurrentReader) -> PaymentRead:
    return reader.run(lambda uow: read_payment(service.get_payment(uow, reader.tenant_id, payment_id)))


@router.get("/payments/{payment_id}/attempts", response_model=list[AttemptRead], summary="A payment's attempts")
def list_attempts(payment_id: Id, reader: CurrentReader) -> list[AttemptRead]:
    return reader.run(lambda uow: [read_attempt(a) for a in service.list_attempts(uow, reader.tenant_id, payment_id)])


@router.post("/payments/{payment_id}/confirm", response_model=PaymentRead, summary="Confirm: route and charge")
def confirm_payment(payment_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                    body: PaymentConfirm | None = None):
    body = body or PaymentConfirm()
    return writer.run_flow(
        lambda: flows.confirm_payment(writer.db, writer.tenant_id, payment_id,
                                      method=body.method.value if body.method else None, card_id=body.card_id,
                                      finish=_answer_with_payment(writer, 200), risk_context=body.risk_context()),
        _payment_reader(writer.tenant_id, payment_id), permission="payments.write")


@router.post("/payments/{payment_id}/capture", response_model=PaymentRead, summary="Capture an authorised payment")
def capture_payment(payment_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                    body: PaymentCapture | None = None):
    amount = body.amount if body else None
    return writer.run_flow(lambda: flows.capture_payment(writer.db, writer.tenant_id, payment_id, amount=amount),
                           _payment_reader(writer.tenant_id, payment_id), permission="payments.write")


@router.post("/payments/{payment_id}/cancel", response_model=PaymentRead, summary="Cancel a payment")
def cancel_payment(payment_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                   body: PaymentCancel | None = None):
    reason = body.reason if body else "requested_by_customer"
    return writer.run_flow(lambda: flows.cancel_payment(writer.db, writer.tenant_id, payment_id, reason=reason),
                           _payment_reader(writer.tenant_id, payment_id), permission="payments.write")


# ------------------------------------------------------------------------------------------ refunds


@router.post("/payments/{payment_id}/refunds", status_code=201, response_model=RefundRead,
             summary="Refund a payment, in part or in full")
def create_refund(payment_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                  body: RefundCreate | None = None):
    body = body or RefundCreate()
    created: list[str] = []

    def flow() -> None:
        created.append(flows.refund_payment(writer.db, writer.tenant_id, payment_id, amount=body.amount,
                                            reason=body.reason, requested_by=writer.principal))

    return writer.run_flow(flow, lambda uow: read_refund(service.get_refund(uow, writer.tenant_id, created[0])),
                           status_code=201, permission="payments.refund")


@router.get("/refunds", response_model=Page[RefundRead], summary="List refunds, newest first")
def list_refunds(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                 payment_id: Annotated[Line | None, Query(max_length=40)] = None) -> Page[RefundRead]:
    return reader.run(lambda uow: page(service.list_refunds(uow, reader.tenant_id, payment_id=payment_id,
                                                            after=starting_after, limit=limit),
                                       limit, read_refund, lambda r: r.id))


@router.get("/refunds/{refund_id}", response_model=RefundRead, summary="Get a refund")
def get_refund(refund_id: Id, reader: CurrentReader) -> RefundRead:
    return reader.run(lambda uow: read_refund(service.get_refund(uow, reader.tenant_id, refund_id)))


@router.post("/refunds/{refund_id}/retry", response_model=RefundRead,
             summary="Retry a failed refund, through its channel or into the customer's wallet")
def retry_refund(refund_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                 body: RefundRetry | None = None):
    route = body.route if body else "original"
    return writer.run_flow(lambda: flows.retry_refund(writer.db, writer.tenant_id, refund_id, route=route),
                           lambda uow: read_refund(service.get_refund(uow, writer.tenant_id, refund_id)),
                           permission="payments.refund")


# ------------------------------------------------------------------------------------------ wallets


def read_withdrawal(withdrawal: Withdrawal) -> WithdrawalRead:
    return WithdrawalRead(id=withdrawal.id, customer_id=withdrawal.customer_id, channel=withdrawal.channel,
                          amount=withdrawal.amount, currency=withdrawal.currency, fee_amount=withdrawal.fee_amount,
                          status=withdrawal.status, account_name=withdrawal.account_name,
                          account_last4=withdrawal.account_last4, channel_ref=withdrawal.channel_ref,
                          failure_code=withdrawal.error_code, ledger_entry_id=withdrawal.ledger_entry_id,
                          created_at=withdrawal.created_at, updated_at=withdrawal.updated_at)


@router.get("/customers/{customer_id}/wallet", response_model=WalletRead, summary="A customer's wallet balances")
def get_wallet(customer_id: Id, reader: CurrentReader) -> WalletRead:
    def work(uow: UnitOfWork) -> WalletRead:
        balances = wallets.wallet_balances(uow, reader.tenant_id, customer_id)
        return WalletRead(customer_id=customer_id, balances=[
            WalletBalanceRead(currency=b.currency, balance=b.balance, available=b.available,
                              account_id=b.account_id) for b in balances])
    return reader.run(work)


@router.get("/customers/{customer_id}/wallet/statement", response_model=Page[WalletLineRead],
            summary="A wallet's statement in one currency, oldest first, with the running balance")
def wallet_statement(customer_id: Id, reader: CurrentReader,
                     currency: Annotated[Line, Query(min_length=3, max_length=3)],
                     limit: Limit = 100, starting_after: Cursor = None) -> Page[WalletLineRead]:
    def work(uow: UnitOfWork) -> Page[WalletLineRead]:
        account = wallets.wallet_account(uow, reader.tenant_id, customer_id, currency)
        lines = ledger.statement(uow, account, after=parse_statement_cursor(starting_after), limit=limit + 1)
        return page(lines, limit, lambda line: WalletLineRead(
            entry_id=line.entry_id, effective_at=line.effective_at, amount=line.amount, balance=line.balance,
            description=line.description), statement_cursor)
    return reader.run(work)


@router.post("/customers/{customer_id}/wallet/withdrawals", status_code=201, response_model=WithdrawalRead,
             summary="Withdraw from the wallet to a bank account through a channel's payouts")
def create_withdrawal(customer_id: Id, body: WithdrawalCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    created: list[str] = []

    def flow() -> None:
        created.append(flows.withdraw(writer.db, writer.tenant_id, customer_id, channel=body.channel,
                                      amount=body.amount, currency=body.currency, account_name=body.account_name,
                                      account_number=body.account_number, bank_code=body.bank_code))

    return writer.run_flow(flow, lambda uow: read_withdrawal(wallets.get_withdrawal(uow, writer.tenant_id,
                                                                                    created[0])),
                           status_code=201, permission="payments.refund")


@router.get("/withdrawals/{withdrawal_id}", response_model=WithdrawalRead, summary="Get a withdrawal")
def get_withdrawal(withdrawal_id: Id, reader: CurrentReader) -> WithdrawalRead:
    return reader.run(lambda uow: read_withdrawal(wallets.get_withdrawal(uow, reader.tenant_id, withdrawal_id)))


# ------------------------------------------------------------------------------------------ unified QR


@router.get("/payments/{payment_id}/qr.{kind}", summary="The order's unified QR code (SVG or PNG)",
            description="One code for every payment app: it links to a hosted page that picks the channel of the "
                        "app that scanned it. The link expires after 15 minutes.",
            responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}})
def payment_qr(payment_id: Id, kind: Annotated[str, Path(pattern="^(svg|png)$")], reader: CurrentReader,
               request: Request) -> Response:
    def work(uow: UnitOfWork) -> str:
        payment = service.get_payment(uow, reader.tenant_id, payment_id)
        return hosted.make_token(reader.tenant_id, payment.id, uow.clock.now())

    token = reader.run(work)
    link = hosted.payment_link(request.app.state.settings.public_url, token)
    media = "image/svg+xml" if kind == "svg" else "image/png"
    return Response(hosted.render_qr(link, kind), media_type=media, headers={"X-Payment-Link": link})


@router.get("/payments/{payment_id}/checkout-link", response_model=CheckoutLinkRead,
            summary="A link to the payment's hosted checkout page",
            description="The customer opens it to choose how to pay, scan the unified QR code and follow the payment "
                        "to its result. It expires after 15 minutes; ask again for a fresh one.")
def payment_checkout_link(payment_id: Id, reader: CurrentReader, request: Request) -> CheckoutLinkRead:
    public_url = request.app.state.settings.public_url

    def work(uow: UnitOfWork) -> CheckoutLinkRead:
        found, url, expires_at = hosted.checkout_link(uow, reader.tenant_id, payment_id, public_url)
        return CheckoutLinkRead(payment_id=found, url=url, expires_at=expires_at)

    return reader.run(work)


@router.get("/hosted/{token}", summary="The hosted payment page a unified QR code opens",
            description="Public: authenticated by the signed token in the path. Redirects to the channel of the "
                        "scanning app (by its user agent), or shows the order's state.")
def hosted_payment(token: Annotated[str, Path(min_length=10, max_length=400)], request: Request) -> Response:
    from fastapi.responses import HTMLResponse, RedirectResponse

    outcome = hosted.open_payment(request.app.state.database, token, request.headers.get("user-agent", ""))
    if outcome.redirect_url:
        return RedirectResponse(outcome.redirect_url, status_code=303)
    qr = f"<p>Scan with your payment app:</p><pre>{escape(outcome.qr_code)}</pre>" if outcome.qr_code else ""
    return HTMLResponse(f"<!doctype html><title>Payment</title><h1>{escape(outcome.status)}</h1>"
                        f"<p>{escape(outcome.message)}</p>{qr}")
