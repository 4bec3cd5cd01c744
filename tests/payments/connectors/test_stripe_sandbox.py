"""The Stripe connector end to end against the Stripe sandbox (real wire, real signatures, shared engine)."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from finloop.core.clock import FrozenClock
from finloop.core.errors import ExternalServiceError
from finloop.payments.connectors.base import (
    BillDownloader,
    Canceller,
    Capturer,
    CaptureRequest,
    CardData,
    ChannelConfig,
    NotificationKind,
    NotificationParser,
    Outcome,
    PaymentMethod,
    PayRequest,
    Refunder,
    RefundRequest,
)
from finloop.payments.connectors.registry import build
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile, PendingNotification
from finloop.payments.connectors.stripe import wire
from finloop.payments.connectors.stripe.client import StripeConnector
from finloop.payments.connectors.stripe.sandbox import StripeSandbox, webhook_secret


@pytest.fixture
def stripe_lib():
    """The official ``stripe`` package, the independent verifier (dev extra)."""
    return pytest.importorskip("stripe")

CHANNEL = "cards"
START = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
WEBHOOK_URL = "https://platform.example/notify/cards"
GOOD_CARD = "4000000000000077"
DECLINED_CARD = "4000000000009995"   # insufficient funds
FLAKY_CARD = "4000000000000119"      # processing error


def _profile(**changes: object) -> ChannelProfile:
    base = {"success_share": Decimal(1), "notify_delay_seconds": (1, 1), "latency_ms": (1, 1, 1),
            "fee_rate": Decimal("0.029"), "fee_fixed": 30}
    base.update(changes)
    return ChannelProfile(**base)  # type: ignore[arg-type]


class World:
    def __init__(self, **profile: object) -> None:
        self.clock = FrozenClock(START)
        self.sandbox = InProcessSandbox(self.clock, seed=3, channels={CHANNEL: "stripe"},
                                        profiles={CHANNEL: _profile(**profile)})
        provider = self.sandbox.providers[CHANNEL]
        assert isinstance(provider, StripeSandbox)
        self.provider = provider
        self.config = self.sandbox.config(CHANNEL)
        self.stripe = StripeConnector(self.config, self.sandbox.client, clock=self.clock, sleep=lambda _: None)

    @property
    def engine(self):
        return self.sandbox.engine

    def pay(self, reference: str, amount: int = 8888, *, card: str = GOOD_CARD, capture: bool = True,
            currency: str = "USD"):
        return self.stripe.pay(PayRequest(
            reference=reference, amount=amount, currency=currency, method=PaymentMethod.CARD,
            description=f"Order {reference}", capture=capture, card=CardData(card, 12, 2030, "123")))

    def register_webhook(self) -> None:
        key = self.config.credentials["secret_key"]
        response = self.sandbox.client.post(f"{self.config.base_url}/v1/webhook_endpoints",
                                            headers={"Authorization": f"Bearer {key}"},
                                            data={"url": WEBHOOK_URL, "enabled_events[]": "*"})
        assert response.status_code == 200 and response.json()["secret"] == self.config.credentials["webhook_secret"]

    def webhooks(self) -> list[tuple[dict[str, str], bytes]]:
        self.clock.advance(timedelta(seconds=5))
        return [self.provider.notification(item) for item in self.engine.due_notifications()]


@pytest.fixture
def world() -> World:
    return World()


def test_registry_builds_a_connector_with_every_card_capability(world: World):
    connector = build(world.config, world.sandbox.client)
    assert isinstance(connector, StripeConnector)
    for capability in (Capturer, Canceller, Refunder, NotificationParser, BillDownloader):
        assert isinstance(connector, capability)


def test_automatic_capture_succeeds_and_query_finds_it_with_its_fee(world: World):
    result = world.pay("att_1")
    assert result.outcome is Outcome.SUCCEEDED and result.channel_ref and result.channel_ref.startswith("pi_")
    found = world.stripe.query("att_1")
    assert (found.outcome, found.channel_ref, found.reference) == (Outcome.SUCCEEDED, result.channel_ref, "att_1")
    assert (found.amount, found.captured_amount, found.currency) == (8888, 8888, "USD")
    assert found.fee == world.engine.find(CHANNEL, reference="att_1").fee == 288   # 2.9% + 30, half up
    assert found.paid_at == START
    assert world.stripe.query("att_nothing").outcome is Outcome.NOT_FOUND


def test_manual_capture_then_partial_capture(world: World):
    authorised = world.pay("att_auth", capture=False)
    assert authorised.outcome is Outcome.AUTHORIZED
    assert world.stripe.query("att_auth").outcome is Outcome.AUTHORIZED
    captured = world.stripe.capture(CaptureRequest(reference="att_auth", channel_ref=authorised.channel_ref or "",
                                                   amount=6000, currency="USD"))
    assert (captured.outcome, captured.amount) == (Outcome.SUCCEEDED, 6000)
    found = world.stripe.query("att_auth")
    assert (found.outcome, found.amount, found.captured_amount) == (Outcome.SUCCEEDED, 8888, 6000)
    # A retried capture replays the saved answer; capturing again differently is refused.
    again = world.stripe.capture(CaptureRequest(reference="att_auth", channel_ref=authorised.channel_ref or "",
                                                amount=6000, currency="USD"))
    assert again.outcome is Outcome.SUCCEEDED
    other = world.stripe.capture(CaptureRequest(reference="att_auth", channel_ref=authorised.channel_ref or "",
                                                amount=100, currency="USD"))
    assert (other.outcome, other.error_code, other.retryable) == (
        Outcome.FAILED, "payment_intent_unexpected_state", False)


def test_cancel_voids_an_authorisation_and_refuses_a_captured_payment(world: World):
    authorised = world.pay("att_void", capture=False)
    cancelled = world.stripe.cancel("att_void", authorised.channel_ref)
    assert cancelled.outcome is Outcome.CANCELED
    assert world.stripe.query("att_void").outcome is Outcome.CANCELED

    world.pay("att_paid")
    refused = world.stripe.cancel("att_paid", None)   # no channel_ref: found by search
    assert (refused.outcome, refused.error_code) == (Outcome.FAILED, "payment_intent_unexpected_state")
    assert world.stripe.cancel("att_never", None).outcome is Outcome.NOT_FOUND


def test_decline_is_a_402_card_error_not_retryable(world: World):
    result = world.pay("att_poor", card=DECLINED_CARD)
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.DECLINED, "insufficient_funds", False)
    assert result.channel_ref and result.channel_ref.startswith("pi_")
    found = world.stripe.query("att_poor")
    assert (found.outcome, found.error_code) == (Outcome.DECLINED, "insufficient_funds")


def test_processing_error_is_retryable(world: World):
    result = world.pay("att_flaky", card=FLAKY_CARD)
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.FAILED, "processing_error", True)


def test_idempotency_key_makes_a_retried_create_charge_once(world: World):
    first = world.pay("att_idem")
    second = world.pay("att_idem")
    assert second.outcome is Outcome.SUCCEEDED and second.channel_ref == first.channel_ref
    assert [tx.reference for tx in world.engine.transactions(CHANNEL)] == ["att_idem"]
    reused = world.pay("att_idem", amount=100)
    assert (reused.outcome, reused.error_code, reused.retryable) == (Outcome.FAILED, "idempotency_error", False)


def test_wrong_secret_key_is_refused(world: World):
    config = ChannelConfig(code=CHANNEL, provider="stripe", base_url=world.config.base_url,
                           credentials={"secret_key": "sk_test_wrong", "webhook_secret": "whsec_x"})
    result = StripeConnector(config, world.sandbox.client, clock=world.clock).pay(
        PayRequest(reference="att_key", amount=100, currency="USD", method=PaymentMethod.CARD, description="x",
                   card=CardData(GOOD_CARD, 1, 2030)))
    assert (result.outcome, result.retryable) == (Outcome.FAILED, False)
    assert world.engine.find(CHANNEL, reference="att_key") is None


def _refund(refund_reference: str, amount: int, reference: str = "att_r", channel_ref: str | None = None):
    return RefundRequest(refund_reference=refund_reference, reference=reference, channel_ref=channel_ref,
                         amount=amount, payment_amount=8888, currency="USD", reason="requested_by_customer")


def test_partial_refunds_and_refund_queries(world: World):
    paid = world.pay("att_r")
    first = world.stripe.refund(_refund("rf_1", 1000, channel_ref=paid.channel_ref))
    assert (first.outcome, first.amount, first.refund_reference) == (Outcome.SUCCEEDED, 1000, "rf_1")
    assert first.channel_refund_ref and first.channel_refund_ref.startswith("re_")
    second = world.stripe.refund(_refund("rf_2", 2500))   # found by search
    assert second.outcome is Outcome.SUCCEEDED
    repeated = world.stripe.refund(_refund("rf_1", 1000, channel_ref=paid.channel_ref))
    assert repeated.channel_refund_ref == first.channel_refund_ref
    assert world.engine.find(CHANNEL, reference="att_r").refunded == 3500

    queried = world.stripe.query_refund("rf_2", "att_r")
    assert (queried.outcome, queried.amount, queried.channel_refund_ref) == (
        Outcome.SUCCEEDED, 2500, second.channel_refund_ref)
    assert world.stripe.query_refund("rf_none", "att_r").outcome is Outcome.NOT_FOUND
    assert world.stripe.query_refund("rf_1", "att_none").outcome is Outcome.NOT_FOUND

    too_much = world.stripe.refund(_refund("rf_3", 6000, channel_ref=paid.channel_ref))
    assert (too_much.outcome, too_much.error_code, too_much.retryable) == (
        Outcome.FAILED, "amount_too_large", False)


def test_async_refund_is_processing_then_succeeds():
    world = World(refund_async=True, refund_delay_seconds=(30, 30))
    paid = world.pay("att_r")
    pending = world.stripe.refund(_refund("rf_a", 800, channel_ref=paid.channel_ref))
    assert pending.outcome is Outcome.PROCESSING
    world.clock.advance(timedelta(seconds=31))
    assert world.stripe.query_refund("rf_a", "att_r").outcome is Outcome.SUCCEEDED


def test_outage_is_a_5xx_and_unknown():
    world = World()
    world.engine.add_outage(CHANNEL, START, START + timedelta(minutes=1))
    result = world.pay("att_down")
    assert (result.outcome, result.retryable) == (Outcome.UNKNOWN, True)
    assert world.stripe.query("att_down").outcome is Outcome.UNKNOWN


def test_rate_limit_is_retryable_failure(world: World):
    limited = StripeConnector(world.config, httpx.Client(transport=httpx.MockTransport(
        lambda request: httpx.Response(429, json={"error": {"type": "invalid_request_error", "code": "rate_limit",
                                                            "message": "Too many requests"}}))), clock=world.clock)
    result = limited.pay(PayRequest(reference="a", amount=100, currency="USD", method=PaymentMethod.CARD,
                                    description="x", card=CardData(GOOD_CARD, 1, 2030)))
    assert (result.outcome, result.error_code, result.retryable) == (Outcome.FAILED, "rate_limit", True)


def test_client_timeout_is_unknown_and_never_shows_the_card(world: World, caplog: pytest.LogCaptureFixture):
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    caplog.set_level(logging.DEBUG)
    slow = StripeConnector(world.config, httpx.Client(transport=httpx.MockTransport(hang)), clock=world.clock)
    result = slow.pay(PayRequest(reference="a", amount=100, currency="USD", method=PaymentMethod.CARD,
                                 description="x", card=CardData(GOOD_CARD, 1, 2030, "999")))
    assert (result.outcome, result.error_code) == (Outcome.UNKNOWN, "timeout")
    assert GOOD_CARD not in repr(result) and GOOD_CARD not in caplog.text


def test_timed_out_create_that_succeeded_is_unknown_then_found():
    world = World(timeout_share=Decimal(1), timeout_success_share=Decimal(1))
    lost = world.pay("att_lost")
    assert (lost.outcome, lost.error_code) == (Outcome.UNKNOWN, "http_504")
    world.engine.configure(CHANNEL, _profile())
    found = world.stripe.query("att_lost")
    assert found.outcome is Outcome.SUCCEEDED and found.channel_ref
    # Retrying the create with the same Idempotency-Key shows the same PaymentIntent, charged once.
    again = world.pay("att_lost")
    assert (again.outcome, again.channel_ref) == (Outcome.SUCCEEDED, found.channel_ref)
    assert len(world.engine.transactions(CHANNEL)) == 1


def test_card_number_never_appears_in_results(world: World):
    results = [world.pay("att_c1"), world.pay("att_c2", card=DECLINED_CARD), world.stripe.query("att_c1")]
    for result in results:
        text = json.dumps(result.raw, default=str) + repr(result)
        assert GOOD_CARD not in text and DECLINED_CARD not in text and "_secret_" not in text


def test_webhooks_verify_with_the_official_library_and_parse(world: World, stripe_lib):
    world.register_webhook()
    paid = world.pay("att_hook")
    world.stripe.refund(_refund("rf_hook", 1500, reference="att_hook", channel_ref=paid.channel_ref))
    world.engine.open_dispute(CHANNEL, "att_hook", 7388, "fraudulent")
    sent = world.webhooks()
    assert len(sent) == 3
    wall_clock = build(world.config, world.sandbox.client)
    assert isinstance(wall_clock, StripeConnector)
    notifications = []
    for headers, body in sent:
        header = headers["Stripe-Signature"]
        assert stripe_lib.WebhookSignature.verify_header(body, header, webhook_secret(CHANNEL), tolerance=300)
        with pytest.raises(stripe_lib.SignatureVerificationError):
            stripe_lib.WebhookSignature.verify_header(body + b" ", header, webhook_secret(CHANNEL))
        # Webhooks are signed in wall-clock time, as a registry-built connector (system clock) checks them.
        notifications.append(wall_clock.parse_notification(headers, body))
    by_kind = {n.kind: n for n in notifications}
    payment = by_kind[NotificationKind.PAYMENT].payment
    assert payment is not None and (payment.outcome, payment.reference, payment.channel_ref) == (
        Outcome.SUCCEEDED, "att_hook", paid.channel_ref)
    refund = by_kind[NotificationKind.REFUND].refund
    assert refund is not None and (refund.outcome, refund.refund_reference, refund.amount) == (
        Outcome.SUCCEEDED, "rf_hook", 1500)
    dispute = by_kind[NotificationKind.DISPUTE].dispute
    assert dispute is not None
    assert (dispute["reference"], dispute["channel_ref"], dispute["amount"], dispute["currency"],
            dispute["reason"]) == ("att_hook", paid.channel_ref, 7388, "USD", "fraudulent")
    assert dispute["evidence_due_by"] == START + timedelta(days=7)
    assert json.loads(sent[0][1])["type"] == "payment_intent.succeeded"


def test_stale_webhook_is_refused(world: World):
    world.provider.clock = world.clock   # sign in the test's frozen time
    world.register_webhook()
    world.pay("att_stale")
    [(headers, body)] = world.webhooks()
    world.clock.advance(timedelta(seconds=301))
    with pytest.raises(Exception, match="tolerance"):
        world.stripe.parse_notification(headers, body)


def test_failed_payment_webhook(world: World):
    world.provider.clock = world.clock
    world.pay("att_fail_hook", card=DECLINED_CARD)
    failed = world.engine.find(CHANNEL, reference="att_fail_hook")
    item = PendingNotification(id="ntf_x", channel=CHANNEL, kind="payment", url=WEBHOOK_URL, due_at=START,
                               transaction=failed)
    headers, body = world.provider.notification(item)
    notification = world.stripe.parse_notification(headers, body)
    assert json.loads(body)["type"] == "payment_intent.payment_failed"
    assert notification.payment is not None and notification.payment.outcome is Outcome.DECLINED


def test_balance_report_downloads_in_stripe_layout(world: World):
    world.pay("att_b1", amount=10000)
    paid = world.pay("att_b2", amount=2050)
    world.stripe.refund(_refund("rf_b", 550, reference="att_b2", channel_ref=paid.channel_ref))
    with pytest.raises(ExternalServiceError):
        world.stripe.download_bill(date(2026, 1, 15))   # the day is not over yet
    world.clock.advance(timedelta(days=1))
    bill = world.stripe.download_bill(date(2026, 1, 15))
    assert bill.channel == CHANNEL and bill.media_type == "text/csv" and bill.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(bill.content.decode())))
    assert tuple(rows[0]) == wire.REPORT_COLUMNS
    assert [(r["reporting_category"], r["payment_metadata[reference]"], r["gross"], r["fee"], r["net"])
            for r in rows] == [
        ("charge", "att_b1", "100.00", "3.20", "96.80"),
        ("charge", "att_b2", "20.50", "0.89", "19.61"),
        ("refund", "att_b2", "-5.50", "-0.23", "-5.27"),  # the fee share returned, rounded down
    ]
    assert rows[2]["refund_metadata[reference]"] == "rf_b" and rows[2]["payment_intent_id"] == paid.channel_ref
    assert rows[0]["currency"] == "usd" and rows[0]["created_utc"] == "2026-01-15 10:00:00"


def test_jpy_amounts_cross_unscaled(world: World):
    result = world.pay("att_yen", amount=1500, currency="JPY")
    assert result.outcome is Outcome.SUCCEEDED
    assert world.engine.find(CHANNEL, reference="att_yen").amount == 1500
    assert world.stripe.query("att_yen").amount == 1500
