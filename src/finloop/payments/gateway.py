"""How the payments service reaches a channel: configured connectors over one shared HTTP client.

The client is process-wide (connection pooling across requests); tests and the demo swap it for one
bound to the in-process sandbox with ``use_http_client``. Building a connector unseals the channel's
credentials, which needs the database, so it happens inside the transaction that records the attempt;
the call itself happens after that transaction has committed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from finloop.db.uow import UnitOfWork
from finloop.payments.connectors import registry
from finloop.payments.connectors.base import ChannelConfig, Connector
from finloop.payments.models import Channel

CREDENTIALS_PURPOSE = "channel_credentials"

_lock = threading.Lock()
_client: httpx.Client | None = None


def http_client() -> httpx.Client:
    global _client
    with _lock:
        if _client is None:
            _client = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0),
                                   limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        return _client


@contextmanager
def use_http_client(client: httpx.Client) -> Iterator[httpx.Client]:
    """Route every connector call through ``client`` (e.g. a TestClient of the sandbox app) meanwhile."""
    global _client
    with _lock:
        previous, _client = _client, client
    try:
        yield client
    finally:
        with _lock:
            _client = previous


def notify_url(channel: Channel) -> str:
    """Where the channel sends its notifications: our public address, the channel's id in the path."""
    from finloop.config import get_settings

    return f"{get_settings().public_url.rstrip('/')}/v1/channels/{channel.id}/notifications"


def seal_credentials(uow: UnitOfWork, tenant_id: str, credentials: dict[str, str]) -> str:
    from finloop.vault import service as vault

    if not credentials:
        return ""
    return vault.seal_secret(uow, tenant_id, json.dumps(credentials, sort_keys=True).encode(),
                             purpose=CREDENTIALS_PURPOSE)


#: Unsealed channel credentials by (master key id, tenant, sealed text). A sealed text always unseals to the
#: same credentials (new credentials are a new sealed text), so an entry is never stale; unsealing one is a
#: key read and a decryption, once per process instead of once per payment. Bounded, oldest out first.
_credentials: OrderedDict[tuple[str, str, str], dict[str, str]] = OrderedDict()
_CREDENTIALS_CACHED = 256


def _unsealed_credentials(uow: UnitOfWork, channel: Channel) -> dict[str, str]:
    from finloop.vault import crypto
    from finloop.vault import service as vault

    sealed = channel.credentials_sealed
    cache_key = (crypto.master_key().id, channel.tenant_id, sealed)
    with _lock:
        found = _credentials.get(cache_key)
    if found is None:
        found = json.loads(vault.unseal_secret(uow, channel.tenant_id, sealed, purpose=CREDENTIALS_PURPOSE))
        with _lock:
            _credentials[cache_key] = found
            while len(_credentials) > _CREDENTIALS_CACHED:
                _credentials.popitem(last=False)
    return dict(found)


def channel_config(uow: UnitOfWork, channel: Channel) -> ChannelConfig:
    credentials: dict[str, str] = {}
    if channel.credentials_sealed:
        credentials = _unsealed_credentials(uow, channel)
    return ChannelConfig(code=channel.code, provider=channel.provider, base_url=channel.base_url,
                         settings=dict(channel.settings), credentials=credentials,
                         timeout_seconds=channel.timeout_ms / 1000)


def connector_for(uow: UnitOfWork, channel: Channel) -> Connector:
    return registry.build(channel_config(uow, channel), http_client())
