"""Wealth HTTP endpoints: funds and their published yields (``wealth.configure``), fund orders and sweeps
(``wealth.trade``), holdings with a statement. Reads need any key of the tenant."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from finloop.api.deps import CurrentReader, CurrentWriter
from finloop.api.pagination import Cursor, Limit, Page, page
from finloop.core.errors import InvalidRequest
from finloop.db.uow import UnitOfWork
from finloop.wealth import service
from finloop.wealth.domain import HOLDER_ID, HolderKind
from finloop.wealth.schemas import (
    Day,
    FundCreate,
    FundRead,
    ObjectId,
    OrderCreate,
    OrderRead,
    PricePublish,
    PriceRead,
    StatementRead,
    SweepRead,
    SweepSet,
    read_fund,
    read_order,
    read_price,
    read_statement,
    read_sweep,
)
from finloop.wealth.state import OrderKind, OrderStatus

router = APIRouter(tags=["wealth"])

Id = Annotated[str, Path(min_length=1, max_length=40)]
HolderIdPath = Annotated[str, Path(min_length=1, max_length=40, pattern=HOLDER_ID.pattern)]
CONFIGURE = "wealth.configure"
TRADE = "wealth.trade"
#: A statement without dates covers the last 30 days up to today's business date.
DEFAULT_STATEMENT_DAYS = 30


@router.post("/funds", response_model=FundRead, status_code=201, summary="Create a money-market fund")
def create_fund(body: FundCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_fund(service.create_fund(
        uow, writer.tenant_id, code=body.code, name=body.name, currency_code=body.currency,
        fast_redemption_daily_limit=body.fast_redemption_daily_limit,
        min_subscription_amount=body.min_subscription_amount, status=body.status, actor=writer.principal.actor)),
        permission=CONFIGURE, status_code=201)


@router.get("/funds", response_model=Page[FundRead], summary="List funds")
def list_funds(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None) -> Page[FundRead]:
    return reader.run(lambda uow: page(service.list_funds(uow, reader.tenant_id, after=starting_after, limit=limit),
                                       limit, read_fund, lambda f: f.id))


@router.get("/funds/{fund_id}", response_model=FundRead, summary="Get a fund")
def get_fund(fund_id: Id, reader: CurrentReader) -> FundRead:
    return reader.run(lambda uow: read_fund(service.get_fund(uow, reader.tenant_id, fund_id)))


@router.post("/funds/{fund_id}/prices", response_model=PriceRead, status_code=201,
             summary="Publish a day's income per 10,000 units and seven-day annualised yield")
def publish_price(fund_id: Id, body: PricePublish, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_price(service.publish_price(
        uow, writer.tenant_id, fund_id, price_on=body.price_on, income_per_10k=body.income_per_10k,
        annualised_7d=body.annualised_7d, actor=writer.principal.actor)), permission=CONFIGURE, status_code=201)


def _date_cursor(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest("Unknown cursor.", code="invalid_cursor", param="starting_after") from None


@router.get("/funds/{fund_id}/prices", response_model=Page[PriceRead], summary="List a fund's yields, newest first")
def list_prices(fund_id: Id, reader: CurrentReader, limit: Limit = 50,
                starting_after: Cursor = None) -> Page[PriceRead]:
    before = _date_cursor(starting_after)
    return reader.run(lambda uow: page(service.list_prices(uow, reader.tenant_id, fund_id, before=before, limit=limit),
                                       limit, read_price, lambda p: p.price_on.isoformat()))


@router.post("/fund-orders", response_model=OrderRead, status_code=201,
             summary="Subscribe, redeem fast (at once, within a daily limit) or redeem (next business day)")
def create_order(body: OrderCreate, writer: CurrentWriter):  # type: ignore[no-untyped-def]
    return writer.run(lambda uow: read_order(service.place_order(
        uow, writer.tenant_id, fund_id=body.fund_id, kind=body.kind, holder_kind=body.holder_kind,
        holder_id=body.holder_id, amount=body.amount)), permission=TRADE, status_code=201)


@router.get("/fund-orders", response_model=Page[OrderRead], summary="List fund orders, newest first")
def list_orders(reader: CurrentReader, limit: Limit = 50, starting_after: Cursor = None,
                fund_id: Annotated[ObjectId | None, Query()] = None,
                holder_kind: Annotated[HolderKind | None, Query()] = None,
                holder_id: Annotated[str | None, Query(max_length=40, pattern=HOLDER_ID.pattern)] = None,
                kind: Annotated[OrderKind | None, Query()] = None,
                status: Annotated[OrderStatus | None, Query()] = None) -> Page[OrderRead]:
    return reader.run(lambda uow: page(service.list_orders(
        uow, reader.tenant_id, fund_id=fund_id, holder_kind=holder_kind.value if holder_kind else None,
        holder_id=holder_id, kind=kind.value if kind else None, status=status.value if status else None,
        after=starting_after, limit=limit), limit, read_order, lambda o: o.id))


@router.get("/fund-orders/{order_id}", response_model=OrderRead, summary="Get a fund order")
def get_order(order_id: Id, reader: CurrentReader) -> OrderRead:
    return reader.run(lambda uow: read_order(service.get_order(uow, reader.tenant_id, order_id)))


@router.put("/sweeps/{holder_kind}/{holder_id}", response_model=SweepRead,
            summary="Opt a holder in to (or change, or pause) the daily sweep of its idle balance")
def set_sweep(holder_kind: HolderKind, holder_id: HolderIdPath, body: SweepSet,  # type: ignore[no-untyped-def]
              writer: CurrentWriter):
    return writer.run(lambda uow: read_sweep(service.set_sweep(
        uow, writer.tenant_id, holder_kind=holder_kind, holder_id=holder_id, fund_id=body.fund_id,
        keep_amount=body.keep_amount, min_sweep_amount=body.min_sweep_amount, enabled=body.enabled,
        actor=writer.principal.actor)), permission=TRADE)


@router.get("/sweeps/{holder_kind}/{holder_id}", response_model=SweepRead, summary="Get a holder's sweep")
def get_sweep(holder_kind: HolderKind, holder_id: HolderIdPath, reader: CurrentReader) -> SweepRead:
    return reader.run(lambda uow: read_sweep(service.get_sweep(uow, reader.tenant_id, holder_kind=holder_kind.value,
                                                               holder_id=holder_id)))


@router.get("/fund-holdings/{holder_kind}/{holder_id}", response_model=StatementRead,
            summary="A holder's fund holdings now, with its orders and income between two dates")
def get_holdings(holder_kind: HolderKind, holder_id: HolderIdPath, reader: CurrentReader,
                 from_on: Annotated[Day | None, Query()] = None,
                 to_on: Annotated[Day | None, Query()] = None) -> StatementRead:
    def work(uow: UnitOfWork) -> StatementRead:
        end = to_on or service.today(uow, reader.tenant_id)
        start = from_on or end - timedelta(days=DEFAULT_STATEMENT_DAYS)
        return read_statement(service.statement(uow, reader.tenant_id, holder_kind=holder_kind, holder_id=holder_id,
                                                from_on=start, to_on=end))
    return reader.run(work)
