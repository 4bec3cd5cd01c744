"""The WeChat Pay connector against recorded, signed replies (httpx MockTransport): the exact request it
sends, how it reads verified replies, and how it treats replies it cannot trust."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from finloop.core.clock import FrozenClock
from finloop.core.errors import ExternalServiceError
from finloop.payments.connectors import registry
from finloop.payments.connectors.base import (
    Canceller,
    CardData,
    InvalidSignature,
    NotificationKind,
    NotificationParser,
    Outcome,
    PaymentMethod,
    PayRequest,
    Refunder,
    RefundRequest,
)
from finloop.payments.connectors.wechat import signing
from finloop.payments.connectors.wechat.client import WechatConnector
from tests.payments.connectors.test_wechat_support import (
    GOLDEN_AT,
    golden_config,
    golden_connector,
    load,
    reply,
    settings,
    text,
)

NATIVE = load("native_pay.json")
QUERY = load("query_success.json")
PAID = load("notification_transaction_success.json")
REFUNDED = load("notification_refund_success.json")
PLATFORM_KEY = signing.load_private_key(text("platform_private_key.pem"))


def golden_pay_request(**changes: Any) -> PayRequest:
    values: dict[str, Any] = {"reference": "att_golden_0001", "amount": 1234, "currency": "CNY",
                              "method": PaymentMethod.QR, "description": "Oolong tea, 250 g",
                              "notify_url": "https://finloop.example/notify/wxpay"}
    values.update(changes)
    return PayRequest(**values)


def signed(status: int, data: dict[str, Any] | None, *, at: int | None = None) -> httpx.Response:
    """A reply as the golden platform key signs it."""
    body = json.dumps(data, separators=(",", ":")).encode() if data is not None else b""
    headers = signing.signed_headers(PLATFORM_KEY, serial=settings()["platform_serial"],
                                     timestamp=at if at is not None else int(GOLDEN_AT.timestamp()),
                                     nonce="REPLYNONCE", body=body)
    return httpx.Response(status, headers=headers, content=body)


class Recorder:
    """An httpx handler answering with ``responses`` in turn and keeping every request."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


# ------------------------------------------------------------------------------------------ the golden exchange


def test_native_pay_sends_the_golden_request_and_reads_the_signed_reply() -> None:
    recorder = Recorder(reply(NATIVE))
    result = golden_connector(recorder).pay(golden_pay_request())
    sent = recorder.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.mch.weixin.qq.com/v3/pay/transactions/native"
    assert sent.content.decode() == NATIVE["request"]["body"]
    assert sent.headers["Authorization"] == NATIVE["request"]["authorization"]
    assert sent.headers["Accept"] == "application/json"
    assert result.outcome is Outcome.REQUIRES_ACTION
    assert result.action is not None
    assert (result.action.type, result.action.qr_code) == ("qr_code", "weixin://wxpay/bizpayurl?pr=p4lpSuKzz")
    assert result.action.expires_at == GOLDEN_AT + timedelta(hours=2)


def test_query_reads_the_recorded_paid_order_without_the_payer() -> None:
    recorder = Recorder(reply(QUERY))
    clock = FrozenClock(GOLDEN_AT + timedelta(seconds=40))
    result = golden_connector(recorder, clock=clock).query("att_golden_0001")
    assert recorder.requests[0].url.raw_path.decode() == QUERY["request"]["path"]
    assert (result.outcome, result.channel_ref, result.amount, result.captured_amount) == (
        Outcome.SUCCEEDED, "4200002026030212345678901234", 1234, 1234)
    assert result.paid_at == GOLDEN_AT + timedelta(seconds=25)
    assert "payer" not in result.raw


def test_query_signs_the_path_with_its_query_string() -> None:
    recorder = Recorder(reply(QUERY))
    golden_connector(recorder, clock=FrozenClock(GOLDEN_AT + timedelta(seconds=40))).query("att_golden_0001")
    sent = recorder.requests[0]
    merchant_public = signing.load_public_key(text("merchant_public_key.pem"))
    auth = signing.verify_request(merchant_public, header=sent.headers["Authorization"], method="GET",
                                  path=QUERY["request"]["path"], body="", now=GOLDEN_AT)
    assert auth.serial_no == settings()["serial_no"]


def test_golden_payment_notification_parses_to_succeeded() -> None:
    connector = golden_connector(Recorder(), clock=FrozenClock(GOLDEN_AT + timedelta(seconds=31)))
    notification = connector.parse_notification(PAID["headers"], PAID["body"].encode())
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.notification_id == "EV-2026030217003012345"
    assert notification.payment is not None
    assert (notification.payment.outcome, notification.payment.reference, notification.payment.amount) == (
        Outcome.SUCCEEDED, "att_golden_0001", 1234)
    assert "oUpF8u" not in json.dumps(notification.raw, ensure_ascii=False)


