"""Clearing HTTP endpoints: fee schedules, fee quotes and daily clearing batches.

Reads need any key of the tenant; writes (and the quote, which is a POST but writes nothing) follow
the usual rules, with ``clearing.configure`` for the schedule and batch writes.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import Line
from finloop.clearing import service
from finloop.clearing.domain import FeeKind, RefundFeePolicy, Tier
from finloop.clearing.models import ClearingBatch, FeeSchedule
from finloop.clearing.schemas import (
    BusinessDate,
    ClearingBatchRead,
    ClearingRunRead,
    ClearingRunRequest,
    FeeScheduleCreate,
    FeeScheduleRead,
    QuoteRead,
    QuoteRequest,
    TierRead,
)
from finloop.clearing.service import BatchStatus, FeeBearer, ScheduleStatus
from finloop.db.uow import UnitOfWork

router = APIRouter(tags=["clearing"])

Id = Annotated[Line, Path(min_length=1, max_length=40)]
WRITE_PERMISSION = "clearing.configure"


def read_schedule(schedule: FeeSchedule) -> FeeScheduleRead:
    return FeeScheduleRead(
        id=schedule.id, channel=schedule.channel_code, method=schedule.method, currency=schedule.currency,
        kind=FeeKind(schedule.kind), rate=format(schedule.rate.normalize(), "f"),
        fixed_amount=schedule.fixed_amount,
        tiers=[TierRead(up_to=t.get("up_to"), rate=str(t.get("rate", "0")), fixed_amount=int(t.get("fixed_amount", 0)))
               for t in schedule.tiers or []],
        minimum_amount=schedule.minimum_amount, maximum_amount=schedule.maximum_amount,
        bearer=FeeBearer(schedule.bearer), refund_fee_policy=RefundFeePolicy(schedule.refund_fee_policy),
        effective_from=schedule.effective_from, status=ScheduleStatus(schedule.status),
        description=schedule.description, created_at=schedule.created_at, retired_at=schedule.retired_at)


def read_batch(batch: ClearingBatch) -> ClearingBatchRead:
    return ClearingBatchRead(
        id=batch.id, channel=batch.channel_code, currency=batch.currency, business_date=batch.business_date,
        status=BatchStatus(batch.status), payments_count=batch.payments_count,
        payments_gross_amount=batch.payments_gross_amount, payment_fees_amount=batch.payment_fees_amount,
        refunds_count=batch.refunds_count, refunds_gross_amount=batch.refunds_gross_amount,
        refund_fee_returns_amount=batch.refund_fee_returns_amount, chargebacks_count=batch.chargebacks_count,
        chargebacks_amount=batch.chargebacks_amount, adjustments_count=batch.adjustments_count,
        adjustments_amount=batch.adjustments_amount, expected_net_amount=batch.expected_net_amount,
        shard_amounts=dict(batch.shard_amounts or {}), settled_amount=batch.settled_amount,
        difference_amount=batch.difference_amount, settlement_reference=batch.settlement_reference,
        received_on=batch.received_on, settlement_entry_id=batch.settlement_entry_id,
        computed_at=batch.computed_at, created_at=batch.created_at, settled_at=batch.settled_at)


@router.post("/fee-schedules", response_model=FeeScheduleRead, status_code=201,
             summary="Create a fee schedule for a channel (and method, currency) from a date")
def create_schedule(body: FeeScheduleCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    draft = service.ScheduleDraft(
        channel=body.channel, kind=body.kind.value, method=body.method.value if body.method else None,
        currency=body.currency, rate=body.rate, fixed_amount=body.fixed_amount,
        tiers=tuple(Tier(up_to=t.up_to, rate=t.rate, fixed_amount=t.fixed_amount) for t in body.tiers),
        minimum_amount=body.minimum_amount, maximum_amount=body.maximum_amount, bearer=body.bearer.value,
        refund_fee_policy=body.refund_fee_policy.value, effective_from=body.effective_from,
        description=body.description)
    return writer.run(lambda uow: read_schedule(service.create_schedule(uow, writer.tenant_id, draft)),
                      permission=WRITE_PERMISSION, status_code=201)


@router.get("/fee-schedules", response_model=Page[FeeScheduleRead], summary="List fee schedules, newest first")
def list_schedules(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                   channel: Annotated[Line | None, Query(max_length=40)] = None,
                   status: Annotated[ScheduleStatus | None, Query()] = None) -> Page[FeeScheduleRead]:
    return reader.run(lambda uow: page(service.list_schedules(
        uow, reader.tenant_id, channel=channel, status=status.value if status else None, after=starting_after,
        limit=limit), limit, read_schedule, lambda s: s.id))


@router.post("/fee-schedules/quote", response_model=QuoteRead,
             summary="The expected fee of a payment: amount, currency, channel and method")
def quote(body: QuoteRequest, reader: CurrentReader) -> QuoteRead:
    method = body.method.value if body.method else None

    def work(uow: UnitOfWork) -> QuoteRead:
        found = service.quote_fee(uow, reader.tenant_id, channel_code=body.channel, method=method,
                                  currency=body.currency, amount=body.amount)
        return QuoteRead(channel=body.channel, amount=body.amount, currency=body.currency, method=method,
                         fee_amount=found.fee, bearer=found.bearer, schedule_id=found.schedule_id,
                         refund_fee_policy=found.refund_fee_policy, explanation=found.explanation)

    return reader.run(work)


@router.get("/fee-schedules/{schedule_id}", response_model=FeeScheduleRead, summary="Get a fee schedule")
def get_schedule(schedule_id: Id, reader: CurrentReader) -> FeeScheduleRead:
    return reader.run(lambda uow: read_schedule(service.get_schedule(uow, reader.tenant_id, schedule_id)))


@router.post("/fee-schedules/{schedule_id}/retire", response_model=FeeScheduleRead,
             summary="Retire a fee schedule: it no longer applies from now on")
def retire_schedule(schedule_id: Id, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_schedule(service.retire_schedule(uow, writer.tenant_id, schedule_id)),
                      permission=WRITE_PERMISSION)


@router.get("/clearing-batches", response_model=Page[ClearingBatchRead], summary="List clearing batches")
def list_batches(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                 channel: Annotated[Line | None, Query(max_length=40)] = None,
                 from_date: Annotated[BusinessDate | None, Query(description="First business date.")] = None,
                 to_date: Annotated[BusinessDate | None, Query(description="Last business date.")] = None,
                 status: Annotated[BatchStatus | None, Query()] = None) -> Page[ClearingBatchRead]:
    return reader.run(lambda uow: page(service.list_batches(
        uow, reader.tenant_id, channel=channel, from_on=from_date, to_on=to_date,
        status=status.value if status else None, after=starting_after, limit=limit), limit, read_batch,
        lambda b: b.id))


@router.get("/clearing-batches/{batch_id}", response_model=ClearingBatchRead, summary="Get a clearing batch")
def get_batch(batch_id: Id, reader: CurrentReader) -> ClearingBatchRead:
    return reader.run(lambda uow: read_batch(service.get_batch(uow, reader.tenant_id, batch_id)))


@router.post("/clearing-batches/run", response_model=ClearingRunRead,
             summary="Build (or refresh) the clearing batches of a business date")
def run_batches(body: ClearingRunRequest, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    day: date = body.business_date
    return writer.run(lambda uow: ClearingRunRead(data=[read_batch(b) for b in service.build_batches(
        uow, writer.tenant_id, business_date=day, channel_code=body.channel)]), permission=WRITE_PERMISSION)
