"""Alipay RSA2 golden fixtures, checked against our code and against python-alipay-sdk as an independent verifier."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.payments.connectors.alipay import wire
from finloop.payments.connectors.alipay.client import AlipayConnector
from finloop.payments.connectors.alipay.signing import (
    NOTIFICATION_EXCLUDED,
    load_private_key,
    load_public_key,
    sign_content,
    sign_params,
    top_level_spans,
    verify_params,
    verify_response,
)
from finloop.payments.connectors.base import ChannelConfig, InvalidSignature, NotificationKind, Outcome

FIXTURES = Path(__file__).parent / "fixtures" / "alipay"
APP_ID = "2014072300007148"


def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def _connector() -> AlipayConnector:
    config = ChannelConfig(code="ali", provider="alipay", base_url="https://openapi.example/",
                           settings={"app_id": APP_ID},
                           credentials={"app_private_key": _text("app_private_key.pem"),
                                        "alipay_public_key": _text("alipay_public_key.pem")})
    return AlipayConnector(config, client=None)  # type: ignore[arg-type]  # no HTTP in these tests


def _sdk():
    alipay = pytest.importorskip("alipay")
    return alipay.AliPay(appid=APP_ID, app_notify_url=None, app_private_key_string=_text("app_private_key.pem"),
                         alipay_public_key_string=_text("alipay_public_key.pem"), sign_type="RSA2")


# ---------------------------------------------------------------------------------------- request signing


def test_request_sign_content_matches_fixture():
    fixture = json.loads(_text("request_precreate.json"))
    assert sign_content(fixture["params"]) == fixture["content"]
    # sorted by key, empty return_url and sign left out, values not URL-encoded
    assert fixture["content"].startswith("app_id=2014072300007148&biz_content={\"out_trade_no\"")
    assert "return_url" not in fixture["content"]
    assert "& 中文" in fixture["content"]


def test_request_sign_is_the_stored_golden_value():
    fixture = json.loads(_text("request_precreate.json"))
    key = load_private_key(_text("app_private_key.pem"))
    assert sign_params(fixture["params"], key) == fixture["sign"]


def test_request_sign_matches_python_alipay_sdk():
    fixture = json.loads(_text("request_precreate.json"))
    sdk = _sdk()
    assert sdk._sign(fixture["content"]) == fixture["sign"]
    params = {k: v for k, v in fixture["params"].items() if v}
    signed = dict(parse_qsl(sdk.sign_data(dict(params))))
    assert signed["sign"] == fixture["sign"]


def test_request_sign_verifies_with_app_public_key_and_tampering_fails():
    fixture = json.loads(_text("request_precreate.json"))
    public = load_public_key(_text("app_public_key.pem"))
    signed = {**fixture["params"], "sign": fixture["sign"]}
    verify_params(signed, public, ("sign",))
    for key in fixture["params"]:
        if not fixture["params"][key]:
            continue
        tampered = {**signed, key: fixture["params"][key] + "x"}
        with pytest.raises(InvalidSignature):
            verify_params(tampered, public, ("sign",))


def test_bare_base64_keys_load_like_pem():
    pem = _text("app_private_key.pem")
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    message = "a=1&b=2"
    assert sign_params({"a": "1", "b": "2"}, load_private_key(body)) == sign_params(
        {"a": "1", "b": "2"}, load_private_key(pem))
    assert sign_content({"b": "2", "a": "1"}) == message


# ---------------------------------------------------------------------------------------- notifications


def test_stored_notification_verifies_and_decodes():
    body = _text("notification_trade_success.txt").strip().encode()
    notification = _connector().parse_notification({"content-type": "application/x-www-form-urlencoded"}, body)
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.notification_id == "ac05099524730693a8b330c5ecf72da9786"
    payment = notification.payment
    assert payment is not None
    assert payment.outcome is Outcome.SUCCEEDED
    assert payment.reference == "att_01JH0000000000000000000001"
    assert payment.channel_ref == "2026011522001405661000000001"
    assert payment.amount == 8888 and payment.captured_amount == 8888 and payment.currency == "CNY"
    assert payment.paid_at is not None and payment.paid_at.isoformat() == "2026-01-15T02:05:01+00:00"
    assert "buyer_id" not in notification.raw and "sign" not in notification.raw


def test_stored_notification_verifies_with_python_alipay_sdk():
    params = dict(parse_qsl(_text("notification_trade_success.txt").strip()))
    signature = params.pop("sign")
    assert _sdk().verify(params, signature) is True


def test_refund_notification_decodes_as_refund():
    body = _text("notification_refund.txt").strip().encode()
    notification = _connector().parse_notification({}, body)
    assert notification.kind is NotificationKind.REFUND
    assert notification.refund is not None
    assert notification.refund.outcome is Outcome.SUCCEEDED
    assert notification.refund.refund_reference == "re_01JH0000000000000000000001"


@pytest.mark.parametrize("key", sorted(set(dict(parse_qsl(
    (FIXTURES / "notification_trade_success.txt").read_text().strip()))) - NOTIFICATION_EXCLUDED))
def test_tampering_any_notification_param_fails(key):
    params = dict(parse_qsl(_text("notification_trade_success.txt").strip()))
    params[key] = params[key] + "0"
    with pytest.raises(InvalidSignature):
        _connector().parse_notification({}, urlencode(params).encode())


def test_notification_with_added_param_fails():
    params = dict(parse_qsl(_text("notification_trade_success.txt").strip()))
    params["refund_fee"] = "88.88"
    with pytest.raises(InvalidSignature):
        _connector().parse_notification({}, urlencode(params).encode())


def test_notification_signed_by_another_key_fails():
    params = dict(parse_qsl(_text("notification_trade_success.txt").strip()))
    params.pop("sign")
    other = load_private_key(_text("app_private_key.pem"))
    from finloop.payments.connectors.alipay.signing import rsa2_sign
    params["sign"] = rsa2_sign(sign_content(params, NOTIFICATION_EXCLUDED), other)
    with pytest.raises(InvalidSignature):
        _connector().parse_notification({}, urlencode(params).encode())


def test_notification_for_another_app_is_refused():
    key = load_private_key(_text("alipay_private_key.pem"))
    params = dict(parse_qsl(_text("notification_trade_success.txt").strip()))
    params.pop("sign")
    params["app_id"] = "2099000000000000"
    from finloop.payments.connectors.alipay.signing import rsa2_sign
    params["sign"] = rsa2_sign(sign_content(params, NOTIFICATION_EXCLUDED), key)
    with pytest.raises(InvalidSignature, match="another app"):
        _connector().parse_notification({}, urlencode(params).encode())


def test_acknowledgement_is_plain_success():
    ack = _connector().acknowledge(True)
    assert (ack.status_code, ack.body, ack.media_type) == (200, b"success", "text/plain")
    assert _connector().acknowledge(False).body != b"success"


# ---------------------------------------------------------------------------------------- gateway replies


def test_reply_verifies_over_the_raw_substring():
    raw = _text("response_trade_query.json")
    body = verify_response(raw, "alipay.trade.query", load_public_key(_text("alipay_public_key.pem")))
    assert body["trade_status"] == "TRADE_SUCCESS"
    assert body["store_name"] == 'shop {"north"} }'


def test_reply_verifies_with_python_alipay_sdk():
    raw = _text("response_trade_query.json")
    sdk = _sdk()
    spans = top_level_spans(raw)
    assert sdk._verify(spans["alipay_trade_query_response"], json.loads(raw)["sign"]) is True


def test_tampered_reply_fails():
    raw = _text("response_trade_query.json").replace('"88.88"', '"0.01"', 1)
    with pytest.raises(InvalidSignature):
        verify_response(raw, "alipay.trade.query", load_public_key(_text("alipay_public_key.pem")))


def test_reply_for_another_method_or_unsigned_fails():
    raw = _text("response_trade_query.json")
    key = load_public_key(_text("alipay_public_key.pem"))
    with pytest.raises(InvalidSignature):
        verify_response(raw, "alipay.trade.close", key)
    with pytest.raises(InvalidSignature):
        verify_response('{"error_response":{"code":"40002","msg":"Invalid Arguments"}}', "alipay.trade.query", key)
    with pytest.raises(InvalidSignature):
        verify_response("<html>busy</html>", "alipay.trade.query", key)


def test_top_level_spans_keep_exact_text():
    raw = '{ "a" : {"x": "}{", "y": [1, 2]} , "b":"s","c":1.50 }'
    assert top_level_spans(raw) == {"a": '{"x": "}{", "y": [1, 2]}', "b": '"s"', "c": "1.50"}


# ---------------------------------------------------------------------------------------- amounts and statuses


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(["CNY", "JPY", "BHD"]))
def test_yuan_round_trip_is_exact(amount, currency):
    text = wire.to_yuan(amount, currency)
    assert wire.from_yuan(text, currency) == amount
    exponent = {"CNY": 2, "JPY": 0, "BHD": 3}[currency]
    assert Decimal(text) == Decimal(amount).scaleb(-exponent)


@pytest.mark.parametrize(("minor", "text"), [(8888, "88.88"), (1, "0.01"), (100, "1.00"), (0, "0.00")])
def test_to_yuan_formats_two_decimals(minor, text):
    assert wire.to_yuan(minor, "CNY") == text


@pytest.mark.parametrize("text", ["1.234", "abc", "NaN", "Infinity"])
def test_from_yuan_refuses_inexact_or_bad_amounts(text):
    with pytest.raises(ValueError):
        wire.from_yuan(text, "CNY")


def test_to_yuan_refuses_float():
    with pytest.raises(TypeError):
        wire.to_yuan(88.88, "CNY")  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "paid", "outcome"), [
    ("WAIT_BUYER_PAY", False, Outcome.REQUIRES_ACTION),
    ("TRADE_SUCCESS", True, Outcome.SUCCEEDED),
    ("TRADE_FINISHED", True, Outcome.SUCCEEDED),
    ("TRADE_CLOSED", False, Outcome.CANCELED),
    ("TRADE_CLOSED", True, Outcome.SUCCEEDED),   # paid, then fully refunded
    ("SOMETHING_NEW", False, Outcome.UNKNOWN),
])
def test_trade_status_mapping(status, paid, outcome):
    assert wire.trade_outcome(status, paid=paid) is outcome


@pytest.mark.parametrize(("code", "sub_code", "expected"), [
    ("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH", (Outcome.DECLINED, False)),
    ("40004", "ACQ.SYSTEM_ERROR", (Outcome.UNKNOWN, True)),
    ("20000", "isp.unknow-error", (Outcome.UNKNOWN, True)),
    ("40004", "ACQ.REQUEST_TOO_FAST", (Outcome.FAILED, True)),
    ("40004", "ACQ.TRADE_STATUS_ERROR", (Outcome.FAILED, False)),
    ("40002", "isv.invalid-signature", (Outcome.FAILED, False)),
])
def test_error_classification(code, sub_code, expected):
    assert wire.classify_error(code, sub_code) == expected
