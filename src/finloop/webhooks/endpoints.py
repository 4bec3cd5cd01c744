"""Webhooks HTTP endpoints: endpoint management, the message log, deliveries and replays.

Every route is authenticated and tenant-scoped; managing endpoints and replaying need ``tenant.configure``.
A signing secret appears only in the answers to creating an endpoint and rotating its secret; an
Idempotency-Key replay of those answers carries ``"secret": null`` because the stored copy never holds it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from finloop.api.deps import CurrentPrincipal, CurrentReader, CurrentWriter, Writer, get_database
from finloop.api.pagination import Limit, Page, page
from finloop.api.types import Instant
from finloop.core.errors import InvalidRequest
from finloop.db.uow import Database, UnitOfWork
from finloop.webhooks import domain, service
from finloop.webhooks.domain import EndpointStatus
from finloop.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from finloop.webhooks.schemas import (
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointDeleted,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookMessageRead,
    WebhookReplayRead,
)

router = APIRouter(tags=["webhooks"])
PERMISSION = "tenant.configure"
Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
#: The pattern keeps bytes PostgreSQL refuses (NUL) out of queries.
IdQuery = Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
IdCursor = Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_]+$",
                                       description="The next_cursor of the previous page.")]
InstantQuery = Annotated[Instant | None, Query(description="An ISO 8601 instant with its offset.")]


def _unkeyed_writer(db: Annotated[Database, Depends(get_database)], principal: CurrentPrincipal) -> Writer:
    return Writer(db, principal)


#: The write context of PATCH and DELETE: same commit and error rules, no Idempotency-Key.
UnkeyedWriter = Annotated[Writer, Depends(_unkeyed_writer)]


def _without_secret(content: dict[str, Any]) -> dict[str, Any]:
    return {**content, "secret": None}


def read_endpoint(endpoint: WebhookEndpoint) -> WebhookEndpointRead:
    return WebhookEndpointRead(id=endpoint.id, url=endpoint.url, merchant_id=endpoint.merchant_id,
                               event_types=list(endpoint.event_types), status=EndpointStatus(endpoint.status),
                               description=endpoint.description,
                               previous_secret_expires_at=endpoint.previous_secret_expires_at,
                               failing_since=endpoint.failing_since,
                               created_at=endpoint.created_at, updated_at=endpoint.updated_at)


def read_with_secret(endpoint: WebhookEndpoint, secret: str) -> WebhookEndpointWithSecret:
    return WebhookEndpointWithSecret(**read_endpoint(endpoint).model_dump(), secret=secret)


def read_message(message: WebhookMessage) -> WebhookMessageRead:
    return WebhookMessageRead(id=message.id, type=message.type, merchant_id=message.merchant_id,
                              payload=service.message_payload(message), created_at=message.created_at)


def read_delivery(delivery: WebhookDelivery) -> WebhookDeliveryRead:
    return WebhookDeliveryRead(id=delivery.id, message_id=delivery.message_id, endpoint_id=delivery.endpoint_id,
                               attempt=delivery.attempt, status=delivery.status, status_code=delivery.status_code,
                               response_body=delivery.response_body, error=delivery.error,
                               duration_ms=delivery.duration_ms, trigger=delivery.trigger, at=delivery.at)


# ------------------------------------------------------------------------------------------ endpoints


@router.post("/webhook_endpoints", status_code=201, response_model=WebhookEndpointWithSecret,
             summary="Create a webhook endpoint; its signing secret is shown once")
def create_endpoint(body: WebhookEndpointCreate, writer: CurrentWriter) -> JSONResponse:
    def work(uow: UnitOfWork) -> WebhookEndpointWithSecret:
        endpoint, secret = service.create_endpoint(
            uow, writer.tenant_id, url=body.url, event_types=body.event_types, merchant_id=body.merchant_id,
            description=body.description, status=body.status, actor=writer.principal.actor)
        return read_with_secret(endpoint, secret)

    return writer.run(work, status_code=201, permission=PERMISSION, stored=_without_secret)


@router.get("/webhook_endpoints", response_model=Page[WebhookEndpointRead], summary="List webhook endpoints")
def list_endpoints(reader: CurrentReader, limit: Limit = 50, starting_after: IdCursor = None,
                   merchant_id: IdQuery = None) -> Page[WebhookEndpointRead]:
    return reader.run(lambda uow: page(service.list_endpoints(
        uow, reader.tenant_id, after=starting_after, limit=limit + 1, merchant_id=merchant_id),
        limit, read_endpoint, lambda e: e.id))


@router.get("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointRead,
            summary="Get a webhook endpoint (never its secret)")
def get_endpoint(endpoint_id: Id, reader: CurrentReader) -> WebhookEndpointRead:
    return reader.run(lambda uow: read_endpoint(service.get_endpoint(uow, reader.tenant_id, endpoint_id)))


@router.patch("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointRead,
              summary="Change a webhook endpoint's URL, event types, merchant, description or status")
def update_endpoint(endpoint_id: Id, body: WebhookEndpointUpdate, writer: UnkeyedWriter) -> JSONResponse:
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    for name, value in changes.items():
        if value is None and name != "merchant_id":
            raise InvalidRequest(f"{name} cannot be null; leave it out to keep it.", code="invalid_null", param=name)

    def work(uow: UnitOfWork) -> WebhookEndpointRead:
        return read_endpoint(service.update_endpoint(uow, writer.tenant_id, endpoint_id,
                                                     actor=writer.principal.actor, **changes))

    return writer.run(work, permission=PERMISSION)


@router.delete("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpointDeleted,
               summary="Delete a webhook endpoint; pending deliveries to it are dropped")
def delete_endpoint(endpoint_id: Id, writer: UnkeyedWriter) -> JSONResponse:
    def work(uow: UnitOfWork) -> WebhookEndpointDeleted:
        endpoint = service.delete_endpoint(uow, writer.tenant_id, endpoint_id, actor=writer.principal.actor)
        return WebhookEndpointDeleted(id=endpoint.id)

    return writer.run(work, permission=PERMISSION)


@router.post("/webhook_endpoints/{endpoint_id}/rotate_secret", response_model=WebhookEndpointWithSecret,
             summary="Replace the signing secret; the old one also signs for 24 hours; the new one is shown once")
def rotate_secret(endpoint_id: Id, writer: CurrentWriter) -> JSONResponse:
    def work(uow: UnitOfWork) -> WebhookEndpointWithSecret:
        endpoint, secret = service.rotate_secret(uow, writer.tenant_id, endpoint_id, actor=writer.principal.actor)
        return read_with_secret(endpoint, secret)

    return writer.run(work, permission=PERMISSION, stored=_without_secret)


# ------------------------------------------------------------------------------------------- messages


@router.get("/webhook_messages", response_model=Page[WebhookMessageRead],
            summary="List the events sent to webhook endpoints, newest first")
def list_messages(reader: CurrentReader, limit: Limit = 50, starting_after: IdCursor = None,
                  type: Annotated[str | None, Query(max_length=100)] = None, merchant_id: IdQuery = None,
                  created_from: InstantQuery = None, created_to: InstantQuery = None) -> Page[WebhookMessageRead]:
    if type is not None:
        domain.check_event_type(type)
    return reader.run(lambda uow: page(service.list_messages(
        uow, reader.tenant_id, after=starting_after, limit=limit + 1, type=type, merchant_id=merchant_id,
        created_from=created_from, created_to=created_to), limit, read_message, lambda m: m.id))


@router.get("/webhook_messages/{message_id}", response_model=WebhookMessageRead, summary="Get a webhook message")
def get_message(message_id: Id, reader: CurrentReader) -> WebhookMessageRead:
    return reader.run(lambda uow: read_message(service.get_message(uow, reader.tenant_id, message_id)))


@router.get("/webhook_messages/{message_id}/deliveries", response_model=Page[WebhookDeliveryRead],
            summary="A message's delivery attempts, oldest first")
def list_deliveries(message_id: Id, reader: CurrentReader, limit: Limit = 100, starting_after: IdCursor = None,
                    endpoint_id: IdQuery = None) -> Page[WebhookDeliveryRead]:
    return reader.run(lambda uow: page(service.list_deliveries(
        uow, reader.tenant_id, message_id, endpoint_id=endpoint_id, after=starting_after, limit=limit + 1),
        limit, read_delivery, lambda d: d.id))


@router.post("/webhook_messages/{message_id}/replay", status_code=202, response_model=WebhookReplayRead,
             summary="Send a message again, to one endpoint or to every endpoint subscribed to it")
def replay_message(message_id: Id, writer: CurrentWriter, endpoint_id: IdQuery = None) -> JSONResponse:
    def work(uow: UnitOfWork) -> WebhookReplayRead:
        endpoint_ids = service.replay_message(uow, writer.tenant_id, message_id, endpoint_id=endpoint_id,
                                              actor=writer.principal.actor)
        return WebhookReplayRead(message_id=message_id, endpoint_ids=endpoint_ids)

    return writer.run(work, status_code=202, permission=PERMISSION)
