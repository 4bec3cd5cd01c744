"""Payments use cases that fit in one transaction. Every function takes a unit of work and never commits.

Invariants owned here:
- a payment's status changes only along ``state.PAYMENT_TRANSITIONS`` (an illegal move is a 409), under
  the payment's row lock, so two confirms or two refunds of one payment are serialised;
- money moves only in ``apply_*`` functions, in the same transaction as the status change that explains
  it, through ``postings``; each posting has a permanent key, so a result applied twice posts once;
- refunds in flight are reserved in ``refunded_amount`` when they are recorded, so concurrent refund
  requests can never exceed the captured amount (the database checks it too);
- channel results are applied forward only: a late or repeated answer never moves an attempt back, and
  a success on an attempt we had abandoned is refunded automatically instead of charging twice.
Multi-step orchestration with channel calls between transactions lives in ``flows``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from finloop.clearing.domain import channel_default_fee, cumulative_fee_returned, refund_fee_returned
from finloop.core.errors import Conflict, InvalidRequest, InvariantViolation, NotFound
from finloop.core.money import check_amount, is_currency
from finloop.core.text import check_text
from finloop.db.uow import UnitOfWork
from finloop.payments import postings
from finloop.payments.connectors.base import (
    CUSTOMER_ACTION_METHODS,
    Action,
    Outcome,
    PaymentMethod,
    QueryResult,
    RefundResult,
)
from finloop.payments.models import Attempt, Channel, ChannelNotification, Customer, Merchant, Payment, Refund
from finloop.payments.state import (
    OPEN_ATTEMPT_STATUSES,
    RESERVING_REFUND_STATUSES,
    AttemptStatus,
    PaymentStatus,
    RefundStatus,
    can_move_attempt,
    can_move_refund,
    check_payment_move,
)
from finloop.splits import service as splits
from finloop.tenancy.service import Principal
from finloop.webhooks import service as webhooks

#: The approval action of refunds above a merchant's threshold.
REFUND_APPROVAL_ACTION = "payments.refund"
#: The route label of refunds paid into the customer's wallet instead of through a channel.
WALLET_ROUTE = "wallet"
#: The query ladder for attempts and refunds whose result the channel still owes: seconds after each query.
QUERY_LADDER_SECONDS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600)
_CODE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")


def next_query_delay(queries: int) -> timedelta:
    return timedelta(seconds=QUERY_LADDER_SECONDS[min(queries, len(QUERY_LADDER_SECONDS) - 1)])


# ------------------------------------------------------------------------------------------ merchants etc.


def create_merchant(uow: UnitOfWork, tenant_id: str, *, reference: str, name: str,
                    refund_approval_amount: int | None = None, metadata: dict[str, Any] | None = None) -> Merchant:
    reference = check_text(reference, param="reference", max_length=100, required=True)
    if uow.session.scalar(select(Merchant.id).where(Merchant.tenant_id == tenant_id,
                                                    Merchant.reference == reference)):
        raise Conflict(f"A merchant with reference {reference} exists.", code="merchant_exists", param="reference")
    if refund_approval_amount is not None:
        check_amount(refund_approval_amount, allow_negative=False)
    merchant = Merchant(id=uow.ids.new("merchant"), tenant_id=tenant_id, reference=reference,
                        name=check_text(name, param="name", max_length=200, required=True), status="active",
                        refund_approval_amount=refund_approval_amount, meta=metadata or {},
                        created_at=uow.clock.now())
    uow.session.add(merchant)
    uow.session.flush()
    return merchant


def get_merchant(uow: UnitOfWork, tenant_id: str, merchant_id: str, param: str = "merchant_id") -> Merchant:
    merchant = uow.session.scalar(select(Merchant).where(Merchant.tenant_id == tenant_id, Merchant.id == merchant_id))
    if merchant is None:
        raise NotFound(f"No such merchant: {merchant_id}.", code="merchant_not_found", param=param)
    return merchant


def set_refund_approval_amount(uow: UnitOfWork, tenant_id: str, merchant_id: str, amount: int | None, *,
                               actor: str) -> Merchant:
    """Change the threshold above which this merchant's refunds wait for approval (audited)."""
    from finloop.audit import service as audit

    merchant = get_merchant(uow, tenant_id, merchant_id)
    if amount is not None:
        check_amount(amount, allow_negative=False)
    before = merchant.refund_approval_amount
    merchant.refund_approval_amount = amount
    uow.session.flush()
    audit.record(uow, tenant_id, actor=actor, action="merchant.refund_approval_amount_changed",
                 object_type="merchant", object_id=merchant.id, before={"refund_approval_amount": before},
                 after={"refund_approval_amount": amount})
    return merchant


def list_merchants(uow: UnitOfWork, tenant_id: str, *, after: str | None, limit: int) -> list[Merchant]:
    query = select(Merchant).where(Merchant.tenant_id == tenant_id)
    if after:
        query = query.where(Merchant.id > after)
    return list(uow.session.scalars(query.order_by(Merchant.id).limit(limit + 1)))


def create_customer(uow: UnitOfWork, tenant_id: str, *, reference: str, segment: str | None = None,
                    metadata: dict[str, Any] | None = None) -> Customer:
    reference = check_text(reference, param="reference", max_length=100, required=True)
    if uow.session.scalar(select(Customer.id).where(Customer.tenant_id == tenant_id,
                                                    Customer.reference == reference)):
        raise Conflict(f"A customer with reference {reference} exists.", code="customer_exists", param="reference")
    customer = Customer(id=uow.ids.new("customer"), tenant_id=tenant_id, reference=reference,
                        segment=check_text(segment, param="segment", max_length=50) or None, meta=metadata or {},
                        created_at=uow.clock.now())
    uow.session.add(customer)
    uow.session.flush()
    return customer


