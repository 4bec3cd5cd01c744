"""The Alipay connector end to end against the Alipay sandbox (real wire, real signatures, shared engine)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from finloop.core.clock import FrozenClock
from finloop.core.errors import ExternalServiceError
from finloop.payments.connectors.alipay import wire
from finloop.payments.connectors.alipay.client import AlipayConnector
from finloop.payments.connectors.alipay.sandbox import AlipaySandbox
from finloop.payments.connectors.alipay.signing import load_private_key, verify_params
from finloop.payments.connectors.base import (
    BillDownloader,
    CardData,
    ChannelConfig,
    NotificationKind,
    Outcome,
    PaymentMethod,
    PayRequest,
    RefundRequest,
)
from finloop.payments.connectors.registry import build
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile

CHANNEL = "ali"
START = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)   # 10:00 in Shanghai
NOTIFY = "https://platform.example/notify/ali"


def _profile(**changes: object) -> ChannelProfile:
    base = {"success_share": Decimal(1), "notify_delay_seconds": (1, 1), "customer_delay_seconds": (3600, 3600),
            "customer_pays_share": Decimal(1), "latency_ms": (1, 1, 1)}
    base.update(changes)
    return ChannelProfile(**base)  # type: ignore[arg-type]


class World:
    def __init__(self, **profile: object) -> None:
        self.clock = FrozenClock(START)
        self.sandbox = InProcessSandbox(self.clock, seed=7, channels={CHANNEL: "alipay"},
                                        profiles={CHANNEL: _profile(**profile)})
        self.provider = self.sandbox.providers[CHANNEL]
        assert isinstance(self.provider, AlipaySandbox)
        self.config = self.sandbox.config(CHANNEL)
        self.alipay = AlipayConnector(self.config, self.sandbox.client, clock=self.clock)

    @property
    def engine(self):
        return self.sandbox.engine

    def pay(self, reference: str, method: PaymentMethod = PaymentMethod.QR, amount: int = 8888, **extra: object):
        request = PayRequest(reference=reference, amount=amount, currency="CNY", method=method,
                             description="Sandbox order", notify_url=NOTIFY, **extra)  # type: ignore[arg-type]
        return self.alipay.pay(request)

    def paid(self, reference: str, amount: int = 8888) -> str:
        result = self.pay(reference, amount=amount)
        assert result.outcome is Outcome.REQUIRES_ACTION
        tx = self.engine.customer_acts(CHANNEL, reference)
        return tx.channel_ref

    def notifications(self):
        self.clock.advance(timedelta(seconds=5))
        items = self.engine.due_notifications()
        return [self.alipay.parse_notification(*self.provider.notification(item)) for item in items]


@pytest.fixture
def world() -> World:
    return World()


def test_registry_builds_the_alipay_connector(world: World):
    connector = build(world.config, world.sandbox.client)
    assert isinstance(connector, AlipayConnector)
    assert isinstance(connector, BillDownloader)


def test_qr_payment_shows_a_code_then_succeeds_on_query_and_notification(world: World):
    result = world.pay("att_qr_1")
    assert result.outcome is Outcome.REQUIRES_ACTION
    assert result.action is not None and result.action.type == "qr_code" and result.action.qr_code
    assert world.alipay.query("att_qr_1").outcome is Outcome.REQUIRES_ACTION

    # The customer scans the code and pays at the sandbox cashier.
    scanned = world.sandbox.client.post(result.action.qr_code)
    assert scanned.status_code == 200 and scanned.text == "TRADE_SUCCESS"

    found = world.alipay.query("att_qr_1")
    assert found.outcome is Outcome.SUCCEEDED
    assert (found.amount, found.captured_amount, found.currency) == (8888, 8888, "CNY")
    assert found.paid_at == START and found.channel_ref
    assert "buyer_logon_id" not in found.raw and "buyer_user_id" not in found.raw

    [notification] = world.notifications()
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.payment is not None and notification.payment.outcome is Outcome.SUCCEEDED
    assert notification.payment.reference == "att_qr_1" and notification.payment.channel_ref == found.channel_ref


def test_requests_are_signed_with_sorted_params(world: World):
    seen: list[dict[str, str]] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(dict(parse_qsl(request.content.decode())))
        return httpx.Response(503)

    connector = AlipayConnector(world.config, httpx.Client(transport=httpx.MockTransport(spy)), clock=world.clock)
    assert connector.query("att_x").outcome is Outcome.UNKNOWN
    [params] = seen
    assert params["method"] == "alipay.trade.query" and params["sign_type"] == "RSA2"
    assert params["timestamp"] == "2026-01-15 10:00:00" and params["format"] == "JSON"
    app_public = load_private_key(world.provider.app_private_key_pem).public_key()
    verify_params(params, app_public, ("sign",))


def test_h5_payment_is_a_signed_redirect_and_the_trade_appears_when_opened(world: World):
    result = world.pay("att_h5_1", PaymentMethod.H5, return_url="https://shop.example/back")
    assert result.outcome is Outcome.REQUIRES_ACTION
    assert result.action is not None and result.action.type == "redirect"
    url = result.action.redirect_url
    assert url is not None and urlsplit(url).path.endswith("/gateway.do")
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["method"] == "alipay.trade.wap.pay" and params["return_url"] == "https://shop.example/back"
    assert world.alipay.query("att_h5_1").outcome is Outcome.NOT_FOUND

    page = world.sandbox.client.get(url)
    assert page.status_code == 200 and "88.88" in page.text
    assert world.alipay.query("att_h5_1").outcome is Outcome.REQUIRES_ACTION


def test_h5_redirect_with_a_tampered_amount_is_refused(world: World):
    result = world.pay("att_h5_2", PaymentMethod.H5)
    assert result.action is not None and result.action.redirect_url
    tampered = result.action.redirect_url.replace("88.88", "0.01")
    response = world.sandbox.client.get(tampered)
    assert "isv.invalid-signature" in response.text
    assert world.engine.find(CHANNEL, reference="att_h5_2") is None


def test_app_payment_returns_an_order_string_the_app_submits(world: World):
    result = world.pay("att_app_1", PaymentMethod.APP)
    assert result.outcome is Outcome.REQUIRES_ACTION
    assert result.action is not None and result.action.type == "app_invoke" and result.action.app_payload
    order = dict(parse_qsl(result.action.app_payload))
    assert order["method"] == "alipay.trade.app.pay" and order["notify_url"] == NOTIFY
    # The Alipay app posts the order string to the gateway.
    reply = world.sandbox.client.post(f"{world.config.base_url}/gateway.do", data=order)
    assert '"alipay_trade_app_pay_response"' in reply.text
    assert world.alipay.query("att_app_1").outcome is Outcome.REQUIRES_ACTION


def test_mini_program_payment_creates_a_trade(world: World):
    result = world.pay("att_mini_1", PaymentMethod.MINI_PROGRAM, customer_ref="2088102000000002")
    assert result.outcome is Outcome.REQUIRES_ACTION
    assert result.channel_ref and result.action is not None and result.action.app_payload == result.channel_ref
    missing = world.pay("att_mini_2", PaymentMethod.MINI_PROGRAM)
    assert (missing.outcome, missing.error_code) == (Outcome.FAILED, "missing_buyer_id")


@pytest.mark.parametrize("method", [PaymentMethod.CARD, PaymentMethod.WALLET])
def test_unsupported_methods_fail_without_calling(world: World, method: PaymentMethod):
    card = CardData("4242424242424242", 12, 2030, "123") if method is PaymentMethod.CARD else None
    result = world.pay("att_card", method, card=card)
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.FAILED, "method_not_supported", False)
    assert world.engine.find(CHANNEL, reference="att_card") is None


def test_non_cny_and_manual_capture_are_refused(world: World):
    request = PayRequest(reference="att_usd", amount=100, currency="USD", method=PaymentMethod.QR, description="x")
    assert world.alipay.pay(request).error_code == "currency_not_supported"
    held = world.pay("att_hold", capture=False)
    assert (held.outcome, held.error_code, held.retryable) == (Outcome.FAILED, "manual_capture_not_supported", False)


def test_close_cancels_a_waiting_trade_and_refuses_a_paid_one(world: World):
    world.pay("att_close_1")
    closed = world.alipay.cancel("att_close_1", None)
    assert closed.outcome is Outcome.CANCELED and closed.channel_ref
    assert world.alipay.query("att_close_1").outcome is Outcome.CANCELED
    # Paying again on a closed trade number.
    assert world.pay("att_close_1").outcome is Outcome.CANCELED

    world.paid("att_close_2")
    refused = world.alipay.cancel("att_close_2", None)
    assert (refused.outcome, refused.error_code, refused.retryable) == (
        Outcome.FAILED, "ACQ.TRADE_STATUS_ERROR", False)
    assert world.alipay.cancel("att_never", None).outcome is Outcome.NOT_FOUND


def test_paying_a_paid_trade_number_again_reports_the_success(world: World):
    trade_no = world.paid("att_twice")
    again = world.pay("att_twice")
    assert (again.outcome, again.channel_ref, again.error_code) == (Outcome.SUCCEEDED, trade_no,
                                                                    "ACQ.TRADE_HAS_SUCCESS")


def _refund(world: World, refund_reference: str, amount: int, reference: str = "att_ref") -> RefundRequest:
    return RefundRequest(refund_reference=refund_reference, reference=reference, channel_ref=None, amount=amount,
                         payment_amount=8888, currency="CNY", reason="customer asked")


def test_partial_refunds_then_full_refund(world: World):
    world.paid("att_ref")
    first = world.alipay.refund(_refund(world, "rf_1", 1000))
    assert (first.outcome, first.amount, first.refund_reference) == (Outcome.SUCCEEDED, 1000, "rf_1")
    second = world.alipay.refund(_refund(world, "rf_2", 2000))
    assert second.outcome is Outcome.SUCCEEDED

    queried = world.alipay.query_refund("rf_2", "att_ref")
    assert (queried.outcome, queried.amount) == (Outcome.SUCCEEDED, 2000)
    assert world.alipay.query_refund("rf_none", "att_ref").outcome is Outcome.NOT_FOUND
    assert world.alipay.query_refund("rf_1", "att_nothing").outcome is Outcome.NOT_FOUND

    # Repeating a refund number moves no money again (fund_change N) and reports the refund.
    repeated = world.alipay.refund(_refund(world, "rf_1", 1000))
    assert (repeated.outcome, repeated.amount) == (Outcome.SUCCEEDED, 1000)
    assert world.engine.find(CHANNEL, reference="att_ref").refunded == 3000

    too_much = world.alipay.refund(_refund(world, "rf_3", 6000))
    assert (too_much.outcome, too_much.error_code, too_much.retryable) == (
        Outcome.FAILED, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", False)

    rest = world.alipay.refund(_refund(world, "rf_4", 5888))
    assert rest.outcome is Outcome.SUCCEEDED
    # Fully refunded: Alipay says TRADE_CLOSED, but the payment did succeed.
    assert world.alipay.query("att_ref").outcome is Outcome.SUCCEEDED

    refund_notes = [n for n in world.notifications() if n.kind is NotificationKind.REFUND]
    assert sorted(n.refund.refund_reference for n in refund_notes if n.refund) == ["rf_1", "rf_2", "rf_4"]


def test_async_refund_is_processing_until_it_completes():
    world = World(refund_async=True, refund_delay_seconds=(60, 60))
    world.paid("att_ref")
    pending = world.alipay.refund(_refund(world, "rf_a", 500))
    assert pending.outcome is Outcome.PROCESSING
    world.clock.advance(timedelta(seconds=61))
    assert world.alipay.query_refund("rf_a", "att_ref").outcome is Outcome.SUCCEEDED


def test_outage_answers_5xx_and_the_connector_reports_unknown():
    world = World()
    world.engine.add_outage(CHANNEL, START, START + timedelta(minutes=5))
    result = world.pay("att_down")
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.UNKNOWN, "http_503", True)
    assert world.alipay.query("att_down").outcome is Outcome.UNKNOWN


def test_timed_out_create_that_succeeded_is_unknown_then_query_finds_it():
    world = World(timeout_share=Decimal(1), timeout_success_share=Decimal(1))
    result = world.pay("att_lost")
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, "http_504")
    world.engine.configure(CHANNEL, _profile())
    found = world.alipay.query("att_lost")
    assert found.outcome is Outcome.REQUIRES_ACTION and found.channel_ref


def test_client_timeout_and_refused_connection(world: World):
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    slow = AlipayConnector(world.config, httpx.Client(transport=httpx.MockTransport(timeout)), clock=world.clock)
    assert slow.pay(PayRequest(reference="a", amount=1, currency="CNY", method=PaymentMethod.QR,
                               description="x")).outcome is Outcome.UNKNOWN
    down = AlipayConnector(world.config, httpx.Client(transport=httpx.MockTransport(refused)), clock=world.clock)
    result = down.pay(PayRequest(reference="a", amount=1, currency="CNY", method=PaymentMethod.QR, description="x"))
    assert (result.outcome, result.retryable) == (Outcome.FAILED, True)


def test_system_error_is_unknown_and_rate_limit_is_retryable(world: World):
    def answer(sub_code: str, code: str):
        body = {"code": code, "msg": "x", "sub_code": sub_code, "sub_msg": "y"}
        from finloop.payments.connectors.alipay.signing import signed_response

        text = signed_response("alipay.trade.precreate", body, load_private_key(world.provider.alipay_private_key_pem))
        return AlipayConnector(world.config, httpx.Client(transport=httpx.MockTransport(
            lambda request: httpx.Response(200, text=text))), clock=world.clock)

    request = PayRequest(reference="a", amount=1, currency="CNY", method=PaymentMethod.QR, description="x")
    assert answer("ACQ.SYSTEM_ERROR", "20000").pay(request).outcome is Outcome.UNKNOWN
    limited = answer("ACQ.REQUEST_TOO_FAST", "40004").pay(request)
    assert (limited.outcome, limited.retryable) == (Outcome.FAILED, True)
    poor = answer("ACQ.BUYER_BALANCE_NOT_ENOUGH", "40004").pay(request)
    assert (poor.outcome, poor.retryable, poor.error_code) == (Outcome.DECLINED, False,
                                                              "ACQ.BUYER_BALANCE_NOT_ENOUGH")


def test_reply_signed_by_another_key_is_unknown(world: World):
    other = AlipaySandbox(alipay_private_key=world.provider.app_private_key_pem)
    config = ChannelConfig(code=CHANNEL, provider="alipay", base_url=world.config.base_url,
                           settings=world.config.settings,
                           credentials={**world.config.credentials,
                                        "alipay_public_key": other.channel_config(CHANNEL, "x")
                                        .credentials["alipay_public_key"]})
    connector = AlipayConnector(config, world.sandbox.client, clock=world.clock)
    result = connector.pay(PayRequest(reference="att_sig", amount=100, currency="CNY", method=PaymentMethod.QR,
                                      description="x"))
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, "invalid_signature")


def test_customer_abandoning_closes_the_trade(world: World):
    world.pay("att_gone")
    world.engine.customer_acts(CHANNEL, "att_gone", pays=False)
    assert world.alipay.query("att_gone").outcome is Outcome.CANCELED


def test_bill_downloads_after_the_day_in_alipay_layout(world: World):
    world.paid("att_bill_1", amount=10000)
    world.paid("att_bill_2", amount=2050)
    world.alipay.refund(_refund(world, "rf_bill", 2500, reference="att_bill_1"))
    with pytest.raises(ExternalServiceError) as not_yet:
        world.alipay.download_bill(date(2026, 1, 15))
    assert not_yet.value.code == "isp.bill_not_exist"

    world.clock.advance(timedelta(days=1))
    bill = world.alipay.download_bill(date(2026, 1, 15))
    assert bill.channel == CHANNEL and bill.business_date == date(2026, 1, 15)
    assert bill.media_type.startswith("text/csv") and bill.filename.endswith(".csv")
    text = bill.content.decode("gbk")
    lines = text.splitlines()
    assert lines[0] == "#支付宝业务明细查询"
    body = [line for line in lines if not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    assert tuple(rows[0]) == wire.BILL_COLUMNS
    by_kind = {(row["业务类型"], row["商户订单号"].strip()): row for row in rows}
    payment = by_kind[("交易", "att_bill_1")]
    assert payment["订单金额（元）"] == "100.00" and payment["服务费（元）"] == "-0.60"
    refund = by_kind[("退款", "att_bill_1")]
    assert refund["商家实收（元）"] == "-25.00" and refund["退款批次号/请求号"] == "rf_bill"
    assert payment["支付宝交易号"].strip() == refund["支付宝交易号"].strip()
    assert "#交易合计：2笔，商家实收共：120.50元" in text


def test_bill_download_link_is_tokened(world: World):
    response = world.sandbox.client.get(f"{world.config.base_url}/downloadBillFile.resource",
                                        params={"bizDates": "20260115", "token": "forged"})
    assert response.status_code == 403
