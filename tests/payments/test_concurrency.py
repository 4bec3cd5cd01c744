"""Payments under real concurrency: threads racing on one payment, and many payments through several channels.

Invariants checked (each test on SQLite and PostgreSQL unless it says otherwise; the ``db`` fixture checks
the books' integrity after every test):
- a payment is confirmed once: of N concurrent confirms exactly one runs, the others are 409 conflicts, and
  the channel sees one charge, the ledger one capture entry;
- concurrent refunds never exceed the captured amount: ``refunded_amount`` is the sum of the refunds that
  went through, the rest are refused ``amount_too_large`` (400) and write nothing;
- under random declines, errors and lost replies, every succeeded payment has exactly one capture entry
  keyed ``payment:<id>:<attempt>`` and one charge at the channel; a payment that did not succeed keeps no
  money at the channel;
- a notification and a query for the same attempt, in any interleaving, capture once and never refund a
  payment that succeeded.

SQLite serialises writers (``BEGIN IMMEDIATE``), so the thread races only mean something on PostgreSQL:
there the threads start together on a barrier; on SQLite the same operations run one after the other and
the same outcome is required. Interleavings that need two open write transactions at once are PostgreSQL
only (skipped on SQLite with the reason).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from finloop.core.clock import FrozenClock
from finloop.core.errors import Conflict, FinloopError, InvalidRequest
from finloop.db.uow import Database
from finloop.ledger.models import Entry
from finloop.payments import flows, gateway, service
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from finloop.payments.connectors.sandbox.engine import ChannelProfile
from finloop.payments.models import Attempt, Payment, Refund
from finloop.payments.postings import merchant_pending_code
from tests.conftest import TenantHandle
from tests.payments.conftest import Shop, register_channel, tokenize

THREADS = 6
T = TypeVar("T")

#: Two generic channels and a Stripe one: failover and the parallel run cross providers.
CHANNELS = {"unionpay": "generic", "paypal": "generic", "stripe": "stripe"}


@pytest.fixture
def sandbox(clock: FrozenClock) -> Iterator[InProcessSandbox]:
    box = InProcessSandbox(clock, seed=11, channels=CHANNELS)
    with gateway.use_http_client(box.client):
        yield box


@pytest.fixture
def shop(client: TestClient, tenant: TenantHandle, sandbox: InProcessSandbox, db: Database) -> Shop:
    channels = {code: register_channel(client, tenant, sandbox, code,
                                       methods=["card"] if provider == "stripe" else None)
                for code, provider in CHANNELS.items()}
    sandbox.providers["stripe"].set_webhook_url(  # type: ignore[attr-defined]
        "stripe", channels["stripe"]["notification_url"])
    response = client.post("/v1/merchants", headers=tenant.headers, json={"reference": "M1", "name": "Tea House"})
    assert response.status_code == 201, response.text
    return Shop(tenant, response.json()["id"], channels)


def always() -> ChannelProfile:
    return ChannelProfile(success_share=Decimal(1), latency_ms=(1, 2, 3))


def _configure(sandbox: InProcessSandbox, make: Callable[[], ChannelProfile]) -> None:
    for code in CHANNELS:
        sandbox.engine.configure(code, make())


def _create(client: TestClient, shop: Shop, *, amount: int = 10_000, method: str = "card",
            card_id: str | None = None, confirm: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"merchant_id": shop.merchant_id, "amount": amount, "currency": "CNY", "method": method,
                            "confirm": confirm}
    if method == "card":
        body["card_id"] = card_id or tokenize(client, shop.tenant)
    response = client.post("/v1/payments", headers=shop.tenant.headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _race(db: Database, calls: list[Callable[[], object]]) -> list[object]:
    """Run ``calls`` together on PostgreSQL (threads released by one barrier), one by one on SQLite.
    Returns each call's result or the exception it raised, in call order."""
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object], barrier: threading.Barrier | None) -> None:
        if barrier is not None:
            barrier.wait(timeout=30)
        try:
            results[index] = call()
        except Exception as error:  # the test inspects every outcome
            results[index] = error

    if db.dialect == "sqlite":
        for index, call in enumerate(calls):
            run(index, call, None)
        return results
    barrier = threading.Barrier(len(calls))
    threads = [threading.Thread(target=run, args=(i, call, barrier), daemon=True) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung (a deadlock?)"
    return results


def _capture_keys(db: Database, tenant_id: str, payment_id: str) -> list[str]:
    with db.uow(read_only=True) as uow:
        return list(uow.session.scalars(select(Entry.transfer_key).where(
            Entry.tenant_id == tenant_id, Entry.transfer_key.like(f"payment:{payment_id}:%"))))


def _merchant_pending(db: Database, shop: Shop) -> int:
    from finloop.ledger import service as ledger

    with db.uow(read_only=True) as uow:
        account = ledger.find_account_by_code(uow, shop.tenant.id, merchant_pending_code(shop.merchant_id), "CNY")
        return 0 if account is None else account.credits_posted - account.debits_posted


def _detached(db: Database, load: Callable[[Any], T]) -> T:
    """Load rows and detach them with their attributes (the read-only rollback would expire them)."""
    with db.uow(read_only=True) as uow:
        loaded = load(uow)
        uow.session.expunge_all()
        return loaded


def _attempts(db: Database, payment_id: str) -> list[Attempt]:
    return _detached(db, lambda uow: list(uow.session.scalars(
        select(Attempt).where(Attempt.payment_id == payment_id).order_by(Attempt.sequence))))


def _payment(db: Database, tenant_id: str, payment_id: str) -> Payment:
    return _detached(db, lambda uow: service.get_payment(uow, tenant_id, payment_id))


def _refunds(db: Database, payment_id: str) -> list[Refund]:
    return _detached(db, lambda uow: list(uow.session.scalars(select(Refund).where(Refund.payment_id == payment_id))))


# ------------------------------------------------------------------------------------------ one payment


def test_concurrent_confirms_charge_once(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                         db: Database) -> None:
    _configure(sandbox, always)
    payment = _create(client, shop)
    assert payment["status"] == "requires_confirmation"
    tenant_id, payment_id = shop.tenant.id, payment["id"]

    outcomes = _race(db, [lambda: flows.confirm_payment(db, tenant_id, payment_id) for _ in range(THREADS)])

    unexpected = [o for o in outcomes if o is not None and not isinstance(o, Conflict)]
    assert unexpected == [], [repr(o) for o in unexpected]
    assert sum(o is None for o in outcomes) == 1, [repr(o) for o in outcomes]
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(conflicts) == THREADS - 1
    assert {c.code for c in conflicts} == {"payment_state_conflict"}
    settled = _payment(db, tenant_id, payment_id)
    assert settled.status == "succeeded" and settled.captured_amount == 10_000
    [attempt] = _attempts(db, payment_id)
    assert attempt.status == "succeeded"
    assert [tx.reference for tx in sandbox.engine.transactions()] == [attempt.id]
    assert _capture_keys(db, tenant_id, payment_id) == [f"payment:{payment_id}:{attempt.id}"]
    assert _merchant_pending(db, shop) == 10_000


def test_concurrent_confirms_through_the_api_answer_409(client: TestClient, shop: Shop,
                                                        sandbox: InProcessSandbox, db: Database) -> None:
    """The same race through HTTP: one 200, the rest 409 with the stable error code."""
    _configure(sandbox, always)
    payment = _create(client, shop)
    url = f"/v1/payments/{payment['id']}/confirm"

    responses = _race(db, [lambda: client.post(url, headers=shop.tenant.headers, json={}) for _ in range(4)])

    statuses = sorted(r.status_code for r in responses)  # type: ignore[attr-defined]
    assert statuses == [200, 409, 409, 409], [getattr(r, "text", r) for r in responses]
    codes = {r.json()["error"]["code"] for r in responses if r.status_code == 409}  # type: ignore[attr-defined]
    assert codes == {"payment_state_conflict"}
    assert len(sandbox.engine.transactions()) == 1


def test_concurrent_refunds_never_exceed_the_capture(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                     db: Database) -> None:
    _configure(sandbox, always)
    payment = _create(client, shop, confirm=True)
    assert payment["status"] == "succeeded", payment
    tenant_id, payment_id = shop.tenant.id, payment["id"]
    amounts = [3_000, 2_500, 4_000, 2_000, 3_500, 1_500]  # 16 500 asked of 10 000 captured

    def refund(amount: int) -> Callable[[], object]:
        return lambda: (amount, flows.refund_payment(db, tenant_id, payment_id, amount=amount, reason="race"))

    outcomes = _race(db, [refund(a) for a in amounts])

    unexpected = [o for o in outcomes if not isinstance(o, tuple | InvalidRequest)]
    assert unexpected == [], [repr(o) for o in unexpected]
    refused = [o for o in outcomes if isinstance(o, InvalidRequest)]
    assert refused, "16 500 cannot fit in 10 000: something must be refused"
    assert {(e.code, e.param) for e in refused} == {("amount_too_large", "amount")}
    done = [o for o in outcomes if isinstance(o, tuple)]
    refunded = sum(amount for amount, _ in done)
    assert refunded <= 10_000
    settled = _payment(db, tenant_id, payment_id)
    assert settled.refunded_amount == refunded
    rows = _refunds(db, payment_id)
    assert sorted(r.id for r in rows) == sorted(refund_id for _, refund_id in done), "a refused refund wrote a row"
    assert {r.status for r in rows} == {"succeeded"}
    assert sum(r.fee_returned_amount for r in rows) <= settled.fee_amount
    at_channel = sandbox.engine.refunds()
    assert sorted(r.refund_reference for r in at_channel) == sorted(r.id for r in rows)
    assert sum(r.amount for r in at_channel) == refunded
    assert _merchant_pending(db, shop) == 10_000 - refunded
    with db.uow(read_only=True) as uow:
        refund_entries = uow.session.scalar(select(func.count()).select_from(Entry).where(
            Entry.tenant_id == tenant_id, Entry.transfer_key.like("refund:%")))
    assert refund_entries == len(rows)


# ------------------------------------------------------------------------------------------ many payments


def test_parallel_payments_through_flaky_channels_charge_each_once(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database) -> None:
    """Workers confirm payments in parallel while the channels decline, error and lose replies at random."""
    def flaky() -> ChannelProfile:
        return ChannelProfile(success_share=Decimal("0.6"), decline_share=Decimal("0.3"),
                              timeout_share=Decimal("0.25"), timeout_success_share=Decimal("0.5"),
                              latency_ms=(1, 2, 3))

    _configure(sandbox, flaky)
    workers, per_worker = 4, 5
    batches = [[_create(client, shop, amount=1_000 + 37 * (w * per_worker + i))["id"] for i in range(per_worker)]
               for w in range(workers)]
    tenant_id = shop.tenant.id

    def confirm_all(ids: list[str]) -> Callable[[], object]:
        def run() -> list[object]:
            seen: list[object] = []
            for payment_id in ids:
                try:
                    flows.confirm_payment(db, tenant_id, payment_id)
                    seen.append(None)
                except FinloopError as error:  # a no-channel refusal would be a finding, kept for the assert
                    seen.append(error)
            return seen
        return run

    outcomes = _race(db, [confirm_all(batch) for batch in batches])
    crashed = [o for o in outcomes if isinstance(o, BaseException)]
    assert crashed == [], [repr(o) for o in crashed]
    refused = [e for seen in outcomes for e in seen if e is not None]  # type: ignore[attr-defined]
    assert refused == [], [repr(e) for e in refused]

    flows.resolve_open(db)  # whatever the confirmations left open, the resolve job finishes
    transactions = {tx.reference: tx for tx in sandbox.engine.transactions()}
    statuses: dict[str, int] = {}
    for payment_id in (p for batch in batches for p in batch):
        payment = _payment(db, tenant_id, payment_id)
        statuses[payment.status] = statuses.get(payment.status, 0) + 1
        attempts = _attempts(db, payment_id)
        assert attempts, payment_id
        charged = [a.id for a in attempts if a.id in transactions
                   and transactions[a.id].captured - transactions[a.id].refunded > 0]
        keys = _capture_keys(db, tenant_id, payment_id)
        if payment.status == "succeeded":
            [winner] = [a for a in attempts if a.status == "succeeded" and a.channel == payment.channel]
            assert charged == [winner.id], (payment_id, [(a.channel, a.status) for a in attempts])
            assert transactions[winner.id].captured == payment.amount
            assert f"payment:{payment_id}:{winner.id}" in keys
            late = [r for r in _refunds(db, payment_id) if r.is_automatic]
            # Any other capture entry is a late success on an abandoned attempt, refunded in full.
            assert len(keys) == 1 + len(late), (payment_id, keys)
        else:
            assert payment.status == "failed", (payment_id, payment.status)
            assert charged == [], (payment_id, "a failed payment kept money at the channel")
        unresolved = [a for a in attempts if a.status in ("pending", "unknown", "processing")]
        assert unresolved == [], (payment_id, [(a.id, a.status) for a in unresolved])
        # No channel was ever asked twice for one payment while an earlier attempt could still take money.
        assert len({a.channel for a in attempts}) == len(attempts), (payment_id, [a.channel for a in attempts])
    assert statuses.get("succeeded", 0) >= 5, statuses
    succeeded_ids = [p for batch in batches for p in batch if _payment(db, tenant_id, p).status == "succeeded"]
    expected = sum(_payment(db, tenant_id, p).amount for p in succeeded_ids)
    assert _merchant_pending(db, shop) == expected


# ------------------------------------------------------------------------------------------ notification vs query


def _qr_paid_at_channel(client: TestClient, shop: Shop, sandbox: InProcessSandbox, clock: FrozenClock,
                        db: Database, amount: int = 5_000) -> tuple[str, Attempt]:
    payment = _create(client, shop, method="qr", amount=amount, confirm=True)
    assert payment["status"] == "requires_action", payment
    [attempt] = _attempts(db, payment["id"])
    sandbox.engine.customer_acts(attempt.channel, attempt.id, pays=True)
    clock.advance(timedelta(seconds=10))  # the notification (1-5 s) and the first query (5 s) are both due
    return payment["id"], attempt


def _assert_captured_once(db: Database, shop: Shop, payment_id: str, attempt: Attempt, amount: int) -> None:
    payment = _payment(db, shop.tenant.id, payment_id)
    assert payment.status == "succeeded"
    assert _capture_keys(db, shop.tenant.id, payment_id) == [f"payment:{payment_id}:{attempt.id}"]
    assert [(r.is_automatic, r.amount) for r in _refunds(db, payment_id)] == [], \
        "a payment that succeeded was refunded automatically"
    [settled] = _attempts(db, payment_id)
    assert settled.status == "succeeded"
    assert payment.captured_amount == amount


def test_notification_and_query_racing_capture_once(client: TestClient, shop: Shop, sandbox: InProcessSandbox,
                                                    db: Database, clock: FrozenClock) -> None:
    """Thread A delivers the channel's notification while thread B runs the resolve job, a few rounds."""
    for code in CHANNELS:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(1, 2, 3),
                                                      customer_delay_seconds=(3_000, 3_600)))
    total = 0
    for round_ in range(3):
        amount = 5_000 + round_
        payment_id, attempt = _qr_paid_at_channel(client, shop, sandbox, clock, db, amount)
        outcomes = _race(db, [lambda: sandbox.deliver_notifications(client), lambda: flows.resolve_open(db)])
        assert not any(isinstance(o, BaseException) for o in outcomes), [repr(o) for o in outcomes]
        _assert_captured_once(db, shop, payment_id, attempt, amount)
        assert sandbox.engine.refunds() == []
        total += amount
    assert _merchant_pending(db, shop) == total


