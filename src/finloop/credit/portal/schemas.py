"""Wire shapes of the borrower portal's API: sign-in links and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from finloop.credit.portal import service
from finloop.credit.portal.models import PortalLink, PortalMessage
from finloop.credit.schemas import Strict


class PortalLinkCreate(Strict):
    expires_in_seconds: Annotated[int, Field(ge=service.MIN_LINK_SECONDS, le=service.MAX_LINK_SECONDS)] = \
        service.LINK_SECONDS


class PortalLinkRead(BaseModel):
    object: str = "credit_portal_link"
    id: str
    applicant_id: str
    #: The path to send the borrower (on the console's host); it carries the token, shown only in this answer.
    url: str | None
    token: str | None
    expires_at: datetime
    created_at: datetime


class PortalMessageCreate(Strict):
    body: Annotated[str, Field(min_length=1, max_length=service.MAX_MESSAGE_LENGTH)]


class PortalMessageRead(BaseModel):
    object: str = "credit_portal_message"
    id: str
    applicant_id: str
    sender: str
    actor: str
    body: str
    created_at: datetime


def sign_in_path(token: str) -> str:
    return f"/console/portal/sign-in?token={token}"


def read_link(row: PortalLink, token: str | None) -> PortalLinkRead:
    return PortalLinkRead(id=row.id, applicant_id=row.applicant_id, url=sign_in_path(token) if token else None,
                          token=token, expires_at=row.expires_at, created_at=row.created_at)


def read_message(row: PortalMessage) -> PortalMessageRead:
    return PortalMessageRead(id=row.id, applicant_id=row.applicant_id, sender=row.sender, actor=row.actor,
                             body=row.body, created_at=row.created_at)
