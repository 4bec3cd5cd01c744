"""What a payment channel can do for us, as small capability interfaces, and the values that cross them.

A connector is the only code that knows a provider's wire: its URLs, field names, encodings and
signatures. Everything it returns is in finloop's vocabulary below. Amounts are integer minor units;
nothing here ever carries a float.

The rules every connector keeps:
- it never touches the database and never opens a transaction; the payments service records the
  attempt, calls the connector, and applies the result in a second transaction;
- a call whose outcome it cannot know (timeout, connection reset after sending, HTTP 5xx, a reply it
  cannot parse or verify) returns ``Outcome.UNKNOWN``: the caller must ``query`` before trying anywhere
  else, so a customer is never charged twice;
- a clear refusal returns ``Outcome.DECLINED`` (the customer's problem: insufficient funds, card
  declined: do not fail over) or ``Outcome.FAILED`` with ``retryable`` set when another channel may
  succeed (channel error, rate limit, outage);
- secrets, card numbers and personal data never appear in ``raw``, in exceptions or in logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import httpx


class PaymentMethod(StrEnum):
    QR = "qr"                      # the customer scans a code we show
    H5 = "h5"                      # a mobile web redirect to the provider
    APP = "app"                    # the provider's app is opened with a signed order string
    MINI_PROGRAM = "mini_program"  # inside the provider's super-app
    CARD = "card"                  # card data (a vault token on our side) sent to a card acquirer
    WALLET = "wallet_balance"      # the customer's stored-value wallet with us (no external channel)


#: Flows where the customer completes the payment at the channel; they cannot fail over mid-request.
CUSTOMER_ACTION_METHODS = frozenset({PaymentMethod.QR, PaymentMethod.H5, PaymentMethod.APP,
                                     PaymentMethod.MINI_PROGRAM})


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"            # money taken (captured)
    AUTHORIZED = "authorized"          # card authorised, waiting for our capture (manual capture)
    REQUIRES_ACTION = "requires_action"  # the customer must act at the channel (QR shown, redirect)
    PROCESSING = "processing"          # accepted; the result comes by notification or query
    DECLINED = "declined"              # refused for the customer's reasons: do not retry elsewhere
    FAILED = "failed"                  # refused by the channel; see ``retryable``
    CANCELED = "canceled"              # closed before any money moved
    NOT_FOUND = "not_found"            # (query only) the channel has never seen this reference
    UNKNOWN = "unknown"                # timeout or 5xx: query before doing anything else


@dataclass(frozen=True, slots=True)
class Action:
    """What the customer must do next, for ``Outcome.REQUIRES_ACTION``."""

    type: str                     # "qr_code", "redirect", "app_invoke"
    qr_code: str | None = None    # the text to encode in a QR code
    redirect_url: str | None = None
    app_payload: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CardData:
    """A card in clear, alive only between the vault and the connector's HTTP call."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str | None = None
    holder: str | None = None

    def __repr__(self) -> str:  # never print the number
        return f"CardData(last4={self.number[-4:]!r})"


