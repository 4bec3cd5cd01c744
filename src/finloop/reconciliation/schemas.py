"""Reconciliation import wire schemas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from finloop.api.types import CurrencyCode, Line, no_nul
from finloop.reconciliation.importers.base import KINDS, MAPPABLE_FIELDS
from finloop.reconciliation.models import ReconFile, ReconLine, ReconMapping, SafeguardingCheck

Format = Literal["wechat", "alipay", "stripe", "generic", "camt053", "mt940", "csv"]
Kind = Literal["payment", "refund", "fee", "settlement", "payout", "payout_return", "chargeback", "adjustment",
               "other"]
MappableField = Literal["value_on", "occurred_at", "kind", "our_reference", "channel_reference", "amount",
                        "direction", "fee_amount", "currency", "status", "counterparty", "description"]
assert set(KINDS) == set(Kind.__args__) and set(MAPPABLE_FIELDS) == set(MappableField.__args__)  # type: ignore[attr-defined]

Header = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_nul)]
Value = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(no_nul)]
Format_ = Annotated[Line, Field(min_length=2, max_length=40)]


class FileRead(BaseModel):
    id: str
    object: str = "reconciliation_file"
    source: str
    source_kind: str
    format: str
    business_date: date
    filename: str
    sha256: str
    line_count: int
    account: str | None = Field(description="The bank account of a statement, masked to its last 4 characters.")
    currency: str | None
    opening_balance: int | None
    closing_balance: int | None
    mapping_id: str | None
    imported_at: datetime


class LineRead(BaseModel):
    id: int
    object: str = "reconciliation_line"
    file_id: str
    line_no: int
    value_on: date
    occurred_at: datetime | None
    kind: str
    our_reference: str | None
    channel_reference: str | None
    amount: int
    direction: str
    fee_amount: int
    currency: str
    status: str | None
    counterparty: str | None
    description: str | None


class MappingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[Line, Field(min_length=1, max_length=100)]
    columns: Annotated[dict[MappableField, Header], Field(min_length=2, max_length=len(MAPPABLE_FIELDS),
                       description="Canonical field → the file's column header. value_on and amount required.")]
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    date_format: Annotated[Format_, Field(description="strftime format of value_on, e.g. %Y-%m-%d.")] = "%Y-%m-%d"
    datetime_format: Annotated[Format_, Field(description="Format of occurred_at.")] = "%Y-%m-%dT%H:%M:%S%.f%:z"
    amount_style: Literal["major", "minor"] = "major"
    sign: Literal["signed", "direction"] = "signed"
    credit_values: Annotated[list[Value], Field(max_length=10)] = ["credit"]
    debit_values: Annotated[list[Value], Field(max_length=10)] = ["debit"]
    default_currency: CurrencyCode | None = None
    default_kind: Kind = "other"


class MappingRead(BaseModel):
    id: str
    object: str = "reconciliation_mapping"
    name: str
    columns: dict[str, str]
    delimiter: str
    date_format: str
    datetime_format: str
    amount_style: str
    sign: str
    credit_values: list[str]
    debit_values: list[str]
    default_currency: str | None
    default_kind: str
    created_at: datetime


class SafeguardingRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: date | None = Field(default=None, description="The business day checked (default: the current one).")
    custody_source: Annotated[Line, Field(min_length=1, max_length=64)] = "custody"


class SafeguardingRead(BaseModel):
    id: str
    object: str = "safeguarding_check"
    checked_on: date
    currency: str
    custody_source: str
    statement_file_id: str | None
    statement_on: date | None
    bank_balance: int | None
    owed_amount: int
    shortfall_amount: int
    status: str
    breakdown: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SafeguardingResult(BaseModel):
    object: str = "list"
    data: list[SafeguardingRead]


def mask(account: str | None) -> str | None:
    return None if account is None else "•" * max(0, len(account) - 4) + account[-4:]


def read_file(record: ReconFile) -> FileRead:
    return FileRead(
        id=record.id, source=record.source, source_kind=record.source_kind, format=record.format,
        business_date=record.business_date, filename=record.filename, sha256=record.sha256,
        line_count=record.line_count, account=mask(record.account), currency=record.currency,
        opening_balance=record.opening_balance, closing_balance=record.closing_balance, mapping_id=record.mapping_id,
        imported_at=record.imported_at)


def read_line(line: ReconLine) -> LineRead:
    return LineRead(
        id=line.id, file_id=line.file_id, line_no=line.line_no, value_on=line.value_on, occurred_at=line.occurred_at,
        kind=line.kind, our_reference=line.our_reference, channel_reference=line.channel_reference, amount=line.amount,
        direction=line.direction, fee_amount=line.fee_amount, currency=line.currency, status=line.status,
        counterparty=line.counterparty, description=line.description)


def read_mapping(mapping: ReconMapping) -> MappingRead:
    return MappingRead(
        id=mapping.id, name=mapping.name, columns=dict(mapping.columns), delimiter=mapping.delimiter,
        date_format=mapping.date_format, datetime_format=mapping.datetime_format, amount_style=mapping.amount_style,
        sign=mapping.sign, credit_values=list(mapping.credit_values), debit_values=list(mapping.debit_values),
        default_currency=mapping.default_currency, default_kind=mapping.default_kind, created_at=mapping.created_at)


def read_check(check: SafeguardingCheck) -> SafeguardingRead:
    return SafeguardingRead(
        id=check.id, checked_on=check.checked_on, currency=check.currency, custody_source=check.custody_source,
        statement_file_id=check.statement_file_id, statement_on=check.statement_on, bank_balance=check.bank_balance,
        owed_amount=check.owed_amount, shortfall_amount=check.shortfall_amount, status=check.status,
        breakdown=dict(check.breakdown), created_at=check.created_at, updated_at=check.updated_at)