def get_customer(uow: UnitOfWork, tenant_id: str, customer_id: str, param: str = "customer_id") -> Customer:
    customer = uow.session.scalar(select(Customer).where(Customer.tenant_id == tenant_id,
                                                         Customer.id == customer_id))
    if customer is None:
        raise NotFound(f"No such customer: {customer_id}.", code="customer_not_found", param=param)
    return customer


# ------------------------------------------------------------------------------------------ channels


def create_channel(uow: UnitOfWork, tenant_id: str, *, code: str, provider: str, base_url: str,
                   methods: Sequence[str], currencies: Sequence[str], fee_rate: Decimal = Decimal(0),
                   fee_fixed_amount: int = 0, refund_fee_policy: str = "proportional", timeout_ms: int = 10_000,
                   settings: dict[str, Any] | None = None, credentials: dict[str, str] | None = None) -> Channel:
    from finloop.payments import gateway
    from finloop.payments.connectors import registry

    if not _CODE.match(code or ""):
        raise InvalidRequest("A channel code is 1 to 40 lowercase letters, digits, '_' or '-'.",
                             code="invalid_channel_code", param="code")
    if provider not in registry.providers():
        raise InvalidRequest(f"Unknown provider {provider!r}; known: {', '.join(registry.providers())}.",
                             code="unknown_provider", param="provider")
    if not base_url.startswith(("http://", "https://")):
        raise InvalidRequest("base_url must be an http(s) URL.", code="invalid_url", param="base_url")
    for index, method in enumerate(methods):
        if method not in PaymentMethod.__members__.values() or method == PaymentMethod.WALLET:
            raise InvalidRequest(f"Unknown payment method {method!r}.", code="invalid_payment_method",
                                 param=f"methods[{index}]")
    if not methods:
        raise InvalidRequest("A channel supports at least one method.", code="parameter_missing", param="methods")
    for index, code_ in enumerate(currencies):
        check_currency(code_, f"currencies[{index}]")
    if not currencies:
        raise InvalidRequest("A channel takes at least one currency.", code="parameter_missing", param="currencies")
    if not Decimal(0) <= fee_rate < Decimal(1):
        raise InvalidRequest("fee_rate is a fraction between 0 and 1.", code="invalid_fee_rate", param="fee_rate")
    check_amount(fee_fixed_amount, allow_negative=False)
    if refund_fee_policy not in ("proportional", "retained"):
        raise InvalidRequest("refund_fee_policy is 'proportional' or 'retained'.", code="invalid_refund_fee_policy",
                             param="refund_fee_policy")
    if uow.session.scalar(select(Channel.id).where(Channel.tenant_id == tenant_id, Channel.code == code)):
        raise Conflict(f"Channel {code} exists.", code="channel_exists", param="code")
    now = uow.clock.now()
    channel = Channel(id=uow.ids.new("channel"), tenant_id=tenant_id, code=code, provider=provider,
                      base_url=base_url.rstrip("/"), methods=list(dict.fromkeys(methods)),
                      currencies=list(dict.fromkeys(currencies)), fee_rate=fee_rate,
                      fee_fixed_amount=fee_fixed_amount, refund_fee_policy=refund_fee_policy, timeout_ms=timeout_ms,
                      settings=settings or {}, credentials_sealed=gateway.seal_credentials(uow, tenant_id,
                                                                                            credentials or {}),
                      status="enabled", created_at=now, updated_at=now)
    uow.session.add(channel)
    uow.session.flush()
    return channel


def check_currency(code: str, param: str) -> None:
    if not is_currency(code):
        raise InvalidRequest(f"Unknown currency {code!r}.", code="invalid_currency", param=param)


def get_channel(uow: UnitOfWork, tenant_id: str, channel_id: str) -> Channel:
    channel = uow.session.scalar(select(Channel).where(Channel.tenant_id == tenant_id, Channel.id == channel_id))
    if channel is None:
        raise NotFound(f"No such channel: {channel_id}.", code="channel_not_found", param="channel_id")
    return channel


def find_channel_by_id(uow: UnitOfWork, channel_id: str) -> Channel | None:
    """For the notification endpoint, which knows the channel before it knows the tenant."""
    return uow.session.get(Channel, channel_id)


def channel_by_code(uow: UnitOfWork, tenant_id: str, code: str) -> Channel:
    channel = uow.session.scalar(select(Channel).where(Channel.tenant_id == tenant_id, Channel.code == code))
    if channel is None:
        raise NotFound(f"No such channel: {code}.", code="channel_not_found", param="channel")
    return channel


def list_channels(uow: UnitOfWork, tenant_id: str) -> list[Channel]:
    return list(uow.session.scalars(select(Channel).where(Channel.tenant_id == tenant_id).order_by(Channel.code)))


def set_channel_status(uow: UnitOfWork, tenant_id: str, channel_id: str, status: str) -> Channel:
    if status not in ("enabled", "disabled"):
        raise InvalidRequest("status is 'enabled' or 'disabled'.", code="invalid_status", param="status")
    channel = get_channel(uow, tenant_id, channel_id)
    channel.status = status
    channel.updated_at = uow.clock.now()
    uow.session.flush()
    return channel


def expected_fee(channel: Channel, amount: int, *, uow: UnitOfWork | None = None, method: str | None = None,
                 currency: str | None = None, at: datetime | None = None) -> int:
    """The fee we expect the channel to charge on ``amount``.

    With ``uow`` and ``currency``: by the tenant's fee schedule in force at ``at`` (now by default) for the
    channel, ``method`` and ``currency`` (``finloop.clearing``), else by the channel's own rate. Without
    them (routing's cost estimate): the channel's own rate × amount rounded half up, plus its fixed part."""
    if uow is not None and currency is not None:
        from finloop.clearing import service as clearing

        return clearing.quote_fee(uow, channel.tenant_id, channel_code=channel.code, method=method,
                                  currency=currency, amount=amount, at=at, channel=channel).fee
    return channel_default_fee(channel.fee_rate, channel.fee_fixed_amount, amount)


