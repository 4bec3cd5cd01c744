"""Payments request and response schemas. Amounts are strict integers of minor units."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from finloop.api.types import Amount, CurrencyCode, Line, Metadata, NonNegativeAmount
from finloop.payments.connectors.base import PaymentMethod
from finloop.payments.state import AttemptStatus, PaymentStatus, RefundStatus

ObjectId = Annotated[Line, Field(min_length=1, max_length=40)]
ShortText = Annotated[Line, Field(max_length=100)]
LongText = Annotated[Line, Field(max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MerchantCreate(Strict):
    reference: Annotated[Line, Field(min_length=1, max_length=100, description="Your own id for the merchant.")]
    name: Annotated[Line, Field(min_length=1, max_length=200)]
    refund_approval_amount: NonNegativeAmount | None = Field(
        None, description="Refunds above this many minor units wait for a finance user's approval.")
    metadata: Metadata = Field(default_factory=dict)


class MerchantUpdate(Strict):
    refund_approval_amount: NonNegativeAmount | None


class MerchantRead(BaseModel):
    id: str
    object: str = "merchant"
    reference: str
    name: str
    status: str
    refund_approval_amount: int | None
    metadata: dict[str, Any]
    created_at: datetime


class CustomerCreate(Strict):
    reference: Annotated[Line, Field(min_length=1, max_length=100)]
    segment: Annotated[Line, Field(max_length=50)] | None = None
    metadata: Metadata = Field(default_factory=dict)


class CustomerRead(BaseModel):
    id: str
    object: str = "customer"
    reference: str
    segment: str | None
    metadata: dict[str, Any]
    created_at: datetime


class ChannelCreate(Strict):
    code: Annotated[Line, Field(min_length=1, max_length=40, examples=["wxpay"])]
    provider: Annotated[Line, Field(min_length=1, max_length=40, examples=["wechat", "alipay", "stripe", "generic"])]
    base_url: Annotated[Line, Field(min_length=8, max_length=500)]
    methods: Annotated[list[PaymentMethod], Field(min_length=1, max_length=6)]
    currencies: Annotated[list[CurrencyCode], Field(min_length=1, max_length=20)]
    fee_rate: Annotated[Decimal, Field(ge=0, lt=1, max_digits=12, decimal_places=8,
                                       description="A fraction, given as a string: \"0.006\".")] = Decimal(0)
    fee_fixed_amount: NonNegativeAmount = 0
    refund_fee_policy: Literal["proportional", "retained"] = "proportional"
    timeout_ms: Annotated[int, Field(ge=100, le=120_000)] = 10_000
    settings: dict[str, str] = Field(default_factory=dict, description="Non-secret settings (app id, merchant number).")
    credentials: dict[str, str] = Field(default_factory=dict,
                                        description="Secrets; stored sealed by the vault, never returned.")


class ChannelRead(BaseModel):
    id: str
    object: str = "channel"
    code: str
    provider: str
    base_url: str
    methods: list[str]
    currencies: list[str]
    fee_rate: str
    fee_fixed_amount: int
    refund_fee_policy: str
    timeout_ms: int
    settings: dict[str, Any]
    has_credentials: bool
    status: str
    notification_url: str
    created_at: datetime


class ChannelUpdate(Strict):
    status: Literal["enabled", "disabled"]


class PaymentCreate(Strict):
    merchant_id: ObjectId | None = Field(None, description="Required for orders; absent for a wallet top-up.")
    purpose: Literal["order", "wallet_top_up"] = "order"
    amount: Amount
    currency: CurrencyCode
    order_reference: ShortText = ""
    description: LongText = ""
    customer_id: ObjectId | None = None
    method: PaymentMethod | None = None
    capture_method: Literal["automatic", "manual"] = "automatic"
    card_id: ObjectId | None = Field(None, description="A card token from POST /v1/cards (method card).")
    metadata: Metadata = Field(default_factory=dict)
    confirm: bool = Field(False, description="Confirm at once: route and charge in this request.")


class PaymentConfirm(Strict):
    method: PaymentMethod | None = None
    card_id: ObjectId | None = None
    device_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:\-]{1,100}$",
                                    description="The customer's device, for the risk decision.")] | None = None
    ip: Annotated[str, Field(min_length=2, max_length=45, description="The customer's IPv4 or IPv6 address, for "
                                                                      "the risk decision.")] | None = None
    ip_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2 country of the IP.")
                          ] | None = None

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError("ip is an IPv4 or IPv6 address") from None

    def risk_context(self) -> dict[str, str]:
        return {k: v for k, v in (("device_id", self.device_id), ("ip", self.ip), ("ip_country", self.ip_country))
                if v is not None}


class PaymentCapture(Strict):
    amount: Amount | None = Field(None, description="Capture less than authorised; the rest is released.")


class PaymentCancel(Strict):
    reason: Annotated[Line, Field(max_length=100)] = "requested_by_customer"


class NextAction(BaseModel):
    type: str = Field(description="qr_code, redirect, app... or risk_review (parked until its case is closed).")
    case_id: str | None = Field(None, description="The risk case of a risk_review.")
    qr_code: str | None = None
    redirect_url: str | None = None
    app_payload: str | None = None
    expires_at: str | None = None


class PaymentRead(BaseModel):
    id: str
    object: str = "payment"
    merchant_id: str | None
    customer_id: str | None
    purpose: str
    amount: int
    currency: str
    captured_amount: int
    refunded_amount: int
    fee_amount: int
    method: str | None
    capture_method: str
    status: PaymentStatus
    order_reference: str
    description: str
    channel: str | None
    next_action: NextAction | None
    failure_code: str | None
    failure_message: str | None
    is_disputed: bool
    ledger_entry_id: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    succeeded_at: datetime | None
    canceled_at: datetime | None


class AttemptRead(BaseModel):
    id: str
    object: str = "payment_attempt"
    payment_id: str
    sequence: int
    channel: str
    status: AttemptStatus
    amount: int
    fee_amount: int | None
    channel_ref: str | None
    routing_decision_id: str | None
    latency_ms: int | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime


class RefundCreate(Strict):
    amount: Amount | None = Field(None, description="Defaults to what is left to refund.")
    reason: LongText = ""


class RefundRead(BaseModel):
    id: str
    object: str = "refund"
    payment_id: str
    attempt_id: str
    channel: str
    amount: int
    currency: str
    fee_returned_amount: int
    status: RefundStatus
    reason: str
    channel_refund_ref: str | None
    failure_code: str | None
    failure_message: str | None
    is_automatic: bool
    ledger_entry_id: str | None
    created_at: datetime
    updated_at: datetime


class RefundRetry(Strict):
    route: Literal["original", "wallet"] = Field(
        "original", description="'wallet' pays the refund into the customer's wallet when the channel cannot.")


class WalletBalanceRead(BaseModel):
    currency: str
    balance: int
    available: int = Field(description="The balance less withdrawals in flight.")
    account_id: str


class WalletRead(BaseModel):
    object: str = "wallet"
    customer_id: str
    balances: list[WalletBalanceRead]


class WalletLineRead(BaseModel):
    entry_id: str
    effective_at: datetime
    amount: int = Field(description="Signed: positive adds to the balance.")
    balance: int
    description: str


class WithdrawalCreate(Strict):
    channel: Annotated[Line, Field(min_length=1, max_length=40)]
    amount: Amount
    currency: CurrencyCode
    account_name: Annotated[Line, Field(min_length=1, max_length=200)]
    account_number: Annotated[Line, Field(min_length=6, max_length=40, description="Stored sealed; only its last "
                                                                                  "four digits are shown.")]
    bank_code: Annotated[Line, Field(max_length=40)] | None = None


class WithdrawalRead(BaseModel):
    id: str
    object: str = "withdrawal"
    customer_id: str
    channel: str
    amount: int
    currency: str
    fee_amount: int
    status: str
    account_name: str
    account_last4: str
    channel_ref: str | None
    failure_code: str | None
    ledger_entry_id: str | None
    created_at: datetime
    updated_at: datetime


class CheckoutLinkRead(BaseModel):
    payment_id: str
    url: str = Field(description="The hosted checkout page: amount, merchant, ways to pay, live status.")
    expires_at: datetime
