"""Pure webhook rules, checked against the standardwebhooks library as an independent verifier."""

from __future__ import annotations

import base64
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from finloop.core.errors import InvalidRequest
from finloop.webhooks import domain


def headers_now(secrets: list[str], body: str, message_id: str = "msg_01TEST") -> dict[str, str]:
    return domain.delivery_headers(secrets, message_id=message_id, sent_at=datetime.now(UTC), body=body)


def test_new_secret_is_whsec_and_32_random_bytes():
    secret = domain.new_secret(lambda n: bytes(range(n)))
    assert secret.startswith("whsec_")
    assert base64.b64decode(secret[len("whsec_"):]) == bytes(range(32))
    assert domain.new_secret() != domain.new_secret()


@given(data=st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=30), st.none()),
                            max_size=5))
def test_signature_verifies_with_the_standardwebhooks_library(data):
    secret = domain.new_secret()
    body = domain.message_body("payment.succeeded", datetime(2026, 3, 2, tzinfo=UTC), data)
    payload = Webhook(secret).verify(body.encode(), headers_now([secret], body))
    assert payload == {"type": "payment.succeeded", "timestamp": "2026-03-02T00:00:00Z", "data": data}


def test_a_tampered_body_fails_verification():
    secret = domain.new_secret()
    body = domain.message_body("payment.succeeded", datetime(2026, 3, 2, tzinfo=UTC), {"amount": 100})
    headers = headers_now([secret], body)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(body.replace("100", "900").encode(), headers)


def test_a_tampered_timestamp_or_id_fails_verification():
    secret = domain.new_secret()
    body = '{"type":"payment.failed"}'
    headers = headers_now([secret], body)
    moved = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(body, moved)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(body, {**headers, "webhook-id": "msg_01OTHER"})


def test_another_secret_fails_verification():
    body = "{}"
    with pytest.raises(WebhookVerificationError):
        Webhook(domain.new_secret()).verify(body, headers_now([domain.new_secret()], body))


def test_signature_matches_the_specification_by_hand():
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"k" * 24, b"msg_1.1700000000.{}", hashlib.sha256).digest()).decode()
    assert domain.sign(secret, message_id="msg_1", timestamp=1700000000, body="{}") == f"v1,{expected}"


def test_during_a_rotation_both_secrets_verify():
    old, new = domain.new_secret(), domain.new_secret()
    now = datetime.now(UTC)
    secrets = domain.signing_secrets(new, old, now + timedelta(hours=1), now)
    assert secrets == [new, old]
    body = '{"n":1}'
    headers = headers_now(secrets, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers) == {"n": 1}
    assert Webhook(new).verify(body, headers) == {"n": 1}


def test_after_the_grace_period_only_the_new_secret_signs():
    now = datetime.now(UTC)
    assert domain.signing_secrets("whsec_new", "whsec_old", now, now) == ["whsec_new"]
    assert domain.signing_secrets("whsec_new", None, None, now) == ["whsec_new"]


def test_headers_carry_id_and_unix_timestamp():
    at = datetime(2026, 3, 2, 9, 0, 0, 900000, tzinfo=UTC)
    headers = domain.delivery_headers(["whsec_" + base64.b64encode(b"x" * 24).decode()], message_id="msg_1",
                                      sent_at=at, body="{}")
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("url", ["https://example.com/hooks", "https://example.com:8443/h?x=1",
                                 "http://127.0.0.1:8000/h", "http://localhost/h", "http://[::1]:9/h"])
def test_accepted_urls(url):
    assert domain.check_url(url) == url


@pytest.mark.parametrize(("url", "code"), [
    ("http://example.com/hooks", "https_required"),
    ("http://10.0.0.1/hooks", "https_required"),
    ("ftp://example.com/x", "invalid_url"),
    ("example.com/hooks", "invalid_url"),
    ("https://", "invalid_url"),
    ("https://user:pass@example.com/", "invalid_url"),
    ("https://exa mple.com/", "invalid_url"),
    ("https://example.com:99999/", "invalid_url"),
    ("", "invalid_url"),
    ("https://example.com/" + "a" * 2048, "invalid_url"),
])
def test_refused_urls(url, code):
    with pytest.raises(InvalidRequest) as caught:
        domain.check_url(url)
    assert (caught.value.code, caught.value.param) == (code, "url")


def test_event_filters_are_validated_and_deduplicated():
    assert domain.check_event_types(["refund.failed", "payment.failed", "refund.failed"]) == [
        "refund.failed", "payment.failed"]
    with pytest.raises(InvalidRequest) as caught:
        domain.check_event_types(["payment.failed", "payment.exploded"])
    assert (caught.value.code, caught.value.param) == ("unknown_event_type", "event_types[1]")


@pytest.mark.parametrize(("types", "endpoint_merchant", "event_type", "event_merchant", "wanted"), [
    ([], None, "payment.succeeded", None, True),
    ([], None, "payment.succeeded", "mer_1", True),
    (["payment.failed"], None, "payment.succeeded", None, False),
    (["payment.failed", "payment.succeeded"], None, "payment.succeeded", "mer_1", True),
    ([], "mer_1", "payment.succeeded", "mer_1", True),
    ([], "mer_1", "payment.succeeded", "mer_2", False),
    ([], "mer_1", "routing.channel_health_changed", None, False),
])
def test_endpoint_wants(types, endpoint_merchant, event_type, event_merchant, wanted):
    assert domain.endpoint_wants(types, endpoint_merchant, type=event_type, merchant_id=event_merchant) is wanted


def test_retry_ladder_follows_the_schedule_and_lasts_about_three_days():
    ladder = domain.RetryLadder(jitter=0.0)
    rng = random.Random(1)
    waits = [ladder.delay(n, rng) for n in range(1, ladder.max_attempts)]
    assert waits[:6] == [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                         timedelta(hours=5), timedelta(hours=10)]
    assert ladder.max_attempts == 13
    assert timedelta(days=3) <= ladder.total() <= timedelta(days=3, hours=6)
    assert ladder.delay(50, rng) == timedelta(hours=10)


@given(failures=st.integers(min_value=1, max_value=30), seed=st.integers(0, 2**32))
def test_jitter_only_shortens_a_wait_by_at_most_a_tenth(failures, seed):
    ladder = domain.RetryLadder()
    full = domain.RETRY_SCHEDULE[min(failures, len(domain.RETRY_SCHEDULE)) - 1]
    assert full * 0.9 <= ladder.delay(failures, random.Random(seed)) <= full


@given(st.binary(max_size=4000))
def test_response_snippet_is_valid_text_of_at_most_1kb(content):
    text = domain.snippet(content)
    assert len(text.encode()) <= domain.MAX_RESPONSE_SNIPPET
    assert "\x00" not in text
    if content.isascii() and b"\x00" not in content:
        assert text == content[:1024].decode()


def test_event_data_must_be_json():
    with pytest.raises(InvalidRequest) as caught:
        domain.message_body("payment.succeeded", datetime(2026, 3, 2, tzinfo=UTC), {"at": time})
    assert caught.value.code == "invalid_event_data"
    with pytest.raises(InvalidRequest):
        domain.message_body("payment.succeeded", datetime(2026, 3, 2, tzinfo=UTC), {"x": float("nan")})
