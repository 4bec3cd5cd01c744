"""Payment operations that call a channel: record, call, apply — never a network call inside a transaction.

Each flow runs the same pipeline (load → persist → call → persist): a first transaction locks the
payment, checks the move, records the attempt (or refund) and commits; the connector is called with no
transaction open; a second transaction locks the payment again and applies the answer, posting to the
ledger when money moved. A crash between the two leaves an open attempt that the resolve job queries.

Failover: a retryable failure moves the payment to the next channel of the routing decision in the
same request, while the payment's deadline allows; a decline does not move. An attempt whose outcome is
unknown is queried before anything else, and never routed around while unresolved, so a customer is
never charged twice. Flows where the customer acts at the channel (QR, H5, app) cannot move mid-request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import structlog

from finloop.core.errors import Conflict, ExternalServiceError, FinloopError, InvalidRequest, NotFound
from finloop.db.uow import Database, UnitOfWork
from finloop.payments import disputes, gateway, service, wallets
from finloop.payments.connectors.base import (
    Acknowledgement,
    Canceller,
    Capturer,
    CaptureRequest,
    Connector,
    InvalidSignature,
    NotificationKind,
    NotificationParser,
    Outcome,
    PaymentMethod,
    PayoutRequest,
    PayoutResult,
    PayoutSender,
    PayRequest,
    PayResult,
    QueryResult,
    Refunder,
    RefundRequest,
    RefundResult,
)
from finloop.payments.models import Attempt, Channel, Payment, Refund
from finloop.payments.routing import service as routing
from finloop.payments.state import AttemptStatus, PaymentStatus, RefundStatus, WithdrawalStatus
from finloop.risk import service as risk
from finloop.risk import wiring as risk_wiring
from finloop.risk.domain import Outcome as RiskOutcome
from finloop.tenancy.service import Principal

log = structlog.get_logger("finloop.payments")

T = TypeVar("T")

#: How long a confirmation may keep failing over before it gives up, by default.
CONFIRM_DEADLINE = timedelta(seconds=30)
#: How long a customer has to act (scan, approve) before the payment is canceled and closed at the channel.
ACTION_TTL = timedelta(minutes=15)
#: The routing scope (config and success windows) of wallet top-ups.
TOP_UP_ROUTING_SCOPE = "wallet_top_up"
#: Queries made at once, in the request, for an attempt whose reply was lost.
IMMEDIATE_QUERIES = 2


@dataclass
class _Call:
    """What the channel call needs, gathered inside the first transaction."""

    connector: Connector
    attempt_id: str
    channel: str
    request: PayRequest


def _elapsed_ms(db: Database, started_clock: float, started_wall: float) -> int:
    """Latency by the database's clock when it moves (a simulated clock the sandbox advances), else wall."""
    moved = db.clock.now().timestamp() - started_clock
    return max(0, round((moved if moved > 0 else time.perf_counter() - started_wall) * 1000))


def _timed(db: Database, call: Callable[[], T]) -> tuple[T, int]:
    started_clock, started_wall = db.clock.now().timestamp(), time.perf_counter()
    result = call()
    return result, _elapsed_ms(db, started_clock, started_wall)


def _query_of(result: PayResult, reference: str, amount: int) -> QueryResult:
    return QueryResult(outcome=result.outcome, reference=reference, channel_ref=result.channel_ref,
                       amount=amount if result.outcome is Outcome.SUCCEEDED else None, fee=result.fee,
                       error_code=result.error_code, error_message=result.error_message, raw=result.raw)


def _routing_outcome(outcome: Outcome) -> str:
    if outcome in (Outcome.SUCCEEDED, Outcome.AUTHORIZED, Outcome.REQUIRES_ACTION, Outcome.PROCESSING):
        return "success"
    if outcome is Outcome.DECLINED:
        return "decline"
    if outcome is Outcome.UNKNOWN:
        return "unknown"
    return "failure"


def _routing_scope(payment: Payment) -> str:
    """Routing learns per merchant; top-ups, which have none, learn under a scope of their own."""
    return payment.merchant_id or TOP_UP_ROUTING_SCOPE


