"""Splits fixtures: the payments sandbox and shop, for splits of real payments."""

from __future__ import annotations

from tests.payments.conftest import sandbox, shop  # noqa: F401
