"""Routing tests read windows and breakers fresh from the database on every call (cache TTL 0)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from finloop.payments.routing import service


@pytest.fixture(autouse=True)
def fresh_routing_cache() -> Iterator[None]:
    saved = service.cache_settings.ttl_seconds
    service.cache_settings.ttl_seconds = 0.0
    service.reset_cache()
    yield
    service.cache_settings.ttl_seconds = saved
    service.reset_cache()
