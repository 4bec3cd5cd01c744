"""The generic provider's sandbox: its HTTP API over the shared engine, its notifications and its CSV bill.

Invariants owned here: every reply and every notification is signed with the channel's secret; a
request whose bearer key or signature does not verify is refused (401) before the engine sees it;
card and account numbers reach the engine only as far as it needs them (the engine keeps last four
digits) and are never echoed back.

The sandbox credentials are fixed, public test values derived from the channel name, so a restarted
``finloop sandbox serve`` keeps answering to the channel configuration registered earlier.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from finloop.payments.connectors.base import BillFile, ChannelConfig, InvalidSignature
from finloop.payments.connectors.generic import wire
from finloop.payments.connectors.sandbox.engine import (
    ACTION_METHODS,
    BillLine,
    PayoutRecord,
    PendingNotification,
    RefundRecord,
    SandboxEngine,
    SandboxFailure,
    Transaction,
    TxStatus,
)

PROVIDER = "generic"

_STATUS = {TxStatus.WAITING: "requires_action", TxStatus.AUTHORIZED: "authorized",
           TxStatus.SUCCEEDED: "succeeded", TxStatus.FAILED: "failed", TxStatus.CLOSED: "canceled",
           TxStatus.REFUNDED: "refunded"}
_ERROR_TYPE = {"declined": wire.DECLINED, "error": wire.CHANNEL_ERROR, "invalid": wire.INVALID_REQUEST,
               "unavailable": wire.UNAVAILABLE, "timeout": wire.TIMEOUT}
_METHODS = frozenset(ACTION_METHODS | {"card"})


def credentials(channel: str) -> dict[str, str]:
    """The sandbox's (public, test-only) key and secret for ``channel``."""
    digest = hashlib.sha256(f"finloop-sandbox:generic:{channel}".encode()).hexdigest()
    return {"api_key": f"gk_test_{digest[:24]}", "api_secret": f"gs_test_{digest[24:]}"}


class _BadRequest(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def signed(status_code: int, payload: Mapping[str, Any], secret: str, timestamp: int) -> Response:
    body = wire.encode(payload)
    return Response(content=body, status_code=status_code, media_type="application/json",
                    headers={wire.SIGNATURE_HEADER: wire.signature(secret, body, timestamp)})


def error_body(error_type: str, code: str, message: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "code": code, "message": message}}


def payment_object(tx: Transaction, checkout_url: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "object": "payment", "id": tx.channel_ref, "reference": tx.reference, "amount": tx.amount,
        "captured_amount": tx.captured, "refunded_amount": tx.refunded, "currency": tx.currency,
        "method": tx.method, "status": _STATUS[tx.status], "fee": tx.fee, "card_last4": tx.card_last4,
        "created_at": tx.created_at.isoformat(), "paid_at": tx.paid_at.isoformat() if tx.paid_at else None,
        "error": None, "action": None,
    }
    if tx.status is TxStatus.FAILED:
        data["error"] = {"type": _ERROR_TYPE.get(tx.error_kind or "error", wire.CHANNEL_ERROR),
                         "code": tx.error_code, "message": f"payment failed: {tx.error_code}"}
    elif tx.status is TxStatus.CLOSED and tx.error_code:
        data["error"] = {"type": wire.INVALID_REQUEST, "code": tx.error_code, "message": "closed"}
    if tx.status is TxStatus.WAITING and checkout_url is not None:
        if tx.method == "qr":
            data["action"] = {"type": "qr_code", "qr_code": checkout_url}
        elif tx.method == "h5":
            data["action"] = {"type": "redirect", "redirect_url": checkout_url}
        else:
            data["action"] = {"type": "app_invoke", "app_payload": f"generic://pay?id={tx.channel_ref}"}
    return data


def refund_object(record: RefundRecord) -> dict[str, Any]:
    return {
        "object": "refund", "id": record.channel_refund_ref, "refund_reference": record.refund_reference,
        "reference": record.reference, "payment_id": record.channel_ref, "amount": record.amount,
        "currency": record.currency, "status": record.status, "fee_returned": record.fee_returned,
        "created_at": record.created_at.isoformat(),
        "succeeded_at": record.succeeded_at.isoformat() if record.succeeded_at else None,
        "error": ({"type": wire.CHANNEL_ERROR, "code": record.error_code, "message": "refund failed"}
                  if record.status == "failed" else None),
    }


