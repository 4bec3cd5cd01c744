"""The generic connector end to end through the in-process sandbox, and its wire mapping on bad replies."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from finloop.core.clock import FrozenClock
from finloop.core.errors import ExternalServiceError
from finloop.payments.connectors import registry
from finloop.payments.connectors.base import (
    BillDownloader,
    Canceller,
    Capturer,
    CaptureRequest,
    CardData,
    ChannelConfig,
    InvalidSignature,
    NotificationKind,
    NotificationParser,
    Outcome,
    PaymentMethod,
    PayoutRequest,
    PayoutSender,
    PayRequest,
    Refunder,
    RefundRequest,
)
from finloop.payments.connectors.generic import wire
from finloop.payments.connectors.generic.client import GenericConnector
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument with the TestClient")

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CARD = CardData(number="4000000000000077", exp_month=12, exp_year=2030, cvc="123")
NOTIFY = "http://finloop.test/notify/unionpay"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def box(clock: FrozenClock) -> InProcessSandbox:
    return InProcessSandbox(clock, seed=1, channels={"unionpay": "generic", "paypal": "generic"})


@pytest.fixture
def conn(box: InProcessSandbox) -> GenericConnector:
    connector = box.connector("unionpay")
    assert isinstance(connector, GenericConnector)
    return connector


def pay(conn: GenericConnector, reference: str, method: PaymentMethod = PaymentMethod.CARD, amount: int = 1000,
        **kwargs: object) -> object:
    card = CARD if method is PaymentMethod.CARD else None
    fields: dict[str, object] = {"card": card, "notify_url": NOTIFY}
    fields.update(kwargs)
    return conn.pay(PayRequest(reference=reference, amount=amount, currency="CNY", method=method,
                               description="tea", **fields))  # type: ignore[arg-type]


def test_registry_builds_the_generic_connector_with_every_capability(box: InProcessSandbox) -> None:
    assert "generic" in registry.providers()
    connector = registry.build(box.config("unionpay"), box.client)
    assert isinstance(connector, GenericConnector)
    for capability in (Capturer, Canceller, Refunder, NotificationParser, BillDownloader, PayoutSender):
        assert isinstance(connector, capability)


def test_card_payment_succeeds_with_fee_and_no_card_data_in_raw(conn: GenericConnector) -> None:
    result = pay(conn, "att_1")
    assert result.outcome is Outcome.SUCCEEDED and result.fee == 6 and result.channel_ref  # type: ignore[attr-defined]
    assert "4000000000000077" not in repr(result) and "123" not in json.dumps(result.raw)  # type: ignore[attr-defined]
    query = conn.query("att_1")
    assert (query.outcome, query.amount, query.captured_amount, query.currency) == (Outcome.SUCCEEDED, 1000, 1000,
                                                                                     "CNY")


@pytest.mark.parametrize(("method", "action_type", "field"), [
    (PaymentMethod.QR, "qr_code", "qr_code"), (PaymentMethod.H5, "redirect", "redirect_url"),
    (PaymentMethod.APP, "app_invoke", "app_payload"), (PaymentMethod.MINI_PROGRAM, "app_invoke", "app_payload")])
def test_customer_action_methods_require_action(conn: GenericConnector, method: PaymentMethod, action_type: str,
                                                field: str) -> None:
    result = pay(conn, "att_1", method)
    assert result.outcome is Outcome.REQUIRES_ACTION  # type: ignore[attr-defined]
    assert result.action.type == action_type and getattr(result.action, field)  # type: ignore[attr-defined]


def test_qr_checkout_page_lets_the_customer_pay(box: InProcessSandbox, conn: GenericConnector) -> None:
    result = pay(conn, "att_1", PaymentMethod.QR)
    url = result.action.qr_code  # type: ignore[attr-defined]
    assert box.client.get(url).status_code == 200
    assert box.client.post(f"{url}/pay").status_code == 200
    assert conn.query("att_1").outcome is Outcome.SUCCEEDED


def test_waiting_payment_resolves_in_simulated_time(box: InProcessSandbox, conn: GenericConnector,
                                                    clock: FrozenClock) -> None:
    box.engine.configure("unionpay", ChannelProfile(success_share=Decimal("1"), customer_pays_share=Decimal("1")))
    pay(conn, "att_1", PaymentMethod.H5)
    clock.advance(timedelta(minutes=2))
    assert conn.query("att_1").outcome is Outcome.SUCCEEDED


@pytest.mark.parametrize(("number", "outcome", "retryable", "code"), [
    ("4000000000000002", Outcome.DECLINED, False, "card_declined"),
    ("4000000000009995", Outcome.DECLINED, False, "insufficient_funds"),
    ("4000000000000119", Outcome.FAILED, True, "processing_error")])
def test_refusals_map_to_declined_or_retryable_failed(conn: GenericConnector, number: str, outcome: Outcome,
                                                      retryable: bool, code: str) -> None:
    result = pay(conn, "att_1", card=CardData(number=number, exp_month=1, exp_year=2031))
    assert (result.outcome, result.retryable, result.error_code) == (outcome, retryable, code)  # type: ignore[attr-defined]
    assert conn.query("att_1").outcome is outcome


def test_duplicate_reference_with_other_amount_fails_without_retry(conn: GenericConnector) -> None:
    assert pay(conn, "att_1").outcome is Outcome.SUCCEEDED  # type: ignore[attr-defined]
    again = pay(conn, "att_1")
    assert again.outcome is Outcome.SUCCEEDED  # type: ignore[attr-defined]
    other = pay(conn, "att_1", amount=999)
    assert (other.outcome, other.retryable, other.error_code) == (Outcome.FAILED, False, "duplicate_reference")  # type: ignore[attr-defined]


def test_query_unknown_reference_is_not_found(conn: GenericConnector) -> None:
    assert conn.query("att_nope").outcome is Outcome.NOT_FOUND


def test_authorise_capture_partial_and_refund_limits(conn: GenericConnector) -> None:
    auth = pay(conn, "att_1", capture=False)
    assert auth.outcome is Outcome.AUTHORIZED  # type: ignore[attr-defined]
    captured = conn.capture(CaptureRequest(reference="att_1", channel_ref=auth.channel_ref, amount=700,  # type: ignore[attr-defined]
                                           currency="CNY"))
    assert (captured.outcome, captured.amount) == (Outcome.SUCCEEDED, 700)
    assert conn.query("att_1").captured_amount == 700
    first = conn.refund(RefundRequest("re_1", "att_1", auth.channel_ref, 300, 700, "CNY"))  # type: ignore[attr-defined]
    second = conn.refund(RefundRequest("re_2", "att_1", auth.channel_ref, 400, 700, "CNY"))  # type: ignore[attr-defined]
    assert (first.outcome, second.outcome) == (Outcome.SUCCEEDED, Outcome.SUCCEEDED)
    over = conn.refund(RefundRequest("re_3", "att_1", auth.channel_ref, 1, 700, "CNY"))  # type: ignore[attr-defined]
    assert (over.outcome, over.retryable, over.error_code) == (Outcome.FAILED, False, "refund_exceeds_captured")
    assert (first.fee_returned or 0) + (second.fee_returned or 0) == conn.query("att_1").fee
    queried = conn.query_refund("re_2", "att_1")
    assert (queried.outcome, queried.amount) == (Outcome.SUCCEEDED, 400)
    assert conn.query_refund("re_nope", "att_1").outcome is Outcome.NOT_FOUND


def test_cancel_closes_a_waiting_payment_and_refuses_a_paid_one(conn: GenericConnector) -> None:
    pay(conn, "att_1", PaymentMethod.QR)
    assert conn.cancel("att_1", None).outcome is Outcome.CANCELED
    assert conn.query("att_1").outcome is Outcome.CANCELED
    pay(conn, "att_2")
    refused = conn.cancel("att_2", None)
    assert (refused.outcome, refused.error_code) == (Outcome.FAILED, "invalid_state")


def test_async_refund_is_processing_then_succeeded(box: InProcessSandbox, conn: GenericConnector,
                                                   clock: FrozenClock) -> None:
    box.engine.configure("unionpay", ChannelProfile(refund_async=True, refund_delay_seconds=(10, 10)))
    paid = pay(conn, "att_1")
    result = conn.refund(RefundRequest("re_1", "att_1", paid.channel_ref, 1000, 1000, "CNY"))  # type: ignore[attr-defined]
    assert result.outcome is Outcome.PROCESSING
    clock.advance(timedelta(seconds=10))
    assert conn.query_refund("re_1", "att_1").outcome is Outcome.SUCCEEDED


def test_outage_answers_503_failed_retryable(box: InProcessSandbox, conn: GenericConnector) -> None:
    box.engine.add_outage("unionpay", T0, T0 + timedelta(minutes=5))
    result = pay(conn, "att_1")
    assert (result.outcome, result.retryable) == (Outcome.FAILED, True)  # type: ignore[attr-defined]
    assert conn.query("att_1").outcome is Outcome.UNKNOWN  # the query itself cannot be answered


def test_timeout_that_succeeded_is_unknown_then_query_shows_success(box: InProcessSandbox,
                                                                     conn: GenericConnector) -> None:
    box.engine.configure("unionpay", ChannelProfile(success_share=Decimal("1"), timeout_share=Decimal("1"),
                                                    timeout_success_share=Decimal("1")))
    assert pay(conn, "att_1").outcome is Outcome.UNKNOWN  # type: ignore[attr-defined]
    box.engine.configure("unionpay", ChannelProfile())
    assert conn.query("att_1").outcome is Outcome.SUCCEEDED


def test_other_channel_on_same_sandbox_is_separate(box: InProcessSandbox, conn: GenericConnector) -> None:
    pay(conn, "att_1")
    assert box.connector("paypal").query("att_1").outcome is Outcome.NOT_FOUND


def test_wrong_api_key_fails_and_wrong_secret_is_unknown(box: InProcessSandbox) -> None:
    config = box.config("unionpay")
    bad_key = GenericConnector(ChannelConfig(config.code, "generic", config.base_url,
                                             credentials={**config.credentials, "api_key": "nope"}), box.client)
    result = bad_key.query("att_1")
    assert result.outcome is Outcome.UNKNOWN and result.error_code == "unauthenticated"
    refused = bad_key.pay(PayRequest("att_1", 100, "CNY", PaymentMethod.CARD, "x", card=CARD))
    assert (refused.outcome, refused.retryable) == (Outcome.FAILED, False)
    bad_secret = GenericConnector(ChannelConfig(config.code, "generic", config.base_url,
                                                credentials={**config.credentials, "api_secret": "nope"}), box.client)
    assert bad_secret.pay(PayRequest("att_2", 100, "CNY", PaymentMethod.CARD, "x", card=CARD)).outcome \
        is Outcome.UNKNOWN
    assert box.engine.query("unionpay", "att_2") is None  # the unsigned request never reached the engine


def _mocked(handler: Callable[[httpx.Request], httpx.Response]) -> GenericConnector:
    config = ChannelConfig("unionpay", "generic", "http://mock/unionpay",
                           credentials={"api_key": "k", "api_secret": "s"})
    return GenericConnector(config, httpx.Client(transport=httpx.MockTransport(handler)))


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_is_unknown(status: int) -> None:
    connector = _mocked(lambda request: httpx.Response(status, json={"error": {"type": "channel_error"}}))
    result = connector.pay(PayRequest("att_1", 100, "CNY", PaymentMethod.CARD, "x", card=CARD))
    assert result.outcome is Outcome.UNKNOWN
    assert connector.capture(CaptureRequest("att_1", "c", 100, "CNY")).outcome is Outcome.UNKNOWN
    assert connector.refund(RefundRequest("re", "att_1", "c", 1, 1, "CNY")).outcome is Outcome.UNKNOWN


def test_transport_error_and_timeout_are_unknown() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("reset", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    for handler in (broken, slow):
        connector = _mocked(handler)
        assert connector.pay(PayRequest("att_1", 100, "CNY", PaymentMethod.QR, "x")).outcome is Outcome.UNKNOWN
        assert connector.payout(PayoutRequest("po", 1, "CNY", "A", "1")).outcome is Outcome.UNKNOWN


def test_unsigned_or_tampered_reply_is_unknown() -> None:
    body = wire.encode({"id": "1", "reference": "att_1", "status": "succeeded"})
    good = wire.signature("s", body, 1)
    unsigned = _mocked(lambda request: httpx.Response(200, content=body))
    tampered = _mocked(lambda request: httpx.Response(200, content=body.replace(b"att_1", b"att_2"),
                                                      headers={"X-Signature": good}))
    signed = _mocked(lambda request: httpx.Response(200, content=body, headers={"X-Signature": good}))
    request = PayRequest("att_1", 100, "CNY", PaymentMethod.CARD, "x", card=CARD)
    assert unsigned.pay(request).outcome is Outcome.UNKNOWN
    assert tampered.pay(request).outcome is Outcome.UNKNOWN
    assert signed.pay(request).outcome is Outcome.SUCCEEDED


def test_request_is_signed_and_carries_the_card_only_in_the_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503)

    _mocked(handler).pay(PayRequest("att_1", 100, "CNY", PaymentMethod.CARD, "x", card=CARD))
    [request] = seen
    assert request.headers["authorization"] == "Bearer k"
    wire.verify("s", request.headers["x-signature"], request.content)
    assert json.loads(request.content)["card"]["number"] == CARD.number


class Receiver:
    """A stand-in for finloop's notification endpoint: verifies with the connector, records, acknowledges."""

    def __init__(self, connector: GenericConnector, fail_first: int = 0) -> None:
        self.connector = connector
        self.received: list[object] = []
        self.fail_first = fail_first
        app = FastAPI()

        @app.post("/notify/unionpay")
        async def notify(request: Request) -> Response:
            if self.fail_first:
                self.fail_first -= 1
                return Response(status_code=500)
            body = await request.body()
            try:
                notification = connector.parse_notification(dict(request.headers), body)
            except InvalidSignature:
                ack = connector.acknowledge(False)
            else:
                self.received.append(notification)
                ack = connector.acknowledge(True)
            return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)

        self.client = TestClient(app, base_url="http://finloop.test")


