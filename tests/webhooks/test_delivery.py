"""Delivery through the outbox to a real HTTP receiver: retries on the ladder, the delivery log, signatures
checked by the standardwebhooks library, at least once across a worker crash, replays."""

from __future__ import annotations

import random
from datetime import timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from finloop.db import outbox
from finloop.db.outbox import Delivery, HandlerRegistry, drain
from finloop.webhooks import domain, service, tasks
from finloop.webhooks.domain import EndpointStatus
from tests.webhooks.helpers import answering, deliveries, endpoint, outbox_rows, publish, registry


class Crash(BaseException):
    """The worker process dying: nothing after this runs."""


def due_in(db, clock) -> timedelta:
    [row] = [r for r in outbox_rows(db) if r.status == "pending"]
    return row.available_at - clock.now()


def test_a_receiver_that_is_down_for_a_while_gets_the_message_signed(db, tenant, clock, receiver, verifier_clock):
    endpoint_id, secret = endpoint(db, tenant.id, receiver.url, event_types=["payment.succeeded"])
    message_id = publish(db, tenant.id, data={"id": "pay_1", "amount": 1250, "currency": "CNY"})
    handlers = registry()
    rng = random.Random(3)
    schedule = domain.RETRY_SCHEDULE

    # Attempts 1 and 2: nothing listens on the port (connection refused).
    for attempt in (1, 2):
        result = drain(db, registry=handlers, rng=rng)
        assert (result.claimed, result.retried) == (1, 1)
        wait = due_in(db, clock)
        assert schedule[attempt - 1] * 0.9 <= wait <= schedule[attempt - 1]
        clock.advance(wait - timedelta(seconds=1))
        assert drain(db, registry=handlers, rng=rng).claimed == 0  # not before its time
        clock.advance(timedelta(seconds=1))
    # Attempt 3: the receiver is up but failing.
    receiver.statuses = [500]
    receiver.start()
    assert drain(db, registry=handlers, rng=rng).retried == 1
    wait = due_in(db, clock)
    assert schedule[2] * 0.9 <= wait <= schedule[2]
    clock.advance(wait)
    # Attempt 4: accepted.
    assert drain(db, registry=handlers, rng=rng).sent == 1
    assert [r.status for r in outbox_rows(db)] == ["sent"]

    log = deliveries(db, message_id)
    assert [(d.attempt, d.status, d.status_code, d.endpoint_id, d.trigger) for d in log] == [
        (1, "failed", None, endpoint_id, "scheduled"), (2, "failed", None, endpoint_id, "scheduled"),
        (3, "failed", 500, endpoint_id, "scheduled"), (4, "succeeded", 200, endpoint_id, "scheduled")]
    assert "ConnectError" in (log[0].error or "")
    assert log[2].error == "HTTP 500"
    assert len((log[2].response_body or "").encode()) == 1024  # the receiver said 1,900 bytes; 1 KB is kept
    assert log[3].response_body == '{"ok":true}' and log[3].error is None
    assert all(d.duration_ms >= 0 for d in log)

    # The receiver saw the failing attempt and the successful one, with the same id and a valid signature.
    assert [r.headers["webhook-id"] for r in receiver.received] == [message_id, message_id]
    last = receiver.received[-1]
    assert last.path == "/hooks/finloop"
    assert last.headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    payload = Webhook(secret).verify(last.body, last.headers)
    assert payload == {"type": "payment.succeeded", "timestamp": "2026-03-02T09:00:00Z",
                       "data": {"id": "pay_1", "amount": 1250, "currency": "CNY"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(last.body.replace(b"1250", b"9999"), last.headers)


def test_a_delivery_holds_no_transaction_during_the_http_call(db, tenant):
    endpoint(db, tenant.id)
    publish(db, tenant.id)
    checked_out: list[int] = []

    def respond(request: httpx.Request) -> httpx.Response:
        checked_out.append(db.engine.pool.checkedout())
        return httpx.Response(204)

    result = drain(db, registry=registry(lambda: httpx.Client(transport=httpx.MockTransport(respond))))
    assert result.sent == 1
    assert checked_out == [0]


def test_retries_stop_after_the_last_rung_of_the_ladder(db, tenant, clock):
    endpoint(db, tenant.id)
    message_id = publish(db, tenant.id)
    handlers = registry(answering(503))
    rng = random.Random(5)
    for _ in range(domain.RetryLadder().max_attempts):
        assert drain(db, registry=handlers, rng=rng).claimed == 1
        clock.advance(timedelta(hours=10))
    assert [r.status for r in outbox_rows(db)] == ["dead"]
    assert [d.attempt for d in deliveries(db, message_id)] == list(range(1, 14))
    clock.advance(timedelta(days=30))
    assert drain(db, registry=handlers, rng=rng).claimed == 0


def test_no_message_is_lost_when_a_worker_dies_mid_batch(db, tenant, clock, receiver, verifier_clock):
    receiver.start()
    endpoint_id, secret = endpoint(db, tenant.id, receiver.url)
    first = publish(db, tenant.id, data={"n": 1})
    second = publish(db, tenant.id, data={"n": 2})
    deliver = tasks.make_handler()
    dying = HandlerRegistry()

    def deliver_then_die(delivery: Delivery) -> None:
        deliver(delivery)  # the POST succeeds and is logged...
        raise Crash        # ...but the worker dies before the outbox row is marked sent

    dying.register(service.DELIVER_TOPIC, deliver_then_die)
    with pytest.raises(Crash):
        drain(db, registry=dying, lease_seconds=60)
    # Both rows stay claimed: the first was sent, the second never reached.
    assert [(r.status, r.attempts) for r in outbox_rows(db)] == [("pending", 1), ("pending", 1)]
    assert [r.headers["webhook-id"] for r in receiver.received] == [first]

    handlers = registry()
    clock.advance(timedelta(seconds=59))
    assert drain(db, registry=handlers).claimed == 0  # still leased by the dead worker
    clock.advance(timedelta(seconds=1))
    assert drain(db, registry=handlers).sent == 2
    assert [r.status for r in outbox_rows(db)] == ["sent", "sent"]
    # At least once: the first message arrived twice with the same webhook-id (receivers dedupe on it).
    assert [r.headers["webhook-id"] for r in receiver.received] == [first, first, second]
    for request in receiver.received:
        Webhook(secret).verify(request.body, request.headers)
    assert [(d.message_id, d.attempt) for d in deliveries(db)] == [(first, 1), (first, 2), (second, 1)]
    assert {d.endpoint_id for d in deliveries(db)} == {endpoint_id}


def test_a_batch_of_webhooks_is_leased_for_their_timeouts(db, tenant, clock):
    endpoint(db, tenant.id)
    for _ in range(3):
        publish(db, tenant.id)
    handlers = registry()
    claimed = outbox._claim(db, handlers.topics(), 10, timedelta(seconds=60), handlers.budget)
    assert len(claimed) == 3
    budget = timedelta(seconds=3 * domain.DELIVERY_TIMEOUT_SECONDS * 3)
    assert {r.lease_until for r in outbox_rows(db)} == {clock.now() + budget}


def test_a_deleted_or_disabled_endpoint_is_skipped(db, tenant):
    deleted, _ = endpoint(db, tenant.id)
    disabled, _ = endpoint(db, tenant.id)
    publish(db, tenant.id)
    with db.uow() as uow:
        service.delete_endpoint(uow, tenant.id, deleted, actor="test")
        service.update_endpoint(uow, tenant.id, disabled, actor="test", status=EndpointStatus.DISABLED)
        uow.commit()
    seen: list[httpx.Request] = []
    assert drain(db, registry=registry(answering(200, seen))).sent == 2
    assert seen == []
    assert deliveries(db) == []


def test_after_a_rotation_both_secrets_verify_for_a_day(db, tenant, clock, verifier_clock):
    endpoint_id, old = endpoint(db, tenant.id)
    with db.uow() as uow:
        _, new = service.rotate_secret(uow, tenant.id, endpoint_id, actor="test")
        uow.commit()
    seen: list[httpx.Request] = []
    handlers = registry(answering(200, seen))
    publish(db, tenant.id)
    drain(db, registry=handlers)
    [during] = seen
    assert Webhook(old).verify(during.content, dict(during.headers))
    assert Webhook(new).verify(during.content, dict(during.headers))
    clock.advance(timedelta(hours=24))
    publish(db, tenant.id)
    drain(db, registry=handlers)
    after = seen[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(after.content, dict(after.headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.content, dict(after.headers))


def test_a_replay_sends_the_same_message_again_and_continues_the_log(db, tenant, clock, verifier_clock):
    endpoint_id, secret = endpoint(db, tenant.id)
    message_id = publish(db, tenant.id)
    seen: list[httpx.Request] = []
    handlers = registry(answering(200, seen))
    drain(db, registry=handlers)
    clock.advance(timedelta(hours=1))
    with db.uow() as uow:
        assert service.replay_message(uow, tenant.id, message_id, actor="test") == [endpoint_id]
        uow.commit()
    assert drain(db, registry=handlers).sent == 1
    original, replayed = seen
    assert original.content == replayed.content
    assert replayed.headers["webhook-id"] == message_id
    assert replayed.headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    assert Webhook(secret).verify(replayed.content, dict(replayed.headers))["type"] == "payment.succeeded"
    assert [(d.attempt, d.trigger, d.status) for d in deliveries(db, message_id)] == [
        (1, "scheduled", "succeeded"), (2, "replay", "succeeded")]


def test_the_worker_registers_the_handler_with_the_webhook_ladder():
    import finloop.worker.jobs.webhooks  # noqa: F401 - registers on import

    assert outbox.handlers.get(service.DELIVER_TOPIC) is not None
    assert isinstance(outbox.handlers.policy(service.DELIVER_TOPIC), domain.RetryLadder)


def endpoint_state(db, tenant_id: str, endpoint_id: str):  # type: ignore[no-untyped-def]
    with db.uow(read_only=True) as uow:
        found = service.get_endpoint(uow, tenant_id, endpoint_id)
        return found.status, found.failing_since


def test_a_success_ends_a_run_of_failures(db, tenant, clock):
    endpoint_id, _ = endpoint(db, tenant.id)
    started = clock.now()
    publish(db, tenant.id)
    drain(db, registry=registry(answering(500)))
    assert endpoint_state(db, tenant.id, endpoint_id) == ("enabled", started)
    clock.advance(timedelta(days=4))
    publish(db, tenant.id)
    drain(db, registry=registry(answering(200)))
    assert endpoint_state(db, tenant.id, endpoint_id) == ("enabled", None)


def test_an_endpoint_failing_for_five_days_is_disabled(db, tenant, clock):
    from sqlalchemy import select

    from finloop.audit.models import AuditEvent

    endpoint_id, _ = endpoint(db, tenant.id)
    started = clock.now()
    publish(db, tenant.id)
    failing = registry(answering(500))
    drain(db, registry=failing)
    clock.advance(timedelta(days=5) - timedelta(seconds=1))
    publish(db, tenant.id)
    drain(db, registry=failing)
    assert endpoint_state(db, tenant.id, endpoint_id) == ("enabled", started)
    clock.advance(timedelta(seconds=1))
    publish(db, tenant.id)
    drain(db, registry=failing)
    assert endpoint_state(db, tenant.id, endpoint_id) == ("disabled", started)
    with db.uow(read_only=True) as uow:
        actions = list(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id)))
    assert actions[-1] == "webhook_endpoint.auto_disabled"
    # Its pending retries are dropped without a request.
    seen: list[httpx.Request] = []
    clock.advance(timedelta(days=1))
    drain(db, registry=registry(answering(200, seen)))
    assert seen == []
    assert {r.status for r in outbox_rows(db)} == {"sent"}
    # Re-enabling starts afresh.
    with db.uow() as uow:
        service.update_endpoint(uow, tenant.id, endpoint_id, actor="test", status=EndpointStatus.ENABLED)
        uow.commit()
    assert endpoint_state(db, tenant.id, endpoint_id) == ("enabled", None)
