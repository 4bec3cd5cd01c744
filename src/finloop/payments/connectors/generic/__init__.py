"""The generic connector: a simple JSON + HMAC-SHA256 protocol (the UnionPay-like and PayPal-like sandbox
channels speak it). Importing this package registers the ``generic`` provider."""

from finloop.payments.connectors.generic.client import GenericConnector, make_connector
from finloop.payments.connectors.registry import register

register("generic", make_connector)

__all__ = ["GenericConnector", "make_connector"]
