"""The transactional outbox: written with the change, delivered outside any transaction, retried, leased."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from finloop.core.errors import InvalidRequest
from finloop.db import outbox
from finloop.db.models import OutboxMessage
from finloop.db.outbox import Delivery, HandlerRegistry, RetryPolicy, drain, enqueue


class Crash(BaseException):
    """A worker dying mid-delivery: nothing after the handler runs."""


def put(db, count: int = 1, topic: str = "test.event", tenant_id: str = "ten_x") -> list[str]:
    with db.uow() as uow:
        ids = [enqueue(uow, tenant_id=tenant_id, topic=topic, payload={"n": n}) for n in range(count)]
        uow.commit()
    return ids


def message(db, message_id: str) -> OutboxMessage:
    with db.uow(read_only=True) as uow:
        row = uow.session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
        assert row is not None
        uow.session.expunge(row)  # keep its loaded state after the read transaction ends
        return row


def recording_registry(topic: str = "test.event"):
    registry = HandlerRegistry()
    seen: list[Delivery] = []
    registry.register(topic, seen.append)
    return registry, seen


def test_enqueue_is_part_of_the_callers_transaction(db):
    with db.uow() as uow:
        enqueue(uow, tenant_id="ten_x", topic="test.event", payload={"n": 1})  # rolled back: never committed
    committed = put(db)
    with db.uow(read_only=True) as uow:
        rows = [(row.id, row.status, row.attempts) for row in uow.session.scalars(select(OutboxMessage))]
    assert rows == [(committed[0], "pending", 0)]


def test_enqueue_refuses_payloads_that_are_not_json(db):
    with db.uow() as uow, pytest.raises(InvalidRequest) as caught:
        enqueue(uow, tenant_id="ten_x", topic="test.event", payload={"amount": object()})
    assert caught.value.code == "invalid_payload"


def test_drain_delivers_once_outside_any_transaction(db):
    ids = put(db, 3)
    registry = HandlerRegistry()
    seen: list[tuple[str, int, int]] = []

    def handle(delivery: Delivery) -> None:
        # No connection is checked out of the pool while a handler runs: no transaction is open.
        seen.append((delivery.id, delivery.payload["n"], db.engine.pool.checkedout()))

    registry.register("test.event", handle)
    result = drain(db, registry=registry)
    assert (result.claimed, result.sent) == (3, 3)
    assert seen == [(ids[n], n, 0) for n in range(3)]
    assert {message(db, i).status for i in ids} == {"sent"}
    assert message(db, ids[0]).sent_at == db.clock.now()
    assert drain(db, registry=registry).claimed == 0
    assert len(seen) == 3


def test_only_topics_with_a_handler_are_claimed(db):
    [unhandled] = put(db, topic="other.event")
    registry, seen = recording_registry()
    assert drain(db, registry=registry).claimed == 0
    assert seen == []
    row = message(db, unhandled)
    assert (row.status, row.attempts) == ("pending", 0)


def test_failures_back_off_exponentially_with_jitter_then_dead_letter(db, clock):
    [message_id] = put(db)
    registry = HandlerRegistry()
    calls: list[int] = []

    def failing(delivery: Delivery) -> None:
        calls.append(delivery.attempt)
        raise RuntimeError(f"channel down (try {delivery.attempt})")

    registry.register("test.event", failing)
    policy = RetryPolicy(max_attempts=3, base_seconds=10, cap_seconds=1000, jitter=0.5)
    rng = random.Random(7)
    delays = []
    for attempt in (1, 2):
        result = drain(db, registry=registry, policy=policy, rng=rng)
        assert (result.claimed, result.retried, result.dead) == (1, 1, 0)
        row = message(db, message_id)
        assert (row.status, row.attempts, row.lease_until) == ("pending", attempt, None)
        assert row.last_error == f"RuntimeError: channel down (try {attempt})"
        delay = row.available_at - clock.now()
        full = timedelta(seconds=10 * 2 ** (attempt - 1))
        assert full / 2 <= delay <= full  # exponential, scaled down by at most the jitter
        delays.append(delay)
        # Not due before its time.
        clock.advance(delay - timedelta(seconds=1))
        assert drain(db, registry=registry, policy=policy, rng=rng).claimed == 0
        clock.advance(timedelta(seconds=1))
    assert delays[1] > delays[0]
    result = drain(db, registry=registry, policy=policy, rng=rng)
    assert (result.claimed, result.dead) == (1, 1)
    row = message(db, message_id)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "RuntimeError: channel down (try 3)")
    clock.advance(timedelta(days=30))
    assert drain(db, registry=registry, policy=policy, rng=rng).claimed == 0
    assert calls == [1, 2, 3]


def test_backoff_is_capped():
    policy = RetryPolicy(base_seconds=5, cap_seconds=60, jitter=0.0)
    assert policy.delay(1, random.Random(1)) == timedelta(seconds=5)
    assert policy.delay(4, random.Random(1)) == timedelta(seconds=40)
    assert policy.delay(50, random.Random(1)) == timedelta(seconds=60)


def test_an_expired_lease_puts_the_row_back(db, clock):
    [message_id] = put(db)
    registry = HandlerRegistry()

    def crash(_delivery: Delivery) -> None:
        raise Crash

    registry.register("test.event", crash)
    with pytest.raises(Crash):
        drain(db, registry=registry, lease_seconds=30)
    row = message(db, message_id)
    assert (row.status, row.attempts, row.lease_until) == ("pending", 1, clock.now() + timedelta(seconds=30))

    again, seen = recording_registry()
    clock.advance(timedelta(seconds=29))
    assert drain(db, registry=again).claimed == 0  # still leased by the dead worker
    clock.advance(timedelta(seconds=1))
    assert drain(db, registry=again).sent == 1
    assert [(d.id, d.attempt) for d in seen] == [(message_id, 2)]
    assert message(db, message_id).status == "sent"


def test_a_worker_whose_lease_ran_out_cannot_undo_a_newer_outcome(db, clock):
    [message_id] = put(db)
    stale = outbox._claim(db, ["test.event"], 10, timedelta(seconds=30))[0]
    clock.advance(timedelta(seconds=31))
    registry, _ = recording_registry()
    assert drain(db, registry=registry).sent == 1
    # The first worker wakes up and reports its failure: the row stays sent.
    outbox._mark_failed(db, stale, "late failure", RetryPolicy(max_attempts=1), random.Random(1))
    row = message(db, message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


def test_concurrent_drainers_never_deliver_a_row_twice(db):
    ids = put(db, 120)
    registry = HandlerRegistry()
    delivered: dict[str, list[str]] = {"a": [], "b": []}
    lock = threading.Lock()
    start = threading.Barrier(2)

    def handle(delivery: Delivery) -> None:
        time.sleep(0.001)  # a slow channel, so the drainers overlap
        with lock:
            delivered[threading.current_thread().name].append(delivery.id)

    registry.register("test.event", handle)
    errors: list[BaseException] = []

    def drainer() -> None:
        try:
            start.wait()
            while drain(db, registry=registry, limit=5).claimed:
                pass
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=drainer, name=name) for name in delivered]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    everything = delivered["a"] + delivered["b"]
    assert sorted(everything) == sorted(ids)  # every row exactly once
    assert delivered["a"] and delivered["b"]  # and both workers took part
    with db.uow(read_only=True) as uow:
        assert set(uow.session.scalars(select(OutboxMessage.attempts))) == {1}


def test_a_topics_own_retry_policy_wins_over_the_drains(db, clock):
    [ladder_id] = put(db, topic="ladder.event")
    [default_id] = put(db)

    class Ladder:
        max_attempts = 2

        def delay(self, failures: int, rng: random.Random) -> timedelta:
            return timedelta(hours=7)

    def failing(_delivery: Delivery) -> None:
        raise RuntimeError("down")

    registry = HandlerRegistry()
    registry.register("ladder.event", failing, Ladder())
    registry.register("test.event", failing)
    policy = RetryPolicy(max_attempts=5, base_seconds=10, cap_seconds=10, jitter=0.0)
    assert drain(db, registry=registry, policy=policy).retried == 2
    assert message(db, ladder_id).available_at == clock.now() + timedelta(hours=7)
    assert message(db, default_id).available_at == clock.now() + timedelta(seconds=10)
    clock.advance(timedelta(hours=7))
    assert drain(db, registry=registry, policy=policy).dead == 1  # the ladder's max_attempts, not the drain's
    assert (message(db, ladder_id).status, message(db, default_id).status) == ("dead", "pending")


def test_a_claim_is_leased_for_the_sum_of_its_handlers_budgets(db, clock):
    slow = put(db, 3, topic="slow.event")
    fast = put(db, 2)
    registry = HandlerRegistry()
    registry.register("slow.event", lambda _d: None, budget_seconds=40)
    registry.register("test.event", lambda _d: None)
    claimed = outbox._claim(db, registry.topics(), 10, timedelta(seconds=60), registry.budget)
    assert len(claimed) == 5
    # Three slow handlers may take 120 s in all, so every row of the batch is leased that long.
    assert {message(db, i).lease_until for i in slow + fast} == {clock.now() + timedelta(seconds=120)}
    assert all(d.db is db for d in claimed)
    with pytest.raises(ValueError, match="budget_seconds"):
        registry.register("other.event", lambda _d: None, budget_seconds=0)
