"""Servicing HTTP endpoints: loan accounts, installments, repayments and early repayment, payoff quotes,
write-off and recoveries, the end of day, the sub-ledger check and the provisioning policy.

Reads need any key of the tenant. Applying repayments and recoveries needs ``credit.service``; writing a loan off
by hand ``credit.write_off``; running the end of day and changing the provisioning policy ``credit.configure``.
Every POST takes an Idempotency-Key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.credit.servicing import eod
from finloop.credit.servicing import service as servicing
from finloop.credit.servicing.domain import AccountState, Bucket
from finloop.credit.servicing.models import EndOfDayRun
from finloop.credit.servicing.schemas import (
    EndOfDayCreate,
    EndOfDayRunRead,
    EndOfDayRunsRead,
    InstallmentRead,
    LoanAccountRead,
    PayoffQuoteRead,
    ProvisionPolicyRead,
    ProvisionPolicyWrite,
    RecoveryCreate,
    RepaymentCreate,
    RepaymentRead,
    SubledgerCheckRead,
    WriteOffCreate,
    read_account,
    read_installment,
    read_policy,
    read_quote,
    read_repayment,
    read_run,
)
from finloop.db.uow import UnitOfWork

router = APIRouter(tags=["credit servicing"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
SERVICE = "credit.service"
WRITE_OFF = "credit.write_off"
CONFIGURE = "credit.configure"


@router.get("/credit/loan-accounts", response_model=Page[LoanAccountRead],
            summary="List loan accounts (the loan sub-ledger), by state or bucket")
def list_accounts(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  state: Annotated[AccountState | None, Query()] = None,
                  bucket: Annotated[Bucket | None, Query()] = None) -> Page[LoanAccountRead]:
    return reader.run(lambda uow: page(servicing.list_accounts(
        uow, reader.tenant_id, state=state.value if state else None, bucket=bucket.value if bucket else None,
        after=starting_after, limit=limit + 1), limit, read_account, lambda row: row.loan_id))


@router.get("/credit/loans/{loan_id}/account", response_model=LoanAccountRead,
            summary="What a loan owes, component by component, and its days past due")
def get_account(loan_id: Id, reader: CurrentReader) -> LoanAccountRead:
    return reader.run(lambda uow: read_account(servicing.get_account(uow, reader.tenant_id, loan_id)))


@router.get("/credit/loans/{loan_id}/installments", response_model=list[InstallmentRead],
            summary="A loan's installments as they stand (rescheduled ones included)")
def list_installments(loan_id: Id, reader: CurrentReader) -> list[InstallmentRead]:
    def work(uow: UnitOfWork) -> list[InstallmentRead]:
        servicing.get_account(uow, reader.tenant_id, loan_id)
        return [read_installment(row) for row in servicing.installments(uow, reader.tenant_id, loan_id)]

    return reader.run(work)


@router.get("/credit/loans/{loan_id}/repayments", response_model=list[RepaymentRead],
            summary="A loan's repayments with their allocation")
def list_repayments(loan_id: Id, reader: CurrentReader) -> list[RepaymentRead]:
    def work(uow: UnitOfWork) -> list[RepaymentRead]:
        servicing.get_account(uow, reader.tenant_id, loan_id)
        return [read_repayment(row) for row in servicing.repayments(uow, reader.tenant_id, loan_id)]

    return reader.run(work)


@router.post("/credit/loans/{loan_id}/repayments", response_model=RepaymentRead, status_code=201,
             summary="Apply money received for a loan (optionally prepaying: reduce installment or term, pay off)")
def create_repayment(loan_id: Id, body: RepaymentCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_repayment(servicing.repay(
        uow, writer.tenant_id, loan_id, amount=body.amount, reference=body.reference, source=body.source.value,
        prepayment=body.prepayment.value if body.prepayment else None, actor=writer.principal.actor)),
        permission=SERVICE, status_code=201)


@router.get("/credit/loans/{loan_id}/payoff-quote", response_model=PayoffQuoteRead,
            summary="What paying the loan off today takes")
def get_payoff_quote(loan_id: Id, reader: CurrentReader) -> PayoffQuoteRead:
    return reader.run(lambda uow: read_quote(servicing.payoff_quote(uow, reader.tenant_id, loan_id)))


@router.post("/credit/loans/{loan_id}/write-off", response_model=LoanAccountRead,
             summary="Write a loan off before its threshold (against its allowance, the rest to credit losses)")
def write_off(loan_id: Id, body: WriteOffCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_account(servicing.write_off_loan(
        uow, writer.tenant_id, loan_id, reason=body.reason, actor=writer.principal.actor)), permission=WRITE_OFF)


@router.post("/credit/loans/{loan_id}/recoveries", response_model=RepaymentRead, status_code=201,
             summary="Money recovered on a written-off loan")
def create_recovery(loan_id: Id, body: RecoveryCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_repayment(servicing.recover(
        uow, writer.tenant_id, loan_id, amount=body.amount, reference=body.reference,
        actor=writer.principal.actor)), permission=SERVICE, status_code=201)


@router.get("/credit/end-of-day", response_model=list[EndOfDayRunRead],
            summary="The loan book's end-of-day runs, latest first")
def list_runs(reader: CurrentReader, limit: Limit = 50) -> list[EndOfDayRunRead]:
    return reader.run(lambda uow: [read_run(row) for row in uow.session.scalars(
        select(EndOfDayRun).where(EndOfDayRun.tenant_id == reader.tenant_id)
        .order_by(EndOfDayRun.business_date.desc()).limit(limit))])


@router.post("/credit/end-of-day", response_model=EndOfDayRunsRead,
             summary="Run the end of day through a date now (the worker's credit.end_of_day does it every night)")
def run_end_of_day(body: EndOfDayCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    runs: list[EndOfDayRun] = []

    def flow() -> None:
        runs.extend(eod.run_through(eod.committing(writer.db), writer.tenant_id, body.through))

    return writer.run_flow(flow, lambda uow: EndOfDayRunsRead(data=[read_run(row) for row in runs]),
                           permission=CONFIGURE)


@router.get("/credit/subledger-check", response_model=SubledgerCheckRead,
            summary="Whether the loan sub-ledger equals the general ledger's loan accounts")
def subledger_check(reader: CurrentReader) -> SubledgerCheckRead:
    def work(uow: UnitOfWork) -> SubledgerCheckRead:
        problems = eod.check_subledger(uow, reader.tenant_id)
        return SubledgerCheckRead(balanced=not problems, differences=problems)

    return reader.run(work)


@router.get("/credit/provision-policy", response_model=ProvisionPolicyRead,
            summary="How the allowance for credit losses is calculated")
def get_provision_policy(reader: CurrentReader) -> ProvisionPolicyRead:
    return reader.run(lambda uow: read_policy(eod.provision_policy(uow, reader.tenant_id)))


@router.put("/credit/provision-policy", response_model=ProvisionPolicyRead,
            summary="Set the provisioning method (by bucket or expected loss) and its rates")
def put_provision_policy(body: ProvisionPolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_policy(eod.set_provision_policy(
        uow, writer.tenant_id, body.model_dump(exclude_none=True), actor=writer.principal.actor)),
        permission=CONFIGURE)
