"""Webhooks on the worker: the ``webhooks.deliver`` outbox handler, with the webhook retry ladder.

The ``outbox.drain`` job (``jobs/platform.py``) delivers; this module only registers the handler on the
process-wide registry, so a worker claims webhook deliveries exactly when it can send them.
"""

from __future__ import annotations

from finloop.db import outbox
from finloop.webhooks import tasks
from finloop.webhooks.service import DELIVER_TOPIC

if outbox.handlers.get(DELIVER_TOPIC) is None:
    tasks.register(outbox.handlers)
