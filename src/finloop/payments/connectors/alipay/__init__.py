"""The Alipay connector: the openapi gateway with RSA2-signed, key-sorted form parameters.

Importing this package registers the ``alipay`` provider.
"""

from __future__ import annotations

import httpx

from finloop.payments.connectors.alipay.client import AlipayConnector
from finloop.payments.connectors.base import ChannelConfig
from finloop.payments.connectors.registry import register


def factory(config: ChannelConfig, client: httpx.Client) -> AlipayConnector:
    return AlipayConnector(config, client)


register("alipay", factory)

__all__ = ["AlipayConnector", "factory"]