def test_notification_read_before_a_query_settled_it_does_not_refund(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst interleaving, forced: the notification's transaction has read the attempt when the query
    settles the payment; it then takes the payment lock and applies the same success."""
    if db.dialect == "sqlite":
        pytest.skip("needs two write transactions open at once; SQLite serialises writers (BEGIN IMMEDIATE)")
    for code in CHANNELS:
        sandbox.engine.configure(code, ChannelProfile(success_share=Decimal(1), latency_ms=(1, 2, 3),
                                                      customer_delay_seconds=(3_000, 3_600)))
    payment_id, attempt = _qr_paid_at_channel(client, shop, sandbox, clock, db)
    original = service.get_payment
    interleaved: list[object] = []

    def get_payment(uow: Any, tenant_id: str, pid: str, **kwargs: Any) -> Payment:
        caller = sys._getframe(1).f_code.co_name  # the API runs the handler on a pool thread: match by caller
        if kwargs.get("lock") and caller == "handle_notification" and not interleaved:
            # The notification has recorded itself and read the attempt: now the query job runs to its end.
            worker = threading.Thread(target=lambda: interleaved.append(flows.resolve_open(db)), daemon=True)
            worker.start()
            worker.join(timeout=60)
            assert interleaved, "the resolve job did not finish"
        return original(uow, tenant_id, pid, **kwargs)

    monkeypatch.setattr(service, "get_payment", get_payment)
    assert sandbox.deliver_notifications(client) >= 1
    monkeypatch.setattr(service, "get_payment", original)
    assert interleaved == [1]
    assert sandbox.engine.refunds() == [], "the customer was refunded a payment that succeeded"
    _assert_captured_once(db, shop, payment_id, attempt, 5_000)
    assert _merchant_pending(db, shop) == 5_000


def test_refund_notification_racing_the_refund_reply_applies_once(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock) -> None:
    """An async refund: its notification and the resolve job's query race; one refund entry, reservation kept."""
    def slow_refunds() -> ChannelProfile:
        return ChannelProfile(success_share=Decimal(1), latency_ms=(1, 2, 3), refund_async=True,
                              refund_delay_seconds=(5, 5), notify_delay_seconds=(1, 1))

    _configure(sandbox, slow_refunds)
    payment = _create(client, shop, confirm=True)
    sandbox.deliver_notifications(client)  # the payment's own notification, out of the way
    refund_id = flows.refund_payment(db, shop.tenant.id, payment["id"], amount=4_000)
    with db.uow(read_only=True) as uow:
        assert service.get_refund(uow, shop.tenant.id, refund_id).status == "processing"
    clock.advance(timedelta(minutes=5))  # refund done at the channel, its notification and its query due
    outcomes = _race(db, [lambda: sandbox.deliver_notifications(client), lambda: flows.resolve_open(db)])
    assert not any(isinstance(o, BaseException) for o in outcomes), [repr(o) for o in outcomes]
    [refund] = _refunds(db, payment["id"])
    assert refund.status == "succeeded"
    assert _payment(db, shop.tenant.id, payment["id"]).refunded_amount == 4_000
    with db.uow(read_only=True) as uow:
        keys = list(uow.session.scalars(select(Entry.transfer_key).where(
            Entry.tenant_id == shop.tenant.id, Entry.transfer_key.like("refund:%"))))
    assert keys == [f"refund:{refund_id}"]
    assert _merchant_pending(db, shop) == 6_000


def test_refund_failure_applied_while_the_query_waits_is_released_once(
        client: TestClient, shop: Shop, sandbox: InProcessSandbox, db: Database, clock: FrozenClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Forced interleaving: the resolve job has read the refund when the channel's "refund failed"
    notification is applied; the job then applies the same failure under the payment lock."""
    if db.dialect == "sqlite":
        pytest.skip("needs two write transactions open at once; SQLite serialises writers (BEGIN IMMEDIATE)")

    def failing_refunds() -> ChannelProfile:
        return ChannelProfile(success_share=Decimal(1), latency_ms=(1, 2, 3), refund_async=True,
                              refund_failure_share=Decimal(1), refund_delay_seconds=(5, 5),
                              notify_delay_seconds=(1, 1))

    _configure(sandbox, failing_refunds)
    payment = _create(client, shop, confirm=True)
    sandbox.deliver_notifications(client)
    refund_id = flows.refund_payment(db, shop.tenant.id, payment["id"], amount=4_000)
    assert _payment(db, shop.tenant.id, payment["id"]).refunded_amount == 4_000  # reserved while in flight
    clock.advance(timedelta(minutes=5))
    original = service.get_payment
    delivered: list[int] = []

    def get_payment(uow: Any, tenant_id: str, pid: str, **kwargs: Any) -> Payment:
        if kwargs.get("lock") and sys._getframe(1).f_code.co_name == "_apply_refund" and not delivered:
            worker = threading.Thread(target=lambda: delivered.append(sandbox.deliver_notifications(client)),
                                      daemon=True)
            worker.start()
            worker.join(timeout=60)
        return original(uow, tenant_id, pid, **kwargs)

    monkeypatch.setattr(service, "get_payment", get_payment)
    try:
        flows.resolve_open(db)
    finally:
        monkeypatch.setattr(service, "get_payment", original)
    assert delivered and delivered[0] >= 1  # the refund's notification (and any due with it)
    [refund] = _refunds(db, payment["id"])
    assert refund.id == refund_id and refund.status == "failed"
    assert _payment(db, shop.tenant.id, payment["id"]).refunded_amount == 0
