"""Webhook use cases: endpoints, publishing events, the delivery log, replays.

Invariants owned here:
- ``publish_event`` writes the message and one outbox message (topic ``webhooks.deliver``) per endpoint that
  wants it, all in the caller's transaction: an event exists and is delivered if and only if the change that
  caused it commits, and nothing is sent inside that transaction;
- only enabled, undeleted endpoints get new deliveries; one that is disabled or deleted before its turn
  comes is skipped by the handler;
- a signing secret is stored only sealed by the vault (bound to its tenant and ``SECRET_PURPOSE``), returned
  only by ``create_endpoint`` and ``rotate_secret``, and never put in an audit event;
- every tenant sees only its own endpoints, messages and deliveries: another tenant's id is not found.

Services flush, never commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, func, select, update

from finloop.audit import service as audit
from finloop.core.errors import Conflict, InvalidRequest, LimitExceeded, NotFound
from finloop.db import outbox
from finloop.db.uow import UnitOfWork
from finloop.vault import service as vault
from finloop.webhooks import domain
from finloop.webhooks.domain import DeliveryStatus, EndpointStatus
from finloop.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

#: The outbox topic of one delivery (payload: message_id, endpoint_id, trigger).
DELIVER_TOPIC = "webhooks.deliver"
MAX_ENDPOINTS_PER_TENANT = 50
MAX_MERCHANT_ID_LENGTH = 40
#: What the vault binds sealed signing secrets to.
SECRET_PURPOSE = "webhooks.endpoint_secret"  # noqa: S105 - a label, not a secret


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Marks a field an update leaves as it is (``None`` is a value: it unbinds the merchant).
UNSET: Final = _Unset()


# ------------------------------------------------------------------------------------------- checks


def _merchant(value: str | None, *, param: str = "merchant_id") -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_MERCHANT_ID_LENGTH or any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        raise InvalidRequest(f"A merchant id is 1 to {MAX_MERCHANT_ID_LENGTH} characters without spaces.",
                             code="invalid_merchant_id", param=param)
    return value


def _description(value: str) -> str:
    if len(value) > domain.MAX_DESCRIPTION_LENGTH or "\x00" in value:
        raise InvalidRequest(f"A description is at most {domain.MAX_DESCRIPTION_LENGTH} characters.",
                             code="invalid_description", param="description")
    return value


def _seal(uow: UnitOfWork, tenant_id: str, secret: str) -> str:
    return vault.seal_secret(uow, tenant_id, secret.encode(), purpose=SECRET_PURPOSE)


def _unseal(uow: UnitOfWork, tenant_id: str, sealed: str) -> str:
    return vault.unseal_secret(uow, tenant_id, sealed, purpose=SECRET_PURPOSE).decode()


def _snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit log keeps of an endpoint: everything but its secrets."""
    return {"url": endpoint.url, "merchant_id": endpoint.merchant_id, "event_types": list(endpoint.event_types),
            "status": endpoint.status, "description": endpoint.description}


# ---------------------------------------------------------------------------------------- endpoints


