"""Risk wiring: the decision service called where money is about to move, and the case resolvers.

Where each object is decided (``finloop.risk.service.decide``) and what the outcome does:

- a payment, in the transaction that starts its confirmation, before routing and before any attempt:
  approve → routing goes on; decline → the payment becomes ``failed`` with ``failure_code="risk_declined"``
  and the reasons in ``failure_message`` (no channel is called); review → the payment stays
  ``requires_confirmation`` with a ``next_action`` of type ``risk_review`` carrying the case id, and a case
  is opened. Closing the case records the verdict (``resolve_payment``); the job
  ``payments.resume_reviewed`` confirms approved payments through the normal flow without a second
  decision. A declined verdict fails the payment at once (no network call is needed for that);
- a refund, a wallet withdrawal and a merchant payout, before they are recorded: decline → 422
  ``risk_declined``; only the decision is kept (it is evidence: backtests and labels need it), no money
  object and no hold is written; review → the object is recorded and parked (refund
  ``requires_approval``, withdrawal ``requires_approval``, payout ``pending_approval``) with its amount
  reserved, and a case opened; the case's approval releases it to its usual job, a decline cancels it and
  releases the reservation.

A tenant with no rule set gets ``approve`` with no rule fired, so nothing changes for it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from finloop.core.errors import Conflict, InvalidRequest, LimitExceeded
from finloop.db.uow import UnitOfWork
from finloop.risk import service as risk
from finloop.risk.domain import Outcome

if TYPE_CHECKING:
    from finloop.payments.models import Payment, Refund, Withdrawal
    from finloop.payouts.models import Payout

#: The failure code of a payment (and the error code of a request) refused by a risk decision.
DECLINED_CODE = "risk_declined"
#: The ``next_action`` type of a payment parked for a risk review.
REVIEW_ACTION = "risk_review"
#: Optional request fields that feed the decision of a payment (also read from the payment's metadata).
CONTEXT_FIELDS = ("device_id", "ip", "ip_country")
_DEVICE = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class RiskDeclined(LimitExceeded):
    """A refund, withdrawal or payout request a risk decision declined (422)."""

    code = DECLINED_CODE


# ---------------------------------------------------------------------------------------------- events


def check_context(*, device_id: str | None = None, ip: str | None = None,
                  ip_country: str | None = None) -> dict[str, str]:
    """The optional risk fields of a confirmation, validated: ``device_id`` 1-100 of ``[A-Za-z0-9._:-]``,
    ``ip`` an IPv4 or IPv6 address (normalised), ``ip_country`` an ISO 3166 alpha-2 code in capitals."""
    out: dict[str, str] = {}
    if device_id is not None:
        if not isinstance(device_id, str) or not _DEVICE.match(device_id):
            raise InvalidRequest("device_id is 1-100 letters, digits, '.', '_', ':' or '-'.",
                                 code="invalid_device_id", param="device_id")
        out["device_id"] = device_id
    if ip is not None:
        try:
            out["ip"] = str(ipaddress.ip_address(ip if isinstance(ip, str) and len(ip) <= 45 else ""))
        except ValueError:
            raise InvalidRequest("ip is an IPv4 or IPv6 address.", code="invalid_ip", param="ip") from None
    if ip_country is not None:
        if not isinstance(ip_country, str) or not _COUNTRY.match(ip_country):
            raise InvalidRequest("ip_country is an ISO 3166 alpha-2 code such as 'CN'.",
                                 code="invalid_ip_country", param="ip_country")
        out["ip_country"] = ip_country
    return out


def _from_metadata(meta: Mapping[str, Any] | None) -> dict[str, str]:
    """The risk fields a payment's metadata carries; a value that would not pass ``check_context`` is ignored
    (metadata is the merchant's free text, never a reason to refuse a confirmation)."""
    found: dict[str, str] = {}
    for key in CONTEXT_FIELDS:
        value = (meta or {}).get(key)
        if isinstance(value, str):
            try:
                found.update(check_context(**{key: value}))
            except InvalidRequest:
                continue
    return found


def _compact(event: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if v is not None and v != ""}


def payment_event(payment: Payment, context: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The event of a payment: amount (minor units), currency, method, purpose, merchant, customer, card token
    and the device, IP and IP country of the confirm request (else of the payment's metadata)."""
    fields = {**_from_metadata(payment.meta), **(context or {})}
    return _compact({"payment_id": payment.id, "amount": payment.amount, "currency": payment.currency,
                     "method": payment.method, "purpose": payment.purpose, "merchant_id": payment.merchant_id,
                     "customer_id": payment.customer_id, "card_token": payment.card_id, **fields})


def refund_event(payment: Payment, amount: int) -> dict[str, Any]:
    return _compact({"payment_id": payment.id, "amount": amount, "currency": payment.currency,
                     "method": payment.method, "channel": payment.channel, "merchant_id": payment.merchant_id,
                     "customer_id": payment.customer_id, "card_token": payment.card_id,
                     "payment_amount": payment.captured_amount, **_from_metadata(payment.meta)})


def withdrawal_event(*, customer_id: str, channel: str, amount: int, currency: str,
                     account_number: str) -> dict[str, Any]:
    """``payout_account`` is personal: the decision stores it masked and matches lists by its blind index."""
    return _compact({"customer_id": customer_id, "channel": channel, "amount": amount, "currency": currency,
                     "payout_account": account_number})


def payout_event(*, party_kind: str, party_id: str, amount: int, currency: str,
                 payout_account_id: str | None) -> dict[str, Any]:
    return _compact({"party_kind": party_kind, "party_id": party_id, "amount": amount, "currency": currency,
                     "merchant_id": party_id if party_kind == "merchant" else None,
                     "payout_account_id": payout_account_id})


def reasons_text(decision: risk.Decision) -> str:
    """``rule_id: description; ...`` of the rules that drove the outcome, at most 500 characters."""
    parts = [f"{r.get('rule_id', '')}: {r.get('description', '')}".rstrip(": ") for r in decision.reasons]
    return ("; ".join(parts) or f"risk {decision.outcome.value}")[:500]


def declined_error(decision: risk.Decision, *, param: str = "amount") -> RiskDeclined:
    return RiskDeclined(f"Declined by risk control: {reasons_text(decision)}", code=DECLINED_CODE, param=param,
                        details={"decision_id": decision.id, "reasons": [dict(r) for r in decision.reasons]})


def _open_case(uow: UnitOfWork, tenant_id: str, *, object_type: str, object_id: str,
               decision: risk.Decision) -> str:
    from finloop.risk.cases import service as cases

    case = cases.open_case(uow, tenant_id, source="decision", object_type=object_type, object_id=object_id,
                           reason=reasons_text(decision), decision_id=decision.id)
    return str(case.id)


# ---------------------------------------------------------------------------------------------- payments


def review_of(payment: Payment) -> dict[str, Any] | None:
    """The payment's risk review (``next_action`` of type ``risk_review``), if it is parked for one."""
    action = payment.next_action
    if isinstance(action, Mapping) and action.get("type") == REVIEW_ACTION:
        return dict(action)
    return None


def gate_payment(uow: UnitOfWork, payment: Payment, *, context: Mapping[str, str] | None = None,
                 resume: bool = False) -> bool:
    """Decide a payment about to be confirmed (it is locked, ``requires_confirmation``). True: go on routing.
    False: declined (now ``failed``) or parked for review (a case is open); the caller commits and stops.

    ``resume``: the job continuing a payment whose review approved it — no second decision."""
    from finloop.payments import service

    context = check_context(**{k: (context or {}).get(k) for k in CONTEXT_FIELDS})
    parked = review_of(payment)
    if resume:
        if parked is None or parked.get("verdict") != "approve":
            raise Conflict("The payment is not approved by a risk review.", code="payment_not_approved",
                           param="payment_id")
        payment.next_action = None
        return True
    if parked is not None:
        raise Conflict("The payment is waiting for a risk review.", code="payment_in_review", param="payment_id")
    decision = risk.decide(uow, payment.tenant_id, event_type="payment", event=payment_event(payment, context),
                           object_ref=payment.id)
    if decision.outcome is Outcome.APPROVE:
        return True
    payment.meta = {**(payment.meta or {}), "risk_decision_id": decision.id}
    if decision.outcome is Outcome.DECLINE:
        service.begin_confirmation(uow, payment)
        service.fail_payment(uow, payment, DECLINED_CODE, reasons_text(decision))
        return False
    uow.session.flush()
    case_id = _open_case(uow, payment.tenant_id, object_type="payment", object_id=payment.id, decision=decision)
    payment.next_action = {"type": REVIEW_ACTION, "case_id": case_id, "decision_id": decision.id, "verdict": None}
    payment.updated_at = uow.clock.now()
    payment.version += 1
    return False


def resolve_payment(uow: UnitOfWork, case: Any, action: str) -> None:
    """Case resolver: approve records the verdict for ``payments.resume_reviewed``; decline fails the payment
    with ``risk_declined`` now (nothing was sent to a channel). A payment no longer parked is left alone."""
    from finloop.payments import service

    payment = service.get_payment(uow, case.tenant_id, case.object_id, lock=True)
    parked = review_of(payment)
    if parked is None or payment.status != "requires_confirmation" or parked.get("verdict") is not None:
        return
    if action == "approve":
        payment.next_action = {**parked, "verdict": "approve"}
        payment.updated_at = uow.clock.now()
        payment.version += 1
    elif action == "decline":
        service.begin_confirmation(uow, payment)
        service.fail_payment(uow, payment, DECLINED_CODE, f"Declined on risk review (case {case.id}).")


def approved_payments(uow: UnitOfWork, *, limit: int) -> list[tuple[str, str]]:
    """(tenant, payment id) of parked payments whose review approved them."""
    from sqlalchemy import select

    from finloop.payments.models import Payment

    rows = uow.session.execute(select(Payment.tenant_id, Payment.id, Payment.next_action).where(
        Payment.status == "requires_confirmation",
        Payment.next_action["verdict"].as_string() == "approve").order_by(Payment.id).limit(limit)).all()
    return [(t, p) for t, p, action in rows if isinstance(action, Mapping) and action.get("type") == REVIEW_ACTION]


# ---------------------------------------------------------------------------------------------- refunds


def decide_refund(uow: UnitOfWork, payment: Payment, amount: int | None) -> risk.Decision:
    """Decide a refund before it is recorded (``amount`` None: what is left to refund)."""
    left = payment.captured_amount - payment.refunded_amount
    return risk.decide(uow, payment.tenant_id, event_type="refund",
                       event=refund_event(payment, left if amount is None else amount), object_ref=payment.id)


def park_refund(uow: UnitOfWork, refund: Refund, decision: risk.Decision) -> None:
    """Park a refund for review: ``requires_approval`` with its amount reserved; the resolve job leaves it alone
    (no next query) until the case is closed."""
    refund.status = "requires_approval"
    refund.next_query_at = None
    refund.updated_at = uow.clock.now()
    _open_case(uow, refund.tenant_id, object_type="refund", object_id=refund.id, decision=decision)


def resolve_refund(uow: UnitOfWork, case: Any, action: str) -> None:
    """Approve: the refund is pending again (sent by ``payments.resolve_open``), or, when an approval is also
    required, handed to it. Decline: canceled with ``risk_declined``, its reservation released."""
    from finloop.payments import service

    refund = service.get_refund(uow, case.tenant_id, case.object_id)
    payment = service.get_payment(uow, case.tenant_id, refund.payment_id, lock=True)
    refund = service.get_refund(uow, case.tenant_id, case.object_id, lock=True)
    if refund.status != "requires_approval" or refund.next_query_at is not None:
        return
    now = uow.clock.now()
    refund.updated_at = now
    if action == "approve":
        if refund.approval_id is None:
            refund.status = "pending"
        refund.next_query_at = now
    elif action == "decline":
        refund.status = "canceled"
        refund.error_code = DECLINED_CODE
        payment.refunded_amount -= refund.amount
        payment.version += 1


# ---------------------------------------------------------------------------------------------- withdrawals


def park_withdrawal(uow: UnitOfWork, withdrawal: Withdrawal, decision: risk.Decision) -> None:
    """Park a withdrawal for review: its amount stays held, nothing is sent until the case is closed."""
    withdrawal.status = "requires_approval"
    withdrawal.next_query_at = None
    withdrawal.updated_at = uow.clock.now()
    _open_case(uow, withdrawal.tenant_id, object_type="withdrawal", object_id=withdrawal.id, decision=decision)


def resolve_withdrawal(uow: UnitOfWork, case: Any, action: str) -> None:
    """Approve: ``pending`` (sent by ``payments.resume_reviewed``). Decline: ``failed`` with
    ``risk_declined``, the hold voided."""
    from finloop.ledger import service as ledger
    from finloop.payments import wallets

    withdrawal = wallets.get_withdrawal(uow, case.tenant_id, case.object_id, lock=True)
    if withdrawal.status != "requires_approval":
        return
    withdrawal.updated_at = uow.clock.now()
    if action == "approve":
        withdrawal.status = "pending"
    elif action == "decline":
        ledger.void_hold(uow, withdrawal.tenant_id, withdrawal.hold_id)
        withdrawal.status = "failed"
        withdrawal.error_code = DECLINED_CODE
        withdrawal.error_message = f"Declined on risk review (case {case.id})."


def pending_withdrawals(uow: UnitOfWork, *, limit: int) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from finloop.payments.models import Withdrawal

    rows = uow.session.execute(select(Withdrawal.tenant_id, Withdrawal.id).where(Withdrawal.status == "pending")
                               .order_by(Withdrawal.id).limit(limit)).all()
    return [(t, w) for t, w in rows]


# ---------------------------------------------------------------------------------------------- payouts


def park_payout(uow: UnitOfWork, payout: Payout, decision: risk.Decision) -> None:
    """Park a payout for review: ``pending_approval`` with its amount held, not looked at by
    ``payouts.process`` (no next attempt) until the case is closed."""
    payout.status = "pending_approval"
    payout.next_attempt_at = None
    payout.updated_at = uow.clock.now()
    _open_case(uow, payout.tenant_id, object_type="payout", object_id=payout.id, decision=decision)


def resolve_payout(uow: UnitOfWork, case: Any, action: str) -> None:
    """Approve: ``approved`` (sent by ``payouts.process``), or handed to its approval when one is also
    required. Decline: ``canceled`` with ``risk_declined``, the hold voided."""
    from finloop.ledger import service as ledger
    from finloop.payouts import service as payouts

    payout = payouts.get_payout(uow, case.tenant_id, case.object_id, lock=True)
    if payout.status != "pending_approval" or payout.next_attempt_at is not None:
        return
    now = uow.clock.now()
    payout.updated_at = now
    if action == "approve":
        if payout.approval_id is None and payout.screening_id is None:  # else payouts.process settles them
            payout.status = "approved"
        payout.next_attempt_at = now
    elif action == "decline":
        payout.status = "canceled"
        ledger.void_hold(uow, payout.tenant_id, payout.hold_id)
        payout.error_code = DECLINED_CODE


# ---------------------------------------------------------------------------------------------- registration

_registered = False


def register() -> bool:
    """Register the resolvers of payments, refunds, withdrawals and payouts with the case service (once).
    False while the case service is not importable."""
    global _registered
    if _registered:
        return True
    try:
        from finloop.risk.cases import service as cases
    except ImportError:
        return False
    cases.register_resolver("payment", resolve_payment)
    cases.register_resolver("refund", resolve_refund)
    cases.register_resolver("withdrawal", resolve_withdrawal)
    cases.register_resolver("payout", resolve_payout)
    _registered = True
    return True


register()
