"""Borrower portal use cases: sign-in links, borrower sessions, what a borrower may see, and messages to support.

A borrower is a credit applicant, never a staff user. The platform (an API key) issues a sign-in link for an
applicant: a random token shown once and stored as its SHA-256, valid for ``LINK_SECONDS`` and used at most once.
Using it opens a borrower session — another random token, the cookie's value, also stored only as its digest —
that ends after ``SESSION_SECONDS`` or at sign-out. Every read below takes the session's applicant and refuses
(404) anything of another applicant, exactly as another tenant's object is refused.

Every function takes a unit of work and never commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from finloop.audit import service as audit
from finloop.core.errors import InvalidRequest, NotFound, Unauthenticated
from finloop.credit import applications, disbursement
from finloop.credit import service as credit
from finloop.credit.models import Loan, LoanApplication
from finloop.credit.portal.models import PortalLink, PortalMessage
from finloop.db.uow import UnitOfWork

#: How long an issued link may wait to be opened: long enough to reach a phone, short enough not to linger.
LINK_SECONDS = 15 * 60
MIN_LINK_SECONDS = 60
MAX_LINK_SECONDS = 60 * 60
#: How long a borrower session lasts; a new link starts a new one.
SESSION_SECONDS = 30 * 60
MAX_MESSAGE_LENGTH = 2000
SENDERS = ("borrower", "staff")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def borrower_actor(applicant_id: str) -> str:
    """The actor the audit log and the credit records name for what a borrower did in the portal."""
    return f"borrower:{applicant_id}"


# ---------------------------------------------------------------------------------------------- links and sessions


def issue_link(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, expires_in_seconds: int = LINK_SECONDS,
               actor: str) -> tuple[PortalLink, str]:
    """A new sign-in link for the applicant and its token (returned here only: the database keeps its digest)."""
    if isinstance(expires_in_seconds, bool) or not isinstance(expires_in_seconds, int) \
            or not MIN_LINK_SECONDS <= expires_in_seconds <= MAX_LINK_SECONDS:
        raise InvalidRequest(f"expires_in_seconds is {MIN_LINK_SECONDS} to {MAX_LINK_SECONDS}.",
                             code="invalid_expiry", param="expires_in_seconds")
    applicant = credit.get_applicant(uow, tenant_id, applicant_id)
    token = secrets.token_urlsafe(32)
    now = uow.clock.now()
    link = PortalLink(id=uow.ids.new("portal_link"), tenant_id=tenant_id, applicant_id=applicant.id,
                      token_digest=_digest(token), expires_at=now + timedelta(seconds=expires_in_seconds),
                      used_at=None, session_digest=None, session_expires_at=None, signed_out_at=None,
                      created_by=actor[:60], created_at=now)
    uow.session.add(link)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="credit.portal_link.issued", object_type="portal_link",
                 object_id=link.id, after={"applicant_id": applicant.id, "expires_at": link.expires_at.isoformat()})
    return link, token


def open_session(uow: UnitOfWork, token: str) -> tuple[PortalLink, str]:
    """Use a sign-in link: the session it opens and that session's token (the cookie's value).

    The link is marked used by a conditional update, so of two requests racing with the same token only one
    opens a session."""
    link = uow.session.scalar(select(PortalLink).where(PortalLink.token_digest == _digest(token or "")))
    if link is None:
        raise Unauthenticated("This sign-in link is not valid; ask for a new one.", code="portal_link_invalid",
                              param="token")
    now = uow.clock.now()
    if link.used_at is not None:
        raise Unauthenticated("This sign-in link was already used; ask for a new one.", code="portal_link_used",
                              param="token")
    if link.expires_at <= now:
        raise Unauthenticated("This sign-in link has expired; ask for a new one.", code="portal_link_expired",
                              param="token")
    session_token = secrets.token_urlsafe(32)
    claimed = uow.session.execute(
        update(PortalLink).where(PortalLink.id == link.id, PortalLink.used_at.is_(None))
        .values(used_at=now, session_digest=_digest(session_token),
                session_expires_at=now + timedelta(seconds=SESSION_SECONDS))
        .execution_options(synchronize_session=False))
    if getattr(claimed, "rowcount", 0) != 1:
        raise Unauthenticated("This sign-in link was already used; ask for a new one.", code="portal_link_used",
                              param="token")
    uow.session.refresh(link)
    audit.record(uow, link.tenant_id, actor=borrower_actor(link.applicant_id), action="credit.portal.signed_in",
                 object_type="portal_link", object_id=link.id, after={"applicant_id": link.applicant_id})
    return link, session_token


@dataclass(frozen=True, slots=True)
class BorrowerSession:
    """Who a portal request is for: the session (the link that opened it) and its applicant."""

    session_id: str
    tenant_id: str
    applicant_id: str
    expires_at: datetime

    @property
    def actor(self) -> str:
        return borrower_actor(self.applicant_id)


def session_of(uow: UnitOfWork, session_token: str | None) -> BorrowerSession:
    """The open borrower session a cookie names; 401 when there is none, it ended or it was signed out."""
    link = None
    if session_token:
        link = uow.session.scalar(select(PortalLink).where(PortalLink.session_digest == _digest(session_token)))
    if link is None or link.signed_out_at is not None or link.session_expires_at is None \
            or link.session_expires_at <= uow.clock.now():
        raise Unauthenticated("Your session has ended; open a new sign-in link.", code="portal_session_ended")
    return BorrowerSession(link.id, link.tenant_id, link.applicant_id, link.session_expires_at)


def sign_out(uow: UnitOfWork, borrower: BorrowerSession) -> None:
    link = uow.session.get(PortalLink, borrower.session_id)
    if link is not None and link.signed_out_at is None:
        link.signed_out_at = uow.clock.now()
        uow.session.flush()
        audit.record(uow, link.tenant_id, actor=borrower.actor, action="credit.portal.signed_out",
                     object_type="portal_link", object_id=link.id, after={"applicant_id": link.applicant_id})


# ---------------------------------------------------------------------------------------------- a borrower's records


def loans_of(uow: UnitOfWork, borrower: BorrowerSession) -> list[Loan]:
    return list(uow.session.scalars(select(Loan).where(
        Loan.tenant_id == borrower.tenant_id, Loan.applicant_id == borrower.applicant_id).order_by(Loan.id.desc())))


def get_loan(uow: UnitOfWork, borrower: BorrowerSession, loan_id: str) -> Loan:
    """The borrower's own loan; another applicant's is not found, as if it did not exist."""
    loan = disbursement.get_loan(uow, borrower.tenant_id, loan_id)
    if loan.applicant_id != borrower.applicant_id:
        raise NotFound(f"No such loan: {loan_id[:40]}.", code="loan_not_found", param="loan_id")
    return loan


def applications_of(uow: UnitOfWork, borrower: BorrowerSession, *, limit: int = 20) -> list[LoanApplication]:
    return list(uow.session.scalars(select(LoanApplication).where(
        LoanApplication.tenant_id == borrower.tenant_id, LoanApplication.applicant_id == borrower.applicant_id)
        .order_by(LoanApplication.id.desc()).limit(limit)))


def get_application(uow: UnitOfWork, borrower: BorrowerSession, application_id: str) -> LoanApplication:
    """The borrower's own application; another applicant's is not found."""
    application = applications.get_application(uow, borrower.tenant_id, application_id)
    if application.applicant_id != borrower.applicant_id:
        raise NotFound(f"No such loan application: {application_id[:40]}.", code="application_not_found",
                       param="application_id")
    return application


# ---------------------------------------------------------------------------------------------- messages


def check_body(value: str | None) -> str:
    """A message: at most ``MAX_MESSAGE_LENGTH`` printable characters, line breaks allowed, not empty."""
    body = (value or "").replace("\r\n", "\n").strip()
    if not body:
        raise InvalidRequest("Write a message.", code="parameter_missing", param="body")
    if len(body) > MAX_MESSAGE_LENGTH or not all(ch.isprintable() or ch == "\n" for ch in body):
        raise InvalidRequest(f"A message is at most {MAX_MESSAGE_LENGTH} printable characters.",
                             code="invalid_text", param="body")
    return body


def post_message(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, sender: str, body: str | None,
                 actor: str) -> PortalMessage:
    """A message from the borrower to support, or support's answer (``sender`` staff)."""
    if sender not in SENDERS:
        raise InvalidRequest("sender is borrower or staff.", code="invalid_sender", param="sender")
    text = check_body(body)
    applicant = credit.get_applicant(uow, tenant_id, applicant_id)
    message = PortalMessage(id=uow.ids.new("portal_message"), tenant_id=tenant_id, applicant_id=applicant.id,
                            sender=sender, actor=actor[:60], body=text, created_at=uow.clock.now())
    uow.session.add(message)
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action=f"credit.portal_message.{sender}", object_type="portal_message",
                 object_id=message.id, after={"applicant_id": applicant.id, "length": len(text)})
    return message


