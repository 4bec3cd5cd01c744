"""Collections HTTP endpoints under ``/v1/credit/collections``: the strategy, cases (assignment, escalation,
notes, promises to pay, the actions taken), repayment reminders and the monthly credit bureau exports.

Reads need any key of the tenant. Working cases (assigning, escalating, notes, promises) and exporting a bureau
cycle need ``credit.collect``; changing the strategy needs ``credit.configure``. Every POST takes an
Idempotency-Key. No response carries a phone number.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.core.errors import InvalidRequest
from finloop.credit.collections import bureau_export, service
from finloop.credit.collections.domain import CaseStatus, PromiseStatus, Queue
from finloop.credit.collections.schemas import (
    ActionRead,
    BureauExportCreate,
    BureauExportRead,
    CaseAssign,
    CaseEscalate,
    CaseRead,
    CollectionPolicyRead,
    CollectionPolicyWrite,
    NoteCreate,
    NoteRead,
    PromiseCreate,
    PromiseRead,
    ReminderRead,
    read_action,
    read_case,
    read_export,
    read_note,
    read_policy,
    read_promise,
    read_reminder,
)
from finloop.credit.servicing.domain import Bucket
from finloop.db.uow import UnitOfWork

router = APIRouter(prefix="/credit/collections", tags=["credit collections"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
ObjectFilter = Annotated[Line | None, Query(max_length=40)]
COLLECT = "credit.collect"
CONFIGURE = "credit.configure"


# ---------------------------------------------------------------------------------------------- strategy


@router.get("/policy", response_model=CollectionPolicyRead, summary="The collection strategy per bucket")
def get_policy(reader: CurrentReader) -> CollectionPolicyRead:
    return reader.run(lambda uow: read_policy(service.policy_row(uow, reader.tenant_id)))


@router.put("/policy", response_model=CollectionPolicyRead,
            summary="Replace the collection strategy: SMS days, SMS and call intervals, escalation per bucket")
def put_policy(body: CollectionPolicyWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    rules = {bucket: rule.model_dump() for bucket, rule in body.rules.items()}
    return writer.run(lambda uow: read_policy(service.set_policy(uow, writer.tenant_id, rules,
                                                                 actor=writer.principal.actor)),
                      permission=CONFIGURE)


# ---------------------------------------------------------------------------------------------- cases


@router.get("/cases", response_model=Page[CaseRead], summary="List collection cases (the queues)")
def list_cases(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
               status: Annotated[CaseStatus | None, Query()] = None,
               queue: Annotated[Queue | None, Query()] = None,
               bucket: Annotated[Bucket | None, Query()] = None,
               assignee_id: ObjectFilter = None, loan_id: ObjectFilter = None) -> Page[CaseRead]:
    return reader.run(lambda uow: page(service.list_cases(
        uow, reader.tenant_id, status=status.value if status else None, queue=queue.value if queue else None,
        bucket=bucket.value if bucket else None, assignee_id=assignee_id, loan_id=loan_id, after=starting_after,
        limit=limit + 1), limit, read_case, lambda c: c.id))


@router.get("/cases/{case_id}", response_model=CaseRead, summary="Get a collection case")
def get_case(case_id: Id, reader: CurrentReader) -> CaseRead:
    return reader.run(lambda uow: read_case(service.get_case(uow, reader.tenant_id, case_id)))


@router.post("/cases/{case_id}/assign", response_model=CaseRead,
             summary="Give an open case to a user of the tenant (it joins the manual queue)")
def assign_case(case_id: Id, body: CaseAssign, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_case(service.assign(uow, writer.tenant_id, case_id,
                                                           assignee_id=body.assignee_id,
                                                           actor=writer.principal.actor)), permission=COLLECT)


@router.post("/cases/{case_id}/escalate", response_model=CaseRead,
             summary="Escalate an open case to the manual queue")
def escalate_case(case_id: Id, writer: CurrentWriter,  # type: ignore[no-untyped-def]
                  body: CaseEscalate | None = None):
    reason = (body or CaseEscalate()).reason
    return writer.run(lambda uow: read_case(service.escalate(uow, writer.tenant_id, case_id, reason=reason,
                                                             actor=writer.principal.actor)), permission=COLLECT)


@router.get("/cases/{case_id}/actions", response_model=Page[ActionRead],
            summary="The SMS, calls and escalations of a case, with their outcomes")
def list_actions(case_id: Id, reader: CurrentReader, limit: Limit = 50,
                 starting_after: Cursor = None) -> Page[ActionRead]:
    return reader.run(lambda uow: page(service.list_actions(uow, reader.tenant_id, case_id, after=starting_after,
                                                            limit=limit + 1), limit, read_action, lambda a: a.id))


@router.post("/cases/{case_id}/notes", response_model=NoteRead, status_code=201, summary="Add a note to a case")
def add_note(case_id: Id, body: NoteCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_note(service.add_note(uow, writer.tenant_id, case_id, body=body.text,
                                                             author=writer.principal.actor)),
                      permission=COLLECT, status_code=201)


def _seq(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 9:
        raise InvalidRequest("starting_after is the seq of the last note of the previous page.",
                             code="invalid_cursor", param="starting_after")
    return int(cursor)


@router.get("/cases/{case_id}/notes", response_model=Page[NoteRead], summary="A case's notes, oldest first")
def list_notes(case_id: Id, reader: CurrentReader, limit: Limit = 50,
               starting_after: Cursor = None) -> Page[NoteRead]:
    after = _seq(starting_after)
    return reader.run(lambda uow: page(service.list_notes(uow, reader.tenant_id, case_id, after=after,
                                                          limit=limit + 1), limit, read_note, lambda n: str(n.seq)))


@router.post("/cases/{case_id}/promises", response_model=PromiseRead, status_code=201,
             summary="Record a promise to pay: an amount by a date, settled by the daily run")
def create_promise(case_id: Id, body: PromiseCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_promise(service.promise(uow, writer.tenant_id, case_id, amount=body.amount,
                                                               promised_on=body.promised_on,
                                                               actor=writer.principal.actor)),
                      permission=COLLECT, status_code=201)


@router.get("/promises", response_model=Page[PromiseRead], summary="List promises to pay")
def list_promises(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  case_id: ObjectFilter = None,
                  status: Annotated[PromiseStatus | None, Query()] = None) -> Page[PromiseRead]:
    return reader.run(lambda uow: page(service.list_promises(
        uow, reader.tenant_id, case_id=case_id, status=status.value if status else None, after=starting_after,
        limit=limit + 1), limit, read_promise, lambda p: p.id))


# ---------------------------------------------------------------------------------------------- reminders


@router.get("/reminders", response_model=Page[ReminderRead],
            summary="Repayment reminders sent (three days before and on the due date)")
def list_reminders(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                   loan_id: ObjectFilter = None) -> Page[ReminderRead]:
    return reader.run(lambda uow: page(service.list_reminders(uow, reader.tenant_id, loan_id=loan_id,
                                                              after=starting_after, limit=limit + 1),
                                       limit, read_reminder, lambda r: r.id))


# ---------------------------------------------------------------------------------------------- bureau


@router.post("/bureau-exports", response_model=BureauExportRead, status_code=201,
             summary="Make the credit bureau file of a closed month (the first export of a cycle is returned "
                     "again)")
def create_export(body: BureauExportCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_export(bureau_export.export_cycle(uow, writer.tenant_id, body.cycle,
                                                                         actor=writer.principal.actor)),
                      permission=COLLECT, status_code=201)


@router.get("/bureau-exports", response_model=Page[BureauExportRead], summary="List bureau exports")
def list_exports(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None) -> Page[BureauExportRead]:
    return reader.run(lambda uow: page(bureau_export.list_exports(uow, reader.tenant_id, after=starting_after,
                                                                  limit=limit + 1), limit, read_export,
                                       lambda e: e.id))


@router.get("/bureau-exports/{export_id}", response_model=BureauExportRead, summary="Get a bureau export")
def get_export(export_id: Id, reader: CurrentReader) -> BureauExportRead:
    return reader.run(lambda uow: read_export(bureau_export.get_export(uow, reader.tenant_id, export_id)))


@router.get("/bureau-exports/{export_id}/file", response_class=Response,
            summary="The bureau file itself (CSV, layout FL-CB-1); its SHA-256 in the X-Content-SHA256 header")
def get_export_file(export_id: Id, reader: CurrentReader) -> Response:
    def work(uow: UnitOfWork) -> Response:
        row = bureau_export.get_export(uow, reader.tenant_id, export_id)
        return Response(content=row.content.encode(), media_type="text/csv",
                        headers={"X-Content-SHA256": row.sha256,
                                 "Content-Disposition": f'attachment; filename="bureau-{row.cycle}.csv"'})

    return reader.run(work)
