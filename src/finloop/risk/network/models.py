"""Association network tables: customers, the values they carried (blind-indexed), the links between them,
the connected components and the fraud marks.

Invariants kept by ``network.service`` (no foreign keys between these tables, so a merge relabels customers
without lock traffic on the component rows; the tests and ``rebuild`` check them):
- an identifier row holds a keyed blind index of the value (``lists.blind_index``) and a masked display,
  never the value; ``customers`` counts the distinct customers ever linked to it and equals the number of
  its links; ``first_customer_id`` is the customer of its rank-1 link;
- a link's ``rank`` is the identifier's customer count when the link was made (1, 2, ...): unique per
  identifier. Links of rank up to the hub limit join components; later ones never do;
- a component's ``size`` is the number of customers whose ``component_id`` names it and ``fraud_members``
  the number of those with ``is_fraud``; a customer ``is_fraud`` exactly when it has at least one mark.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import UTCDateTime


class NetworkCustomer(Base):
    __tablename__ = "risk_network_customers"
    __table_args__ = (Index("ix_risk_network_customers_component", "tenant_id", "component_id"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    #: The event's ``customer_id`` (a reference, already stored in clear on decisions and cases).
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    component_id: Mapped[str] = mapped_column(String(40))
    is_fraud: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Our ``customers.created_at`` and ``metadata.country`` when the id is one of ours (read once, when the
    #: node is made).
    account_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    account_country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    #: The IP country of the latest located event and its time (impossible travel).
    last_country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    last_located_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: First and latest decided event (None for a customer known only from a fraud mark).
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class NetworkIdentifier(Base):
    __tablename__ = "risk_network_identifiers"
    __table_args__ = (CheckConstraint("customers >= 0", name="customers_non_negative"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    #: device, ip, phone, card, payout_account, email.
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: Hex HMAC-SHA256 blind index of the normalised value (``lists.blind_index``).
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Masked (``****1234``, ``a***@example.com``).
    display: Mapped[str] = mapped_column(String(200))
    customers: Mapped[int] = mapped_column(Integer, default=0)
    first_customer_id: Mapped[str] = mapped_column(String(100))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NetworkLink(Base):
    __tablename__ = "risk_network_links"
    __table_args__ = (
        CheckConstraint("rank >= 1", name="rank_positive"),
        Index("ix_risk_network_links_identifier", "tenant_id", "kind", "key_hash", "rank"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Refreshed when an event comes more than ``service.LINK_REFRESH`` (a day) after it: a day's precision.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NetworkComponent(Base):
    __tablename__ = "risk_network_components"
    __table_args__ = (
        CheckConstraint("size >= 0", name="size_non_negative"),
        CheckConstraint("fraud_members >= 0 AND fraud_members <= size", name="fraud_within_size"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    fraud_members: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NetworkFraudMark(Base):
    """Why a customer counts as fraud: ``decision:<id>`` (labelled fraud), ``case:<id>`` (confirmed fraud),
    ``list`` (black-listed)."""

    __tablename__ = "risk_network_fraud_marks"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(60), primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)