def _prepare_call(uow: UnitOfWork, payment: Payment, attempt: Attempt,
                  channels: Sequence[Channel] = ()) -> _Call:
    """``channels``: rows this transaction already read (the routing candidates), so the attempt's is not
    read again."""
    channel = next((c for c in channels if c.code == attempt.channel), None) \
        or service.channel_by_code(uow, payment.tenant_id, attempt.channel)
    card = None
    if payment.method == PaymentMethod.CARD and payment.card_id:
        from finloop.vault import service as vault

        card = vault.reveal_card(uow, payment.tenant_id, payment.card_id)
    assert payment.method is not None
    request = PayRequest(reference=attempt.id, amount=payment.amount, currency=payment.currency,
                         method=PaymentMethod(payment.method), description=payment.description or payment.id,
                         capture=payment.capture_method == "automatic", customer_ref=payment.customer_id, card=card,
                         notify_url=gateway.notify_url(channel), expires_at=uow.clock.now() + ACTION_TTL)
    return _Call(gateway.connector_for(uow, channel), attempt.id, channel.code, request)


def _pay(db: Database, call: _Call) -> tuple[PayResult, int]:
    def send() -> PayResult:
        try:
            return call.connector.pay(call.request)
        except ExternalServiceError as error:
            return PayResult(Outcome.UNKNOWN, error_code=error.code, error_message=str(error))
    return _timed(db, send)


def _query(connector: Connector, reference: str) -> QueryResult:
    try:
        return connector.query(reference)
    except ExternalServiceError as error:
        return QueryResult(Outcome.UNKNOWN, reference, error_code=error.code, error_message=str(error))


# ------------------------------------------------------------------------------------------ confirm


#: Called inside a flow's last transaction, just before its commit, with the payment as committed: the API
#: renders its answer there and stores it for Idempotency-Key replays in that same transaction.
Finish = Callable[[UnitOfWork, Payment], None]


def confirm_payment(db: Database, tenant_id: str, payment_id: str, *, method: str | None = None,
                    card_id: str | None = None, deadline: timedelta = CONFIRM_DEADLINE,
                    only_channels: Sequence[str] | None = None, finish: Finish | None = None,
                    risk_context: Mapping[str, str] | None = None, resume_review: bool = False) -> None:
    """Decide (risk), route and charge. ``only_channels`` narrows the candidates (the hosted page picks the
    scanning app's channel); when none of them can take the payment, routing chooses among all.

    The risk decision comes first, in this first transaction (``finloop.risk.wiring.gate_payment``): a
    decline fails the payment and a review parks it, both without calling a channel. ``risk_context``:
    the request's ``device_id``, ``ip`` and ``ip_country``. ``resume_review``: continue a payment its
    risk review approved (no second decision)."""
    with db.uow() as uow:
        payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
        if resume_review:
            if method is not None or card_id is not None:
                raise InvalidRequest("A reviewed payment keeps its method.", code="invalid_request", param="method")
        elif method is not None or card_id is not None:
            if payment.status != PaymentStatus.REQUIRES_PAYMENT_METHOD.value:
                raise Conflict("The payment already has its payment method.", code="payment_state_conflict",
                               param="method")
            service.attach_method(uow, payment, method=method or PaymentMethod.CARD.value, card_id=card_id)
        elif payment.status == PaymentStatus.REQUIRES_PAYMENT_METHOD.value:
            raise InvalidRequest("Give the payment a method to confirm it.", code="parameter_missing", param="method")
        if not risk_wiring.gate_payment(uow, payment, context=risk_context, resume=resume_review):
            # Declined (failed) or parked for review: no channel is called.
            if finish is not None:
                finish(uow, payment)
            uow.commit()
            return
        if payment.method == PaymentMethod.WALLET.value:
            service.pay_from_wallet(uow, payment)
            if finish is not None:
                finish(uow, payment)
            uow.commit()
            return
        call, ranked = _begin_charge(uow, payment, only_channels=only_channels)
        uow.commit()
    _charge(db, tenant_id, payment_id, call, ranked, deadline, finish)


def create_and_confirm(db: Database, tenant_id: str, draft: service.PaymentDraft, *,
                       deadline: timedelta = CONFIRM_DEADLINE, finish: Finish | None = None) -> str:
    """Create a payment and confirm it at once (``confirm: true``); returns its id.

    The same as ``create_payment`` then ``confirm_payment``, with the creation and the confirmation's first
    transaction made one (the new row is locked by its insert). When the confirmation refuses (no method, no
    channel...) the payment is still created, as it would have been by the two steps, and the error raised.
    """
    with db.uow() as uow:
        # Not flushed yet: its row is first written already moved on (one INSERT, no UPDATE).
        payment = service.create_payment(uow, tenant_id, draft, flush=False)
        payment_id = payment.id
        try:
            if payment.status == PaymentStatus.REQUIRES_PAYMENT_METHOD.value:
                raise InvalidRequest("Give the payment a method to confirm it.", code="parameter_missing",
                                     param="method")
            if not risk_wiring.gate_payment(uow, payment):
                # Declined (failed) or parked for review: no channel is called.
                uow.session.flush()
                call = None
            elif payment.method == PaymentMethod.WALLET.value:
                uow.session.flush()
                service.pay_from_wallet(uow, payment)
                call = None
            else:
                call, ranked = _begin_charge(uow, payment, only_channels=None, new_payment=True)
        except FinloopError as error:
            uow.rollback()
            refused: FinloopError | None = error
        else:
            refused = None
            if call is None and finish is not None:
                finish(uow, payment)
            uow.commit()
    if refused is not None:
        # The confirmation refused once the creation was accepted: keep the payment, as two steps would.
        with db.uow() as uow:
            payment_id = service.create_payment(uow, tenant_id, draft).id
            uow.commit()
        raise refused
    if call is not None:
        _charge(db, tenant_id, payment_id, call, ranked, deadline, finish)
    return payment_id