def test_golden_refund_notification_parses_to_succeeded() -> None:
    connector = golden_connector(Recorder(), clock=FrozenClock(GOLDEN_AT + timedelta(hours=1)))
    notification = connector.parse_notification(REFUNDED["headers"], REFUNDED["body"].encode())
    assert notification.kind is NotificationKind.REFUND
    assert notification.refund is not None
    assert (notification.refund.outcome, notification.refund.refund_reference, notification.refund.amount) == (
        Outcome.SUCCEEDED, "re_golden_0001", 500)


@pytest.mark.parametrize("tamper", ["body", "timestamp", "signature", "ciphertext"])
def test_tampered_notification_raises_invalid_signature(tamper: str) -> None:
    headers = dict(PAID["headers"])
    body = PAID["body"]
    envelope = json.loads(body)
    if tamper == "body":
        body = body.replace("EV-2026030217003012345", "EV-2026030217003012346")
    elif tamper == "timestamp":
        headers["Wechatpay-Timestamp"] = str(int(headers["Wechatpay-Timestamp"]) - 1)
    elif tamper == "signature":
        headers["Wechatpay-Signature"] = NATIVE["response"]["headers"]["Wechatpay-Signature"]
    else:
        # A valid platform signature over a body whose ciphertext was altered: decryption must fail.
        ciphertext = envelope["resource"]["ciphertext"]
        envelope["resource"]["ciphertext"] = ("A" if ciphertext[0] != "A" else "B") + ciphertext[1:]
        body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
        headers = signing.signed_headers(PLATFORM_KEY, serial=settings()["platform_serial"],
                                         timestamp=int(headers["Wechatpay-Timestamp"]), nonce="N2",
                                         body=body.encode())
    connector = golden_connector(Recorder(), clock=FrozenClock(GOLDEN_AT + timedelta(seconds=31)))
    with pytest.raises(InvalidSignature):
        connector.parse_notification(headers, body.encode())


def test_replayed_old_notification_is_refused() -> None:
    connector = golden_connector(Recorder(), clock=FrozenClock(GOLDEN_AT + timedelta(hours=1)))
    with pytest.raises(InvalidSignature, match="skew"):
        connector.parse_notification(PAID["headers"], PAID["body"].encode())


def test_verified_notification_with_unknown_event_is_a_value_error() -> None:
    body = json.dumps({"id": "EV-1", "event_type": "MARKETING.NEW", "resource": {
        "algorithm": "AEAD_AES_256_GCM", "nonce": "abcdefghijkl", "associated_data": "x",
        "ciphertext": signing.encrypt(settings()["api_v3_key"], nonce="abcdefghijkl", associated_data="x",
                                      plaintext=b"{}")}}).encode()
    headers = signing.signed_headers(PLATFORM_KEY, serial=settings()["platform_serial"],
                                     timestamp=int(GOLDEN_AT.timestamp()), nonce="N", body=body)
    with pytest.raises(ValueError, match="event_type"):
        golden_connector(Recorder()).parse_notification(headers, body)


def test_acknowledgements_follow_wechat_pay() -> None:
    connector = golden_connector(Recorder())
    accepted = connector.acknowledge(True)
    assert (accepted.status_code, accepted.body) == (200, b"")
    refused = connector.acknowledge(False)
    assert refused.status_code == 500
    assert json.loads(refused.body)["code"] == "FAIL"


# ------------------------------------------------------------------------------------------ replies not to trust


@pytest.mark.parametrize(("answer", "code"), [
    (httpx.Response(500, json={"code": "SYSTEM_ERROR", "message": "busy"}), "http_500"),
    (httpx.Response(502, content=b"<html>bad gateway</html>"), "http_502"),
    (httpx.ReadTimeout("timed out"), "transport_error"),
    (httpx.RemoteProtocolError("peer closed"), "transport_error"),
])
def test_server_errors_and_failures_after_sending_are_unknown(answer: httpx.Response | Exception, code: str) -> None:
    result = golden_connector(Recorder(answer)).pay(golden_pay_request())
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, code)


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("no route")])
def test_a_connection_never_opened_is_a_retryable_failure(error: Exception) -> None:
    connector = golden_connector(Recorder(error, error, error))
    paid = connector.pay(golden_pay_request())
    assert (paid.outcome, paid.error_code, paid.retryable) == (Outcome.FAILED, "connect_error", True)
    refund = connector.refund(RefundRequest(refund_reference="re_1", reference="att_1", channel_ref=None,
                                            amount=1, payment_amount=2, currency="CNY"))
    assert (refund.outcome, refund.retryable) == (Outcome.FAILED, True)
    assert connector.query("att_1").outcome is Outcome.UNKNOWN