def test_notifications_payment_refund_and_dispute_are_delivered_and_verified(
        box: InProcessSandbox, conn: GenericConnector, clock: FrozenClock) -> None:
    receiver = Receiver(conn)
    paid = pay(conn, "att_1")
    conn.refund(RefundRequest("re_1", "att_1", paid.channel_ref, 200, 1000, "CNY", notify_url=NOTIFY))  # type: ignore[attr-defined]
    box.engine.open_dispute("unionpay", "att_1", 800, "fraudulent")
    clock.advance(timedelta(seconds=10))
    assert box.deliver_notifications(receiver.client) == 3
    kinds = {n.kind: n for n in receiver.received}  # type: ignore[attr-defined]
    assert kinds[NotificationKind.PAYMENT].payment.outcome is Outcome.SUCCEEDED
    assert kinds[NotificationKind.PAYMENT].payment.reference == "att_1"
    assert kinds[NotificationKind.REFUND].refund.amount == 200
    assert kinds[NotificationKind.DISPUTE].dispute["amount"] == 800
    assert kinds[NotificationKind.DISPUTE].dispute["reference"] == "att_1"


def test_failed_delivery_is_retried_later(box: InProcessSandbox, conn: GenericConnector, clock: FrozenClock) -> None:
    receiver = Receiver(conn, fail_first=1)
    pay(conn, "att_1")
    clock.advance(timedelta(seconds=10))
    assert box.deliver_notifications(receiver.client) == 0
    clock.advance(timedelta(seconds=15))
    assert box.deliver_notifications(receiver.client) == 1
    assert len(receiver.received) == 1