def _begin_charge(uow: UnitOfWork, payment: Payment, *, only_channels: Sequence[str] | None,
                  new_payment: bool = False) -> tuple[_Call, list[str]]:
    """The first transaction's part of a confirmation: move to processing, route, record the attempt and
    gather what the channel call needs. ``new_payment``: the payment was created (not yet flushed) in
    this transaction, so it has no attempt yet."""
    tenant_id = payment.tenant_id
    service.begin_confirmation(uow, payment)
    assert payment.method is not None
    channels = service.eligible_channels(uow, tenant_id, method=payment.method, currency_code=payment.currency)
    if only_channels:
        channels = [c for c in channels if c.code in only_channels] or channels
    if not channels:
        raise InvalidRequest(f"No enabled channel takes {payment.method} in {payment.currency}.",
                             code="no_channel_available", param="method")
    if new_payment:
        uow.session.flush()
    segment = service.get_customer(uow, tenant_id, payment.customer_id).segment if payment.customer_id else None
    decision = routing.decide(
        uow, tenant_id, merchant_id=_routing_scope(payment), payment_id=payment.id, method=payment.method,
        amount=payment.amount, currency=payment.currency, customer_segment=segment,
        candidates=[routing.Candidate(c.code, service.expected_fee(c, payment.amount)) for c in channels])
    attempt = service.record_attempt(uow, payment, channel=decision.ranked[0], decision_id=decision.id,
                                     first=new_payment)
    return _prepare_call(uow, payment, attempt, channels), list(decision.ranked)


def _charge(db: Database, tenant_id: str, payment_id: str, call: _Call, ranked: list[str], deadline: timedelta,
            finish: Finish | None) -> None:
    """Call the channel with no transaction open, apply its answer, fail over while allowed."""
    give_up_at = db.clock.now() + deadline
    while True:
        result, latency = _pay(db, call)
        if result.outcome is Outcome.UNKNOWN:
            result, retryable = _resolve_unknown(db, call, result)
        else:
            retryable = result.retryable
        with db.uow() as uow:
            payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
            attempt = service.get_attempt(uow, tenant_id, call.attempt_id)
            applied = service.apply_channel_result(uow, payment, attempt, _query_of(result, attempt.id, payment.amount),
                                                   retryable=retryable, latency_ms=latency)
            routing.record_outcome(uow, tenant_id, merchant_id=_routing_scope(payment), method=payment.method or "",
                                   channel=call.channel, outcome=_routing_outcome(result.outcome),
                                   latency_ms=latency)
            if applied.attempt_status is AttemptStatus.REQUIRES_ACTION:
                service.set_next_action(payment, result.action)
            next_call = None
            if applied.failover:
                tried = ranked.index(call.channel) if call.channel in ranked else len(ranked) - 1
                movable = not service.is_customer_action(payment.method) or attempt.channel_ref is None
                if movable and tried + 1 < len(ranked) and db.clock.now() < give_up_at:
                    attempt_next = service.record_attempt(uow, payment, channel=ranked[tried + 1],
                                                          decision_id=attempt.routing_decision_id)
                    next_call = _prepare_call(uow, payment, attempt_next)
                    log.debug("payments.failover", payment_id=payment.id, failed=call.channel,
                              next=ranked[tried + 1], error_code=attempt.error_code)
                else:
                    service.fail_payment(uow, payment, attempt.error_code or "channel_failed", attempt.error_message)
            if next_call is None and finish is not None:
                finish(uow, payment)
            uow.commit()
        if next_call is None:
            break
        call = next_call


