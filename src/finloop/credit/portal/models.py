"""Tables of the borrower portal: the one-time sign-in links the platform issues for an applicant (each opening at
most one borrower session), and the messages between a borrower and support.

Invariants the database enforces:
- a link is stored only as the SHA-256 of its token (unique), and a session only as the SHA-256 of its cookie
  (unique): neither can be read back from the database;
- a link opens its session when it is used, and only then: ``used_at``, ``session_digest`` and
  ``session_expires_at`` are all set or all empty;
- a message is written by the borrower or by staff, and is not empty.
Invariants the service keeps: a link is used at most once (a conditional update), before it expires; a session
ends at ``session_expires_at`` or at sign-out, whichever comes first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finloop.db.base import Base
from finloop.db.types import UTCDateTime


class PortalLink(Base):
    """A sign-in link for one applicant, and the borrower session it opened once used."""

    __tablename__ = "credit_portal_links"
    __table_args__ = (
        UniqueConstraint("token_digest"),
        UniqueConstraint("session_digest"),
        CheckConstraint("(used_at IS NULL) = (session_digest IS NULL) AND "
                        "(used_at IS NULL) = (session_expires_at IS NULL)", name="session_only_when_used"),
        Index("ix_credit_portal_links_applicant", "tenant_id", "applicant_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    token_digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    session_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    session_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PortalMessage(Base):
    """One message of the conversation between a borrower and support."""

    __tablename__ = "credit_portal_messages"
    __table_args__ = (
        CheckConstraint("sender IN ('borrower', 'staff')", name="sender_known"),
        CheckConstraint("length(body) > 0", name="body_not_empty"),
        Index("ix_credit_portal_messages_applicant", "tenant_id", "applicant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    applicant_id: Mapped[str] = mapped_column(ForeignKey("credit_applicants.id"))
    sender: Mapped[str] = mapped_column(String(8))
    #: Who wrote it: ``borrower:<applicant id>``, or the staff user's or API key's actor.
    actor: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
