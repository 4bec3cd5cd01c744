"""Webhooks tables: endpoints, the events (messages) sent to them, and the log of every delivery attempt.

- ``webhook_messages`` keeps the exact JSON body an event is sent with, so every attempt and every replay
  sends the same bytes (JSONB would reorder keys);
- an endpoint's signing secrets are needed in clear to compute HMACs, so they cannot be hashed like API
  keys: they are stored sealed by the vault (AES-256-GCM, bound to the tenant and purpose), and never
  returned by the API or logged after the response that created them;
- deleting an endpoint only stamps ``deleted_at``: its delivery log stays readable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_tenant_merchant", "tenant_id", "merchant_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    #: Only this merchant's events; None receives every event of the tenant.
    merchant_id: Mapped[str | None] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    #: Subscribed event types; empty means all.
    event_types: Mapped[list[str]] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16))  # enabled | disabled
    #: ``vault.seal_secret`` of the ``whsec_...`` secret.
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the current run of failed attempts began (None after a success); it disables the endpoint once it
    #: has lasted ``AUTO_DISABLE_AFTER``.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookMessage(Base):
    """One event, sent to every endpoint that wants it; its id is the ``webhook-id`` receivers dedupe on."""

    __tablename__ = "webhook_messages"
    __table_args__ = (Index("ix_webhook_messages_tenant_type", "tenant_id", "type"),
                      Index("ix_webhook_messages_tenant_merchant", "tenant_id", "merchant_id"),
                      Index("ix_webhook_messages_tenant_created", "tenant_id", "created_at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    type: Mapped[str] = mapped_column(String(100))
    merchant_id: Mapped[str | None] = mapped_column(String(40))
    #: The JSON body ``{"type", "timestamp", "data"}`` exactly as sent.
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One HTTP attempt to deliver a message to an endpoint, successful or not."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_message_endpoint", "message_id", "endpoint_id", "attempt"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_messages.id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    #: 1 for the first attempt of this message at this endpoint; replays continue the count.
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # succeeded | failed
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: At most 1 KB of the response body.
    response_body: Mapped[str | None] = mapped_column(Text)
    #: A transport failure (refused, timed out, TLS) or a non-2xx summary.
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    #: "scheduled" (the first send and its retries) or "replay".
    trigger: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