def _resolve_unknown(db: Database, call: _Call, first: PayResult) -> tuple[PayResult, bool]:
    """Ask the channel what became of a call whose reply was lost. Returns the answer to apply and
    whether failing over is safe (only when the channel says it never saw the payment)."""
    for _ in range(IMMEDIATE_QUERIES):
        found = _query(call.connector, call.attempt_id)
        if found.outcome is Outcome.NOT_FOUND:
            return PayResult(Outcome.FAILED, error_code="not_received_by_channel",
                             error_message="The channel never received the payment.", retryable=True), True
        if found.outcome is not Outcome.UNKNOWN:
            return PayResult(found.outcome, channel_ref=found.channel_ref, fee=found.fee,
                             error_code=found.error_code, error_message=found.error_message, raw=found.raw), False
    return first, False


# ------------------------------------------------------------------------------------------ capture / cancel


def capture_payment(db: Database, tenant_id: str, payment_id: str, *, amount: int | None = None) -> None:
    with db.uow() as uow:
        payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
        attempt, to_capture = service.begin_capture(uow, payment, amount)
        channel = service.channel_by_code(uow, tenant_id, attempt.channel)
        connector = gateway.connector_for(uow, channel)
        request = CaptureRequest(reference=attempt.id, channel_ref=attempt.channel_ref or "", amount=to_capture,
                                 currency=payment.currency)
        attempt_id = attempt.id
        uow.commit()
    if not isinstance(connector, Capturer):
        raise Conflict("This channel cannot capture.", code="capture_not_supported")
    try:
        result = connector.capture(request)
        outcome, error = result.outcome, result.error_code
    except ExternalServiceError as exc:
        outcome, error = Outcome.UNKNOWN, exc.code
    with db.uow() as uow:
        payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
        attempt = service.get_attempt(uow, tenant_id, attempt_id)
        if outcome is Outcome.SUCCEEDED:
            service.apply_channel_result(uow, payment, attempt, QueryResult(
                Outcome.SUCCEEDED, attempt_id, captured_amount=to_capture, amount=to_capture))
        elif outcome is Outcome.UNKNOWN:
            service.apply_channel_result(uow, payment, attempt, QueryResult(Outcome.UNKNOWN, attempt_id))
        else:
            service.apply_channel_result(uow, payment, attempt, QueryResult(
                Outcome.AUTHORIZED, attempt_id, error_code=error))
        uow.commit()


def cancel_payment(db: Database, tenant_id: str, payment_id: str, *, reason: str = "requested_by_customer") -> None:
    with db.uow() as uow:
        payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
        attempt = service.cancel_payment(uow, payment, reason=reason)
        close = None
        if attempt is not None:
            channel = service.channel_by_code(uow, tenant_id, attempt.channel)
            close = (gateway.connector_for(uow, channel), attempt.id, attempt.channel_ref)
        uow.commit()
    if close is not None:
        _close_at_channel(db, tenant_id, payment_id, *close)


def _close_at_channel(db: Database, tenant_id: str, payment_id: str, connector: Connector, attempt_id: str,
                      channel_ref: str | None) -> None:
    """Close an abandoned attempt; if the channel says it was paid after all, that success is refunded."""
    if isinstance(connector, Canceller):
        try:
            closed = connector.cancel(attempt_id, channel_ref)
            outcome = closed.outcome
        except ExternalServiceError:
            outcome = Outcome.UNKNOWN
    else:
        outcome = Outcome.UNKNOWN
    if outcome is not Outcome.CANCELED:
        outcome = _query(connector, attempt_id).outcome
    with db.uow() as uow:
        payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
        attempt = service.get_attempt(uow, tenant_id, attempt_id)
        service.apply_channel_result(uow, payment, attempt, QueryResult(outcome, attempt_id))
        uow.commit()
    run_pending_refunds(db, tenant_id=tenant_id, payment_id=payment_id)


# ------------------------------------------------------------------------------------------ refunds


def refund_payment(db: Database, tenant_id: str, payment_id: str, *, amount: int | None = None,
                   reason: str = "", requested_by: Principal | None = None) -> str:
    """Decide (risk), record and send a refund. A risk decline raises ``risk_declined`` (422) with only the
    decision kept; a review parks the refund (``requires_approval``) until its case is closed."""
    with db.uow() as uow:
        payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
        decision = risk_wiring.decide_refund(uow, payment, amount)
        # The refund is checked and recorded inside a savepoint: a bad request still fails as before (nothing
        # written), a declined one keeps only its decision.
        savepoint = uow.session.begin_nested()
        refund = service.create_refund(uow, payment, amount=amount, reason=reason, requested_by=requested_by)
        if decision.outcome is RiskOutcome.DECLINE:
            savepoint.rollback()
            uow.commit()
            raise risk_wiring.declined_error(decision)
        savepoint.commit()
        refund_id = refund.id
        if decision.outcome is RiskOutcome.REVIEW:
            risk_wiring.park_refund(uow, refund, decision)
        elif refund.channel == service.WALLET_ROUTE and refund.status == RefundStatus.PENDING.value:
            service.refund_to_wallet(uow, payment, refund)
        uow.commit()
    execute_refund(db, tenant_id, refund_id)
    return refund_id


