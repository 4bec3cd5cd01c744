"""The transactional outbox: the only door through which side effects leave.

Invariants owned here:
- a message is written by ``enqueue`` in the caller's transaction, so it exists if and only if the change
  that caused it was committed;
- ``drain`` never holds a transaction (or a connection) while a handler runs: it claims rows and commits,
  calls the handlers, then records each outcome in its own short transaction;
- a claimed row is hidden by a lease: claiming moves ``available_at`` to the end of the lease, so a worker
  that dies mid-delivery leaves a row that becomes due again by itself when the lease runs out;
- ``attempts`` grows by one on every claim and is the claim's fencing token: only the holder of the latest
  claim may schedule a retry or dead-letter the row, so a worker whose lease ran out cannot undo a newer
  claim's outcome;
- on PostgreSQL several workers drain at once (``FOR UPDATE SKIP LOCKED``: a row is claimed by exactly one
  of them); on SQLite the database write lock taken by ``BEGIN IMMEDIATE`` serialises the claims;
- a failed delivery is retried with exponential backoff and jitter, keeping ``last_error``; after
  ``max_attempts`` claims the row is ``dead`` and is never delivered again by the drain. A topic may register
  its own policy (any ``Backoff``, such as a fixed ladder of waits), which then wins over the drain's;
- a claimed batch is leased for at least the sum of its topics' ``budget_seconds`` (the longest one handler
  call of that topic may take), because the handlers of a batch run one after another: the last row of a
  batch of slow handlers must not fall due again while it waits its turn.

Delivery is at least once: a handler may see a message again if its worker crashed (or overran its lease)
after the handler ran but before the outcome was recorded, so handlers must be idempotent on the message id.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

import structlog
from sqlalchemy import Table, insert, select, update

from finloop.core.errors import InvalidRequest
from finloop.db.models import OutboxMessage
from finloop.db.uow import Database, UnitOfWork

log = structlog.get_logger("finloop.outbox")

outbox_t = cast(Table, OutboxMessage.__table__)

MAX_TOPIC_LENGTH = 100
#: Stored error texts are cut to this length; the full traceback goes to the worker's log.
MAX_ERROR_LENGTH = 2000


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a handler receives: one claimed message."""

    id: str
    tenant_id: str
    topic: str
    payload: dict[str, Any]
    #: How many times this message has been claimed, this claim included (1 on the first delivery).
    attempt: int
    #: The database the message was claimed from, for handlers that record their outcome (in their own short
    #: transactions, with the same clock).
    db: Database | None = field(default=None, compare=False, repr=False)


Handler = Callable[[Delivery], None]


class Backoff(Protocol):
    """A retry policy: how many claims a message gets, and how long to wait after the n-th failure."""

    @property
    def max_attempts(self) -> int: ...

    def delay(self, failures: int, rng: random.Random) -> timedelta: ...


class HandlerRegistry:
    """Handlers by topic. A worker claims only messages whose topic it has a handler for, so workers of
    different versions can share one outbox."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._policies: dict[str, Backoff] = {}
        self._budgets: dict[str, float] = {}

    def register(self, topic: str, handler: Handler, policy: Backoff | None = None, *,
                 budget_seconds: float | None = None) -> None:
        """``policy`` replaces the drain's retry policy for this topic; ``budget_seconds`` is the longest one
        call of the handler may take (an HTTP timeout, say), which the claim's lease is stretched to cover."""
        _check_topic(topic)
        existing = self._handlers.get(topic)
        if existing is not None and existing is not handler:
            raise ValueError(f"outbox topic {topic!r} already has a handler")
        if budget_seconds is not None and budget_seconds <= 0:
            raise ValueError("budget_seconds is a positive number of seconds")
        self._handlers[topic] = handler
        if policy is not None:
            self._policies[topic] = policy
        if budget_seconds is not None:
            self._budgets[topic] = budget_seconds

    def handler(self, topic: str) -> Callable[[Handler], Handler]:
        """Decorator form of ``register``."""
        def decorate(function: Handler) -> Handler:
            self.register(topic, function)
            return function
        return decorate

    def get(self, topic: str) -> Handler | None:
        return self._handlers.get(topic)

    def policy(self, topic: str) -> Backoff | None:
        return self._policies.get(topic)

    def budget(self, topic: str) -> float:
        return self._budgets.get(topic, 0.0)

    def topics(self) -> list[str]:
        return sorted(self._handlers)


