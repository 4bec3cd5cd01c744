"""`finloop reconciliation` commands of the matching engine (registered on the reconciliation app)."""

from __future__ import annotations

from finloop.reconciliation.cli import reconciliation_app  # noqa: F401
