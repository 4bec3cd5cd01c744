"""`finloop risk` commands of the association network (registered on the risk app)."""

from __future__ import annotations

from finloop.risk.cli import risk_app  # noqa: F401
