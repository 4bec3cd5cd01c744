"""Shared loaders for the WeChat Pay golden fixtures (made by ``fixtures/wechat/generate.py`` with openssl).

No tests here: the test_wechat_* modules import these helpers (the name keeps the file with its tests).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from finloop.core.clock import FrozenClock
from finloop.payments.connectors.base import ChannelConfig
from finloop.payments.connectors.wechat.client import WechatConnector

FIXTURES = Path(__file__).parent / "fixtures" / "wechat"
#: The golden request's timestamp, 1772442000.
GOLDEN_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOLDEN_NONCE = "593BEC0C930BF1AFEB40B4A08C8FB242"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text(name))
    return data


def settings() -> dict[str, str]:
    data: dict[str, str] = load("settings.json")
    return data


def golden_config(**overrides: Any) -> ChannelConfig:
    values = settings()
    config_settings: dict[str, Any] = {"mchid": values["mchid"], "appid": values["appid"],
                                       "serial_no": values["serial_no"], "platform_serial": values["platform_serial"]}
    config_settings.update(overrides)
    return ChannelConfig(code="wxpay", provider="wechat", base_url=values["base_url"], settings=config_settings,
                         credentials={"merchant_private_key": text("merchant_private_key.pem"),
                                      "platform_public_key": text("platform_public_key.pem"),
                                      "api_v3_key": values["api_v3_key"]})


def golden_connector(handler: Any, *, clock: FrozenClock | None = None, **overrides: Any) -> WechatConnector:
    """A connector on the golden keys, clock and nonce, talking to ``handler`` (an httpx MockTransport handler)."""
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WechatConnector(golden_config(**overrides), client, clock=clock or FrozenClock(GOLDEN_AT),
                           nonce=lambda: GOLDEN_NONCE)


def reply(exchange: dict[str, Any]) -> httpx.Response:
    response = exchange["response"]
    return httpx.Response(response["status"], headers=response["headers"], content=response["body"].encode())