#: The process-wide registry the worker drains with.
handlers = HandlerRegistry()
handler = handlers.handler


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: the n-th failure waits ``base * 2**(n-1)`` capped at ``cap``, scaled
    by a random factor in [1 - jitter, 1] so that messages failing together do not retry together."""

    max_attempts: int = 10
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("retry policy needs max_attempts >= 1 and 0 < base_seconds <= cap_seconds")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")

    def delay(self, failures: int, rng: random.Random) -> timedelta:
        exponential = min(self.cap_seconds, self.base_seconds * 2.0 ** min(failures - 1, 62))
        return timedelta(seconds=exponential * (1.0 - self.jitter * rng.random()))


@dataclass
class DrainResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0


def _check_topic(topic: str) -> None:
    if not isinstance(topic, str) or not topic or len(topic) > MAX_TOPIC_LENGTH or not topic.isprintable():
        raise InvalidRequest(f"An outbox topic is 1 to {MAX_TOPIC_LENGTH} printable characters.",
                             code="invalid_topic", param="topic")


def enqueue(uow: UnitOfWork, *, tenant_id: str, topic: str, payload: dict[str, Any],
            available_at: datetime | None = None) -> str:
    """Write a message in the caller's transaction; it is delivered only if that transaction commits."""
    _check_topic(topic)
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"An outbox payload must be plain JSON: {exc}.", code="invalid_payload",
                             param="payload") from exc
    now = uow.clock.now()
    message_id = uow.ids.new("outbox")
    uow.session.execute(insert(outbox_t).values(
        id=message_id, tenant_id=tenant_id, topic=topic, payload=payload, status=OutboxStatus.PENDING.value,
        attempts=0, available_at=available_at or now, lease_until=None, last_error=None, created_at=now,
        sent_at=None))
    return message_id


def _claim(db: Database, topics: list[str], limit: int, lease: timedelta,
           budget: Callable[[str], float] | None = None) -> list[Delivery]:
    with db.uow() as uow:
        now = uow.clock.now()
        rows = uow.session.execute(
            select(outbox_t.c.id, outbox_t.c.tenant_id, outbox_t.c.topic, outbox_t.c.payload, outbox_t.c.attempts)
            .where(outbox_t.c.status == OutboxStatus.PENDING.value, outbox_t.c.available_at <= now,
                   outbox_t.c.topic.in_(topics))
            .order_by(outbox_t.c.available_at, outbox_t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)).all()
        if not rows:
            return []
        if budget is not None:
            lease = max(lease, timedelta(seconds=sum(budget(row.topic) for row in rows)))
        lease_until = now + lease
        uow.session.execute(
            update(outbox_t).where(outbox_t.c.id.in_([row.id for row in rows]))
            .values(attempts=outbox_t.c.attempts + 1, available_at=lease_until, lease_until=lease_until))
        uow.commit()
    return [Delivery(row.id, row.tenant_id, row.topic, dict(row.payload), row.attempts + 1, db) for row in rows]


def _mark_sent(db: Database, delivery: Delivery) -> None:
    with db.uow() as uow:
        uow.session.execute(
            update(outbox_t).where(outbox_t.c.id == delivery.id, outbox_t.c.status == OutboxStatus.PENDING.value)
            .values(status=OutboxStatus.SENT.value, sent_at=uow.clock.now(), lease_until=None))
        uow.commit()


def _mark_failed(db: Database, delivery: Delivery, error: str, policy: Backoff, rng: random.Random) -> bool:
    """Schedule a retry or dead-letter the message; returns True when it is now dead."""
    dead = delivery.attempt >= policy.max_attempts
    with db.uow() as uow:
        now = uow.clock.now()
        values: dict[str, Any] = {"lease_until": None, "last_error": error[:MAX_ERROR_LENGTH]}
        if dead:
            values["status"] = OutboxStatus.DEAD.value
        else:
            values["available_at"] = now + policy.delay(delivery.attempt, rng)
        uow.session.execute(
            update(outbox_t).where(outbox_t.c.id == delivery.id, outbox_t.c.attempts == delivery.attempt,
                                   outbox_t.c.status == OutboxStatus.PENDING.value)
            .values(**values))
        uow.commit()
    return dead


def drain(db: Database, *, limit: int = 100, registry: HandlerRegistry | None = None,
          lease_seconds: float = 60.0, policy: RetryPolicy | None = None,
          rng: random.Random | None = None) -> DrainResult:
    """Claim up to ``limit`` due messages, deliver each to its topic's handler, and record the outcomes.

    The lease must outlast the slowest handler: a message whose lease runs out while its handler is still
    working becomes due again and may be delivered twice. A topic's registered policy wins over ``policy``.
    """
    if limit < 1:
        raise ValueError("drain needs limit >= 1")
    registry = registry or handlers
    policy = policy or RetryPolicy()
    rng = rng or random.Random()
    result = DrainResult()
    topics = registry.topics()
    if not topics:
        return result
    deliveries = _claim(db, topics, limit, timedelta(seconds=lease_seconds), registry.budget)
    result.claimed = len(deliveries)
    for delivery in deliveries:
        deliver = registry.get(delivery.topic)
        assert deliver is not None  # only registered topics are claimed
        try:
            deliver(delivery)
        except Exception as exc:  # noqa: BLE001 - any handler failure is recorded on the row and retried
            log.warning("outbox.delivery_failed", message_id=delivery.id, topic=delivery.topic,
                        attempt=delivery.attempt, error_type=type(exc).__name__)
            retry = registry.policy(delivery.topic) or policy
            if _mark_failed(db, delivery, f"{type(exc).__name__}: {exc}", retry, rng):
                log.error("outbox.dead_lettered", message_id=delivery.id, topic=delivery.topic,
                          attempts=delivery.attempt)
                result.dead += 1
            else:
                result.retried += 1
            continue
        _mark_sent(db, delivery)
        result.sent += 1
    return result
