"""Channel notifications against the in-process sandbox, across providers (generic, WeChat Pay, Stripe).

Invariants checked, each on SQLite and PostgreSQL:
- a notification is applied at most once: a re-sent one (same id) is acknowledged and changes nothing;
- order does not matter: a refund's notification before its payment's, or a stale "waiting" payment
  notification after the success, leaves the final state the channel's latest truth;
- a lost notification is made good by the query ladder (``flows.resolve_open``), not before the first rung;
- a notification whose signature does not verify is refused and changes nothing (not even the
  de-duplication record), so the genuine one still applies afterwards;
- a notification sent to another tenant's channel, or about a reference we never issued, is
  acknowledged and changes nothing;
- a lost reply is resolved before anything else: a payment that succeeded at the channel ends succeeded
  once, on that attempt; one the channel never received fails over to the next channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.ledger.models import Entry
from finloop.payments import flows, gateway
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile, PendingNotification, TxStatus
from finloop.payments.models import ChannelNotification
from finloop.payments.postings import merchant_pending_code
from tests.conftest import TenantHandle, make_tenant
from tests.payments.conftest import Shop, register_channel, tokenize

CHANNELS = {"unionpay": "generic", "paypal": "generic", "wxpay": "wechat", "stripe": "stripe"}
#: What each channel is registered to take; the fee rates order the routing (cheapest first).
METHODS = {"unionpay": ["card", "qr", "h5"], "paypal": ["card", "qr", "h5"], "wxpay": ["qr", "h5"],
           "stripe": ["card"]}
FEES = {"unionpay": "0.006", "paypal": "0.007", "wxpay": "0.005", "stripe": "0.003"}


@pytest.fixture
def sandbox(clock: FrozenClock) -> Iterator[InProcessSandbox]:
    box = InProcessSandbox(clock, seed=5, channels=CHANNELS)
    with gateway.use_http_client(box.client):
        yield box


@pytest.fixture
def shop(client: TestClient, tenant: TenantHandle, sandbox: InProcessSandbox, db: Database) -> Shop:
    channels = {code: register_channel(client, tenant, sandbox, code, methods=METHODS[code], fee_rate=FEES[code])
                for code in CHANNELS}
    sandbox.providers["stripe"].set_webhook_url(  # type: ignore[attr-defined]
        "stripe", channels["stripe"]["notification_url"])
    response = client.post("/v1/merchants", headers=tenant.headers, json={"reference": "M1", "name": "Tea House"})
    assert response.status_code == 201, response.text
    for code in CHANNELS:
        sandbox.engine.configure(code, profile())
    return Shop(tenant, response.json()["id"], channels)


def profile(**changes: Any) -> ChannelProfile:
    """Always succeeds, fast, and the customer never acts on their own (the test makes them act)."""
    base = ChannelProfile(success_share=Decimal(1), latency_ms=(1, 2, 3), customer_delay_seconds=(3_000, 3_600),
                          notify_delay_seconds=(1, 3))
    return replace(base, **changes)


def _only(client: TestClient, shop: Shop, *codes: str) -> None:
    """Leave only ``codes`` enabled, to pin a payment to one provider."""
    for code, channel in shop.channels.items():
        status = "enabled" if code in codes else "disabled"
        response = client.patch(f"/v1/channels/{channel['id']}", headers=shop.tenant.headers, json={"status": status})
        assert response.status_code == 200, response.text


def _pay(client: TestClient, shop: Shop, *, method: str = "card", amount: int = 10_000) -> dict[str, Any]:
    body: dict[str, Any] = {"merchant_id": shop.merchant_id, "amount": amount, "currency": "CNY", "method": method,
                            "confirm": True}
    if method == "card":
        body["card_id"] = tokenize(client, shop.tenant)
    response = client.post("/v1/payments", headers=shop.tenant.headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _get(client: TestClient, shop: Shop, payment_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/payments/{payment_id}", headers=shop.tenant.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _attempts(client: TestClient, shop: Shop, payment_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/payments/{payment_id}/attempts", headers=shop.tenant.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def _qr_paid(client: TestClient, shop: Shop, sandbox: InProcessSandbox, amount: int = 10_000) -> tuple[str, str]:
    """A QR payment the customer has paid at the channel; returns (payment id, attempt id)."""
    payment = _pay(client, shop, method="qr", amount=amount)
    assert payment["status"] == "requires_action", payment
    [attempt] = _attempts(client, shop, payment["id"])
    sandbox.engine.customer_acts(attempt["channel"], attempt["id"], pays=True)
    return payment["id"], attempt["id"]


def _post(client: TestClient, sandbox: InProcessSandbox, item: PendingNotification,
          tamper: bool = False) -> httpx.Response:
    headers, body = sandbox.providers[item.channel].notification(item)
    if tamper:
        body = body.replace(b"1", b"2", 1)
    response: httpx.Response = client.post(item.url, content=body, headers=headers)
    return response


def _capture_keys(db: Database, tenant_id: str, payment_id: str) -> list[str]:
    with db.uow(read_only=True) as uow:
        return list(uow.session.scalars(select(Entry.transfer_key).where(
            Entry.tenant_id == tenant_id, Entry.transfer_key.like(f"payment:{payment_id}:%"))))


def _entries(db: Database, tenant_id: str) -> int:
    with db.uow(read_only=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(Entry).where(Entry.tenant_id == tenant_id)) or 0


def _notifications(db: Database, tenant_id: str | None = None) -> int:
    with db.uow(read_only=True) as uow:
        query = select(func.count()).select_from(ChannelNotification)
        if tenant_id is not None:
            query = query.where(ChannelNotification.tenant_id == tenant_id)
        return uow.session.scalar(query) or 0


def _merchant_pending(db: Database, shop: Shop) -> int:
    from finloop.ledger import service as ledger

    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, shop.tenant.id, merchant_pending_code(shop.merchant_id), "CNY")
        return 0 if account is None else account.credits_posted - account.debits_posted


def _settled_once(client: TestClient, shop: Shop, db: Database, payment_id: str, attempt_id: str) -> None:
    payment = _get(client, shop, payment_id)
    assert payment["status"] == "succeeded", payment
    assert _capture_keys(db, shop.tenant.id, payment_id) == [f"payment:{payment_id}:{attempt_id}"]
    assert [a["status"] for a in _attempts(client, shop, payment_id)] == ["succeeded"]


# ------------------------------------------------------------------------------------------ duplicates


def test_duplicated_notifications_apply_once(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                             db: Database, clock: FrozenClock) -> None:
    for code in CHANNELS:
        sandbox.engine.configure(code, profile(notify_duplicate_share=Decimal(1)))
    paid: list[tuple[str, str]] = []
    for codes, method in ((("unionpay",), "qr"), (("wxpay",), "qr"), (("stripe",), "card")):
        _only(client, shop, *codes)
        if method == "qr":
            paid.append(_qr_paid(client, shop, sandbox))
        else:
            payment = _pay(client, shop)
            assert payment["status"] == "succeeded" and payment["channel"] == "stripe", payment
            [attempt] = _attempts(client, shop, payment["id"])
            paid.append((payment["id"], attempt["id"]))
    clock.advance(timedelta(seconds=10))
    due = sandbox.engine.due_notifications()
    assert len(due) == 6 and len({item.id for item in due}) == 3, [(i.channel, i.id) for i in due]
    answers = [_post(client, sandbox, item) for item in due]
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    for payment_id, attempt_id in paid:
        _settled_once(client, shop, db, payment_id, attempt_id)
    assert _notifications(db, shop.tenant.id) == 3
    assert _merchant_pending(db, shop) == 30_000
    # A re-delivery long after (a provider's retry) is still a duplicate.
    assert [_post(client, sandbox, item).status_code for item in due[:2]] == [200, 200]
    assert _notifications(db, shop.tenant.id) == 3 and _merchant_pending(db, shop) == 30_000


def test_reordered_duplicated_batch_settles_every_payment_once(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    for code in CHANNELS:
        sandbox.engine.configure(code, profile(notify_duplicate_share=Decimal("0.5"), notify_reorder=True))
    _only(client, shop, "unionpay", "paypal", "wxpay")
    paid = [_qr_paid(client, shop, sandbox, amount=1_000 + n) for n in range(5)]
    clock.advance(timedelta(seconds=10))
    assert sandbox.deliver_notifications(client) >= 5
    for payment_id, attempt_id in paid:
        _settled_once(client, shop, db, payment_id, attempt_id)
    assert _merchant_pending(db, shop) == sum(1_000 + n for n in range(5))


# ------------------------------------------------------------------------------------------ out of order


def test_refund_notification_before_the_payments_own(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                     db: Database, clock: FrozenClock) -> None:
    """The refund's notification overtakes the payment's: each is applied on its own terms, once."""
    for code in CHANNELS:
        sandbox.engine.configure(code, profile(refund_async=True, refund_delay_seconds=(2, 2),
                                               notify_delay_seconds=(30, 30)))
    _only(client, shop, "unionpay")
    payment = _pay(client, shop)
    assert payment["status"] == "succeeded"
    refund = client.post(f"/v1/payments/{payment['id']}/refunds", headers=shop.tenant.headers,
                         json={"amount": 2_500})
    assert refund.status_code == 201 and refund.json()["status"] == "processing", refund.text
    clock.advance(timedelta(minutes=2))
    due = sandbox.engine.due_notifications()
    assert sorted(item.kind for item in due) == ["payment", "refund"]
    for item in sorted(due, key=lambda i: i.kind != "refund"):  # refund first
        assert _post(client, sandbox, item).status_code == 200
    settled = client.get(f"/v1/refunds/{refund.json()['id']}", headers=shop.tenant.headers).json()
    assert settled["status"] == "succeeded" and settled["ledger_entry_id"]
    after = _get(client, shop, payment["id"])
    assert (after["status"], after["refunded_amount"], after["captured_amount"]) == ("succeeded", 2_500, 10_000)
    assert _merchant_pending(db, shop) == 7_500


def test_stale_waiting_notification_never_moves_a_payment_back(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    """A "still waiting" notification (generic: requires_action; WeChat: NOTPAY, sent as TRANSACTION.PAYERROR)
    is older news than the success: before it, it changes nothing; after it, the payment stays succeeded."""
    for code in ("unionpay", "wxpay"):
        _only(client, shop, code)
        for stale_first in (True, False):
            payment_id, attempt_id = _qr_paid(client, shop, sandbox)
            clock.advance(timedelta(seconds=10))
            [success] = sandbox.engine.due_notifications()
            assert success.transaction is not None and success.transaction.status is TxStatus.SUCCEEDED
            stale = replace(success, id=success.id + "-stale", transaction=replace(
                success.transaction, status=TxStatus.WAITING, captured=0, fee=0, paid_at=None))
            if stale_first:
                assert _post(client, sandbox, stale).status_code == 200
                assert _get(client, shop, payment_id)["status"] == "requires_action", code
                assert _capture_keys(db, shop.tenant.id, payment_id) == []
            assert _post(client, sandbox, success).status_code == 200
            assert _post(client, sandbox, stale).status_code == 200
            _settled_once(client, shop, db, payment_id, attempt_id)
    assert _merchant_pending(db, shop) == 40_000


# ------------------------------------------------------------------------------------------ lost


def test_lost_notifications_are_made_good_by_the_query_ladder(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    for code in CHANNELS:
        sandbox.engine.configure(code, profile(notify_loss_share=Decimal(1), refund_async=True,
                                               refund_delay_seconds=(20, 20)))
    paid = []
    for code in ("unionpay", "wxpay"):
        _only(client, shop, code)
        paid.append(_qr_paid(client, shop, sandbox))
    waiting = _pay(client, shop, method="qr", amount=777)  # the customer never acts on this one
    [waiting_attempt] = _attempts(client, shop, waiting["id"])
    assert sandbox.deliver_notifications(client) == 0
    assert flows.resolve_open(db) == 0, "nothing is due before the first rung of the ladder"
    clock.advance(timedelta(seconds=5))
    assert flows.resolve_open(db) == 3
    for payment_id, attempt_id in paid:
        _settled_once(client, shop, db, payment_id, attempt_id)
    assert _get(client, shop, waiting["id"])["status"] == "requires_action"
    # The next rung is 15 s after that query, not sooner.
    clock.advance(timedelta(seconds=14))
    assert flows.resolve_open(db) == 0
    clock.advance(timedelta(seconds=1))
    assert flows.resolve_open(db) == 1
    assert _attempts(client, shop, waiting["id"])[0]["id"] == waiting_attempt["id"]

    refund = client.post(f"/v1/payments/{paid[0][0]}/refunds", headers=shop.tenant.headers, json={})
    assert refund.status_code == 201 and refund.json()["status"] == "processing", refund.text
    clock.advance(timedelta(seconds=30))  # done at the channel; its notification is lost too
    sandbox.deliver_notifications(client)
    assert client.get(f"/v1/refunds/{refund.json()['id']}", headers=shop.tenant.headers).json()["status"] \
        == "processing"
    flows.resolve_open(db)
    assert client.get(f"/v1/refunds/{refund.json()['id']}", headers=shop.tenant.headers).json()["status"] \
        == "succeeded"
    assert _merchant_pending(db, shop) == 10_000


# ------------------------------------------------------------------------------------------ forged


def test_forged_and_tampered_notifications_change_nothing(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    qr = {}
    for code in ("unionpay", "wxpay"):
        _only(client, shop, code)
        qr[code] = _qr_paid(client, shop, sandbox)
    clock.advance(timedelta(seconds=10))
    due = sandbox.engine.due_notifications()
    assert sorted(item.channel for item in due) == ["unionpay", "wxpay"]
    entries, seen = _entries(db, shop.tenant.id), _notifications(db)

    for item in due:
        answer = _post(client, sandbox, item, tamper=True)
        assert answer.status_code >= 400, (item.channel, answer.status_code, answer.text)
    generic = next(item for item in due if item.channel == "unionpay")
    # Signed with another channel's (valid, public sandbox) secret: a real signature, the wrong key.
    headers, body = sandbox.providers["paypal"].notification(replace(generic, channel="paypal"))
    assert client.post(generic.url, content=body, headers=headers).status_code == 400
    unsigned = client.post(generic.url, content=b'{"id":"x","type":"payment.updated","data":{}}',
                           headers={"content-type": "application/json"})
    assert unsigned.status_code == 400
    stripe_url = shop.channels["stripe"]["notification_url"]
    forged_stripe = client.post(stripe_url, content=b'{"id":"evt_x","type":"payment_intent.succeeded"}',
                                headers={"content-type": "application/json",
                                         "stripe-signature": "t=1,v1=" + "0" * 64})
    assert forged_stripe.status_code == 400

    assert (_entries(db, shop.tenant.id), _notifications(db)) == (entries, seen)
    for code, (payment_id, _) in qr.items():
        assert _get(client, shop, payment_id)["status"] == "requires_action", code
    for item in due:  # the genuine ones still apply: a refused forgery is not remembered as "seen"
        assert _post(client, sandbox, item).status_code == 200
    for payment_id, attempt_id in qr.values():
        _settled_once(client, shop, db, payment_id, attempt_id)


# ------------------------------------------------------------------------------------------ misdirected


def test_notification_for_another_tenant_or_an_unknown_reference_changes_nothing(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    _only(client, shop, "unionpay")
    payment_id, attempt_id = _qr_paid(client, shop, sandbox)
    rival: TenantHandle = make_tenant(db, "Rival")
    rival_channel = register_channel(client, rival, sandbox, "unionpay")  # the same sandbox credentials
    clock.advance(timedelta(seconds=10))
    [item] = sandbox.engine.due_notifications()
    entries = _entries(db, shop.tenant.id)

    misdirected = replace(item, url=rival_channel["notification_url"])
    assert _post(client, sandbox, misdirected).status_code == 200  # verified, acknowledged, not for them
    assert _get(client, shop, payment_id)["status"] == "requires_action"
    assert _entries(db, shop.tenant.id) == entries and _entries(db, rival.id) == 0
    assert client.get("/v1/payments", headers=rival.headers).json()["data"] == []

    assert item.transaction is not None
    unknown = replace(item, id=item.id + "-unknown", transaction=replace(item.transaction, reference="att_nope"))
    assert _post(client, sandbox, unknown).status_code == 200
    assert _get(client, shop, payment_id)["status"] == "requires_action"
    assert _entries(db, shop.tenant.id) == entries

    nowhere = client.post("/v1/channels/chn_does_not_exist/notifications", content=b"{}",
                          headers={"content-type": "application/json"})
    assert nowhere.status_code == 404

    assert _post(client, sandbox, item).status_code == 200  # the genuine one, to the right tenant
    _settled_once(client, shop, db, payment_id, attempt_id)


def test_a_channel_cannot_settle_another_channels_refund(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    for code in CHANNELS:
        sandbox.engine.configure(code, profile(refund_async=True, refund_delay_seconds=(600, 600)))
    _only(client, shop, "unionpay")
    payment = _pay(client, shop)
    refund = client.post(f"/v1/payments/{payment['id']}/refunds", headers=shop.tenant.headers, json={})
    assert refund.status_code == 201 and refund.json()["status"] == "processing", refund.text
    [record] = sandbox.engine.refunds("unionpay")
    # paypal (a channel of the same tenant, with its own valid signature) claims unionpay's refund succeeded.
    claim = PendingNotification(id="ntf_claim", channel="paypal", kind="refund",
                                url=shop.channels["paypal"]["notification_url"], due_at=clock.now(),
                                refund=replace(record, channel="paypal", status="succeeded",
                                               succeeded_at=clock.now()))
    assert _post(client, sandbox, claim).status_code == 200
    assert client.get(f"/v1/refunds/{refund.json()['id']}", headers=shop.tenant.headers).json()["status"] \
        == "processing", "a refund was settled on the word of a channel that never carried it"


# ------------------------------------------------------------------------------------------ lost replies


def _prefer(client: TestClient, shop: Shop, *codes: str) -> None:
    """Route in this order (a priority strategy), with only these channels enabled."""
    _only(client, shop, *codes)
    response = client.put("/v1/routing/configs/default", headers=shop.tenant.headers,
                          json={"strategy": {"type": "priority", "channels": list(codes)}})
    assert response.status_code == 200, response.text


#: (first, second) channel pairs: Stripe then generic, and two generic channels.
PAIRS = (("stripe", "unionpay"), ("unionpay", "paypal"))


def test_timeout_that_succeeded_at_the_channel_is_charged_once(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database) -> None:
    for code in CHANNELS:
        sandbox.engine.configure(code, profile(timeout_share=Decimal(1), timeout_success_share=Decimal(1)))
    total = 0
    for first, second in PAIRS:
        _prefer(client, shop, first, second)
        amount = 4_321 + total
        payment = _pay(client, shop, amount=amount)
        [attempt] = _attempts(client, shop, payment["id"])  # resolved by a query, never routed around
        assert (attempt["channel"], attempt["status"]) == (first, "succeeded")
        assert payment["status"] == "succeeded" and payment["channel"] == first
        charged = [tx for tx in sandbox.engine.transactions() if tx.reference == attempt["id"]]
        assert [(tx.channel, tx.status, tx.captured) for tx in charged] == [(first, TxStatus.SUCCEEDED, amount)]
        assert sandbox.engine.transactions(second) == [], "a payment already taken was sent to another channel"
        assert _capture_keys(db, shop.tenant.id, payment["id"]) == [f"payment:{payment['id']}:{attempt['id']}"]
        total += amount
    assert _merchant_pending(db, shop) == total


def test_timeout_that_never_reached_the_channel_fails_over(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database) -> None:
    total = 0
    for first, second in PAIRS:
        _prefer(client, shop, first, second)
        sandbox.engine.configure(first, profile(timeout_share=Decimal(1), timeout_success_share=Decimal(0)))
        sandbox.engine.configure(second, profile())
        before = len(sandbox.engine.transactions())
        payment = _pay(client, shop, amount=4_321)
        attempts = _attempts(client, shop, payment["id"])
        assert [(a["channel"], a["status"]) for a in attempts] == [(first, "failed"), (second, "succeeded")]
        assert attempts[0]["error_code"] == "not_received_by_channel"
        assert payment["status"] == "succeeded" and payment["channel"] == second
        assert [tx.reference for tx in sandbox.engine.transactions()][before:] == [attempts[1]["id"]]
        total += 4_321
    # Every reply lost before reaching a channel: nothing was charged, each channel was tried once, it fails.
    for code in CHANNELS:
        sandbox.engine.configure(code, profile(timeout_share=Decimal(1), timeout_success_share=Decimal(0)))
    before = len(sandbox.engine.transactions())
    lost = _pay(client, shop, amount=999)
    assert lost["status"] == "failed"
    assert [a["channel"] for a in _attempts(client, shop, lost["id"])] == list(PAIRS[-1])
    assert len(sandbox.engine.transactions()) == before
    assert _merchant_pending(db, shop) == total