def eligible_channels(uow: UnitOfWork, tenant_id: str, *, method: str, currency_code: str) -> list[Channel]:
    return [c for c in list_channels(uow, tenant_id)
            if c.status == "enabled" and method in c.methods and currency_code in c.currencies]


# ------------------------------------------------------------------------------------------ payments


@dataclass(frozen=True, slots=True)
class PaymentDraft:
    merchant_id: str | None
    amount: int
    currency: str
    purpose: str = "order"
    order_reference: str = ""
    description: str = ""
    customer_id: str | None = None
    method: str | None = None
    capture_method: str = "automatic"
    card_id: str | None = None
    metadata: dict[str, Any] | None = None


def create_payment(uow: UnitOfWork, tenant_id: str, draft: PaymentDraft, *, flush: bool = True) -> Payment:
    """Validate and add the payment. ``flush=False`` leaves the row to the caller's next flush (a caller that
    moves it on in the same transaction writes it once)."""
    if draft.purpose == "wallet_top_up":
        if draft.merchant_id is not None:
            raise InvalidRequest("A wallet top-up has no merchant.", code="invalid_purpose", param="merchant_id")
        if draft.customer_id is None:
            raise InvalidRequest("A wallet top-up needs the customer.", code="parameter_missing",
                                 param="customer_id")
        if draft.method == PaymentMethod.WALLET:
            raise InvalidRequest("A wallet is not topped up from itself.", code="invalid_payment_method",
                                 param="method")
    elif draft.purpose == "order":
        if draft.merchant_id is None:
            raise InvalidRequest("A payment needs its merchant.", code="parameter_missing", param="merchant_id")
        # Only whether it is the tenant's: its id, not the whole row.
        if uow.session.scalar(select(Merchant.id).where(Merchant.tenant_id == tenant_id,
                                                        Merchant.id == draft.merchant_id)) is None:
            raise NotFound(f"No such merchant: {draft.merchant_id}.", code="merchant_not_found", param="merchant_id")
    else:
        raise InvalidRequest("purpose is 'order' or 'wallet_top_up'.", code="invalid_purpose", param="purpose")
    if draft.customer_id:
        get_customer(uow, tenant_id, draft.customer_id)
    check_amount(draft.amount, allow_zero=False, allow_negative=False)
    check_currency(draft.currency, "currency")
    if draft.capture_method not in ("automatic", "manual"):
        raise InvalidRequest("capture_method is 'automatic' or 'manual'.", code="invalid_capture_method",
                             param="capture_method")
    if draft.method is not None:
        _check_method(draft.method)
        if draft.method == PaymentMethod.WALLET and draft.customer_id is None:
            raise InvalidRequest("Paying from a wallet needs the customer.", code="parameter_missing",
                                 param="customer_id")
        if draft.capture_method == "manual" and draft.method != PaymentMethod.CARD:
            raise InvalidRequest("Manual capture is for card payments.", code="invalid_capture_method",
                                 param="capture_method")
    if draft.card_id is not None:
        from finloop.vault import service as vault

        vault.get_card(uow, tenant_id, draft.card_id)
        if draft.method not in (None, PaymentMethod.CARD):
            raise InvalidRequest("A card goes with method 'card'.", code="invalid_payment_method", param="card_id")
    now = uow.clock.now()
    method = draft.method or (PaymentMethod.CARD.value if draft.card_id else None)
    ready = method is not None and (method != PaymentMethod.CARD or draft.card_id is not None)
    payment = Payment(
        id=uow.ids.new("payment"), tenant_id=tenant_id, merchant_id=draft.merchant_id,
        customer_id=draft.customer_id, purpose=draft.purpose,
        amount=draft.amount, currency=draft.currency, captured_amount=0,
        refunded_amount=0, fee_amount=0, method=method, capture_method=draft.capture_method,
        status=(PaymentStatus.REQUIRES_CONFIRMATION if ready else PaymentStatus.REQUIRES_PAYMENT_METHOD).value,
        order_reference=check_text(draft.order_reference, param="order_reference", max_length=100),
        description=check_text(draft.description, param="description", max_length=500), meta=draft.metadata or {},
        card_id=draft.card_id, channel=None, next_action=None, failure_code=None, failure_message=None,
        is_disputed=False, ledger_entry_id=None, version=0, created_at=now, updated_at=now)
    uow.session.add(payment)
    if flush:
        uow.session.flush()
    return payment


def _check_method(method: str) -> None:
    if method not in PaymentMethod.__members__.values():
        raise InvalidRequest(f"Unknown payment method {method!r}; one of "
                             f"{', '.join(m.value for m in PaymentMethod)}.", code="invalid_payment_method",
                             param="method")


def attach_method(uow: UnitOfWork, payment: Payment, *, method: str, card_id: str | None) -> None:
    """Give a payment still lacking one its method (and card), on confirmation."""
    _check_method(method)
    if method == PaymentMethod.WALLET and (payment.customer_id is None or payment.purpose != "order"):
        raise InvalidRequest("Paying from a wallet needs the customer, and is for orders.",
                             code="invalid_payment_method", param="method")
    if method == PaymentMethod.CARD:
        if card_id is None:
            raise InvalidRequest("A card payment needs card_id.", code="parameter_missing", param="card_id")
        from finloop.vault import service as vault

        vault.get_card(uow, payment.tenant_id, card_id)
    payment.method = method
    payment.card_id = card_id
    _move(uow, payment, PaymentStatus.REQUIRES_CONFIRMATION)


def get_payment(uow: UnitOfWork, tenant_id: str, payment_id: str, *, lock: bool = False,
                param: str = "payment_id") -> Payment:
    query = select(Payment).where(Payment.tenant_id == tenant_id, Payment.id == payment_id)
    if lock:
        # A row read earlier in this transaction may be stale once the lock is ours: read it afresh.
        query = query.with_for_update().execution_options(populate_existing=True)
    payment = uow.session.scalar(query)
    if payment is None:
        raise NotFound(f"No such payment: {payment_id}.", code="payment_not_found", param=param)
    return payment


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    status: str | None = None
    merchant_id: str | None = None
    channel: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


