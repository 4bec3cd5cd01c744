"""Vault test fixtures: every test gets its own master key, so nothing reads or writes a key file in the
working directory, and the process-wide data-key cache starts empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from finloop.vault import crypto, service
from finloop.vault.crypto import MasterKey


@pytest.fixture(autouse=True)
def master_key() -> Iterator[MasterKey]:
    key = MasterKey.generate()
    crypto.use_master_key(key)
    service._cache.clear()
    yield key
    crypto.use_master_key(None)
    service._cache.clear()

