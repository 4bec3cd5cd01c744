"""End to end through the WeChat Pay sandbox: the connector speaks the v3 wire over HTTP to the in-process
sandbox app, which verifies its signatures, drives the shared engine and signs every answer."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from finloop.core.clock import FrozenClock
from finloop.payments.connectors.base import (
    InvalidSignature,
    NotificationKind,
    Outcome,
    PaymentMethod,
    PayRequest,
    RefundRequest,
)
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile, PendingNotification, TxStatus
from finloop.payments.connectors.sandbox.provider import SandboxProvider, sandbox_provider
from finloop.payments.connectors.wechat import signing, wire
from finloop.payments.connectors.wechat.client import WechatConnector
from finloop.payments.connectors.wechat.sandbox import WechatSandbox, make_sandbox

CHANNEL = "wxpay"
NOTIFY_URL = "https://finloop.example/v1/notifications/wxpay"


def calm(**changes: object) -> ChannelProfile:
    """Everything succeeds; customers act only when told to (or after an hour). A new profile each time:
    outages are added to a profile's list."""
    values: dict[str, object] = {"success_share": Decimal(1), "customer_pays_share": Decimal(1),
                                 "customer_delay_seconds": (3600, 3600), "notify_delay_seconds": (1, 1),
                                 "latency_ms": (1, 1, 1)}
    values.update(changes)
    return ChannelProfile(**values)  # type: ignore[arg-type]


@pytest.fixture
def box(clock: FrozenClock) -> InProcessSandbox:
    return InProcessSandbox(clock, seed=3, channels={CHANNEL: "wechat"}, profiles={CHANNEL: calm()})


@pytest.fixture
def connector(box: InProcessSandbox, clock: FrozenClock) -> WechatConnector:
    """Built on the sandbox's credentials with the real freshness window and the test's clock."""
    config = box.config(CHANNEL)
    strict = replace(config, settings={**config.settings, "max_clock_skew_seconds": 300})
    return WechatConnector(strict, box.client, clock=clock)


def pay_request(reference: str, amount: int = 1234, method: PaymentMethod = PaymentMethod.QR,
                **changes: object) -> PayRequest:
    values: dict[str, object] = {"reference": reference, "amount": amount, "currency": "CNY", "method": method,
                                 "description": "Jasmine tea", "notify_url": NOTIFY_URL, "client_ip": "10.0.0.1"}
    values.update(changes)
    return PayRequest(**values)  # type: ignore[arg-type]


def paid(box: InProcessSandbox, connector: WechatConnector, reference: str, amount: int = 1234) -> None:
    assert connector.pay(pay_request(reference, amount)).outcome is Outcome.REQUIRES_ACTION
    box.engine.customer_acts(CHANNEL, reference)


def notifications(box: InProcessSandbox, clock: FrozenClock) -> list[PendingNotification]:
    clock.advance(timedelta(seconds=2))
    return box.engine.due_notifications()


def refund_request(reference: str, refund_reference: str, amount: int, payment_amount: int = 1234) -> RefundRequest:
    return RefundRequest(refund_reference=refund_reference, reference=reference, channel_ref=None, amount=amount,
                         payment_amount=payment_amount, currency="CNY", notify_url=NOTIFY_URL)


def provider(box: InProcessSandbox) -> SandboxProvider:
    return box.providers[CHANNEL]


# ------------------------------------------------------------------------------------------ the provider


def test_make_sandbox_is_a_sandbox_provider_with_matching_keys() -> None:
    sandbox = make_sandbox()
    assert isinstance(sandbox, SandboxProvider)
    assert sandbox.name == "wechat"
    assert isinstance(sandbox_provider("wechat"), WechatSandbox)
    config = sandbox.channel_config(CHANNEL, "http://sandbox/wxpay")
    assert (config.provider, config.base_url) == ("wechat", "http://sandbox/wxpay")
    platform_private = signing.load_private_key(sandbox.keys.platform_private_key)
    platform_public = signing.load_public_key(config.credentials["platform_public_key"])
    assert signing.verify(platform_public, b"x\n", signing.sign(platform_private, b"x\n"))
    assert len(config.credentials["api_v3_key"]) == 32