@dataclass(frozen=True, slots=True)
class PayRequest:
    reference: str                # our attempt id: the provider's out_trade_no / order id; unique per try
    amount: int                   # minor units
    currency: str
    method: PaymentMethod
    description: str
    capture: bool = True          # False: authorise only (cards), capture later
    customer_ref: str | None = None
    card: CardData | None = None
    notify_url: str | None = None
    return_url: str | None = None
    expires_at: datetime | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PayResult:
    outcome: Outcome
    channel_ref: str | None = None      # the provider's transaction id, once it has one
    action: Action | None = None
    fee: int | None = None              # the provider's fee in minor units, when it says
    error_code: str | None = None       # the provider's code, as it sent it
    error_message: str | None = None
    retryable: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)  # redacted reply, for the attempt's record


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The provider's view of one payment (a ``query`` answer or a notification)."""

    outcome: Outcome                    # SUCCEEDED, AUTHORIZED, PROCESSING, REQUIRES_ACTION, FAILED,
                                        # DECLINED, CANCELED, NOT_FOUND or UNKNOWN (query itself failed)
    reference: str
    channel_ref: str | None = None
    amount: int | None = None
    captured_amount: int | None = None
    currency: str | None = None
    fee: int | None = None
    paid_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    reference: str
    channel_ref: str
    amount: int                         # may be less than authorised: partial capture
    currency: str
    final: bool = True                  # release what is not captured


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_reference: str               # our refund id: the provider's out_refund_no
    reference: str                      # the attempt it refunds
    channel_ref: str | None
    amount: int
    payment_amount: int                 # the original (captured) total, which some providers require
    currency: str
    reason: str | None = None
    notify_url: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    outcome: Outcome                    # SUCCEEDED, PROCESSING, FAILED, DECLINED, NOT_FOUND or UNKNOWN
    refund_reference: str
    channel_refund_ref: str | None = None
    amount: int | None = None
    fee_returned: int | None = None     # channel fee given back, where the provider returns it
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OperationResult:
    """The answer to capture or cancel (close)."""

    outcome: Outcome
    channel_ref: str | None = None
    amount: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


class NotificationKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    DISPUTE = "dispute"


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified, decoded asynchronous notification."""

    kind: NotificationKind
    notification_id: str                # the provider's id, for de-duplication
    payment: QueryResult | None = None
    refund: RefundResult | None = None
    dispute: Mapping[str, Any] | None = None  # reference, channel_ref, amount, currency, reason, evidence_due_by
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """What the provider expects back from our notification endpoint."""

    status_code: int
    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class BillFile:
    """A provider's daily statement, in its own layout (the reconciliation issue parses it)."""

    channel: str
    business_date: date
    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    reference: str
    amount: int
    currency: str
    account_name: str
    account_number: str                 # kept out of logs and ``raw``
    bank_code: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class PayoutResult:
    outcome: Outcome                    # SUCCEEDED, PROCESSING, FAILED, DECLINED or UNKNOWN
    reference: str
    channel_ref: str | None = None
    fee: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


class InvalidSignature(Exception):
    """A notification, webhook or reply whose signature does not verify. Never processed."""


# ------------------------------------------------------------------------------------------ capabilities


@runtime_checkable
class Payer(Protocol):
    def pay(self, request: PayRequest) -> PayResult: ...
    def query(self, reference: str) -> QueryResult: ...


@runtime_checkable
class Capturer(Protocol):
    def capture(self, request: CaptureRequest) -> OperationResult: ...


@runtime_checkable
class Canceller(Protocol):
    def cancel(self, reference: str, channel_ref: str | None) -> OperationResult: ...


@runtime_checkable
class Refunder(Protocol):
    def refund(self, request: RefundRequest) -> RefundResult: ...
    def query_refund(self, refund_reference: str, reference: str) -> RefundResult: ...


@runtime_checkable
class NotificationParser(Protocol):
    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and decode; raise ``InvalidSignature`` when it does not verify."""
        ...

    def acknowledge(self, accepted: bool) -> Acknowledgement: ...


@runtime_checkable
class BillDownloader(Protocol):
    def download_bill(self, business_date: date) -> BillFile: ...


@runtime_checkable
class PayoutSender(Protocol):
    def payout(self, request: PayoutRequest) -> PayoutResult: ...
    def query_payout(self, reference: str) -> PayoutResult: ...


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One channel account of a tenant, as a connector needs it.

    ``settings`` holds what may be shown (app id, merchant number, base URL); ``credentials`` holds
    secrets (private keys, API keys) and lives encrypted at rest.
    """

    code: str                           # the tenant's name for the channel, e.g. "wxpay"
    provider: str                       # the connector package, e.g. "wechat", "alipay", "stripe", "generic"
    base_url: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    credentials: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0


class Connector(Payer, Protocol):
    """Every connector pays and queries; the other capabilities are checked with ``isinstance``."""

    config: ChannelConfig


ConnectorFactory = Callable[[ChannelConfig, httpx.Client], Connector]