def retry_refund(db: Database, tenant_id: str, refund_id: str, *, route: str = "original") -> None:
    """Send a failed refund again: through its channel, or (the fallback route) into the customer's wallet."""
    with db.uow() as uow:
        refund = service.get_refund(uow, tenant_id, refund_id)
        payment = service.get_payment(uow, tenant_id, refund.payment_id, lock=True)
        refund = service.get_refund(uow, tenant_id, refund_id, lock=True)
        service.retry_refund(uow, payment, refund, route=route)
        uow.commit()
    execute_refund(db, tenant_id, refund_id)


def execute_refund(db: Database, tenant_id: str, refund_id: str) -> RefundStatus:
    """Send a pending refund to its channel (again, after a crash: refunds are idempotent by our
    reference at the channel) and apply the answer."""
    with db.uow() as uow:
        refund = service.get_refund(uow, tenant_id, refund_id)
        if refund.status != RefundStatus.PENDING.value:
            return RefundStatus(refund.status)
        if refund.channel == service.WALLET_ROUTE:
            payment = service.get_payment(uow, tenant_id, refund.payment_id, lock=True)
            refund = service.get_refund(uow, tenant_id, refund_id, lock=True)
            if refund.status == RefundStatus.PENDING.value:
                service.refund_to_wallet(uow, payment, refund)
            uow.commit()
            return RefundStatus(refund.status)
        attempt = service.get_attempt(uow, tenant_id, refund.attempt_id)
        channel = service.channel_by_code(uow, tenant_id, refund.channel)
        connector = gateway.connector_for(uow, channel)
        request = RefundRequest(refund_reference=refund.id, reference=attempt.id, channel_ref=attempt.channel_ref,
                                amount=refund.amount, payment_amount=attempt.amount, currency=refund.currency,
                                reason=refund.reason or None, notify_url=gateway.notify_url(channel))
    if not isinstance(connector, Refunder):
        result = RefundResult(Outcome.FAILED, refund_id, error_code="refund_not_supported")
    else:
        try:
            result = connector.refund(request)
        except ExternalServiceError as exc:
            result = RefundResult(Outcome.UNKNOWN, refund_id, error_code=exc.code)
    return _apply_refund(db, tenant_id, refund_id, result)


def _apply_refund(db: Database, tenant_id: str, refund_id: str, result: RefundResult) -> RefundStatus:
    with db.uow() as uow:
        refund = service.get_refund(uow, tenant_id, refund_id)
        payment = service.get_payment(uow, tenant_id, refund.payment_id, lock=True)
        refund = service.get_refund(uow, tenant_id, refund_id, lock=True)
        status = service.apply_refund_result(uow, payment, refund, result)
        uow.commit()
    return status


def run_pending_refunds(db: Database, *, tenant_id: str, payment_id: str) -> None:
    with db.uow(read_only=True) as uow:
        pending = [r.id for r in service.list_refunds(uow, tenant_id, payment_id=payment_id, after=None, limit=100)
                   if r.status == RefundStatus.PENDING.value]
    for refund_id in pending:
        execute_refund(db, tenant_id, refund_id)


# ------------------------------------------------------------------------------------------ withdrawals