def list_payments(uow: UnitOfWork, tenant_id: str, *, filters: PaymentFilter, after: str | None,
                  limit: int) -> list[Payment]:
    query = select(Payment).where(Payment.tenant_id == tenant_id)
    if filters.status:
        query = query.where(Payment.status == filters.status)
    if filters.merchant_id:
        query = query.where(Payment.merchant_id == filters.merchant_id)
    if filters.channel:
        query = query.where(Payment.channel == filters.channel)
    if filters.created_gte:
        query = query.where(Payment.created_at >= filters.created_gte)
    if filters.created_lt:
        query = query.where(Payment.created_at < filters.created_lt)
    if after:
        query = query.where(Payment.id < after)
    return list(uow.session.scalars(query.order_by(Payment.id.desc()).limit(limit + 1)))


def list_attempts(uow: UnitOfWork, tenant_id: str, payment_id: str) -> list[Attempt]:
    get_payment(uow, tenant_id, payment_id)
    return list(uow.session.scalars(select(Attempt).where(Attempt.tenant_id == tenant_id,
                                                          Attempt.payment_id == payment_id)
                                    .order_by(Attempt.sequence)))


def get_attempt(uow: UnitOfWork, tenant_id: str, attempt_id: str) -> Attempt:
    # Always read afresh: callers read attempts after locking their payment, and a copy loaded before that
    # lock may predate another transaction's change.
    attempt = uow.session.scalar(select(Attempt).where(Attempt.tenant_id == tenant_id, Attempt.id == attempt_id)
                                 .execution_options(populate_existing=True))
    if attempt is None:
        raise NotFound(f"No such attempt: {attempt_id}.", code="attempt_not_found", param="attempt_id")
    return attempt


def open_attempt(uow: UnitOfWork, payment: Payment) -> Attempt | None:
    """The attempt whose outcome the channel still owes, if any (there is at most one)."""
    return uow.session.scalar(select(Attempt).where(
        Attempt.payment_id == payment.id, Attempt.status.in_([s.value for s in OPEN_ATTEMPT_STATUSES]))
        .order_by(Attempt.sequence.desc()).limit(1))


def _move(uow: UnitOfWork, payment: Payment, target: PaymentStatus) -> None:
    check_payment_move(payment.status, target, payment.id)
    payment.status = target.value
    payment.updated_at = uow.clock.now()
    payment.version += 1


def begin_confirmation(uow: UnitOfWork, payment: Payment) -> None:
    _move(uow, payment, PaymentStatus.PROCESSING)
    payment.failure_code = payment.failure_message = None


def record_attempt(uow: UnitOfWork, payment: Payment, *, channel: str, decision_id: str | None,
                   first: bool = False) -> Attempt:
    """``first``: the payment was created in this transaction, so it has no attempt yet (nothing to read)."""
    sequence = 1 if first else (uow.session.scalar(select(Attempt.sequence).where(Attempt.payment_id == payment.id)
                                                   .order_by(Attempt.sequence.desc()).limit(1)) or 0) + 1
    now = uow.clock.now()
    attempt = Attempt(id=uow.ids.new("attempt"), tenant_id=payment.tenant_id, payment_id=payment.id,
                      sequence=sequence, channel=channel, status=AttemptStatus.PENDING.value, amount=payment.amount,
                      fee_amount=None, channel_ref=None, routing_decision_id=decision_id, latency_ms=None,
                      error_code=None, error_message=None, raw={}, queries=0, next_query_at=now + next_query_delay(0),
                      created_at=now, updated_at=now)
    uow.session.add(attempt)
    uow.session.flush()
    return attempt


def _move_attempt(uow: UnitOfWork, attempt: Attempt, target: AttemptStatus) -> bool:
    if not can_move_attempt(attempt.status, target):
        return False
    attempt.status = target.value
    attempt.updated_at = uow.clock.now()
    if target in OPEN_ATTEMPT_STATUSES:
        attempt.next_query_at = attempt.updated_at + next_query_delay(attempt.queries)
    else:
        attempt.next_query_at = None
    return True


def _action_dict(action: Action | None) -> dict[str, Any] | None:
    if action is None:
        return None
    return {"type": action.type, "qr_code": action.qr_code, "redirect_url": action.redirect_url,
            "app_payload": action.app_payload,
            "expires_at": action.expires_at.isoformat() if action.expires_at else None}


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying a channel's answer did, for the flow to decide its next step."""

    attempt_status: AttemptStatus
    payment_status: PaymentStatus
    failover: bool = False        # a retryable failure: the flow may try the next channel
    late_success: bool = False    # money taken on an attempt we had left: refund it