def test_sandbox_credentials_are_stable_and_per_channel() -> None:
    """A restarted sandbox still matches a registered channel; two channels never share an APIv3 key."""
    first = make_sandbox().channel_config("wxpay", "http://sandbox/wxpay")
    again = make_sandbox().channel_config("wxpay", "http://sandbox/wxpay")
    other = make_sandbox().channel_config("wxpay2", "http://sandbox/wxpay2")
    assert first == again
    assert first.credentials["api_v3_key"] != other.credentials["api_v3_key"]


# ------------------------------------------------------------------------------------------ QR, start to end


def test_qr_payment_from_code_to_notification(box: InProcessSandbox, connector: WechatConnector,
                                              clock: FrozenClock) -> None:
    result = connector.pay(pay_request("att_qr_1"))
    assert result.outcome is Outcome.REQUIRES_ACTION
    assert result.action is not None and result.action.type == "qr_code"
    assert result.action.qr_code is not None and result.action.qr_code.startswith("weixin://wxpay/bizpayurl?pr=")

    waiting = connector.query("att_qr_1")
    assert (waiting.outcome, waiting.amount, waiting.captured_amount) == (Outcome.REQUIRES_ACTION, 1234, 0)

    box.engine.customer_acts(CHANNEL, "att_qr_1")
    done = connector.query("att_qr_1")
    tx = box.engine.find(CHANNEL, "att_qr_1")
    assert tx is not None
    assert (done.outcome, done.channel_ref, done.captured_amount, done.paid_at) == (
        Outcome.SUCCEEDED, tx.channel_ref, 1234, clock.now())

    [item] = notifications(box, clock)
    headers, body = provider(box).notification(item)
    assert json.loads(body)["event_type"] == "TRANSACTION.SUCCESS"
    notification = connector.parse_notification(headers, body)
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.notification_id == item.id
    assert notification.payment is not None
    assert (notification.payment.outcome, notification.payment.reference, notification.payment.amount) == (
        Outcome.SUCCEEDED, "att_qr_1", 1234)


def test_repeated_pay_with_the_same_reference_gives_the_same_code(connector: WechatConnector) -> None:
    first = connector.pay(pay_request("att_qr_2"))
    again = connector.pay(pay_request("att_qr_2"))
    assert first.action is not None and again.action is not None
    assert first.action.qr_code == again.action.qr_code


def test_same_reference_with_another_amount_is_refused(connector: WechatConnector) -> None:
    connector.pay(pay_request("att_qr_3"))
    result = connector.pay(pay_request("att_qr_3", amount=999))
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.FAILED, "OUT_TRADE_NO_USED", False)


def test_paying_an_already_paid_reference_is_unknown_then_query_says_succeeded(
        box: InProcessSandbox, connector: WechatConnector) -> None:
    paid(box, connector, "att_qr_4")
    result = connector.pay(pay_request("att_qr_4"))
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, "ORDERPAID")
    assert connector.query("att_qr_4").outcome is Outcome.SUCCEEDED


def test_unknown_reference_is_not_found(connector: WechatConnector) -> None:
    result = connector.query("att_never")
    assert (result.outcome, result.error_code) == (Outcome.NOT_FOUND, "ORDER_NOT_EXIST")


# ------------------------------------------------------------------------------------------ other methods


def test_h5_app_and_mini_program_orders(connector: WechatConnector) -> None:
    h5 = connector.pay(pay_request("att_h5", method=PaymentMethod.H5))
    assert h5.action is not None and h5.action.type == "redirect"
    app = connector.pay(pay_request("att_app", method=PaymentMethod.APP))
    assert app.action is not None and app.action.app_payload is not None
    assert json.loads(app.action.app_payload)["prepayid"].startswith("wx")
    mini = connector.pay(pay_request("att_mini", method=PaymentMethod.MINI_PROGRAM, customer_ref="oUser"))
    assert mini.action is not None and mini.action.app_payload is not None
    assert json.loads(mini.action.app_payload)["package"].startswith("prepay_id=wx")
    assert connector.query("att_mini").raw["trade_type"] == "JSAPI"


def test_card_payments_are_not_supported(connector: WechatConnector) -> None:
    result = connector.pay(pay_request("att_card", method=PaymentMethod.CARD))
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.FAILED, "method_not_supported", False)
    assert connector.query("att_card").outcome is Outcome.NOT_FOUND


# ------------------------------------------------------------------------------------------ close


