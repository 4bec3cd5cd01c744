"""``finloop bench recon``: reconciliation throughput beside a plain polars join (filled in by the matching engine)."""

from __future__ import annotations

from typing import Any


def run(*, rows: int, seed: int) -> dict[str, Any]:
    raise NotImplementedError("the reconciliation benchmark lands with the matching engine")
