"""The WeChat Pay (API v3) connector. Importing this package registers it as provider ``"wechat"``.

Invariants owned here: exactly one factory is registered for ``"wechat"``, and it builds a
``WechatConnector`` from a ``ChannelConfig`` and an ``httpx.Client`` without any network call.
"""

from finloop.payments.connectors.registry import register
from finloop.payments.connectors.wechat.client import WechatConnector, make_connector, set_default_clock

register("wechat", make_connector)

__all__ = ["WechatConnector", "make_connector", "set_default_clock"]