def test_close_an_unpaid_order(box: InProcessSandbox, connector: WechatConnector) -> None:
    connector.pay(pay_request("att_close_1"))
    assert connector.cancel("att_close_1", None).outcome is Outcome.CANCELED
    assert connector.query("att_close_1").outcome is Outcome.CANCELED
    assert connector.cancel("att_close_1", None).outcome is Outcome.CANCELED   # closing twice is fine
    again = connector.pay(pay_request("att_close_1"))
    assert (again.outcome, again.error_code) == (Outcome.FAILED, "ORDER_CLOSED")
    tx = box.engine.find(CHANNEL, "att_close_1")
    assert tx is not None and tx.status is TxStatus.CLOSED


def test_close_a_paid_order_fails(box: InProcessSandbox, connector: WechatConnector) -> None:
    paid(box, connector, "att_close_2")
    result = connector.cancel("att_close_2", None)
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.FAILED, "ORDERPAID", False)


def test_close_an_unknown_order_is_not_found(connector: WechatConnector) -> None:
    assert connector.cancel("att_nobody", None).outcome is Outcome.NOT_FOUND


# ------------------------------------------------------------------------------------------ refunds


def test_partial_refunds_up_to_the_captured_amount(box: InProcessSandbox, connector: WechatConnector,
                                                   clock: FrozenClock) -> None:
    paid(box, connector, "att_rf_1", 1000)
    notifications(box, clock)   # the payment's, out of the way
    first = connector.refund(refund_request("att_rf_1", "re_1", 300, 1000))
    second = connector.refund(refund_request("att_rf_1", "re_2", 500, 1000))
    assert (first.outcome, first.amount, second.outcome, second.amount) == (
        Outcome.SUCCEEDED, 300, Outcome.SUCCEEDED, 500)
    fee = box.engine.fee(CHANNEL, 1000)
    assert first.fee_returned is not None and second.fee_returned is not None
    assert first.fee_returned + second.fee_returned <= fee

    too_much = connector.refund(refund_request("att_rf_1", "re_3", 201, 1000))
    assert (too_much.outcome, too_much.error_code, too_much.retryable) == (Outcome.FAILED, "INVALID_REQUEST", False)

    repeated = connector.refund(refund_request("att_rf_1", "re_1", 300, 1000))
    assert (repeated.outcome, repeated.channel_refund_ref) == (Outcome.SUCCEEDED, first.channel_refund_ref)

    queried = connector.query_refund("re_2", "att_rf_1")
    assert (queried.outcome, queried.amount, queried.channel_refund_ref) == (
        Outcome.SUCCEEDED, 500, second.channel_refund_ref)
    payment = connector.query("att_rf_1")
    assert (payment.outcome, payment.raw["trade_state"]) == (Outcome.SUCCEEDED, "REFUND")

    events = [connector.parse_notification(*provider(box).notification(item)) for item in notifications(box, clock)]
    assert sorted((n.kind, n.refund.refund_reference, n.refund.outcome) for n in events if n.refund) == [
        (NotificationKind.REFUND, "re_1", Outcome.SUCCEEDED), (NotificationKind.REFUND, "re_2", Outcome.SUCCEEDED)]


def test_refund_with_a_wrong_original_total_is_refused(box: InProcessSandbox, connector: WechatConnector) -> None:
    paid(box, connector, "att_rf_2", 1000)
    result = connector.refund(refund_request("att_rf_2", "re_x", 100, 999))
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "PARAM_ERROR")


def test_refund_of_an_unpaid_order_is_refused(connector: WechatConnector) -> None:
    connector.pay(pay_request("att_rf_3"))
    result = connector.refund(refund_request("att_rf_3", "re_y", 100))
    assert (result.outcome, result.retryable) == (Outcome.FAILED, False)


def test_refund_of_an_unknown_order_and_query_of_an_unknown_refund_are_not_found(
        connector: WechatConnector) -> None:
    assert connector.refund(refund_request("att_nobody", "re_z", 100)).outcome is Outcome.NOT_FOUND
    assert connector.query_refund("re_nobody", "att_nobody").outcome is Outcome.NOT_FOUND


def test_async_refund_is_processing_then_succeeds(box: InProcessSandbox, connector: WechatConnector,
                                                  clock: FrozenClock) -> None:
    box.engine.configure(CHANNEL, calm(refund_async=True, refund_delay_seconds=(30, 30)))
    paid(box, connector, "att_rf_4")
    assert connector.refund(refund_request("att_rf_4", "re_4", 234)).outcome is Outcome.PROCESSING
    assert connector.query_refund("re_4", "att_rf_4").outcome is Outcome.PROCESSING
    clock.advance(timedelta(seconds=31))
    assert connector.query_refund("re_4", "att_rf_4").outcome is Outcome.SUCCEEDED


