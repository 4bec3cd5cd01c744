"""The disputes table: one row per chargeback a channel notified us of.

Invariants the database enforces: a dispute's amount is positive BIGINT minor units; the merchant sources
it was taken from (pending balance, reserve, and a receivable for the shortfall) are non-negative and sum
to the amount; a channel's dispute id is unique per tenant and channel, so a re-sent notification is
recognised by the insert itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import Json, UTCDateTime


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "channel_dispute_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee_amount >= 0", name="fee_non_negative"),
        CheckConstraint("from_pending_amount >= 0 AND from_reserve_amount >= 0 AND receivable_amount >= 0 "
                        "AND from_pending_amount + from_reserve_amount + receivable_amount = amount",
                        name="sources_sum_to_amount"),
        Index("ix_disputes_tenant_created", "tenant_id", "id"),
        Index("ix_disputes_tenant_payment", "tenant_id", "payment_id", "id"),
        Index("ix_disputes_tenant_status", "tenant_id", "status", "id"),
        Index("ix_disputes_due", "status", "evidence_due_by"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"))
    #: None for a disputed wallet top-up, whose money came back out of the customer's wallet.
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), nullable=True)
    attempt_id: Mapped[str] = mapped_column(String(40))  # the attempt that took the money
    channel: Mapped[str] = mapped_column(String(40))
    channel_dispute_id: Mapped[str] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    #: How it closed: "channel" (the channel decided), "accepted" (by the merchant), "evidence_overdue".
    resolution: Mapped[str | None] = mapped_column(String(20), nullable=True)
    evidence_due_by: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    evidence_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    evidence_files: Mapped[list[str]] = mapped_column(Json, default=list)
    evidence_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Where the disputed amount was taken from when the dispute opened; a win gives it back the same way.
    from_pending_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    from_reserve_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    receivable_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # the channel's chargeback fee, on a loss
    opened_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    closed_entry_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