def apply_channel_result(uow: UnitOfWork, payment: Payment, attempt: Attempt, result: QueryResult, *,
                         retryable: bool = False, latency_ms: int | None = None) -> Applied:
    """Apply what the channel said about ``attempt`` (a reply, a query answer or a notification).

    Forward only and idempotent: an answer that would move the attempt backwards, or repeats what we
    know, changes nothing. The payment must be locked by the caller.
    """
    if latency_ms is not None and attempt.latency_ms is None:
        attempt.latency_ms = latency_ms
    if result.channel_ref and not attempt.channel_ref:
        attempt.channel_ref = result.channel_ref
    if result.raw:
        attempt.raw = dict(result.raw)
    outcome = result.outcome
    current = PaymentStatus(payment.status)
    late = attempt.status == AttemptStatus.ABANDONED.value or current in (
        PaymentStatus.CANCELED, PaymentStatus.FAILED, PaymentStatus.SUCCEEDED)

    if outcome is Outcome.SUCCEEDED:
        if attempt.status == AttemptStatus.SUCCEEDED.value or not _move_attempt(uow, attempt, AttemptStatus.SUCCEEDED):
            return Applied(AttemptStatus(attempt.status), current)
        if late:
            _take_late_success(uow, payment, attempt, result)
            return Applied(AttemptStatus.SUCCEEDED, current, late_success=True)
        captured = result.captured_amount or result.amount or attempt.amount
        _succeed(uow, payment, attempt, min(captured, payment.amount), result.fee)
        return Applied(AttemptStatus.SUCCEEDED, PaymentStatus(payment.status))

    if late:
        # The payment has moved on; only a final word from the channel is still worth recording.
        target = _attempt_target(outcome)
        if target in (AttemptStatus.CANCELED, AttemptStatus.FAILED, AttemptStatus.DECLINED):
            _move_attempt(uow, attempt, target)
        return Applied(AttemptStatus(attempt.status), current)

    target = _attempt_target(outcome)
    if target is None or not _move_attempt(uow, attempt, target):
        return Applied(AttemptStatus(attempt.status), current)
    if result.error_code:
        attempt.error_code = result.error_code[:100]
        attempt.error_message = (result.error_message or "")[:500] or None
    if target is AttemptStatus.REQUIRES_ACTION:
        if current == PaymentStatus.PROCESSING:
            _move(uow, payment, PaymentStatus.REQUIRES_ACTION)
        return Applied(target, PaymentStatus(payment.status))
    if target is AttemptStatus.AUTHORIZED:
        if current in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
            _move(uow, payment, PaymentStatus.REQUIRES_CAPTURE)
            payment.channel = attempt.channel
            payment.next_action = None
            webhooks.publish_event(uow, payment.tenant_id, type="payment.requires_capture",
                                    data=payment_event_data(payment), merchant_id=payment.merchant_id)
        return Applied(target, PaymentStatus(payment.status))
    if target in (AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN):
        return Applied(target, current)
    if target is AttemptStatus.CANCELED:
        return Applied(target, current)
    # declined or failed
    failover = target is AttemptStatus.FAILED and retryable
    if not failover and current in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION):
        fail_payment(uow, payment, attempt.error_code or outcome.value, attempt.error_message)
    return Applied(target, PaymentStatus(payment.status), failover=failover)


def _attempt_target(outcome: Outcome) -> AttemptStatus | None:
    return {
        Outcome.SUCCEEDED: AttemptStatus.SUCCEEDED, Outcome.AUTHORIZED: AttemptStatus.AUTHORIZED,
        Outcome.REQUIRES_ACTION: AttemptStatus.REQUIRES_ACTION, Outcome.PROCESSING: AttemptStatus.PROCESSING,
        Outcome.DECLINED: AttemptStatus.DECLINED, Outcome.FAILED: AttemptStatus.FAILED,
        Outcome.CANCELED: AttemptStatus.CANCELED, Outcome.UNKNOWN: AttemptStatus.UNKNOWN,
    }.get(outcome)


#: What other domains do when a payment reaches a final state, in the transaction that records it (credit applies
#: a loan's repayment). A reaction returns at once for payments that are not its own: it is on every payment's path.
SETTLED_REACTIONS: list[Callable[[UnitOfWork, Payment], object]] = []


def _settled(uow: UnitOfWork, payment: Payment) -> None:
    for reaction in SETTLED_REACTIONS:
        reaction(uow, payment)


def fail_payment(uow: UnitOfWork, payment: Payment, code: str, message: str | None) -> None:
    _move(uow, payment, PaymentStatus.FAILED)
    payment.failure_code = code[:100]
    payment.failure_message = (message or "")[:500] or None
    payment.next_action = None
    webhooks.publish_event(uow, payment.tenant_id, type="payment.failed", data=payment_event_data(payment),
                            merchant_id=payment.merchant_id)
    _settled(uow, payment)


def _succeed(uow: UnitOfWork, payment: Payment, attempt: Attempt, captured: int, channel_fee: int | None) -> None:
    fee = channel_fee if channel_fee is not None else expected_fee(
        channel_by_code(uow, payment.tenant_id, attempt.channel), captured, uow=uow, method=payment.method,
        currency=payment.currency)
    attempt.fee_amount = fee
    _move(uow, payment, PaymentStatus.SUCCEEDED)
    payment.captured_amount = captured
    payment.fee_amount = fee
    payment.channel = attempt.channel
    payment.next_action = None
    payment.succeeded_at = uow.clock.now()
    payment.ledger_entry_id = postings.post_payment_captured(uow, payment, attempt_id=attempt.id,
                                                             channel=attempt.channel, amount=captured, fee=fee)
    webhooks.publish_event(uow, payment.tenant_id, type="payment.succeeded", data=payment_event_data(payment),
                            merchant_id=payment.merchant_id)
    _settled(uow, payment)


def _take_late_success(uow: UnitOfWork, payment: Payment, attempt: Attempt, result: QueryResult) -> None:
    """Money arrived on an attempt the payment no longer counts on: book it, then refund it in full.

    The capture and its refund are separate entries against the same merchant pending balance, so the
    books show the late charge and its return, and the merchant ends where it was.
    """
    from finloop.clearing import service as clearing

    channel = channel_by_code(uow, payment.tenant_id, attempt.channel)
    amount = result.captured_amount or result.amount or attempt.amount
    fee = result.fee if result.fee is not None else expected_fee(
        channel, amount, uow=uow, method=payment.method, currency=payment.currency)
    attempt.fee_amount = fee
    postings.post_payment_captured(uow, payment, attempt_id=attempt.id, channel=attempt.channel, amount=amount,
                                   fee=fee)
    now = uow.clock.now()
    refund = Refund(id=uow.ids.new("refund"), tenant_id=payment.tenant_id, payment_id=payment.id,
                    attempt_id=attempt.id, channel=attempt.channel, amount=amount, currency=payment.currency,
                    fee_returned_amount=_fee_returned(
                        channel, fee, amount, amount, policy=clearing.refund_fee_policy(uow, payment, channel)),
                    status=RefundStatus.PENDING.value,
                    reason="late success on an abandoned attempt", channel_refund_ref=None, error_code=None,
                    error_message=None, approval_id=None, is_automatic=True, ledger_entry_id=None, queries=0,
                    next_query_at=now, created_at=now, updated_at=now)
    uow.session.add(refund)
    uow.session.flush()


