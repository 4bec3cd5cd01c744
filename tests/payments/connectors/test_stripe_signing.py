"""Stripe webhook signatures and wire mapping, checked against golden fixtures and the official ``stripe`` library."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finloop.core.clock import FrozenClock
from finloop.payments.connectors.base import (
    CardData,
    ChannelConfig,
    InvalidSignature,
    NotificationKind,
    Outcome,
    PaymentMethod,
    PayRequest,
)
from finloop.payments.connectors.stripe import wire
from finloop.payments.connectors.stripe.client import StripeConnector
from finloop.payments.connectors.stripe.signing import build_header, compute_signature, parse_header, verify_header


@pytest.fixture
def stripe_lib():
    """The official ``stripe`` package, the independent verifier (dev extra)."""
    return pytest.importorskip("stripe")

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
SIGNATURES = json.loads((FIXTURES / "webhook_signatures.json").read_text())
SECRET = SIGNATURES["secret"]
T = SIGNATURES["timestamp"]
EVENTS = sorted(SIGNATURES["headers"])


def _payload(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _connector(at: int = T, handler=None) -> StripeConnector:
    config = ChannelConfig(code="cards", provider="stripe", base_url="https://api.stripe.example",
                           credentials={"secret_key": "sk_test_fixture", "webhook_secret": SECRET})
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(500)))
    clock = FrozenClock(datetime.fromtimestamp(at, UTC))
    return StripeConnector(config, httpx.Client(transport=transport), clock=clock)


# ---------------------------------------------------------------------------------------- signatures


@pytest.mark.parametrize("name", EVENTS)
def test_our_header_equals_the_stored_golden_header(name):
    assert build_header(SECRET, _payload(name), T) == SIGNATURES["headers"][name]


@pytest.mark.parametrize("name", EVENTS)
def test_official_library_accepts_our_header(name, stripe_lib):
    header = build_header(SECRET, _payload(name), T)
    assert stripe_lib.WebhookSignature.verify_header(_payload(name), header, SECRET) is True
    event = stripe_lib.Webhook.construct_event(_payload(name), header, SECRET, tolerance=None)
    assert event["id"].startswith("evt_")


@pytest.mark.parametrize("name", EVENTS)
def test_we_accept_a_header_built_by_the_official_library(name, stripe_lib):
    header = stripe_lib.WebhookSignature.generate_signature_header(_payload(name).decode(), SECRET, timestamp=T + 10)
    assert verify_header(_payload(name), header, SECRET, now=T + 20) == T + 10


def test_tampered_body_fails_here_and_in_the_official_library(stripe_lib):
    payload = _payload("payment_intent_succeeded.json")
    header = SIGNATURES["headers"]["payment_intent_succeeded.json"]
    tampered = payload.replace(b'"amount": 8888', b'"amount": 1', 1)
    assert tampered != payload
    with pytest.raises(InvalidSignature):
        verify_header(tampered, header, SECRET, now=T)
    with pytest.raises(stripe_lib.SignatureVerificationError):
        stripe_lib.WebhookSignature.verify_header(tampered, header, SECRET)


@pytest.mark.parametrize("header", [
    None, "", "v1=abc", f"t={T}", f"t=soon,v1={'0' * 64}", f"t={T},v1={'0' * 64}", f"t={T},v0=abc",
])
def test_malformed_or_wrong_headers_fail(header):
    with pytest.raises(InvalidSignature):
        verify_header(_payload("refund_updated.json"), header, SECRET, now=T)


def test_wrong_secret_fails():
    header = SIGNATURES["headers"]["refund_updated.json"]
    with pytest.raises(InvalidSignature):
        verify_header(_payload("refund_updated.json"), header, "whsec_other", now=T)


def test_tolerance_against_the_injected_clock():
    payload = _payload("refund_updated.json")
    header = SIGNATURES["headers"]["refund_updated.json"]
    assert verify_header(payload, header, SECRET, now=T + 300) == T
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_header(payload, header, SECRET, now=T + 301)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_header(payload, header, SECRET, now=T - 301)
    with pytest.raises(InvalidSignature):
        _connector(at=T + 301).parse_notification({"Stripe-Signature": header}, payload)


def test_any_matching_v1_entry_is_enough_during_secret_rotation():
    payload = _payload("refund_updated.json")
    header = f"t={T},v1={compute_signature('whsec_old', T, payload)},v1={compute_signature(SECRET, T, payload)},v0=x"
    assert parse_header(header)[1][1] == compute_signature(SECRET, T, payload)
    assert verify_header(payload, header, SECRET, now=T) == T


# ---------------------------------------------------------------------------------------- events


def _parse(name: str, handler=None):
    header = SIGNATURES["headers"][name]
    return _connector(handler=handler).parse_notification({"stripe-signature": header}, _payload(name))


def test_payment_intent_succeeded_event():
    notification = _parse("payment_intent_succeeded.json")
    assert notification.kind is NotificationKind.PAYMENT and notification.notification_id == "evt_1Qfixture0000"
    payment = notification.payment
    assert payment is not None
    assert (payment.outcome, payment.reference, payment.channel_ref) == (
        Outcome.SUCCEEDED, "att_01JH0000000000000000000001", "pi_3QfixtureA1b2C3")
    assert (payment.amount, payment.captured_amount, payment.currency) == (8888, 8888, "USD")
    assert "client_secret" not in json.dumps(notification.raw)


def test_payment_failed_event_is_a_decline():
    payment = _parse("payment_intent_payment_failed.json").payment
    assert payment is not None
    assert (payment.outcome, payment.error_code) == (Outcome.DECLINED, "insufficient_funds")


def test_charge_refunded_event_reports_the_newest_refund():
    notification = _parse("charge_refunded.json")
    assert notification.kind is NotificationKind.REFUND and notification.refund is not None
    refund = notification.refund
    assert (refund.outcome, refund.refund_reference, refund.channel_refund_ref, refund.amount) == (
        Outcome.SUCCEEDED, "rf_02", "re_3QfixtureR2", 2000)


def test_refund_updated_failed_event():
    refund = _parse("refund_updated.json").refund
    assert refund is not None
    assert (refund.outcome, refund.refund_reference, refund.error_code) == (
        Outcome.FAILED, "rf_03", "expired_or_canceled_card")


def test_dispute_created_event_resolves_our_reference():
    def intent(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/payment_intents/pi_3QfixtureA1b2C3"
        return httpx.Response(200, json={"id": "pi_3QfixtureA1b2C3", "object": "payment_intent",
                                         "metadata": {"reference": "att_01JH0000000000000000000001"}})

    notification = _parse("charge_dispute_created.json", intent)
    assert notification.kind is NotificationKind.DISPUTE
    assert notification.dispute == {
        "id": "dp_1QfixtureD", "reference": "att_01JH0000000000000000000001", "channel_ref": "pi_3QfixtureA1b2C3",
        "charge": "ch_3QfixtureA1b2C3", "amount": 8888, "currency": "USD", "reason": "fraudulent",
        "status": "needs_response", "evidence_due_by": datetime(2026, 1, 22, 23, 59, 59, tzinfo=UTC),
    }


def test_dispute_event_without_reachable_api_keeps_the_channel_ref():
    dispute = _parse("charge_dispute_created.json").dispute
    assert dispute is not None and dispute["reference"] is None and dispute["channel_ref"] == "pi_3QfixtureA1b2C3"


def test_acknowledgement():
    assert _connector().acknowledge(True).status_code == 200
    assert _connector().acknowledge(False).status_code == 400


# ---------------------------------------------------------------------------------------- the create request


def test_create_request_is_form_encoded_with_idempotency_key_and_card_stays_out_of_raw():
    seen: list[httpx.Request] = []
    number = "4000000000000077"

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "pi_1", "object": "payment_intent", "status": "succeeded",
                                         "amount": 1999, "currency": "eur", "client_secret": "pi_1_secret_x",
                                         "metadata": {"reference": "att_9"}})

    connector = _connector(handler=reply)
    card = CardData(number=number, exp_month=4, exp_year=2031, cvc="314")
    result = connector.pay(PayRequest(reference="att_9", amount=1999, currency="EUR", method=PaymentMethod.CARD,
                                      description="Order 9", capture=False, card=card, metadata={"order": "9"}))
    [request] = seen
    assert request.method == "POST" and request.url.path == "/v1/payment_intents"
    assert request.headers["authorization"] == "Bearer sk_test_fixture"
    assert request.headers["idempotency-key"] == "att_9"
    form = dict(parse_qsl(request.content.decode()))
    assert form == {
        "amount": "1999", "currency": "eur", "confirm": "true", "capture_method": "manual",
        "payment_method_types[0]": "card", "payment_method_data[type]": "card",
        "payment_method_data[card][number]": number, "payment_method_data[card][exp_month]": "4",
        "payment_method_data[card][exp_year]": "2031", "payment_method_data[card][cvc]": "314",
        "metadata[order]": "9", "metadata[reference]": "att_9", "description": "Order 9",
    }
    assert result.outcome is Outcome.SUCCEEDED
    assert number not in repr(result) and "314" not in json.dumps(result.raw) and "client_secret" not in result.raw


@pytest.mark.parametrize("method", [m for m in PaymentMethod if m is not PaymentMethod.CARD])
def test_non_card_methods_are_not_supported(method):
    result = _connector().pay(PayRequest(reference="a", amount=100, currency="USD", method=method, description="x"))
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.FAILED, "method_not_supported", False)


# ---------------------------------------------------------------------------------------- wire


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["USD", "JPY", "EUR", "KWD", "ISK"]))
def test_stripe_amount_round_trip(amount, currency):
    if currency == "KWD":
        amount *= 10
    assert wire.from_stripe_amount(wire.to_stripe_amount(amount, currency), currency) == amount


def test_stripe_amount_special_currencies():
    assert wire.to_stripe_amount(500, "ISK") == 50000          # Stripe takes ISK with two decimals
    assert wire.to_stripe_amount(1234, "JPY") == 1234
    with pytest.raises(ValueError):
        wire.to_stripe_amount(1235, "KWD")                      # three-decimal amounts must end in 0
    with pytest.raises(ValueError):
        wire.from_stripe_amount(50050, "ISK")
    with pytest.raises(TypeError):
        wire.to_stripe_amount(1.5, "USD")  # type: ignore[arg-type]


def test_form_encoding_round_trip():
    data = {"a": 1, "b": {"c": "x", "d": {"e": True}}, "f": ["p", "q"], "g": None}
    pairs = wire.encode_form(data)
    assert pairs == [("a", "1"), ("b[c]", "x"), ("b[d][e]", "true"), ("f[0]", "p"), ("f[1]", "q")]
    assert wire.decode_form(pairs) == {"a": "1", "b": {"c": "x", "d": {"e": "true"}}, "f": ["p", "q"]}
    assert wire.decode_form([("expand[]", "x"), ("expand[]", "y")]) == {"expand": ["x", "y"]}
    with pytest.raises(TypeError):
        wire.encode_form({"amount": 1.5})


@pytest.mark.parametrize(("intent", "expected"), [
    ({"status": "succeeded"}, (Outcome.SUCCEEDED, False)),
    ({"status": "requires_capture"}, (Outcome.AUTHORIZED, False)),
    ({"status": "requires_action"}, (Outcome.REQUIRES_ACTION, False)),
    ({"status": "processing"}, (Outcome.PROCESSING, False)),
    ({"status": "canceled"}, (Outcome.CANCELED, False)),
    ({"status": "requires_payment_method", "last_payment_error": {"type": "card_error", "code": "card_declined"}},
     (Outcome.DECLINED, False)),
    ({"status": "requires_payment_method", "last_payment_error": {"type": "card_error",
                                                                  "code": "processing_error"}},
     (Outcome.FAILED, True)),
    ({"status": "brand_new"}, (Outcome.UNKNOWN, False)),
])
def test_intent_status_mapping(intent, expected):
    assert wire.intent_outcome(intent) == expected


@pytest.mark.parametrize(("status", "error", "expected"), [
    (402, {"type": "card_error", "code": "card_declined"}, (Outcome.DECLINED, False)),
    (402, {"type": "card_error", "code": "processing_error"}, (Outcome.FAILED, True)),
    (429, {"type": "invalid_request_error", "code": "rate_limit"}, (Outcome.FAILED, True)),
    (500, {"type": "api_error"}, (Outcome.UNKNOWN, True)),
    (503, {}, (Outcome.UNKNOWN, True)),
    (409, {"type": "idempotency_error"}, (Outcome.UNKNOWN, True)),
    (400, {"type": "invalid_request_error"}, (Outcome.FAILED, False)),
    (404, {"type": "invalid_request_error", "code": "resource_missing"}, (Outcome.NOT_FOUND, False)),
])
def test_error_mapping(status, error, expected):
    assert wire.error_outcome(status, error) == expected


def test_redact_removes_secrets_and_card_data_at_any_depth():
    value = {"client_secret": "s", "a": [{"card": {"number": "4242", "cvc": "1", "last4": "4242"}}]}
    assert wire.redact(value) == {"a": [{"card": {"last4": "4242"}}]}


def test_verified_event_we_do_not_consume_raises_value_error():
    payload = json.dumps({"id": "evt_x", "object": "event", "type": "customer.created",
                          "data": {"object": {"id": "cus_1"}}}).encode()
    with pytest.raises(ValueError, match="not consumed"):
        _connector().parse_notification({"Stripe-Signature": build_header(SECRET, payload, T)}, payload)


def test_tolerance_can_be_switched_off_but_signatures_still_count():
    config = ChannelConfig(code="cards", provider="stripe", base_url="https://api.stripe.example",
                           settings={"webhook_tolerance_seconds": None},
                           credentials={"secret_key": "sk_test_fixture", "webhook_secret": SECRET})
    connector = StripeConnector(config, httpx.Client(), clock=FrozenClock(datetime(2030, 1, 1, tzinfo=UTC)))
    name = "refund_updated.json"
    assert connector.parse_notification({"Stripe-Signature": SIGNATURES["headers"][name]}, _payload(name)).refund
    with pytest.raises(InvalidSignature):
        connector.parse_notification({"Stripe-Signature": SIGNATURES["headers"][name]}, _payload(name) + b"\n")
