"""``finloop bench risk``: decisions per second and latency beside a single bare rule evaluation."""

from __future__ import annotations

from typing import Any


def run(*, seconds: float, rules: int, seed: int) -> dict[str, Any]:
    raise NotImplementedError("the risk benchmark lands with the decision service")