def abandon_attempt(uow: UnitOfWork, attempt: Attempt) -> bool:
    return _move_attempt(uow, attempt, AttemptStatus.ABANDONED)


def note_query(uow: UnitOfWork, attempt: Attempt) -> None:
    attempt.queries += 1
    if AttemptStatus(attempt.status) in OPEN_ATTEMPT_STATUSES:
        attempt.next_query_at = uow.clock.now() + next_query_delay(attempt.queries)


def set_next_action(payment: Payment, action: Action | None) -> None:
    payment.next_action = _action_dict(action)


def cancel_payment(uow: UnitOfWork, payment: Payment, *, reason: str = "requested_by_customer") -> Attempt | None:
    """Cancel, and return the attempt that must be closed at the channel (after the commit)."""
    _move(uow, payment, PaymentStatus.CANCELED)
    payment.canceled_at = uow.clock.now()
    payment.failure_code = reason[:100]
    payment.next_action = None
    attempt = open_attempt(uow, payment) or uow.session.scalar(select(Attempt).where(
        Attempt.payment_id == payment.id, Attempt.status == AttemptStatus.AUTHORIZED.value))
    if attempt is not None:
        _move_attempt(uow, attempt, AttemptStatus.ABANDONED)
    webhooks.publish_event(uow, payment.tenant_id, type="payment.canceled", data=payment_event_data(payment),
                            merchant_id=payment.merchant_id)
    _settled(uow, payment)
    return attempt


def begin_capture(uow: UnitOfWork, payment: Payment, amount: int | None) -> tuple[Attempt, int]:
    if payment.status != PaymentStatus.REQUIRES_CAPTURE.value:
        check_payment_move(payment.status, PaymentStatus.PROCESSING, payment.id)
    authorized = uow.session.scalar(select(Attempt).where(Attempt.payment_id == payment.id,
                                                          Attempt.status == AttemptStatus.AUTHORIZED.value))
    if authorized is None:
        raise Conflict("The payment has no authorised attempt to capture.", code="payment_state_conflict")
    to_capture = payment.amount if amount is None else amount
    check_amount(to_capture, allow_zero=False, allow_negative=False)
    if to_capture > payment.amount:
        raise InvalidRequest(f"At most {payment.amount} can be captured.", code="amount_too_large", param="amount")
    _move(uow, payment, PaymentStatus.PROCESSING)
    _move_attempt(uow, authorized, AttemptStatus.CAPTURING)
    return authorized, to_capture


def pay_from_wallet(uow: UnitOfWork, payment: Payment) -> None:
    """Confirm a wallet-balance payment in one transaction: no channel, the ledger is the channel.

    Too little balance is a declined payment (recorded, with its code), not an error of the request.
    """
    begin_confirmation(uow, payment)
    try:
        with uow.session.begin_nested():
            entry_id = postings.post_wallet_payment(uow, payment)
    except InvariantViolation as error:
        if error.code != "insufficient_funds":
            raise
        fail_payment(uow, payment, "insufficient_wallet_balance", "The wallet balance does not cover the payment.")
        return
    _move(uow, payment, PaymentStatus.SUCCEEDED)
    payment.captured_amount = payment.amount
    payment.succeeded_at = uow.clock.now()
    payment.ledger_entry_id = entry_id
    webhooks.publish_event(uow, payment.tenant_id, type="payment.succeeded", data=payment_event_data(payment),
                           merchant_id=payment.merchant_id)


def payment_event_data(payment: Payment) -> dict[str, Any]:
    return {"id": payment.id, "merchant_id": payment.merchant_id, "customer_id": payment.customer_id,
            "purpose": payment.purpose, "method": payment.method, "amount": payment.amount,
            "currency": payment.currency, "captured_amount": payment.captured_amount,
            "refunded_amount": payment.refunded_amount, "status": payment.status, "channel": payment.channel,
            "order_reference": payment.order_reference, "failure_code": payment.failure_code}


# ------------------------------------------------------------------------------------------ refunds


def _fee_returned(channel: Channel, fee: int, captured: int, amount: int, *, policy: str | None = None) -> int:
    """The channel fee share a refund gives back, rounded down (never more than the channel keeps), under
    ``policy`` (the payment's fee schedule's) or else the channel's own refund fee policy."""
    return cumulative_fee_returned(policy or channel.refund_fee_policy, fee, captured, amount)


def _refund_fee_returned(uow: UnitOfWork, payment: Payment, channel: Channel, amount: int) -> int:
    """Cumulative allocation: the fee given back by all refunds so far never exceeds the fee share of the
    total refunded, so partial refunds in any order return exactly what one full refund would. The
    refund fee policy is that of the fee schedule that priced the payment (``finloop.clearing``)."""
    from finloop.clearing import service as clearing

    refunds = list(uow.session.scalars(select(Refund).where(
        Refund.payment_id == payment.id, Refund.is_automatic.is_(False),
        Refund.status.in_([s.value for s in RESERVING_REFUND_STATUSES]))))
    before_amount = sum(r.amount for r in refunds)
    before_fee = sum(r.fee_returned_amount for r in refunds)
    return refund_fee_returned(clearing.refund_fee_policy(uow, payment, channel), fee=payment.fee_amount,
                               captured=payment.captured_amount, refunded_before=before_amount, amount=amount,
                               returned_before=before_fee)


