"""Velocity tables: pre-bucketed counters and the small member sets behind distinct counts.

Every key is a blind index (a keyed HMAC-SHA256, see ``finloop.risk.velocity.keys``): no customer id, card
token, device id, IP address or phone number is stored in clear. A bucket is the epoch second of its start
(``bucket``, a multiple of ``granularity`` seconds). Counters are only ever incremented by an upsert
(``INSERT ... ON CONFLICT DO UPDATE SET event_count = event_count + excluded.event_count``), so concurrent
writers never lose a count; members are inserted or ignored.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base


class VelocityCounter(Base):
    __tablename__ = "risk_velocity_counters"
    __table_args__ = (
        CheckConstraint("event_count >= 0", name="count_non_negative"),
        CheckConstraint("granularity > 0 AND bucket % granularity = 0", name="bucket_aligned"),
        Index("ix_risk_velocity_counters_prune", "granularity", "bucket"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    #: customer, card, device, ip, phone, merchant.
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: Hex HMAC-SHA256 blind index of the key's value.
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``n`` (every event), ``r`` (refunds), ``a:<currency>`` (events with an amount in that currency).
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: Bucket width in seconds: 10, 60, 3600 or 86400.
    granularity: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Epoch second of the bucket's start.
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_count: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Sum of amounts in minor units (``a:<currency>`` rows only; 0 elsewhere).
    amount_sum: Mapped[int] = mapped_column(BigInteger, default=0)


class VelocityMember(Base):
    __tablename__ = "risk_velocity_members"
    __table_args__ = (
        CheckConstraint("granularity > 0 AND bucket % granularity = 0", name="bucket_aligned"),
        Index("ix_risk_velocity_members_prune", "granularity", "bucket"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The member dimension counted: cards, customers, devices, ips.
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    granularity: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: Blind index of the member's value.
    member_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
