"""Sends the sandbox providers' asynchronous notifications, as real providers do: signed POSTs, retried.

Invariants owned here: a notification is formatted only by its channel's provider (its own wire and
signature); a failed delivery (network error, non-2xx, the receiver raising) never stops the others and
is re-queued with growing backoff up to ``MAX_ATTEMPTS`` deliveries, then dropped (the receiver is
expected to query, as with a real provider); nothing here touches the engine's state except the queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta

import httpx

from finloop.payments.connectors.sandbox.engine import SandboxEngine
from finloop.payments.connectors.sandbox.provider import SandboxProvider

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
#: Wait before the 2nd, 3rd, ... delivery.
BACKOFF = (timedelta(seconds=15), timedelta(seconds=60), timedelta(minutes=5), timedelta(minutes=30))


def deliver_due(engine: SandboxEngine, channels: Mapping[str, SandboxProvider], client: httpx.Client,
                now: datetime | None = None) -> int:
    """POST every notification due by ``now`` (default: the engine's clock); return how many were accepted
    (2xx). Failures are re-queued with backoff."""
    moment = now or engine.clock.now()
    delivered = 0
    for item in engine.due_notifications(moment):
        provider = channels.get(item.channel)
        if provider is None:
            logger.warning("sandbox notification for unmounted channel %s dropped", item.channel)
            continue
        headers, body = provider.notification(item)
        try:
            response = client.post(item.url, content=body, headers=headers)
            accepted = 200 <= response.status_code < 300
            reason = f"HTTP {response.status_code}"
        except Exception as error:  # noqa: BLE001 - any receiver failure is a failed delivery, retried
            accepted = False
            reason = type(error).__name__
        if accepted:
            delivered += 1
            continue
        if item.attempt + 1 < MAX_ATTEMPTS:
            again = engine.requeue(item, moment + BACKOFF[min(item.attempt, len(BACKOFF) - 1)])
            logger.info("sandbox notification %s to %s failed (%s); retry at %s", item.id, item.channel, reason,
                        again.due_at.isoformat())
        else:
            logger.warning("sandbox notification %s to %s failed %d times; dropped", item.id, item.channel,
                           MAX_ATTEMPTS)
    return delivered


class NotifierThread(threading.Thread):
    """For ``sandbox serve``: every ``interval`` seconds, let the engine catch up and deliver what is due."""

    def __init__(self, engine: SandboxEngine, channels: Mapping[str, SandboxProvider], client: httpx.Client,
                 interval: float = 0.5) -> None:
        super().__init__(name="sandbox-notifier", daemon=True)
        self.engine = engine
        self.channels = channels
        self.client = client
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.engine.advance()
                deliver_due(self.engine, self.channels, self.client)
            except Exception:  # the thread must outlive a bad tick; the error is logged
                logger.exception("sandbox notifier tick failed")

    def stop(self) -> None:
        self._stop_event.set()