def create_endpoint(uow: UnitOfWork, tenant_id: str, *, url: str, actor: str, event_types: Sequence[str] = (),
                    merchant_id: str | None = None, description: str = "",
                    status: EndpointStatus = EndpointStatus.ENABLED,
                    random_bytes: Callable[[int], bytes] | None = None) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret, which is shown this once."""
    url = domain.check_url(url)
    types = domain.check_event_types(event_types)
    merchant_id = _merchant(merchant_id)
    description = _description(description)
    count = uow.session.scalar(select(func.count()).select_from(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.deleted_at.is_(None)))
    if (count or 0) >= MAX_ENDPOINTS_PER_TENANT:
        raise LimitExceeded(f"A tenant has at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints.",
                            code="too_many_endpoints")
    secret = domain.new_secret(random_bytes) if random_bytes else domain.new_secret()
    now = uow.clock.now()
    endpoint = WebhookEndpoint(id=uow.ids.new("webhook_endpoint"), tenant_id=tenant_id, merchant_id=merchant_id,
                               url=url, description=description, event_types=types, status=status.value,
                               secret_sealed=_seal(uow, tenant_id, secret), previous_secret_sealed=None,
                               previous_secret_expires_at=None,
                               failing_since=None, created_at=now, updated_at=now, deleted_at=None)
    uow.session.add(endpoint)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="webhook_endpoint.created", object_type="webhook_endpoint",
                 object_id=endpoint.id, after=_snapshot(endpoint))
    return endpoint, secret


def find_endpoint(uow: UnitOfWork, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    return uow.session.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id,
        WebhookEndpoint.deleted_at.is_(None)))


def get_endpoint(uow: UnitOfWork, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = find_endpoint(uow, tenant_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"No such webhook endpoint: {endpoint_id}.", code="webhook_endpoint_not_found",
                       param="endpoint_id")
    return endpoint


def list_endpoints(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50,
                   merchant_id: str | None = None) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id,
                                          WebhookEndpoint.deleted_at.is_(None))
    if after:
        query = query.where(WebhookEndpoint.id > after)
    if merchant_id:
        query = query.where(WebhookEndpoint.merchant_id == merchant_id)
    return list(uow.session.scalars(query.order_by(WebhookEndpoint.id).limit(limit)))


def update_endpoint(uow: UnitOfWork, tenant_id: str, endpoint_id: str, *, actor: str,
                    url: str | _Unset = UNSET, event_types: Sequence[str] | _Unset = UNSET,
                    merchant_id: str | _Unset | None = UNSET, description: str | _Unset = UNSET,
                    status: EndpointStatus | _Unset = UNSET) -> WebhookEndpoint:
    # Validate every field before touching the row, so a bad one leaves the others unchanged too.
    changes: dict[str, Any] = {}
    if not isinstance(url, _Unset):
        changes["url"] = domain.check_url(url)
    if not isinstance(event_types, _Unset):
        changes["event_types"] = domain.check_event_types(event_types)
    if not isinstance(merchant_id, _Unset):
        changes["merchant_id"] = _merchant(merchant_id)
    if not isinstance(description, _Unset):
        changes["description"] = _description(description)
    if not isinstance(status, _Unset):
        changes["status"] = EndpointStatus(status).value
        if status == EndpointStatus.ENABLED:
            changes["failing_since"] = None  # re-enabled: a new run of failures starts from scratch
    endpoint = get_endpoint(uow, tenant_id, endpoint_id)
    before = _snapshot(endpoint)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.updated_at = uow.clock.now()
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="webhook_endpoint.updated", object_type="webhook_endpoint",
                 object_id=endpoint.id, before=before, after=_snapshot(endpoint))
    return endpoint


def delete_endpoint(uow: UnitOfWork, tenant_id: str, endpoint_id: str, *, actor: str) -> WebhookEndpoint:
    """Stop all deliveries to the endpoint (pending retries are skipped); its delivery log stays."""
    endpoint = get_endpoint(uow, tenant_id, endpoint_id)
    before = _snapshot(endpoint)
    now = uow.clock.now()
    endpoint.deleted_at = endpoint.updated_at = now
    endpoint.status = EndpointStatus.DISABLED.value
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="webhook_endpoint.deleted", object_type="webhook_endpoint",
                 object_id=endpoint.id, before=before)
    return endpoint


def rotate_secret(uow: UnitOfWork, tenant_id: str, endpoint_id: str, *, actor: str,
                  random_bytes: Callable[[int], bytes] | None = None) -> tuple[WebhookEndpoint, str]:
    """A new secret, shown this once; the old one keeps signing (beside it) for ``ROTATION_GRACE``."""
    endpoint = get_endpoint(uow, tenant_id, endpoint_id)
    now = uow.clock.now()
    secret = domain.new_secret(random_bytes) if random_bytes else domain.new_secret()
    endpoint.previous_secret_sealed = endpoint.secret_sealed
    endpoint.previous_secret_expires_at = now + domain.ROTATION_GRACE
    endpoint.secret_sealed = _seal(uow, tenant_id, secret)
    endpoint.updated_at = now
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="webhook_endpoint.secret_rotated",
                 object_type="webhook_endpoint", object_id=endpoint.id,
                 after={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()})
    return endpoint, secret


# ----------------------------------------------------------------------------------------- messages


def _subscribers(uow: UnitOfWork, tenant_id: str, *, type: str, merchant_id: str | None) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.deleted_at.is_(None),
        WebhookEndpoint.status == EndpointStatus.ENABLED.value)
    if merchant_id is None:
        query = query.where(WebhookEndpoint.merchant_id.is_(None))
    else:
        query = query.where((WebhookEndpoint.merchant_id.is_(None)) | (WebhookEndpoint.merchant_id == merchant_id))
    return [e for e in uow.session.scalars(query.order_by(WebhookEndpoint.id))
            if domain.endpoint_wants(e.event_types, e.merchant_id, type=type, merchant_id=merchant_id)]


def _enqueue(uow: UnitOfWork, message: WebhookMessage, endpoint_id: str, trigger: str) -> None:
    outbox.enqueue(uow, tenant_id=message.tenant_id, topic=DELIVER_TOPIC,
                   payload={"message_id": message.id, "endpoint_id": endpoint_id, "trigger": trigger})


def publish_event(uow: UnitOfWork, tenant_id: str, *, type: str, data: Mapping[str, Any],
                  merchant_id: str | None = None) -> str:
    """Record an event and schedule its delivery to every endpoint that wants it, in the caller's
    transaction. Returns the message id (``msg_...``), which is the ``webhook-id`` receivers see."""
    domain.check_event_type(type)
    merchant_id = _merchant(merchant_id)
    now = uow.clock.now()
    message = WebhookMessage(id=uow.ids.new("webhook_message"), tenant_id=tenant_id, type=type,
                             merchant_id=merchant_id, payload=domain.message_body(type, now, data), created_at=now)
    uow.session.add(message)
    uow.session.flush()
    for endpoint in _subscribers(uow, tenant_id, type=type, merchant_id=merchant_id):
        _enqueue(uow, message, endpoint.id, "scheduled")
    return message.id


def get_message(uow: UnitOfWork, tenant_id: str, message_id: str) -> WebhookMessage:
    message = uow.session.scalar(select(WebhookMessage).where(WebhookMessage.tenant_id == tenant_id,
                                                              WebhookMessage.id == message_id))
    if message is None:
        raise NotFound(f"No such webhook message: {message_id}.", code="webhook_message_not_found",
                       param="message_id")
    return message


def find_message_tenant(uow: UnitOfWork, message_id: str) -> str | None:
    """The tenant of a message, for operator commands that are given only its id."""
    return uow.session.scalar(select(WebhookMessage.tenant_id).where(WebhookMessage.id == message_id))


def message_payload(message: WebhookMessage) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(message.payload)
    return payload


def list_messages(uow: UnitOfWork, tenant_id: str, *, after: str | None = None, limit: int = 50,
                  type: str | None = None, merchant_id: str | None = None, created_from: datetime | None = None,
                  created_to: datetime | None = None) -> list[WebhookMessage]:
    """Newest first, so the first page shows what just happened; ``after`` is the last id of a page."""
    query = select(WebhookMessage).where(WebhookMessage.tenant_id == tenant_id)
    if after:
        query = query.where(WebhookMessage.id < after)
    if type:
        query = query.where(WebhookMessage.type == type)
    if merchant_id:
        query = query.where(WebhookMessage.merchant_id == merchant_id)
    if created_from:
        query = query.where(WebhookMessage.created_at >= created_from)
    if created_to:
        query = query.where(WebhookMessage.created_at < created_to)
    return list(uow.session.scalars(query.order_by(WebhookMessage.id.desc()).limit(limit)))


def list_deliveries(uow: UnitOfWork, tenant_id: str, message_id: str, *, endpoint_id: str | None = None,
                    after: str | None = None, limit: int = 100) -> list[WebhookDelivery]:
    """A message's delivery attempts, oldest first."""
    get_message(uow, tenant_id, message_id)
    query = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id,
                                          WebhookDelivery.message_id == message_id)
    if endpoint_id:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if after:
        query = query.where(WebhookDelivery.id > after)
    return list(uow.session.scalars(query.order_by(WebhookDelivery.id).limit(limit)))


