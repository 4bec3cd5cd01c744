"""Webhooks request and response schemas. A secret appears only in ``WebhookEndpointWithSecret``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from finloop.api.types import Line
from finloop.webhooks.domain import EVENT_TYPES, EndpointStatus

EventType = Annotated[str, Field(max_length=100, examples=list(EVENT_TYPES[:2]),
                                 description="One of: " + ", ".join(EVENT_TYPES) + ".")]
Url = Annotated[str, Field(min_length=1, max_length=2048, examples=["https://example.com/webhooks/finloop"],
                           description="https; plain http only to 127.0.0.1 or localhost (development).")]
MerchantId = Annotated[Line, Field(min_length=1, max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookEndpointCreate(Strict):
    url: Url
    event_types: list[EventType] = Field(default_factory=list, max_length=len(EVENT_TYPES) * 2,
                                         description="Subscribed event types; empty (the default) means all.")
    merchant_id: MerchantId | None = Field(None, description="Only this merchant's events; omit for all.")
    description: Annotated[str, Field(max_length=500)] = ""
    status: EndpointStatus = EndpointStatus.ENABLED


class WebhookEndpointUpdate(Strict):
    url: Url | None = None
    event_types: list[EventType] | None = Field(None, max_length=len(EVENT_TYPES) * 2)
    merchant_id: MerchantId | None = Field(None, description="null unbinds the endpoint from its merchant.")
    description: Annotated[str, Field(max_length=500)] | None = None
    status: EndpointStatus | None = None


class WebhookEndpointRead(BaseModel):
    id: str
    object: str = "webhook_endpoint"
    url: str
    merchant_id: str | None
    event_types: list[str]
    status: EndpointStatus
    description: str
    #: Until then deliveries are also signed with the secret before the last rotation.
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None = Field(description="Start of the current run of failed deliveries; after "
                                                       "5 days of failures the endpoint is disabled.")
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpointRead):
    secret: str = Field(description="The signing secret (whsec_...). Shown only in this response: store it now.")


class WebhookEndpointDeleted(BaseModel):
    id: str
    object: str = "webhook_endpoint"
    deleted: bool = True


class WebhookMessageRead(BaseModel):
    id: str
    object: str = "webhook_message"
    type: str
    merchant_id: str | None
    payload: dict[str, Any] = Field(description='The body sent: {"type", "timestamp", "data"}.')
    created_at: datetime


class WebhookDeliveryRead(BaseModel):
    id: str
    object: str = "webhook_delivery"
    message_id: str
    endpoint_id: str
    attempt: int
    status: str
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int
    trigger: str
    at: datetime


class WebhookReplayRead(BaseModel):
    message_id: str
    object: str = "webhook_replay"
    endpoint_ids: list[str] = Field(description="The endpoints the message was scheduled for again.")
