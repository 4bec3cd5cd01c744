"""Shared steps of the webhook tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import select

from finloop.db.models import OutboxMessage
from finloop.db.outbox import HandlerRegistry
from finloop.db.uow import Database
from finloop.webhooks import service, tasks
from finloop.webhooks.models import WebhookDelivery


def endpoint(db: Database, tenant_id: str, url: str = "https://example.com/hooks", *,
             event_types: Sequence[str] = (), merchant_id: str | None = None) -> tuple[str, str]:
    with db.uow() as uow:
        created, secret = service.create_endpoint(uow, tenant_id, url=url, event_types=event_types,
                                                  merchant_id=merchant_id, actor="test")
        uow.commit()
    return created.id, secret


def publish(db: Database, tenant_id: str, type: str = "payment.succeeded", *, merchant_id: str | None = None,
            data: dict[str, Any] | None = None) -> str:
    with db.uow() as uow:
        message_id = service.publish_event(uow, tenant_id, type=type, merchant_id=merchant_id,
                                           data=data if data is not None else {"id": "pay_1", "amount": 1250})
        uow.commit()
    return message_id


def registry(client_factory: tasks.ClientFactory = tasks.default_client) -> HandlerRegistry:
    handlers = HandlerRegistry()
    tasks.register(handlers, client_factory)
    return handlers


def answering(status: int, seen: list[httpx.Request] | None = None) -> tasks.ClientFactory:
    """A client factory whose every POST gets ``status`` (no network)."""
    def respond(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, text="ok" if status < 300 else "nope")

    return lambda: httpx.Client(transport=httpx.MockTransport(respond))


def outbox_rows(db: Database) -> list[OutboxMessage]:
    with db.uow(read_only=True) as uow:
        rows = list(uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == service.DELIVER_TOPIC)
                                        .order_by(OutboxMessage.created_at, OutboxMessage.id)))
        for row in rows:
            uow.session.expunge(row)
    return rows


def deliveries(db: Database, message_id: str | None = None) -> list[WebhookDelivery]:
    with db.uow(read_only=True) as uow:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if message_id:
            query = query.where(WebhookDelivery.message_id == message_id)
        rows = list(uow.session.scalars(query))
        for row in rows:
            uow.session.expunge(row)
    return rows
