"""Clearing use cases: fee schedules, fees, and daily clearing batches per channel."""

from __future__ import annotations

from enum import StrEnum

from finloop.db.uow import UnitOfWork


class FeeBearer(StrEnum):
    """Who carries the channel's fee: the platform (an expense), the merchant (taken from its income),
    or every party of the split in proportion to its share."""

    PLATFORM = "platform"
    MERCHANT = "merchant"
    PRO_RATA = "pro_rata"


def fee_bearer(uow: UnitOfWork, tenant_id: str, channel_code: str, method: str) -> FeeBearer:
    """Who bears the fee of a payment by ``method`` through ``channel_code`` (the platform when no
    schedule says otherwise)."""
    return FeeBearer.PLATFORM
