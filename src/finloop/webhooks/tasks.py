"""The webhook delivery handler the outbox drain calls for topic ``webhooks.deliver``.

Invariants owned here:
- no transaction is open during the HTTP call: the target is read in one short read-only unit of work, the
  POST happens, and the attempt is recorded in a second short unit of work;
- every attempt, successful or not, leaves one ``webhook_deliveries`` row;
- a 2xx answer is a delivery; any other status, a redirect, a timeout or a transport error is a failed
  attempt, raised so that the outbox retries it on the webhook ladder (``domain.RETRY_SCHEDULE``) and
  dead-letters it after the last rung;
- delivery is at least once: a worker that dies after the POST but before the outbox row is marked sent
  sends the message again once its lease runs out, with the same ``webhook-id``, on which receivers dedupe.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import structlog

from finloop.core.errors import ExternalServiceError
from finloop.db.outbox import Delivery, HandlerRegistry
from finloop.webhooks import domain, service

log = structlog.get_logger("finloop.webhooks")

ClientFactory = Callable[[], httpx.Client]


class DeliveryFailed(ExternalServiceError):
    code = "webhook_delivery_failed"


def default_client() -> httpx.Client:
    # Redirects are not followed: a receiver answers where it was registered, and following them would let
    # an endpoint send our signed requests elsewhere.
    return httpx.Client(timeout=domain.DELIVERY_TIMEOUT_SECONDS, follow_redirects=False)


def make_handler(client_factory: ClientFactory = default_client) -> Callable[[Delivery], None]:
    def deliver(delivery: Delivery) -> None:
        if delivery.db is None:
            raise RuntimeError("webhook deliveries need the database they were claimed from")
        db = delivery.db
        message_id = str(delivery.payload["message_id"])
        endpoint_id = str(delivery.payload["endpoint_id"])
        trigger = str(delivery.payload.get("trigger", "scheduled"))
        with db.uow(read_only=True) as uow:
            target = service.load_target(uow, delivery.tenant_id, message_id, endpoint_id)
        if target is None:
            log.info("webhooks.skipped", message_id=message_id, endpoint_id=endpoint_id,
                     reason="endpoint disabled or deleted")
            return
        sent_at = db.clock.now()
        headers = domain.delivery_headers(target.secrets, message_id=target.message_id, sent_at=sent_at,
                                          body=target.body)
        status_code: int | None = None
        body: str | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            with client_factory() as client:
                response = client.post(target.url, content=target.body.encode(), headers=headers)
            status_code, body = response.status_code, domain.snippet(response.content)
            if not domain.is_success(status_code):
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = domain.clean_error(f"{type(exc).__name__}: {exc}")
        duration_ms = int((time.perf_counter() - started) * 1000)
        with db.uow() as uow:
            attempt = service.record_attempt(uow, target, status_code=status_code, response_body=body, error=error,
                                             duration_ms=duration_ms, trigger=trigger, at=sent_at)
            number = attempt.attempt
            uow.commit()
        if error is not None:
            log.info("webhooks.attempt_failed", message_id=message_id, endpoint_id=endpoint_id, attempt=number,
                     status_code=status_code)
            raise DeliveryFailed(f"Delivery of {message_id} to {endpoint_id} failed: {error}", retryable=True)
        log.info("webhooks.delivered", message_id=message_id, endpoint_id=endpoint_id, attempt=number,
                 status_code=status_code, duration_ms=duration_ms)

    return deliver


def register(registry: HandlerRegistry, client_factory: ClientFactory = default_client) -> None:
    """Put the delivery handler, with the webhook retry ladder, on ``registry`` (the worker's, or a test's)."""
    # The budget covers connect + write + read timeouts of one attempt, so a batch of slow receivers keeps its lease.
    registry.register(service.DELIVER_TOPIC, make_handler(client_factory), domain.RetryLadder(),
                      budget_seconds=domain.DELIVERY_TIMEOUT_SECONDS * 3)
