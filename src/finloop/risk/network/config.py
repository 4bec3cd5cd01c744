"""The hub limit: how many customers a value may link before it is a hub (``FINLOOP_RISK_NETWORK_HUB_LIMIT``).

Changing it changes which links join components: run ``finloop risk network rebuild`` for each tenant after
a change (until then, existing components keep the old limit and new links follow the new one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from finloop.risk.network.domain import DEFAULT_HUB_LIMIT

HUB_LIMIT_VARIABLE = "FINLOOP_RISK_NETWORK_HUB_LIMIT"
MAX_HUB_LIMIT = 100_000
_override: list[int] = []


def hub_limit() -> int:
    """The limit in force: a ``use_hub_limit`` block's, else the environment's (1-100000), else 20."""
    if _override:
        return _override[-1]
    raw = os.environ.get(HUB_LIMIT_VARIABLE, "").strip()
    if raw.isdigit() and 1 <= int(raw) <= MAX_HUB_LIMIT:
        return int(raw)
    return DEFAULT_HUB_LIMIT


@contextmanager
def use_hub_limit(limit: int) -> Iterator[int]:
    """Use ``limit`` inside the block (process-wide; for tests and one-off commands)."""
    if not 1 <= limit <= MAX_HUB_LIMIT:
        raise ValueError(f"the hub limit is 1-{MAX_HUB_LIMIT}")
    _override.append(limit)
    try:
        yield limit
    finally:
        _override.pop()
