"""Repayment channel HTTP endpoints (under ``/v1/credit``): a loan's repayment payments, debit mandates, direct
debit attempts and the tenant's direct debit policy.

Reads need any key of the tenant. Creating repayment payments and creating or revoking mandates need
``credit.service``; changing the direct debit policy needs ``credit.configure`` (it is configuration, like the
other credit policies). Every POST takes an Idempotency-Key. A mandate's card shows only its last four digits.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.credit.repayment_channels import flows, service
from finloop.credit.repayment_channels.domain import DebitStatus, LinkStatus, MandateStatus
from finloop.credit.repayment_channels.schemas import (
    DebitPolicyRead,
    DebitPolicyWrite,
    DirectDebitRead,
    MandateCreate,
    MandateRead,
    RepaymentPaymentCreate,
    RepaymentPaymentRead,
    read_debit,
    read_debit_policy,
    read_mandate,
    read_repayment_payment,
)
from finloop.db.uow import UnitOfWork
from finloop.payments import service as payments
from finloop.payments.models import Payment

router = APIRouter(prefix="/credit", tags=["credit"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
ObjectQuery = Annotated[Line | None, Query(max_length=40)]
SERVICE = "credit.service"
CONFIGURE = "credit.configure"


def _read_link(uow: UnitOfWork, tenant_id: str, payment_id: str) -> RepaymentPaymentRead:
    link = service.get_repayment_payment(uow, tenant_id, payment_id)
    return read_repayment_payment(link, payments.get_payment(uow, tenant_id, payment_id))


@router.post("/loans/{loan_id}/repayment-payments", response_model=RepaymentPaymentRead, status_code=201,
             summary="Create the payment a borrower completes to repay a loan (default amount: what is due now)")
def create_repayment_payment(loan_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                             body: RepaymentPaymentCreate | None = None):
    body = body or RepaymentPaymentCreate()
    created: list[str] = []

    def flow() -> None:
        created.append(flows.start_repayment_payment(
            writer.db, writer.tenant_id, loan_id, amount=body.amount, method=body.method, card_id=body.card_id,
            description=body.description, confirm=body.confirm, actor=writer.principal.actor))

    return writer.run_flow(flow, lambda uow: _read_link(uow, writer.tenant_id, created[0]), status_code=201,
                           permission=SERVICE)


@router.get("/repayment-payments", response_model=Page[RepaymentPaymentRead],
            summary="List repayment payments, newest first")
def list_repayment_payments(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                            loan_id: ObjectQuery = None,
                            status: Annotated[LinkStatus | None, Query()] = None) -> Page[RepaymentPaymentRead]:
    def work(uow: UnitOfWork) -> Page[RepaymentPaymentRead]:
        rows = service.list_repayment_payments(uow, reader.tenant_id, loan_id=loan_id,
                                               status=status.value if status else None, after=starting_after,
                                               limit=limit)
        found = {p.id: p for p in uow.session.scalars(
            select(Payment).where(Payment.id.in_([r.payment_id for r in rows])))}
        return page(rows, limit, lambda r: read_repayment_payment(r, found[r.payment_id]), lambda r: r.payment_id)

    return reader.run(work)


@router.get("/repayment-payments/{payment_id}", response_model=RepaymentPaymentRead,
            summary="Get a repayment payment: its payment's status and what it repaid")
def get_repayment_payment(payment_id: Id, reader: CurrentReader) -> RepaymentPaymentRead:
    return reader.run(lambda uow: _read_link(uow, reader.tenant_id, payment_id))


@router.post("/mandates", response_model=MandateRead, status_code=201,
             summary="Record a borrower's debit mandate on a stored card (one loan, or all their loans)")
def create_mandate(body: MandateCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_mandate(service.create_mandate(
        uow, writer.tenant_id, applicant_id=body.applicant_id, loan_id=body.loan_id, card_id=body.card_id,
        channel=body.channel, max_amount=body.max_amount, reference=body.reference, actor=writer.principal.actor)),
        permission=SERVICE, status_code=201)


@router.get("/mandates", response_model=Page[MandateRead], summary="List debit mandates")
def list_mandates(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  applicant_id: ObjectQuery = None, loan_id: ObjectQuery = None,
                  status: Annotated[MandateStatus | None, Query()] = None) -> Page[MandateRead]:
    return reader.run(lambda uow: page(service.list_mandates(
        uow, reader.tenant_id, applicant_id=applicant_id, loan_id=loan_id, status=status.value if status else None,
        after=starting_after, limit=limit), limit, read_mandate, lambda m: m.id))


@router.get("/mandates/{mandate_id}", response_model=MandateRead, summary="Get a debit mandate")
def get_mandate(mandate_id: Id, reader: CurrentReader) -> MandateRead:
    return reader.run(lambda uow: read_mandate(service.get_mandate(uow, reader.tenant_id, mandate_id)))


@router.post("/mandates/{mandate_id}/revoke", response_model=MandateRead,
             summary="Revoke a mandate: no further debits (one under way still finishes)")
def revoke_mandate(mandate_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_mandate(service.revoke_mandate(uow, writer.tenant_id, mandate_id,
                                                                      actor=writer.principal.actor)),
                      permission=SERVICE)


@router.get("/direct-debits", response_model=Page[DirectDebitRead], summary="List direct debit attempts, newest first")
def list_direct_debits(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                       loan_id: ObjectQuery = None,
                       status: Annotated[DebitStatus | None, Query()] = None) -> Page[DirectDebitRead]:
    return reader.run(lambda uow: page(service.list_debits(
        uow, reader.tenant_id, loan_id=loan_id, status=status.value if status else None, after=starting_after,
        limit=limit), limit, read_debit, lambda d: d.id))


@router.get("/direct-debits/{direct_debit_id}", response_model=DirectDebitRead, summary="Get a direct debit attempt")
def get_direct_debit(direct_debit_id: Id, reader: CurrentReader) -> DirectDebitRead:
    return reader.run(lambda uow: read_debit(service.get_debit(uow, reader.tenant_id, direct_debit_id)))


@router.get("/direct-debit-policy", response_model=DebitPolicyRead,
            summary="The tenant's direct debit policy: on or off, attempts per due date, retry offsets")
def get_debit_policy(reader: CurrentReader) -> DebitPolicyRead:
    return reader.run(lambda uow: read_debit_policy(service.get_policy(uow, reader.tenant_id)))


@router.put("/direct-debit-policy", response_model=DebitPolicyRead, summary="Set the direct debit policy")
def put_debit_policy(body: DebitPolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_debit_policy(service.set_policy(uow, writer.tenant_id, body.data(),
                                                                       actor=writer.principal.actor)),
                      permission=CONFIGURE)