def payout_object(record: PayoutRecord) -> dict[str, Any]:
    return {
        "object": "payout", "id": record.channel_ref, "reference": record.reference, "amount": record.amount,
        "currency": record.currency, "status": record.status, "fee": record.fee,
        "account_last4": record.account_last4, "created_at": record.created_at.isoformat(),
        "completed_at": record.completed_at.isoformat() if record.completed_at else None,
        "error": ({"type": wire.DECLINED, "code": record.error_code, "message": "payout refused"}
                  if record.status == "failed" else None),
    }


def dispute_object(dispute: Mapping[str, Any]) -> dict[str, Any]:
    return {"object": "dispute", "id": dispute["id"], "reference": dispute["reference"],
            "payment_id": dispute["channel_ref"], "amount": dispute["amount"], "currency": dispute["currency"],
            "reason": dispute["reason"], "status": dispute["status"], "evidence_due_by": dispute["evidence_due_by"]}


def _text(data: Mapping[str, Any], key: str, *, required: bool = True, max_length: int = 128) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise _BadRequest(key, f"{key} is a non-empty string of at most {max_length} characters")
    return value


def _amount(data: Mapping[str, Any], key: str = "amount") -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _BadRequest(key, f"{key} is a positive integer of minor units")
    return value


class GenericSandbox:
    """The ``SandboxProvider`` of the generic wire."""

    name = PROVIDER

    def router(self, engine: SandboxEngine, channel: str) -> APIRouter:
        keys = credentials(channel)
        secret = keys["api_secret"]
        router = APIRouter()

        def stamp() -> int:
            return int(engine.clock.now().timestamp())

        def reply(status_code: int, payload: Mapping[str, Any]) -> Response:
            return signed(status_code, payload, secret, stamp())

        def failure(error: SandboxFailure) -> Response:
            error_type = _ERROR_TYPE.get(error.kind, wire.CHANNEL_ERROR)
            return reply(wire.error_status(error_type, error.code), error_body(error_type, error.code, error.message))

        async def authenticated(request: Request) -> tuple[dict[str, Any] | None, Response | None]:
            body = await request.body()
            if request.headers.get("authorization") != f"Bearer {keys['api_key']}":
                return None, reply(401, error_body(wire.INVALID_REQUEST, "unauthenticated", "bad API key"))
            try:
                wire.verify(secret, request.headers.get(wire.SIGNATURE_HEADER), body)
            except InvalidSignature:
                return None, reply(401, error_body(wire.INVALID_REQUEST, "invalid_signature",
                                                   "request signature does not verify"))
            if not body:
                return {}, None
            try:
                return wire.decode(body), None
            except ValueError:
                return None, reply(400, error_body(wire.INVALID_REQUEST, "invalid_json", "body is not a JSON object"))

        def run(work: Callable[[], Mapping[str, Any]], status_code: int = 200) -> Response:
            try:
                return reply(status_code, work())
            except SandboxFailure as error:
                return failure(error)
            except _BadRequest as error:
                return reply(400, {"error": {"type": wire.INVALID_REQUEST, "code": "invalid_parameter",
                                             "message": str(error), "param": error.param}})

        async def serve(request: Request, work: Callable[[dict[str, Any]], Mapping[str, Any]]) -> Response:
            """Authenticate and verify the request, then answer ``work(body)`` off the event loop."""
            data, refused = await authenticated(request)
            if data is None:
                assert refused is not None
                return refused
            return await _threaded(request, lambda: run(lambda: work(data)))

        def checkout_url(request: Request, tx: Transaction) -> str:
            return f"{str(request.base_url).rstrip('/')}/{channel}/checkout/{tx.channel_ref}"

        @router.post("/v1/payments")
        async def create_payment(request: Request) -> Response:
            def work(data: dict[str, Any]) -> dict[str, Any]:
                method = _text(data, "method")
                if method not in _METHODS:
                    raise _BadRequest("method", f"method is one of {sorted(_METHODS)}")
                card = data.get("card")
                card_number = None
                if method == "card":
                    number = card.get("number") if isinstance(card, Mapping) else None
                    if not isinstance(number, str) or not number.isdigit() or not 12 <= len(number) <= 19:
                        raise _BadRequest("card", "card payments need card.number (12 to 19 digits)")
                    card_number = number
                capture = data.get("capture", True)
                if not isinstance(capture, bool):
                    raise _BadRequest("capture", "capture is a boolean")
                currency = _text(data, "currency", max_length=3)
                tx = engine.pay(channel, reference=str(_text(data, "reference")), amount=_amount(data),
                                currency=str(currency).upper(), method=str(method), capture=capture,
                                notify_url=_text(data, "notify_url", required=False, max_length=2048),
                                card_number=card_number)
                return payment_object(tx, checkout_url(request, tx))

            return await serve(request, work)

        @router.get("/v1/payments/{reference}")
        async def get_payment(reference: str, request: Request) -> Response:
            def work(data: dict[str, Any]) -> dict[str, Any]:
                tx = engine.query(channel, reference)
                if tx is None:
                    raise SandboxFailure("invalid", "not_found", f"no payment {reference}")
                return payment_object(tx, checkout_url(request, tx))

            return await serve(request, work)

        @router.post("/v1/payments/{reference}/capture")
        async def capture_payment(reference: str, request: Request) -> Response:
            return await serve(request, lambda data: payment_object(engine.capture(channel, reference,
                                                                                     _amount(data))))

        @router.post("/v1/payments/{reference}/cancel")
        async def cancel_payment(reference: str, request: Request) -> Response:
            return await serve(request, lambda _: payment_object(engine.close(channel, reference)))

        @router.post("/v1/refunds")
        async def create_refund(request: Request) -> Response:
            def work(data: dict[str, Any]) -> dict[str, Any]:
                charged = data.get("payment_amount")
                original = (charged, str(data.get("currency") or ""), _text(data, "payment_id", required=False)) \
                    if isinstance(charged, int) and not isinstance(charged, bool) and charged > 0 else None
                record = engine.refund(channel, reference=str(_text(data, "reference")),
                                       refund_reference=str(_text(data, "refund_reference")), amount=_amount(data),
                                       notify_url=_text(data, "notify_url", required=False, max_length=2048),
                                       original=original)
                return refund_object(record)

            return await serve(request, work)

        @router.get("/v1/refunds/{refund_reference}")
        async def get_refund(refund_reference: str, request: Request) -> Response:
            def work(data: dict[str, Any]) -> dict[str, Any]:
                record = engine.query_refund(channel, refund_reference)
                if record is None:
                    raise SandboxFailure("invalid", "not_found", f"no refund {refund_reference}")
                return refund_object(record)

            return await serve(request, work)

        @router.post("/v1/payouts")
        async def create_payout(request: Request) -> Response:
            def work(data: dict[str, Any]) -> dict[str, Any]:
                currency = str(_text(data, "currency", max_length=3)).upper()
                record = engine.payout(channel, reference=str(_text(data, "reference")), amount=_amount(data),
                                       currency=currency, account_number=str(_text(data, "account_number")))
                return payout_object(record)

            return await serve(request, work)

        @router.get("/v1/payouts/{reference}")
        async def get_payout(reference: str, request: Request) -> Response:
            def work(data: dict[str, Any]) -> dict[str, Any]:
                record = engine.query_payout(channel, reference)
                if record is None:
                    raise SandboxFailure("invalid", "not_found", f"no payout {reference}")
                return payout_object(record)

            return await serve(request, work)

        @router.get("/v1/bills/{business_date}")
        async def get_bill(business_date: str, request: Request) -> Response:
            data, refused = await authenticated(request)
            if data is None:
                assert refused is not None
                return refused
            try:
                day = date.fromisoformat(business_date)
            except ValueError:
                return reply(400, error_body(wire.INVALID_REQUEST, "invalid_parameter", "date is YYYY-MM-DD"))
            bill = self.bill(engine.bill(channel, day), day, channel)
            return Response(content=bill.content, media_type=bill.media_type, headers={
                wire.SIGNATURE_HEADER: wire.signature(secret, bill.content, stamp()),
                "Content-Disposition": f'attachment; filename="{bill.filename}"'})

        # The customer's side: the page a QR code or redirect leads to (no API key: the customer has none).
        @router.get("/checkout/{channel_ref}", response_class=HTMLResponse)
        def checkout_page(channel_ref: str) -> HTMLResponse:
            tx = engine.find(channel, channel_ref=channel_ref)
            if tx is None:
                return HTMLResponse("<h1>Unknown payment</h1>", status_code=404)
            ref = html.escape(channel_ref)
            actions = "" if tx.status is not TxStatus.WAITING else (
                f'<form method="post" action="{ref}/pay"><button>Pay</button></form>'
                f'<form method="post" action="{ref}/abandon"><button>Cancel</button></form>')
            title = f"{html.escape(channel)}: {tx.amount} {html.escape(tx.currency)} (minor units)"
            return HTMLResponse(f"<h1>{title}</h1><p>status: {html.escape(_STATUS[tx.status])}</p>{actions}")

        @router.post("/checkout/{channel_ref}/{move}", response_class=HTMLResponse)
        def checkout_act(channel_ref: str, move: str) -> HTMLResponse:
            tx = engine.find(channel, channel_ref=channel_ref)
            if tx is None or move not in ("pay", "abandon"):
                return HTMLResponse("<h1>Unknown payment</h1>", status_code=404)
            try:
                tx = engine.customer_acts(channel, tx.reference, pays=move == "pay")
            except SandboxFailure as error:
                return HTMLResponse(f"<h1>{html.escape(error.message)}</h1>", status_code=409)
            return HTMLResponse(f"<h1>Payment {html.escape(_STATUS[tx.status])}</h1>")

        return router

    def notification(self, item: PendingNotification) -> tuple[dict[str, str], bytes]:
        if item.kind == "payment" and item.transaction is not None:
            event_type, data = "payment.updated", payment_object(item.transaction)
        elif item.kind == "refund" and item.refund is not None:
            event_type, data = "refund.updated", refund_object(item.refund)
        elif item.kind == "dispute" and item.dispute is not None:
            event_type, data = "dispute.created", dispute_object(item.dispute)
        else:
            raise ValueError(f"cannot format a {item.kind} notification without its object")
        body = wire.encode({"id": item.id, "type": event_type, "created": item.due_at.isoformat(), "data": data})
        secret = credentials(item.channel)["api_secret"]
        headers = {"Content-Type": "application/json",
                   wire.SIGNATURE_HEADER: wire.signature(secret, body, int(item.due_at.timestamp()))}
        return headers, body

    def bill(self, lines: Sequence[BillLine], business_date: date, channel: str) -> BillFile:
        """CSV: one row per payment or refund, amounts and fees in minor units (refund fee = fee returned), and
        the transaction's status when the bill was made."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["type", "reference", "channel_ref", "refund_reference", "amount", "fee", "currency", "time",
                         "status"])
        for line in lines:
            writer.writerow([line.kind, line.reference, line.channel_ref, line.refund_reference or "", line.amount,
                             line.fee, line.currency, line.at.isoformat(), line.status])
        return BillFile(channel=channel, business_date=business_date,
                        filename=f"{channel}-{business_date.isoformat()}.csv", media_type="text/csv",
                        content=out.getvalue().encode())

    def channel_config(self, channel: str, base_url: str) -> ChannelConfig:
        return ChannelConfig(code=channel, provider=PROVIDER, base_url=base_url,
                             settings={"sandbox": True}, credentials=credentials(channel))


async def _threaded(request: Request, call: Callable[[], Response]) -> Response:
    """Run blocking engine work off the event loop (the engine takes a lock); the request context (and so
    the realtime latency collector) goes along."""
    return await run_in_threadpool(call)


def make_sandbox() -> GenericSandbox:
    return GenericSandbox()
