"""Payments fixtures: a pinned vault master key, an in-process sandbox the connectors talk to, and a
tenant with a merchant and two generic channels registered through the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from finloop.core.clock import FrozenClock
from finloop.db.uow import Database
from finloop.payments import gateway
from finloop.payments.connectors.sandbox.app import InProcessSandbox
from tests.conftest import TenantHandle

SANDBOX_CHANNELS = {"unionpay": "generic", "paypal": "generic"}


@pytest.fixture
def sandbox(clock: FrozenClock) -> Iterator[InProcessSandbox]:
    box = InProcessSandbox(clock, seed=7, channels=SANDBOX_CHANNELS)
    with gateway.use_http_client(box.client):
        yield box


@dataclass
class Shop:
    tenant: TenantHandle
    merchant_id: str
    channels: dict[str, dict[str, Any]]


def register_channel(client: TestClient, tenant: TenantHandle, sandbox: InProcessSandbox, code: str, *,
                     methods: list[str] | None = None, fee_rate: str = "0.006") -> dict[str, Any]:
    config = sandbox.config(code)
    response = client.post("/v1/channels", headers=tenant.headers, json={
        "code": code, "provider": config.provider, "base_url": config.base_url,
        "methods": methods or ["card", "qr", "h5"], "currencies": ["CNY", "USD"], "fee_rate": fee_rate,
        "settings": {k: str(v) for k, v in config.settings.items()}, "credentials": dict(config.credentials)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def shop(client: TestClient, tenant: TenantHandle, sandbox: InProcessSandbox, db: Database) -> Shop:
    channels = {code: register_channel(client, tenant, sandbox, code) for code in SANDBOX_CHANNELS}
    response = client.post("/v1/merchants", headers=tenant.headers, json={"reference": "M1", "name": "Tea House"})
    assert response.status_code == 201, response.text
    return Shop(tenant, response.json()["id"], channels)


def tokenize(client: TestClient, tenant: TenantHandle, number: str = "4242424242424242") -> str:
    response = client.post("/v1/cards", headers=tenant.headers,
                           json={"number": number, "exp_month": 12, "exp_year": 2030})
    assert response.status_code == 201, response.text
    card_id: str = response.json()["id"]
    return card_id
