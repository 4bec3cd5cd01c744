"""Connectors by provider name. Each provider package registers its factory when imported."""

from __future__ import annotations

import importlib

import httpx

from finloop.payments.connectors.base import ChannelConfig, Connector, ConnectorFactory

#: The provider packages under ``finloop.payments.connectors``; importing one registers its factory.
PROVIDER_PACKAGES = ("generic", "wechat", "alipay", "stripe")

_factories: dict[str, ConnectorFactory] = {}


def register(provider: str, factory: ConnectorFactory) -> None:
    existing = _factories.get(provider)
    if existing is not None and existing is not factory:
        raise ValueError(f"connector provider {provider!r} is already registered")
    _factories[provider] = factory


def _load() -> None:
    for package in PROVIDER_PACKAGES:
        importlib.import_module(f"finloop.payments.connectors.{package}")


def providers() -> list[str]:
    _load()
    return sorted(_factories)


def build(config: ChannelConfig, client: httpx.Client) -> Connector:
    """The connector for ``config.provider``, speaking HTTP through ``client`` (a real ``httpx.Client``,
    or a ``TestClient`` bound to the in-process sandbox app)."""
    _load()
    factory = _factories.get(config.provider)
    if factory is None:
        raise KeyError(f"no connector for provider {config.provider!r}; known: {sorted(_factories)}")
    return factory(config, client)
