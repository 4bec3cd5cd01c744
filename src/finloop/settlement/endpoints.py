"""Settlement HTTP endpoints: profiles, FX rates, batches, reserves, runs and party statements.

Reads need any key of the tenant; profile and rate writes need ``settlement.configure``, a run needs
``settlement.run``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.api.types import CurrencyCode, Instant, Line, NonNegativeAmount
from finloop.settlement import fx, service
from finloop.settlement import statement as statements
from finloop.settlement.accounts import PartyKind
from finloop.settlement.domain import BatchStatus, Cycle, HoldKind, HoldStatus
from finloop.settlement.models import FxRate, SettlementBatch, SettlementProfile, SettlementReserve

router = APIRouter(tags=["settlement"])

CONFIGURE = "settlement.configure"
RUN = "settlement.run"

PartyId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")]
QueryPartyId = Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")]
Id = Annotated[Line, Path(min_length=1, max_length=40)]
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(9000, 12, 31))]
QueryDay = Annotated[date, Query(ge=date(2000, 1, 1), le=date(9000, 12, 31))]
RateText = Annotated[str, Field(pattern=r"^[0-9]{1,10}(\.[0-9]{1,12})?$", max_length=23,
                                description="A decimal as a string, e.g. '7.2345': quote units per base unit.")]
ReserveRateText = Annotated[str, Field(pattern=r"^0(\.[0-9]{1,6})?$", max_length=8,
                                       description="The share held back, a decimal string below 1 (e.g. '0.1').")]


class ProfileWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cycle: Cycle = Cycle.T_PLUS_N
    offset_days: Annotated[int, Field(ge=0, le=30, strict=True, description="n of T+n, in business days.")] = 1
    weekday: Annotated[int | None, Field(ge=0, le=6, strict=True, description="Weekly: 0 is Monday.")] = None
    day_of_month: Annotated[int | None, Field(ge=1, le=31, strict=True, description="Monthly cycle.")] = None
    freeze_days: Annotated[int, Field(ge=0, le=366, strict=True,
                                      description="Days from the first sale during which settled money "
                                                  "is frozen.")] = 0
    reserve_rate: ReserveRateText = "0"
    reserve_days: Annotated[int, Field(ge=0, le=366, strict=True)] = 0
    settlement_currency: CurrencyCode | None = None
    min_settlement_amount: NonNegativeAmount = 0


class ProfileRead(BaseModel):
    id: str
    object: str = "settlement_profile"
    party_kind: PartyKind
    party_id: str
    cycle: Cycle
    offset_days: int
    weekday: int | None
    day_of_month: int | None
    freeze_days: int
    reserve_rate: str
    reserve_days: int
    settlement_currency: str | None
    min_settlement_amount: int
    created_at: datetime
    updated_at: datetime


def read_profile(p: SettlementProfile) -> ProfileRead:
    return ProfileRead(id=p.id, party_kind=PartyKind(p.party_kind), party_id=p.party_id, cycle=Cycle(p.cycle),
                       offset_days=p.offset_days, weekday=p.weekday, day_of_month=p.day_of_month,
                       freeze_days=p.freeze_days, reserve_rate=format(p.reserve_rate.normalize(), "f"),
                       reserve_days=p.reserve_days, settlement_currency=p.settlement_currency,
                       min_settlement_amount=p.min_settlement_amount, created_at=p.created_at,
                       updated_at=p.updated_at)


@router.put("/settlement-profiles/{party_kind}/{party_id}", response_model=ProfileRead,
            summary="Set a party's settlement cycle, freeze, reserve and currency")
def put_profile(party_kind: PartyKind, party_id: PartyId, body: ProfileWrite,  # type: ignore[no-untyped-def]
                writer: CurrentWriter):
    return writer.run(lambda uow: read_profile(service.set_profile(
        uow, writer.tenant_id, party_kind=party_kind, party_id=party_id, cycle=body.cycle,
        offset_days=body.offset_days, weekday=body.weekday, day_of_month=body.day_of_month,
        freeze_days=body.freeze_days, reserve_rate=Decimal(body.reserve_rate), reserve_days=body.reserve_days,
        settlement_currency=body.settlement_currency, min_settlement_amount=body.min_settlement_amount)),
        permission=CONFIGURE)


@router.get("/settlement-profiles/{party_kind}/{party_id}", response_model=ProfileRead,
            summary="Get a party's settlement profile (404: the default T+1 applies)")
def get_profile(party_kind: PartyKind, party_id: PartyId, reader: CurrentReader) -> ProfileRead:
    return reader.run(lambda uow: read_profile(service.get_profile(uow, reader.tenant_id, party_kind=party_kind,
                                                                   party_id=party_id)))


class FxRateWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: CurrencyCode
    quote: CurrencyCode
    rate: RateText
    source: Annotated[Line, Field(min_length=1, max_length=100, description="Who published the rate.")]
    as_of: Instant


class FxRateRead(BaseModel):
    id: str
    object: str = "fx_rate"
    base: str
    quote: str
    rate: str
    source: str
    as_of: datetime
    created_at: datetime


def read_rate(r: FxRate) -> FxRateRead:
    return FxRateRead(id=r.id, base=r.base, quote=r.quote, rate=format(r.rate.normalize(), "f"), source=r.source,
                      as_of=r.as_of, created_at=r.created_at)


@router.post("/fx-rates", response_model=FxRateRead, status_code=201, summary="Record an FX rate")
def post_rate(body: FxRateWrite, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_rate(fx.add_rate(
        uow, writer.tenant_id, base=body.base, quote=body.quote, rate=Decimal(body.rate), source=body.source,
        as_of=body.as_of)), permission=CONFIGURE, status_code=201)


@router.get("/fx-rates", response_model=Page[FxRateRead], summary="List FX rates")
def list_rates(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
               base: Annotated[CurrencyCode | None, Query()] = None,
               quote: Annotated[CurrencyCode | None, Query()] = None) -> Page[FxRateRead]:
    return reader.run(lambda uow: page(fx.list_rates(uow, reader.tenant_id, base=base, quote=quote,
                                                     after=starting_after, limit=limit),
                                       limit, read_rate, lambda r: r.id))


class BatchRead(BaseModel):
    id: str
    object: str = "settlement_batch"
    party_kind: PartyKind
    party_id: str
    currency: str
    cohort_date: date
    settle_date: date
    settled_on: date
    status: BatchStatus
    amount: int = Field(description="The cohort's net in its currency (negative: claw-backs).")
    settlement_currency: str
    settled_amount: int
    reserve_amount: int
    frozen_amount: int
    available_amount: int
    fx_rate: str | None
    fx_source: str | None
    fx_as_of: datetime | None
    entry_id: str | None
    created_at: datetime


def read_batch(b: SettlementBatch) -> BatchRead:
    return BatchRead(
        id=b.id, party_kind=PartyKind(b.party_kind), party_id=b.party_id, currency=b.currency,
        cohort_date=b.cohort_date, settle_date=b.settle_date, settled_on=b.settled_on, status=BatchStatus(b.status),
        amount=b.amount, settlement_currency=b.settlement_currency, settled_amount=b.settled_amount,
        reserve_amount=b.reserve_amount, frozen_amount=b.frozen_amount, available_amount=b.available_amount,
        fx_rate=format(b.fx_rate.normalize(), "f") if b.fx_rate is not None else None, fx_source=b.fx_source,
        fx_as_of=b.fx_as_of, entry_id=b.entry_id, created_at=b.created_at)


class ReserveRead(BaseModel):
    id: str
    object: str = "settlement_reserve"
    kind: HoldKind
    party_kind: PartyKind
    party_id: str
    currency: str
    amount: int
    held_on: date
    release_on: date
    status: HoldStatus
    released_amount: int
    released_on: date | None
    batch_id: str
    release_entry_id: str | None


def read_reserve(r: SettlementReserve) -> ReserveRead:
    return ReserveRead(id=r.id, kind=HoldKind(r.kind), party_kind=PartyKind(r.party_kind), party_id=r.party_id,
                       currency=r.currency, amount=r.amount, held_on=r.held_on, release_on=r.release_on,
                       status=HoldStatus(r.status), released_amount=r.released_amount, released_on=r.released_on,
                       batch_id=r.batch_id, release_entry_id=r.release_entry_id)


@router.get("/settlement-batches", response_model=Page[BatchRead], summary="List settlement batches")
def list_batches(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                 party_kind: Annotated[PartyKind | None, Query()] = None, party_id: QueryPartyId = None,
                 status: Annotated[BatchStatus | None, Query()] = None,
                 from_on: Annotated[date | None, Query(description="Settled on or after.")] = None,
                 to_on: Annotated[date | None, Query(description="Settled on or before.")] = None,
                 ) -> Page[BatchRead]:
    return reader.run(lambda uow: page(service.list_batches(
        uow, reader.tenant_id, party_kind=party_kind, party_id=party_id, status=status, from_on=from_on,
        to_on=to_on, after=starting_after, limit=limit), limit, read_batch, lambda b: b.id))


@router.get("/settlement-batches/{batch_id}", response_model=BatchRead, summary="Get a settlement batch")
def get_batch(batch_id: Id, reader: CurrentReader) -> BatchRead:
    return reader.run(lambda uow: read_batch(service.get_batch(uow, reader.tenant_id, batch_id)))


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    business_date: Day


class Deferred(BaseModel):
    party_kind: PartyKind
    party_id: str
    currency: str
    amount: int
    reason: str


class RunRead(BaseModel):
    object: str = "settlement_run"
    business_date: date
    batches: list[BatchRead]
    entry_ids: list[str]
    deferred: list[Deferred]
    released: list[ReserveRead]


@router.post("/settlement-batches/run", response_model=RunRead,
             summary="Settle the cohorts due on a closed business date and release due reserves")
def run(body: RunRequest, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    def work(uow):  # type: ignore[no-untyped-def]
        result = service.run_settlement(uow, writer.tenant_id, business_date=body.business_date)
        released = service.release_due(uow, writer.tenant_id, business_date=body.business_date)
        return RunRead(business_date=result.business_date, batches=[read_batch(b) for b in result.batches],
                       entry_ids=result.entry_ids, deferred=[Deferred(**d) for d in result.deferred],
                       released=[read_reserve(r) for r in released])
    return writer.run(work, permission=RUN)


@router.get("/reserves", response_model=Page[ReserveRead], summary="List reserves and freezes")
def list_reserves(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                  party_kind: Annotated[PartyKind | None, Query()] = None, party_id: QueryPartyId = None,
                  status: Annotated[HoldStatus | None, Query()] = None,
                  kind: Annotated[HoldKind | None, Query()] = None) -> Page[ReserveRead]:
    return reader.run(lambda uow: page(service.list_reserves(
        uow, reader.tenant_id, party_kind=party_kind, party_id=party_id, status=status, kind=kind,
        after=starting_after, limit=limit), limit, read_reserve, lambda r: r.id))


class UpcomingSettlementRead(BaseModel):
    cohort_date: date
    settle_date: date
    currency: str
    amount: int
    settlement_currency: str


class UpcomingReleaseRead(BaseModel):
    reserve_id: str
    kind: str
    currency: str
    amount: int
    release_on: date


class CurrencyStatementRead(BaseModel):
    currency: str
    earnings_source: str = Field(description="splits, or pending_credits while splits is not available.")
    gross_sales_amount: int
    fee_amount: int
    platform_commission_amount: int
    promoter_commission_amount: int
    clawed_back_amount: int
    net_amount: int
    pending: int
    frozen: int
    reserve: int
    available: int
    receivable: int
    paid_out_amount: int
    upcoming_settlements: list[UpcomingSettlementRead]
    upcoming_releases: list[UpcomingReleaseRead]


class MovementRead(BaseModel):
    entry_id: str
    business_date: date
    bucket: str
    currency: str
    amount: int
    description: str


class StatementRead(BaseModel):
    object: str = "party_statement"
    party_kind: PartyKind
    party_id: str
    from_on: date
    to_on: date
    generated_at: datetime
    currencies: list[CurrencyStatementRead]
    movements: list[MovementRead]
    movements_truncated: bool


def read_statement(s: statements.PartyStatement) -> StatementRead:
    return StatementRead(
        party_kind=s.party_kind, party_id=s.party_id, from_on=s.from_on, to_on=s.to_on, generated_at=s.generated_at,
        currencies=[CurrencyStatementRead(
            currency=c.currency, earnings_source=c.earnings_source, gross_sales_amount=c.gross_sales_amount,
            fee_amount=c.fee_amount, platform_commission_amount=c.platform_commission_amount,
            promoter_commission_amount=c.promoter_commission_amount, clawed_back_amount=c.clawed_back_amount,
            net_amount=c.net_amount, pending=c.pending, frozen=c.frozen, reserve=c.reserve, available=c.available,
            receivable=c.receivable, paid_out_amount=c.paid_out_amount,
            upcoming_settlements=[UpcomingSettlementRead(
                cohort_date=u.cohort_date, settle_date=u.settle_date, currency=u.currency, amount=u.amount,
                settlement_currency=u.settlement_currency) for u in c.upcoming_settlements],
            upcoming_releases=[UpcomingReleaseRead(
                reserve_id=r.reserve_id, kind=r.kind, currency=r.currency, amount=r.amount,
                release_on=r.release_on) for r in c.upcoming_releases]) for c in s.currencies],
        movements=[MovementRead(entry_id=m.entry_id, business_date=m.business_date, bucket=m.bucket,
                                currency=m.currency, amount=m.amount, description=m.description)
                   for m in s.movements],
        movements_truncated=s.movements_truncated)


@router.get("/statements/{party_kind}/{party_id}", response_model=StatementRead,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
            summary="A party's statement: sales, fees, balances by bucket, payouts, and what is still to come")
def get_statement(party_kind: PartyKind, party_id: PartyId, reader: CurrentReader, from_on: QueryDay,
                  to_on: QueryDay, format: Annotated[Literal["json", "csv"], Query()] = "json",
                  ) -> StatementRead | Response:
    result = reader.run(lambda uow: statements.statement(uow, reader.tenant_id, party_kind=party_kind,
                                                         party_id=party_id, from_on=from_on, to_on=to_on))
    if format == "csv":
        return Response(content=statements.to_csv(result), media_type="text/csv")
    return read_statement(result)