def withdraw(db: Database, tenant_id: str, customer_id: str, *, channel: str, amount: int, currency: str,
             account_name: str, account_number: str, bank_code: str | None = None) -> str:
    """Decide (risk), hold the amount in the wallet, send the payout, and post or void the hold by the answer.

    A risk decline raises ``risk_declined`` (422) with only the decision kept (no withdrawal, no hold); a
    review parks the withdrawal (``requires_approval``, the amount held) until its case is closed."""
    with db.uow() as uow:
        from finloop.onboarding import service as onboarding  # the KYC gate: refused before anything is written

        onboarding.require_verified(uow, tenant_id, party_kind="customer", party_id=customer_id, action="withdrawal")
        decision = risk.decide(uow, tenant_id, event_type="withdrawal", event=risk_wiring.withdrawal_event(
            customer_id=customer_id, channel=channel, amount=amount, currency=currency,
            account_number=account_number), object_ref=customer_id)
        savepoint = uow.session.begin_nested()
        withdrawal = wallets.begin_withdrawal(uow, tenant_id, customer_id, channel_code=channel, amount=amount,
                                              currency=currency, account_name=account_name,
                                              account_number=account_number, bank_code=bank_code)
        if decision.outcome is RiskOutcome.DECLINE:
            savepoint.rollback()
            uow.commit()
            raise risk_wiring.declined_error(decision)
        savepoint.commit()
        if decision.outcome is RiskOutcome.REVIEW:
            risk_wiring.park_withdrawal(uow, withdrawal, decision)
            withdrawal_id = withdrawal.id
            uow.commit()
            return withdrawal_id
        connector = gateway.connector_for(uow, service.channel_by_code(uow, tenant_id, channel))
        request = PayoutRequest(reference=withdrawal.id, amount=amount, currency=currency,
                                account_name=withdrawal.account_name,
                                account_number=wallets.account_number(uow, withdrawal), bank_code=bank_code,
                                description=f"withdrawal {withdrawal.id}")
        withdrawal_id = withdrawal.id
        uow.commit()
    if isinstance(connector, PayoutSender):
        try:
            result = connector.payout(request)
        except ExternalServiceError as exc:
            result = PayoutResult(Outcome.UNKNOWN, withdrawal_id, error_code=exc.code)
    else:
        result = PayoutResult(Outcome.FAILED, withdrawal_id, error_code="payout_not_supported",
                              error_message=f"Channel {channel} cannot pay out.")
    _apply_payout(db, tenant_id, withdrawal_id, result)
    return withdrawal_id


def send_approved_withdrawal(db: Database, tenant_id: str, withdrawal_id: str) -> None:
    """Send a withdrawal its risk review approved (``pending``): processing, then the payout, then its answer."""
    with db.uow() as uow:
        withdrawal = wallets.get_withdrawal(uow, tenant_id, withdrawal_id, lock=True)
        if withdrawal.status != WithdrawalStatus.PENDING.value:
            return
        connector = gateway.connector_for(uow, service.channel_by_code(uow, tenant_id, withdrawal.channel))
        request = PayoutRequest(reference=withdrawal.id, amount=withdrawal.amount, currency=withdrawal.currency,
                                account_name=withdrawal.account_name,
                                account_number=wallets.account_number(uow, withdrawal),
                                bank_code=withdrawal.bank_code, description=f"withdrawal {withdrawal.id}")
        withdrawal.status = WithdrawalStatus.PROCESSING.value
        withdrawal.updated_at = uow.clock.now()
        withdrawal.next_query_at = uow.clock.now() + service.next_query_delay(0)
        uow.commit()
    if isinstance(connector, PayoutSender):
        try:
            result = connector.payout(request)
        except ExternalServiceError as exc:
            result = PayoutResult(Outcome.UNKNOWN, withdrawal_id, error_code=exc.code)
    else:
        result = PayoutResult(Outcome.FAILED, withdrawal_id, error_code="payout_not_supported")
    _apply_payout(db, tenant_id, withdrawal_id, result)


def resume_reviewed(db: Database, *, limit: int = 100) -> int:
    """Continue what a risk review approved: confirm approved payments through the normal flow (no second
    decision) and send approved withdrawals. Returns how many were continued. A payment whose confirmation
    now refuses (no channel...) fails with that error's code instead of waiting forever."""
    with db.uow(read_only=True) as uow:
        payments = risk_wiring.approved_payments(uow, limit=limit)
        withdrawals = risk_wiring.pending_withdrawals(uow, limit=limit)
    for tenant_id, payment_id in payments:
        try:
            confirm_payment(db, tenant_id, payment_id, resume_review=True)
        except FinloopError as error:
            with db.uow() as uow:
                payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
                if risk_wiring.review_of(payment) is not None and \
                        payment.status == PaymentStatus.REQUIRES_CONFIRMATION.value:
                    service.begin_confirmation(uow, payment)
                    service.fail_payment(uow, payment, error.code, error.message)
                    uow.commit()
    for tenant_id, withdrawal_id in withdrawals:
        send_approved_withdrawal(db, tenant_id, withdrawal_id)
    return len(payments) + len(withdrawals)


def _apply_payout(db: Database, tenant_id: str, withdrawal_id: str, result: PayoutResult) -> None:
    with db.uow() as uow:
        withdrawal = wallets.get_withdrawal(uow, tenant_id, withdrawal_id, lock=True)
        wallets.apply_payout_result(uow, withdrawal, result)
        uow.commit()