def create_refund(uow: UnitOfWork, payment: Payment, *, amount: int | None, reason: str = "",
                  requested_by: Principal | None = None) -> Refund:
    """Record a refund and reserve its amount; the payment must be locked by the caller.

    Above the merchant's ``refund_approval_amount`` the refund is parked (``requires_approval``) with an
    approval request that a finance user other than the requester decides; the resolve job then sends
    or cancels it."""
    if payment.status != PaymentStatus.SUCCEEDED.value:
        raise Conflict(f"Only a succeeded payment can be refunded; {payment.id} is {payment.status}.",
                       code="payment_not_refundable")
    if payment.is_disputed:
        raise Conflict("A disputed payment cannot be refunded.", code="payment_disputed")
    from finloop.payments import disputes  # disputes imports this module

    # Money a channel took back in a lost dispute is no longer ours to refund.
    left = payment.captured_amount - payment.refunded_amount - disputes.disputed_amount(uow, payment.id)
    to_refund = left if amount is None else amount
    check_amount(to_refund, allow_zero=False, allow_negative=False)
    if to_refund > left:
        raise InvalidRequest(f"At most {left} is left to refund.", code="amount_too_large", param="amount")
    # Refused here, before the channel is asked: once the money is back with the customer the claw-back
    # has to be posted whatever a party owes.
    splits.check_refund(uow, payment, to_refund)
    if payment.method == PaymentMethod.WALLET:
        attempt_id, route, fee_back = "", WALLET_ROUTE, 0
    else:
        assert payment.channel is not None
        channel = channel_by_code(uow, payment.tenant_id, payment.channel)
        attempt = uow.session.scalar(select(Attempt).where(Attempt.payment_id == payment.id,
                                                           Attempt.status == AttemptStatus.SUCCEEDED.value,
                                                           Attempt.channel == payment.channel)
                                     .order_by(Attempt.sequence).limit(1))
        assert attempt is not None
        attempt_id, route = attempt.id, payment.channel
        fee_back = _refund_fee_returned(uow, payment, channel, to_refund)
    now = uow.clock.now()
    refund = Refund(id=uow.ids.new("refund"), tenant_id=payment.tenant_id, payment_id=payment.id,
                    attempt_id=attempt_id, channel=route, amount=to_refund, currency=payment.currency,
                    fee_returned_amount=fee_back, status=RefundStatus.PENDING.value,
                    reason=check_text(reason, param="reason", max_length=500), channel_refund_ref=None, error_code=None,
                    error_message=None, approval_id=None, is_automatic=False, ledger_entry_id=None, queries=0,
                    next_query_at=now + next_query_delay(0), created_at=now, updated_at=now)
    payment.refunded_amount += to_refund
    payment.updated_at = now
    payment.version += 1
    uow.session.add(refund)
    uow.session.flush()
    threshold = get_merchant(uow, payment.tenant_id, payment.merchant_id).refund_approval_amount \
        if payment.merchant_id else None
    if threshold is not None and to_refund > threshold:
        _park_refund(uow, payment, refund, requested_by)
    return refund


def _park_refund(uow: UnitOfWork, payment: Payment, refund: Refund, requested_by: Principal | None) -> None:
    from finloop.tenancy import service as tenancy
    from finloop.tenancy.service import Role

    if requested_by is None:
        raise Conflict("This refund needs approval, which needs a requester.", code="approval_required")
    requested_by.require("approvals.request")
    approval = tenancy.park_for_approval(
        uow, payment.tenant_id, requested_by=requested_by.user_id or requested_by.actor, actor=requested_by.actor,
        action=REFUND_APPROVAL_ACTION, required_role=Role.FINANCE, object_type="refund", object_id=refund.id,
        payload={"payment_id": payment.id, "amount": refund.amount, "currency": refund.currency,
                 "reason": refund.reason})
    refund.status = RefundStatus.REQUIRES_APPROVAL.value
    refund.approval_id = approval.id
    refund.next_query_at = uow.clock.now() + next_query_delay(0)


def settle_parked_refund(uow: UnitOfWork, payment: Payment, refund: Refund) -> RefundStatus:
    """Move a parked refund on once its approval is decided: approved → pending (to be sent), rejected →
    canceled with its reservation released. Undecided → unchanged, asked again later."""
    from finloop.tenancy import service as tenancy

    if refund.status != RefundStatus.REQUIRES_APPROVAL.value or refund.approval_id is None:
        return RefundStatus(refund.status)
    approval = tenancy.get_approval(uow, refund.tenant_id, refund.approval_id)
    now = uow.clock.now()
    refund.updated_at = now
    if approval.status == "approved" and approval.action == REFUND_APPROVAL_ACTION:
        refund.status = RefundStatus.PENDING.value
        refund.next_query_at = now
    elif approval.status == "rejected":
        refund.status = RefundStatus.CANCELED.value
        refund.next_query_at = None
        payment.refunded_amount -= refund.amount
        payment.version += 1
    else:
        refund.queries += 1
        refund.next_query_at = now + next_query_delay(min(refund.queries, 2))
    return RefundStatus(refund.status)


def refund_to_wallet(uow: UnitOfWork, payment: Payment, refund: Refund) -> None:
    """Pay a pending refund into the customer's wallet at once: wallet payments always, and card or QR
    payments whose channel could not refund (the fallback route)."""
    if payment.customer_id is None:
        raise InvalidRequest("Only a payment with a customer can be refunded to a wallet.",
                             code="no_customer_wallet", param="route")
    refund.channel = WALLET_ROUTE
    refund.fee_returned_amount = 0  # the channel keeps its fee: the money never goes back through it
    refund.ledger_entry_id = postings.post_refund_to_wallet(uow, payment, refund)
    refund.status = RefundStatus.SUCCEEDED.value
    refund.updated_at = uow.clock.now()
    refund.next_query_at = None
    webhooks.publish_event(uow, payment.tenant_id, type="refund.succeeded", data=refund_event_data(refund),
                           merchant_id=payment.merchant_id)


