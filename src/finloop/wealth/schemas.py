"""Wire models of the wealth API: requests refuse unknown fields, amounts are strict integers of minor
units, yields are decimals given as strings ("0.6523")."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.types import Amount, CurrencyCode, Line, NonNegativeAmount, single_line
from finloop.wealth.domain import FUND_CODE, HOLDER_ID, MAX_INCOME_PER_10K, FundStatus, HolderKind
from finloop.wealth.models import Fund, FundAccrual, FundOrder, FundPrice, Sweep
from finloop.wealth.service import FundTotals, Holding, Statement
from finloop.wealth.state import OrderKind, OrderStatus

FundCode = Annotated[str, Field(min_length=1, max_length=32, pattern=FUND_CODE.pattern, examples=["MMF1"])]
HolderId = Annotated[str, Field(min_length=1, max_length=40, pattern=HOLDER_ID.pattern)]
ObjectId = Annotated[Line, Field(min_length=1, max_length=40)]
IncomePer10k = Annotated[Decimal, Field(ge=0, le=MAX_INCOME_PER_10K, max_digits=12, decimal_places=6,
                                        allow_inf_nan=False,
                                        description="Income per 10,000 units for the day, e.g. \"0.6523\".")]
Annualised = Annotated[Decimal, Field(ge=0, le=1, max_digits=12, decimal_places=10, allow_inf_nan=False,
                                      description="Seven-day annualised yield as a fraction, e.g. \"0.0238\" (2.38%).")]
# A day the APIs accept: far enough inside the calendar for date arithmetic never to overflow.
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2999, 12, 31))]


def decimal_text(value: Decimal) -> str:
    """A stored decimal as plain text without the trailing zeros PostgreSQL's NUMERIC(38, 18) adds."""
    return format(value.normalize(), "f")


class FundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: FundCode
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(single_line)]
    currency: CurrencyCode
    fast_redemption_daily_limit: NonNegativeAmount = Field(
        description="Fast redemptions of one holder on one business date total at most this.")
    min_subscription_amount: Amount = 1
    status: FundStatus = FundStatus.OPEN


class FundRead(BaseModel):
    id: str
    object: str = "fund"
    code: str
    name: str
    currency: str
    fast_redemption_daily_limit: int
    min_subscription_amount: int
    status: FundStatus
    created_at: datetime


def read_fund(fund: Fund) -> FundRead:
    return FundRead(id=fund.id, code=fund.code, name=fund.name, currency=fund.currency,
                    fast_redemption_daily_limit=fund.fast_redemption_daily_limit,
                    min_subscription_amount=fund.min_subscription_amount, status=FundStatus(fund.status),
                    created_at=fund.created_at)


class PricePublish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price_on: Day
    income_per_10k: IncomePer10k
    annualised_7d: Annualised | None = Field(
        default=None, description="Checked against the last seven incomes; computed when left out.")


class PriceRead(BaseModel):
    id: str
    object: str = "fund_price"
    fund_id: str
    price_on: date
    income_per_10k: str
    annualised_7d: str
    published_by: str
    published_at: datetime


def read_price(price: FundPrice) -> PriceRead:
    return PriceRead(id=price.id, fund_id=price.fund_id, price_on=price.price_on,
                     income_per_10k=decimal_text(price.income_per_10k),
                     annualised_7d=decimal_text(price.annualised_7d),
                     published_by=price.published_by, published_at=price.published_at)


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fund_id: ObjectId
    kind: OrderKind
    holder_kind: HolderKind
    holder_id: HolderId
    amount: Amount


class OrderRead(BaseModel):
    id: str
    object: str = "fund_order"
    fund_id: str
    kind: OrderKind
    holder_kind: HolderKind
    holder_id: str
    amount: int
    currency: str
    status: OrderStatus
    trade_date: date
    settle_on: date
    source: str
    entry_id: str
    settle_entry_id: str | None
    created_at: datetime
    settled_at: datetime | None


