"""Clearing fixtures: the payments sandbox and shop (a tenant with a merchant and two channels)."""

from tests.payments.conftest import sandbox, shop  # noqa: F401