def test_failed_async_refund_notifies_abnormal(box: InProcessSandbox, connector: WechatConnector,
                                               clock: FrozenClock) -> None:
    box.engine.configure(CHANNEL, calm(refund_async=True, refund_delay_seconds=(30, 30),
                                          refund_failure_share=Decimal(1)))
    paid(box, connector, "att_rf_5")
    connector.refund(refund_request("att_rf_5", "re_5", 100))
    clock.advance(timedelta(seconds=31))
    refunds = [item for item in notifications(box, clock) if item.kind == "refund"]
    headers, body = provider(box).notification(refunds[0])
    assert json.loads(body)["event_type"] == "REFUND.ABNORMAL"
    notification = connector.parse_notification(headers, body)
    assert notification.refund is not None
    assert (notification.refund.outcome, notification.refund.error_code) == (Outcome.FAILED, "ABNORMAL")


# ------------------------------------------------------------------------------------------ failures


def test_outage_is_unknown_and_nothing_was_created(box: InProcessSandbox, connector: WechatConnector,
                                                   clock: FrozenClock) -> None:
    box.engine.add_outage(CHANNEL, clock.now(), clock.now() + timedelta(minutes=5))
    result = connector.pay(pay_request("att_down"))
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, "http_503")
    clock.advance(timedelta(minutes=6))
    assert connector.query("att_down").outcome is Outcome.NOT_FOUND


def test_timeout_is_unknown(box: InProcessSandbox, connector: WechatConnector, clock: FrozenClock) -> None:
    box.engine.add_outage(CHANNEL, clock.now(), clock.now() + timedelta(minutes=5), kind="timeout")
    result = connector.pay(pay_request("att_hang"))
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, "http_504")
    assert connector.query("att_hang").outcome is Outcome.UNKNOWN


def test_channel_errors_are_retryable_or_unknown_then_not_found(box: InProcessSandbox,
                                                                connector: WechatConnector) -> None:
    box.engine.configure(CHANNEL, calm(success_share=Decimal(0), decline_share=Decimal(0)))
    seen = set()
    for index in range(12):
        reference = f"att_err_{index}"
        result = connector.pay(pay_request(reference))
        seen.add(result.error_code)
        if result.outcome is Outcome.UNKNOWN:
            assert result.error_code == "http_500"
            assert connector.query(reference).outcome is Outcome.NOT_FOUND   # the order was never made
        else:
            assert (result.outcome, result.retryable) == (Outcome.FAILED, True)
            assert result.error_code in ("FREQUENCY_LIMITED", "BANKERROR")
    assert len(seen) >= 2


def test_customer_decline_shows_as_payerror(box: InProcessSandbox, connector: WechatConnector,
                                            clock: FrozenClock) -> None:
    box.engine.configure(CHANNEL, calm(success_share=Decimal(0), decline_share=Decimal(1),
                                          customer_delay_seconds=(5, 5)))
    assert connector.pay(pay_request("att_decl")).outcome is Outcome.REQUIRES_ACTION
    clock.advance(timedelta(seconds=6))
    result = connector.query("att_decl")
    assert (result.outcome, result.error_code) == (Outcome.DECLINED, "PAYERROR")
    [item] = notifications(box, clock)
    headers, body = provider(box).notification(item)
    notification = connector.parse_notification(headers, body)
    assert notification.payment is not None and notification.payment.outcome is Outcome.DECLINED


def test_a_wrong_merchant_key_is_refused_unsigned_and_read_as_unknown(box: InProcessSandbox,
                                                                      clock: FrozenClock) -> None:
    config = box.config(CHANNEL)
    other_private, _ = signing.generate_key_pair()
    forged = replace(config, credentials={**config.credentials, "merchant_private_key": other_private})
    result = WechatConnector(forged, box.client, clock=clock).pay(pay_request("att_forged"))
    assert (result.outcome, result.error_code, result.raw) == (
        Outcome.UNKNOWN, "unverified_reply", {"status": 401, "code": "SIGN_ERROR"})
    assert box.engine.find(CHANNEL, "att_forged") is None


