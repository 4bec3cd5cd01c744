"""Ledger request and response schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from finloop.api.types import (
    Amount,
    CurrencyCode,
    Description,
    Instant,
    Line,
    Metadata,
    NonNegativeAmount,
    TransferKey,
)
from finloop.ledger.domain import AccountStatus, AccountType, BalanceRule, Side

AccountCode = Annotated[str, Field(min_length=3, max_length=255, examples=["liabilities:merchant:M1:available"])]
ObjectId = Annotated[Line, Field(min_length=1, max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountCreate(Strict):
    code: AccountCode
    type: AccountType
    currency: CurrencyCode
    name: Annotated[Line, Field(max_length=255)] = ""
    balance_rule: BalanceRule = BalanceRule.NONE
    overdraft_limit: NonNegativeAmount = 0
    normal_side: Side | None = Field(None, description="Defaults from the type; set it for a contra account.")
    metadata: Metadata = Field(default_factory=dict)


class BalancesRead(BaseModel):
    currency: str
    posted: int = Field(description="Posted balance, signed to the account's normal side.")
    pending_debits: int
    pending_credits: int
    available: int = Field(description="Posted balance less pending holds that would reduce it.")
    debits_posted: int
    credits_posted: int


class AccountRead(BaseModel):
    id: str
    object: str = "account"
    code: str
    name: str
    type: AccountType
    normal_side: Side
    currency: str
    status: AccountStatus
    balance_rule: BalanceRule
    overdraft_limit: int
    balances: BalancesRead
    metadata: dict[str, Any]
    created_at: datetime


class PostingCreate(Strict):
    account_id: ObjectId
    direction: Side
    amount: Amount
    currency: CurrencyCode


class TransferCreate(Strict):
    """Either the shorthand (``debit_account_id``, ``credit_account_id``, ``amount``, ``currency``, all
    four) or ``postings`` for an entry with more than two legs. The endpoint reports a missing shorthand
    field, so that the error names it."""

    key: TransferKey | None = Field(None, description="Permanent transfer key; defaults to the Idempotency-Key.")
    debit_account_id: ObjectId | None = None
    credit_account_id: ObjectId | None = None
    amount: Amount | None = None
    currency: CurrencyCode | None = None
    postings: Annotated[list[PostingCreate], Field(min_length=2, max_length=100)] | None = None
    description: Description = ""
    effective_at: Instant | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_shape(self) -> TransferCreate:
        shorthand = (self.debit_account_id, self.credit_account_id, self.amount, self.currency)
        if self.postings is not None and any(v is not None for v in shorthand):
            raise PydanticCustomError(
                "conflicting_fields",
                "Give either postings or debit_account_id, credit_account_id, amount and currency.")
        return self


class BatchCreate(Strict):
    transfers: Annotated[list[TransferCreate], Field(min_length=1, max_length=1000)]


class PostingRead(BaseModel):
    account_id: str
    direction: Side
    amount: int
    currency: str


class EntryRead(BaseModel):
    id: str
    object: str = "entry"
    key: str
    kind: str
    description: str
    effective_at: datetime
    business_date: date
    created_at: datetime
    batch_id: str | None
    hold_id: str | None
    reverses_id: str | None
    postings: list[PostingRead]
    metadata: dict[str, Any]


class BatchRead(BaseModel):
    object: str = "batch"
    batch_id: str
    entries: list[EntryRead]


class ReverseCreate(Strict):
    key: TransferKey | None = None
    description: Description | None = None


class HoldCreate(Strict):
    key: TransferKey | None = Field(None, description="Permanent key; defaults to the Idempotency-Key.")
    debit_account_id: ObjectId
    credit_account_id: ObjectId
    amount: Amount
    currency: CurrencyCode
    timeout_seconds: Annotated[int, Field(ge=1, le=366 * 86400, strict=True)] | None = Field(
        None, description="Omit for a hold that never expires (e.g. a payout in flight).")
    description: Description = ""
    metadata: Metadata = Field(default_factory=dict)


class HoldPost(Strict):
    amount: Amount | None = Field(None, description="Post less than the hold; the rest is released.")


class HoldRead(BaseModel):
    id: str
    object: str = "hold"
    key: str
    status: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    posted_amount: int
    currency: str
    description: str
    expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None
    post_entry_id: str | None
    metadata: dict[str, Any]


class AsOfBalance(BaseModel):
    account_id: str
    as_of: datetime
    balances: BalancesRead


class StatementLineRead(BaseModel):
    posting_id: int
    entry_id: str
    effective_at: datetime
    amount: int = Field(description="Signed to the account's normal side.")
    balance: int
    description: str


class TrialBalanceLine(BaseModel):
    account_id: str
    code: str
    type: str
    debits: int
    credits: int
    balance: int


class TrialBalanceCurrency(BaseModel):
    currency: str
    lines: list[TrialBalanceLine]
    total_debits: int
    total_credits: int
    balanced: bool


class TrialBalanceRead(BaseModel):
    as_of: datetime | None
    currencies: list[TrialBalanceCurrency]


class StatementSection(BaseModel):
    lines: list[TrialBalanceLine]
    total: int


class IncomeStatementCurrency(BaseModel):
    currency: str
    income: StatementSection
    expenses: StatementSection
    net_income: int


class IncomeStatementRead(BaseModel):
    start: datetime
    end: datetime
    currencies: list[IncomeStatementCurrency]


class BalanceSheetCurrency(BaseModel):
    currency: str
    assets: StatementSection
    liabilities: StatementSection
    equity: StatementSection
    retained_earnings: int
    balanced: bool


class BalanceSheetRead(BaseModel):
    as_of: datetime
    currencies: list[BalanceSheetCurrency]


class PeriodClose(Strict):
    start_on: date
    end_on: date


class PeriodRead(BaseModel):
    id: str
    object: str = "accounting_period"
    start_on: date
    end_on: date
    status: str
    closed_at: datetime
    closed_by: str