def _query_withdrawal(db: Database, tenant_id: str, withdrawal_id: str) -> None:
    with db.uow() as uow:
        withdrawal = wallets.get_withdrawal(uow, tenant_id, withdrawal_id, lock=True)
        connector = gateway.connector_for(uow, service.channel_by_code(uow, tenant_id, withdrawal.channel))
        withdrawal.queries += 1
        withdrawal.next_query_at = uow.clock.now() + service.next_query_delay(withdrawal.queries)
        uow.commit()
    if not isinstance(connector, PayoutSender):
        return
    try:
        result = connector.query_payout(withdrawal_id)
    except ExternalServiceError as exc:
        result = PayoutResult(Outcome.UNKNOWN, withdrawal_id, error_code=exc.code)
    _apply_payout(db, tenant_id, withdrawal_id, result)


# ------------------------------------------------------------------------------------------ notifications


def handle_notification(db: Database, channel_id: str, headers: Mapping[str, str], body: bytes) -> Acknowledgement:
    """Verify a channel's notification by its signature and apply it, idempotently and in any order."""
    with db.uow(read_only=True) as uow:
        channel = service.find_channel_by_id(uow, channel_id)
        if channel is None:
            raise NotFound("No such channel.", code="channel_not_found", param="channel_id")
        tenant_id, code = channel.tenant_id, channel.code
        connector = gateway.connector_for(uow, channel)
    if not isinstance(connector, NotificationParser):
        raise InvalidRequest("This channel does not send notifications.", code="notifications_not_supported")
    try:
        notification = connector.parse_notification(headers, body)
    except InvalidSignature:
        log.warning("payments.notification_rejected", channel=code, reason="signature")
        return connector.acknowledge(False)
    except ValueError as error:
        # Genuine (the signature verified) but not an event we act on: accept it, or the channel
        # would send it again forever.
        log.info("payments.notification_ignored", channel=code, reason=str(error)[:200])
        return connector.acknowledge(True)
    payment_id = None
    with db.uow() as uow:
        reference = (notification.payment.reference if notification.payment else
                     notification.refund.refund_reference if notification.refund else
                     notification.dispute.get("reference") if notification.dispute else None)
        service.record_notification(uow, tenant_id, channel=code, notification_id=notification.notification_id,
                                    kind=notification.kind.value, reference=reference)
        if notification.kind is NotificationKind.PAYMENT and notification.payment is not None:
            attempt = uow.session.get(Attempt, notification.payment.reference)
            if attempt is not None and attempt.tenant_id == tenant_id and attempt.channel == code:
                payment = service.get_payment(uow, tenant_id, attempt.payment_id, lock=True)
                attempt = service.get_attempt(uow, tenant_id, attempt.id)
                service.apply_channel_result(uow, payment, attempt, notification.payment)
                payment_id = payment.id
        elif notification.kind is NotificationKind.REFUND and notification.refund is not None:
            refund = uow.session.get(Refund, notification.refund.refund_reference)
            if refund is not None and refund.tenant_id == tenant_id and refund.channel == code:
                payment = service.get_payment(uow, tenant_id, refund.payment_id, lock=True)
                refund = service.get_refund(uow, tenant_id, refund.id, lock=True)
                service.apply_refund_result(uow, payment, refund, notification.refund)
        elif notification.kind is NotificationKind.DISPUTE and notification.dispute is not None:
            disputes.handle_dispute_notification(uow, tenant_id, code, notification.dispute)
        uow.commit()
    if payment_id is not None:
        run_pending_refunds(db, tenant_id=tenant_id, payment_id=payment_id)
    return connector.acknowledge(True)


# ------------------------------------------------------------------------------------------ active query


def resolve_open(db: Database, *, limit: int = 100) -> int:
    """Query the channel for every attempt and refund whose result is overdue; returns how many were asked.

    This is the second half of the dual guarantee: whichever arrives first, notification or query, the
    final status is the same, because both go through the same forward-only apply.
    """
    with db.uow(read_only=True) as uow:
        now = uow.clock.now()
        attempts = [(a.tenant_id, a.id, a.payment_id) for a in service.due_attempts(uow, now=now, limit=limit)]
        refunds = [(r.tenant_id, r.id, r.status) for r in service.due_refunds(uow, now=now, limit=limit)]
        payouts = [(w.tenant_id, w.id) for w in wallets.due_withdrawals(uow, now=now, limit=limit)]
    for tenant_id, withdrawal_id in payouts:
        _query_withdrawal(db, tenant_id, withdrawal_id)
    for tenant_id, attempt_id, payment_id in attempts:
        _resolve_attempt(db, tenant_id, attempt_id, payment_id)
    for tenant_id, refund_id, status in refunds:
        if status == RefundStatus.REQUIRES_APPROVAL.value:
            status = _settle_parked(db, tenant_id, refund_id)
        if status == RefundStatus.REQUIRES_APPROVAL.value:
            continue
        if status == RefundStatus.PENDING.value:
            execute_refund(db, tenant_id, refund_id)
        else:
            _query_refund(db, tenant_id, refund_id)
    return len(attempts) + len(refunds) + len(payouts)


