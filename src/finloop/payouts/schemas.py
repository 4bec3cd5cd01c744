"""Payouts wire models: what the API accepts and shows. Account numbers are never shown, only last4."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.types import Amount, CurrencyCode, NonNegativeAmount, single_line
from finloop.payouts.service import ScheduleInterval
from finloop.payouts.state import PayoutStatus
from finloop.settlement.accounts import PartyKind

PartyId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")]
ObjectId = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(single_line)]


class PayoutAccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party_kind: PartyKind
    party_id: PartyId
    currency: CurrencyCode
    holder_name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(single_line)]
    account_number: Annotated[str, Field(min_length=6, max_length=40, pattern=r"^[A-Za-z0-9 \-]+$",
                                         description="Sealed at rest; only its last four digits are shown.")]
    bank_code: Annotated[str, Field(min_length=2, max_length=20, pattern=r"^[A-Z0-9]+$",
                                    description="The bank's code (e.g. a BIC or a national bank number).")]


class PayoutAccountRead(BaseModel):
    id: str
    object: str = "payout_account"
    party_kind: PartyKind
    party_id: str
    currency: str
    holder_name: str = Field(description="Masked.")
    account_last4: str
    bank_code: str
    status: str
    created_at: datetime


class PayoutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    party_kind: PartyKind
    party_id: PartyId
    amount: Amount
    currency: CurrencyCode
    payout_account_id: ObjectId | None = Field(default=None,
                                               description="Default: the party's latest active account.")
    description: Annotated[str, Field(max_length=200), AfterValidator(single_line)] = ""


class PayoutRead(BaseModel):
    id: str
    object: str = "payout"
    party_kind: PartyKind
    party_id: str
    payout_account_id: str
    amount: int
    currency: str
    status: PayoutStatus
    description: str
    is_automatic: bool
    hold_id: str
    approval_id: str | None
    screening_id: str | None = Field(description="The beneficiary screening the payout waits for, if any.")
    attempts: int
    next_attempt_at: datetime | None
    bank_reference: str | None
    failure_code: str | None
    failure_message: str | None
    executed_on: date | None
    returned_on: date | None
    post_entry_id: str | None
    return_entry_id: str | None
    created_at: datetime
    updated_at: datetime


class PayoutSkipRead(BaseModel):
    id: int
    object: str = "payout_skip"
    automatic_key: str
    schedule_id: str
    party_kind: PartyKind
    party_id: str
    amount: int = Field(description="What would have been paid, minor units.")
    currency: str
    reason: str = Field(description="party_not_verified, payout_limit_reached, payout_account_required, "
                                    "risk_declined, beneficiary_sanctioned, ...")
    decision_id: str | None
    business_date: date
    created_at: datetime


class ScheduleWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: CurrencyCode
    interval: ScheduleInterval
    weekday: Annotated[int, Field(ge=0, le=6, strict=True, description="0 = Monday; weekly only.")] | None = None
    threshold_amount: Amount | None = Field(default=None, description="Threshold schedules: pay out from here.")
    minimum_balance: NonNegativeAmount = Field(default=0, description="Left in the available balance.")
    approval_amount: NonNegativeAmount | None = Field(
        default=None, description="This party's approval amount (overrides the tenant's).")
    payout_account_id: ObjectId | None = None


class ScheduleRead(BaseModel):
    id: str
    object: str = "payout_schedule"
    party_kind: PartyKind
    party_id: str
    currency: str
    interval: ScheduleInterval
    weekday: int | None
    threshold_amount: int | None
    minimum_balance: int
    approval_amount: int | None
    payout_account_id: str | None
    last_run_on: date | None
    updated_at: datetime


class SettingsWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval_amount: NonNegativeAmount | None = Field(
        default=None, description="Payouts above this wait for a finance user's approval; null: never.")
    max_attempts: Annotated[int, Field(ge=1, le=10, strict=True)] = 3


class SettingsRead(BaseModel):
    object: str = "payout_settings"
    approval_amount: int | None
    max_attempts: int
