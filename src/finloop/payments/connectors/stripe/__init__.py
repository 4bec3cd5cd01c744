"""The Stripe connector: card payments over Stripe's form-encoded REST API, with signed webhooks.

Importing this package registers the ``stripe`` provider.
"""

from __future__ import annotations

import httpx

from finloop.payments.connectors.base import ChannelConfig
from finloop.payments.connectors.registry import register
from finloop.payments.connectors.stripe.client import StripeConnector


def factory(config: ChannelConfig, client: httpx.Client) -> StripeConnector:
    return StripeConnector(config, client)


register("stripe", factory)

__all__ = ["StripeConnector", "factory"]