def test_reply_with_a_bad_signature_is_unknown() -> None:
    forged = reply(NATIVE)
    forged.headers["Wechatpay-Signature"] = QUERY["response"]["headers"]["Wechatpay-Signature"]
    result = golden_connector(Recorder(forged)).pay(golden_pay_request())
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, "unverified_reply")


def test_unsigned_decline_is_not_believed() -> None:
    unsigned = httpx.Response(403, json={"code": "NOTENOUGH", "message": "余额不足"})
    result = golden_connector(Recorder(unsigned)).pay(golden_pay_request())
    assert result.outcome is Outcome.UNKNOWN
    assert result.raw == {"status": 403, "code": "NOTENOUGH"}


def test_stale_reply_is_unknown() -> None:
    stale = signed(200, {"code_url": "weixin://x"}, at=int(GOLDEN_AT.timestamp()) - 600)
    assert golden_connector(Recorder(stale)).pay(golden_pay_request()).outcome is Outcome.UNKNOWN


def test_skew_check_can_be_turned_off_for_a_simulated_sandbox() -> None:
    stale = signed(200, {"code_url": "weixin://x"}, at=int(GOLDEN_AT.timestamp()) - 86400)
    connector = golden_connector(Recorder(stale), max_clock_skew_seconds="None")
    assert connector.pay(golden_pay_request()).outcome is Outcome.REQUIRES_ACTION


def test_signed_non_json_reply_is_unknown() -> None:
    response = signed(200, None)
    response = httpx.Response(200, headers=response.headers, content=b"")
    body = b"not json"
    headers = signing.signed_headers(PLATFORM_KEY, serial=settings()["platform_serial"],
                                     timestamp=int(GOLDEN_AT.timestamp()), nonce="N", body=body)
    result = golden_connector(Recorder(httpx.Response(200, headers=headers, content=body))).pay(golden_pay_request())
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, "invalid_reply")


# ------------------------------------------------------------------------------------------ verified refusals


@pytest.mark.parametrize(("status", "code", "outcome", "retryable"), [
    (403, "NOTENOUGH", Outcome.DECLINED, False),
    (429, "FREQUENCY_LIMITED", Outcome.FAILED, True),
    (400, "PARAM_ERROR", Outcome.FAILED, False),
    (403, "ORDERPAID", Outcome.UNKNOWN, False),
])
def test_signed_refusals_map_to_outcomes(status: int, code: str, outcome: Outcome, retryable: bool) -> None:
    result = golden_connector(Recorder(signed(status, {"code": code, "message": "m"}))).pay(golden_pay_request())
    assert (result.outcome, result.error_code, result.retryable) == (outcome, code, retryable)


@pytest.mark.parametrize(("changes", "code"), [
    ({"method": PaymentMethod.CARD, "card": CardData("4242424242424242", 12, 2030)}, "method_not_supported"),
    ({"method": PaymentMethod.WALLET}, "method_not_supported"),
    ({"currency": "USD"}, "currency_not_supported"),
    ({"capture": False}, "manual_capture_not_supported"),
    ({"notify_url": None}, "notify_url_required"),
    ({"method": PaymentMethod.MINI_PROGRAM}, "openid_required"),
])
def test_unsupported_requests_fail_before_any_call(changes: dict[str, Any], code: str) -> None:
    recorder = Recorder()
    result = golden_connector(recorder).pay(golden_pay_request(**changes))
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.FAILED, code, False)
    assert recorder.requests == []


# ------------------------------------------------------------------------------------------ other flows


def test_app_pay_returns_a_signed_invoke_payload() -> None:
    recorder = Recorder(signed(200, {"prepay_id": "wx201410272009395522657a690389285100"}))
    result = golden_connector(recorder).pay(golden_pay_request(method=PaymentMethod.APP))
    assert recorder.requests[0].url.path == "/v3/pay/transactions/app"
    assert result.action is not None and result.action.app_payload is not None
    payload = json.loads(result.action.app_payload)
    assert payload["package"] == "Sign=WXPay"
    assert (payload["partnerid"], payload["prepayid"], payload["timestamp"]) == (
        "1900000109", "wx201410272009395522657a690389285100", "1772442000")
    merchant_public = signing.load_public_key(text("merchant_public_key.pem"))
    assert signing.verify(merchant_public, signing.message(payload["appid"], payload["timestamp"],
                                                           payload["noncestr"], payload["prepayid"]), payload["sign"])


