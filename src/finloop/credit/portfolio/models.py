"""Portfolio tables: the tenant's operating cost policy (how overhead is allocated to loans in the P&L).

Invariants the database enforces: one policy per tenant. The policy's JSON is checked by
``domain.check_operating_cost_policy`` before it is written; without a row the tenant has the default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class OperatingCostPolicy(Base):
    """A tenant's operating cost allocation: ``{"method": "principal_rate", "annual_rate": "0.01"}`` or
    ``{"method": "per_loan_month", "amounts": {"CNY": 800}}``."""

    __tablename__ = "credit_operating_cost_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