def test_a_stale_request_is_refused_when_the_sandbox_checks_freshness(box: InProcessSandbox,
                                                                      clock: FrozenClock) -> None:
    sandbox = box.providers[CHANNEL]
    assert isinstance(sandbox, WechatSandbox)
    sandbox.check_request_freshness = True
    late = FrozenClock(clock.now() - timedelta(minutes=6))
    config = box.config(CHANNEL)
    result = WechatConnector(config, box.client, clock=late).pay(pay_request("att_late"))
    assert result.raw == {"status": 401, "code": "SIGN_ERROR"}


def test_notification_for_another_merchant_key_is_refused(box: InProcessSandbox, clock: FrozenClock,
                                                          connector: WechatConnector) -> None:
    paid(box, connector, "att_other")
    [item] = notifications(box, clock)
    foreign = WechatSandbox(keys=replace(make_sandbox().keys, platform_private_key=signing.generate_key_pair()[0]))
    headers, body = foreign.notification(item)
    with pytest.raises(InvalidSignature):
        connector.parse_notification(headers, body)


# ------------------------------------------------------------------------------------------ disputes (sandbox only)


def test_sandbox_dispute_event_parses_to_a_dispute(box: InProcessSandbox, connector: WechatConnector,
                                                   clock: FrozenClock) -> None:
    paid(box, connector, "att_dsp")
    notifications(box, clock)
    box.engine.open_dispute(CHANNEL, "att_dsp", 1234, "fraudulent")
    [item] = notifications(box, clock)
    notification = connector.parse_notification(*provider(box).notification(item))
    assert notification.kind is NotificationKind.DISPUTE
    assert notification.dispute is not None
    assert (notification.dispute["reference"], notification.dispute["amount"], notification.dispute["reason"]) == (
        "att_dsp", 1234, "fraudulent")


# ------------------------------------------------------------------------------------------ bill


def test_bill_download_parses_back_to_the_days_trades(box: InProcessSandbox, connector: WechatConnector,
                                                      clock: FrozenClock) -> None:
    paid(box, connector, "att_bill_1", 1000)
    paid(box, connector, "att_bill_2", 2550)
    connector.refund(refund_request("att_bill_1", "re_bill_1", 400, 1000))
    business_date = wire.rfc3339(clock.now())[:10]
    bill = connector.download_bill(date.fromisoformat(business_date))
    assert bill.filename == f"wechatpay_tradebill_1900000109_{business_date.replace('-', '')}.csv"
    parsed = wire.parse_trade_bill(bill.content)
    fees = {ref: box.engine.fee(CHANNEL, amount) for ref, amount in (("att_bill_1", 1000), ("att_bill_2", 2550))}
    rows = sorted((r.trade_state, r.out_trade_no, r.settlement_amount, r.refund_amount, r.fee) for r in parsed.rows)
    refund_fee = box.engine.query_refund(CHANNEL, "re_bill_1")
    assert refund_fee is not None
    assert rows == [("REFUND", "att_bill_1", 0, 400, -refund_fee.fee_returned),
                    ("SUCCESS", "att_bill_1", 1000, 0, fees["att_bill_1"]),
                    ("SUCCESS", "att_bill_2", 2550, 0, fees["att_bill_2"])]
    assert (parsed.summary.count, parsed.summary.settlement_total, parsed.summary.refund_total) == (3, 3550, 400)
    assert {r.trade_type for r in parsed.rows} == {"NATIVE"}


def test_bill_of_a_quiet_day_is_empty(connector: WechatConnector) -> None:
    bill = connector.download_bill(date(2026, 1, 1))
    assert wire.parse_trade_bill(bill.content).rows == []


# ------------------------------------------------------------------------------------------ through the registry


def test_registry_connector_works_against_the_sandbox(box: InProcessSandbox) -> None:
    """The registry's connector keeps the system clock; the sandbox's config turns freshness off for it."""
    registered = box.connector(CHANNEL)
    assert isinstance(registered, WechatConnector)
    assert registered.pay(pay_request("att_reg")).outcome is Outcome.REQUIRES_ACTION
    assert registered.query("att_reg").outcome is Outcome.REQUIRES_ACTION


def test_settings_as_text_still_build_a_connector(box: InProcessSandbox) -> None:
    config = box.config(CHANNEL)
    as_text = replace(config, settings={key: str(value) for key, value in config.settings.items()})
    assert WechatConnector(as_text, box.client).query("att_none").outcome is Outcome.NOT_FOUND