def replay_message(uow: UnitOfWork, tenant_id: str, message_id: str, *, actor: str,
                   endpoint_id: str | None = None) -> list[str]:
    """Send a message again (same ``webhook-id``, same body, fresh signature) to one endpoint or to every
    endpoint that wants it now. Returns the endpoints it was scheduled for."""
    message = get_message(uow, tenant_id, message_id)
    if endpoint_id is not None:
        endpoint = find_endpoint(uow, tenant_id, endpoint_id)
        if endpoint is None:
            raise NotFound(f"No such webhook endpoint: {endpoint_id}.", code="webhook_endpoint_not_found",
                           param="endpoint_id")
        if endpoint.status != EndpointStatus.ENABLED:
            raise Conflict("The endpoint is disabled; enable it before replaying to it.", code="endpoint_disabled",
                           param="endpoint_id")
        # A merchant's endpoint must never receive another merchant's event, even on request.
        if not domain.endpoint_wants(endpoint.event_types, endpoint.merchant_id, type=message.type,
                                     merchant_id=message.merchant_id):
            raise InvalidRequest("The endpoint is not subscribed to this message (its event types or merchant "
                                 "differ).", code="endpoint_not_subscribed", param="endpoint_id")
        targets = [endpoint]
    else:
        targets = _subscribers(uow, tenant_id, type=message.type, merchant_id=message.merchant_id)
    for endpoint in targets:
        _enqueue(uow, message, endpoint.id, "replay")
    audit.record(uow, tenant_id, actor=actor, action="webhook_message.replayed", object_type="webhook_message",
                 object_id=message.id, after={"endpoint_ids": [e.id for e in targets]})
    return [e.id for e in targets]


