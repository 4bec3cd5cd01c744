"""The sandbox server: control API, notifier retries, provider lookup, realtime middleware and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from finloop.cli import app as finloop_cli
from finloop.core.clock import FrozenClock
from finloop.payments.connectors.base import CardData, Outcome, PaymentMethod, PayRequest
from finloop.payments.connectors.sandbox import notifier
from finloop.payments.connectors.sandbox.app import InProcessSandbox, build_sandbox_app
from finloop.payments.connectors.sandbox.engine import ChannelProfile, SandboxEngine
from finloop.payments.connectors.sandbox.provider import SandboxProvider, available_providers, sandbox_provider

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument with the TestClient")

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CARD = CardData(number="4000000000000077", exp_month=12, exp_year=2030)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def box(clock: FrozenClock) -> InProcessSandbox:
    return InProcessSandbox(clock, seed=2, channels={"unionpay": "generic"})


def test_generic_provider_is_a_sandbox_provider() -> None:
    provider = sandbox_provider("generic")
    assert isinstance(provider, SandboxProvider) and provider.name == "generic"
    assert "generic" in available_providers()


@pytest.mark.parametrize("name", ["nope", "../x", "sandbox"])
def test_unknown_provider_is_a_lookup_error(name: str) -> None:
    with pytest.raises(LookupError):
        sandbox_provider(name)


def test_config_matches_the_sandbox_base_url(box: InProcessSandbox) -> None:
    config = box.config("unionpay")
    assert (config.code, config.provider, config.base_url) == ("unionpay", "generic", "http://sandbox/unionpay")
    assert set(config.credentials) == {"api_key", "api_secret"}


def test_control_sets_profile_partially_and_refuses_bad_values(box: InProcessSandbox) -> None:
    response = box.client.put("/_control/channels/unionpay/profile", json={"success_share": "0.5", "fee_fixed": 3})
    assert response.status_code == 200
    profile = box.engine.profile("unionpay")
    assert (profile.success_share, profile.fee_fixed, profile.fee_rate) == (Decimal("0.5"), 3, Decimal("0.006"))
    for bad in ({"success_share": 0.5}, {"success_share": "2"}, {"nope": 1}, {"latency_ms": [3, 2, 1]}):
        assert box.client.put("/_control/channels/unionpay/profile", json=bad).status_code == 400
    assert box.engine.profile("unionpay").success_share == Decimal("0.5")
    assert box.client.put("/_control/channels/nope/profile", json={}).status_code == 404
    listed = box.client.get("/_control/channels").json()
    assert listed["unionpay"]["provider"] == "generic" and listed["unionpay"]["profile"]["success_share"] == "0.5"


def test_control_outage_makes_the_channel_fail_over(box: InProcessSandbox) -> None:
    assert box.client.post("/_control/channels/unionpay/outages", json={"minutes": 5}).status_code == 200
    connector = box.connector("unionpay")
    result = connector.pay(PayRequest("att_1", 100, "CNY", PaymentMethod.CARD, "x", card=CARD))
    assert (result.outcome, result.retryable) == (Outcome.FAILED, True)
    assert box.client.post("/_control/advance", json={"seconds": 300}).json()["now"] == (
        T0 + timedelta(minutes=5)).isoformat()
    assert connector.pay(PayRequest("att_2", 100, "CNY", PaymentMethod.CARD, "x", card=CARD)).outcome \
        is Outcome.SUCCEEDED
    bad = box.client.post("/_control/channels/unionpay/outages", json={"start": "x", "end": "y"})
    assert bad.status_code == 400


def test_control_customer_acts_dispute_and_listings(box: InProcessSandbox) -> None:
    connector = box.connector("unionpay")
    connector.pay(PayRequest("att_1", 800, "CNY", PaymentMethod.QR, "x"))
    acted = box.client.post("/_control/channels/unionpay/payments/att_1/customer", json={"pays": True})
    assert acted.status_code == 200 and acted.json()["status"] == "succeeded"
    again = box.client.post("/_control/channels/unionpay/payments/att_1/customer", json={})
    assert again.status_code == 409
    assert box.client.post("/_control/channels/unionpay/payments/att_9/customer", json={}).status_code == 404
    dispute = box.client.post("/_control/channels/unionpay/payments/att_1/disputes",
                              json={"amount": 800, "reason": "fraudulent"})
    assert dispute.status_code == 201 and dispute.json()["amount"] == 800
    assert box.client.post("/_control/channels/unionpay/payments/att_1/disputes",
                           json={"amount": 8.0}).status_code == 400
    [tx] = box.client.get("/_control/transactions", params={"channel": "unionpay"}).json()
    assert (tx["reference"], tx["status"], tx["captured"]) == ("att_1", "succeeded", 800)
    assert len(box.client.get("/_control/disputes").json()) == 1
    assert box.client.get("/_control/time").json()["now"] == T0.isoformat()


def test_control_bill_download_is_the_providers_file(box: InProcessSandbox) -> None:
    box.connector("unionpay").pay(PayRequest("att_1", 800, "CNY", PaymentMethod.CARD, "x", card=CARD))
    response = box.client.get("/_control/channels/unionpay/bills/2026-03-02")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "att_1" in response.text
    assert box.client.get("/_control/channels/unionpay/bills/not-a-date").status_code == 422


def test_control_deliver_posts_due_notifications_through_the_app_client(clock: FrozenClock) -> None:
    posted: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(200)

    engine = SandboxEngine(clock, seed=0, profiles={"unionpay": ChannelProfile(notify_delay_seconds=(0, 0))})
    app = build_sandbox_app(engine, {"unionpay": sandbox_provider("generic")},
                            notify_client=httpx.Client(transport=httpx.MockTransport(receiver)))
    engine.pay("unionpay", reference="att_1", amount=100, currency="CNY", method="card", capture=True,
               notify_url="http://finloop.test/n", card_number=CARD.number)
    client = TestClient(app)
    assert len(client.get("/_control/notifications").json()) == 1
    assert client.post("/_control/notifications/deliver").json() == {"delivered": 1}
    assert [str(r.url) for r in posted] == ["http://finloop.test/n"] and "x-signature" in posted[0].headers


def test_deliver_due_tolerates_failures_and_gives_up_after_max_attempts(clock: FrozenClock) -> None:
    calls = 0

    def explode(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("down", request=request)

    engine = SandboxEngine(clock, profiles={"u": ChannelProfile(notify_delay_seconds=(0, 0))})
    channels = {"u": sandbox_provider("generic")}
    engine.pay("u", reference="a", amount=100, currency="CNY", method="card", capture=True, notify_url="http://x/n",
               card_number=CARD.number)
    client = httpx.Client(transport=httpx.MockTransport(explode))
    for _ in range(10):
        assert notifier.deliver_due(engine, channels, client) == 0
        clock.advance(timedelta(hours=1))
    assert calls == notifier.MAX_ATTEMPTS
    assert engine.pending_notifications() == []


def test_realtime_app_serves_with_zero_latency_profile(clock: FrozenClock) -> None:
    engine = SandboxEngine(clock, realtime=True, profiles={"u": ChannelProfile(latency_ms=(0, 0, 0))})
    box_app = build_sandbox_app(engine, {"u": sandbox_provider("generic")})
    client = TestClient(box_app, base_url="http://sandbox")
    config = sandbox_provider("generic").channel_config("u", "http://sandbox/u")
    from finloop.payments.connectors.registry import build

    connector = build(config, client)
    assert connector.pay(PayRequest("a", 100, "CNY", PaymentMethod.CARD, "x", card=CARD)).outcome is Outcome.SUCCEEDED


def test_bad_channel_name_is_refused(clock: FrozenClock) -> None:
    with pytest.raises(ValueError):
        build_sandbox_app(SandboxEngine(clock), {"_control": sandbox_provider("generic")})


def test_cli_serve_help_and_config() -> None:
    runner = CliRunner()
    result = runner.invoke(finloop_cli, ["sandbox", "serve", "--help"])
    assert result.exit_code == 0 and "--channel" in result.output and "--seed" in result.output
    result = runner.invoke(finloop_cli, ["sandbox", "config", "--channel", "unionpay=generic",
                                         "--base-url", "http://127.0.0.1:9999"])
    assert result.exit_code == 0, result.output
    [config] = json.loads(result.output)
    assert (config["code"], config["provider"], config["base_url"]) == ("unionpay", "generic",
                                                                        "http://127.0.0.1:9999/unionpay")
    assert config["credentials"] == dict(sandbox_provider("generic").channel_config("unionpay", "").credentials)


@pytest.mark.parametrize("spec", ["unionpay", "=generic", "unionpay=nope"])
def test_cli_refuses_bad_channel_specs(spec: str) -> None:
    result = CliRunner().invoke(finloop_cli, ["sandbox", "config", "--channel", spec])
    assert result.exit_code == 2