def retry_refund(uow: UnitOfWork, payment: Payment, refund: Refund, *, route: str) -> None:
    """Send a failed refund again, through its channel or into the wallet. Its amount is reserved again
    first, so a retry can never take the refunds past the capture."""
    if refund.status != RefundStatus.FAILED.value:
        raise Conflict(f"Only a failed refund is retried; {refund.id} is {refund.status}.",
                       code="refund_state_conflict")
    if route not in ("original", WALLET_ROUTE):
        raise InvalidRequest("route is 'original' or 'wallet'.", code="invalid_route", param="route")
    if payment.refunded_amount + refund.amount > payment.captured_amount:
        raise InvalidRequest("Other refunds took what this one would give back.", code="amount_too_large",
                             param="amount")
    payment.refunded_amount += refund.amount
    payment.version += 1
    refund.status = RefundStatus.PENDING.value
    refund.error_code = refund.error_message = None
    refund.updated_at = uow.clock.now()
    if route == WALLET_ROUTE or refund.channel == WALLET_ROUTE:
        refund_to_wallet(uow, payment, refund)


def get_refund(uow: UnitOfWork, tenant_id: str, refund_id: str, *, lock: bool = False) -> Refund:
    query = select(Refund).where(Refund.tenant_id == tenant_id, Refund.id == refund_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    refund = uow.session.scalar(query)
    if refund is None:
        raise NotFound(f"No such refund: {refund_id}.", code="refund_not_found", param="refund_id")
    return refund


def list_refunds(uow: UnitOfWork, tenant_id: str, *, payment_id: str | None, after: str | None,
                 limit: int) -> list[Refund]:
    query = select(Refund).where(Refund.tenant_id == tenant_id)
    if payment_id:
        query = query.where(Refund.payment_id == payment_id)
    if after:
        query = query.where(Refund.id < after)
    return list(uow.session.scalars(query.order_by(Refund.id.desc()).limit(limit + 1)))


def apply_refund_result(uow: UnitOfWork, payment: Payment, refund: Refund, result: RefundResult) -> RefundStatus:
    """Forward only and idempotent, like ``apply_channel_result``; the payment must be locked."""
    if result.channel_refund_ref and not refund.channel_refund_ref:
        refund.channel_refund_ref = result.channel_refund_ref
    target = {Outcome.SUCCEEDED: RefundStatus.SUCCEEDED, Outcome.PROCESSING: RefundStatus.PROCESSING,
              Outcome.FAILED: RefundStatus.FAILED, Outcome.DECLINED: RefundStatus.FAILED,
              Outcome.UNKNOWN: RefundStatus.UNKNOWN, Outcome.NOT_FOUND: RefundStatus.FAILED}.get(result.outcome)
    if target is None or refund.status == target.value or not can_move_refund(refund.status, target):
        return RefundStatus(refund.status)
    now = uow.clock.now()
    refund.status = target.value
    refund.updated_at = now
    refund.next_query_at = now + next_query_delay(refund.queries) if target in (
        RefundStatus.PROCESSING, RefundStatus.UNKNOWN) else None
    if target is RefundStatus.SUCCEEDED:
        refund.ledger_entry_id = postings.post_refund_succeeded(uow, payment, refund)
        webhooks.publish_event(uow, payment.tenant_id, type="refund.succeeded", data=refund_event_data(refund),
                                merchant_id=payment.merchant_id)
    elif target is RefundStatus.FAILED:
        refund.error_code = (result.error_code or result.outcome.value)[:100]
        refund.error_message = (result.error_message or "")[:500] or None
        if not refund.is_automatic:
            payment.refunded_amount -= refund.amount  # release the reservation
            payment.version += 1
        webhooks.publish_event(uow, payment.tenant_id, type="refund.failed", data=refund_event_data(refund),
                                merchant_id=payment.merchant_id)
    return target


def refund_event_data(refund: Refund) -> dict[str, Any]:
    return {"id": refund.id, "payment_id": refund.payment_id, "amount": refund.amount, "currency": refund.currency,
            "status": refund.status, "reason": refund.reason, "failure_code": refund.error_code}


# ------------------------------------------------------------------------------------------ notifications


def record_notification(uow: UnitOfWork, tenant_id: str, *, channel: str, notification_id: str, kind: str,
                        reference: str | None) -> bool:
    """Remember a channel notification; False when it was seen before (the provider re-sent it)."""
    try:
        with uow.session.begin_nested():
            uow.session.add(ChannelNotification(
                id=uow.ids.new("notification"), tenant_id=tenant_id, channel=channel,
                notification_id=notification_id[:200], kind=kind, reference=reference, outcome="received",
                received_at=uow.clock.now()))
            uow.session.flush()
    except IntegrityError:
        return False
    return True


def due_attempts(uow: UnitOfWork, *, now: datetime, limit: int) -> list[Attempt]:
    return list(uow.session.scalars(select(Attempt).where(
        Attempt.status.in_([s.value for s in OPEN_ATTEMPT_STATUSES if s is not AttemptStatus.CAPTURING]),
        Attempt.next_query_at <= now).order_by(Attempt.next_query_at).limit(limit)))


def due_refunds(uow: UnitOfWork, *, now: datetime, limit: int) -> list[Refund]:
    return list(uow.session.scalars(select(Refund).where(
        Refund.status.in_([RefundStatus.PENDING.value, RefundStatus.PROCESSING.value, RefundStatus.UNKNOWN.value,
                           RefundStatus.REQUIRES_APPROVAL.value]),
        Refund.next_query_at <= now).order_by(Refund.next_query_at).limit(limit)))


def is_customer_action(method: str | None) -> bool:
    return method is not None and PaymentMethod(method) in CUSTOMER_ACTION_METHODS
