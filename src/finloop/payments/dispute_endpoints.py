"""Disputes HTTP endpoints: list and read a tenant's disputes, submit evidence, accept a dispute.

Disputes are opened only by the channels' notifications (``disputes.handle_dispute_notification``); the
API lets the platform answer them. Reads need any key of the tenant; writes need ``payments.refund``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line, no_nul
from finloop.payments import disputes
from finloop.payments.dispute_models import Dispute
from finloop.payments.disputes import DisputeStatus

router = APIRouter(tags=["disputes"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
WRITE_PERMISSION = "payments.refund"


class Evidence(BaseModel):
    text: str
    files: list[str]
    submitted_at: datetime


class DisputeRead(BaseModel):
    id: str
    object: str = "dispute"
    payment_id: str
    merchant_id: str | None
    channel: str
    channel_dispute_id: str
    amount: int
    currency: str
    reason: str
    status: DisputeStatus
    resolution: str | None
    evidence_due_by: datetime | None
    evidence: Evidence | None
    from_pending_amount: int = Field(description="Taken from the merchant's pending balance.")
    from_reserve_amount: int = Field(description="Taken from the merchant's reserve.")
    receivable_amount: int = Field(description="Owed by the merchant: its balances did not cover the dispute.")
    fee_amount: int = Field(description="The channel's chargeback fee, booked when the dispute was lost.")
    opened_entry_id: str | None
    closed_entry_id: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class EvidenceSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=disputes.MAX_EVIDENCE_TEXT,
                               description="The merchant's account of the transaction."), AfterValidator(no_nul)]
    files: Annotated[list[Annotated[Line, Field(min_length=1, max_length=disputes.MAX_FILE_REFERENCE)]],
                     Field(max_length=disputes.MAX_EVIDENCE_FILES,
                           description="References (ids or URLs) of receipts, delivery proofs, messages.")] = []


def read_dispute(dispute: Dispute) -> DisputeRead:
    evidence = None
    if dispute.evidence_submitted_at is not None:
        evidence = Evidence(text=dispute.evidence_text or "", files=list(dispute.evidence_files or []),
                            submitted_at=dispute.evidence_submitted_at)
    return DisputeRead(
        id=dispute.id, payment_id=dispute.payment_id, merchant_id=dispute.merchant_id, channel=dispute.channel,
        channel_dispute_id=dispute.channel_dispute_id, amount=dispute.amount, currency=dispute.currency,
        reason=dispute.reason, status=DisputeStatus(dispute.status), resolution=dispute.resolution,
        evidence_due_by=dispute.evidence_due_by, evidence=evidence, from_pending_amount=dispute.from_pending_amount,
        from_reserve_amount=dispute.from_reserve_amount, receivable_amount=dispute.receivable_amount,
        fee_amount=dispute.fee_amount, opened_entry_id=dispute.opened_entry_id,
        closed_entry_id=dispute.closed_entry_id, created_at=dispute.created_at, updated_at=dispute.updated_at,
        closed_at=dispute.closed_at)


@router.get("/disputes", response_model=Page[DisputeRead], summary="List disputes, newest first")
def list_disputes(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  status: Annotated[DisputeStatus | None, Query()] = None,
                  payment_id: Annotated[Line | None, Query(max_length=40)] = None) -> Page[DisputeRead]:
    return reader.run(lambda uow: page(disputes.list_disputes(
        uow, reader.tenant_id, status=status.value if status else None, payment_id=payment_id,
        after=starting_after, limit=limit), limit, read_dispute, lambda d: d.id))


@router.get("/disputes/{dispute_id}", response_model=DisputeRead, summary="Get a dispute")
def get_dispute(dispute_id: Id, reader: CurrentReader) -> DisputeRead:
    return reader.run(lambda uow: read_dispute(disputes.get_dispute(uow, reader.tenant_id, dispute_id)))


@router.post("/disputes/{dispute_id}/evidence", response_model=DisputeRead,
             summary="Submit evidence; the dispute goes under review")
def submit_evidence(dispute_id: Id, body: EvidenceSubmit, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_dispute(disputes.submit_evidence(
        uow, writer.tenant_id, dispute_id, text=body.text, files=body.files)), permission=WRITE_PERMISSION)


@router.post("/disputes/{dispute_id}/accept", response_model=DisputeRead,
             summary="Accept a dispute: it is lost, the money stays with the cardholder")
def accept_dispute(dispute_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_dispute(disputes.accept_dispute(uow, writer.tenant_id, dispute_id)),
                      permission=WRITE_PERMISSION)