def test_tampered_notification_raises_invalid_signature(box: InProcessSandbox, conn: GenericConnector,
                                                        clock: FrozenClock) -> None:
    pay(conn, "att_1")
    clock.advance(timedelta(seconds=10))
    [item] = box.engine.due_notifications()
    headers, body = box.providers["unionpay"].notification(item)
    assert conn.parse_notification(headers, body).payment.outcome is Outcome.SUCCEEDED  # type: ignore[union-attr]
    with pytest.raises(InvalidSignature):
        conn.parse_notification(headers, body.replace(b'"captured_amount":1000', b'"captured_amount":9000'))
    with pytest.raises(InvalidSignature):
        conn.parse_notification({}, body)
    with pytest.raises(InvalidSignature):  # signed for another channel
        box.connector("paypal").parse_notification(headers, body)  # type: ignore[attr-defined]
    assert conn.acknowledge(True).status_code == 200 and conn.acknowledge(False).status_code == 400


def test_download_bill_csv_sums_to_payments_less_refunds(box: InProcessSandbox, conn: GenericConnector,
                                                         clock: FrozenClock) -> None:
    for i in range(5):
        pay(conn, f"att_{i}", amount=1000 + i)
    conn.refund(RefundRequest("re_1", "att_2", None, 500, 1002, "CNY"))
    bill = conn.download_bill(date(2026, 3, 2))
    assert (bill.channel, bill.media_type, bill.business_date) == ("unionpay", "text/csv", date(2026, 3, 2))
    rows = list(csv.DictReader(io.StringIO(bill.content.decode())))
    net = sum(int(r["amount"]) * (1 if r["type"] == "payment" else -1) for r in rows)
    assert net == sum(1000 + i for i in range(5)) - 500
    assert len(rows) == 6


