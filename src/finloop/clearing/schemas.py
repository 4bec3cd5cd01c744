"""Clearing wire models: fee schedules, fee quotes and clearing batches."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.types import Amount, CurrencyCode, Line, NonNegativeAmount, no_nul
from finloop.clearing.domain import MAX_TIERS, FeeKind, RefundFeePolicy
from finloop.clearing.service import BatchStatus, FeeBearer, ScheduleStatus

Rate = Annotated[Decimal, Field(ge=0, lt=1, max_digits=12, decimal_places=8,
                                description="A fraction, given as a string: \"0.006\" is 0.6 %.")]
ChannelCode = Annotated[Line, Field(min_length=1, max_length=40, examples=["unionpay"])]
#: A business date far enough from the ends of the calendar for any arithmetic on it.
BusinessDate = Annotated[date, Field(ge=date(2000, 1, 1), le=date(9000, 12, 31))]


class ChannelMethod(StrEnum):
    """Payment methods that go through a channel (a wallet balance never does)."""

    QR = "qr"
    H5 = "h5"
    APP = "app"
    MINI_PROGRAM = "mini_program"
    CARD = "card"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TierIn(Strict):
    up_to: NonNegativeAmount | None = Field(default=None, description="Inclusive upper bound; none on the last band.")
    rate: Rate = Decimal(0)
    fixed_amount: NonNegativeAmount = 0


class FeeScheduleCreate(Strict):
    channel: ChannelCode
    kind: FeeKind
    method: ChannelMethod | None = Field(default=None, description="None: every method of the channel.")
    currency: CurrencyCode | None = Field(default=None, description="None: every currency.")
    rate: Rate = Decimal(0)
    fixed_amount: NonNegativeAmount = 0
    tiers: Annotated[list[TierIn], Field(max_length=MAX_TIERS)] = []
    minimum_amount: NonNegativeAmount | None = None
    maximum_amount: NonNegativeAmount | None = None
    bearer: FeeBearer = FeeBearer.PLATFORM
    refund_fee_policy: RefundFeePolicy = RefundFeePolicy.PROPORTIONAL
    effective_from: BusinessDate | None = Field(default=None, description="Default: today's business date.")
    description: Annotated[str, Field(max_length=500), AfterValidator(no_nul)] = ""


class TierRead(BaseModel):
    up_to: int | None
    rate: str
    fixed_amount: int


class FeeScheduleRead(BaseModel):
    id: str
    object: str = "fee_schedule"
    channel: str
    method: str | None
    currency: str | None
    kind: FeeKind
    rate: str
    fixed_amount: int
    tiers: list[TierRead]
    minimum_amount: int | None
    maximum_amount: int | None
    bearer: FeeBearer
    refund_fee_policy: RefundFeePolicy
    effective_from: date
    status: ScheduleStatus
    description: str
    created_at: datetime
    retired_at: datetime | None


class QuoteRequest(Strict):
    channel: ChannelCode
    amount: Amount
    currency: CurrencyCode
    method: ChannelMethod | None = None


class QuoteRead(BaseModel):
    object: str = "fee_quote"
    channel: str
    amount: int
    currency: str
    method: str | None
    fee_amount: int
    bearer: FeeBearer
    schedule_id: str | None
    refund_fee_policy: RefundFeePolicy
    explanation: str


class ClearingBatchRead(BaseModel):
    id: str
    object: str = "clearing_batch"
    channel: str
    currency: str
    business_date: date
    status: BatchStatus
    payments_count: int
    payments_gross_amount: int
    payment_fees_amount: int
    refunds_count: int
    refunds_gross_amount: int
    refund_fee_returns_amount: int
    chargebacks_count: int
    chargebacks_amount: int = Field(description="Signed: taken off the receivable by disputes that day.")
    adjustments_count: int
    adjustments_amount: int = Field(description="Signed: other postings on the receivable that day.")
    expected_net_amount: int = Field(description="What the channel should settle (negative: we owe it).")
    shard_amounts: dict[str, int]
    settled_amount: int | None
    difference_amount: int | None = Field(description="settled − expected.")
    settlement_reference: str | None
    received_on: date | None
    settlement_entry_id: str | None
    computed_at: datetime
    created_at: datetime
    settled_at: datetime | None


class ClearingRunRequest(Strict):
    business_date: BusinessDate
    channel: ChannelCode | None = None


class ClearingRunRead(BaseModel):
    object: str = "list"
    data: list[ClearingBatchRead]