# ----------------------------------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class Target:
    """Everything one delivery needs, read before the HTTP call so no transaction stays open across it."""

    tenant_id: str
    message_id: str
    endpoint_id: str
    url: str
    body: str
    secrets: tuple[str, ...]


def load_target(uow: UnitOfWork, tenant_id: str, message_id: str, endpoint_id: str) -> Target | None:
    """The delivery to make, or None when the endpoint was disabled or deleted meanwhile."""
    message = get_message(uow, tenant_id, message_id)
    endpoint = find_endpoint(uow, tenant_id, endpoint_id)
    if endpoint is None or endpoint.status != EndpointStatus.ENABLED:
        return None
    secrets = [_unseal(uow, tenant_id, endpoint.secret_sealed)]
    # The previous secret is unsealed only while it still signs.
    if endpoint.previous_secret_sealed and domain.in_grace(endpoint.previous_secret_expires_at, uow.clock.now()):
        secrets.append(_unseal(uow, tenant_id, endpoint.previous_secret_sealed))
    return Target(tenant_id, message.id, endpoint.id, endpoint.url, message.payload, tuple(secrets))


def record_attempt(uow: UnitOfWork, target: Target, *, status_code: int | None, response_body: str | None,
                   error: str | None, duration_ms: int, trigger: str, at: datetime) -> WebhookDelivery:
    previous = uow.session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.message_id == target.message_id, WebhookDelivery.endpoint_id == target.endpoint_id))
    succeeded = status_code is not None and domain.is_success(status_code) and error is None
    delivery = WebhookDelivery(
        id=uow.ids.new("webhook_delivery"), tenant_id=target.tenant_id, message_id=target.message_id,
        endpoint_id=target.endpoint_id, attempt=(previous or 0) + 1,
        status=(DeliveryStatus.SUCCEEDED if succeeded else DeliveryStatus.FAILED).value, status_code=status_code,
        response_body=response_body, error=error, duration_ms=max(0, duration_ms), trigger=trigger, at=at)
    uow.session.add(delivery)
    uow.session.flush()
    _track_health(uow, target, succeeded=succeeded, at=at)
    return delivery


def _track_health(uow: UnitOfWork, target: Target, *, succeeded: bool, at: datetime) -> None:
    """Start or end the endpoint's run of failures, and disable it once the run has lasted too long. Each
    statement is conditional, so a healthy endpoint's row is not written on every delivery."""
    endpoints = cast(Table, WebhookEndpoint.__table__)
    if succeeded:
        uow.session.execute(update(endpoints).where(endpoints.c.id == target.endpoint_id,
                                                    endpoints.c.failing_since.is_not(None))
                            .values(failing_since=None))
        return
    uow.session.execute(update(endpoints).where(endpoints.c.id == target.endpoint_id,
                                                endpoints.c.failing_since.is_(None))
                        .values(failing_since=at))
    since = uow.session.scalar(select(endpoints.c.failing_since).where(endpoints.c.id == target.endpoint_id))
    if not domain.should_disable(since, at):
        return
    disabled = uow.session.execute(
        update(endpoints).where(endpoints.c.id == target.endpoint_id,
                                endpoints.c.status == EndpointStatus.ENABLED.value)
        .values(status=EndpointStatus.DISABLED.value, updated_at=at))
    if getattr(disabled, "rowcount", 0) == 1:
        audit.record(uow, target.tenant_id, actor="system:webhooks", action="webhook_endpoint.auto_disabled",
                     object_type="webhook_endpoint", object_id=target.endpoint_id,
                     after={"status": EndpointStatus.DISABLED.value,
                            "failing_since": since.isoformat() if since else None})