def read_order(order: FundOrder) -> OrderRead:
    return OrderRead(id=order.id, fund_id=order.fund_id, kind=OrderKind(order.kind),
                     holder_kind=HolderKind(order.holder_kind), holder_id=order.holder_id, amount=order.amount,
                     currency=order.currency, status=OrderStatus(order.status), trade_date=order.trade_date,
                     settle_on=order.settle_on, source=order.source, entry_id=order.entry_id,
                     settle_entry_id=order.settle_entry_id, created_at=order.created_at, settled_at=order.settled_at)


class SweepSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fund_id: ObjectId
    keep_amount: NonNegativeAmount = Field(description="What stays in the wallet or available balance.")
    min_sweep_amount: Amount = 1
    enabled: Annotated[bool, Field(strict=True)] = True


class SweepRead(BaseModel):
    id: str
    object: str = "sweep"
    holder_kind: HolderKind
    holder_id: str
    fund_id: str
    keep_amount: int
    min_sweep_amount: int
    enabled: bool
    updated_at: datetime


def read_sweep(sweep: Sweep) -> SweepRead:
    return SweepRead(id=sweep.id, holder_kind=HolderKind(sweep.holder_kind), holder_id=sweep.holder_id,
                     fund_id=sweep.fund_id, keep_amount=sweep.keep_amount, min_sweep_amount=sweep.min_sweep_amount,
                     enabled=sweep.enabled, updated_at=sweep.updated_at)


class HoldingRead(BaseModel):
    fund_id: str
    fund_code: str
    currency: str
    account_id: str
    amount: int


class IncomeLineRead(BaseModel):
    fund_id: str
    income_on: date
    days: int
    basis_amount: int
    income_per_10k: str
    amount: int
    currency: str
    carry: str
    entry_id: str | None


class FundTotalsRead(BaseModel):
    fund_id: str
    currency: str
    subscribed_amount: int
    redeemed_amount: int
    income_amount: int


class CurrencyAmount(BaseModel):
    currency: str
    amount: int


class StatementRead(BaseModel):
    object: str = "fund_statement"
    holder_kind: HolderKind
    holder_id: str
    from_on: date
    to_on: date
    holdings: list[HoldingRead]
    subscriptions: list[OrderRead]
    redemptions: list[OrderRead]
    income: list[IncomeLineRead]
    totals: list[FundTotalsRead]
    total_income: list[CurrencyAmount]


def _holding(h: Holding) -> HoldingRead:
    return HoldingRead(fund_id=h.fund_id, fund_code=h.fund_code, currency=h.currency, account_id=h.account_id,
                       amount=h.amount)


def _income(line: FundAccrual) -> IncomeLineRead:
    return IncomeLineRead(fund_id=line.fund_id, income_on=line.income_on, days=line.days,
                          basis_amount=line.basis_amount, income_per_10k=decimal_text(line.income_per_10k),
                          amount=line.amount, currency=line.currency, carry=decimal_text(line.carry),
                          entry_id=line.entry_id)


def _totals(t: FundTotals) -> FundTotalsRead:
    return FundTotalsRead(fund_id=t.fund_id, currency=t.currency, subscribed_amount=t.subscribed,
                          redeemed_amount=t.redeemed, income_amount=t.income)


def read_statement(s: Statement) -> StatementRead:
    return StatementRead(holder_kind=s.holder_kind, holder_id=s.holder_id, from_on=s.from_on, to_on=s.to_on,
                         holdings=[_holding(h) for h in s.holdings],
                         subscriptions=[read_order(o) for o in s.subscriptions],
                         redemptions=[read_order(o) for o in s.redemptions], income=[_income(i) for i in s.income],
                         totals=[_totals(t) for t in s.totals],
                         total_income=[CurrencyAmount(currency=c, amount=a) for c, a in sorted(s.total_income.items())])