def list_messages(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, after: str | None = None,
                  limit: int = 100) -> list[PortalMessage]:
    """The conversation with one applicant, oldest first (``limit + 1`` rows, for paging)."""
    credit.get_applicant(uow, tenant_id, applicant_id)
    query = select(PortalMessage).where(PortalMessage.tenant_id == tenant_id,
                                        PortalMessage.applicant_id == applicant_id)
    if after:
        query = query.where(PortalMessage.id > after)
    return list(uow.session.scalars(query.order_by(PortalMessage.id).limit(limit + 1)))


def list_all_messages(uow: UnitOfWork, tenant_id: str, *, sender: str | None = None, before: str | None = None,
                      limit: int = 50) -> list[PortalMessage]:
    """Every applicant's messages, newest first (``limit + 1`` rows): support's inbox, with ``sender="borrower"``."""
    if sender is not None and sender not in SENDERS:
        raise InvalidRequest("sender is borrower or staff.", code="invalid_sender", param="sender")
    query = select(PortalMessage).where(PortalMessage.tenant_id == tenant_id)
    if sender:
        query = query.where(PortalMessage.sender == sender)
    if before:
        query = query.where(PortalMessage.id < before)
    return list(uow.session.scalars(query.order_by(PortalMessage.id.desc()).limit(limit + 1)))


def recent_messages(uow: UnitOfWork, tenant_id: str, applicant_id: str, *, limit: int = 200) -> list[PortalMessage]:
    """The latest ``limit`` messages of the conversation, oldest first: what the borrower's page shows."""
    rows = list(uow.session.scalars(select(PortalMessage).where(
        PortalMessage.tenant_id == tenant_id, PortalMessage.applicant_id == applicant_id)
        .order_by(PortalMessage.id.desc()).limit(limit)))
    return rows[::-1]