def test_mini_program_pay_sends_the_openid_and_returns_request_payment_params() -> None:
    recorder = Recorder(signed(200, {"prepay_id": "wx2"}))
    result = golden_connector(recorder).pay(golden_pay_request(method=PaymentMethod.MINI_PROGRAM,
                                                               customer_ref="oUser1"))
    assert json.loads(recorder.requests[0].content)["payer"] == {"openid": "oUser1"}
    assert result.action is not None and result.action.app_payload is not None
    payload = json.loads(result.action.app_payload)
    assert (payload["package"], payload["signType"]) == ("prepay_id=wx2", "RSA")


def test_h5_pay_redirects_and_appends_the_return_url() -> None:
    recorder = Recorder(signed(200, {"h5_url": "https://wx.tenpay.com/checkmweb?prepay_id=wx2&package=1"}))
    result = golden_connector(recorder).pay(golden_pay_request(method=PaymentMethod.H5, client_ip="1.2.3.4",
                                                               return_url="https://shop.example/done?o=1"))
    assert result.action is not None
    assert result.action.type == "redirect"
    assert result.action.redirect_url == ("https://wx.tenpay.com/checkmweb?prepay_id=wx2&package=1"
                                          "&redirect_url=https%3A%2F%2Fshop.example%2Fdone%3Fo%3D1")
    assert result.action.expires_at == GOLDEN_AT + timedelta(minutes=5)


def test_cancel_closes_with_204() -> None:
    recorder = Recorder(signed(204, None))
    result = golden_connector(recorder).cancel("att_1", None)
    assert result.outcome is Outcome.CANCELED
    assert recorder.requests[0].url.path == "/v3/pay/transactions/out-trade-no/att_1/close"
    assert json.loads(recorder.requests[0].content) == {"mchid": "1900000109"}


def test_refund_reads_the_refund_object() -> None:
    recorder = Recorder(signed(200, {"refund_id": "503", "out_refund_no": "re_1", "status": "PROCESSING",
                                     "amount": {"refund": 300, "total": 1234, "currency": "CNY"}}))
    request = RefundRequest(refund_reference="re_1", reference="att_1", channel_ref="42", amount=300,
                            payment_amount=1234, currency="CNY")
    result = golden_connector(recorder).refund(request)
    assert (result.outcome, result.channel_refund_ref, result.amount) == (Outcome.PROCESSING, "503", 300)


def test_refund_system_error_is_unknown_so_the_caller_queries() -> None:
    request = RefundRequest(refund_reference="re_1", reference="att_1", channel_ref="42", amount=300,
                            payment_amount=1234, currency="CNY")
    result = golden_connector(Recorder(signed(400, {"code": "SYSTEM_ERROR", "message": "m"}))).refund(request)
    assert (result.outcome, result.retryable) == (Outcome.UNKNOWN, True)


def test_bill_with_no_statement_is_an_empty_bill() -> None:
    recorder = Recorder(signed(400, {"code": "NO_STATEMENT_EXIST", "message": "账单文件不存在"}))
    bill = golden_connector(recorder).download_bill(GOLDEN_AT.date())
    assert recorder.requests[0].url.raw_path == b"/v3/bill/tradebill?bill_date=2026-03-02&bill_type=ALL"
    assert bill.content.decode().count("\r\n") == 3


def test_bill_with_a_wrong_hash_is_refused() -> None:
    recorder = Recorder(signed(200, {"download_url": "https://api.mch.weixin.qq.com/v3/billdownload/file?token=t",
                                     "hash_type": "SHA1", "hash_value": "0" * 40}),
                        httpx.Response(200, content=b"tampered"))
    with pytest.raises(ExternalServiceError) as raised:
        golden_connector(recorder).download_bill(GOLDEN_AT.date())
    assert raised.value.code == "bill_hash_mismatch"
    assert recorder.requests[1].headers["Authorization"].startswith("WECHATPAY2-SHA256-RSA2048 ")


# ------------------------------------------------------------------------------------------ wiring


def test_registry_builds_the_wechat_connector_with_its_capabilities() -> None:
    connector = registry.build(golden_config(), httpx.Client(transport=httpx.MockTransport(Recorder())))
    assert isinstance(connector, WechatConnector)
    assert isinstance(connector, Canceller) and isinstance(connector, Refunder)
    assert isinstance(connector, NotificationParser)
    assert "wechat" in registry.providers()


def test_missing_credentials_are_named_without_their_values() -> None:
    config = golden_config()
    broken = type(config)(code="wxpay", provider="wechat", base_url=config.base_url, settings=config.settings,
                          credentials={"api_v3_key": settings()["api_v3_key"]})
    with pytest.raises(ValueError, match="merchant_private_key, platform_public_key") as raised:
        WechatConnector(broken, httpx.Client())
    assert settings()["api_v3_key"] not in str(raised.value)