def test_download_bill_failure_raises_retryable() -> None:
    connector = _mocked(lambda request: httpx.Response(500))
    with pytest.raises(ExternalServiceError) as error:
        connector.download_bill(date(2026, 3, 2))
    assert error.value.retryable


def test_payout_processing_then_succeeded(box: InProcessSandbox, conn: GenericConnector, clock: FrozenClock) -> None:
    box.engine.configure("unionpay", ChannelProfile(payout_success_share=Decimal("1"), payout_delay_seconds=(60, 60)))
    result = conn.payout(PayoutRequest("po_1", 5000, "CNY", "Tea House", "6222020200112233"))
    assert result.outcome is Outcome.PROCESSING and result.channel_ref
    assert "6222020200112233" not in json.dumps(result.raw)
    clock.advance(timedelta(seconds=60))
    assert conn.query_payout("po_1").outcome is Outcome.SUCCEEDED
    assert conn.query_payout("po_nope").outcome is Outcome.NOT_FOUND


def test_payout_refused_synchronously_is_declined(box: InProcessSandbox, conn: GenericConnector) -> None:
    box.engine.configure("unionpay", ChannelProfile(payout_async=False, payout_success_share=Decimal("0")))
    result = conn.payout(PayoutRequest("po_1", 5000, "CNY", "Tea House", "6222020200112233"))
    assert (result.outcome, result.retryable) == (Outcome.DECLINED, False)