def _resolve_attempt(db: Database, tenant_id: str, attempt_id: str, payment_id: str) -> None:
    with db.uow() as uow:
        attempt = service.get_attempt(uow, tenant_id, attempt_id)
        channel = service.channel_by_code(uow, tenant_id, attempt.channel)
        connector = gateway.connector_for(uow, channel)
        service.note_query(uow, attempt)
        expired = attempt.created_at + ACTION_TTL <= uow.clock.now()
        uow.commit()
    found = _query(connector, attempt_id)
    with db.uow() as uow:
        payment = service.get_payment(uow, tenant_id, payment_id, lock=True)
        attempt = service.get_attempt(uow, tenant_id, attempt_id)
        if found.outcome is Outcome.NOT_FOUND:
            found = QueryResult(Outcome.FAILED, attempt_id, error_code="not_received_by_channel")
        applied = service.apply_channel_result(uow, payment, attempt, found)
        close = None
        if (expired and applied.attempt_status in (AttemptStatus.REQUIRES_ACTION, AttemptStatus.PENDING,
                                                   AttemptStatus.PROCESSING)
                and payment.status == PaymentStatus.REQUIRES_ACTION.value):
            service.cancel_payment(uow, payment, reason="expired")
            close = (connector, attempt_id, attempt.channel_ref)
        elif (applied.attempt_status is AttemptStatus.FAILED
              and payment.status == PaymentStatus.PROCESSING.value):
            # No request is waiting to fail over any more: a payment whose attempt failed late fails.
            service.fail_payment(uow, payment, attempt.error_code or "channel_failed", attempt.error_message)
        uow.commit()
    if close is not None:
        _close_at_channel(db, tenant_id, payment_id, *close)
    elif found.outcome is Outcome.SUCCEEDED:
        run_pending_refunds(db, tenant_id=tenant_id, payment_id=payment_id)


def release_parked_refund(db: Database, tenant_id: str, refund_id: str) -> str:
    """Move a refund on as soon as its approval is decided (rather than at the next query round): an approved
    one is sent, a rejected one canceled. Returns the refund's status."""
    status = _settle_parked(db, tenant_id, refund_id)
    if status == RefundStatus.PENDING.value:
        status = execute_refund(db, tenant_id, refund_id).value
    return status


def _settle_parked(db: Database, tenant_id: str, refund_id: str) -> str:
    with db.uow() as uow:
        refund = service.get_refund(uow, tenant_id, refund_id)
        payment = service.get_payment(uow, tenant_id, refund.payment_id, lock=True)
        refund = service.get_refund(uow, tenant_id, refund_id, lock=True)
        status = service.settle_parked_refund(uow, payment, refund)
        uow.commit()
    return status.value


def _query_refund(db: Database, tenant_id: str, refund_id: str) -> None:
    with db.uow() as uow:
        refund = service.get_refund(uow, tenant_id, refund_id)
        attempt = service.get_attempt(uow, tenant_id, refund.attempt_id)
        channel = service.channel_by_code(uow, tenant_id, refund.channel)
        connector = gateway.connector_for(uow, channel)
        refund.queries += 1
        refund.next_query_at = uow.clock.now() + service.next_query_delay(refund.queries)
        uow.commit()
    if not isinstance(connector, Refunder):
        return
    try:
        result = connector.query_refund(refund_id, attempt.id)
    except ExternalServiceError as exc:
        result = RefundResult(Outcome.UNKNOWN, refund_id, error_code=exc.code)
    if result.outcome is Outcome.NOT_FOUND:
        # The channel never got it: send it again (same reference, so at most once at the channel).
        with db.uow() as uow:
            refund = service.get_refund(uow, tenant_id, refund_id, lock=True)
            if refund.status == RefundStatus.UNKNOWN.value:
                refund.status = RefundStatus.PENDING.value
            uow.commit()
        execute_refund(db, tenant_id, refund_id)
        return
    _apply_refund(db, tenant_id, refund_id, result)
