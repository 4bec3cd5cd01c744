"""Reconciliation import HTTP endpoints: files (raw body upload), their lines, CSV mappings, safeguarding.

Reads need any key of the tenant; writes need ``reconciliation.import``. A file is sent as the raw
request body; a bad file is a 400 ``file_rejected`` naming the line and reason, and nothing is stored.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.core.errors import InvalidRequest
from finloop.reconciliation import safeguarding, service
from finloop.reconciliation.schemas import (
    FileRead,
    Format,
    LineRead,
    MappingCreate,
    MappingRead,
    SafeguardingRead,
    SafeguardingResult,
    SafeguardingRun,
    read_check,
    read_file,
    read_line,
    read_mapping,
)
from finloop.tenancy.service import current_business_date

router = APIRouter(tags=["reconciliation"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
WRITE_PERMISSION = "reconciliation.import"
#: The largest file accepted over HTTP (bigger files go through the CLI).
MAX_UPLOAD_BYTES = 64 * 1024 * 1024

_UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "text/csv": {"schema": {"type": "string"}},
    "application/xml": {"schema": {"type": "string"}},
    "text/plain": {"schema": {"type": "string"}}}}}


@router.post("/reconciliation/files", response_model=FileRead, status_code=201, openapi_extra=_UPLOAD_BODY,
             summary="Import a channel bill or bank statement (the file is the raw request body)",
             responses={400: {"description": "file_rejected: the line and reason are in error.message"}})
async def import_file(request: Request, writer: CurrentWriter,
                      format: Annotated[Format, Query(description="The file's layout.")],
                      source: Annotated[Line, Query(min_length=1, max_length=service.MAX_SOURCE,
                                                    description="Channel code or bank account name.")],
                      business_date: Annotated[date | None, Query()] = None,
                      filename: Annotated[Line, Query(max_length=service.MAX_FILENAME)] = "",
                      mapping_id: Annotated[Line | None, Query(min_length=1, max_length=40)] = None) -> JSONResponse:
    content = await request.body()
    if len(content) > MAX_UPLOAD_BYTES:
        raise InvalidRequest("The file is too large for an upload.", code="file_too_large", param="file")
    return await run_in_threadpool(lambda: writer.run(lambda uow: read_file(service.import_file(
        uow, writer.tenant_id, format=format, content=content, source=source, business_date=business_date,
        filename=filename, mapping_id=mapping_id)), permission=WRITE_PERMISSION, status_code=201))


@router.get("/reconciliation/files", response_model=Page[FileRead], summary="List imported files, newest first")
def list_files(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
               source: Annotated[Line | None, Query(min_length=1, max_length=service.MAX_SOURCE)] = None,
               business_date: Annotated[date | None, Query()] = None) -> Page[FileRead]:
    return reader.run(lambda uow: page(service.list_files(
        uow, reader.tenant_id, source=source, business_date=business_date, after=starting_after, limit=limit),
        limit, read_file, lambda f: f.id))


@router.get("/reconciliation/files/{file_id}", response_model=FileRead, summary="Get an imported file")
def get_file(file_id: Id, reader: CurrentReader) -> FileRead:
    return reader.run(lambda uow: read_file(service.get_file(uow, reader.tenant_id, file_id)))


@router.get("/reconciliation/files/{file_id}/lines", response_model=Page[LineRead],
            summary="The canonical lines of an imported file, in order")
def list_lines(file_id: Id, reader: CurrentReader, limit: Limit = 100, starting_after: Cursor = None,
               ) -> Page[LineRead]:
    after = None
    if starting_after is not None:
        if not starting_after.isdigit() or len(starting_after) > 18:
            raise InvalidRequest("Not a cursor of this list.", code="invalid_cursor", param="starting_after")
        after = int(starting_after)
    return reader.run(lambda uow: page(service.list_lines(uow, reader.tenant_id, file_id, after=after, limit=limit),
                                       limit, read_line, lambda line: str(line.id)))


@router.post("/reconciliation/mappings", response_model=MappingRead, status_code=201,
             summary="Save a generic CSV column mapping")
def create_mapping(body: MappingCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_mapping(service.save_mapping(
        uow, writer.tenant_id, name=body.name, columns={str(k): v for k, v in body.columns.items()},
        delimiter=body.delimiter,
        date_format=body.date_format, datetime_format=body.datetime_format, amount_style=body.amount_style,
        sign=body.sign, credit_values=body.credit_values, debit_values=body.debit_values,
        default_currency=body.default_currency, default_kind=body.default_kind)),
        permission=WRITE_PERMISSION, status_code=201)


@router.get("/reconciliation/mappings", response_model=Page[MappingRead], summary="List saved CSV mappings")
def list_mappings(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None) -> Page[MappingRead]:
    return reader.run(lambda uow: page(service.list_mappings(uow, reader.tenant_id, after=starting_after,
                                                             limit=limit), limit, read_mapping, lambda m: m.id))


@router.post("/reconciliation/safeguarding/run", response_model=SafeguardingResult,
             summary="Run the safeguarding check of a business day (custody balance vs. what is owed)")
def run_safeguarding(body: SafeguardingRun, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow):  # type: ignore[no-untyped-def]
        on = body.on or current_business_date(uow, writer.tenant_id)
        checks = safeguarding.run_check(uow, writer.tenant_id, on=on, custody_source=body.custody_source)
        return SafeguardingResult(data=[read_check(c) for c in checks])
    return writer.run(work, permission=WRITE_PERMISSION)


@router.get("/reconciliation/safeguarding", response_model=Page[SafeguardingRead],
            summary="Safeguarding checks, newest first")
def list_safeguarding(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                      on: Annotated[date | None, Query()] = None,
                      status: Annotated[Line | None, Query(pattern="^(ok|shortfall|no_statement)$")] = None,
                      ) -> Page[SafeguardingRead]:
    return reader.run(lambda uow: page(safeguarding.list_checks(
        uow, reader.tenant_id, on=on, status=status, after=starting_after, limit=limit), limit, read_check,
        lambda c: c.id))
