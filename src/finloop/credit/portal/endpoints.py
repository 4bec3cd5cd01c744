"""Borrower portal HTTP endpoints (under ``/v1/credit``): the platform issues an applicant's sign-in link, and
support reads and answers the borrower's messages (one applicant's conversation, or every borrower's newest first).

Issuing a link and answering need ``credit.service``; reading the conversation needs any key of the tenant.
A link's token is in the first answer only: an Idempotency-Key replay gives the link without it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.credit.portal import service
from finloop.credit.portal.schemas import (
    PortalLinkCreate,
    PortalLinkRead,
    PortalMessageCreate,
    PortalMessageRead,
    read_link,
    read_message,
)
from finloop.db.uow import UnitOfWork

router = APIRouter(prefix="/credit", tags=["credit"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
SERVICE = "credit.service"


def _without_token(body: Any) -> Any:
    return {**body, "token": None, "url": None}


@router.post("/applicants/{applicant_id}/portal-links", response_model=PortalLinkRead, status_code=201,
             summary="Issue a one-time sign-in link to the borrower portal for an applicant")
def create_portal_link(applicant_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                       body: PortalLinkCreate | None = None):
    body = body or PortalLinkCreate()

    def work(uow: UnitOfWork) -> PortalLinkRead:
        link, token = service.issue_link(uow, writer.tenant_id, applicant_id,
                                         expires_in_seconds=body.expires_in_seconds, actor=writer.principal.actor)
        return read_link(link, token)

    return writer.run(work, permission=SERVICE, status_code=201, stored=_without_token)


@router.get("/applicants/{applicant_id}/portal-messages", response_model=Page[PortalMessageRead],
            summary="The conversation between an applicant and support, oldest first")
def list_portal_messages(applicant_id: Id, reader: CurrentReader, limit: Limit = 100,
                         starting_after: Cursor = None) -> Page[PortalMessageRead]:
    return reader.run(lambda uow: page(service.list_messages(uow, reader.tenant_id, applicant_id,
                                                             after=starting_after, limit=limit),
                                       limit, read_message, lambda m: m.id))


@router.get("/portal-messages", response_model=Page[PortalMessageRead],
            summary="Every borrower's portal messages, newest first (sender=borrower: support's inbox)")
def list_all_portal_messages(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                             sender: Annotated[Literal["borrower", "staff"] | None, Query()] = None,
                             ) -> Page[PortalMessageRead]:
    return reader.run(lambda uow: page(service.list_all_messages(uow, reader.tenant_id, sender=sender,
                                                                 before=starting_after, limit=limit),
                                       limit, read_message, lambda m: m.id))


@router.post("/applicants/{applicant_id}/portal-messages", response_model=PortalMessageRead, status_code=201,
             summary="Answer a borrower in the portal (support's message)")
def create_portal_message(applicant_id: Id, body: PortalMessageCreate,  # type: ignore[no-untyped-def]
                          writer: CurrentWriter):
    return writer.run(lambda uow: read_message(service.post_message(
        uow, writer.tenant_id, applicant_id, sender="staff", body=body.body, actor=writer.principal.actor)),
        permission=SERVICE, status_code=201)
